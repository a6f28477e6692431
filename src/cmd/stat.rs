//! `ruperf stat`: count events while a command runs, on pids, or system-wide.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

#[path = "stat_depth.rs"]
mod depth_args;
use depth_args::DepthArgs;

use super::{parse_ids, reject_unknown_option, Globals};
use crate::app::stat::aggr::AggrMode;
use crate::app::stat::options::{split_tools, top_level, ControlFds, Delay, Depth, ToolEvent};
use crate::app::stat::{self, IntervalRow, StatConfig, StatResult};
use crate::counters::event::{parse_event_args, EventList};
use crate::counters::group::OpenOptions;
use crate::counters::pmu;
use crate::energy::{self, RaplSource};
use crate::error::{Error, Result};
use crate::os::{launcher, sys};
use crate::output::stat::{csv::Csv, json::Json, table::Table};
use crate::output::{Sink, StatExporter};
use crate::sysroot::Sysroot;

/// The aggregation flags, of which the last one given wins (as in perf).
pub(crate) const PER_FLAGS: [&str; 7] = [
    "no_aggr",
    "per_thread",
    "per_core",
    "per_socket",
    "per_die",
    "per_node",
    "per_cache",
];

/// perf's `-d`, `-dd` and `-ddd` additions, by level.
const DETAILED: [&str; 3] = [
    "L1-dcache-loads,L1-dcache-load-misses,LLC-loads,LLC-load-misses",
    "L1-icache-loads,L1-icache-load-misses,dTLB-loads,dTLB-load-misses,iTLB-loads,iTLB-load-misses",
    "L1-dcache-prefetches,L1-dcache-prefetch-misses",
];

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
    #[arg(short = 'A', long = "no-aggr", overrides_with_all = PER_FLAGS)]
    pub no_aggr: bool,
    /// Aggregation, timing, run control and format options beyond the basics.
    #[command(flatten)]
    pub more: Box<DepthArgs>,
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
    /// Fleet and CI: --baseline, --fail-above, --gate-events, --confidence, --serve, --format
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
        if self.interval.is_some() && self.repeat != 1 {
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
            Some(online_cpu_list(list, &g.sysroot)?)
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
        self.check_metrics(g, cpus.is_some())?;
        let (mut events, tools) = if self.events.is_empty() {
            // System-wide, perf counts cpu-clock where a task target gets task-clock.
            let default = if cpus.is_some() {
                DEFAULT_EVENTS.replacen("task-clock", "cpu-clock", 1)
            } else {
                DEFAULT_EVENTS.to_string()
            };
            (parse_event_args(&[default], &g.sysroot)?, Vec::new())
        } else {
            parse_with_tools(&self.events, &g.sysroot)?
        };
        for extra in DETAILED.iter().take(self.more.detailed as usize) {
            let more = parse_event_args(&[extra.to_string()], &g.sysroot)?;
            events.entries.extend(more.entries);
        }
        if self.more.all_user || self.more.all_kernel {
            restrict_privilege(&mut events, self.more.all_user);
        }
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
        let out = self.output()?;
        let mut depth = self.depth()?;
        depth.tools = tools;
        depth.filter = self.filter_target(&events)?;
        depth.cgroups = self.cgroups(&mut events, cpus.is_some())?;
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
            depth,
        };
        Ok((cfg, out))
    }
}

impl StatArgs {
    /// The sink (`-o`, `--log-fd`, stderr) and the exporter the format options choose.
    fn output(&self) -> Result<StatOutput> {
        let sink = match (&self.output, self.more.log_fd) {
            (Some(p), _) => Sink::file(p, self.append)?,
            (None, Some(fd)) => Sink::fd(fd)?,
            (None, None) => Sink::stderr(),
        };
        let exporter: Box<dyn StatExporter> = if self.more.quiet {
            Box::new(Quiet)
        } else if self.more.metric_only {
            use crate::output::stat::metric_only::{Format, MetricOnly};
            Box::new(MetricOnly::new(match (&self.field_separator, self.json) {
                (_, true) => Format::Json,
                (Some(sep), _) => Format::Csv(sep.clone()),
                (None, false) => Format::Table,
            }))
        } else if self.json {
            Box::new(Json::new().with_summary(self.more.summary))
        } else if let Some(sep) = &self.field_separator {
            Box::new(Csv::new(sep).with_summary(self.more.summary))
        } else {
            let mut t = Table::new(self.verbose);
            t.interval_clear = self.more.interval_clear;
            t.summary = self.more.summary;
            // perf groups digits by default, after the locale (none in C/POSIX).
            let grouping = (!self.more.no_big_num)
                .then(sys::numeric_grouping)
                .flatten();
            Box::new(t.grouped(grouping))
        };
        Ok(StatOutput { sink, exporter })
    }
}

