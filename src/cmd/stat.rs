//! `ruperf stat`: count events while a command runs, on pids, or system-wide.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{parse_ids, reject_unknown_option, Globals};
use crate::app::stat::{self, StatConfig};
use crate::counters::event::{parse_event_args, EventList};
use crate::counters::group::OpenOptions;
use crate::counters::pmu;
use crate::energy::{self, RaplSource};
use crate::error::{Error, Result};
use crate::os::launcher;
use crate::output::stat::{csv::Csv, json::Json, table::Table};
use crate::output::{Sink, StatExporter};

/// perf's default event set.
pub const DEFAULT_EVENTS: &str =
    "task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions,branches,branch-misses";

/// What `ruperf stat` does, in one line: its help's first line and its entry in `ruperf --help`.
pub(crate) const ABOUT: &str =
    "Count events (and energy) while a command runs, or on a pid, or system-wide";

/// Arguments of `ruperf stat`.
#[derive(Debug, Args)]
#[command(
    about = ABOUT,
    after_help = "Examples:\n  ruperf stat ./prog                      perf's default events\n  ruperf stat -e task-clock,page-faults -r 5 ./prog\n  ruperf stat -e syscalls:sys_enter_write -x, ./prog\n  ruperf stat -a -I 1000 --interval-count 5\n  ruperf stat -e cycles,rapl ./prog       counters and CPU energy together"
)]
pub struct StatArgs {
    /// Events to count, comma-separated; repeatable (see `ruperf list`)
    #[arg(short = 'e', long = "event", value_name = "EVENTS")]
    pub events: Vec<String>,
    /// Count these existing processes (all their threads)
    #[arg(short = 'p', long = "pid", value_name = "PID[,PID...]")]
    pub pid: Option<String>,
    /// Count these existing threads
    #[arg(short = 't', long = "tid", value_name = "TID[,TID...]")]
    pub tid: Option<String>,
    /// System-wide collection on every online CPU
    #[arg(short = 'a', long = "all-cpus")]
    pub all_cpus: bool,
    /// System-wide collection on these CPUs only, e.g. 0-3,8
    #[arg(short = 'C', long = "cpu", value_name = "LIST")]
    pub cpu: Option<String>,
    /// With -a or -C: one count per CPU instead of the total
    #[arg(short = 'A', long = "no-aggr")]
    pub no_aggr: bool,
    /// Run the command N times and print the mean with its spread
    #[arg(short = 'r', long = "repeat", value_name = "N", default_value_t = 1)]
    pub repeat: u32,
    /// Print counts every MS milliseconds (at least 1)
    #[arg(short = 'I', long = "interval-print", value_name = "MS")]
    pub interval: Option<u64>,
    /// Stop after N interval rows
    #[arg(long = "interval-count", value_name = "N", requires = "interval")]
    pub interval_count: Option<u64>,
    /// CSV output with this field separator
    #[arg(
        short = 'x',
        long = "field-separator",
        value_name = "SEP",
        conflicts_with = "json"
    )]
    pub field_separator: Option<String>,
    /// JSON output, one object per line
    #[arg(short = 'j', long = "json")]
    pub json: bool,
    /// Write the counts to FILE instead of stderr
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Append to the -o file instead of truncating it
    #[arg(long = "append", requires = "output")]
    pub append: bool,
    /// Do not count the command's child processes
    #[arg(short = 'i', long = "no-inherit")]
    pub no_inherit: bool,
    /// Do not scale counts for multiplexing
    #[arg(long = "no-scale")]
    pub no_scale: bool,
    /// Show each event's perf_event_attr and raw counts
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Read RAPL through this interface only: perf (power PMU), powercap or msr
    #[arg(long = "rapl-source", value_name = "SOURCE")]
    pub rapl_source: Option<String>,
    /// Fleet and CI: --baseline, --fail-above, --gate-events, --confidence
    #[command(flatten)]
    pub fleet: super::stat_fleet::FleetArgs,
    /// Command to run and count
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Parses a `-p`/`-t` list and checks that every id exists now.
fn existing_ids(flag: &str, text: &str) -> Result<Vec<i32>> {
    let ids = parse_ids(flag, text)?;
    if let Some(&gone) = ids.iter().find(|&&id| !launcher::process_exists(id)) {
        return Err(Error::NoSuchProcess(gone));
    }
    Ok(ids)
}

