//! One run of `stat`: open the counters, start or attach to the target, sleep on one epoll
//! set (signals, the child's exit, `-I` ticks, `-D`, `--timeout`, `--control`), read.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::aggr::{self, Aggr, AggrMode, Unit};
use super::options::{ControlFds, Delay, ToolEvent};
use super::{
    interval_row, read_counts, rows, CounterRow, IntervalRow, Layout, RunResult, Shape, StatConfig,
    StatResult, Status,
};
use crate::counters::cgroup;
use crate::counters::event::{EventClass, EventList};
use crate::counters::group::{describe_attr, RawCount, Session, Target};
use crate::energy::EnergySession;
use crate::error::{Error, Result};
use crate::os::launcher::{ChildTimes, GatedChild, SignalWatch, Ticker};
use crate::os::sys;

const WAKE_SIGNAL: u64 = 0;
const WAKE_CHILD: u64 = 1;
const WAKE_TICK: u64 = 2;
const WAKE_DELAY: u64 = 3;
const WAKE_TIMEOUT: u64 = 4;
const WAKE_CONTROL: u64 = 5;
const WAKE_WATCHED: u64 = 16;

/// What the measurement loop sleeps on, registered once, so that a wake-up is one epoll_wait
/// whatever the number of descriptors.
struct Waiter {
    epoll: Epoll,
}

fn epoll_err(e: nix::errno::Errno) -> Error {
    Error::Os(format!("epoll: {e}"))
}

impl Waiter {
    fn new() -> Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(epoll_err)?;
        Ok(Waiter { epoll })
    }

    fn add(&self, fd: BorrowedFd<'_>, key: u64) -> Result<()> {
        self.epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, key))
            .map_err(epoll_err)
    }

    fn remove(&self, fd: BorrowedFd<'_>) -> Result<()> {
        self.epoll.delete(fd).map_err(epoll_err)
    }
}

/// Runs `cmd` with /bin/sh -c and waits for it (`--pre`/`--post`); a failure stops stat, as
/// in perf.
fn shell(cmd: &str, flag: &str) -> Result<()> {
    let st = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map_err(|e| Error::Os(format!("{flag} '{cmd}': cannot run /bin/sh: {e}")))?;
    if st.success() {
        return Ok(());
    }
    Err(Error::Failed(format!(
        "{flag} '{cmd}' failed ({st}); fix the command or drop {flag}"
    )))
}

/// The `--control` descriptors, duplicated so ruperf owns its copies.
struct Control {
    ctl: OwnedFd,
    ack: Option<OwnedFd>,
}

impl Control {
    fn open(c: &ControlFds) -> Result<Control> {
        let dup = |fd: i32| {
            sys::dup_inherited(fd).map_err(|e| {
                Error::Usage(format!(
                    "--control fd:{fd}: descriptor {fd} is not open ({e}); pass an open descriptor"
                ))
            })
        };
        let fifo = |p: &std::path::Path| -> Result<OwnedFd> {
            use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
            let bad = |why: String| {
                Error::Usage(format!(
                    "--control fifo:{}: {why}; create it with `mkfifo {}`",
                    p.display(),
                    p.display()
                ))
            };
            // Read-write, so that opening never waits for the other end and no EOF arrives
            // between writers.
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(p)
                .map_err(|e| bad(e.to_string()))?;
            if !f.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
                return Err(bad("not a FIFO".into()));
            }
            Ok(OwnedFd::from(f))
        };
        Ok(match c {
            ControlFds::Fd { ctl, ack } => Control {
                ctl: dup(*ctl)?,
                ack: ack.map(dup).transpose()?,
            },
            ControlFds::Fifo { ctl, ack } => Control {
                ctl: fifo(ctl)?,
                ack: ack.as_deref().map(fifo).transpose()?,
            },
        })
    }

    /// Reads the pending commands: `enable`, `disable`, `ping`, `stop` (perf's words).
    fn commands(&self) -> Vec<String> {
        let mut buf = [0u8; 512];
        match nix::unistd::read(self.ctl.as_fd(), &mut buf) {
            Ok(0) | Err(_) => vec!["<eof>".into()],
            Ok(n) => String::from_utf8_lossy(&buf[..n])
                .split(['\n', '\0'])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        }
    }

    fn ack(&self) {
        if let Some(a) = &self.ack {
            let _ = nix::unistd::write(a, b"ack\n");
        }
    }
}

