//! Security and robustness, checked the way an attacker would try them.
//!
//! CI runs as root, so each test that needs an unprivileged user creates one
//! (`useradd --system`), runs ruperf as that user through `setpriv`, and removes the user when
//! the test ends, also when it fails half-way ([`TestUser`]'s Drop). The capability case runs
//! a copy of the binary given `cap_perfmon+ep` with `setcap`, as the README tells admins to.

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::common::{ruperf_path, workload};

/// useradd and userdel lock /etc/passwd: one at a time.
static ACCOUNTS: Mutex<()> = Mutex::new(());

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Root and the tools to make a user and to drop to it, or a visible skip.
macro_rules! require_user_tools {
    () => {
        require!(
            nix::unistd::geteuid().is_root(),
            "needs root to create an unprivileged user"
        );
        require!(
            have("useradd", "--help") && have("userdel", "--help") && have("setpriv", "--version"),
            "needs useradd/userdel (passwd) and setpriv (util-linux)"
        );
    };
}

/// A system user that exists for one test.
struct TestUser {
    name: String,
    uid: u32,
}

impl TestUser {
    fn create(tag: &str) -> TestUser {
        let name = format!("rps{}{tag}", std::process::id() % 100_000);
        let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel").arg(&name).output();
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(&name)
            .output()
            .expect("running useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uid = nix::unistd::User::from_name(&name)
            .expect("getpwnam")
            .expect("the new user")
            .uid
            .as_raw();
        TestUser { name, uid }
    }

    /// `setpriv` running `program` as this user, with no groups and no inheritable
    /// capabilities.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.uid))
            .args(["--clear-groups", "--inh-caps=-all", "--"])
            .arg(program);
        c.stdin(Stdio::null());
        c
    }

