//! `ruperf record`: sample a command, processes or CPUs into perf.data.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::Globals;
use crate::counters::sampler::SampleEvent;
use crate::counters::sys;
use crate::error::{Error, Result};
use crate::record::{self, Notice, Period, RecordConfig, Target};
use crate::sysroot::Sysroot;

/// Arguments of `ruperf record`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  ruperf record -g ./program args\n  ruperf record -F 999 -p 1234 -- sleep 10\n  ruperf record -a -o sys.data -- sleep 5"
)]
pub struct RecordArgs {
    /// Event to sample (repeatable or comma-separated); default: cycles, or cpu-clock where
    /// the machine has no cycles counter
    #[arg(short = 'e', long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Sample this many times per second
    #[arg(
        short = 'F',
        long = "freq",
        value_name = "HZ",
        conflicts_with = "count"
    )]
    pub freq: Option<u64>,
    /// Sample once every PERIOD events instead of at a frequency
    #[arg(short = 'c', long = "count", value_name = "PERIOD")]
    pub count: Option<u64>,
    /// Record call chains (frame pointers)
    #[arg(short = 'g')]
    pub callchain: bool,
    /// Record call chains with this method (only `fp`, frame pointers)
    #[arg(long = "call-graph", value_name = "MODE")]
    pub call_graph: Option<String>,
    /// Record these processes (comma-separated pids), including threads they start later
    #[arg(short = 'p', long = "pid", value_name = "PID", conflicts_with_all = ["tid", "all_cpus"])]
    pub pid: Option<String>,
    /// Record these threads only (comma-separated tids)
    #[arg(
        short = 't',
        long = "tid",
        value_name = "TID",
        conflicts_with = "all_cpus"
    )]
    pub tid: Option<String>,
    /// Record every CPU (system-wide)
    #[arg(short = 'a', long = "all-cpus")]
    pub all_cpus: bool,
    /// Record only these CPUs, system-wide (e.g. 0-3,6)
    #[arg(short = 'C', long = "cpu", value_name = "LIST", conflicts_with_all = ["pid", "tid"])]
    pub cpu: Option<String>,
    /// Ring buffer size per CPU in pages (a power of two)
    #[arg(
        short = 'm',
        long = "mmap-pages",
        value_name = "PAGES",
        default_value_t = 128
    )]
    pub mmap_pages: usize,
    /// Output file (an existing one is renamed FILE.old)
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "perf.data"
    )]
    pub output: PathBuf,
    /// Command to run and record
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

fn parse_ids(flag: &str, s: &str) -> Result<Vec<i32>> {
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<i32>()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| {
                    Error::Usage(format!("{flag} {s}: expected comma-separated positive ids"))
                })
        })
        .collect()
}

impl RecordArgs {
    fn into_config(self, root: &Sysroot) -> Result<RecordConfig> {
        if let Some(mode) = &self.call_graph {
            if mode != "fp" {
                return Err(Error::Usage(format!(
                    "--call-graph {mode}: only `fp` (frame pointers) is supported; build the program with -fno-omit-frame-pointer"
                )));
            }
        }
        let target = if let Some(p) = &self.pid {
            Target::Pids(parse_ids("-p", p)?)
        } else if let Some(t) = &self.tid {
            Target::Tids(parse_ids("-t", t)?)
        } else if let Some(list) = &self.cpu {
            let cpus = record::parse_cpu_list(list)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::Usage(format!("-C {list}: expected a CPU list such as 0-3,6"))
                })?;
            Target::SystemWide(Some(cpus))
        } else if self.all_cpus {
            Target::SystemWide(None)
        } else {
            Target::Command
        };
        let default_event = self.events.is_empty();
        let list = if default_event {
            "cycles".to_string()
        } else {
            self.events.join(",")
        };
        let events = parse_sample_events(&list, root)?;
        let period = match (self.count, self.freq) {
            (Some(c), _) => Period::Count(c),
            (None, Some(f)) => Period::Frequency(f),
            (None, None) => Period::Frequency(4000),
        };
        Ok(RecordConfig {
            events,
            default_event,
            period,
            callchain: self.callchain || self.call_graph.is_some(),
            target,
            command: self.command,
            mmap_pages: self.mmap_pages,
            output: self.output,
            cmdline: std::env::args().collect(),
        })
    }
}

