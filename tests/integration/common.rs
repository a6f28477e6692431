//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::Mutex;

/// True when skips must fail (CI).
pub fn strict() -> bool {
    std::env::var("RUPERF_STRICT_TESTS").is_ok_and(|v| v == "1")
}

/// Skips the current test with a printed reason, or fails it under RUPERF_STRICT_TESTS=1.
#[macro_export]
macro_rules! require {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            let reason = format!($($reason)+);
            if $crate::common::strict() {
                panic!("required under RUPERF_STRICT_TESTS=1 but missing: {reason}");
            }
            // Straight to the process's stderr, not through the test harness's capture, so a
            // plain `cargo test` shows every skip and its reason.
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("SKIP: {}: {reason}\n", module_path!()),
            );
            return;
        }
    };
}

/// The ruperf binary under test.
pub fn ruperf() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("ruperf").expect("ruperf binary")
}

/// Path of the ruperf binary (for scripts and std::process).
pub fn ruperf_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("ruperf")
}

/// True when Debian's perf is installed and runs.
pub fn have_perf() -> bool {
    StdCommand::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The mounted tracefs, if any.
pub fn tracefs() -> Option<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Compiles tests/workloads/NAME.c (once per test run) with frame pointers and symbols, and
/// returns the executable's path.
pub fn workload(name: &str) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/workloads/{name}.c"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("workload-{name}"));
    let fresh = match (std::fs::metadata(&src), std::fs::metadata(&out)) {
        (Ok(s), Ok(o)) => o.modified().unwrap() >= s.modified().unwrap(),
        _ => false,
    };
    if !fresh {
        let status = StdCommand::new("cc")
            .args(["-O1", "-g", "-fno-omit-frame-pointer", "-fno-inline", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("running cc (install gcc)");
        assert!(status.success(), "cc failed for {}", src.display());
    }
    out
}

/// Starts `cmd`, sends it `sig` after `delay_ms`, and returns its output once it has exited.
/// The caller chooses stdio: capture stderr only when no orphan the signal leaves behind can
/// hold the pipe open.
pub fn signal_after(
    cmd: &mut StdCommand,
    delay_ms: u64,
    sig: nix::sys::signal::Signal,
) -> std::process::Output {
    let child = cmd.spawn().expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).expect("kill");
    child.wait_with_output().expect("wait")
}

/// A workload running in the background while a test attaches to it; killed and reaped when
/// dropped, also when the test fails half-way.
pub struct Background(std::process::Child);

impl Background {
    /// Starts tests/workloads/NAME.c with `args`, its output discarded, and gives it `settle_ms`
    /// to get going.
    pub fn start(name: &str, args: &[&str], settle_ms: u64) -> Self {
        let child = StdCommand::new(workload(name))
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start workload");
        std::thread::sleep(std::time::Duration::from_millis(settle_ms));
        Background(child)
    }

    /// Its pid, as `-p` takes it.
    pub fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