    /// A fresh directory owned by this user (mode 0755) inside `parent`.
    fn own_dir(&self, parent: &Path, name: &str) -> PathBuf {
        let d = parent.join(name);
        std::fs::create_dir(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(self.uid), Some(self.uid)).unwrap();
        d
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// A root-owned 0755 directory under /tmp (so that every user can reach it), removed at the
/// end.
struct RootDir(PathBuf);

impl RootDir {
    fn new(tag: &str) -> RootDir {
        let d =
            nix::unistd::mkdtemp(&std::env::temp_dir().join(format!("ruperf-sec-{tag}-XXXXXX")))
                .expect("mkdtemp");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        RootDir(d)
    }
}

impl Drop for RootDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Builds a shared library whose constructor creates the file named by $RUPERF_MARK: if it
/// is ever loaded, the file says so.
fn marker_library(dir: &Path) -> PathBuf {
    let src = dir.join("mark.c");
    std::fs::write(
        &src,
        "#include <fcntl.h>\n#include <stdlib.h>\n#include <unistd.h>\n\
         __attribute__((constructor)) static void mark(void) {\n\
         const char *m = getenv(\"RUPERF_MARK\");\n\
         if (m) { int fd = open(m, O_CREAT | O_WRONLY, 0644); if (fd >= 0) close(fd); }\n}\n",
    )
    .unwrap();
    let lib = dir.join("libmark.so");
    let st = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("running cc");
    assert!(st.success(), "cc -shared failed");
    lib
}

#[test]
fn a_capability_binary_loads_no_user_code_and_trusts_no_user_path() {
    require_user_tools!();
    require!(
        have("setcap", "-h") || Path::new("/usr/sbin/setcap").exists(),
        "needs setcap (libcap2-bin)"
    );
    let root = RootDir::new("caps");
    let user = TestUser::create("c");
    let home = user.own_dir(&root.0, "home");
    let lib = marker_library(&home);
    std::os::unix::fs::chown(&lib, Some(user.uid), Some(user.uid)).unwrap();
    let mark = home.join("loaded");
    let plain = root.0.join("ruperf-plain");
    let capped = root.0.join("ruperf-perfmon");
    std::fs::copy(ruperf_path(), &plain).unwrap();
    std::fs::copy(ruperf_path(), &capped).unwrap();
    let st = Command::new("setcap")
        .arg("cap_perfmon+ep")
        .arg(&capped)
        .status()
        .expect("setcap");
    if !st.success() {
        // A filesystem without security xattrs cannot hold file capabilities.
        require!(false, "setcap failed on {}", capped.display());
    }

    // Without privilege the environment is the user's own business: the library loads.
    let out = user
        .command(&plain)
        .env("RUPERF_NVML_LIB", &lib)
        .env("RUPERF_MARK", &mark)
        .args(["list", "energy"])
        .output()
        .unwrap();
    assert!(
        mark.exists(),
        "control: an unprivileged ruperf loads RUPERF_NVML_LIB: {}",
        text(&out)
    );
    std::fs::remove_file(&mark).unwrap();

    // With CAP_PERFMON: the variable is ignored, with a warning, and nothing is loaded.
    let out = user
        .command(&capped)
        .env("RUPERF_NVML_LIB", &lib)
        .env("RUPERF_MARK", &mark)
        .args(["list", "energy"])
        .output()
        .unwrap();
    let err = text(&out);
    assert!(
        !mark.exists(),
        "a privileged ruperf loaded a user's library: {err}"
    );
    assert!(err.contains("ignoring RUPERF_NVML_LIB="), "{err}");
    assert_ne!(out.status.code(), Some(134), "{err}");

    // --nvml-lib and --sysroot naming user-owned paths: refused, 77, one line naming the path.
    for (flag, path) in [("--nvml-lib", &lib), ("--sysroot", &home)] {
        let out = user
            .command(&capped)
            .env("RUPERF_MARK", &mark)
            .arg(flag)
            .arg(path)
            .args(["list", "energy"])
            .output()
            .unwrap();
        let err = text(&out);
        assert_eq!(out.status.code(), Some(77), "{flag}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("refusing {flag} {}", path.display()))
                && err.contains("is not owned by root"),
            "{err}"
        );
        assert!(!mark.exists(), "{flag}: loaded anyway");
    }
    // A root-owned path under a world-writable directory is refused too (the parent rule).
    let tmp_lib = std::env::temp_dir().join(format!("ruperf-sec-lib-{}.so", std::process::id()));
    std::fs::copy(&lib, &tmp_lib).unwrap();
    let out = user
        .command(&capped)
        .arg("--nvml-lib")
        .arg(&tmp_lib)
        .args(["list", "energy"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&tmp_lib);
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(
        text(&out).contains("writable by group or others"),
        "{}",
        text(&out)
    );
    // Its self-test says what the capability changes.
    let out = user
        .command(&capped)
        .args(["test", "-v", "permissions"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out));
    assert!(
        stdout.contains("with CAP_PERFMON") && stdout.contains("RUPERF_NVML_LIB is ignored"),
        "{stdout}"
    );
    // A setuid-root copy refuses to run at all: it would start the command as root.
    let setuid = root.0.join("ruperf-setuid");
    std::fs::copy(ruperf_path(), &setuid).unwrap();
    std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let out = user
        .command(&setuid)
        .args(["stat", "-e", "task-clock", "--", "id", "-u"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(
        out.stdout.is_empty(),
        "the command must not run: {:?}",
        out.stdout
    );
    assert!(text(&out).contains("setuid"), "{}", text(&out));
    // A root-owned tree is accepted, and the capability really works (system-wide counting
    // at perf_event_paranoid ≥ 1 needs it).
    let out = user
        .command(&capped)
        .args(["--sysroot", "/", "stat", "-a", "-e", "cpu-clock", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn recordings_are_private_and_outputs_never_follow_a_planted_link() {
    require_user_tools!();
    let root = RootDir::new("rec");
    let user = TestUser::create("r");
    let home = user.own_dir(&root.0, "home");
    // The user records: the file is 0600.
    let data = home.join("perf.data");
    let out = user
        .command(ruperf_path())
        .arg("record")
        .arg("-o")
        .arg(&data)
        .args(["-e", "cpu-clock", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let meta = std::fs::metadata(&data).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "perf creates perf.data 0600");
    assert_eq!(meta.uid(), user.uid);
    // Root records into a path where the user planted a link to a root-owned file.
    let victim = root.0.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let link = home.join("trap.data");
    let st = user
        .command("ln")
        .arg("-s")
        .arg(&victim)
        .arg(&link)
        .status()
        .unwrap();
    assert!(st.success(), "the user plants the link");
    let out = Command::new(ruperf_path())
        .arg("record")
        .arg("-o")
        .arg(&link)
        .args(["-e", "cpu-clock", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    assert!(
        text(&out).contains("symbolic link owned by another user"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // The same for `stat -o` and `report --flamegraph`.
    for args in [
        vec![
            "stat".to_string(),
            "-o".into(),
            link.display().to_string(),
            "true".into(),
        ],
        vec![
            "report".to_string(),
            "-i".into(),
            data.display().to_string(),
            "--flamegraph".into(),
            link.display().to_string(),
        ],
    ] {
        let out = Command::new(ruperf_path()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(73), "{args:?}: {}", text(&out));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "{args:?}");
    }
    // A link of root's own, such as /dev/stdout, is followed as perf follows it.
    let out = Command::new(ruperf_path())
        .args(["stat", "-o", "/dev/stdout", "-e", "task-clock", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("task-clock"));
    // Root's own recording: the user may not read it, and is told why (77).
    let root_data = root.0.join("root.data");
    let out = Command::new(ruperf_path())
        .arg("record")
        .arg("-o")
        .arg(&root_data)
        .args(["-e", "cpu-clock", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = user
        .command(ruperf_path())
        .arg("report")
        .arg("-i")
        .arg(&root_data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
    assert!(text(&out).contains("permission denied"), "{}", text(&out));
}

#[test]
fn report_never_opens_a_fifo_named_in_a_recording() {
    require_user_tools!();
    let root = RootDir::new("fifo");
    let user = TestUser::create("f");
    let home = user.own_dir(&root.0, "home");
    let prog = home.join("hot");
    std::fs::copy(workload("hot"), &prog).unwrap();
    std::os::unix::fs::chown(&prog, Some(user.uid), Some(user.uid)).unwrap();
    let data = home.join("perf.data");
    let out = user
        .command(ruperf_path())
        .arg("record")
        .arg("-o")
        .arg(&data)
        .arg("--")
        .arg(&prog)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The recorded program is replaced by a FIFO of the same name: opening it for reading
    // would block until a writer came, i.e. forever.
    std::fs::remove_file(&prog).unwrap();
    nix::unistd::mkfifo(&prog, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let mut child = user
        .command(ruperf_path())
        .arg("report")
        .arg("-i")
        .arg(&data)
        .args(["--stdio", "--sort", "dso,sym"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("report blocked on the FIFO named in the recording");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("is not a regular file"),
        "the FIFO is named for what it is: {}",
        text(&out)
    );
}

#[test]
fn self_test_scratch_ignores_planted_directories_and_leaves_nothing() {
    require_user_tools!();
    let user = TestUser::create("t");
    // A shared sticky temporary directory, as /tmp is.
    let shared = RootDir::new("tmp");
    std::fs::set_permissions(&shared.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = RootDir::new("victim");
    // The user plants the old predictable names (`ruperf-test-PID`) for the next pids,
    // each a link to a root-owned directory.
    let next = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1);
    let script = format!(
        "for p in $(seq {} {}); do ln -s {} {}/ruperf-test-$p; done",
        next + 1,
        next + 400,
        victim.0.display(),
        shared.0.display()
    );
    let st = user.command("sh").args(["-c", &script]).status().unwrap();
    assert!(st.success());
    let planted = std::fs::read_dir(&shared.0).unwrap().count();
    let out = Command::new(ruperf_path())
        .env("TMPDIR", &shared.0)
        .args(["test", "sampling", "round trip"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(134), "{}", text(&out));
    assert_eq!(
        std::fs::read_dir(&victim.0).unwrap().count(),
        0,
        "ruperf test wrote through a planted link"
    );
    assert_eq!(
        std::fs::read_dir(&shared.0).unwrap().count(),
        planted,
        "the scratch directory is removed at the end"
    );
}

/// Every subcommand, with stdout and stderr closed and with both on /dev/full: never an
/// abort or a signal, and the code README's table documents.
#[test]
fn closed_or_full_standard_streams_never_abort() {
    let dir = crate::common::scratch("closed-streams");
    let data = dir.join("perf.data");
    let st = Command::new(ruperf_path())
        .arg("record")
        .arg("-o")
        .arg(&data)
        .args(["-e", "cpu-clock", "-g", "--"])
        .arg(workload("hot"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let d = data.to_str().unwrap();
    let out_file = dir.join("out.data");
    let o = out_file.to_str().unwrap();
    let svg = dir.join("fg.svg");
    let s = svg.to_str().unwrap();
    // (arguments, code with closed streams, code with /dev/full). Writing the counts or the
    // report to a full stdout or stderr is an I/O error (74); a closed stream discards output.
    let cases: &[(&[&str], i32, i32)] = &[
        (&["--help"], 0, 0),
        (&["list"], 0, 74),
        (&["list", "sw"], 0, 74),
        (&["list", "no-such-event-anywhere"], 1, 1),
        (&["test", "--list"], 0, 74),
        (&["test", "1", "3"], 0, 74),
        (&["stat", "-e", "task-clock", "true"], 0, 74),
        (&["stat", "-j", "-e", "task-clock", "true"], 0, 74),
        (&["stat", "-e", "bogus-event", "true"], 64, 64),
        (&["record", "-o", o, "-e", "cpu-clock", "true"], 0, 0),
        (&["report", "-i", d], 0, 74),
        (&["report", "-i", d, "--stdio", "-g"], 0, 74),
        (&["report", "-i", d, "--json"], 0, 74),
        (&["report", "-i", d, "--script"], 0, 74),
        (&["report", "-i", d, "--flamegraph", s], 0, 0),
        (&["report", "-i", "/nonexistent/perf.data"], 66, 66),
        (&["completions", "bash"], 0, 74),
    ];
    for (args, closed, full) in cases {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let line = format!("'{}' {}", ruperf_path().display(), quoted.join(" "));
        for (how, want) in [(">&- 2>&-", closed), (">/dev/full 2>/dev/full", full)] {
            let st = Command::new("sh")
                .arg("-c")
                .arg(format!("{line} {how}"))
                .status()
                .unwrap();
            assert_eq!(st.code(), Some(*want), "ruperf {} {how}", args.join(" "));
        }
    }
    // A closed stdout must not hand fd 1 to the recording: perf reads the file back.
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' record -o '{o}' -e cpu-clock true >&- 2>&-",
            ruperf_path().display()
        ))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let out = Command::new(ruperf_path())
        .args(["report", "-i", o])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // And a pipe closed after one line (`ruperf list 2>&1 | head -1`).
    let st = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' list 2>&1 | head -1 >/dev/null; exit ${{PIPESTATUS[0]}}",
            ruperf_path().display()
        ))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0), "ruperf list 2>&1 | head -1");
}

#[test]
fn non_utf8_arguments_are_recorded_as_raw_bytes() {
    let dir = crate::common::scratch("non-utf8-argv");
    let data = dir.join("perf.data");
    let arg = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xff\xfe");
    let out = Command::new(ruperf_path())
        .arg("record")
        .arg("-o")
        .arg(&data)
        .args(["-e", "cpu-clock", "--", "/bin/echo"])
        .arg(arg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(out.stdout, b"\xff\xfe\n", "the command got its bytes");
    let bytes = std::fs::read(&data).unwrap();
    assert!(
        bytes.windows(3).any(|w| w == b"\xff\xfe\0"),
        "raw bytes, as perf stores them"
    );
}

#[test]
fn an_unprivileged_user_is_told_the_truth() {
    require_user_tools!();
    let user = TestUser::create("u");
    // ruperf test: what this user cannot do is a skip with the fix, never FAILED (the
    // automatic `:u` retry of msr/tsc/ and a closed tracefs included).
    let out = user.command(ruperf_path()).args(["test"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out));
    assert!(!stdout.contains("FAILED"), "{stdout}");
    // Tracepoints: mounted but closed to this user is a permission error (77), not "not
    // mounted" and not "no event matches".
    let Some(tracefs) = crate::common::tracefs() else {
        require!(false, "tracefs is not mounted");
        return;
    };
    let closed = std::fs::metadata(&tracefs).unwrap().mode() & 0o005 != 0o005;
    for args in [
        &["list", "sched:*"][..],
        &["stat", "-e", "sched:sched_switch", "true"],
    ] {
        let out = user.command(ruperf_path()).args(args).output().unwrap();
        let err = text(&out);
        if closed {
            assert_eq!(out.status.code(), Some(77), "{args:?}: {err}");
            assert!(
                err.contains("is mounted at") && err.contains("may not read it"),
                "{args:?}: {err}"
            );
        } else {
            assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        }
    }
}
