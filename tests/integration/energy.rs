//! Energy sources end to end at the library level: fake powercap and MSR trees rewritten by the
//! measured command itself, the perf power PMU fallback, and NVML through the stand-in library.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ruperf::energy::fake::FakeTree;
use ruperf::energy::rapl::perf_pmu::{PerfPmuSource, PmuEvent};
use ruperf::energy::rapl::{self, Cpu, RaplSource};
use ruperf::energy::{
    parse_selector, DomainKind, EnergyReport, EnergySelector, EnergySession, Source,
};
use ruperf::os::launcher::GatedChild;
use ruperf::sysroot::Sysroot;
use ruperf::Error;

use crate::common::scratch;

/// powercap's `max_energy_range_uj` for ESU 14: (2^32 − 1) × 61035 pJ / 1000, as the kernel
/// computes it; its hidden last step is one 61 µJ unit.
const MAX: u64 = 262_143_328_850;
const STEP: u64 = 61;

fn sel(s: &str) -> EnergySelector {
    parse_selector(s).expect("energy name").expect("valid")
}

/// Measures `script` (run by sh) the way `stat` does: read, release, wait, read.
fn measure(session: &mut EnergySession, script: &str) -> EnergyReport {
    let argv: Vec<OsString> = vec!["sh".into(), "-c".into(), script.into()];
    let mut child = GatedChild::spawn(&argv).expect("spawn");
    session.start().expect("start");
    child.release().expect("release");
    let (status, _) = child.wait().expect("wait");
    assert_eq!(status.shell_code(), 0, "{script}");
    session.finish().expect("finish")
}

fn joules(r: &EnergyReport, name: &str) -> f64 {
    r.rows
        .iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("no row {name} in {r:?}"))
        .joules
}

fn uj(v: u64) -> f64 {
    v as f64 * 1e-6
}

/// Two packages with core and dram, a psys zone, and the mmio duplicate of package 0.
fn powercap_tree(name: &str) -> FakeTree {
    let t = FakeTree::at(scratch(name));
    t.cpus(&[(0, 0, 0), (1, 1, 0)]);
    t.powercap_zone("intel-rapl:0", "package-0", 5_000_000, MAX);
    t.powercap_zone("intel-rapl:0:0", "core", 1_000_000, MAX);
    t.powercap_zone("intel-rapl:0:1", "dram", 0, MAX);
    t.powercap_zone("intel-rapl:1", "package-1", MAX - 2_000_000, MAX);
    t.powercap_zone("intel-rapl:1:0", "core", MAX, MAX);
    t.powercap_zone("intel-rapl:1:1", "dram", 777, MAX);
    t.powercap_zone("intel-rapl:2", "psys", 42, MAX);
    t.powercap_zone("intel-rapl-mmio:0", "package-0", 9_000_000, MAX);
    t
}

fn write_cmd(path: &Path, v: u64) -> String {
    format!("echo {v} > '{}'", path.display())
}

