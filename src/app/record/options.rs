//! The `record` options beyond the basics: tracepoint periods and filters, the tracing-data
//! feature, per-event `period=`/`freq=` terms, and the extra sample fields of `-d`, `-T`,
//! `--sample-cpu`, `-i`, `--all-user`/`--all-kernel`.

use std::ffi::CString;
use std::path::Path;

use super::{Period, RecordConfig};
use crate::counters::sampler::{OpenedEvent, SampleEvent, Sampler};
use crate::error::{Error, Result};
use crate::os::sys::{self, bindings as b};
use crate::sysroot::Sysroot;

/// Options applied per event after the common configuration.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// `-F` or `-c` was given: it applies to tracepoints too (as in perf); otherwise
    /// tracepoints record every event (period 1).
    pub period_explicit: bool,
    /// `--filter` texts, by event index.
    pub filters: Vec<(usize, String)>,
    /// `ev/period=N/` or `ev/freq=N/`, by event index.
    pub event_periods: Vec<(usize, Period)>,
    /// `-d`: record data addresses (PERF_SAMPLE_ADDR) and data mappings.
    pub data_addr: bool,
    /// `-i/--no-inherit`: child tasks are not followed.
    pub no_inherit: bool,
    /// `--all-user`: user space only.
    pub all_user: bool,
    /// `--all-kernel`: kernel only.
    pub all_kernel: bool,
    /// `-D`: start sampling this many milliseconds after the command starts.
    pub delay_ms: Option<u64>,
    /// `-s`: per-thread totals (inherit_stat, with times and ids in the read format).
    pub inherit_stat: bool,
}

/// The period the event with this kind is sampled at (before per-event terms).
pub fn event_period(cfg: &RecordConfig, tracepoint: bool) -> Period {
    if tracepoint && !cfg.extra.period_explicit {
        Period::Count(1)
    } else {
        cfg.period
    }
}

/// Per-event attribute changes (event `i` in the opened list).
pub fn apply(extra: &Extra, a: &mut sys::Attr, i: usize) {
    if a.type_ == b::PERF_TYPE_TRACEPOINT {
        a.sample_type |= b::PERF_SAMPLE_RAW as u64;
    }
    if let Some((_, p)) = extra.event_periods.iter().find(|(e, _)| *e == i) {
        match *p {
            Period::Frequency(f) => {
                a.set_freq(1);
                a.__bindgen_anon_1.sample_freq = f;
            }
            Period::Count(c) => {
                a.set_freq(0);
                a.__bindgen_anon_1.sample_period = c;
            }
        }
    }
    if extra.data_addr {
        a.sample_type |= b::PERF_SAMPLE_ADDR as u64;
        if a.mmap() == 1 {
            a.set_mmap_data(1);
        }
    }
    if extra.no_inherit {
        a.set_inherit(0);
    }
    if extra.inherit_stat {
        a.read_format |= (b::PERF_FORMAT_TOTAL_TIME_ENABLED
            | b::PERF_FORMAT_TOTAL_TIME_RUNNING
            | b::PERF_FORMAT_ID) as u64;
        a.set_inherit_stat(1);
    }
    if extra.delay_ms.is_some() {
        // Enabled by hand after the delay instead of at exec.
        a.set_enable_on_exec(0);
    }
    if extra.all_user {
        a.set_exclude_kernel(1);
        a.set_exclude_hv(1);
    }
    if extra.all_kernel {
        a.set_exclude_user(1);
    }
}

/// With `-D`, waits out the delay after the command started (or after attaching), then
/// enables sampling.
pub fn delayed_start(cfg: &RecordConfig, sampler: &Sampler) -> Result<()> {
    let Some(ms) = cfg.extra.delay_ms else {
        return Ok(());
    };
    std::thread::sleep(std::time::Duration::from_millis(ms));
    sampler
        .enable()
        .map_err(|e| Error::Os(format!("cannot enable sampling after -D {ms}: {e}")))
}

/// True when event `i` is the hardware `cycles` event (which perf replaces by cpu-clock
/// where the machine has no cycles counter).
pub fn is_cycles(events: &[SampleEvent], i: usize) -> bool {
    events.get(i).is_some_and(|e| {
        e.attr.type_ == b::PERF_TYPE_HARDWARE && e.attr.config == b::PERF_COUNT_HW_CPU_CYCLES as u64
    })
}

