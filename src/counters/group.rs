//! Opening, enabling and reading counters for a target.
//!
//! An event is opened once per *slot*: per thread for a task target, per CPU for a
//! system-wide one. Members of a `{group}` are opened with the slot's leader as group_fd so
//! that the kernel schedules them together. Reads use read_format
//! TOTAL_TIME_ENABLED|TOTAL_TIME_RUNNING, summed over slots, and are scaled for
//! multiplexing exactly as perf does (value × enabled / running).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use perf_event_open_sys::bindings as b;
use serde::Serialize;

use super::event::{Entry, EventClass, EventList, EventSpec};
use super::{classify_open_error, ensure_fd_limit, OpenFailure};
use crate::error::{Error, Result};
use crate::os::sys;
use crate::sysroot::Sysroot;

/// What the counters follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A child still held at the gate: counters start at its exec.
    Child(i32),
    /// The calling thread, for a command started next with
    /// [`GatedChild::start`](crate::os::launcher::GatedChild::start): the command inherits the
    /// counters when it is created and they count from its exec. Needs `inherit`.
    Inherited,
    /// Existing processes: every thread of each (`-p`).
    Pids(Vec<i32>),
    /// Exactly these threads (`-t`).
    Tids(Vec<i32>),
    /// System-wide on these CPUs (`-a`, `-C`).
    Cpus(Vec<u32>),
}

impl Target {
    /// How perf names the target in its header line.
    pub fn describe(&self) -> String {
        let join = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(",");
        match self {
            Target::Child(p) => format!("process {p}"),
            Target::Inherited => "the command".into(),
            Target::Pids(p) => format!(
                "process id '{}'",
                join(&mut p.iter().map(|x| x.to_string()))
            ),
            Target::Tids(t) => {
                format!("thread id '{}'", join(&mut t.iter().map(|x| x.to_string())))
            }
            Target::Cpus(_) => "'system wide'".into(),
        }
    }
}

/// Options that shape every attr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Count the target's future children too (perf's default; `--no-inherit` clears it).
    pub inherit: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { inherit: true }
    }
}

/// Whether a counter could be opened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "reason")]
pub enum OpenStatus {
    /// Open and counting.
    Open,
    /// The machine cannot count it; shown as `<not supported>`.
    NotSupported(String),
}

/// One event opened on all its slots.
#[derive(Debug)]
pub struct Counter {
    /// The event (its name gains `:u` when the kernel forced user-only counting).
    pub spec: EventSpec,
    /// Index of the entry (in the event list) this counter belongs to.
    pub entry: usize,
    /// True for a member (not leader) of a braced group.
    pub group_member: bool,
    /// Open or why not.
    pub status: OpenStatus,
    /// The attr actually used (for `-v`).
    pub attr: sys::Attr,
    fds: Vec<OwnedFd>,
    /// The CPU of each descriptor in `fds` (-1 for a task's counter on every CPU).
    cpus: Vec<i32>,
    /// The pid or tid of each descriptor in `fds` (-1 for a CPU-wide counter).
    pids: Vec<i32>,
}

/// A raw reading summed over slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RawCount {
    /// Counter value.
    pub value: u64,
    /// Nanoseconds the event was enabled.
    pub enabled: u64,
    /// Nanoseconds the event was actually on the PMU.
    pub running: u64,
}

impl RawCount {
    /// The difference from an earlier reading (saturating: counters only grow).
    pub fn since(self, earlier: RawCount) -> RawCount {
        RawCount {
            value: self.value.saturating_sub(earlier.value),
            enabled: self.enabled.saturating_sub(earlier.enabled),
            running: self.running.saturating_sub(earlier.running),
        }
    }

    /// The count scaled for multiplexing as perf does: value × enabled / running.
    /// None when the event was enabled but never ran (`<not counted>`).
    pub fn scaled(self) -> Option<f64> {
        if self.running == 0 {
            if self.enabled == 0 {
                // Never enabled in this window (an idle task): nothing happened.
                return Some(self.value as f64);
            }
            return None;
        }
        if self.running >= self.enabled {
            return Some(self.value as f64);
        }
        Some((self.value as f64 * self.enabled as f64 / self.running as f64).round())
    }