/// Parses `-e` lists that may hold tool events (`duration_time`, `user_time`,
/// `system_time`), recording where each stands among the counter events.
fn parse_with_tools(
    args: &[String],
    root: &Sysroot,
) -> Result<(EventList, Vec<(usize, ToolEvent)>)> {
    let (runs, tools) = split_tools(args);
    let termed = runs
        .iter()
        .flat_map(|r| top_level(r))
        .any(|t| t.contains('/'));
    if tools.is_empty() && !termed {
        return Ok((parse_event_args(args, root)?, tools));
    }
    let mut list = EventList::default();
    let mut before = Vec::with_capacity(runs.len());
    for run in &runs {
        before.push(list.counters().count());
        list.entries.extend(parse_run(run, root)?.entries);
    }
    let tools = tools.into_iter().map(|(r, t)| (before[r], t)).collect();
    Ok((list, tools))
}

/// Parses one run of ordinary events, where named events may carry perf's `/terms/`
/// (`cpu-clock/period=1000/`, `task-clock/name=tc/u`).
fn parse_run(run: &str, root: &Sysroot) -> Result<EventList> {
    let mut list = EventList::default();
    let mut plain: Vec<&str> = Vec::new();
    let flush = |plain: &mut Vec<&str>, list: &mut EventList| -> Result<()> {
        if !plain.is_empty() {
            let l = parse_event_args(&[plain.join(",")], root)?;
            list.entries.extend(l.entries);
            plain.clear();
        }
        Ok(())
    };
    for tok in top_level(run) {
        match with_terms(tok, root)? {
            Some((base, name)) => {
                flush(&mut plain, &mut list)?;
                let mut l = parse_event_args(&[base], root)?;
                for e in &mut l.entries {
                    if let crate::counters::event::Entry::Group { events, .. } = e {
                        for spec in events {
                            spec.name = name.clone();
                        }
                    }
                }
                list.entries.extend(l.entries);
            }
            None if !tok.trim().is_empty() => plain.push(tok),
            None => {}
        }
    }
    flush(&mut plain, &mut list)?;
    Ok(list)
}

/// `NAME/terms/MODS` on an event that is not a PMU: the event to parse (`NAME:MODS`) and the
/// name perf prints (the spelling given, or `name=`). Terms that would change what a counting
/// event counts are refused rather than ignored.
fn with_terms(tok: &str, root: &Sysroot) -> Result<Option<(String, String)>> {
    let tok = tok.trim();
    let Some((prefix, rest)) = tok.split_once('/') else {
        return Ok(None);
    };
    let is_pmu = root
        .path(format!("/sys/bus/event_source/devices/{prefix}"))
        .exists();
    if prefix.is_empty() || prefix.contains([':', '{', '}']) || is_pmu {
        return Ok(None);
    }
    let Some((terms, mods)) = rest.rsplit_once('/') else {
        return Ok(None);
    };
    let mut name = tok.to_string();
    for t in terms.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (k, v) = t.split_once('=').unwrap_or((t, ""));
        match k {
            "name" if !v.is_empty() => name = v.to_string(),
            // Sampling settings: no effect on a count.
            "period" | "freq" => {}
            _ => {
                return Err(Error::Event(format!(
                    "unknown term '{k}' in '{tok}' (terms on a named event in stat: name=NAME, period=N, freq=N)"
                )))
            }
        }
    }
    let base = if mods.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}:{mods}")
    };
    Ok(Some((base, name)))
}