#[test]
fn powercap_command_consumes_across_wraps_and_edges() {
    let t = powercap_tree("energy-powercap");
    let mut s = EnergySession::open(&[sel("rapl")], &t.sysroot(), None, None).unwrap();
    let script = [
        // pkg0: 5 J of plain consumption.
        write_cmd(&t.energy_path("intel-rapl:0"), 10_000_000),
        // The mmio copy of pkg0 moves too, but must not be counted.
        write_cmd(&t.energy_path("intel-rapl-mmio:0"), 99_000_000),
        // cores:0 wraps: 1 J → top of the range → 250 000 µJ.
        write_cmd(&t.energy_path("intel-rapl:0:0"), 250_000),
        // dram:0 climbs exactly to the top of the range, no wrap.
        write_cmd(&t.energy_path("intel-rapl:0:1"), MAX),
        // pkg1 wraps from 2 J below the top to 3 J.
        write_cmd(&t.energy_path("intel-rapl:1"), 3_000_000),
        // cores:1 goes from exactly the top to exactly zero: one hidden step.
        write_cmd(&t.energy_path("intel-rapl:1:0"), 0),
        // dram:1 and psys do not move: zero, not a wrap.
    ]
    .join("; ");
    let r = measure(&mut s, &script);
    let names: Vec<&str> = r.rows.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "rapl/pkg:0",
            "rapl/cores:0",
            "rapl/dram:0",
            "rapl/psys:0",
            "rapl/pkg:1",
            "rapl/cores:1",
            "rapl/dram:1"
        ]
    );
    assert_eq!(joules(&r, "rapl/pkg:0"), 5.0);
    assert_eq!(
        joules(&r, "rapl/cores:0"),
        uj((MAX - 1_000_000) + STEP + 250_000)
    );
    assert_eq!(joules(&r, "rapl/dram:0"), uj(MAX));
    assert_eq!(joules(&r, "rapl/pkg:1"), uj(2_000_000 + STEP + 3_000_000));
    assert_eq!(joules(&r, "rapl/cores:1"), uj(STEP));
    assert_eq!(joules(&r, "rapl/dram:1"), 0.0);
    assert_eq!(joules(&r, "rapl/psys:0"), 0.0);
    // Per-kind sums across packages; psys, dram and package never added together.
    let pkg = r.totals.iter().find(|t| t.name == "rapl/pkg").unwrap();
    assert_eq!(pkg.domains, 2);
    assert_eq!(pkg.joules, 5.0 + uj(2_000_000 + STEP + 3_000_000));
    assert!(r.totals.iter().all(|t| t.name != "rapl/psys"));
    for row in &r.rows {
        assert_eq!(row.source, "powercap");
        assert!(!row.estimate);
        assert!(row.seconds > 0.0);
        assert_eq!(row.watts, row.joules / row.seconds);
    }
}

#[test]
fn powercap_selected_domains_and_intervals() {
    let t = powercap_tree("energy-powercap-sel");
    let mut s = EnergySession::open(
        &[sel("rapl/dram"), sel("rapl/pkg:1")],
        &t.sysroot(),
        None,
        Some(RaplSource::Powercap),
    )
    .unwrap();
    let names: Vec<&str> = s.domains().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["rapl/dram:0", "rapl/pkg:1", "rapl/dram:1"]);
    s.start().unwrap();
    t.set_energy("intel-rapl:1", MAX - 1_000_000);
    let i1 = s.interval().unwrap();
    t.set_energy("intel-rapl:1", 500);
    let i2 = s.interval().unwrap();
    let total = s.finish().unwrap();
    assert_eq!(joules(&i1, "rapl/pkg:1"), 1.0);
    assert_eq!(joules(&i2, "rapl/pkg:1"), uj(1_000_000 + STEP + 500));
    assert_eq!(joules(&total, "rapl/pkg:1"), uj(2_000_000 + STEP + 500));
}

/// A shell command that stores `value` in register `reg` of a fake MSR file
/// (register R lives at byte offset 8 × R, so `dd bs=8 seek=R`).
fn msr_cmd(path: &Path, reg: u64, value: u64) -> String {
    let bytes: String = value
        .to_le_bytes()
        .iter()
        .map(|b| format!("\\{b:03o}"))
        .collect();
    format!(
        "printf '{bytes}' | dd of='{}' bs=8 seek={reg} conv=notrunc status=none",
        path.display()
    )
}