    /// Percentage of the enabled time the event ran (100 when not multiplexed).
    pub fn running_pct(self) -> f64 {
        if self.enabled == 0 || self.running >= self.enabled {
            100.0
        } else {
            100.0 * self.running as f64 / self.enabled as f64
        }
    }
}

/// All counters of a measurement.
#[derive(Debug)]
pub struct Session {
    /// Counters in event-list order.
    pub counters: Vec<Counter>,
    target: Target,
}

/// The slots (pid, cpu) an event is opened on.
fn slots(target: &Target, spec: &EventSpec) -> Result<Vec<(i32, i32)>> {
    // PMUs with a cpumask (uncore, power) count system-wide on those CPUs only.
    if let Some(cpus) = &spec.cpus {
        let chosen: Vec<u32> = match target {
            Target::Cpus(list) => cpus.iter().copied().filter(|c| list.contains(c)).collect(),
            _ => cpus.clone(),
        };
        return Ok(chosen.into_iter().map(|c| (-1, c as i32)).collect());
    }
    Ok(match target {
        Target::Child(pid) => vec![(*pid, -1)],
        Target::Inherited => vec![(0, -1)],
        Target::Tids(t) => t.iter().map(|&t| (t, -1)).collect(),
        Target::Cpus(c) => c.iter().map(|&c| (-1, c as i32)).collect(),
        Target::Pids(pids) => {
            let mut v = Vec::new();
            for &p in pids {
                for t in threads_of(p)? {
                    v.push((t, -1));
                }
            }
            v
        }
    })
}

/// Every thread of a process, from /proc/PID/task.
pub fn threads_of(pid: i32) -> Result<Vec<i32>> {
    let dir = format!("/proc/{pid}/task");
    let rd = std::fs::read_dir(&dir).map_err(|_| Error::NoSuchProcess(pid))?;
    let mut v: Vec<i32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    if v.is_empty() {
        return Err(Error::NoSuchProcess(pid));
    }
    Ok(v)
}

impl Session {
    /// Opens every counter event of `list` on `target`. Events the machine lacks are kept as
    /// `NotSupported`; permission and resource failures are errors.
    pub fn open(
        list: &EventList,
        target: &Target,
        opts: OpenOptions,
        root: &Sysroot,
    ) -> Result<Session> {
        Session::open_gated(list, target, opts, root, true)
    }

    /// As [`Session::open`]; with `on_exec` false a launched command's counters are not
    /// enabled at its exec but stay off until [`Session::enable`] (`stat -D`).
    pub fn open_gated(
        list: &EventList,
        target: &Target,
        opts: OpenOptions,
        root: &Sysroot,
        on_exec: bool,
    ) -> Result<Session> {
        Session::open_in_cgroups(list, target, opts, root, on_exec, &[])
    }

    /// As [`Session::open_gated`], counter `i` counting only the tasks of cgroup
    /// `cgroups[i]` when that is given (`stat -G`; CPU targets only).
    pub fn open_in_cgroups(
        list: &EventList,
        target: &Target,
        opts: OpenOptions,
        root: &Sysroot,
        on_exec: bool,
        cgroups: &[Option<BorrowedFd<'_>>],
    ) -> Result<Session> {
        let mut counters = Vec::new();
        let total_fds: usize = list
            .counters()
            .map(|s| slots(target, s).map_or(1, |v| v.len()))
            .sum();
        ensure_fd_limit(total_fds as u64);
        let target_desc = target.describe();
        for (entry_idx, entry) in list.entries.iter().enumerate() {
            let Entry::Group { events, braced } = entry else {
                continue;
            };
            let base = counters.len();
            // A member opened on a thread of a running process can be refused when the
            // thread's perf context moved (the kernel swaps inherited contexts between threads
            // at context switches) or its thread is exiting, between the leader's open and the
            // member's: then the whole group is opened again.
            let mut attempts_left = GROUP_ATTEMPTS;
            'group: loop {
                attempts_left -= 1;
                counters.truncate(base);
                for (i, spec) in events.iter().enumerate() {
                    let member = *braced && i > 0;
                    let leader = if member {
                        Some(&counters[base] as &Counter)
                    } else {
                        None
                    };
                    let ctx = OpenCtx {
                        entry: entry_idx,
                        target,
                        opts,
                        root,
                        target_desc: &target_desc,
                        on_exec,
                        may_retry: attempts_left > 0,
                    };
                    let cgroup = cgroups.get(counters.len()).copied().flatten();
                    match open_counter(spec, member, leader, &ctx, cgroup)? {
                        Opened::Counter(c) => counters.push(*c),
                        Opened::Retry => continue 'group,
                    }
                }
                break;
            }
        }
        Ok(Session {
            counters,
            target: target.clone(),
        })
    }

