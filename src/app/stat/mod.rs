//! `stat` measurement: counters (and energy) around a command, a pid set or the whole system.
//!
//! This module measures and returns typed results; it never prints. Interval rows are handed
//! to a callback as they are taken so that the caller can stream them.

pub mod baseline;

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use serde::Serialize;

use crate::counters::event::{EventClass, EventList};
use crate::counters::group::{describe_attr, OpenOptions, OpenStatus, RawCount, Session, Target};
use crate::counters::pmu;
use crate::energy::{EnergyReport, EnergySelector, EnergySession, RaplSource};
use crate::error::{Error, Result};
use crate::os::launcher::{ChildTimes, ExitStatus, GatedChild, SignalWatch, Ticker};
use crate::os::sys;
use crate::sysroot::Sysroot;

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

/// Which counter (index into the session) and which CPU each reading belongs to: one entry per
/// counter, or with `-A` one per counter and CPU. Fixed for a session, so readings taken at
/// different times line up for differences.
type Layout = Vec<(usize, Option<u32>)>;

/// Reads the session in the shape the output wants: totals, or per CPU with `per_cpu` (a
/// counter the machine lacks gets a row on each of `cpus`).
fn read_counts(session: &Session, per_cpu: bool, cpus: &[u32]) -> Result<(Layout, Vec<RawCount>)> {
    if !per_cpu {
        let counts = session.read()?;
        return Ok(((0..counts.len()).map(|i| (i, None)).collect(), counts));
    }
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
                layout.push((i, Some(cpu)));
                counts.push(r);
            }
        } else {
            for &cpu in cpus {
                layout.push((i, Some(cpu)));
                counts.push(RawCount::default());
            }
        }
    }
    Ok((layout, counts))
}