/// Everything live during one run.
struct Live<'a> {
    cfg: &'a StatConfig,
    session: Session,
    units: Vec<Unit>,
    child: Option<GatedChild>,
    watched: Vec<OwnedFd>,
    ticker: Option<Ticker>,
    delay: Option<Ticker>,
    timeout: Option<Ticker>,
    control: Option<Control>,
    waiter: Waiter,
    /// Counting started (false while `-D` holds it off).
    enabled: bool,
    start: Instant,
    timed_out: bool,
}

/// The state of the `-I` rows within a run.
#[derive(Default)]
struct Rows {
    prev_counts: Vec<RawCount>,
    prev_time: f64,
    done: u64,
}

impl Live<'_> {
    fn shape(&self) -> Shape<'_> {
        match (self.cfg.depth.aggr, &self.cfg.cpus) {
            (Some(m), _) => Shape::Units(m, &self.units),
            (None, Some(cpus)) if self.cfg.per_cpu => Shape::PerCpu(cpus),
            _ => Shape::Total,
        }
    }

    fn read(&self) -> Result<(Layout, Vec<RawCount>)> {
        read_counts(&self.session, &self.shape())
    }

    fn enable(&mut self) -> Result<()> {
        if !self.enabled {
            self.session.enable()?;
            self.enabled = true;
            self.start = Instant::now();
        }
        Ok(())
    }

    fn disable(&mut self) -> Result<()> {
        if self.enabled {
            self.session.disable()?;
            self.enabled = false;
        }
        Ok(())
    }

    /// Handles control commands; true when one asks to stop.
    fn control(&mut self) -> Result<bool> {
        let Some(c) = &self.control else {
            return Ok(false);
        };
        let cmds = c.commands();
        let mut stop = false;
        for cmd in &cmds {
            match cmd.split_whitespace().next().unwrap_or("") {
                "enable" => self.enable()?,
                "disable" => self.disable()?,
                "stop" => stop = true,
                "<eof>" => {
                    // The writer went away: stop listening, keep counting.
                    if let Some(c) = self.control.take() {
                        self.waiter.remove(c.ctl.as_fd())?;
                    }
                    return Ok(false);
                }
                _ => {}
            }
            if let Some(c) = &self.control {
                c.ack();
            }
        }
        Ok(stop)
    }

    fn end_child(&self) {
        if let Some(c) = &self.child {
            c.kill(libc::SIGTERM);
        }
    }
}

/// Opens the counters, each in its cgroup when `-G`/`--for-each-cgroup` gave one, and applies
/// `--filter`.
fn open_session(
    cfg: &StatConfig,
    events: &EventList,
    target: &Target,
    at_exec: bool,
) -> Result<Session> {
    // The cgroups' directories are needed only while the counters are opened.
    let dirs: Vec<Option<cgroup::Cgroup>> = cfg
        .depth
        .cgroups
        .iter()
        .map(|c| {
            c.as_deref()
                .map(|n| cgroup::open(&cfg.sysroot, n))
                .transpose()
        })
        .collect::<Result<_>>()?;
    let fds: Vec<Option<BorrowedFd<'_>>> = dirs
        .iter()
        .map(|d| d.as_ref().map(|c| c.dir.as_fd()))
        .collect();
    let session = Session::open_in_cgroups(events, target, cfg.open, &cfg.sysroot, at_exec, &fds)?;
    drop(fds);
    drop(dirs);
    if let Some((i, f)) = &cfg.depth.filter {
        if !cfg.depth.null {
            session.set_filter(*i, f)?;
        }
    }
    Ok(session)
}