#[test]
fn msr_intel_server_command_wraps_and_dram_quirk() {
    let t = FakeTree::at(scratch("energy-msr-intel"));
    t.cpus(&[(0, 0, 0), (1, 1, 0)]);
    t.cpuinfo("GenuineIntel", 6, 0x6A); // Ice Lake-SP: DRAM in fixed 2^-16 J units.
    for cpu in [0, 1] {
        t.msr(cpu, 0x606, 0x000A_0E03); // ESU 14: 61 µJ.
        t.msr(cpu, 0x611, 0xFFFF_F000);
        t.msr(cpu, 0x619, 5);
    }
    let mut s =
        EnergySession::open(&[sel("rapl")], &t.sysroot(), None, Some(RaplSource::Msr)).unwrap();
    // 32-bit counters at 61 µJ wrap after 262 kJ: 262 s at 1 kW, polled every 60 s at most.
    assert!(s.poll_period().is_some());
    let script = [
        msr_cmd(&t.msr_path(0), 0x611, 0x0000_1000), // wraps: 0x2000 units.
        msr_cmd(&t.msr_path(0), 0x619, 5 + 3 * 65536), // 3 J in 2^-16 J units.
        msr_cmd(&t.msr_path(1), 0x611, 0xFFFF_F000 + 16384), // 1 J, no wrap.
    ]
    .join(" && ");
    let r = measure(&mut s, &script);
    assert_eq!(joules(&r, "rapl/pkg:0"), 8192.0 / 16384.0);
    assert_eq!(joules(&r, "rapl/dram:0"), 3.0);
    assert_eq!(joules(&r, "rapl/pkg:1"), 1.0);
    assert_eq!(joules(&r, "rapl/dram:1"), 0.0);
    assert!(r.rows.iter().all(|x| x.source == "msr"));
}

#[test]
fn msr_amd_command_package_and_cores() {
    let t = FakeTree::at(scratch("energy-msr-amd"));
    t.cpus(&[(0, 0, 0), (1, 0, 1)]);
    t.cpuinfo("AuthenticAMD", 0x19, 0x11);
    t.msr(0, 0xC001_0299, 0x000A_1003); // ESU 16: 15.3 µJ.
    t.msr(0, 0xC001_029B, 0xFFFF_FFFF);
    t.msr(0, 0xC001_029A, 10);
    t.msr(1, 0xC001_029A, 0xFFFF_FFF0);
    let mut s = EnergySession::open(&[sel("rapl")], &t.sysroot(), None, None).unwrap();
    let script = [
        msr_cmd(&t.msr_path(0), 0xC001_029B, 2 * 65536 - 1), // wraps: 2 J.
        msr_cmd(&t.msr_path(0), 0xC001_029A, 10 + 65536),    // core 0: 1 J.
        msr_cmd(&t.msr_path(1), 0xC001_029A, 0x0000_7FF0),   // core 1 wraps: 0.5 J.
    ]
    .join(" && ");
    let r = measure(&mut s, &script);
    assert_eq!(joules(&r, "rapl/pkg:0"), 2.0);
    assert_eq!(joules(&r, "rapl/cores:0"), 1.5);
}

#[test]
fn perf_pmu_without_events_falls_back() {
    let t = powercap_tree("energy-pmu-empty");
    // A power PMU with no events, as on this machine's kernel: unavailable, not an error.
    t.perf_pmu("power", 23, "0", &[]);
    let o = rapl::open(&t.sysroot(), None).unwrap();
    assert_eq!(o.kind, RaplSource::Powercap);
    // Forcing it says why.
    let e = EnergySession::open(&[sel("rapl")], &t.sysroot(), None, Some(RaplSource::Perf))
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)));
    assert!(
        e.to_string().starts_with(
            "no energy source available: rapl: perf power PMU: not available under --sysroot"
        ),
        "{e}"
    );
}

#[test]
fn host_rapl_is_used_or_explained_in_one_line() {
    let root = Sysroot::default();
    match EnergySession::open(&[sel("rapl")], &root, None, None) {
        Ok(s) => assert!(!s.domains().is_empty()),
        Err(e) => {
            let msg = e.to_string();
            assert_eq!(e.exit_code(), 69);
            assert!(!msg.contains('\n'), "{msg}");
            for part in ["rapl: perf power PMU: ", "; powercap: ", "; msr: "] {
                assert!(msg.contains(part), "{part} missing in {msg}");
            }
        }
    }
}

// ---- NVML through the stand-in library ----

/// Builds tests/nvml-standin once per test run and returns the library's path.
pub fn nvml_standin() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nvml-standin/Cargo.toml");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nvml-standin");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--offline", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("running cargo to build the NVML stand-in");
        assert!(status.success(), "building the NVML stand-in failed");
        target.join("debug/libnvml_standin.so")
    })
    .clone()
}

