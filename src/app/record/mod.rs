//! `record`: sample events into a perf.data file.
//!
//! Events are opened per CPU with one ring buffer each; a single thread polls the rings,
//! the signalfd and the target's pidfd, and appends whatever the rings hold to the file in
//! one write per pass, followed by a FINISHED_ROUND record and a header update. Records are
//! not decoded on the way, except for the few fields needed for the summary (sample and lost
//! counts) and for the BUILD_ID feature (which DSOs samples landed in).

pub mod energy;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::counters::pmu::{online_cpus, parse_cpu_list};
use crate::counters::sampler::{Attach, OpenError, SampleEvent, Sampler};
use crate::counters::{classify_open_error, permission_fix, OpenFailure};
use crate::error::{Error, Result};
use crate::os::launcher::{self, ExitStatus, GatedChild, SignalWatch};
use crate::os::ring::{self, RecordRef};
use crate::os::sys::{self, bindings as b};
use crate::perfdata::buildid;
use crate::perfdata::buildid_cache::{self, Policy};
use crate::perfdata::features::{self as feat, BuildIdEntry, EventDesc};
use crate::perfdata::synth::{self, IdTrailer};
use crate::perfdata::writer::{FileAttr, Writer};
use crate::sysroot::Sysroot;

pub mod options;

/// How often samples are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Period {
    /// Samples per second (the kernel adjusts the period).
    Frequency(u64),
    /// One sample every this many events.
    Count(u64),
}

/// What to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The launched command and its descendants.
    Command,
    /// These processes (all their threads, and threads created later).
    Pids(Vec<i32>),
    /// These threads only.
    Tids(Vec<i32>),
    /// Everything on these CPUs (None: all online CPUs).
    SystemWide(Option<Vec<u32>>),
}

/// A recording request, free of command-line types.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// Events to sample: type/config/excludes set; sampling fields are filled in here.
    pub events: Vec<SampleEvent>,
    /// True when `events` is the default (`cycles`), which may fall back to cpu-clock.
    pub default_event: bool,
    /// Sampling frequency or period.
    pub period: Period,
    /// Record call chains (frame pointers, or the kernel part only with `dwarf_stack`).
    pub callchain: bool,
    /// `--call-graph dwarf`: dump the user registers and this many bytes of user stack.
    pub dwarf_stack: Option<u32>,
    /// What to attach to.
    pub target: Target,
    /// Command to run (required for `Target::Command`; otherwise it only bounds the time).
    pub command: Vec<OsString>,
    /// Data pages per ring buffer (a power of two).
    pub mmap_pages: usize,
    /// Output file.
    pub output: PathBuf,
    /// ruperf's own command line, stored in the file.
    pub cmdline: Vec<OsString>,
    /// Energy to read beside the samples (`--energy`), for `report --energy`.
    pub energy: Option<energy::EnergyPlan>,
    /// The NVML library to load for GPU energy (None: the system's).
    pub nvml_lib: Option<PathBuf>,
    /// Build ids: in the file and the `~/.debug` cache, the file only, or neither.
    pub build_ids: crate::perfdata::buildid_cache::Policy,
    /// Options perf users type every day (tracepoint period, filters, extra sample fields).
    pub extra: crate::app::record::options::Extra,
}

/// Counters shown while recording and in the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// PERF_RECORD_SAMPLE records written.
    pub samples: u64,
    /// Records the kernel dropped because a ring was full.
    pub lost: u64,
    /// Bytes in the file so far.
    pub bytes: u64,
    /// Times poll woke up with data.
    pub wakeups: u64,
}

/// Something the recording reports as it goes.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A one-line remark for the user (a fallback, a capped value).
    Note(String),
    /// Updated counters after a pass over the rings.
    Progress(Progress),
}

/// The outcome of a recording.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordSummary {
    /// The file written.
    pub output: PathBuf,
    /// Final counters.
    pub progress: Progress,
    /// How the launched command ended, if there was one.
    pub exit: Option<ExitStatus>,
    /// Event names as recorded.
    pub events: Vec<String>,
}

impl RecordSummary {
    /// The process exit status: the command's own, or 0.
    pub fn exit_code(&self) -> i32 {
        self.exit.map_or(0, ExitStatus::shell_code)
    }
}

/// The sample_type every event records.
pub fn sample_type(callchain: bool) -> u64 {
    let mut st = b::PERF_SAMPLE_IDENTIFIER
        | b::PERF_SAMPLE_IP
        | b::PERF_SAMPLE_TID
        | b::PERF_SAMPLE_TIME
        | b::PERF_SAMPLE_CPU
        | b::PERF_SAMPLE_PERIOD;
    if callchain {
        st |= b::PERF_SAMPLE_CALLCHAIN;
    }
    st as u64
}

fn cpu_count(root: &Sysroot, file: &str) -> Option<u32> {
    let list = parse_cpu_list(&root.read_trimmed(file).ok()?)?;
    Some(list.last()? + 1)
}

