//! `stat` measurement: counters (and energy) around a command, a pid set or the whole system.
//!
//! This module measures and returns typed results; it never prints. Interval rows are handed
//! to a callback as they are taken so that the caller can stream them.

pub mod aggr;
pub mod baseline;
pub mod options;
mod run;
pub mod serve;

use std::ffi::OsString;
use std::time::Duration;

use serde::Serialize;

use crate::counters::event::{EventClass, EventList};
use crate::counters::group::{OpenOptions, OpenStatus, RawCount, Session, Target};
use crate::counters::pmu;
use crate::energy::{EnergyReport, EnergySelector, EnergySession, RaplSource};
use crate::error::{Error, Result};
use crate::os::launcher::{ChildTimes, ExitStatus, SignalWatch};
use crate::sysroot::Sysroot;
use aggr::{Aggr, AggrId, AggrMode, Unit};
use options::Depth;

/// Everything `stat` needs, free of command-line types.
#[derive(Debug, Clone)]
pub struct StatConfig {
    /// Events to count.
    pub events: EventList,
    /// Command to run (may be empty when a pid/tid/CPU target is given).
    pub command: Vec<OsString>,
    /// Existing processes to attach to (`-p`).
    pub pids: Vec<i32>,
    /// Existing threads to attach to (`-t`).
    pub tids: Vec<i32>,
    /// System-wide on these CPUs (`-a` gives every online CPU, `-C` a list).
    pub cpus: Option<Vec<u32>>,
    /// One row per CPU instead of totals (`-A`; system-wide only).
    pub per_cpu: bool,
    /// Number of runs (`-r`).
    pub repeat: u32,
    /// Interval between rows (`-I`).
    pub interval: Option<Duration>,
    /// Stop after this many interval rows (`--interval-count`).
    pub interval_count: Option<u64>,
    /// Inherit into children and scale for multiplexing.
    pub open: OpenOptions,
    /// Scale multiplexed counts (`--no-scale` clears it).
    pub scale: bool,
    /// Root for kernel interfaces.
    pub sysroot: Sysroot,
    /// Energy domains to measure (`rapl`, `nvml/0`, …), in the order given.
    pub energy: Vec<EnergySelector>,
    /// Force one RAPL interface (`--rapl-source`).
    pub rapl_source: Option<RaplSource>,
    /// NVML library to load instead of the system's.
    pub nvml_lib: Option<std::path::PathBuf>,
    /// Aggregation, timing and run control beyond the basics.
    pub depth: Depth,
}

/// How a row came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Counted (possibly multiplexed).
    Counted,
    /// Enabled but never scheduled on the PMU: `<not counted>`.
    NotCounted,
    /// The machine cannot count it: `<not supported>`.
    NotSupported,
}

/// One counter's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterRow {
    /// The CPU this row counts on alone (`-A`); None for a total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// The unit this row sums (`--per-core`, `--per-thread`, …); None for a total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggr: Option<Aggr>,
    /// The cgroup this row counts in (`-G`, `--for-each-cgroup`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Event name as perf prints it.
    pub name: String,
    /// Event family.
    pub class: EventClass,
    /// Outcome.
    pub status: Status,
    /// The count, scaled for multiplexing unless `--no-scale`, before the sysfs `.scale`.
    pub count: f64,
    /// Raw value and enabled/running times, summed over threads/CPUs.
    pub raw: RawCount,
    /// Percentage of enabled time the event ran.
    pub running_pct: f64,
    /// sysfs `.scale` for PMU events (1 otherwise).
    pub scale: f64,
    /// sysfs `.unit`, if any.
    pub unit: Option<String>,
    /// True for task-clock/cpu-clock (nanosecond counts).
    pub is_clock: bool,
    /// Why it is not supported, or a note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
impl CounterRow {
    /// A counted, unmultiplexed row for tests of the presentation layer.
    pub(crate) fn counted(name: &str, class: EventClass, count: f64, is_clock: bool) -> Self {
        CounterRow {
            cpu: None,
            aggr: None,
            cgroup: None,
            name: name.into(),
            class,
            status: Status::Counted,
            count,
            raw: RawCount {
                value: count as u64,
                enabled: 10,
                running: 10,
            },
            running_pct: 100.0,
            scale: 1.0,
            unit: None,
            is_clock,
            reason: None,
        }
    }
}