/// Turns a configured `cycles` event into cpu-clock with the same modifiers and sampling
/// settings: `cycles:u` becomes `cpu-clock:u`.
pub fn to_cpu_clock(e: &mut SampleEvent) {
    e.attr.type_ = b::PERF_TYPE_SOFTWARE;
    e.attr.config = b::PERF_COUNT_SW_CPU_CLOCK as u64;
    // Precise sampling means nothing to a software clock, and the kernel refuses it.
    e.attr.set_precise_ip(0);
    e.name = match e.name.split_once(':') {
        Some((_, mods)) => format!("cpu-clock:{mods}"),
        None => "cpu-clock".into(),
    };
    e.cpus = None;
}

/// Sets each `--filter` on every instance of its event; the kernel's refusal names the
/// filter text.
pub fn set_filters(extra: &Extra, sampler: &Sampler) -> Result<()> {
    for (i, text) in &extra.filters {
        let name = sampler
            .events()
            .get(*i)
            .map_or("event", |e| e.name.as_str());
        let c = CString::new(text.as_str())
            .map_err(|_| Error::Usage(format!("--filter '{text}': contains a NUL byte")))?;
        sampler.set_filter(*i, &c).map_err(|e| {
            Error::Usage(format!(
                "--filter '{text}' for {name}: the kernel rejected it ({e}); check the field \
                 names and operators against the event's format file in tracefs \
                 (events/{}/format)",
                name.splitn(3, ':').take(2).collect::<Vec<_>>().join("/")
            ))
        })?;
    }
    Ok(())
}

/// The tracefs directory (parent of `events/`), when mounted.
fn tracing_dir(root: &Sysroot) -> Option<std::path::PathBuf> {
    let events = crate::counters::event::tracefs_events(root).ok()?;
    events.parent().map(Path::to_path_buf)
}

/// (system, name) of a tracepoint event named `sys:name[:modifiers]`.
fn tracepoint_name(e: &OpenedEvent) -> Option<(String, String)> {
    let mut parts = e.name.splitn(3, ':');
    Some((parts.next()?.to_string(), parts.next()?.to_string()))
}

/// HEADER_TRACING_DATA for the recorded tracepoints, or None when there are none.
pub fn tracing_data(root: &Sysroot, events: &[OpenedEvent]) -> Option<Vec<u8>> {
    let tps: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.attr.type_ == b::PERF_TYPE_TRACEPOINT)
        .filter_map(tracepoint_name)
        .collect();
    if tps.is_empty() {
        return None;
    }
    crate::perfdata::tracing::build(&tracing_dir(root)?, &tps).ok()
}

/// Opens the output: perf.data (through `create`, which moves an old file aside) or, for
/// `-o -`, a pipe-mode stream on standard output that starts with the attributes, names and
/// tracing data.
pub fn open_writer(
    cfg: &RecordConfig,
    root: &Sysroot,
    attrs: &[crate::perfdata::writer::FileAttr],
    opened: &[OpenedEvent],
    create: fn(&Path) -> Result<std::fs::File>,
) -> Result<crate::perfdata::writer::Writer> {
    use crate::perfdata::writer::Writer;
    if cfg.output == Path::new("-") {
        let fd = std::io::stdout()
            .as_fd_owned()
            .map_err(|e| Error::io("cannot use standard output for -o -", e))?;
        let names: Vec<&str> = opened.iter().map(|e| e.name.as_str()).collect();
        let td = tracing_data(root, opened);
        let start = crate::perfdata::pipe::header_records(attrs, &names, td.as_deref());
        return Writer::new_pipe(std::fs::File::from(fd), &start)
            .map_err(|e| Error::io("writing the pipe stream to standard output", e));
    }
    let file = create(&cfg.output)?;
    // The file exists: a failure now is a write error (a full disk, /dev/full), exit 74.
    Writer::new(file, attrs).map_err(|e| Error::io(format!("writing {}", cfg.output.display()), e))
}

trait AsFdOwned {
    fn as_fd_owned(&self) -> std::io::Result<std::os::fd::OwnedFd>;
}

impl AsFdOwned for std::io::Stdout {
    fn as_fd_owned(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned()
    }
}