/// `cpu-clock`, the software event every kernel can sample.
pub fn cpu_clock_event() -> SampleEvent {
    let mut attr = sys::new_attr();
    attr.type_ = b::PERF_TYPE_SOFTWARE;
    attr.config = b::PERF_COUNT_SW_CPU_CLOCK as u64;
    SampleEvent {
        name: "cpu-clock".into(),
        attr,
        cpus: None,
    }
}

/// Fills in the sampling fields of each event's attributes.
fn configure(cfg: &RecordConfig, events: &mut [SampleEvent], data_bytes: usize) {
    let st = sample_type(cfg.callchain);
    for (i, ev) in events.iter_mut().enumerate() {
        let a = &mut ev.attr;
        a.size = std::mem::size_of::<sys::Attr>() as u32;
        a.sample_type = st;
        if let Some(size) = cfg.dwarf_stack {
            crate::counters::sampler::set_dwarf_callchain(a, size);
        }
        match options::event_period(cfg, ev_is_tracepoint(a)) {
            Period::Frequency(f) => {
                a.set_freq(1);
                a.__bindgen_anon_1.sample_freq = f;
            }
            Period::Count(c) => {
                a.set_freq(0);
                a.__bindgen_anon_1.sample_period = c;
            }
        }
        a.set_disabled(1);
        a.set_sample_id_all(1);
        // As perf: host only unless the event asked for guests (`:G` sets exclude_host).
        if a.exclude_host() == 0 {
            a.set_exclude_guest(1);
        }
        let inherit = !matches!(cfg.target, Target::Tids(_) | Target::SystemWide(_));
        a.set_inherit(inherit as u64);
        a.set_enable_on_exec((cfg.target == Target::Command) as u64);
        // Side-band records (process names, maps, forks) come from the first event only.
        let tracking = (i == 0) as u64;
        a.set_mmap(tracking);
        a.set_mmap2(tracking);
        a.set_comm(tracking);
        a.set_comm_exec(tracking);
        a.set_task(tracking);
        // As perf in dwarf mode: the maps of data segments too, where unwinders read
        // .eh_frame_hdr from when a binary's read-only segment is not executable.
        if cfg.dwarf_stack.is_some() {
            a.set_mmap_data(tracking);
        }
        a.set_watermark(1);
        a.__bindgen_anon_2.wakeup_watermark = (data_bytes / 4).max(1) as u32;
        if cfg.energy.is_some() {
            // Sample times on the energy readings' clock.
            a.set_use_clockid(1);
            a.clockid = libc::CLOCK_MONOTONIC;
        }
        options::apply(&cfg.extra, a, i);
    }
}

fn ev_is_tracepoint(a: &sys::Attr) -> bool {
    a.type_ == b::PERF_TYPE_TRACEPOINT
}

fn open_error(cfg_events: &[SampleEvent], e: &OpenError, root: &Sysroot, pages: usize) -> Error {
    let name = cfg_events
        .get(e.event)
        .map_or("event", |ev| ev.name.as_str());
    let target = match (e.pid, e.cpu) {
        (-1, cpu) => format!("CPU {cpu}"),
        (pid, _) => format!("process {pid}"),
    };
    match (e.step, e.err.raw_os_error()) {
        ("mmap", Some(libc::EPERM)) | ("mmap", Some(libc::ENOMEM)) => Error::Os(format!(
            "cannot map a {pages}-page ring buffer for {name}: {} (lower -m, or raise \
             kernel.perf_event_mlock_kb / `ulimit -l`)",
            e.err
        )),
        ("open", Some(libc::ESRCH)) if e.pid > 0 => Error::NoSuchProcess(e.pid),
        ("open", Some(libc::EOPNOTSUPP)) => Error::Unavailable(format!(
            "{name} cannot be sampled: its PMU has no sampling interrupt (EOPNOTSUPP); \
             count it with `ruperf stat -e {name}`"
        )),
        ("open", Some(libc::EINVAL)) => Error::Unavailable(format!(
            "{name} cannot be sampled: the kernel rejected its sampling attributes (EINVAL); \
             count it with `ruperf stat -e {name}`, or check -F/-c and the modifiers"
        )),
        ("open", _) => match classify_open_error(name, &e.err, root, &target) {
            OpenFailure::NotSupported(m) => {
                Error::Unavailable(format!("{m}; choose another event (see `ruperf list`)"))
            }
            OpenFailure::Fatal(Error::Permission(_)) => Error::Permission(format!(
                "no permission to sample {name} on {target}: {}",
                permission_fix(root)
            )),
            OpenFailure::Fatal(err) => err,
        },
        (step, _) => Error::Os(format!("{step} failed for {name} on {target}: {}", e.err)),
    }
}

fn is_not_supported(e: &OpenError) -> bool {
    e.step == "open"
        && matches!(
            e.err.raw_os_error(),
            Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) | Some(libc::ENODEV) | Some(libc::ENXIO)
        )
}