/// One complete run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    /// Counters in event-list order.
    pub counters: Vec<CounterRow>,
    /// Wall-clock seconds of the measured window.
    pub elapsed: f64,
    /// CPU time of the command, when ruperf launched one.
    pub times: Option<ChildTimes>,
    /// How the command ended, when ruperf launched one.
    pub exit: Option<ExitStatus>,
    /// Energy over the run, when energy was requested.
    pub energy: Option<EnergyReport>,
}

/// One `-I` row: deltas over the interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalRow {
    /// Seconds since the measurement started, at the end of this interval.
    pub time: f64,
    /// Length of this interval in seconds.
    pub length: f64,
    /// Counter deltas.
    pub counters: Vec<CounterRow>,
    /// Energy over the interval, when energy was requested.
    pub energy: Option<EnergyReport>,
}

/// The whole measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatResult {
    /// What was measured, as perf's header says it: `'cmd args'`, `process id '42'`, …
    pub target: String,
    /// Every run (one unless `-r`).
    pub runs: Vec<RunResult>,
    /// Set when a signal cut the measurement short.
    pub interrupted_by: Option<i32>,
    /// Verbose detail: each event's attr (for `-v`).
    pub attrs: Vec<(String, String)>,
    /// Caveats known when the energy sources were opened.
    pub energy_warnings: Vec<String>,
}

impl StatResult {
    /// The status ruperf should exit with: the command's own, 128+N for a signal.
    pub fn exit_code(&self) -> i32 {
        if let Some(st) = self.runs.last().and_then(|r| r.exit) {
            return st.shell_code();
        }
        // Like perf, which re-raises the signal that ended a system-wide or -p measurement.
        self.interrupted_by.map_or(0, |sig| 128 + sig)
    }
}

/// Mean and the standard error of the mean as a percentage, as perf's `( +- x% )`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Mean over runs.
    pub mean: f64,
    /// Standard error of the mean.
    pub stderr: f64,
    /// stderr / mean × 100.
    pub pct: f64,
}

/// perf's noise figure over a set of values.
pub fn spread(values: &[f64]) -> Spread {
    let n = values.len() as f64;
    if values.is_empty() {
        return Spread {
            mean: 0.0,
            stderr: 0.0,
            pct: 0.0,
        };
    }
    let mean = values.iter().sum::<f64>() / n;
    let stderr = if values.len() < 2 {
        0.0
    } else {
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (var / n).sqrt()
    };
    let pct = if mean != 0.0 {
        100.0 * stderr / mean.abs()
    } else {
        0.0
    };
    Spread { mean, stderr, pct }
}

/// What one reading belongs to: a counter (index into the session), and the CPU (`-A`) or
/// the aggregation unit (index into the units) it was taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    counter: usize,
    cpu: Option<u32>,
    unit: Option<usize>,
}

/// One entry per reading, fixed for a session, so readings taken at different times line up
/// for differences.
pub(super) type Layout = Vec<Slot>;

