//! Errors and exit codes.
//!
//! Every failure ruperf reports is an [`Error`]; `main` prints its message as one line,
//! `ruperf: error: <message>`, and exits with [`Error::exit_code`]. The codes follow
//! BSD `sysexits.h` so that scripts can tell ruperf's own failures apart from the
//! profiled command's status (which `stat` and `record` pass through unchanged).

use std::path::PathBuf;

/// Exit codes ruperf uses for its own failures (documented in README.md).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A self-test failed (`ruperf test`) or a filter matched nothing (`ruperf list`).
    pub const FAILED: i32 = 1;
    /// Command-line usage error: bad flag, bad value, malformed event string (EX_USAGE).
    pub const USAGE: i32 = 64;
    /// Input data is malformed: not a perf.data file, corrupted records (EX_DATAERR).
    pub const DATAERR: i32 = 65;
    /// Input file or target does not exist: missing perf.data, pid not found (EX_NOINPUT).
    pub const NOINPUT: i32 = 66;
    /// The requested event or energy source is not available on this machine (EX_UNAVAILABLE).
    pub const UNAVAILABLE: i32 = 69;
    /// Internal error; please report it (EX_SOFTWARE).
    pub const SOFTWARE: i32 = 70;
    /// Operating-system error: fork failed, too many open files (EX_OSERR).
    pub const OSERR: i32 = 71;
    /// An output file cannot be created (EX_CANTCREAT).
    pub const CANTCREAT: i32 = 73;
    /// I/O error while reading or writing, e.g. a full disk (EX_IOERR).
    pub const IOERR: i32 = 74;
    /// Permission denied by perf_event_paranoid or a missing capability (EX_NOPERM).
    pub const NOPERM: i32 = 77;
    /// `stat --baseline --fail-above`: a gated event regressed beyond the threshold, with
    /// significance (not an error: the measurement itself succeeded).
    pub const REGRESSED: i32 = 79;
    /// The command to profile could not be executed (found but not executable), as a shell does.
    pub const CMD_NOT_EXECUTABLE: i32 = 126;
    /// The command to profile was not found, as a shell does.
    pub const CMD_NOT_FOUND: i32 = 127;
}

/// The crate-wide error type. Each message names the thing at fault and, where there is
/// one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad command-line value.
    #[error("{0}")]
    Usage(String),
    /// An event string that does not parse or names nothing known.
    #[error("{0}")]
    Event(String),
    /// The event exists in the grammar but this machine cannot count it.
    #[error("{0}")]
    Unavailable(String),
    /// perf_event_open (or another interface) refused for lack of privilege.
    #[error("{0}")]
    Permission(String),
    /// The target process does not exist.
    #[error("{}", describe_missing_process(*.0))]
    NoSuchProcess(i32),
    /// The command to run was not found.
    #[error("{0}: command not found")]
    CommandNotFound(String),
    /// The command to run exists but cannot be executed.
    #[error("{cmd}: cannot execute: {reason}")]
    CommandNotExecutable {
        /// The command as given.
        cmd: String,
        /// Why exec failed.
        reason: String,
    },
    /// An input file is missing.
    #[error("{path}: {reason}")]
    NoInput {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Malformed input data.
    #[error("{0}")]
    Data(String),
    /// An output file cannot be created.
    #[error("cannot create {path}: {source} (choose a writable path with -o)")]
    CantCreate {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// I/O failure on an open file.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An operating-system resource failure (fork, fds, memory maps).
    #[error("{0}")]
    Os(String),
    /// A self-test failed or a filter matched nothing; the message says which.
    #[error("{0}")]
    Failed(String),
    /// A bug in ruperf.
    #[error("internal error: {0} (please report this)")]
    Internal(String),
}

impl Error {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Event(_) => exit::USAGE,
            Error::Unavailable(_) => exit::UNAVAILABLE,
            Error::Permission(_) => exit::NOPERM,
            Error::NoSuchProcess(_) => exit::NOINPUT,
            Error::CommandNotFound(_) => exit::CMD_NOT_FOUND,
            Error::CommandNotExecutable { .. } => exit::CMD_NOT_EXECUTABLE,
            Error::NoInput { .. } => exit::NOINPUT,
            Error::Data(_) => exit::DATAERR,
            Error::CantCreate { .. } => exit::CANTCREAT,
            Error::Io { .. } => exit::IOERR,
            Error::Os(_) => exit::OSERR,
            Error::Failed(_) => exit::FAILED,
            Error::Internal(_) => exit::SOFTWARE,
        }
    }

    /// Wraps an I/O error with a description of what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Why `pid` cannot be profiled: it does not exist, or it is a zombie (it has exited and only
/// waits for its parent to collect its status; `ps` still lists it).
fn describe_missing_process(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses and may contain anything.
    let mut after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace());
    let state = after.as_mut().and_then(|f| f.next());
    let parent = after.as_mut().and_then(|f| f.next());
    match (state, parent) {
        (Some("Z"), Some(ppid)) => format!(
            "process {pid} has exited: it is a zombie waiting for its parent (pid {ppid}) to \
             reap it, so there is nothing left to profile (profile a running process instead)"
        ),
        _ => format!("no such process: {pid} (check the pid with `ps -p {pid}`)"),
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
