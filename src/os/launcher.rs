//! Launching the profiled command.
//!
//! Two ways, both leaving ruperf's own pre-exec work uncounted:
//! - [`GatedChild::spawn`]: the child is forked and held at a gate (a pipe it blocks reading)
//!   until ruperf has armed every counter on its pid; only then is it released to exec the
//!   command. Counters are opened disabled with `enable_on_exec`. A second close-on-exec pipe
//!   reports an exec failure back as its errno. Needed when counters must not be inherited, and
//!   for sampling.
//! - [`GatedChild::start`]: counters were already opened on the calling thread, disabled, with
//!   `inherit` and `enable_on_exec`. The kernel copies them into the child when it is created
//!   and they start counting at its exec, so no gate is needed and the child is started by
//!   posix_spawn (no copy of ruperf's page tables). This is `stat`'s default.
//!
//! Signals: the caller blocks SIGINT/SIGTERM/SIGHUP with [`SignalWatch`] and reads them from a
//! signalfd; the child's mask and SIGPIPE disposition are reset before exec, so the command runs
//! with default signal handling.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::error::{Error, Result};
use crate::os::sys;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum ExitStatus {
    /// Exited with this status code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

impl ExitStatus {
    /// The status a shell would report: the code, or 128 + signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

/// CPU time the child and its waited-for descendants used.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ChildTimes {
    /// User-mode seconds.
    pub user: f64,
    /// Kernel-mode seconds.
    pub sys: f64,
}

/// Finds the program the way execvp would: a name with a slash is a path; otherwise each
/// PATH entry is tried. Returns 127/126-class errors a shell would give.
pub fn resolve_program(prog: &OsStr) -> Result<PathBuf> {
    let name = prog.to_string_lossy().into_owned();
    if prog.is_empty() {
        return Err(Error::CommandNotFound(name));
    }
    let candidates: Vec<PathBuf> = if prog.as_bytes().contains(&b'/') {
        vec![PathBuf::from(prog)]
    } else {
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::split_paths(&path).map(|d| d.join(prog)).collect()
    };
    let mut not_executable: Option<String> = None;
    for c in candidates {
        let Ok(meta) = std::fs::metadata(&c) else {
            continue;
        };
        if meta.is_dir() {
            not_executable.get_or_insert_with(|| "is a directory".into());
            continue;
        }
        if nix::unistd::access(&c, nix::unistd::AccessFlags::X_OK).is_ok() {
            return Ok(c);
        }
        not_executable.get_or_insert_with(|| "permission denied (chmod +x it)".into());
    }
    match not_executable {
        Some(reason) => Err(Error::CommandNotExecutable { cmd: name, reason }),
        None => Err(Error::CommandNotFound(name)),
    }
}

/// A forked child waiting at the gate, or running after [`GatedChild::release`].
#[derive(Debug)]
pub struct GatedChild {
    pid: i32,
    /// The gate and the exec-error pipe while the child is held; None once it runs.
    held: Option<(OwnedFd, OwnedFd)>,
    pidfd: OwnedFd,
    program: String,
    reaped: Option<ExitStatus>,
}

impl GatedChild {
    /// Forks a child that will exec `argv` once released. `argv[0]` is resolved through PATH
    /// first, so "command not found" is reported without forking.
    pub fn spawn(argv: &[OsString]) -> Result<Self> {
        // Everything the child needs is prepared before fork: it must not allocate.
        let exec = Exec::new(argv)?;
        let (c_path, c_argv) = (&exec.path, &exec.argv);
        let program = exec.program.clone();

        let (gate_r, gate_w) = pipe_cloexec()?;
        let (err_r, err_w) = pipe_cloexec()?;
        let empty = SigSet::empty();

        // SAFETY: fork in a process that may have other threads; the child below only calls
        // async-signal-safe functions (close, sigprocmask, signal, read, execv, write, _exit)
        // on data prepared before the fork, and never returns into Rust code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Error::Os(format!(
                "cannot fork to run {program}: {} (raise `ulimit -u` or free memory)",
                std::io::Error::last_os_error()
            )));
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child; see the comment on fork above.
            unsafe {
                libc::close(gate_w.as_raw_fd());
                libc::close(err_r.as_raw_fd());
                libc::sigprocmask(libc::SIG_SETMASK, empty.as_ref(), std::ptr::null_mut());
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                let mut byte = 0u8;
                let n = loop {
                    let n = libc::read(gate_r.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                    if n < 0 && *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    break n;
                };
                if n != 1 {
                    // The parent gave up before arming the counters: run nothing.
                    libc::_exit(127);
                }
                libc::execv(c_path.as_ptr(), c_argv.as_ptr());
                let errno: i32 = *libc::__errno_location();
                let bytes = errno.to_ne_bytes();
                libc::write(err_w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                libc::_exit(127);
            }
        }
        drop(gate_r);
        drop(err_w);
        let pidfd =
            sys::pidfd_open(pid).map_err(|e| Error::Os(format!("pidfd_open({pid}): {e}")))?;
        Ok(GatedChild {
            pid,
            held: Some((gate_w, err_r)),
            pidfd,
            program,
            reaped: None,
        })
    }

    /// Starts `argv` at once, for counters opened beforehand on the calling thread with
    /// `inherit` and `enable_on_exec` (see the module documentation); must be called from that
    /// thread. The child is started by the C library's posix_spawn (a vfork-style clone that
    /// does not copy ruperf's page tables; the C library itself makes the child safe against
    /// other threads and signal handlers) with an empty signal mask and SIGPIPE's default
    /// action. `std::process::Command` would be the first choice, but its posix_spawn path
    /// leaves the child with ruperf's blocked signals (SIGINT, SIGTERM, SIGHUP), and its fork
    /// path copies the page tables. Exec failures are reported here (126 class; "not found"
    /// is found out before).
    pub fn start(argv: &[OsString]) -> Result<Self> {
        let exec = Exec::new(argv)?;
        let env: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let pid = sys::posix_spawn_reset(&exec.path, &exec.argv, &envp).map_err(|errno| {
            if errno == libc::EAGAIN || errno == libc::ENOMEM {
                Error::Os(format!(
                    "cannot start {}: {} (raise `ulimit -u` or free memory)",
                    exec.program,
                    std::io::Error::from_raw_os_error(errno)
                ))
            } else {
                exec_error(&exec.program, errno)
            }
        })?;
        // The pid is ours to reap (with wait4, for the CPU times); the pidfd is opened before.
        let pidfd =
            sys::pidfd_open(pid).map_err(|e| Error::Os(format!("pidfd_open({pid}): {e}")))?;
        Ok(GatedChild {
            pid,
            held: None,
            pidfd,
            program: exec.program,
            reaped: None,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A descriptor that becomes readable when the child exits (for poll).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Opens the gate: the child execs the command. Returns once exec has succeeded, or the
    /// exec error (126 class).
    /// A child from [`GatedChild::start`] is already running: this returns Ok at once.
    pub fn release(&mut self) -> Result<()> {
        let Some((gate, exec_err)) = self.held.take() else {
            return Ok(());
        };
        nix::unistd::write(&gate, &[1u8])
            .map_err(|e| Error::Os(format!("cannot start {}: {e}", self.program)))?;
        drop(gate);
        let mut buf = [0u8; 4];
        let n = loop {
            match nix::unistd::read(exec_err.as_fd(), &mut buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        match n {
            Ok(4) => {
                let _ = self.wait();
                Err(exec_error(&self.program, i32::from_ne_bytes(buf)))
            }
            _ => Ok(()),
        }
    }

    /// Sends a signal to the child (ignored if it has already been reaped).
    pub fn kill(&self, sig: i32) {
        if self.reaped.is_none() {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), s);
            }
        }
    }

    /// Waits for the child to end; returns its status and CPU times.
    pub fn wait(&mut self) -> Result<(ExitStatus, ChildTimes)> {
        let mut status: libc::c_int = 0;
        let mut ru: libc::rusage = rusage_zero();
        loop {
            // SAFETY: wait4 writes one int and one rusage through valid pointers to locals.
            let r = unsafe { libc::wait4(self.pid, &mut status, 0, &mut ru) };
            if r == self.pid {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if let Some(st) = self.reaped {
                return Ok((st, ChildTimes::default()));
            }
            return Err(Error::Os(format!("waiting for {}: {err}", self.program)));
        }
        let st = if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        };
        self.reaped = Some(st);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok((
            st,
            ChildTimes {
                user: tv(ru.ru_utime),
                sys: tv(ru.ru_stime),
            },
        ))
    }
}

impl Drop for GatedChild {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            if self.held.is_some() {
                // Never released: closing the gate makes the child exit without running.
                self.held = None;
            } else {
                self.kill(libc::SIGKILL);
            }
            let _ = self.wait();
        }
    }
}