    /// The target the counters follow.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Enables every leader (with its group); used for targets that are already running.
    pub fn enable(&self) -> Result<()> {
        self.each_leader_fd(|fd| sys::enable(fd, sys::Scope::Group))
    }

    /// Disables every leader (with its group).
    pub fn disable(&self) -> Result<()> {
        self.each_leader_fd(|fd| sys::disable(fd, sys::Scope::Group))
    }

    fn each_leader_fd(
        &self,
        f: impl Fn(std::os::fd::BorrowedFd<'_>) -> std::io::Result<()>,
    ) -> Result<()> {
        for c in self.counters.iter().filter(|c| !c.group_member) {
            for fd in &c.fds {
                f(fd.as_fd()).map_err(|e| {
                    Error::Os(format!("cannot enable/disable {}: {e}", c.spec.name))
                })?;
            }
        }
        Ok(())
    }

    /// Reads every counter (cumulative since it was enabled), summed over its descriptors.
    /// Unsupported counters read as zero; check `status`.
    pub fn read(&self) -> Result<Vec<RawCount>> {
        let mut out = Vec::with_capacity(self.counters.len());
        for c in &self.counters {
            let mut total = RawCount::default();
            c.read_each(|_, r| {
                total.value = total.value.wrapping_add(r.value);
                total.enabled = total.enabled.wrapping_add(r.enabled);
                total.running = total.running.wrapping_add(r.running);
            })?;
            out.push(total);
        }
        Ok(out)
    }

    /// Reads every counter on each CPU it was opened on (`-A`): one (cpu, reading) per
    /// descriptor, in CPU order. Unsupported counters give an empty list.
    pub fn read_per_cpu(&self) -> Result<Vec<Vec<(u32, RawCount)>>> {
        self.counters
            .iter()
            .map(|c| {
                let mut each = Vec::with_capacity(c.fds.len());
                c.read_each(|cpu, r| each.push((cpu.max(0) as u32, r)))?;
                Ok(each)
            })
            .collect()
    }
}

impl Session {
    /// Reads every counter per thread it was opened on (`--per-thread`): one (tid, reading)
    /// per descriptor. Unsupported counters give an empty list.
    pub fn read_per_task(&self) -> Result<Vec<Vec<(i32, RawCount)>>> {
        self.counters
            .iter()
            .map(|c| {
                let mut each = Vec::with_capacity(c.fds.len());
                let mut k = 0;
                c.read_each(|_, r| {
                    each.push((c.pids.get(k).copied().unwrap_or(-1), r));
                    k += 1;
                })?;
                Ok(each)
            })
            .collect()
    }

    /// Applies a tracepoint filter to counter `i` on every descriptor (`stat --filter`).
    pub fn set_filter(&self, i: usize, filter: &str) -> Result<()> {
        let Some(c) = self.counters.get(i) else {
            return Ok(());
        };
        let text = std::ffi::CString::new(filter)
            .map_err(|_| Error::Usage("--filter: the filter has a NUL byte".into()))?;
        for fd in &c.fds {
            sys::set_filter(fd.as_fd(), &text).map_err(|e| {
                Error::Usage(format!(
                    "--filter '{filter}' on {}: the kernel refused it ({e}); check the field names in the tracepoint's format file",
                    c.spec.name
                ))
            })?;
        }
        Ok(())
    }