/// Moves an existing non-empty output aside to `NAME.old` and creates the new file.
/// The new file is private (0600, as perf creates it: a recording holds addresses and maps).
/// A symbolic link at `path` is never moved aside, and is followed only when root or this
/// user owns it (see `sysroot::create_output`).
fn create_output(path: &Path) -> Result<File> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.is_file() && meta.len() > 0 {
            let mut old = path.as_os_str().to_owned();
            old.push(".old");
            std::fs::rename(path, &old).map_err(|source| Error::CantCreate {
                path: path.to_path_buf(),
                source,
            })?;
        }
    }
    crate::sysroot::create_output(path, 0o600, false).map_err(|source| Error::CantCreate {
        path: path.to_path_buf(),
        source,
    })
}

/// Keeps the counts for the summary and the addresses samples hit, without decoding more
/// than each record's header and a few fixed-offset fields.
#[derive(Debug, Default)]
struct Tally {
    samples: u64,
    lost: u64,
    first_time: Option<u64>,
    last_time: u64,
    callchain: bool,
    /// Samples carry PERF_SAMPLE_ADDR (`-d`), which moves the call chain 8 bytes on.
    data_addr: bool,
    kernel_hit: bool,
    /// (pid, address >> 12) of user-space sample and call-chain addresses.
    user_pages: HashSet<(u32, u64)>,
    /// Executable mappings per process: (start, end, dso index), in arrival order.
    maps: HashMap<u32, Vec<(u64, u64, u32)>>,
    /// Child process → parent, from FORK records.
    parents: HashMap<u32, u32>,
    dsos: Vec<String>,
    dso_index: HashMap<String, u32>,
}