/// A private copy of the stand-in (so each test loads its own instance) with its state file.
struct StandIn {
    lib: PathBuf,
}

impl StandIn {
    fn new(name: &str, state: &str) -> StandIn {
        let dir = scratch(name);
        let lib = dir.join("libnvidia-ml.so.1");
        std::fs::copy(nvml_standin(), &lib).expect("copy stand-in");
        let s = StandIn { lib };
        s.set(state);
        s
    }

    fn set(&self, state: &str) {
        let mut p = self.lib.clone().into_os_string();
        p.push(".state");
        std::fs::write(p, state).expect("write stand-in state");
    }

    fn open(&self, sels: &[&str]) -> Result<EnergySession, Error> {
        let sels: Vec<EnergySelector> = sels.iter().map(|s| sel(s)).collect();
        EnergySession::open(&sels, &Sysroot::default(), Some(&self.lib), None)
    }
}

#[test]
fn nvml_energy_counter() {
    let gpu = StandIn::new("nvml-energy", "gpu A100 1000 250000\ngpu H100 50 300000\n");
    let mut s = gpu.open(&["nvml"]).unwrap();
    // Polled so that a driver reload between the two ends is seen.
    assert_eq!(s.poll_period(), Some(ruperf::energy::poll::RESET_POLL));
    s.start().unwrap();
    gpu.set("gpu A100 3500 250000\ngpu H100 50 300000\n");
    let r = s.finish().unwrap();
    assert_eq!(joules(&r, "nvml/0"), 2.5);
    assert_eq!(joules(&r, "nvml/1"), 0.0);
    let row = &r.rows[0];
    assert_eq!(row.source, "nvml");
    assert!(!row.estimate);
    assert!(row
        .warnings
        .iter()
        .any(|w| w.starts_with("nvml/0: window under 1 s")));
    let total = r.totals.iter().find(|t| t.name == "nvml").unwrap();
    assert_eq!((total.domains, total.joules), (2, 2.5));
}

#[test]
fn nvml_counter_going_down_is_a_driver_reload() {
    let gpu = StandIn::new("nvml-reload", "gpu A100 90000 250000\n");
    let mut s = gpu.open(&["nvml/0"]).unwrap();
    s.start().unwrap();
    gpu.set("gpu A100 200 250000\n");
    let r = s.finish().unwrap();
    assert_eq!(joules(&r, "nvml/0"), 0.2);
    assert!(
        r.rows[0]
            .warnings
            .iter()
            .any(|w| w.starts_with("nvml/0: driver reload detected")),
        "{r:?}"
    );
}

#[test]
fn nvml_not_supported_falls_back_to_power_integration() {
    let gpu = StandIn::new("nvml-power", "gpu T4 - 70000\n");
    let mut s = gpu.open(&["nvml"]).unwrap();
    assert!(
        s.poll_period().unwrap().as_millis() <= 100,
        "at least 10 Hz"
    );
    s.start().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(120));
    let r = s.finish().unwrap();
    let row = &r.rows[0];
    assert!(row.estimate);
    // Constant 70 W integrated over every interval of the window: exactly 70 W on average.
    assert!((row.watts - 70.0).abs() < 1e-9, "{row:?}");
    // The background poller ran for this window (how often is a matter for the benchmarks).
    assert!(r.poll.is_some());
}

#[test]
fn nvml_one_of_two_gpus_unsupported() {
    let gpu = StandIn::new("nvml-mixed", "gpu A100 10 250000\ngpu Ancient - -\n");
    let mut s = gpu.open(&["nvml"]).unwrap();
    let names: Vec<&str> = s.domains().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["nvml/0"]);
    assert!(s
        .warnings()
        .iter()
        .any(|w| w == "nvml/1 (Ancient): reports neither total energy nor power; skipped"));
    s.start().unwrap();
    let r = s.finish().unwrap();
    assert_eq!(r.rows.len(), 1);
    assert!(r.warnings.iter().any(|w| w.contains("nvml/1 (Ancient)")));
    // Asking for the unsupported one alone is an error naming what is there.
    let e = gpu.open(&["nvml/1"]).unwrap_err();
    assert!(
        e.to_string()
            .contains("nvml/1: not measured on this machine (available: nvml/0)"),
        "{e}"
    );
}