impl StatArgs {
    /// The aggregation, timing and run-control options.
    fn depth(&self) -> Result<Depth> {
        let aggr = if self.more.per_thread {
            Some(AggrMode::Thread)
        } else if self.more.per_core {
            Some(AggrMode::Core)
        } else if self.more.per_socket {
            Some(AggrMode::Socket)
        } else if self.more.per_die {
            Some(AggrMode::Die)
        } else if self.more.per_node {
            Some(AggrMode::Node)
        } else if let Some(level) = &self.more.per_cache {
            let l = (!level.is_empty())
                .then(|| AggrMode::cache_level(level))
                .transpose()?;
            Some(AggrMode::Cache(l))
        } else {
            None
        };
        let delay = match self.more.delay {
            None | Some(0) => None,
            Some(-1) => Some(Delay::Disabled),
            Some(ms) if ms > 0 => Some(Delay::After(Duration::from_millis(ms as u64))),
            Some(ms) => {
                return Err(Error::Usage(format!(
                    "-D {ms}: give a delay in ms, or -1 to start disabled"
                )))
            }
        };
        if self.more.timeout.is_some_and(|t| t < 10) {
            return Err(Error::Usage(
                "--timeout: give at least 10 ms, as perf requires".into(),
            ));
        }
        if self.more.timeout.is_some() && self.interval.is_some() {
            return Err(Error::Usage(
                "--timeout and -I cannot be combined (use --interval-count to stop after N rows)"
                    .into(),
            ));
        }
        if delay == Some(Delay::Disabled) && self.more.control.is_none() {
            return Err(Error::Usage(
                "-D -1 starts with counters disabled: add --control fd:CTL to enable them".into(),
            ));
        }
        Ok(Depth {
            aggr,
            delay,
            timeout: self.more.timeout.map(Duration::from_millis),
            forever: self.repeat == 0,
            null: self.more.null,
            sync: self.more.sync,
            pre: self.more.pre.clone(),
            post: self.more.post.clone(),
            control: self
                .more
                .control
                .as_deref()
                .map(parse_control)
                .transpose()?,
            tools: Vec::new(),
            cgroups: Vec::new(),
            filter: None,
        })
    }

    /// `--filter` applies to the last event given, which must be a tracepoint (perf).
    fn filter_target(&self, events: &EventList) -> Result<Option<(usize, String)>> {
        let Some(f) = &self.more.filter else {
            return Ok(None);
        };
        let n = events.counters().count();
        match events.counters().last() {
            Some(e) if e.class == crate::counters::event::EventClass::Tracepoint => {
                Ok(Some((n - 1, f.clone())))
            }
            _ => Err(Error::Usage(
                "--filter option should follow a -e tracepoint option (e.g. -e syscalls:sys_enter_write --filter 'fd == 1')".into(),
            )),
        }
    }

    /// `-G NAMES` (one per event in order; a single name applies to every event; an empty
    /// name counts everywhere) or `--for-each-cgroup NAMES` (every event once per cgroup):
    /// the cgroup of each counter event, expanding the list for the latter.
    fn cgroups(&self, events: &mut EventList, system_wide: bool) -> Result<Vec<Option<String>>> {
        let (flag, list) = match (&self.more.cgroup, &self.more.for_each_cgroup) {
            (Some(g), None) => ("-G", g),
            (None, Some(f)) => ("--for-each-cgroup", f),
            (None, None) => return Ok(Vec::new()),
            (Some(_), Some(_)) => {
                return Err(Error::Usage(
                    "-G and --for-each-cgroup cannot be combined: choose one".into(),
                ))
            }
        };
        if !system_wide {
            return Err(Error::Usage(format!(
                "{flag}: both cgroup and no-aggregation modes only available in system-wide mode (add -a or -C CPUS)"
            )));
        }
        let names: Vec<Option<String>> = list
            .split(',')
            .map(|n| (!n.is_empty()).then(|| n.to_string()))
            .collect();
        let n = events.counters().count();
        if flag == "-G" {
            if names.len() == 1 {
                return Ok(vec![names[0].clone(); n]);
            }
            if names.len() > n {
                return Err(Error::Usage(format!(
                    "-G {list}: {} cgroups for {n} events; give one cgroup per event, or one for all",
                    names.len()
                )));
            }
            return Ok(names);
        }
        let groups: Vec<_> = events
            .entries
            .iter()
            .filter(|e| matches!(e, crate::counters::event::Entry::Group { .. }))
            .cloned()
            .collect();
        let others: Vec<_> = events
            .entries
            .iter()
            .filter(|e| !matches!(e, crate::counters::event::Entry::Group { .. }))
            .cloned()
            .collect();
        events.entries = others;
        let mut out = Vec::new();
        for name in &names {
            events.entries.extend(groups.iter().cloned());
            out.extend(std::iter::repeat_n(name.clone(), n));
        }
        Ok(out)
    }
}

/// `--all-user` / `--all-kernel`: every event counts one side only, names unchanged (perf).
fn restrict_privilege(events: &mut EventList, user: bool) {
    for e in &mut events.entries {
        if let crate::counters::event::Entry::Group { events, .. } = e {
            for spec in events {
                spec.exclude_kernel = user;
                spec.exclude_hv = user;
                spec.exclude_user = !user;
                spec.explicit_privilege = true;
            }
        }
    }
}