/// Opens the counters and starts or attaches to the target.
fn start<'a>(
    cfg: &'a StatConfig,
    signals: &SignalWatch,
    energy: Option<&mut EnergySession>,
    result: &mut StatResult,
    first: bool,
) -> Result<Live<'a>> {
    // With inheritance (the default) the counters are opened on this thread and the command,
    // started afterwards with posix_spawn, inherits them; without it the command is forked,
    // held at a gate while the counters are opened on its pid, then released.
    let inherited = !cfg.command.is_empty()
        && cfg.open.inherit
        && cfg.cpus.is_none()
        && cfg.pids.is_empty()
        && cfg.tids.is_empty()
        // With -D the gated path is used, so that enabling later reaches only the command.
        && cfg.depth.delay.is_none();
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
    let none = EventList::default();
    let events = if cfg.depth.null { &none } else { &cfg.events };
    let at_exec = cfg.depth.delay.is_none();
    let session = open_session(cfg, events, &target, at_exec)?;
    if first {
        result.attrs = session
            .counters
            .iter()
            .map(|c| (c.spec.name.clone(), describe_attr(&c.attr)))
            .collect();
    }
    let units = match (cfg.depth.aggr, &cfg.cpus) {
        (Some(AggrMode::Thread), _) => aggr::thread_units(&cfg.sysroot, &session.threads()),
        (Some(m), Some(cpus)) => aggr::units_for(m, &cfg.sysroot, cpus),
        _ => Vec::new(),
    };
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
    let on_exec = matches!(target, Target::Child(_) | Target::Inherited);
    let control = cfg.depth.control.as_ref().map(Control::open).transpose()?;
    let mut enabled = on_exec && at_exec;
    if !on_exec && at_exec {
        session.enable()?;
        enabled = true;
    }
    // Energy is read just before the command is released and just after it exits.
    if let Some(e) = energy {
        e.start()?;
    }
    let start = Instant::now();
    if inherited {
        child = Some(GatedChild::start(&cfg.command)?);
    }
    if let Some(c) = child.as_mut() {
        c.release()?;
    }
    let delay = match cfg.depth.delay {
        Some(Delay::After(d)) => Some(Ticker::new(d.max(Duration::from_micros(1)))?),
        _ => None,
    };
    let live = Live {
        cfg,
        session,
        units,
        child,
        watched,
        ticker: cfg.interval.map(Ticker::new).transpose()?,
        delay,
        timeout: cfg.depth.timeout.map(Ticker::new).transpose()?,
        control,
        waiter: Waiter::new()?,
        enabled,
        start,
        timed_out: false,
    };
    register(&live, signals)?;
    Ok(live)
}

fn register(live: &Live<'_>, signals: &SignalWatch) -> Result<()> {
    let w = &live.waiter;
    w.add(signals.fd(), WAKE_SIGNAL)?;
    if let Some(c) = &live.child {
        w.add(c.pidfd(), WAKE_CHILD)?;
    }
    for (i, fd) in live.watched.iter().enumerate() {
        w.add(fd.as_fd(), WAKE_WATCHED + i as u64)?;
    }
    let timers = [
        (&live.ticker, WAKE_TICK),
        (&live.delay, WAKE_DELAY),
        (&live.timeout, WAKE_TIMEOUT),
    ];
    for (t, key) in timers {
        if let Some(t) = t {
            w.add(t.fd(), key)?;
        }
    }
    if let Some(c) = &live.control {
        w.add(c.ctl.as_fd(), WAKE_CONTROL)?;
    }
    Ok(())
}

/// Takes one `-I` row; true when `--interval-count` is reached.
fn tick(
    live: &Live<'_>,
    st: &mut Rows,
    energy: Option<&mut EnergySession>,
    on_interval: &mut dyn FnMut(&IntervalRow),
) -> Result<bool> {
    let (layout, counts) = live.read()?;
    let now = live.start.elapsed().as_secs_f64();
    let row = interval_row(
        &live.session,
        &layout,
        &counts,
        &st.prev_counts,
        now,
        st.prev_time,
        live.cfg.scale,
        &live.units,
        &live.cfg.depth.cgroups,
        energy,
    )?;
    on_interval(&row);
    st.prev_counts = counts;
    st.prev_time = now;
    st.done += 1;
    Ok(live.cfg.interval_count.is_some_and(|n| st.done >= n))
}