#[test]
fn nvml_zero_gpus_missing_library_and_unloaded_driver() {
    let none = StandIn::new("nvml-zero", "# no GPUs\n");
    let e = none.open(&["nvml"]).unwrap_err();
    assert_eq!(e.exit_code(), 69);
    assert_eq!(
        e.to_string(),
        "no energy source available: nvml: no NVIDIA GPU found (the driver reports 0 devices)"
    );
    let unloaded = StandIn::new("nvml-unloaded", "init 9\ngpu A100 1 1\n");
    let e = unloaded.open(&["nvml"]).unwrap_err();
    assert!(
        e.to_string()
            .contains("nvml: the NVIDIA driver is not loaded"),
        "{e}"
    );
    let e = EnergySession::open(
        &[sel("nvml")],
        &Sysroot::default(),
        Some(Path::new("/nonexistent/libnvidia-ml.so.1")),
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "no energy source available: nvml: cannot load /nonexistent/libnvidia-ml.so.1"
        ),
        "{e}"
    );
}

#[test]
fn energy_mixes_rapl_and_nvml() {
    let t = powercap_tree("energy-both");
    let gpu = StandIn::new("nvml-both", "gpu A100 0 100000\n");
    let mut s = EnergySession::open(&[sel("energy")], &t.sysroot(), Some(&gpu.lib), None).unwrap();
    s.start().unwrap();
    t.set_energy("intel-rapl:0", 6_000_000);
    gpu.set("gpu A100 4000 100000\n");
    let r = s.finish().unwrap();
    assert_eq!(joules(&r, "rapl/pkg:0"), 1.0);
    assert_eq!(joules(&r, "nvml/0"), 4.0);
    assert_eq!(r.rows.last().unwrap().source, "nvml");
}

#[test]
fn host_message_is_printed_for_review() {
    // Shows the host's one-line answer in the test log (`--nocapture`); asserts only its shape.
    if let Err(e) = EnergySession::open(&[sel("energy")], &Sysroot::default(), None, None) {
        eprintln!("host: {e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("no energy source available: rapl: "),
            "{msg}"
        );
        assert!(msg.contains("; nvml: ") && !msg.contains('\n'), "{msg}");
    }
}

/// The kernel's `msr/tsc/` counter dressed as an energy event, so that the perf backend opens
/// and reads a live system-wide counter (pid −1, no exclude bits) on CPUs `cpus`.
fn tsc_event(cpus: &[u32]) -> Option<PmuEvent> {
    let ty = std::fs::read_to_string("/sys/bus/event_source/devices/msr/type").ok()?;
    Some(PmuEvent {
        pmu: "power".into(),
        name: "energy-pkg".into(),
        kind: DomainKind::Package,
        pmu_type: ty.trim().parse().ok()?,
        config: 0,
        scale: 1e-9,
        cpus: cpus.to_vec(),
    })
}