impl StatArgs {
    /// Validates the arguments and builds the plain config.
    pub fn into_config(self, g: &Globals) -> Result<(StatConfig, StatOutput)> {
        reject_unknown_option("stat", &self.command)?;
        if self.repeat == 0 {
            return Err(Error::Usage(
                "-r 0: the repeat count must be at least 1".into(),
            ));
        }
        if self.interval == Some(0) {
            return Err(Error::Usage(
                "-I 0: the interval must be at least 1 ms".into(),
            ));
        }
        if self.interval_count == Some(0) {
            return Err(Error::Usage(
                "--interval-count 0: give at least 1 row".into(),
            ));
        }
        if self.interval.is_some() && self.repeat > 1 {
            return Err(Error::Usage(
                "-I and -r cannot be combined: choose interval rows or repeated runs".into(),
            ));
        }
        if self.field_separator.as_deref() == Some("") {
            return Err(Error::Usage(
                "-x needs a non-empty separator, e.g. -x,".into(),
            ));
        }
        let pids = self
            .pid
            .as_deref()
            .map(|p| existing_ids("-p", p))
            .transpose()?
            .unwrap_or_default();
        let tids = self
            .tid
            .as_deref()
            .map(|t| existing_ids("-t", t))
            .transpose()?
            .unwrap_or_default();
        let cpus = if let Some(list) = &self.cpu {
            let online = pmu::online_cpus(&g.sysroot);
            let cpus = pmu::parse_cpu_list(list)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Usage(format!("-C '{list}': not a CPU list (e.g. 0-3,8)")))?;
            if let Some(bad) = cpus.iter().find(|c| !online.contains(c)) {
                return Err(Error::Usage(format!(
                    "-C '{list}': CPU {bad} is not online (online: {})",
                    online
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )));
            }
            Some(cpus)
        } else if self.all_cpus {
            Some(pmu::online_cpus(&g.sysroot))
        } else {
            None
        };
        if (!pids.is_empty() || !tids.is_empty()) && cpus.is_some() {
            return Err(Error::Usage(
                "-p/-t and -a/-C cannot be combined: count tasks or CPUs".into(),
            ));
        }
        if self.command.is_empty() && pids.is_empty() && tids.is_empty() && cpus.is_none() {
            return Err(Error::Usage(
                "no command given: try `ruperf stat -- ./prog args`, or -p PID, -t TID, -a".into(),
            ));
        }
        let events: EventList = if self.events.is_empty() {
            parse_event_args(&[DEFAULT_EVENTS.to_string()], &g.sysroot)?
        } else {
            parse_event_args(&self.events, &g.sysroot)?
        };
        let energy = events
            .energy()
            .map(|name| {
                energy::parse_selector(name).unwrap_or_else(|| {
                    Err(Error::Event(format!(
                        "unknown energy event '{name}' ({})",
                        energy::SPELLINGS
                    )))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rapl_source = self
            .rapl_source
            .as_deref()
            .map(str::parse::<RaplSource>)
            .transpose()?;
        let sink = match &self.output {
            Some(p) => Sink::file(p, self.append)?,
            None => Sink::stderr(),
        };
        let exporter: Box<dyn StatExporter> = if self.json {
            Box::new(Json::new())
        } else if let Some(sep) = &self.field_separator {
            Box::new(Csv::new(sep))
        } else {
            Box::new(Table::new(self.verbose))
        };
        let cfg = StatConfig {
            events,
            command: self.command,
            pids,
            tids,
            cpus,
            per_cpu: self.no_aggr,
            repeat: self.repeat,
            interval: self.interval.map(Duration::from_millis),
            interval_count: self.interval_count,
            open: OpenOptions {
                inherit: !self.no_inherit,
            },
            scale: !self.no_scale,
            sysroot: g.sysroot.clone(),
            energy,
            rapl_source,
            nvml_lib: g.nvml_lib.clone(),
        };
        Ok((cfg, StatOutput { sink, exporter }))
    }
}

/// Where and how stat results are written.
pub struct StatOutput {
    sink: Sink,
    exporter: Box<dyn StatExporter>,
}

/// The longest an interval row waits in ruperf's buffer while later rows keep coming.
const ROW_BATCH: Duration = Duration::from_millis(100);

/// Runs `ruperf stat`.
pub fn run(args: StatArgs, g: &Globals) -> Result<i32> {
    let fleet = args
        .fleet
        .plan(args.repeat, args.interval.is_some(), args.json)?;
    let (cfg, mut out) = args.into_config(g)?;
    let mut write_err: Option<Error> = None;
    let result = {
        let StatOutput { sink, exporter } = &mut out;
        stat::run(&cfg, &mut |row| {
            if write_err.is_none() {
                // Rows are written as they come, but at most once per ROW_BATCH: at `-I 1` that
                // is one write per 100 rows instead of one each.
                if let Err(e) = sink.write_batched(|w| exporter.interval(row, w), ROW_BATCH) {
                    write_err = Some(e);
                }
            }
        })?
    };
    if let Some(e) = write_err {
        return Err(e);
    }
    let StatOutput { sink, exporter } = &mut out;
    sink.write_with(|w| exporter.finish(&result, w))?;
    let gate = fleet.finish(&result, g, sink)?;
    Ok(gate.unwrap_or_else(|| result.exit_code()))
}