/// The error for a failed exec of a program that [`resolve_program`] found: not executable
/// (126, as a shell says). ENOENT here means the `#!` interpreter or the ELF loader is missing.
fn exec_error(program: &str, errno: i32) -> Error {
    let reason = if errno == libc::ENOENT {
        "its #! interpreter or ELF loader does not exist".to_string()
    } else {
        std::io::Error::from_raw_os_error(errno).to_string()
    };
    Error::CommandNotExecutable {
        cmd: program.to_string(),
        reason,
    }
}

/// A command ready to exec: `argv[0]` resolved through PATH ("command not found" is reported
/// here, before any child exists) and every string as C needs it, so that the child only
/// calls execve.
struct Exec {
    program: String,
    path: CString,
    /// Owns the strings `argv` points into.
    _args: Vec<CString>,
    /// NULL-terminated.
    argv: Vec<*const libc::c_char>,
}

impl Exec {
    fn new(argv: &[OsString]) -> Result<Self> {
        let first = argv
            .first()
            .ok_or_else(|| Error::Usage("no command given to run".into()))?;
        let path = cstring(resolve_program(first)?.as_os_str())?;
        let args: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<Result<_>>()?;
        let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(Exec {
            program: first.to_string_lossy().into_owned(),
            path,
            _args: args,
            argv: ptrs,
        })
    }
}