#[test]
fn perf_backend_reads_a_live_counter_per_die() {
    require!(
        tsc_event(&[0]).is_some(),
        "the msr PMU (msr/tsc/) is not available"
    );
    require!(
        Path::new("/sys/devices/system/cpu/cpu1").exists(),
        "this machine has one CPU"
    );
    let one = |cpus: &[u32], topo: &[Cpu]| {
        PerfPmuSource::from_events(topo, &[tsc_event(cpus).unwrap()], &[])
    };
    let cpu = |cpu, package, die| Cpu {
        cpu,
        package,
        die,
        core: 0,
    };
    // A cpumask with two CPUs of one package: Intel counts RAPL per die.
    let topo = [cpu(0, 0, 0), cpu(1, 0, 1)];
    let src = match one(&[0, 1], &topo) {
        Ok(s) => s,
        Err(e) => {
            require!(false, "cannot open msr/tsc/ system-wide: {e}");
            unreachable!()
        }
    };
    let names: Vec<&str> = src.domains().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["rapl/pkg:0.die0", "rapl/pkg:0.die1"]);
    let mut acc = ruperf::energy::Accumulator::new(Box::new(src));
    acc.read();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let r = acc.read();
    // The TSC advanced on both CPUs: a positive "energy" at 1 ns per tick on each die.
    assert!(r.joules.iter().all(|&j| j > 0.0), "{r:?}");
    // Two packages, one CPU each: whole-package domains.
    let src = one(&[0, 1], &[cpu(0, 0, 0), cpu(1, 1, 0)]).unwrap();
    let names: Vec<&str> = src.domains().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["rapl/pkg:0", "rapl/pkg:1"]);
    // AMD's power_core events: a core that cannot be opened (CPU 4095 does not exist) leaves
    // the whole cores domain out rather than summing some cores.
    let mut core = tsc_event(&[0, 4095]).unwrap();
    core.pmu = "power_core".into();
    core.name = "energy-core".into();
    core.kind = DomainKind::Cores;
    let src = PerfPmuSource::from_events(&topo, &[tsc_event(&[0]).unwrap()], &[core]).unwrap();
    let names: Vec<&str> = src.domains().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["rapl/pkg:0"]);
    assert_eq!(src.channels().len(), 1);
    let w = src.warnings();
    assert!(
        w.len() == 1
            && w[0].starts_with(
                "rapl/cores:0: left out: perf power_core PMU: power_core/energy-core/ on CPU 4095"
            ),
        "{w:?}"
    );
}

#[test]
fn sysroot_never_opens_host_perf_events() {
    // A fake power PMU whose type is a real host PMU (msr): under --sysroot it must not be
    // opened; powercap gives the figure, and the output says why perf was not used.
    let t = powercap_tree("energy-perf-sysroot");
    let ty = std::fs::read_to_string("/sys/bus/event_source/devices/msr/type")
        .map_or(7, |s| s.trim().parse().unwrap_or(7));
    t.perf_pmu(
        "power",
        ty,
        "0",
        &[("energy-pkg", "event=0x00", "1e-9", "Joules")],
    );
    let mut s = EnergySession::open(&[sel("rapl/pkg:0")], &t.sysroot(), None, None).unwrap();
    assert!(
        s.warnings().contains(
            &"rapl: perf power PMU: not available under --sysroot; using powercap".into()
        ),
        "{:?}",
        s.warnings()
    );
    let r = measure(
        &mut s,
        &write_cmd(&t.energy_path("intel-rapl:0"), 7_000_000),
    );
    assert_eq!(r.rows[0].source, "powercap");
    assert_eq!(joules(&r, "rapl/pkg:0"), 2.0);
}

// ---- Sapphire Rapids DRAM, multi-die packages, failed readings ----

#[test]
fn msr_sapphire_rapids_dram_standard_unit() {
    let t = FakeTree::at(scratch("energy-msr-spr"));
    t.cpus(&[(0, 0, 0)]);
    t.cpuinfo("GenuineIntel", 6, 0x8F);
    t.msr(0, 0x606, 0x000A_0E03); // ESU 14.
    t.msr(0, 0x611, 1);
    t.msr(0, 0x619, 1);
    t.msr(0, 0x64D, 1);
    let mut s =
        EnergySession::open(&[sel("rapl")], &t.sysroot(), None, Some(RaplSource::Msr)).unwrap();
    let script = [
        msr_cmd(&t.msr_path(0), 0x619, 1 + 4 * 16384), // 4 J in 2^-14 J units.
        msr_cmd(&t.msr_path(0), 0x64D, 1 + 25),        // 25 J in 1 J units.
    ]
    .join(" && ");
    let r = measure(&mut s, &script);
    assert_eq!(joules(&r, "rapl/dram:0"), 4.0);
    assert_eq!(joules(&r, "rapl/psys:0"), 25.0);
}

