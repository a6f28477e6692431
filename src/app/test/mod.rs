//! `ruperf test`: numbered self-tests that diagnose what ruperf can measure on this machine
//! and how to fix what it cannot.
//!
//! Each test returns an [`Outcome`]; a skip carries its reason and a failure its fix. The
//! tests use the same modules the subcommands use, on the real kernel (or the `--sysroot`
//! tree for discovery).

pub mod scratch;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::counters::event::parse_events;
use crate::counters::group::{OpenOptions, OpenStatus, Session, Target};
use crate::counters::pmu::Pmu;
use crate::counters::{has_perf_capability, paranoid, paranoid_meaning, permission_fix};
use crate::energy::nvml::NvmlSource;
use crate::energy::{parse_selector, EnergySession, RaplSource, Source};
use crate::error::Error;
use crate::sysroot::Sysroot;

/// What a self-test found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "result", content = "detail")]
pub enum Outcome {
    /// Works; what was seen.
    Ok(String),
    /// Not applicable or not available here; why, and how to enable it.
    Skip(String),
    /// Should work but does not; what went wrong and the fix.
    Fail(String),
}

/// Everything a self-test may look at.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Root for kernel interfaces.
    pub root: Sysroot,
    /// NVML library chosen by the user, if any.
    pub nvml_lib: Option<PathBuf>,
    /// Scratch directory for files a test writes.
    pub scratch: PathBuf,
}

/// One self-test.
pub struct SelfTest {
    /// Short name (matched by substring on the command line).
    pub name: &'static str,
    /// What it measures, for the summary ("software events", "RAPL via powercap", …).
    pub capability: &'static str,
    /// The check.
    pub run: fn(&Ctx) -> Outcome,
}

/// Every self-test, in number order (numbers start at 1).
pub fn all() -> Vec<SelfTest> {
    vec![
        SelfTest {
            name: "perf_event_open works",
            capability: "perf events",
            run: t_open,
        },
        SelfTest {
            name: "permissions: perf_event_paranoid and capabilities",
            capability: "permission to profile",
            run: t_permissions,
        },
        SelfTest {
            name: "software events count",
            capability: "software events",
            run: t_software,
        },
        SelfTest {
            name: "tracepoint counts exactly N write syscalls",
            capability: "tracepoints",
            run: t_tracepoint,
        },
        SelfTest {
            name: "msr PMU counts msr/tsc/",
            capability: "msr PMU",
            run: t_msr,
        },
        SelfTest {
            name: "hardware counters (cycles, instructions)",
            capability: "hardware counters",
            run: t_hardware,
        },
        SelfTest {
            name: "stat of a launched command gives an exact count",
            capability: "counting a command",
            run: t_workload,
        },
        SelfTest {
            name: "ring-buffer sampling yields samples",
            capability: "sampling (record)",
            run: t_sampling,
        },
        SelfTest {
            name: "record → report round trip",
            capability: "reports (report)",
            run: t_roundtrip,
        },
        SelfTest {
            name: "RAPL through the perf power PMU",
            capability: "CPU energy (perf power PMU)",
            run: t_rapl_perf,
        },
        SelfTest {
            name: "RAPL through powercap",
            capability: "CPU energy (powercap)",
            run: t_rapl_powercap,
        },
        SelfTest {
            name: "RAPL through MSRs",
            capability: "CPU energy (MSR)",
            run: t_rapl_msr,
        },
        SelfTest {
            name: "NVIDIA GPU energy through NVML",
            capability: "GPU energy (NVML)",
            run: t_nvml,
        },
    ]
}

fn busy(d: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < d {
        for i in 0..10_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
    }
    std::hint::black_box(x)
}

/// Opens `events` on the calling thread, runs `work`, and returns the counts.
fn count_self(
    events: &str,
    root: &Sysroot,
    work: impl FnOnce(),
) -> Result<(Session, Vec<u64>), Error> {
    let list = parse_events(events, root)?;
    let tid = nix::unistd::gettid().as_raw();
    let s = Session::open(
        &list,
        &Target::Tids(vec![tid]),
        OpenOptions { inherit: false },
        root,
    )?;
    s.enable()?;
    work();
    s.disable()?;
    let v = s.read()?.into_iter().map(|r| r.value).collect();
    Ok((s, v))
}