fn rows(session: &Session, layout: &Layout, counts: &[RawCount], scale: bool) -> Vec<CounterRow> {
    layout
        .iter()
        .zip(counts)
        .map(|(&(i, cpu), raw)| {
            let c = &session.counters[i];
            let (status, count, reason) = match &c.status {
                OpenStatus::NotSupported(why) => (Status::NotSupported, 0.0, Some(why.clone())),
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
                cpu,
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
fn interval_row(
    session: &Session,
    layout: &Layout,
    counts: &[RawCount],
    prev: &[RawCount],
    now: f64,
    prev_time: f64,
    scale: bool,
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
        counters: rows(session, layout, &deltas, scale),
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

/// Runs the measurement. `on_interval` receives each `-I` row as it is taken.
pub fn run(cfg: &StatConfig, on_interval: &mut dyn FnMut(&IntervalRow)) -> Result<StatResult> {
    if cfg.repeat == 0 {
        return Err(Error::Usage("-r/--repeat must be at least 1".into()));
    }
    if cfg.per_cpu && cfg.cpus.is_none() {
        return Err(Error::Usage(
            "-A/--no-aggr counts per CPU, which needs a system-wide target: add -a or -C CPUS"
                .into(),
        ));
    }
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
    for i in 0..cfg.repeat {
        let run = run_once(
            cfg,
            &mut signals,
            energy.as_mut(),
            on_interval,
            &mut result,
            i == 0,
        )?;
        result.runs.push(run);
        if result.interrupted_by.is_some() {
            break;
        }
    }
    Ok(result)
}

const WAKE_SIGNAL: u64 = 0;
const WAKE_CHILD: u64 = 1;
const WAKE_TICK: u64 = 2;
const WAKE_WATCHED: u64 = 3;

/// What the measurement loop sleeps on: forwarded signals, the child's exit, watched
/// processes' exits and the `-I` ticker. Registered once, so a wake-up is one epoll_wait
/// whatever the number of descriptors.
struct Waiter {
    epoll: Epoll,
}

impl Waiter {
    fn new(
        signals: &SignalWatch,
        child: Option<&GatedChild>,
        watched: &[OwnedFd],
        ticker: Option<&Ticker>,
    ) -> Result<Self> {
        let err = |e: nix::errno::Errno| Error::Os(format!("epoll: {e}"));
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(err)?;
        let level = EpollFlags::EPOLLIN;
        epoll
            .add(signals.fd(), EpollEvent::new(level, WAKE_SIGNAL))
            .map_err(err)?;
        if let Some(c) = child {
            epoll
                .add(c.pidfd(), EpollEvent::new(level, WAKE_CHILD))
                .map_err(err)?;
        }
        for (i, fd) in watched.iter().enumerate() {
            epoll
                .add(fd, EpollEvent::new(level, WAKE_WATCHED + i as u64))
                .map_err(err)?;
        }
        if let Some(t) = ticker {
            epoll
                .add(t.fd(), EpollEvent::new(level, WAKE_TICK))
                .map_err(err)?;
        }
        Ok(Waiter { epoll })
    }
}

fn run_once(
    cfg: &StatConfig,
    signals: &mut SignalWatch,
    mut energy: Option<&mut EnergySession>,
    on_interval: &mut dyn FnMut(&IntervalRow),
    result: &mut StatResult,
    first: bool,
) -> Result<RunResult> {
    // With inheritance (the default) the counters are opened on this thread and the command,
    // started afterwards with posix_spawn, inherits them; without it the command is forked,
    // held at a gate while the counters are opened on its pid, then released.
    let inherited = !cfg.command.is_empty()
        && cfg.open.inherit
        && cfg.cpus.is_none()
        && cfg.pids.is_empty()
        && cfg.tids.is_empty();
    let mut child = if cfg.command.is_empty() || inherited {
        None
    } else {
        Some(GatedChild::spawn(&cfg.command)?)
    };
    let target = if let Some(cpus) = &cfg.cpus {
        Target::Cpus(cpus.clone())
    } else if !cfg.tids.is_empty() {
        Target::Tids(cfg.tids.clone())
    } else if !cfg.pids.is_empty() {
        Target::Pids(cfg.pids.clone())
    } else if inherited {
        Target::Inherited
    } else {
        Target::Child(child.as_ref().map_or(0, GatedChild::pid))
    };
    let session = Session::open(&cfg.events, &target, cfg.open, &cfg.sysroot)?;
    if first {
        result.attrs = session
            .counters
            .iter()
            .map(|c| (c.spec.name.clone(), describe_attr(&c.attr)))
            .collect();
    }
    // Processes whose exit ends the measurement when no command was given.
    let watched: Vec<OwnedFd> = if cfg.command.is_empty() {
        cfg.pids
            .iter()
            .chain(&cfg.tids)
            .map(|&p| sys::pidfd_open(p).map_err(|_| Error::NoSuchProcess(p)))
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    if !matches!(target, Target::Child(_) | Target::Inherited) {
        session.enable()?;
    }
    // Energy is read just before the command is released and just after it exits.
    if let Some(e) = energy.as_deref_mut() {
        e.start()?;
    }
    let start = Instant::now();
    if inherited {
        child = Some(GatedChild::start(&cfg.command)?);
    }
    if let Some(c) = child.as_mut() {
        c.release()?;
    }
    let ticker = cfg.interval.map(Ticker::new).transpose()?;
    let waiter = Waiter::new(signals, child.as_ref(), &watched, ticker.as_ref())?;
    let cpus = cfg.cpus.clone().unwrap_or_default();
    // The previous row's readings; none before the first (counters start at zero).
    let mut prev_counts: Vec<RawCount> = Vec::new();
    let mut prev_time = 0.0;
    let mut rows_done = 0u64;
    let mut alive = watched.len();
    let mut events = [EpollEvent::empty(); 8];
    'outer: loop {
        let n = match waiter.epoll.wait(&mut events, EpollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::Os(format!("epoll_wait: {e}"))),
            Ok(n) => n,
        };
        let mut tick = false;
        let mut child_done = false;
        for ev in &events[..n] {
            match ev.data() {
                WAKE_SIGNAL => {
                    for sig in signals.drain() {
                        result.interrupted_by = Some(sig.signo);
                        match &child {
                            // A terminal's ^C already reached the child (same process group); a
                            // signal sent to ruperf alone is passed on.
                            Some(c) if sig.from_process => c.kill(sig.signo),
                            Some(_) => {}
                            None => break 'outer,
                        }
                    }
                }
                WAKE_CHILD => child_done = true,
                WAKE_TICK => tick = ticker.as_ref().is_some_and(|t| t.take() > 0),
                i => {
                    // A watched process ended: stop watching it (its pidfd stays readable).
                    let fd = &watched[(i - WAKE_WATCHED) as usize];
                    waiter
                        .epoll
                        .delete(fd)
                        .map_err(|e| Error::Os(format!("epoll_ctl: {e}")))?;
                    alive -= 1;
                }
            }
        }
        if child_done || (!watched.is_empty() && alive == 0) {
            break;
        }
        if tick {
            let (layout, counts) = read_counts(&session, cfg.per_cpu, &cpus)?;
            let now = start.elapsed().as_secs_f64();
            let row = interval_row(
                &session,
                &layout,
                &counts,
                &prev_counts,
                now,
                prev_time,
                cfg.scale,
                energy.as_deref_mut(),
            )?;
            on_interval(&row);
            prev_counts = counts;
            prev_time = now;
            rows_done += 1;
            if cfg.interval_count.is_some_and(|n| rows_done >= n) {
                if let Some(c) = &child {
                    c.kill(libc::SIGTERM);
                }
                break;
            }
        }
    }
    let (exit, times) = match child.as_mut() {
        Some(c) => {
            let (st, t) = c.wait()?;
            // System-wide, the command only sets the window: perf shows no user/sys for it.
            (Some(st), cfg.cpus.is_none().then_some(t))
        }
        None => (None, None),
    };
    let elapsed = start.elapsed().as_secs_f64();
    if !matches!(target, Target::Child(_) | Target::Inherited) {
        session.disable()?;
    }
    let (layout, counts) = read_counts(&session, cfg.per_cpu, &cpus)?;
    // A final partial interval, as perf prints when the command ends between ticks.
    if ticker.is_some()
        && cfg.interval_count.is_none_or(|n| rows_done < n)
        && elapsed - prev_time > 1e-4
    {
        let row = interval_row(
            &session,
            &layout,
            &counts,
            &prev_counts,
            elapsed,
            prev_time,
            cfg.scale,
            energy.as_deref_mut(),
        )?;
        on_interval(&row);
    }
    let energy = energy.map(EnergySession::finish).transpose()?;
    Ok(RunResult {
        counters: rows(&session, &layout, &counts, cfg.scale),
        elapsed,
        times,
        exit,
        energy,
    })
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
