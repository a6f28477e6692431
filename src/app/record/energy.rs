//! Energy readings taken while `record` samples (`record --energy`), for `report --energy`.
//!
//! A thread reads every selected energy domain at a fixed cadence (default 10 ms) from absolute
//! deadlines, stamping each reading with CLOCK_MONOTONIC, the clock the sampling events are
//! told to use (`use_clockid`), so that readings and samples share one time line. The readings
//! become the recording's [`crate::perfdata::energy`] feature section.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::energy::{EnergyReport, EnergySelector, EnergySession};
use crate::error::{Error, Result};
use crate::perfdata::energy::{EnergyTrace, TraceDomain};
use crate::sysroot::Sysroot;

/// The default time between readings.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(10);

/// What to measure and how often.
#[derive(Debug, Clone)]
pub struct EnergyPlan {
    /// Energy names from `-e` or `--energy`.
    pub selectors: Vec<EnergySelector>,
    /// Time between readings.
    pub interval: Duration,
}

/// The reading thread; [`EnergyTracker::finish`] stops it and hands back the trace.
pub struct EnergyTracker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<EnergyTrace>>>,
}

/// CLOCK_MONOTONIC now, in ns: the samples' clock.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The package of every CPU, from sysfs topology.
fn cpu_packages(root: &Sysroot) -> Vec<Option<u32>> {
    let cpus = crate::counters::pmu::online_cpus(root);
    let n = cpus.last().map_or(0, |&c| c as usize + 1);
    let mut out = vec![None; n];
    for c in cpus {
        out[c as usize] = root
            .read_trimmed(format!(
                "/sys/devices/system/cpu/cpu{c}/topology/physical_package_id"
            ))
            .ok()
            .and_then(|s| s.parse().ok());
    }
    out
}

fn row_joules(report: &EnergyReport, domains: &[TraceDomain]) -> Vec<f64> {
    domains
        .iter()
        .map(|d| {
            report
                .rows
                .iter()
                .find(|r| r.name == d.name)
                .filter(|r| r.counted)
                .map_or(f64::NAN, |r| r.joules)
        })
        .collect()
}

impl EnergyTracker {
    /// Opens the energy sources (failing with the one-line reason when none is available) and
    /// starts reading.
    pub fn start(
        plan: &EnergyPlan,
        root: &Sysroot,
        nvml_lib: Option<&std::path::Path>,
    ) -> Result<EnergyTracker> {
        let mut session = EnergySession::open(&plan.selectors, root, nvml_lib, None)?;
        let domains: Vec<TraceDomain> = session
            .domains()
            .iter()
            .map(|d| TraceDomain {
                kind: d.kind,
                index: d.index,
                name: d.name.clone(),
            })
            .collect();
        let cpu_package = cpu_packages(root);
        let interval = plan.interval;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        session.start()?;
        let first = monotonic_ns();
        let thread = std::thread::Builder::new()
            .name("ruperf-energy".into())
            .spawn(move || {
                let mut trace = EnergyTrace {
                    joules: vec![vec![0.0; domains.len()]],
                    domains,
                    cpu_package,
                    times: vec![first],
                };
                let begin = Instant::now();
                let mut tick = 1u32;
                loop {
                    let deadline = begin + interval * tick;
                    let now = Instant::now();
                    if deadline > now {
                        std::thread::sleep(deadline - now);
                    }
                    tick = tick.saturating_add(1);
                    let last = stopped.load(Ordering::Acquire);
                    let report = session.interval()?;
                    trace.times.push(monotonic_ns());
                    trace.joules.push(row_joules(&report, &trace.domains));
                    if last {
                        break;
                    }
                }
                let _ = session.finish();
                Ok(trace)
            })
            .map_err(|e| Error::Os(format!("cannot start the energy reader: {e}")))?;
        Ok(EnergyTracker {
            stop,
            thread: Some(thread),
        })
    }

    /// Takes a last reading and returns every reading.
    pub fn finish(mut self) -> Result<EnergyTrace> {
        self.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(Error::Internal(
                "the energy reader stopped unexpectedly".into(),
            )),
        }
    }
}

impl Drop for EnergyTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