    /// The threads the counters were opened on, in slot order (empty for CPU targets).
    pub fn threads(&self) -> Vec<i32> {
        let mut v: Vec<i32> = Vec::new();
        for c in &self.counters {
            for &p in &c.pids {
                if p > 0 && !v.contains(&p) {
                    v.push(p);
                }
            }
        }
        v
    }
}

impl Counter {
    /// Reads each descriptor and hands `f` its CPU and reading (no allocation: `read` runs on
    /// every `-I` tick).
    fn read_each(&self, mut f: impl FnMut(i32, RawCount)) -> Result<()> {
        let mut buf = [0u64; 3];
        for (fd, &cpu) in self.fds.iter().zip(&self.cpus) {
            let w = sys::read_words(fd.as_fd(), &mut buf)
                .map_err(|e| Error::Os(format!("cannot read counter {}: {e}", self.spec.name)))?;
            if let [value, enabled, running] = *w {
                f(
                    cpu,
                    RawCount {
                        value,
                        enabled,
                        running,
                    },
                );
            } else {
                f(cpu, RawCount::default());
            }
        }
        Ok(())
    }
}

/// Builds the attr for one event on a target.
pub fn counting_attr(
    spec: &EventSpec,
    target: &Target,
    member: bool,
    opts: OpenOptions,
) -> sys::Attr {
    attr_for(spec, target, member, opts, true)
}

/// [`counting_attr`], with enable_on_exec only when `on_exec`.
fn attr_for(
    spec: &EventSpec,
    target: &Target,
    member: bool,
    opts: OpenOptions,
    on_exec: bool,
) -> sys::Attr {
    let mut a = spec.to_attr();
    a.read_format = (b::PERF_FORMAT_TOTAL_TIME_ENABLED | b::PERF_FORMAT_TOTAL_TIME_RUNNING) as u64;
    let task = !matches!(target, Target::Cpus(_)) && spec.cpus.is_none();
    a.set_inherit((opts.inherit && task) as u64);
    if !member {
        a.set_disabled(1);
        if on_exec && matches!(target, Target::Child(_) | Target::Inherited) {
            a.set_enable_on_exec(1);
        }
    }
    a
}

/// How many times a braced group on a running process is opened before a refused member is
/// taken as final.
const GROUP_ATTEMPTS: u32 = 8;

/// What every counter of one open pass shares.
struct OpenCtx<'a> {
    entry: usize,
    target: &'a Target,
    opts: OpenOptions,
    root: &'a Sysroot,
    target_desc: &'a str,
    /// Launched-command counters start at the command's exec (`enable_on_exec`).
    on_exec: bool,
    /// A member refused for a moved or dying leader context asks for the group to be opened
    /// again instead of failing.
    may_retry: bool,
}

/// The result of opening one counter.
enum Opened {
    Counter(Box<Counter>),
    /// Open the whole group again (see [`GROUP_ATTEMPTS`]).
    Retry,
}

/// Why a counter is not opened at all, before any system call: an event resolved under
/// --sysroot (a sysfs PMU's type number or a tracepoint's id there describes the fake tree,
/// not this kernel, so opening it would count whatever host event has that number), or a
/// group whose leader could not be opened.
fn refused_before_open(
    spec: &EventSpec,
    leader: Option<&Counter>,
    root: &Sysroot,
) -> Option<String> {
    if !root.is_host() && matches!(spec.class, EventClass::Pmu | EventClass::Tracepoint) {
        return Some(format!(
            "{}: read from --sysroot {}, whose PMU types and tracepoint ids are not this \
             kernel's; not counted on this host",
            spec.name,
            root.root().display()
        ));
    }
    match leader.map(|l| (&l.status, &l.spec.name)) {
        Some((OpenStatus::NotSupported(why), name)) => {
            Some(format!("group leader {name} is not supported: {why}"))
        }
        _ => None,
    }
}

