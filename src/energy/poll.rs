//! A background thread that runs a task on a fixed grid of absolute deadlines.
//!
//! The deadlines come from a timerfd armed with `TFD_TIMER_ABSTIME` and an interval: the kernel
//! places expiry k at start + k × period, so a late wake-up never shifts later ones (a sleep
//! loop would drift and fall short of its rate). Expirations that pass while the task runs are
//! counted as missed, not replayed.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::energy::Accumulator;
use crate::error::{Error, Result};

/// The highest power assumed for one domain when sizing the poll period against wrap-around.
pub const ASSUMED_MAX_WATTS: f64 = 1000.0;

/// Poll period for power integration (NVML without an energy counter): 20 Hz.
pub const POWER_POLL: Duration = Duration::from_millis(50);

/// Poll period for counters that never wrap but reset (NVML's total energy, on a driver
/// reload): a reload takes seconds and the counter then climbs from zero at board power, so
/// readings every 100 ms see it go down long before it can climb back past its old value.
pub const RESET_POLL: Duration = Duration::from_millis(100);

/// The shortest and longest background poll periods for wrapping counters.
pub const MIN_POLL: Duration = Duration::from_millis(1);
/// See [`MIN_POLL`].
pub const MAX_POLL: Duration = Duration::from_secs(60);

/// The background poll period a set of sources needs, if any: [`POWER_POLL`] where power is
/// integrated, [`RESET_POLL`] where a counter can reset, and a quarter of the shortest wrap
/// period at [`ASSUMED_MAX_WATTS`] (clamped to [`MIN_POLL`]–[`MAX_POLL`]) where one wraps;
/// the shortest of these. `None`: start and end readings suffice.
pub fn period_for(accs: &[Accumulator]) -> Option<Duration> {
    accs.iter()
        .flat_map(|a| {
            let wrap = a
                .shortest_wrap(ASSUMED_MAX_WATTS)
                .map(|w| Duration::from_secs_f64(w / 4.0).clamp(MIN_POLL, MAX_POLL));
            [
                a.integrates_power().then_some(POWER_POLL),
                a.can_reset().then_some(RESET_POLL),
                wrap,
            ]
        })
        .flatten()
        .min()
}

/// What a poller did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollStats {
    /// Deadlines that passed.
    pub deadlines: u64,
    /// Times the task ran.
    pub runs: u64,
    /// Deadlines that passed while the task was still running (no run of their own).
    pub missed: u64,
}

/// A running poller; stopped (and joined) by [`Poller::stop`] or on drop.
#[derive(Debug)]
pub struct Poller {
    timer: Arc<TimerFd>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<PollStats>>,
    period: Duration,
}

impl Poller {
    /// Starts a thread that calls `task` every `period`, the first time one period from now.
    ///
    /// Each tick costs the thread one blocking read(2) of the timerfd besides the task itself.
    pub fn start(period: Duration, mut task: impl FnMut() + Send + 'static) -> Result<Poller> {
        if period.is_zero() {
            return Err(Error::Internal("poll period of zero".into()));
        }
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC)
            .map_err(|e| Error::Os(format!("timerfd_create: {e}")))?;
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map_err(|e| Error::Os(format!("clock_gettime: {e}")))?;
        let step = TimeSpec::from_duration(period);
        timer
            .set(
                Expiration::IntervalDelayed(now + step, step),
                TimerSetTimeFlags::TFD_TIMER_ABSTIME,
            )
            .map_err(|e| Error::Os(format!("timerfd_settime: {e}")))?;
        let timer = Arc::new(timer);
        let stop = Arc::new(AtomicBool::new(false));
        let (t, st) = (Arc::clone(&timer), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("ruperf-energy".into())
            .spawn(move || {
                let mut stats = PollStats::default();
                let mut buf = [0u8; 8];
                loop {
                    let n = match nix::unistd::read(t.as_fd(), &mut buf) {
                        Ok(8) => u64::from_ne_bytes(buf),
                        Err(nix::errno::Errno::EINTR) => continue,
                        _ => break,
                    };
                    if st.load(Ordering::Acquire) {
                        break;
                    }
                    stats.deadlines += n;
                    stats.missed += n.saturating_sub(1);
                    stats.runs += 1;
                    task();
                }
                stats
            })
            .map_err(|e| Error::Os(format!("cannot start the energy polling thread: {e}")))?;
        Ok(Poller {
            timer,
            stop,
            thread: Some(thread),
            period,
        })
    }

    /// The period between deadlines.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Stops the thread (after the task's current run, if any) and returns what it did.
    pub fn stop(mut self) -> PollStats {
        self.halt()
    }

    fn halt(&mut self) -> PollStats {
        let Some(thread) = self.thread.take() else {
            return PollStats::default();
        };
        self.stop.store(true, Ordering::Release);
        // Wake the thread at once: a one-shot expiry 1 ns from now replaces the grid.
        let _ = self.timer.set(
            Expiration::OneShot(TimeSpec::new(0, 1)),
            TimerSetTimeFlags::empty(),
        );
        thread.join().unwrap_or_default()
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn runs_the_task_and_stops() {
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let p = Poller::start(Duration::from_millis(2), move || {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        while count.load(Ordering::Relaxed) < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let stats = p.stop();
        assert_eq!(stats.runs, count.load(Ordering::Relaxed));
        assert!(stats.deadlines >= stats.runs);
        assert_eq!(stats.deadlines, stats.runs + stats.missed);
    }

    #[test]
    fn a_long_period_stops_at_once() {
        let p = Poller::start(Duration::from_secs(3600), || {}).unwrap();
        assert_eq!(p.period(), Duration::from_secs(3600));
        assert_eq!(p.stop(), PollStats::default());
        assert!(Poller::start(Duration::ZERO, || {}).is_err());
    }
}