/// Sleeps until the run ends, taking `-I` rows and acting on timers and control commands.
fn wait_loop(
    live: &mut Live<'_>,
    signals: &mut SignalWatch,
    mut energy: Option<&mut EnergySession>,
    on_interval: &mut dyn FnMut(&IntervalRow),
    result: &mut StatResult,
    st: &mut Rows,
) -> Result<()> {
    let mut alive = live.watched.len();
    let mut events = [EpollEvent::empty(); 8];
    loop {
        let n = match live.waiter.epoll.wait(&mut events, EpollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::Os(format!("epoll_wait: {e}"))),
            Ok(n) => n,
        };
        let mut ticked = false;
        let mut done = false;
        for ev in &events[..n] {
            match ev.data() {
                WAKE_SIGNAL => {
                    for sig in signals.drain() {
                        result.interrupted_by = Some(sig.signo);
                        match &live.child {
                            // A terminal's ^C already reached the child (same process group); a
                            // signal sent to ruperf alone is passed on.
                            Some(c) if sig.from_process => c.kill(sig.signo),
                            Some(_) => {}
                            None => return Ok(()),
                        }
                    }
                }
                WAKE_CHILD => done = true,
                WAKE_TICK => ticked = live.ticker.as_ref().is_some_and(|t| t.take() > 0),
                WAKE_DELAY => {
                    if let Some(t) = live.delay.take() {
                        live.waiter.remove(t.fd())?;
                    }
                    live.enable()?;
                }
                WAKE_TIMEOUT => {
                    live.timed_out = true;
                    live.end_child();
                    if live.child.is_none() {
                        return Ok(());
                    }
                }
                WAKE_CONTROL => {
                    if live.control()? {
                        live.end_child();
                        if live.child.is_none() {
                            return Ok(());
                        }
                    }
                }
                i => {
                    // A watched process ended: stop watching it (its pidfd stays readable).
                    live.waiter
                        .remove(live.watched[(i - WAKE_WATCHED) as usize].as_fd())?;
                    alive -= 1;
                }
            }
        }
        if done || (!live.watched.is_empty() && alive == 0) {
            return Ok(());
        }
        if ticked && tick(live, st, energy.as_deref_mut(), on_interval)? {
            live.end_child();
            return Ok(());
        }
    }
}

/// A tool event's row: nanoseconds, `<not counted>` when zero, as perf shows them.
fn tool_row(t: ToolEvent, elapsed: f64, times: Option<ChildTimes>) -> CounterRow {
    let secs = match t {
        ToolEvent::Duration => Some(elapsed),
        ToolEvent::User => times.map(|t| t.user),
        ToolEvent::System => times.map(|t| t.sys),
    };
    let ns = secs.map_or(0, |s| (s * 1e9).round() as u64);
    CounterRow {
        cpu: None,
        aggr: None,
        cgroup: None,
        name: t.name().into(),
        class: EventClass::Software,
        status: if ns == 0 {
            Status::NotCounted
        } else {
            Status::Counted
        },
        count: ns as f64,
        raw: RawCount {
            value: ns,
            enabled: ns,
            running: ns,
        },
        running_pct: 100.0,
        scale: 1.0,
        unit: Some("ns".into()),
        is_clock: false,
        reason: None,
    }
}

/// Puts the tool events' rows where they were given among the counter events. Split by CPU
/// or unit, perf shows a tool event once, on the first CPU or unit (with a CPU count of 1).
fn add_tools(
    cfg: &StatConfig,
    counters: &mut Vec<CounterRow>,
    elapsed: f64,
    t: Option<ChildTimes>,
    units: &[Unit],
) {
    let ncpu = cfg.cpus.as_ref().map_or(1, Vec::len);
    for (k, &(pos, tool)) in cfg.depth.tools.iter().enumerate() {
        let mut row = tool_row(tool, elapsed, t);
        let first = units.first().map(|u| u.id.clone());
        let at = match (cfg.depth.aggr, first) {
            _ if cfg.depth.null => counters.len(),
            (None, _) if cfg.per_cpu => {
                row.cpu = cfg.cpus.as_ref().and_then(|c| c.first().copied());
                pos * ncpu + k
            }
            (None, _) => pos + k,
            (Some(AggrMode::Thread), Some(id)) => {
                row.aggr = Some(Aggr { id, nr: 0 });
                pos * units.len() + k
            }
            (Some(_), Some(_)) => {
                // Unit-major blocks: handled below, every unit at once.
                continue;
            }
            (Some(_), None) => counters.len(),
        };
        counters.insert(at.min(counters.len()), row);
    }
    let per_unit = matches!(cfg.depth.aggr, Some(m) if m != AggrMode::Thread);
    if per_unit && !units.is_empty() && !cfg.depth.null && !cfg.depth.tools.is_empty() {
        tools_per_unit(cfg, counters, elapsed, t, units);
    }
}