/// Package 0 with two dies (CPUs 0 and 1), as powercap and the MSRs show it.
fn two_die_tree(name: &str) -> FakeTree {
    let t = FakeTree::at(scratch(name));
    t.cpus_with_dies(&[(0, 0, 0, 0), (1, 0, 1, 0)]);
    t.cpuinfo("GenuineIntel", 6, 0x55);
    for cpu in [0, 1] {
        t.msr(cpu, 0x606, 0x000A_0E03);
        t.msr(cpu, 0x611, 100);
    }
    t.powercap_zone("intel-rapl:0", "package-0-die-0", 1_000_000, MAX);
    t.powercap_zone("intel-rapl:1", "package-0-die-1", 1_000_000, MAX);
    t
}

#[test]
fn msr_reads_every_die() {
    let t = two_die_tree("energy-msr-dies");
    let mut s =
        EnergySession::open(&[sel("rapl")], &t.sysroot(), None, Some(RaplSource::Msr)).unwrap();
    let script = [
        msr_cmd(&t.msr_path(0), 0x611, 100 + 16384), // die 0: 1 J.
        msr_cmd(&t.msr_path(1), 0x611, 100 + 2 * 16384), // die 1: 2 J.
    ]
    .join(" && ");
    let r = measure(&mut s, &script);
    assert_eq!(joules(&r, "rapl/pkg:0.die0"), 1.0);
    assert_eq!(joules(&r, "rapl/pkg:0.die1"), 2.0);
    assert_eq!(joules(&r, "rapl/pkg:0"), 3.0);
}

#[test]
fn powercap_and_msr_cross_check_keeps_every_die() {
    let t = two_die_tree("energy-cross-dies");
    let mut s = EnergySession::open(&[sel("rapl/pkg:0")], &t.sysroot(), None, None).unwrap();
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    let script = [
        write_cmd(&t.energy_path("intel-rapl:0"), 4_000_000), // die 0: 3 J.
        write_cmd(&t.energy_path("intel-rapl:1"), 8_000_000), // die 1: 7 J.
    ]
    .join("; ");
    let r = measure(&mut s, &script);
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0].source, "powercap");
    assert_eq!(joules(&r, "rapl/pkg:0"), 10.0);
}

#[test]
fn nvml_gpu_lost_mid_run_is_not_counted() {
    let gpu = StandIn::new("nvml-lost", "gpu A100 1000 250000\ngpu H100 50 300000\n");
    let mut s = gpu.open(&["nvml"]).unwrap();
    s.start().unwrap();
    gpu.set("gpu A100 3500 250000\ngpu H100 9000 300000\nlost 1\n");
    let r = s.finish().unwrap();
    assert_eq!(joules(&r, "nvml/0"), 2.5);
    let lost = r.rows.iter().find(|x| x.name == "nvml/1").unwrap();
    assert!(!lost.counted && lost.joules.is_nan(), "{lost:?}");
    assert!(
        lost.warnings.contains(
            &"nvml/1: not counted: the reading at the end of the window failed: the GPU is lost (NVML_ERROR_GPU_IS_LOST)"
                .to_string()
        ),
        "{lost:?}"
    );
    let total = r.totals.iter().find(|t| t.name == "nvml").unwrap();
    assert!(total.partial && total.counted);
    assert_eq!((total.domains, total.joules), (2, 2.5));
    assert!(r
        .warnings
        .contains(&"nvml: partial sum: nvml/1 not counted, left out of it".to_string()));
}

#[test]
fn nvml_reload_then_climb_past_the_start_is_seen() {
    let gpu = StandIn::new("nvml-reload-climb", "gpu A100 90000 250000\n");
    let mut s = gpu.open(&["nvml/0"]).unwrap();
    s.start().unwrap();
    // The driver reloads: the counter restarts from 0 ...
    gpu.set("gpu A100 200 250000\n");
    let seen = s.polls();
    while s.polls() < seen + 2 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // ... and climbs past the value it had at the start: start and end alone would say 5 J.
    gpu.set("gpu A100 95000 250000\n");
    let r = s.finish().unwrap();
    assert_eq!(joules(&r, "nvml/0"), 95.0);
    assert!(
        r.rows[0]
            .warnings
            .iter()
            .any(|w| w
                .starts_with("nvml/0: driver reload detected: the counter went down 1 time(s)")),
        "{r:?}"
    );
}