/// What to do after perf_event_open failed on one slot.
enum AfterError {
    /// Kernel profiling was refused: retry user-space only, as perf does (`name:u`).
    UserOnly,
    /// The thread exited between listing and opening.
    SkipThread,
    /// A member was refused because its leader's thread exited (ENODEV) or its context moved
    /// (EINVAL) since the leader was opened: open the whole group again.
    ReopenGroup,
    /// A real failure: classify it.
    Fail,
}

fn after_open_error(
    e: &std::io::Error,
    spec: &EventSpec,
    member: bool,
    ctx: &OpenCtx<'_>,
    nothing_open_yet: bool,
    slots: &[(i32, i32)],
) -> AfterError {
    let code = e.raw_os_error();
    let refused = matches!(code, Some(libc::EACCES) | Some(libc::EPERM));
    if refused && !spec.explicit_privilege && !spec.exclude_kernel && nothing_open_yet {
        return AfterError::UserOnly;
    }
    let running_process = matches!(ctx.target, Target::Pids(_));
    if member
        && running_process
        && ctx.may_retry
        && matches!(code, Some(libc::EINVAL) | Some(libc::ENODEV))
    {
        return AfterError::ReopenGroup;
    }
    if code == Some(libc::ESRCH) && running_process && slots.len() > 1 {
        return AfterError::SkipThread;
    }
    AfterError::Fail
}