fn t_open(c: &Ctx) -> Outcome {
    match count_self("task-clock", &c.root, || {
        busy(Duration::from_millis(5));
    }) {
        Ok((_, v)) if v[0] > 0 => Outcome::Ok(format!(
            "task-clock counted {:.2} ms of busy work",
            v[0] as f64 / 1e6
        )),
        Ok(_) => Outcome::Fail(
            "task-clock opened but counted nothing: the kernel's perf events look broken".into(),
        ),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

fn t_permissions(c: &Ctx) -> Outcome {
    let Some(level) = paranoid(&c.root) else {
        return Outcome::Fail(format!(
            "cannot read {}: this kernel lacks perf events (CONFIG_PERF_EVENTS) or /proc is not mounted",
            c.root.path("/proc/sys/kernel/perf_event_paranoid").display()
        ));
    };
    let privileged = has_perf_capability();
    let who = if privileged {
        "with CAP_PERFMON/CAP_SYS_ADMIN"
    } else {
        "unprivileged"
    };
    if privileged || level <= 2 {
        let extra = if !privileged && level > 0 {
            "; -a and the power PMU need level 0 or CAP_PERFMON"
        } else {
            ""
        };
        let guarded = if crate::os::privilege::elevated() {
            "; ruperf runs with privileges its caller lacks (file capabilities), so \
             RUPERF_NVML_LIB is ignored and --nvml-lib/--sysroot must be paths only root can change"
        } else {
            ""
        };
        Outcome::Ok(format!(
            "perf_event_paranoid {level} ({}), running {who}{extra}{guarded}",
            paranoid_meaning(level)
        ))
    } else {
        Outcome::Fail(format!("running {who}: {}", permission_fix(&c.root)))
    }
}

fn t_software(c: &Ctx) -> Outcome {
    let r = count_self("task-clock,page-faults,context-switches", &c.root, || {
        let v: Vec<u8> = vec![1; 8 << 20];
        std::hint::black_box(&v);
        busy(Duration::from_millis(2));
    });
    match r {
        Ok((_, v)) if v[0] > 0 && v[1] > 0 => Outcome::Ok(format!(
            "task-clock {:.2} ms, page-faults {}, context-switches {}",
            v[0] as f64 / 1e6,
            v[1],
            v[2]
        )),
        Ok((_, v)) => Outcome::Fail(format!(
            "software events opened but counted task-clock {} page-faults {}",
            v[0], v[1]
        )),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

fn t_tracepoint(c: &Ctx) -> Outcome {
    const N: u64 = 1000;
    let devnull = match std::fs::OpenOptions::new().write(true).open("/dev/null") {
        Ok(f) => f,
        Err(e) => return Outcome::Fail(format!("/dev/null: {e}")),
    };
    let r = count_self("syscalls:sys_enter_write", &c.root, || {
        for _ in 0..N {
            let _ = nix::unistd::write(&devnull, b"x");
        }
    });
    match r {
        Ok((_, v)) if v[0] == N => Outcome::Ok(format!(
            "syscalls:sys_enter_write counted exactly {N} writes"
        )),
        Ok((_, v)) => Outcome::Fail(format!("expected {N} write syscalls, counted {}", v[0])),
        // Unavailable here, or closed to this user: not broken, and the message has the fix.
        Err(Error::Unavailable(m)) | Err(Error::Permission(m)) => Outcome::Skip(m),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

fn t_msr(c: &Ctx) -> Outcome {
    if Pmu::load(&c.root, "msr")
        .and_then(|p| p.event("tsc").cloned())
        .is_none()
    {
        return Outcome::Skip(
            "no msr PMU with a tsc event (x86 only; CONFIG_PERF_EVENTS_MSR)".into(),
        );
    }
    match count_self("msr/tsc/", &c.root, || {
        busy(Duration::from_millis(2));
    }) {
        Ok((s, v)) if s.counters[0].status == OpenStatus::Open && v[0] > 0 => {
            Outcome::Ok(format!("msr/tsc/ counted {} ticks in 2 ms", v[0]))
        }
        Ok((s, _)) => match &s.counters[0].status {
            // The automatic user-space-only retry at paranoid 2: the msr PMU has no
            // user-only mode, so the retry cannot work; that is a permission, not a fault.
            OpenStatus::NotSupported(why) if why.starts_with("msr/tsc/:u") => {
                Outcome::Skip(format!(
                    "msr/tsc/ counts user and kernel time together (the msr PMU cannot exclude \
                     the kernel), so it needs kernel-space permission: {}",
                    permission_fix(&c.root)
                ))
            }
            OpenStatus::NotSupported(why) => Outcome::Fail(why.clone()),
            OpenStatus::Open => Outcome::Fail("msr/tsc/ opened but counted nothing".into()),
        },
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

fn t_hardware(c: &Ctx) -> Outcome {
    match count_self("cycles,instructions", &c.root, || {
        busy(Duration::from_millis(2));
    }) {
        Ok((s, v)) => match &s.counters[0].status {
            OpenStatus::Open if v[0] > 0 => Outcome::Ok(format!("cycles {} instructions {}", v[0], v[1])),
            OpenStatus::Open => Outcome::Fail("cycles opened but counted nothing (the PMU may be owned by another tool, e.g. the NMI watchdog)".into()),
            OpenStatus::NotSupported(why) => Outcome::Skip(format!(
                "{why}: no hardware PMU is exposed (in a VM, enable the virtual PMU, e.g. QEMU/KVM `-cpu host,pmu=on`)"
            )),
        },
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

fn t_workload(c: &Ctx) -> Outcome {
    use crate::app::stat::{self, StatConfig, Status};
    let Ok(events) = parse_events("syscalls:sys_enter_write", &c.root) else {
        return Outcome::Skip("tracepoints are unavailable (see the tracepoint test)".into());
    };
    let dd = match crate::os::launcher::resolve_program("dd".as_ref()) {
        Ok(p) => p,
        Err(_) => return Outcome::Skip("dd is not installed (coreutils)".into()),
    };
    let cfg = StatConfig {
        events,
        command: vec![
            dd.into(),
            "if=/dev/zero".into(),
            "of=/dev/null".into(),
            "bs=1".into(),
            "count=500".into(),
            "status=none".into(),
        ],
        pids: vec![],
        tids: vec![],
        cpus: None,
        per_cpu: false,
        depth: Default::default(),
        repeat: 1,
        interval: None,
        interval_count: None,
        open: OpenOptions::default(),
        scale: true,
        sysroot: c.root.clone(),
        energy: Vec::new(),
        rapl_source: None,
        nvml_lib: None,
    };
    match stat::run(&cfg, &mut |_| {}) {
        Ok(r) => {
            let row = &r.runs[0].counters[0];
            match (row.status, row.count as u64, r.exit_code()) {
                (Status::Counted, 500, 0) => {
                    Outcome::Ok("`dd bs=1 count=500` made exactly 500 write syscalls".into())
                }
                (st, n, code) => Outcome::Fail(format!(
                    "expected 500 writes and exit 0, got {n} ({st:?}) and exit {code}"
                )),
            }
        }
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

/// Records a busy shell loop with cpu-clock call chains at `hz` into `out`.
fn record_busy_shell(
    c: &Ctx,
    out: &Path,
    hz: u64,
) -> Result<crate::app::record::RecordSummary, Error> {
    use crate::app::record::{self, Period, RecordConfig};
    let cfg = RecordConfig {
        events: vec![record::cpu_clock_event()],
        default_event: false,
        period: Period::Frequency(hz),
        callchain: true,
        dwarf_stack: None,
        target: record::Target::Command,
        command: vec![
            "sh".into(),
            "-c".into(),
            "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done".into(),
        ],
        mmap_pages: 64,
        output: out.to_path_buf(),
        cmdline: vec!["ruperf".into(), "test".into()],
        energy: None,
        nvml_lib: None,
        build_ids: crate::perfdata::buildid_cache::Policy::NoCache,
        extra: Default::default(),
    };
    record::run(&cfg, &c.root, &mut |_| {})
}

fn t_sampling(c: &Ctx) -> Outcome {
    let out = c.scratch.join("selftest-sampling.data");
    let r = record_busy_shell(c, &out, 1000);
    let _ = std::fs::remove_file(&out);
    match r {
        Ok(s) if s.progress.samples > 0 && s.progress.lost == 0 => Outcome::Ok(format!(
            "{} cpu-clock samples with call chains, 0 lost",
            s.progress.samples
        )),
        Ok(s) => Outcome::Fail(format!(
            "{} samples, {} lost records",
            s.progress.samples, s.progress.lost
        )),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

fn t_roundtrip(c: &Ctx) -> Outcome {
    use crate::app::report::{self, Config, Format, GraphMode, SortKey};
    let out = c.scratch.join("selftest-roundtrip.data");
    let recorded = match record_busy_shell(c, &out, 2000) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(format!("record: {e}")),
    };
    let rcfg = Config {
        input: out.clone(),
        sort: vec![SortKey::Comm, SortKey::Dso, SortKey::Sym],
        children: Some(false),
        graph: GraphMode::None,
        graph_min_percent: 0.5,
        order: None,
        percent_limit: 0.0,
        max_stack: 127,
        show_samples: true,
        header: false,
        comms: None,
        dsos: None,
        symbols: None,
        format: Format::Stdio,
        flamegraph: None,
        sysroot: c.root.clone(),
        progress: false,
        energy: false,
        inline: false,
        symfs: None,
    };
    let result = report::load(&rcfg).map(|r| report::build(&r, &rcfg));
    let _ = std::fs::remove_file(&out);
    let rep = match result {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(format!("report: {e}")),
    };
    let samples: u64 = rep.sections.iter().map(|s| s.samples).sum();
    let top = rep.sections.first().and_then(|s| s.entries.first());
    match top {
        Some(e) if samples == recorded.progress.samples && e.comm.as_deref() == Some("sh") => {
            Outcome::Ok(format!(
                "{samples} samples written and read back; top: {} {} {:.1}%",
                e.dso.as_deref().unwrap_or("?"),
                e.symbol.as_deref().unwrap_or("?"),
                e.self_pct
            ))
        }
        _ => Outcome::Fail(format!(
            "recorded {} samples, report read {samples}; top entry {:?}",
            recorded.progress.samples,
            top.map(|e| (&e.comm, &e.symbol))
        )),
    }
}

fn t_rapl_perf(c: &Ctx) -> Outcome {
    let events = c.root.path("/sys/bus/event_source/devices/power/events");
    let present = std::fs::read_dir(&events)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().starts_with("energy-"))
        })
        .unwrap_or(false);
    if !present {
        return Outcome::Skip(format!(
            "{} lists no energy events: this CPU, kernel or VM exposes no RAPL to perf (bare metal Intel/AMD with CONFIG_PERF_EVENTS_INTEL_RAPL)",
            events.display()
        ));
    }
    rapl_moves(c, RaplSource::Perf)
}

fn t_rapl_powercap(c: &Ctx) -> Outcome {
    let class = c.root.path("/sys/class/powercap");
    let present = std::fs::read_dir(&class)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().starts_with("intel-rapl"))
        })
        .unwrap_or(false);
    if !present {
        return Outcome::Skip(format!(
            "no intel-rapl zones in {}: load the driver with `modprobe intel_rapl_msr` (bare metal only)",
            class.display()
        ));
    }
    rapl_moves(c, RaplSource::Powercap)
}

fn t_rapl_msr(c: &Ctx) -> Outcome {
    let dev = c.root.path("/dev/cpu/0/msr");
    if !dev.exists() {
        return Outcome::Skip(format!(
            "{} is absent: `modprobe msr` (needs CAP_SYS_RAWIO to read; bare metal only)",
            dev.display()
        ));
    }
    rapl_moves(c, RaplSource::Msr)
}

/// Opens RAPL through `kind`, reads it around 100 ms of busy work, and checks that the
/// package energy moved.
fn rapl_moves(c: &Ctx, kind: RaplSource) -> Outcome {
    let Some(Ok(all)) = parse_selector("rapl") else {
        return Outcome::Fail("internal: 'rapl' is not an energy name".into());
    };
    let mut s = match EnergySession::open(&[all], &c.root, None, Some(kind)) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let r = s.start().and_then(|_| {
        busy(Duration::from_millis(100));
        s.finish()
    });
    match r {
        Ok(rep) if rep.rows.iter().any(|r| r.joules > 0.0) => Outcome::Ok(
            rep.rows.iter().map(|r| format!("{} {:.3} J", r.name, r.joules)).collect::<Vec<_>>().join(", "),
        ),
        Ok(rep) => Outcome::Fail(format!(
            "{} domains opened through {} but none moved in 100 ms of busy work (a frozen or virtualised counter)",
            rep.rows.len(),
            kind.name()
        )),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

fn t_nvml(c: &Ctx) -> Outcome {
    let src = match NvmlSource::open(c.nvml_lib.as_deref()) {
        Ok(s) => s,
        // A library the user named must work; the system's may simply be absent.
        Err(why) if c.nvml_lib.is_some() => return Outcome::Fail(why),
        Err(why) => return Outcome::Skip(why),
    };
    if src.domains().is_empty() {
        return Outcome::Skip(
            "NVML loaded but reports no GPU with an energy counter or power reading".into(),
        );
    }
    let names = src.names().join(", ");
    drop(src);
    let Some(Ok(all)) = parse_selector("nvml") else {
        return Outcome::Fail("internal: 'nvml' is not an energy name".into());
    };
    let mut s = match EnergySession::open(&[all], &c.root, c.nvml_lib.as_deref(), None) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let r = s.start().and_then(|_| {
        std::thread::sleep(Duration::from_millis(200));
        s.finish()
    });
    let rep = match r {
        Ok(rep) => rep,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let shown = |r: &crate::energy::EnergyRow| {
        if !r.counted {
            format!("{} <not counted>", r.name)
        } else {
            format!(
                "{} {:.3} J{}",
                r.name,
                r.joules,
                if r.estimate { " (estimate)" } else { "" }
            )
        }
    };
    let figures = rep.rows.iter().map(shown).collect::<Vec<_>>().join(", ");
    // A GPU draws power even when idle: a counter that did not move (or could not be read)
    // over the probe window is frozen or broken, as the powercap test judges RAPL.
    let stuck: Vec<&str> = rep
        .rows
        .iter()
        .filter(|r| !r.counted || r.joules <= 0.0)
        .map(|r| r.name.as_str())
        .collect();
    if !stuck.is_empty() {
        let why = rep
            .rows
            .iter()
            .flat_map(|r| r.warnings.iter())
            .find(|w| w.contains("not counted"))
            .map_or(String::new(), |w| format!("; {w}"));
        return Outcome::Fail(format!(
            "{names}: {} did not move over 200 ms ({figures}): a frozen or broken energy counter{why}",
            stuck.join(", ")
        ));
    }
    Outcome::Ok(format!("{names}: {figures}"))
}

/// One executed self-test.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// Its number.
    pub number: usize,
    /// Its name.
    pub name: String,
    /// What it covers.
    pub capability: String,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Runs the selected tests (by 1-based number), reporting each as it finishes.
pub fn run(
    tests: &[SelfTest],
    selected: &[usize],
    ctx: &Ctx,
    each: &mut dyn FnMut(&TestReport),
) -> Vec<TestReport> {
    let mut out = Vec::new();
    for &n in selected {
        let t = &tests[n - 1];
        let outcome = (t.run)(ctx);
        let rep = TestReport {
            number: n,
            name: t.name.to_string(),
            capability: t.capability.to_string(),
            outcome,
        };
        each(&rep);
        out.push(rep);
    }
    out
}
