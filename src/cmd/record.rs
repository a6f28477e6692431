//! `ruperf record`: sample a command, processes or CPUs into perf.data.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::{parse_ids, reject_unknown_option, Globals};
use crate::app::record::energy::EnergyPlan;
use crate::app::record::{self, Notice, Period, RecordConfig, Target};
use crate::counters::event;
use crate::counters::sampler::SampleEvent;
use crate::energy::{self, EnergySelector};
use crate::error::{Error, Result};
use crate::perfdata::buildid_cache::Policy;
use crate::sysroot::Sysroot;

/// What `ruperf record` does, in one line: its help's first line and its entry in `ruperf --help`.
pub(crate) const ABOUT: &str =
    "Sample a command, processes or CPUs into perf.data (readable by perf report)";

/// Arguments of `ruperf record`.
#[derive(Debug, Args)]
#[command(
    about = ABOUT,
    after_help = "Examples:\n  ruperf record -g ./program args\n  ruperf record -F 999 -p 1234 -- sleep 10\n  ruperf record -a -o sys.data -- sleep 5"
)]
pub struct RecordArgs {
    /// Event to sample (repeatable or comma-separated); default: cycles, or cpu-clock where
    /// the machine has no cycles counter
    #[arg(short = 'e', long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Sample this many times per second (`max`: kernel.perf_event_max_sample_rate)
    #[arg(
        short = 'F',
        long = "freq",
        value_name = "HZ",
        conflicts_with = "count"
    )]
    pub freq: Option<String>,
    /// Sample once every PERIOD events instead of at a frequency
    #[arg(short = 'c', long = "count", value_name = "PERIOD")]
    pub count: Option<u64>,
    /// Record call chains (frame pointers)
    #[arg(short = 'g')]
    pub callchain: bool,
    /// Record call chains with this method: `fp` (frame pointers) or `dwarf[,SIZE]` (user
    /// registers and SIZE bytes of user stack, default 8192, unwound by report)
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
    /// Output file (an existing one is renamed FILE.old); `-` writes perf's pipe format to
    /// standard output [default: perf.data, or `-` when standard output is a pipe]
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not write build ids into the file (nor add the DSOs to the build-id cache)
    #[arg(short = 'B', long = "no-buildid")]
    pub no_buildid: bool,
    /// Do not add the sampled DSOs to the build-id cache (~/.debug, or $PERF_BUILDID_DIR)
    #[arg(short = 'N', long = "no-buildid-cache")]
    pub no_buildid_cache: bool,
    /// Read energy while sampling, for `ruperf report --energy`: `rapl`, `nvml` or `energy`
    /// (both; the default), or any energy name `stat -e` takes. Energy names in `-e` do the same.
    #[arg(long = "energy", value_name = "NAMES", num_args = 0..=1, default_missing_value = "energy", require_equals = true)]
    pub energy: Option<String>,
    /// Milliseconds between energy readings.
    #[arg(long = "energy-interval", value_name = "MS", default_value_t = 10)]
    pub energy_interval: u64,
    /// The options perf users type every day (filters, extra sample fields, delays).
    #[command(flatten)]
    pub more: super::record_opts::MoreRecordArgs,
    /// Command to run and record
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl RecordArgs {
    fn into_config(self, root: &Sysroot) -> Result<RecordConfig> {
        reject_unknown_option("record", &self.command)?;
        let dwarf_stack = match &self.call_graph {
            Some(mode) => parse_call_graph(mode)?,
            None => None,
        };
        let target = if let Some(p) = &self.pid {
            Target::Pids(parse_ids("-p", p)?)
        } else if let Some(t) = &self.tid {
            Target::Tids(parse_ids("-t", t)?)
        } else if let Some(list) = &self.cpu {
            let cpus = crate::counters::pmu::parse_cpu_list(list)
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
            vec!["cycles".to_string()]
        } else {
            self.events.clone()
        };
        let (events, extra, mut energy) =
            super::record_opts::events_and_extra(&list, &self.more, root)?;
        if let Some(names) = &self.energy {
            for name in names.split(',') {
                energy.push(parse_energy_name(name)?);
            }
        }
        if self.energy_interval == 0 || self.energy_interval > 60_000 {
            return Err(Error::Usage(format!(
                "--energy-interval {}: give milliseconds between 1 and 60000",
                self.energy_interval
            )));
        }
        // Only energy in -e: sample perf's default event beside it.
        let (events, default_event) = if events.is_empty() && !energy.is_empty() {
            (parse_sample_events(&["cycles".to_string()], root)?.0, true)
        } else {
            (events, default_event)
        };
        let energy = (!energy.is_empty()).then(|| EnergyPlan {
            selectors: energy,
            interval: std::time::Duration::from_millis(self.energy_interval),
        });
        let explicit = self.count.is_some() || self.freq.is_some();
        let period = match (self.count, &self.freq) {
            (Some(c), _) => Period::Count(c),
            (None, Some(f)) => Period::Frequency(super::record_opts::parse_freq(f, root)?),
            (None, None) => Period::Frequency(4000),
        };
        let extra = record::options::Extra {
            period_explicit: explicit,
            ..extra
        };
        Ok(RecordConfig {
            events,
            default_event,
            period,
            callchain: self.callchain || self.call_graph.is_some(),
            dwarf_stack,
            target,
            command: self.command,
            mmap_pages: self.mmap_pages,
            output: self.output.unwrap_or_else(default_output),
            cmdline: std::env::args_os().collect(),
            energy,
            nvml_lib: None,
            build_ids: if self.no_buildid {
                Policy::Omit
            } else if self.no_buildid_cache {
                Policy::NoCache
            } else {
                Policy::Cache
            },
            extra,
        })
    }
}