fn open_counter(
    spec: &EventSpec,
    member: bool,
    leader: Option<&Counter>,
    ctx: &OpenCtx<'_>,
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<Opened> {
    let OpenCtx {
        entry,
        target,
        opts,
        root,
        target_desc,
        on_exec,
        ..
    } = *ctx;
    let counting_attr = |spec: &EventSpec, target: &Target, member, opts| {
        attr_for(spec, target, member, opts, on_exec)
    };
    let not_supported = |spec: &EventSpec, attr, why: String| Counter {
        spec: spec.clone(),
        entry,
        group_member: member,
        status: OpenStatus::NotSupported(why),
        attr,
        fds: Vec::new(),
        cpus: Vec::new(),
        pids: Vec::new(),
    };
    if let Some(why) = refused_before_open(spec, leader, root) {
        let attr = counting_attr(spec, target, member, opts);
        return Ok(Opened::Counter(Box::new(not_supported(spec, attr, why))));
    }
    // A group member opens exactly where its leader did, descriptor for descriptor: listing the
    // threads again could give another list (threads come and go) and pair a member with
    // another thread's leader.
    let slot_list = match leader {
        Some(l) => l.pids.iter().copied().zip(l.cpus.iter().copied()).collect(),
        None => slots(target, spec)?,
    };
    if slot_list.is_empty() {
        let attr = counting_attr(spec, target, member, opts);
        return Ok(Opened::Counter(Box::new(not_supported(
            spec,
            attr,
            "none of the requested CPUs is in the PMU's cpumask".into(),
        ))));
    }
    let mut spec = spec.clone();
    let mut attr = counting_attr(&spec, target, member, opts);
    let mut fds = Vec::with_capacity(slot_list.len());
    let mut cpus = Vec::with_capacity(slot_list.len());
    let mut pids = Vec::with_capacity(slot_list.len());
    let mut i = 0;
    while i < slot_list.len() {
        let (pid, cpu) = slot_list[i];
        let group = leader.and_then(|l| l.fds.get(i)).map(|fd| fd.as_fd());
        let opened = match cgroup {
            Some(cg) if pid == -1 => sys::perf_event_open_cgroup(&attr, cg, cpu, group),
            _ => sys::perf_event_open(&attr, pid, cpu, group),
        };
        match opened {
            Ok(fd) => {
                fds.push(fd);
                cpus.push(cpu);
                pids.push(pid);
                i += 1;
            }
            Err(e) => match after_open_error(&e, &spec, member, ctx, fds.is_empty(), &slot_list) {
                AfterError::UserOnly => {
                    spec = spec.user_only();
                    attr = counting_attr(&spec, target, member, opts);
                }
                AfterError::SkipThread => i += 1,
                AfterError::ReopenGroup => return Ok(Opened::Retry),
                AfterError::Fail => {
                    let what = match target {
                        Target::Cpus(_) => format!("CPU {cpu}"),
                        _ if pid > 0 => format!("pid {pid}"),
                        _ => target_desc.to_string(),
                    };
                    if e.raw_os_error() == Some(libc::ESRCH) {
                        return Err(Error::NoSuchProcess(pid));
                    }
                    return match classify_open_error(&spec.name, &e, root, &what) {
                        OpenFailure::NotSupported(why) => {
                            Ok(Opened::Counter(Box::new(not_supported(&spec, attr, why))))
                        }
                        OpenFailure::Fatal(err) => Err(err),
                    };
                }
            },
        }
    }
    if fds.is_empty() {
        return Err(Error::NoSuchProcess(slot_list[0].0));
    }
    Ok(Opened::Counter(Box::new(Counter {
        spec,
        entry,
        group_member: member,
        status: OpenStatus::Open,
        attr,
        fds,
        cpus,
        pids,
    })))
}

/// A one-line description of an attr for `-v`.
pub fn describe_attr(a: &sys::Attr) -> String {
    format!(
        "type {} config {:#x} config1 {:#x} config2 {:#x} read_format {:#x} disabled {} inherit {} enable_on_exec {} exclude_user {} exclude_kernel {} exclude_hv {} size {}",
        a.type_,
        a.config,
        a.config1,
        a.config2,
        a.read_format,
        a.disabled(),
        a.inherit(),
        a.enable_on_exec(),
        a.exclude_user(),
        a.exclude_kernel(),
        a.exclude_hv(),
        a.size
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_matches_perf() {
        let r = RawCount {
            value: 1000,
            enabled: 200,
            running: 100,
        };
        assert_eq!(r.scaled(), Some(2000.0));
        assert_eq!(r.running_pct(), 50.0);
        let full = RawCount {
            value: 7,
            enabled: 10,
            running: 10,
        };
        assert_eq!(full.scaled(), Some(7.0));
        assert_eq!(full.running_pct(), 100.0);
        let never = RawCount {
            value: 0,
            enabled: 10,
            running: 0,
        };
        assert_eq!(never.scaled(), None);
        let idle = RawCount::default();
        assert_eq!(idle.scaled(), Some(0.0));
        let later = RawCount {
            value: 1500,
            enabled: 300,
            running: 150,
        };
        assert_eq!(
            later.since(r),
            RawCount {
                value: 500,
                enabled: 100,
                running: 50
            }
        );
    }

    #[test]
    fn counts_software_events_on_self() {
        let root = Sysroot::default();
        let list =
            super::super::event::parse_events("task-clock,page-faults,cycles", &root).unwrap();
        let me = nix::unistd::gettid().as_raw();
        let s = Session::open(
            &list,
            &Target::Tids(vec![me]),
            OpenOptions { inherit: false },
            &root,
        )
        .unwrap();
        s.enable().unwrap();
        let v: Vec<u8> = (0..4 << 20).map(|i| i as u8).collect();
        assert!(v.iter().map(|&x| x as u64).sum::<u64>() > 0);
        s.disable().unwrap();
        let r = s.read().unwrap();
        assert_eq!(s.counters[0].status, OpenStatus::Open);
        assert!(r[0].value > 0, "task-clock counted nothing");
        assert!(
            r[1].value >= 1000 / 4,
            "page-faults {} for 4 MiB",
            r[1].value
        );
        // cycles: supported on real hardware, not in this VM; either way no error.
        if let OpenStatus::NotSupported(why) = &s.counters[2].status {
            assert!(why.contains("cycles"));
        }
    }

    mod seam {
        use std::cell::RefCell;
        use std::io;
        use std::os::fd::AsRawFd;
        use std::rc::Rc;

        use super::*;
        use crate::counters::event::parse_events;
        use crate::os::sys::hooks::{fake_fd, fake_open};

        /// One faked perf_event_open call: (config, pid, group fd, fd returned or errno).
        type Call = (u64, i32, i32, std::result::Result<i32, i32>);

        fn errno(e: i32) -> io::Error {
            io::Error::from_raw_os_error(e)
        }

        fn open_with(
            events: &str,
            target: Target,
            mut kernel: impl FnMut(&sys::Attr, i32, i32) -> std::result::Result<(), i32> + 'static,
        ) -> (Result<Session>, Vec<Call>) {
            let calls: Rc<RefCell<Vec<Call>>> = Rc::default();
            let log = Rc::clone(&calls);
            let _guard = fake_open(Box::new(move |attr, pid, _cpu, group| {
                match kernel(attr, pid, group) {
                    Ok(()) => {
                        let fd = fake_fd();
                        log.borrow_mut()
                            .push((attr.config, pid, group, Ok(fd.as_raw_fd())));
                        Ok(fd)
                    }
                    Err(e) => {
                        log.borrow_mut().push((attr.config, pid, group, Err(e)));
                        Err(errno(e))
                    }
                }
            }));
            let root = Sysroot::default();
            let list = parse_events(events, &root).unwrap();
            let session = Session::open(&list, &target, OpenOptions { inherit: false }, &root);
            let calls = calls.borrow().clone();
            (session, calls)
        }

        #[test]
        fn kernel_refused_retries_user_only_as_perf_does() {
            let me = nix::unistd::gettid().as_raw();
            let (s, calls) = open_with("task-clock", Target::Tids(vec![me]), |attr, _, _| {
                if attr.exclude_kernel() == 0 {
                    Err(libc::EACCES)
                } else {
                    Ok(())
                }
            });
            let s = s.unwrap();
            assert_eq!(calls.len(), 2);
            assert_eq!(s.counters[0].spec.name, "task-clock:u");
            assert_eq!(s.counters[0].attr.exclude_kernel(), 1);
        }

        #[test]
        fn an_absent_event_is_not_supported_and_the_rest_still_opens() {
            let me = nix::unistd::gettid().as_raw();
            let hw = b::PERF_TYPE_HARDWARE;
            let (s, _) = open_with(
                "cycles,task-clock",
                Target::Tids(vec![me]),
                move |a, _, _| {
                    if a.type_ == hw {
                        Err(libc::ENOENT)
                    } else {
                        Ok(())
                    }
                },
            );
            let s = s.unwrap();
            assert!(matches!(s.counters[0].status, OpenStatus::NotSupported(_)));
            assert_eq!(s.counters[1].status, OpenStatus::Open);
        }

        #[test]
        fn members_open_on_their_leaders_slots_and_a_refused_member_reopens_the_group() {
            // This test process has several threads; one of them "exits" before its leader
            // opens (ESRCH), and the first member open is refused once (EINVAL).
            let pid = std::process::id() as i32;
            let gone = *threads_of(pid).unwrap().last().unwrap();
            let mut refused_once = false;
            let (s, calls) = open_with(
                "{task-clock,page-faults}",
                Target::Pids(vec![pid]),
                move |a, tid, group| {
                    if tid == gone {
                        return Err(libc::ESRCH);
                    }
                    let member = group >= 0;
                    if member && a.config == b::PERF_COUNT_SW_PAGE_FAULTS as u64 && !refused_once {
                        refused_once = true;
                        return Err(libc::EINVAL);
                    }
                    Ok(())
                },
            );
            let s = s.unwrap();
            assert_eq!(s.counters[1].status, OpenStatus::Open);
            // The last pass (its leaders, then its members): every member sits on the leader
            // opened for the same thread.
            let last_leader = calls.iter().rposition(|c| c.2 < 0).unwrap();
            let first_leader = calls[..last_leader]
                .iter()
                .rposition(|c| c.2 >= 0)
                .map_or(0, |i| i + 1);
            let pass = &calls[first_leader..=last_leader];
            let members = &calls[last_leader + 1..];
            assert!(!members.is_empty());
            for m in members {
                let leader = pass.iter().find(|l| l.1 == m.1).expect("leader on thread");
                assert_eq!(Ok(m.2), leader.3, "member on {} joined another leader", m.1);
            }
            assert!(calls.iter().any(|c| c.3 == Err(libc::EINVAL)));
            assert!(!s.counters[1].pids.contains(&gone));
            assert_eq!(s.counters[0].pids, s.counters[1].pids);
        }
    }
}