fn rusage_zero() -> libc::rusage {
    // SAFETY: rusage is a plain C struct of integers for which all-zero is valid.
    unsafe { std::mem::zeroed() }
}

fn cstring(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        Error::Usage(format!(
            "argument contains a NUL byte: {}",
            s.to_string_lossy()
        ))
    })
}

fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
        Error::Os(format!(
            "pipe: {e} (too many open files? raise `ulimit -n`)"
        ))
    })
}

/// A signal received through the signalfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Signal number.
    pub signo: i32,
    /// True when sent by a process (kill(2)); false when the kernel or the terminal raised it
    /// (then the whole foreground process group, the child included, got it already).
    pub from_process: bool,
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and threads it starts later) and
/// delivers them through a signalfd instead. Restores the old mask on drop.
#[derive(Debug)]
pub struct SignalWatch {
    fd: SignalFd,
    old: SigSet,
}

impl SignalWatch {
    /// Starts watching. Call before spawning threads, so they inherit the mask.
    pub fn new() -> Result<Self> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGHUP);
        let old = set
            .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
            .map_err(|e| Error::Os(format!("sigprocmask: {e}")))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| Error::Os(format!("signalfd: {e}")))?;
        Ok(SignalWatch { fd, old })
    }

    /// The pollable descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads every pending signal.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            out.push(Received {
                signo: info.ssi_signo as i32,
                from_process: info.ssi_code == libc::SI_USER || info.ssi_code == libc::SI_QUEUE,
            });
        }
        out
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        let _ = self.old.thread_set_mask();
    }
}

/// A periodic tick whose deadlines are fixed by the kernel (timerfd with an interval):
/// late wake-ups do not shift later ticks, so `-I` rows do not drift.
#[derive(Debug)]
pub struct Ticker {
    fd: TimerFd,
}

impl Ticker {
    /// Ticks every `period`, the first one `period` from now.
    pub fn new(period: Duration) -> Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )
        .map_err(|e| Error::Os(format!("timerfd_create: {e}")))?;
        fd.set(
            Expiration::Interval(TimeSpec::from_duration(period)),
            TimerSetTimeFlags::empty(),
        )
        .map_err(|e| Error::Os(format!("timerfd_settime: {e}")))?;
        Ok(Ticker { fd })
    }

    /// The pollable descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Number of ticks that have elapsed since the last call (0 if none). Reading also
    /// re-arms the kernel's timer for the next period.
    pub fn take(&self) -> u64 {
        let mut buf = [0u8; 8];
        match nix::unistd::read(self.fd.as_fd(), &mut buf) {
            Ok(8) => u64::from_ne_bytes(buf),
            _ => 0,
        }
    }
}

/// True if a process with this pid exists (kill(pid, 0) succeeds or fails with EPERM).
pub fn process_exists(pid: i32) -> bool {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// The path of a program for messages.
pub fn display_cmd(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs_like_a_shell() {
        assert!(resolve_program(OsStr::new("sh")).is_ok());
        assert!(matches!(
            resolve_program(OsStr::new("definitely-not-a-command-xyz")),
            Err(Error::CommandNotFound(_))
        ));
        let plain = std::env::temp_dir().join(format!("ruperf-plain-{}", std::process::id()));
        std::fs::write(&plain, "not a program").unwrap();
        assert!(matches!(
            resolve_program(plain.as_os_str()),
            Err(Error::CommandNotExecutable { .. })
        ));
        std::fs::remove_file(&plain).unwrap();
        assert!(matches!(
            resolve_program(OsStr::new("/tmp")),
            Err(Error::CommandNotExecutable { .. })
        ));
    }

    #[test]
    fn gated_child_runs_only_when_released() {
        let argv: Vec<OsString> = vec!["sh".into(), "-c".into(), "exit 7".into()];
        let mut child = GatedChild::spawn(&argv).unwrap();
        child.release().unwrap();
        let (st, _) = child.wait().unwrap();
        assert_eq!(st, ExitStatus::Exited(7));
        assert_eq!(st.shell_code(), 7);
        assert_eq!(ExitStatus::Signaled(9).shell_code(), 137);
    }

    #[test]
    fn unreleased_child_never_runs() {
        let dir = std::env::temp_dir().join(format!("ruperf-gate-{}", std::process::id()));
        let argv: Vec<OsString> = vec![
            "sh".into(),
            "-c".into(),
            format!("touch {}", dir.display()).into(),
        ];
        let child = GatedChild::spawn(&argv).unwrap();
        drop(child);
        assert!(!dir.exists());
    }
}