impl StatArgs {
    /// `-M` and `--topdown` need perf's per-model metric tables and a hardware PMU: say in one
    /// line what is missing here.
    fn check_metrics(&self, g: &Globals, system_wide: bool) -> Result<()> {
        if self.more.metrics.is_none() && !self.more.topdown {
            // Nothing to check: the default path reads nothing more.
            return Ok(());
        }
        let pmu = crate::counters::topology::hardware_pmu_present(&g.sysroot);
        let missing = if pmu {
            "ruperf has no per-CPU-model metric tables (perf's pmu-events) yet"
        } else {
            "no hardware PMU is present here (cycles is <not supported>)"
        };
        if let Some(m) = &self.more.metrics {
            return Err(Error::Unavailable(format!(
                "-M {m}: metric '{m}' cannot be measured: {missing}; the derived metrics after '#' (CPUs utilized, IPC, miss rates) need no -M"
            )));
        }
        if self.more.topdown {
            if !system_wide {
                return Err(Error::Usage(
                    "--topdown: top down event configuration requires system-wide mode (-a)".into(),
                ));
            }
            return Err(Error::Unavailable(format!(
                "--topdown cannot be measured: {missing}"
            )));
        }
        Ok(())
    }
}

/// Parses `--control fd:CTL[,ACK]` or `--control fifo:CTL[,ACK]`.
fn parse_control(text: &str) -> Result<ControlFds> {
    let bad = || {
        Error::Usage(format!(
            "--control '{text}': expected fd:CTL[,ACK] (descriptor numbers, e.g. fd:3,4) or fifo:CTL[,ACK] (paths)"
        ))
    };
    if let Some(rest) = text.strip_prefix("fifo:") {
        let mut it = rest.split(',');
        let ctl = it.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
        let ack = it.next().filter(|p| !p.is_empty()).map(PathBuf::from);
        if it.next().is_some() {
            return Err(bad());
        }
        return Ok(ControlFds::Fifo {
            ctl: PathBuf::from(ctl),
            ack,
        });
    }
    let rest = text.strip_prefix("fd:").ok_or_else(bad)?;
    let mut it = rest.split(',');
    let ctl = it.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let ack = it
        .next()
        .map(|n| n.parse().map_err(|_| bad()))
        .transpose()?;
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(ControlFds::Fd { ctl, ack })
}

/// `--quiet`: prints nothing.
struct Quiet;

impl StatExporter for Quiet {
    fn interval(&mut self, _: &IntervalRow, _: &mut dyn std::io::Write) -> std::io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _: &StatResult, _: &mut dyn std::io::Write) -> std::io::Result<()> {
        Ok(())
    }
}

/// `-C LIST` as a list of online CPUs; a CPU that is not online is a usage error.
fn online_cpu_list(list: &str, root: &crate::sysroot::Sysroot) -> Result<Vec<u32>> {
    let online = pmu::online_cpus(root);
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
    Ok(cpus)
}

/// Where and how stat results are written.
pub struct StatOutput {
    sink: Sink,
    exporter: Box<dyn StatExporter>,
}

/// The longest an interval row waits in ruperf's buffer while later rows keep coming.
const ROW_BATCH: Duration = Duration::from_millis(100);

/// Runs `ruperf stat`.
pub fn run(mut args: StatArgs, g: &Globals) -> Result<i32> {
    let mut fleet = super::stat_fleet::FleetPlan::new(&mut args)?;
    let (mut cfg, mut out) = args.into_config(g)?;
    fleet.adjust(&mut cfg);
    let mut write_err: Option<Error> = None;
    let result = {
        let StatOutput { sink, exporter } = &mut out;
        let sink = std::cell::RefCell::new(sink);
        let exporter = std::cell::RefCell::new(exporter);
        let write_err = std::cell::RefCell::new(&mut write_err);
        stat::run_each(
            &cfg,
            &mut |row| {
                fleet.on_interval(row);
                if write_err.borrow().is_none() && fleet.prints_rows() {
                    // Rows are written as they come, but at most once per ROW_BATCH: at `-I 1`
                    // that is one write per 100 rows instead of one each.
                    let r = sink
                        .borrow_mut()
                        .write_batched(|w| exporter.borrow_mut().interval(row, w), ROW_BATCH);
                    if let Err(e) = r {
                        **write_err.borrow_mut() = Some(e);
                    }
                }
            },
            // -r 0: each run is printed as it ends.
            &mut |res| {
                if write_err.borrow().is_none() {
                    let r = sink
                        .borrow_mut()
                        .write_with(|w| exporter.borrow_mut().finish(res, w));
                    if let Err(e) = r {
                        **write_err.borrow_mut() = Some(e);
                    }
                }
            },
        )?
    };
    if let Some(e) = write_err {
        return Err(e);
    }
    let StatOutput { sink, exporter } = &mut out;
    sink.write_with(|w| exporter.finish(&result, w))?;
    let gate = fleet.finish(&result, g, sink)?;
    Ok(gate.unwrap_or_else(|| result.exit_code()))
}