/// How readings are shaped: totals, per CPU (`-A`, over these CPUs) or per unit.
pub(super) enum Shape<'a> {
    Total,
    PerCpu(&'a [u32]),
    Units(AggrMode, &'a [Unit]),
}

/// Reads the session in the shape the output wants (a counter the machine lacks gets a row
/// on each CPU or unit).
pub(super) fn read_counts(session: &Session, shape: &Shape<'_>) -> Result<(Layout, Vec<RawCount>)> {
    let slot = |counter, cpu, unit| Slot { counter, cpu, unit };
    match shape {
        Shape::Total => {
            let counts = session.read()?;
            Ok((
                (0..counts.len()).map(|i| slot(i, None, None)).collect(),
                counts,
            ))
        }
        Shape::PerCpu(cpus) => {
            let mut layout = Vec::new();
            let mut counts = Vec::new();
            for (i, (c, each)) in session
                .counters
                .iter()
                .zip(session.read_per_cpu()?)
                .enumerate()
            {
                if matches!(c.status, OpenStatus::Open) {
                    for (cpu, r) in each {
                        layout.push(slot(i, Some(cpu), None));
                        counts.push(r);
                    }
                } else {
                    for &cpu in cpus.iter() {
                        layout.push(slot(i, Some(cpu), None));
                        counts.push(RawCount::default());
                    }
                }
            }
            Ok((layout, counts))
        }
        Shape::Units(mode, units) => {
            let folded = if *mode == AggrMode::Thread {
                aggr::fold_threads(&session.read_per_task()?, units)
            } else {
                aggr::fold_cpus(&session.read_per_cpu()?, units)
            };
            Ok(folded
                .into_iter()
                .map(|(c, u, r)| (slot(c, None, Some(u)), r))
                .unzip())
        }
    }
}

pub(super) fn rows(
    session: &Session,
    layout: &Layout,
    counts: &[RawCount],
    scale: bool,
    units: &[Unit],
    cgroups: &[Option<String>],
) -> Vec<CounterRow> {
    layout
        .iter()
        .zip(counts)
        .map(|(s, raw)| {
            let c = &session.counters[s.counter];
            let unit = s.unit.and_then(|u| units.get(u));
            // perf shows a thread that never ran, or a cgroup none of whose tasks ran, as
            // `<not counted>`.
            let cg = cgroups.get(s.counter).cloned().flatten();
            let idle_thread = (cg.is_some()
                || matches!(unit, Some(u) if matches!(u.id, AggrId::Thread { .. })))
                && raw.enabled == 0;
            let (status, count, reason) = match &c.status {
                OpenStatus::NotSupported(why) => (Status::NotSupported, 0.0, Some(why.clone())),
                OpenStatus::Open if idle_thread => (Status::NotCounted, 0.0, None),
                OpenStatus::Open => {
                    let v = if scale {
                        raw.scaled()
                    } else {
                        (raw.enabled == 0 || raw.running > 0).then_some(raw.value as f64)
                    };
                    match v {
                        Some(v) => (Status::Counted, v, None),
                        None => (Status::NotCounted, 0.0, None),
                    }
                }
            };
            CounterRow {
                cpu: s.cpu,
                aggr: unit.map(|u| Aggr {
                    id: u.id.clone(),
                    nr: u.cpus.len() as u32,
                }),
                cgroup: cg,
                name: c.spec.name.clone(),
                class: c.spec.class.clone(),
                status,
                count,
                raw: *raw,
                running_pct: raw.running_pct(),
                scale: c.spec.scale,
                unit: c.spec.unit.clone(),
                is_clock: c.spec.is_clock(),
                reason,
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub(super) fn interval_row(
    session: &Session,
    layout: &Layout,
    counts: &[RawCount],
    prev: &[RawCount],
    now: f64,
    prev_time: f64,
    scale: bool,
    units: &[Unit],
    cgroups: &[Option<String>],
    energy: Option<&mut EnergySession>,
) -> Result<IntervalRow> {
    let deltas: Vec<RawCount> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| c.since(prev.get(i).copied().unwrap_or_default()))
        .collect();
    Ok(IntervalRow {
        time: now,
        length: now - prev_time,
        counters: rows(session, layout, &deltas, scale, units, cgroups),
        energy: energy.map(EnergySession::interval).transpose()?,
    })
}

/// Describes the measured target as perf's header does.
pub fn describe_target(cfg: &StatConfig) -> String {
    if let Some(cpus) = &cfg.cpus {
        let all = pmu::online_cpus(&cfg.sysroot);
        if *cpus == all {
            return "'system wide'".into();
        }
        return format!(
            "'CPU(s) {}'",
            cpus.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    if !cfg.pids.is_empty() {
        return Target::Pids(cfg.pids.clone()).describe();
    }
    if !cfg.tids.is_empty() {
        return Target::Tids(cfg.tids.clone()).describe();
    }
    format!("'{}'", crate::os::launcher::display_cmd(&cfg.command))
}

/// perf's rules for `--per-*`: CPU units need a system-wide target, threads a `-p`/`-t` one.
fn check_aggr(cfg: &StatConfig) -> Result<()> {
    match cfg.depth.aggr {
        Some(AggrMode::Thread) if cfg.cpus.is_some() => Err(Error::Usage(
            "--per-thread with -a/-C is not supported by ruperf: count threads with -p PID or -t TID"
                .into(),
        )),
        Some(AggrMode::Thread) if cfg.pids.is_empty() && cfg.tids.is_empty() => {
            Err(Error::Usage(
                "--per-thread: the --per-thread option is only available when monitoring via -p or -t (add -p PID or -t TID)"
                    .into(),
            ))
        }
        Some(m) if m != AggrMode::Thread && cfg.cpus.is_none() => Err(Error::Usage(format!(
            "{}: both cgroup and no-aggregation modes only available in system-wide mode (add -a or -C CPUS)",
            m.flag()
        ))),
        _ => Ok(()),
    }
}

/// Runs the measurement. `on_interval` receives each `-I` row as it is taken.
pub fn run(cfg: &StatConfig, on_interval: &mut dyn FnMut(&IntervalRow)) -> Result<StatResult> {
    run_each(cfg, on_interval, &mut |_| {})
}

/// As [`run`]; with `-r 0` (repeat until interrupted) `on_run` receives each run's result as
/// it ends and only the last run is kept, so memory stays bounded however long it runs.
pub fn run_each(
    cfg: &StatConfig,
    on_interval: &mut dyn FnMut(&IntervalRow),
    on_run: &mut dyn FnMut(&StatResult),
) -> Result<StatResult> {
    if cfg.repeat == 0 && !cfg.depth.forever {
        return Err(Error::Usage("-r/--repeat must be at least 1".into()));
    }
    if cfg.per_cpu && cfg.cpus.is_none() {
        return Err(Error::Usage(
            "-A/--no-aggr counts per CPU, which needs a system-wide target: add -a or -C CPUS"
                .into(),
        ));
    }
    check_aggr(cfg)?;
    if cfg.command.is_empty() && cfg.pids.is_empty() && cfg.tids.is_empty() && cfg.cpus.is_none() {
        return Err(Error::Usage(
            "nothing to measure: give a command, -p PID, -t TID, -a or -C CPUS".into(),
        ));
    }
    // Signals are blocked before the energy poller thread starts, so it inherits the mask.
    let mut signals = SignalWatch::new()?;
    let mut energy = if cfg.energy.is_empty() {
        None
    } else {
        Some(EnergySession::open(
            &cfg.energy,
            &cfg.sysroot,
            cfg.nvml_lib.as_deref(),
            cfg.rapl_source,
        )?)
    };
    let mut result = StatResult {
        target: describe_target(cfg),
        runs: Vec::new(),
        interrupted_by: None,
        attrs: Vec::new(),
        energy_warnings: energy
            .as_ref()
            .map(|e| e.warnings().to_vec())
            .unwrap_or_default(),
    };
    let mut i = 0u32;
    while cfg.depth.forever || i < cfg.repeat {
        let run = run::run_once(
            cfg,
            &mut signals,
            energy.as_mut(),
            on_interval,
            &mut result,
            i == 0,
        )?;
        i = i.saturating_add(1);
        if cfg.depth.forever {
            result.runs.clear();
            result.runs.push(run);
            if result.interrupted_by.is_some() {
                break;
            }
            on_run(&result);
            continue;
        }
        result.runs.push(run);
        if result.interrupted_by.is_some() {
            break;
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_standard_error_of_mean() {
        let s = spread(&[10.0, 12.0, 14.0]);
        assert_eq!(s.mean, 12.0);
        // sample variance 4, n 3 → stderr sqrt(4/3)
        assert!((s.stderr - (4.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((s.pct - 100.0 * (4.0f64 / 3.0).sqrt() / 12.0).abs() < 1e-9);
        assert_eq!(spread(&[5.0]).pct, 0.0);
    }
}