/// perf's largest stack dump: `round_down(USHRT_MAX, 8)`.
const MAX_STACK_DUMP: u64 = 65528;

/// Parses `--call-graph MODE`: `fp` gives None, `dwarf[,SIZE]` the stack dump size. As perf,
/// SIZE (decimal, or hex with 0x) is rounded up to a multiple of 8 and must be 8..=65528.
fn parse_call_graph(mode: &str) -> Result<Option<u32>> {
    let (method, size) = match mode.split_once(',') {
        Some((m, s)) => (m, Some(s)),
        None => (mode, None),
    };
    match (method, size) {
        ("fp", None) => Ok(None),
        ("dwarf", None) => Ok(Some(8192)),
        ("dwarf", Some(s)) => {
            let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse::<u64>().ok(),
            };
            match parsed.map(|n| n.div_ceil(8) * 8) {
                Some(n) if n > 0 && n <= MAX_STACK_DUMP => Ok(Some(n as u32)),
                _ => Err(Error::Usage(format!(
                    "--call-graph {mode}: incorrect stack dump size {s} (give 8 to {MAX_STACK_DUMP} bytes, e.g. dwarf,16384)"
                ))),
            }
        }
        _ => Err(Error::Usage(format!(
            "--call-graph {mode}: expected `fp` or `dwarf[,SIZE]` (lbr is not supported)"
        ))),
    }
}

/// perf's default: a pipe stream when standard output is a pipe, else `perf.data`.
fn default_output() -> PathBuf {
    use std::os::unix::fs::FileTypeExt;
    let fifo = std::fs::metadata("/dev/stdout").is_ok_and(|m| m.file_type().is_fifo());
    PathBuf::from(if fifo { "-" } else { "perf.data" })
}

/// Resolves `-e` arguments into sampling events. Energy readings cannot be sampled, and
/// braced groups are sampled as separate events.
/// The sampling events of `-e`, and its energy names.
pub(crate) fn parse_sample_events(
    args: &[String],
    root: &Sysroot,
) -> Result<(Vec<SampleEvent>, Vec<EnergySelector>)> {
    let list = event::parse_event_args(args, root)?;
    let energy = list
        .energy()
        .map(parse_energy_name)
        .collect::<Result<Vec<_>>>()?;
    let events = list
        .counters()
        .map(|spec| SampleEvent {
            name: spec.name.clone(),
            attr: spec.to_attr(),
            cpus: spec.cpus.clone(),
        })
        .collect();
    Ok((events, energy))
}

fn parse_energy_name(name: &str) -> Result<EnergySelector> {
    energy::parse_selector(name).unwrap_or_else(|| {
        Err(Error::Usage(format!(
            "--energy {name}: not an energy name ({})",
            energy::SPELLINGS
        )))
    })
}

pub fn run(args: RecordArgs, g: &Globals) -> Result<i32> {
    let (quiet, verbose) = (args.more.quiet, args.more.verbose);
    let mut cfg = args.into_config(&g.sysroot)?;
    cfg.nvml_lib = g.nvml_lib.clone();
    if verbose > 0 && !quiet {
        super::record_opts::describe(&cfg, &mut std::io::stderr().lock());
    }
    let tty = std::io::stderr().is_terminal() && !quiet;
    let bar = tty.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} recording: {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb
    });
    let mut notify = |n: Notice| match n {
        Notice::Note(_) if quiet => {}
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
    if quiet {
        return Ok(summary.exit_code());
    }
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
    fn events_from_the_grammar() {
        let root = Sysroot::default();
        let (e, energy) =
            parse_sample_events(&["cpu-clock:u,task-clock,rapl".into()], &root).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(energy.len(), 1);
        assert_eq!(e[0].attr.exclude_kernel(), 1);
        assert_eq!(
            e[1].attr.config,
            crate::os::sys::bindings::PERF_COUNT_SW_TASK_CLOCK as u64
        );
        assert!(matches!(
            parse_sample_events(&["no-such-event".into()], &root),
            Err(Error::Event(_))
        ));
        assert!(parse_energy_name("rapl/pkg:0").is_ok());
        assert!(matches!(parse_energy_name("cycles"), Err(Error::Usage(_))));
    }

    #[test]
    fn call_graph_modes_as_perf_parses_them() {
        assert_eq!(parse_call_graph("fp").unwrap(), None);
        assert_eq!(parse_call_graph("dwarf").unwrap(), Some(8192));
        assert_eq!(parse_call_graph("dwarf,16384").unwrap(), Some(16384));
        // perf rounds up to a multiple of 8.
        assert_eq!(parse_call_graph("dwarf,100").unwrap(), Some(104));
        assert_eq!(parse_call_graph("dwarf,0x2000").unwrap(), Some(8192));
        assert_eq!(parse_call_graph("dwarf,65528").unwrap(), Some(65528));
        for bad in [
            "dwarf,0",
            "dwarf,65529",
            "dwarf,abc",
            "dwarf,",
            "lbr",
            "fp,8",
            "x",
        ] {
            assert!(
                matches!(parse_call_graph(bad), Err(Error::Usage(_))),
                "{bad} accepted"
            );
        }
    }
}
