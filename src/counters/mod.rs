//! Safe perf_event layer: event grammar, PMU discovery, counter groups, ring buffers.

pub mod event;
pub mod group;
pub mod pmu;
pub mod sampler;

use std::io;

use crate::error::Error;
use crate::sysroot::Sysroot;

/// The kernel's perf_event_paranoid level, if readable.
pub fn paranoid(root: &Sysroot) -> Option<i32> {
    root.read_trimmed("/proc/sys/kernel/perf_event_paranoid")
        .ok()?
        .parse()
        .ok()
}

/// What a perf_event_paranoid level allows an unprivileged user.
pub fn paranoid_meaning(level: i32) -> &'static str {
    match level {
        i32::MIN..=-1 => "no restrictions",
        0 => "user and kernel profiling of own processes and CPU-wide events; no raw tracepoint access",
        1 => "user and kernel profiling of own processes; no CPU-wide (-a) events",
        2 => "user-space profiling of own processes only",
        3 => "no profiling for unprivileged users (distribution patch)",
        _ => "nothing works unprivileged (Debian level 4 patch)",
    }
}

/// True when this process holds CAP_PERFMON or CAP_SYS_ADMIN in its effective set. This is a
/// fact about ruperf itself, so it is read from the host's /proc/self, never under --sysroot.
pub fn has_perf_capability() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_PERFMON) != 0 || caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// The one-line fix for a refused perf_event_open.
pub fn permission_fix(root: &Sysroot) -> String {
    let level = match paranoid(root) {
        Some(l) => format!(
            "kernel.perf_event_paranoid is {l} ({})",
            paranoid_meaning(l)
        ),
        None => "kernel.perf_event_paranoid is unreadable".to_string(),
    };
    if has_perf_capability() {
        return format!(
            "the kernel refused it although ruperf holds CAP_PERFMON or CAP_SYS_ADMIN ({level}): \
             a security policy (lockdown, an LSM) or a limit on this particular event forbids it, \
             so neither the paranoid level nor a capability will help"
        );
    }
    format!(
        "{level}; lower it (`sudo sysctl kernel.perf_event_paranoid=-1`) or give a group-restricted \
         copy of ruperf CAP_PERFMON (see Permissions in ruperf's README; its users can then profile \
         every process)"
    )
}

/// How a failed perf_event_open should be shown.
#[derive(Debug)]
pub enum OpenFailure {
    /// The event does not exist on this machine: shown as `<not supported>`.
    NotSupported(String),
    /// Anything else: a hard error.
    Fatal(Error),
}

/// Classifies a perf_event_open errno for `event`, as perf does.
pub fn classify_open_error(
    event: &str,
    err: &io::Error,
    root: &Sysroot,
    target: &str,
) -> OpenFailure {
    match err.raw_os_error() {
        Some(libc::ENOENT) => OpenFailure::NotSupported(format!(
            "{event}: not supported here (ENOENT: no PMU on this machine provides it)"
        )),
        Some(libc::EOPNOTSUPP) => OpenFailure::NotSupported(format!(
            "{event}: not supported here (EOPNOTSUPP: the PMU cannot do this, e.g. sampling or privilege filters)"
        )),
        Some(libc::ENODEV) | Some(libc::ENXIO) => OpenFailure::NotSupported(format!(
            "{event}: not supported here (ENODEV: the PMU is absent or offline on this CPU)"
        )),
        Some(libc::EACCES) | Some(libc::EPERM) => OpenFailure::Fatal(Error::Permission(format!(
            "no permission to count {event} on {target}: {}",
            permission_fix(root)
        ))),
        Some(libc::EMFILE) | Some(libc::ENFILE) => OpenFailure::Fatal(Error::Os(format!(
            "too many open files while opening {event}: raise the limit with `ulimit -n` or count fewer events/CPUs"
        ))),
        Some(libc::ESRCH) => OpenFailure::Fatal(Error::Usage(format!(
            "{target} does not exist (it may have exited)"
        ))),
        Some(libc::EINVAL) => OpenFailure::NotSupported(format!(
            "{event}: the kernel rejected its attributes (EINVAL); check the modifiers and terms"
        )),
        Some(libc::E2BIG) => OpenFailure::Fatal(Error::Unavailable(format!(
            "{event}: this kernel's perf_event_attr is older than ruperf expects (E2BIG)"
        ))),
        Some(libc::EBUSY) => OpenFailure::NotSupported(format!(
            "{event}: the PMU is busy (another exclusive user holds it)"
        )),
        _ => OpenFailure::Fatal(Error::Os(format!("cannot open {event}: {err}"))),
    }
}

/// Raises the soft RLIMIT_NOFILE towards the hard limit so that at least `needed` fds fit.
pub fn ensure_fd_limit(needed: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = needed.saturating_add(64);
        if soft < want {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paranoid_from_fake_tree() {
        let dir = std::env::temp_dir().join(format!("ruperf-par-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("proc/sys/kernel")).unwrap();
        std::fs::write(dir.join("proc/sys/kernel/perf_event_paranoid"), "4\n").unwrap();
        let root = Sysroot::new(&dir);
        assert_eq!(paranoid(&root), Some(4));
        assert!(permission_fix(&root).contains("is 4 (nothing works unprivileged"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errno_classes() {
        let root = Sysroot::default();
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert!(matches!(
            classify_open_error("cycles", &e, &root, "x"),
            OpenFailure::NotSupported(_)
        ));
        let e = io::Error::from_raw_os_error(libc::EACCES);
        match classify_open_error("cycles", &e, &root, "x") {
            OpenFailure::Fatal(Error::Permission(m)) => assert!(m.contains("CAP_PERFMON")),
            other => panic!("{other:?}"),
        }
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        match classify_open_error("cycles", &e, &root, "x") {
            OpenFailure::Fatal(Error::Os(m)) => assert!(m.contains("ulimit -n")),
            other => panic!("{other:?}"),
        }
    }
}