/// perf's tool rows under `--per-socket` and the like: counted in the first unit (CPU count
/// 1), `<not counted>` (CPU count 0) in every other.
fn tools_per_unit(
    cfg: &StatConfig,
    counters: &mut Vec<CounterRow>,
    elapsed: f64,
    t: Option<ChildTimes>,
    units: &[Unit],
) {
    let block = counters.len() / units.len();
    let mut rows = std::mem::take(counters).into_iter();
    for (u, unit) in units.iter().enumerate() {
        let mut chunk: Vec<CounterRow> = rows.by_ref().take(block).collect();
        for (k, &(pos, tool)) in cfg.depth.tools.iter().enumerate() {
            let mut row = tool_row(tool, elapsed, t);
            row.aggr = Some(Aggr {
                id: unit.id.clone(),
                nr: u32::from(u == 0),
            });
            if u > 0 {
                row.status = Status::NotCounted;
                row.count = 0.0;
                row.raw = RawCount::default();
            }
            chunk.insert((pos + k).min(chunk.len()), row);
        }
        counters.extend(chunk);
    }
    counters.extend(rows);
}

/// One complete run.
pub(super) fn run_once(
    cfg: &StatConfig,
    signals: &mut SignalWatch,
    mut energy: Option<&mut EnergySession>,
    on_interval: &mut dyn FnMut(&IntervalRow),
    result: &mut StatResult,
    first: bool,
) -> Result<RunResult> {
    if cfg.depth.sync {
        nix::unistd::sync();
    }
    if let Some(pre) = &cfg.depth.pre {
        shell(pre, "--pre")?;
    }
    let mut live = start(cfg, signals, energy.as_deref_mut(), result, first)?;
    let mut st = Rows::default();
    wait_loop(
        &mut live,
        signals,
        energy.as_deref_mut(),
        on_interval,
        result,
        &mut st,
    )?;
    let (exit, times) = match live.child.as_mut() {
        Some(c) => {
            let (s, t) = c.wait()?;
            // System-wide, the command only sets the window: perf shows no user/sys for it.
            (Some(s), cfg.cpus.is_none().then_some(t))
        }
        None => (None, None),
    };
    // With -D that never fired, nothing was counted and no time passed.
    let elapsed = if live.enabled || live.delay.is_none() {
        live.start.elapsed().as_secs_f64()
    } else {
        0.0
    };
    live.disable()?;
    let (layout, counts) = live.read()?;
    // A final partial interval, as perf prints when the command ends between ticks.
    if live.ticker.is_some()
        && cfg.interval_count.is_none_or(|n| st.done < n)
        && elapsed - st.prev_time > 1e-4
    {
        let row = interval_row(
            &live.session,
            &layout,
            &counts,
            &st.prev_counts,
            elapsed,
            st.prev_time,
            cfg.scale,
            &live.units,
            &cfg.depth.cgroups,
            energy.as_deref_mut(),
        )?;
        on_interval(&row);
    }
    let energy = energy.map(EnergySession::finish).transpose()?;
    let mut counters = rows(
        &live.session,
        &layout,
        &counts,
        cfg.scale,
        &live.units,
        &cfg.depth.cgroups,
    );
    add_tools(cfg, &mut counters, elapsed, times, &live.units);
    if let Some(post) = &cfg.depth.post {
        shell(post, "--post")?;
    }
    // perf exits 0 after --timeout stops the command.
    let exit = if live.timed_out { None } else { exit };
    Ok(RunResult {
        counters,
        elapsed,
        times,
        exit,
        energy,
    })
}