const PAGE_SHIFT: u32 = 12;
/// Call-chain context markers are the top 4095 values of u64.
const PERF_CONTEXT_MAX: u64 = (-4095i64) as u64;
const PERF_CONTEXT_KERNEL: u64 = (-128i64) as u64;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl Tally {
    fn scan(&mut self, buf: &[u8]) {
        for r in ring::records(buf) {
            match r.kind {
                synth::SAMPLE => self.sample(&r),
                ring::PERF_RECORD_LOST | ring::PERF_RECORD_LOST_SAMPLES => {
                    self.lost += ring::lost_count(&r)
                }
                synth::MMAP2 => self.mmap2(&r),
                synth::FORK => {
                    if let (Some(pid), Some(ppid)) = (u32_at(r.bytes, 8), u32_at(r.bytes, 12)) {
                        if pid != ppid {
                            self.parents.insert(pid, ppid);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Layout (see sample_type): header, identifier, ip, pid/tid, time, cpu, period[, chain].
    fn sample(&mut self, r: &RecordRef<'_>) {
        self.samples += 1;
        let b = r.bytes;
        let (Some(ip), Some(pid), Some(time)) = (u64_at(b, 16), u32_at(b, 24), u64_at(b, 32))
        else {
            return;
        };
        self.first_time.get_or_insert(time);
        self.last_time = time;
        let kernel =
            (r.misc as u32 & b::PERF_RECORD_MISC_CPUMODE_MASK) == b::PERF_RECORD_MISC_KERNEL;
        if kernel {
            self.kernel_hit = true;
        } else {
            self.user_pages.insert((pid, ip >> PAGE_SHIFT));
        }
        if !self.callchain {
            return;
        }
        let chain_at = if self.data_addr { 64 } else { 56 };
        let Some(nr) = u64_at(b, chain_at) else {
            return;
        };
        let mut in_kernel = kernel;
        for i in 0..nr as usize {
            let Some(addr) = u64_at(b, chain_at + 8 + i * 8) else {
                break;
            };
            if addr >= PERF_CONTEXT_MAX {
                in_kernel = addr == PERF_CONTEXT_KERNEL;
                if in_kernel {
                    self.kernel_hit = true;
                }
            } else if !in_kernel {
                self.user_pages.insert((pid, addr >> PAGE_SHIFT));
            }
        }
    }

    fn mmap2(&mut self, r: &RecordRef<'_>) {
        let b = r.bytes;
        let (Some(pid), Some(start), Some(len)) = (u32_at(b, 8), u64_at(b, 16), u64_at(b, 24))
        else {
            return;
        };
        let Some(name_bytes) = b.get(72..) else {
            return;
        };
        let end = name_bytes.iter().position(|&c| c == 0).unwrap_or(0);
        let Ok(name) = std::str::from_utf8(&name_bytes[..end]) else {
            return;
        };
        if !name.starts_with('/') && name != "[vdso]" {
            return;
        }
        let idx = match self.dso_index.get(name) {
            Some(&i) => i,
            None => {
                let i = self.dsos.len() as u32;
                self.dsos.push(name.to_string());
                self.dso_index.insert(name.to_string(), i);
                i
            }
        };
        self.maps
            .entry(pid)
            .or_default()
            .push((start, start.saturating_add(len), idx));
    }

    /// DSOs that some sample or call-chain address fell in (looking through parents for
    /// processes that inherited their maps by fork).
    fn hit_dsos(&self) -> Vec<&str> {
        let mut hit = vec![false; self.dsos.len()];
        for &(pid, page) in &self.user_pages {
            let addr = page << PAGE_SHIFT;
            let mut p = pid;
            for _ in 0..64 {
                if let Some(maps) = self.maps.get(&p) {
                    if let Some(&(_, _, d)) =
                        maps.iter().rev().find(|(s, e, _)| *s <= addr && addr < *e)
                    {
                        hit[d as usize] = true;
                        break;
                    }
                }
                match self.parents.get(&p) {
                    Some(&pp) => p = pp,
                    None => break,
                }
            }
        }
        self.dsos
            .iter()
            .zip(hit)
            .filter(|(_, h)| *h)
            .map(|(d, _)| d.as_str())
            .collect()
    }
}

/// The open recording: rings, file, counters.
struct Session<'a> {
    sampler: Sampler,
    writer: Option<Writer>,
    buf: Vec<u8>,
    tally: Tally,
    progress: Progress,
    output: &'a Path,
}

impl Session<'_> {
    /// Drains every ring once and appends the records plus a FINISHED_ROUND.
    fn pass(&mut self) -> Result<()> {
        self.buf.clear();
        if self.sampler.drain_into(&mut self.buf) == 0 {
            return Ok(());
        }
        synth::finished_round(&mut self.buf);
        self.write_buf()?;
        let buf = std::mem::take(&mut self.buf);
        self.tally.scan(&buf);
        self.buf = buf;
        self.progress.samples = self.tally.samples;
        self.progress.lost = self.tally.lost;
        Ok(())
    }

    fn write_buf(&mut self) -> Result<()> {
        let w = self.writer.as_mut().expect("writer open");
        let res = w.append(&self.buf).and_then(|_| w.commit());
        self.progress.bytes = w.file_size();
        res.map_err(|e| self.write_error(e))
    }

    fn write_error(&mut self, e: std::io::Error) -> Error {
        // Announce whatever whole records made it to disk (rewriting the header needs no
        // new space).
        if let Some(w) = self.writer.as_mut() {
            let _ = w.commit();
            self.progress.bytes = w.file_size();
        }
        let full = matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT));
        Error::io(
            format!(
                "cannot write {path} ({why}recording stopped; the file keeps {mb:.3} MB up to \
                 the last complete record and perf report can read it; {fix})",
                path = self.output.display(),
                why = if full { "disk full, " } else { "" },
                mb = self.progress.bytes as f64 / (1024.0 * 1024.0),
                fix = if full {
                    "free space or write elsewhere with -o"
                } else {
                    "check the disk"
                },
            ),
            e,
        )
    }
}

/// Runs a recording to the end. `notify` receives notes and progress (it must not block).
pub fn run(
    cfg: &RecordConfig,
    root: &Sysroot,
    notify: &mut dyn FnMut(Notice),
) -> Result<RecordSummary> {
    let period = checked_period(cfg, root, notify)?;
    let cfg = &RecordConfig {
        period,
        ..cfg.clone()
    };

    let (attach_tasks, target_pidfds) = resolve_targets(cfg, root)?;
    let cpus = target_cpus(cfg, root)?;

    let mut events = cfg.events.clone();
    let kernel_text = kernel_choice(&mut events, root, notify);

    let mut signals = SignalWatch::new()?;
    let mut child = if cfg.command.is_empty() {
        None
    } else {
        Some(GatedChild::spawn(&cfg.command)?)
    };
    let attach = match (&cfg.target, &attach_tasks, &child) {
        (Target::Command, _, Some(c)) => Attach::Tasks(vec![c.pid()]),
        (_, Some(tids), _) => Attach::Tasks(tids.clone()),
        _ => Attach::Cpus,
    };
    let page = ring::page_size();
    configure(cfg, &mut events, cfg.mmap_pages * page);
    crate::counters::ensure_fd_limit((events.len() * cpus.len() * attach_len(&attach)) as u64);
    let sampler = open_sampler(cfg, &mut events, &cpus, &attach, root, notify)?;
    options::set_filters(&cfg.extra, &sampler)?;
    let opened = sampler.events();
    let (file_attrs, trailer) = file_layout(cfg, opened);
    let writer = options::open_writer(cfg, root, &file_attrs, opened, create_output)?;
    let mut s = Session {
        sampler,
        writer: Some(writer),
        buf: Vec::with_capacity(cfg.mmap_pages * page * cpus.len() + 4096),
        tally: Tally {
            callchain: cfg.callchain,
            data_addr: cfg.extra.data_addr,
            ..Tally::default()
        },
        progress: Progress::default(),
        output: &cfg.output,
    };

    write_initial_state(&mut s, cfg, root, &trailer, kernel_text)?;

    let tracker = cfg
        .energy
        .as_ref()
        .map(|plan| energy::EnergyTracker::start(plan, root, cfg.nvml_lib.as_deref()))
        .transpose()?;
    // Go.
    if cfg.target != Target::Command && cfg.extra.delay_ms.is_none() {
        s.sampler
            .enable()
            .map_err(|e| Error::Os(format!("cannot enable sampling: {e}")))?;
    }
    if let Some(c) = child.as_mut() {
        c.release()?;
    }
    options::delayed_start(cfg, &s.sampler)?;

    let mut exit = record_loop(
        &mut s,
        &mut signals,
        child.as_mut(),
        target_pidfds,
        &attach,
        notify,
    )?;
    s.sampler.disable();
    s.pass()?;
    if s.progress.lost > 0 {
        // Not scanned: the tally counted these samples from the kernel's LOST records.
        s.buf.clear();
        synth::lost_samples(&mut s.buf, &trailer, s.progress.lost);
        s.write_buf()?;
    }
    let energy_trace = tracker.and_then(|t| finish_energy(t, notify));
    // A command still running after Ctrl-C (it ignored the signal) is asked to stop.
    if let Some(c) = child.as_mut() {
        if exit.is_none() {
            c.kill(libc::SIGTERM);
            exit = Some(c.wait()?.0);
        }
    }

    let mut warnings = Vec::new();
    let mut features = feature_sections(cfg, root, &s, kernel_text.is_some(), &mut warnings);
    for w in warnings {
        notify(Notice::Note(w));
    }
    if let Some(t) = &energy_trace {
        features.push((crate::perfdata::energy::FEATURE, t.encode()));
    }
    let writer = s.writer.take().expect("writer open");
    let bytes = match writer.finish(&features) {
        Ok(b) => b,
        Err(e) => return Err(s.write_error(e)),
    };
    s.progress.bytes = bytes;
    Ok(RecordSummary {
        output: cfg.output.clone(),
        progress: s.progress,
        exit,
        events: s.sampler.events().iter().map(|e| e.name.clone()).collect(),
    })
}

/// Checks the ring size and the target, and caps `-F` at kernel.perf_event_max_sample_rate
/// (saying so), as perf does.
fn checked_period(
    cfg: &RecordConfig,
    root: &Sysroot,
    notify: &mut dyn FnMut(Notice),
) -> Result<Period> {
    if cfg.mmap_pages == 0 || !cfg.mmap_pages.is_power_of_two() {
        return Err(Error::Usage(format!(
            "-m {}: the ring buffer size must be a power of two number of pages (e.g. 64, 128, 256)",
            cfg.mmap_pages
        )));
    }
    if cfg.target == Target::Command && cfg.command.is_empty() {
        return Err(Error::Usage(
            "nothing to record: give a command, -p PID, -t TID or -a (see `ruperf record --help`)"
                .into(),
        ));
    }
    Ok(match cfg.period {
        Period::Frequency(0) | Period::Count(0) => {
            return Err(Error::Usage("-F and -c must be greater than zero".into()))
        }
        Period::Frequency(f) => {
            let max: Option<u64> = root
                .read_trimmed("/proc/sys/kernel/perf_event_max_sample_rate")
                .ok()
                .and_then(|s| s.parse().ok());
            match max {
                Some(max) if f > max => {
                    notify(Notice::Note(format!(
                        "-F {f} is above kernel.perf_event_max_sample_rate ({max}); sampling at {max} Hz \
                         (raise the limit with `sysctl kernel.perf_event_max_sample_rate={f}`)"
                    )));
                    Period::Frequency(max)
                }
                _ => Period::Frequency(f),
            }
        }
        p => p,
    })
}

/// The tasks of `-p` (every thread) and `-t`, which must exist before anything is opened, and
/// a pidfd per `-p` process (its exit ends the recording).
fn resolve_targets(cfg: &RecordConfig, root: &Sysroot) -> Result<(Option<Vec<i32>>, Vec<OwnedFd>)> {
    let mut target_pidfds: Vec<OwnedFd> = Vec::new();
    let attach_tasks: Option<Vec<i32>> = match &cfg.target {
        Target::Pids(pids) => {
            let mut tids = Vec::new();
            for &pid in pids {
                if pid <= 0 || !launcher::process_exists(pid) {
                    return Err(Error::NoSuchProcess(pid));
                }
                tids.extend(synth::process_threads(root, pid));
                if let Ok(fd) = sys::pidfd_open(pid) {
                    target_pidfds.push(fd);
                }
            }
            Some(tids)
        }
        Target::Tids(tids) => {
            for &tid in tids {
                if tid <= 0 || !root.path(format!("/proc/{tid}")).exists() {
                    return Err(Error::NoSuchProcess(tid));
                }
            }
            Some(tids.clone())
        }
        _ => None,
    };
    Ok((attach_tasks, target_pidfds))
}

/// The CPUs to open on: `-C LIST` (each online), else every online CPU.
fn target_cpus(cfg: &RecordConfig, root: &Sysroot) -> Result<Vec<u32>> {
    let online = online_cpus(root);
    Ok(match &cfg.target {
        Target::SystemWide(Some(list)) => {
            let bad: Vec<String> = list
                .iter()
                .filter(|c| !online.contains(c))
                .map(u32::to_string)
                .collect();
            if !bad.is_empty() {
                return Err(Error::Usage(format!(
                    "-C: CPU {} not online (online: {})",
                    bad.join(","),
                    root.read_trimmed("/sys/devices/system/cpu/online")
                        .unwrap_or_default()
                )));
            }
            list.clone()
        }
        _ => online.clone(),
    })
}

/// Kernel samples need a kernel map; without privilege or with hidden addresses, the events
/// record user space only (said when the user could have expected more). Returns the kernel
/// text address when kernel samples are recorded.
fn kernel_choice(
    events: &mut [SampleEvent],
    root: &Sysroot,
    notify: &mut dyn FnMut(Notice),
) -> Option<u64> {
    let privileged = crate::counters::has_perf_capability();
    let paranoid = crate::counters::paranoid(root).unwrap_or(2);
    let kernel_text = if !privileged && paranoid >= 2 {
        None
    } else {
        synth::kernel_text_address(root)
    };
    let wants_kernel = events.iter().any(|e| e.attr.exclude_kernel() == 0);
    if kernel_text.is_none() && wants_kernel {
        for e in events.iter_mut() {
            e.attr.set_exclude_kernel(1);
            e.attr.set_exclude_hv(1);
        }
        if privileged || paranoid < 2 {
            notify(Notice::Note(
                "kernel addresses are hidden (kernel.kptr_restrict): recording user space only"
                    .into(),
            ));
        }
    }
    kernel_text.filter(|_| events.iter().any(|e| e.attr.exclude_kernel() == 0))
}

/// Opens the sampler. As perf, a `cycles` event the machine cannot count falls back to
/// cpu-clock, keeping its modifiers, and says so.
fn open_sampler(
    cfg: &RecordConfig,
    events: &mut [SampleEvent],
    cpus: &[u32],
    attach: &Attach,
    root: &Sysroot,
    notify: &mut dyn FnMut(Notice),
) -> Result<Sampler> {
    loop {
        match Sampler::open(events, cpus, attach, cfg.mmap_pages) {
            Ok(s) => return Ok(s),
            Err(e) if is_not_supported(&e) && options::is_cycles(events, e.event) => {
                let old = events[e.event].name.clone();
                options::to_cpu_clock(&mut events[e.event]);
                notify(Notice::Note(format!(
                    "{old} is not supported on this machine (errno {}); sampling {} instead",
                    e.err.raw_os_error().unwrap_or(0),
                    events[e.event].name
                )));
            }
            Err(e) => return Err(open_error(events, &e, root, cfg.mmap_pages)),
        }
    }
}

/// The attributes as the file stores them, and the sample_id trailer of the records ruperf
/// writes itself (those of the first event).
fn file_layout(
    cfg: &RecordConfig,
    opened: &[crate::counters::sampler::OpenedEvent],
) -> (Vec<FileAttr>, IdTrailer) {
    let file_attrs = opened
        .iter()
        .map(|e| FileAttr {
            attr: sys::attr_file_bytes(&e.attr),
            ids: e.ids.clone(),
        })
        .collect();
    let trailer = IdTrailer {
        sample_type: sample_type(cfg.callchain),
        id: opened
            .first()
            .and_then(|e| e.ids.first())
            .copied()
            .unwrap_or(0),
    };
    (file_attrs, trailer)
}

/// The energy readings of `record --energy`. A reader that failed mid-run costs the
/// readings, not the recording: the samples are written without them, with a warning.
fn finish_energy(
    tracker: energy::EnergyTracker,
    notify: &mut dyn FnMut(Notice),
) -> Option<crate::perfdata::energy::EnergyTrace> {
    match tracker.finish() {
        Ok(trace) => Some(trace),
        Err(e) => {
            notify(Notice::Note(format!(
                "warning: energy readings lost ({e}); the samples are written without them"
            )));
            None
        }
    }
}

/// Writes what was running before recording started: the kernel and its modules, and the
/// processes of `-p`, `-t` or `-a` from /proc (with their data maps in dwarf mode, as perf).
fn write_initial_state(
    s: &mut Session<'_>,
    cfg: &RecordConfig,
    root: &Sysroot,
    trailer: &IdTrailer,
    kernel_text: Option<u64>,
) -> Result<()> {
    let dwarf = cfg.dwarf_stack.is_some();
    s.buf.clear();
    if let Some(text) = kernel_text {
        synth::kernel_mmap(&mut s.buf, trailer, text);
        for m in synth::kernel_modules(root) {
            synth::module_mmap(&mut s.buf, trailer, &m);
        }
    }
    match &cfg.target {
        Target::Pids(pids) => {
            for &pid in pids {
                synth::synthesize_process_with(&mut s.buf, root, trailer, pid, dwarf);
            }
        }
        Target::Tids(tids) => {
            for &tid in tids {
                let tgid = tgid_of(root, tid).unwrap_or(tid);
                synth::synthesize_process_with(&mut s.buf, root, trailer, tgid, dwarf);
            }
        }
        Target::SystemWide(_) => {
            for pid in synth::all_processes(root) {
                synth::synthesize_process_with(&mut s.buf, root, trailer, pid, dwarf);
            }
        }
        Target::Command => {}
    }
    if !s.buf.is_empty() {
        synth::finished_round(&mut s.buf);
        s.write_buf()?;
        let buf = std::mem::take(&mut s.buf);
        s.tally.scan(&buf);
        s.buf = buf;
    }
    Ok(())
}

/// What one poll found ready.
#[derive(Debug, Default)]
struct Ready {
    /// Rings with data.
    rings: usize,
    /// Rings whose events hung up (their task exited).
    hung: Vec<usize>,
    /// A signal is waiting on the signalfd.
    signal: bool,
    /// The launched command exited.
    child: bool,
    /// Indices of the attached processes (`-p`) that exited.
    targets: Vec<usize>,
}

/// Waits (at most 500 ms) for data in a ring, a signal, the command's exit or an attached
/// process's exit.
fn wait_ready(
    s: &Session<'_>,
    signals: &SignalWatch,
    child: Option<&GatedChild>,
    target_pidfds: &[OwnedFd],
) -> Result<Ready> {
    let rings = s.sampler.poll_fds();
    let mut fds: Vec<PollFd<'_>> = rings
        .iter()
        .map(|(_, fd)| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    fds.push(PollFd::new(signals.fd(), PollFlags::POLLIN));
    if let Some(c) = child {
        fds.push(PollFd::new(c.pidfd(), PollFlags::POLLIN));
    }
    let target_base = fds.len();
    for fd in target_pidfds {
        fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
    }
    match poll(&mut fds, PollTimeout::from(500u16)) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(e) => return Err(Error::Os(format!("poll: {e}"))),
    }
    let ev = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
    let mut ready = Ready::default();
    for (i, (ring, _)) in rings.iter().enumerate() {
        let r = ev(i);
        if r.contains(PollFlags::POLLIN) {
            ready.rings += 1;
        }
        if r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            ready.hung.push(*ring);
        }
    }
    ready.signal = !ev(rings.len()).is_empty();
    ready.child = child.is_some() && !ev(rings.len() + 1).is_empty();
    ready.targets = (0..target_pidfds.len())
        .filter(|k| !ev(target_base + k).is_empty())
        .collect();
    Ok(ready)
}

/// Drains the rings into the file until the command exits, a signal arrives, or every
/// attached process or thread is gone; returns the command's exit status when it was seen.
fn record_loop(
    s: &mut Session<'_>,
    signals: &mut SignalWatch,
    mut child: Option<&mut GatedChild>,
    mut target_pidfds: Vec<OwnedFd>,
    attach: &Attach,
    notify: &mut dyn FnMut(Notice),
) -> Result<Option<ExitStatus>> {
    let mut exit: Option<ExitStatus> = None;
    let mut stop = false;
    let mut last_progress = Instant::now();
    while !stop {
        let ready = wait_ready(s, signals, child.as_deref(), &target_pidfds)?;
        for r in &ready.hung {
            s.sampler.mark_hung_up(*r);
        }
        if ready.rings > 0 {
            s.progress.wakeups += 1;
        }
        s.pass()?;
        if ready.signal {
            for sig in signals.drain() {
                if let Some(c) = child.as_deref() {
                    if sig.from_process {
                        c.kill(sig.signo);
                    }
                }
                stop = true;
            }
        }
        if ready.child {
            if let Some(c) = child.as_deref_mut() {
                exit = Some(c.wait()?.0);
            }
            stop = true;
        }
        if !ready.targets.is_empty() {
            // A pidfd stays readable once its process has exited: stop polling it.
            for k in ready.targets.into_iter().rev() {
                target_pidfds.remove(k);
            }
            if target_pidfds.is_empty() && child.is_none() {
                stop = true;
            }
        }
        if matches!(attach, Attach::Tasks(_)) && child.is_none() && s.sampler.all_hung_up() {
            stop = true;
        }
        if last_progress.elapsed() >= Duration::from_millis(100) || stop {
            notify(Notice::Progress(s.progress));
            last_progress = Instant::now();
        }
    }
    Ok(exit)
}

fn attach_len(a: &Attach) -> usize {
    match a {
        Attach::Tasks(t) => t.len().max(1),
        Attach::Cpus => 1,
    }
}

fn tgid_of(root: &Sysroot, tid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(root.path(format!("/proc/{tid}/status"))).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn feature_sections(
    cfg: &RecordConfig,
    root: &Sysroot,
    s: &Session<'_>,
    kernel_mapped: bool,
    warnings: &mut Vec<String>,
) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(u) = nix::sys::utsname::uname() {
        out.push((
            feat::HOSTNAME,
            feat::string(&u.nodename().to_string_lossy()),
        ));
        out.push((
            feat::OSRELEASE,
            feat::string(&u.release().to_string_lossy()),
        ));
        out.push((feat::ARCH, feat::string(&u.machine().to_string_lossy())));
    }
    out.push((
        feat::VERSION,
        feat::string(concat!("ruperf ", env!("CARGO_PKG_VERSION"))),
    ));
    let online = online_cpus(root);
    let avail = cpu_count(root, "/sys/devices/system/cpu/present")
        .unwrap_or_else(|| online.last().map_or(1, |c| c + 1));
    out.push((feat::NRCPUS, feat::nrcpus(avail, online.len() as u32)));
    out.push((feat::CMDLINE, feat::cmdline(&cfg.cmdline)));
    let attrs: Vec<_> = s
        .sampler
        .events()
        .iter()
        .map(|e| (sys::attr_file_bytes(&e.attr), e))
        .collect();
    let descs: Vec<EventDesc<'_>> = attrs
        .iter()
        .map(|(a, e)| EventDesc {
            attr: a,
            name: &e.name,
            ids: &e.ids,
        })
        .collect();
    out.push((feat::EVENT_DESC, feat::event_desc(&descs)));
    if let Some(td) = options::tracing_data(root, s.sampler.events()) {
        out.push((feat::TRACING_DATA, td));
    }

    let mut ids = Vec::new();
    let vdso = buildid_cache::vdso();
    if kernel_mapped && s.tally.kernel_hit {
        if let Some(id) = buildid::kernel_build_id(root) {
            ids.push(BuildIdEntry {
                kernel: true,
                id,
                path: "[kernel.kallsyms]".into(),
            });
        }
    }
    for dso in s.tally.hit_dsos() {
        if dso == "[vdso]" {
            if let Some(v) = vdso.as_ref() {
                ids.push(BuildIdEntry {
                    kernel: false,
                    id: v.id.clone(),
                    path: dso.to_string(),
                });
            }
            continue;
        }
        if let Ok(Some(id)) = buildid::elf_build_id(Path::new(dso)) {
            ids.push(BuildIdEntry {
                kernel: false,
                id,
                path: dso.to_string(),
            });
        }
    }
    if cfg.build_ids == Policy::Cache {
        let list: Vec<(String, Vec<u8>)> =
            ids.iter().map(|e| (e.path.clone(), e.id.clone())).collect();
        let kallsyms = root.path("/proc/kallsyms");
        warnings.extend(buildid_cache::add_recorded(
            &list,
            vdso.as_ref(),
            Some(&kallsyms),
        ));
    }
    if !ids.is_empty() && cfg.build_ids != Policy::Omit {
        out.push((feat::BUILD_ID, feat::build_ids(&ids)));
    }
    if let Some(first) = s.tally.first_time {
        out.push((
            feat::SAMPLE_TIME,
            feat::sample_time(first, s.tally.last_time),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pid: u32, ip: u64, misc: u16, chain: &[u64]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&9u32.to_ne_bytes());
        r.extend_from_slice(&misc.to_ne_bytes());
        r.extend_from_slice(&0u16.to_ne_bytes());
        for w in [7u64, ip] {
            r.extend_from_slice(&w.to_ne_bytes());
        }
        r.extend_from_slice(&pid.to_ne_bytes());
        r.extend_from_slice(&pid.to_ne_bytes());
        for w in [1000u64, 0, 1] {
            r.extend_from_slice(&w.to_ne_bytes());
        }
        r.extend_from_slice(&(chain.len() as u64).to_ne_bytes());
        for w in chain {
            r.extend_from_slice(&w.to_ne_bytes());
        }
        let n = r.len() as u16;
        r[6..8].copy_from_slice(&n.to_ne_bytes());
        r
    }

    #[test]
    fn tally_finds_hit_dsos_through_forks_and_chains() {
        let t = IdTrailer {
            sample_type: sample_type(true),
            id: 7,
        };
        let mut buf = Vec::new();
        let m = |start: u64, path: &str| synth::MapLine {
            start,
            end: start + 0x10000,
            pgoff: 0,
            maj: 0,
            min: 0,
            ino: 1,
            prot: 5,
            flags: 2,
            path: path.into(),
        };
        synth::mmap2(&mut buf, &t, 100, &m(0x400000, "/bin/app"));
        synth::mmap2(&mut buf, &t, 100, &m(0x7000000, "/lib/libc.so"));
        synth::mmap2(&mut buf, &t, 100, &m(0x9000000, "/lib/unused.so"));
        synth::fork(&mut buf, &t, 200, 100, 200, 100);
        // pid 200 samples in app, with libc in its call chain and a kernel part
        buf.extend(sample(
            200,
            0x400100,
            2,
            &[(-512i64) as u64, 0x400100, 0x7000010],
        ));
        buf.extend(sample(
            100,
            0xffffffff81000100,
            1,
            &[(-128i64) as u64, 0xffffffff81000100],
        ));
        let mut tally = Tally {
            callchain: true,
            ..Tally::default()
        };
        tally.scan(&buf);
        assert_eq!(tally.samples, 2);
        assert!(tally.kernel_hit);
        let mut hit = tally.hit_dsos();
        hit.sort();
        assert_eq!(hit, vec!["/bin/app", "/lib/libc.so"]);
        assert_eq!(tally.first_time, Some(1000));
    }
}