// Replace with counters::event::parse_events once the event grammar lands: this local
// parser knows only the events record's tests use (cpu-clock, task-clock, cycles and a few
// other generic names with :u/:k, `PMU/config=N/` and raw `rNNN`).
fn parse_sample_events(list: &str, root: &Sysroot) -> Result<Vec<SampleEvent>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (base, mods) = match item.rsplit_once(':') {
            Some((b, m)) if !b.contains('/') || b.ends_with('/') => (b, m),
            _ => (item, ""),
        };
        let mut attr = sys::new_attr();
        let sw = |c: u32| (sys::bindings::PERF_TYPE_SOFTWARE, c as u64);
        let hw = |c: u32| (sys::bindings::PERF_TYPE_HARDWARE, c as u64);
        use sys::bindings as b;
        let (ty, config) = match base {
            "cpu-clock" => sw(b::PERF_COUNT_SW_CPU_CLOCK),
            "task-clock" => sw(b::PERF_COUNT_SW_TASK_CLOCK),
            "page-faults" | "faults" => sw(b::PERF_COUNT_SW_PAGE_FAULTS),
            "context-switches" | "cs" => sw(b::PERF_COUNT_SW_CONTEXT_SWITCHES),
            "cycles" | "cpu-cycles" => hw(b::PERF_COUNT_HW_CPU_CYCLES),
            "instructions" => hw(b::PERF_COUNT_HW_INSTRUCTIONS),
            _ => {
                if let Some(hex) = base
                    .strip_prefix('r')
                    .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                {
                    (b::PERF_TYPE_RAW, u64::from_str_radix(hex, 16).unwrap_or(0))
                } else if let Some((pmu, terms)) =
                    base.strip_suffix('/').and_then(|s| s.split_once('/'))
                {
                    let ty: u32 = root
                        .read_trimmed(format!("/sys/bus/event_source/devices/{pmu}/type"))
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| {
                            Error::Event(format!(
                                "unknown PMU `{pmu}` in event `{item}` (see `ruperf list`)"
                            ))
                        })?;
                    let config = terms
                        .strip_prefix("config=")
                        .and_then(|v| match v.strip_prefix("0x") {
                            Some(h) => u64::from_str_radix(h, 16).ok(),
                            None => v.parse().ok(),
                        })
                        .ok_or_else(|| {
                            Error::Event(format!(
                                "event `{item}`: expected PMU/config=N/ (see `ruperf list`)"
                            ))
                        })?;
                    (ty, config)
                } else {
                    return Err(Error::Event(format!(
                        "unknown event `{item}` (see `ruperf list` for the events this machine has)"
                    )));
                }
            }
        };
        attr.type_ = ty;
        attr.config = config;
        for m in mods.chars() {
            match m {
                'u' => {
                    attr.set_exclude_kernel(1);
                    attr.set_exclude_hv(1);
                }
                'k' => {
                    attr.set_exclude_user(1);
                    attr.set_exclude_hv(1);
                }
                'p' => attr.set_precise_ip(attr.precise_ip() + 1),
                _ => {
                    return Err(Error::Event(format!(
                        "event `{item}`: unknown modifier `{m}` (use u, k or p)"
                    )))
                }
            }
        }
        out.push(SampleEvent {
            name: item.to_string(),
            attr,
            cpus: None,
        });
    }
    if out.is_empty() {
        return Err(Error::Event("no event given to -e".into()));
    }
    Ok(out)
}

/// Runs `ruperf record`.
pub fn run(args: RecordArgs, g: &Globals) -> Result<i32> {
    let cfg = args.into_config(&g.sysroot)?;
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} recording: {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb
    });
    let mut notify = |n: Notice| match n {
        Notice::Note(m) => match &bar {
            Some(pb) => pb.println(format!("ruperf: {m}")),
            None => {
                let _ = writeln!(std::io::stderr(), "ruperf: {m}");
            }
        },
        Notice::Progress(p) => {
            if let Some(pb) = &bar {
                pb.set_message(format!(
                    "{} samples, {:.1} MB written, {} lost",
                    p.samples,
                    p.bytes as f64 / (1024.0 * 1024.0),
                    p.lost
                ));
                pb.tick();
            }
        }
    };
    let result = record::run(&cfg, &g.sysroot, &mut notify);
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let summary = result?;
    let p = summary.progress;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "[ ruperf record: Woken up {} times to write data ]",
        p.wakeups
    );
    if p.lost > 0 {
        let _ = writeln!(
            err,
            "ruperf: warning: the kernel dropped {} samples because the ring buffers were full: \
             use a larger -m or a lower -F",
            p.lost
        );
    }
    let _ = writeln!(
        err,
        "[ ruperf record: wrote {:.3} MB {} ({} samples, {} lost) ]",
        p.bytes as f64 / (1024.0 * 1024.0),
        summary.output.display(),
        p.samples,
        p.lost
    );
    Ok(summary.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_events() {
        let root = Sysroot::default();
        let e = parse_sample_events("cpu-clock:u,task-clock", &root).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].attr.exclude_kernel(), 1);
        assert_eq!(
            e[1].attr.config,
            sys::bindings::PERF_COUNT_SW_TASK_CLOCK as u64
        );
        assert!(matches!(
            parse_sample_events("no-such-event", &root),
            Err(Error::Event(_))
        ));
        assert!(matches!(
            parse_sample_events("nopmu/config=1/", &root),
            Err(Error::Event(_))
        ));
        let raw = parse_sample_events("r1a2", &root).unwrap();
        assert_eq!(raw[0].attr.config, 0x1a2);
    }
}
