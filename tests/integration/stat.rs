//! `ruperf stat` on the real kernel, compared with Debian's perf where it is installed.

use std::process::{Command, Stdio};

use crate::common::{
    have_perf, ruperf, ruperf_path, scratch, signal_after, tracefs, workload, Background,
};

/// Runs `perf stat -x, -e EVENT -- argv` and returns the first field of the event's line.
fn perf_count(event: &str, argv: &[&str]) -> f64 {
    let out = Command::new("perf")
        .args(["stat", "-x,", "-e", event, "--"])
        .args(argv)
        .stdout(Stdio::null())
        .output()
        .expect("perf runs");
    csv_value(&String::from_utf8_lossy(&out.stderr), event)
}

/// The value field of `event` in perf-style CSV text.
fn csv_value(text: &str, event: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.split(',').nth(2) == Some(event))
        .unwrap_or_else(|| panic!("no CSV line for {event} in:\n{text}"));
    line.split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line}"))
}

fn ruperf_csv(args: &[&str]) -> (String, i32) {
    let out = Command::new(ruperf_path())
        .args(args)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn exact_write_syscalls_match_perf() {
    require!(
        tracefs().is_some(),
        "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)"
    );
    let w = workload("writes");
    let w = w.to_str().unwrap();
    let (text, code) = ruperf_csv(&[
        "stat",
        "-x,",
        "-e",
        "syscalls:sys_enter_write",
        "--",
        w,
        "12345",
    ]);
    assert_eq!(code, 0, "{text}");
    let ours = csv_value(&text, "syscalls:sys_enter_write");
    assert_eq!(ours, 12345.0, "{text}");
    require!(
        have_perf(),
        "Debian's perf is not installed (apt-get install linux-perf)"
    );
    assert_eq!(perf_count("syscalls:sys_enter_write", &[w, "12345"]), ours);
}

#[test]
fn page_faults_close_to_perf() {
    let w = workload("touch_pages");
    let w = w.to_str().unwrap();
    let (text, code) = ruperf_csv(&["stat", "-x,", "-e", "page-faults", "--", w, "5000"]);
    assert_eq!(code, 0, "{text}");
    let ours = csv_value(&text, "page-faults");
    assert!(
        (5000.0..5300.0).contains(&ours),
        "5000 pages touched, {ours} faults counted"
    );
    require!(
        have_perf(),
        "Debian's perf is not installed (apt-get install linux-perf)"
    );
    let theirs = perf_count("page-faults", &[w, "5000"]);
    // Start-up faults vary by a few pages between runs; 2% covers it.
    assert!(
        (ours - theirs).abs() <= theirs * 0.02,
        "ruperf {ours} vs perf {theirs}"
    );
}

#[test]
fn inherit_counts_children_and_no_inherit_does_not() {
    require!(tracefs().is_some(), "tracefs is not mounted");
    let w = workload("writes");
    let script = format!("{} 300; {} 200", w.display(), w.display());
    let (text, _) = ruperf_csv(&[
        "stat",
        "-x,",
        "-e",
        "syscalls:sys_enter_write",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        csv_value(&text, "syscalls:sys_enter_write"),
        500.0,
        "{text}"
    );
    let (text, _) = ruperf_csv(&[
        "stat",
        "--no-inherit",
        "-x,",
        "-e",
        "syscalls:sys_enter_write",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(csv_value(&text, "syscalls:sys_enter_write"), 0.0, "{text}");
}

#[test]
fn attach_to_running_pid() {
    require!(tracefs().is_some(), "tracefs is not mounted");
    let ticker = Background::start("ticker", &[], 0);
    let pid = ticker.pid();
    let (text, code) = ruperf_csv(&[
        "stat",
        "-x,",
        "-p",
        &pid,
        "-e",
        "syscalls:sys_enter_write,task-clock",
        "sleep",
        "0.3",
    ]);
    drop(ticker);
    assert_eq!(code, 0, "{text}");
    let writes = csv_value(&text, "syscalls:sys_enter_write");
    // One write per ~1 ms sleep for 0.3 s; VMs oversleep, so only a broad range is certain.
    assert!(
        (30.0..=320.0).contains(&writes),
        "{writes} writes in 0.3 s:\n{text}"
    );
}

#[test]
fn system_wide_counts_every_cpu() {
    let (text, code) = ruperf_csv(&[
        "stat",
        "-a",
        "-x,",
        "-e",
        "cpu-clock,context-switches",
        "sleep",
        "0.2",
    ]);
    assert_eq!(code, 0, "{text}");
    let ms = csv_value(&text, "cpu-clock");
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    // cpu-clock system-wide ticks on every CPU, idle or not, for the whole window.
    assert!(
        ms > 0.15 * 1000.0 * cpus * 0.9 && ms < 0.6 * 1000.0 * cpus,
        "{ms} ms on {cpus} CPUs"
    );
    let (text, code) = ruperf_csv(&["stat", "-C", "0", "-x,", "-e", "cpu-clock", "sleep", "0.2"]);
    assert_eq!(code, 0, "{text}");
    let one = csv_value(&text, "cpu-clock");
    assert!(one > 150.0 && one < 600.0, "{one} ms on CPU 0");
}

#[test]
fn per_cpu_rows_with_no_aggr() {
    let cpus = ruperf::counters::pmu::online_cpus(&ruperf::sysroot::Sysroot::new("/"));
    assert!(!cpus.is_empty());
    // CSV: one line per CPU and event, counter-major, each starting with CPUn; cpu-clock on
    // each CPU covers the whole window.
    let (text, code) = ruperf_csv(&[
        "stat",
        "-a",
        "-A",
        "-x,",
        "-e",
        "cpu-clock,cs",
        "sleep",
        "0.2",
    ]);
    assert_eq!(code, 0, "{text}");
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(lines.len(), 2 * cpus.len(), "{text}");
    for (i, f) in lines.iter().enumerate() {
        let cpu = cpus[i % cpus.len()];
        let event = if i < cpus.len() { "cpu-clock" } else { "cs" };
        assert_eq!(f.len(), 8, "{text}");
        assert_eq!(
            (f[0], f[3]),
            (format!("CPU{cpu}").as_str(), event),
            "{text}"
        );
        if event == "cpu-clock" {
            let ms: f64 = f[1].parse().unwrap();
            assert!(ms > 150.0 && ms < 600.0, "{ms} ms on CPU{cpu}: {text}");
            // Each CPU's metric uses its own clock: about 1 CPU utilized.
            let util: f64 = f[6].parse().unwrap();
            assert!((util - 1.0).abs() < 0.2, "{text}");
        }
    }
    // perf lays out the same fields in the same order.
    if have_perf() {
        let out = Command::new("perf")
            .args([
                "stat",
                "-a",
                "-A",
                "-x,",
                "-e",
                "cpu-clock",
                "sleep",
                "0.05",
            ])
            .output()
            .unwrap();
        let perf_text = String::from_utf8_lossy(&out.stderr);
        let first = perf_text.lines().next().unwrap().split(',').count();
        assert_eq!(first, 8, "{perf_text}");
        assert!(
            perf_text.starts_with(&format!("CPU{},", cpus[0])),
            "{perf_text}"
        );
    }
    // The table has perf's CPU column; JSON has a "cpu" key; -C keeps to the chosen CPU.
    let out = ruperf()
        .args(["stat", "-C", "0", "-A", "-e", "cpu-clock", "sleep", "0.05"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let row = err.lines().find(|l| l.contains("cpu-clock")).unwrap();
    assert!(row.starts_with("CPU0       "), "{err}");
    assert_eq!(err.matches("cpu-clock").count(), 1, "{err}");
    let out = ruperf()
        .args(["stat", "-a", "-A", "-j", "-e", "cs", "sleep", "0.05"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let seen: Vec<String> = err
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["cpu"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let want: Vec<String> = cpus.iter().map(u32::to_string).collect();
    assert_eq!(seen, want, "{err}");
    // Per-CPU counts exist only system-wide.
    let out = ruperf()
        .args(["stat", "-A", "-e", "cs", "true"])
        .assert()
        .code(64);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("-A") && err.contains("-a or -C"), "{err}");
}

#[test]
fn hardware_events_are_not_supported_here_but_exit_zero() {
    let out = ruperf()
        .args(["stat", "-e", "cycles,instructions,task-clock", "true"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let has_pmu = std::path::Path::new("/sys/bus/event_source/devices/cpu").exists();
    if !has_pmu {
        assert!(err.contains("<not supported>      cycles"), "{err}");
        assert!(err.contains("<not supported>      instructions"), "{err}");
    }
    assert!(err.contains("msec task-clock"), "{err}");
}

#[test]
fn default_events_and_layout() {
    let out = ruperf().args(["stat", "true"]).assert().success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for ev in [
        "task-clock",
        "context-switches",
        "cpu-migrations",
        "page-faults",
        "cycles",
        "instructions",
        "branches",
        "branch-misses",
    ] {
        assert!(err.contains(ev), "{ev} missing:\n{err}");
    }
    assert!(
        err.contains(" Performance counter stats for 'true':"),
        "{err}"
    );
    assert!(
        err.contains("seconds time elapsed")
            && err.contains("seconds user")
            && err.contains("seconds sys")
    );
    let tc = err.lines().find(|l| l.contains("task-clock")).unwrap();
    assert_eq!(tc.find('#'), Some(57), "column of #: {tc}");
}

#[test]
fn program_output_stays_clean() {
    let out = ruperf()
        .args(["stat", "-e", "task-clock", "echo", "hello"])
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, b"hello\n");
    let dir = scratch("stat-o");
    let file = dir.join("counts.txt");
    let out = ruperf()
        .args(["stat", "-o"])
        .arg(&file)
        .args(["-e", "task-clock", "echo", "hi"])
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, b"hi\n");
    assert!(out.get_output().stderr.is_empty());
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(first.contains("task-clock"));
    ruperf()
        .args(["stat", "--append", "-o"])
        .arg(&file)
        .args(["-e", "page-faults", "true"])
        .assert()
        .success();
    let both = std::fs::read_to_string(&file).unwrap();
    assert!(
        both.starts_with(&first) && both.contains("page-faults"),
        "{both}"
    );
}

#[test]
fn csv_schema() {
    let (text, _) = ruperf_csv(&["stat", "-x,", "-e", "task-clock,page-faults,cycles", "true"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for l in &lines {
        assert_eq!(
            l.split(',').count(),
            7,
            "value,unit,event,runtime,pcnt,metric,metric-unit: {l}"
        );
    }
    let f: Vec<&str> = lines[0].split(',').collect();
    assert_eq!((f[1], f[2]), ("msec", "task-clock"));
    assert!(f[3].parse::<u64>().unwrap() > 0 && f[4] == "100.00" && f[6] == "CPUs utilized");
    assert!(lines[2].starts_with("<not supported>,,cycles,"));
    let (text, _) = ruperf_csv(&["stat", "-x;", "-r", "3", "-e", "page-faults", "true"]);
    let f: Vec<&str> = text.trim().split(';').collect();
    assert_eq!(
        f.len(),
        8,
        "with -r a noise field follows the event: {text}"
    );
    assert!(f[3].ends_with('%'));
}

#[test]
fn json_schema() {
    let (text, _) = ruperf_csv(&["stat", "-j", "-e", "task-clock,cycles", "true"]);
    let objs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 2);
    for o in &objs {
        for key in [
            "counter-value",
            "unit",
            "event",
            "event-runtime",
            "pcnt-running",
            "metric-value",
            "metric-unit",
        ] {
            assert!(o.get(key).is_some(), "{key} missing in {o}");
        }
        assert!(o["counter-value"].is_string());
    }
    assert_eq!(objs[0]["event"], "task-clock");
    assert!(
        objs[0]["counter-value"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    assert_eq!(objs[1]["counter-value"], "<not supported>");
}

#[test]
fn repeat_and_interval_row_counts() {
    let out = ruperf()
        .args(["stat", "-r", "4", "-e", "task-clock,page-faults", "true"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("(4 runs)") && err.matches("( +-").count() == 3,
        "{err}"
    );

    let (text, code) = ruperf_csv(&[
        "stat",
        "-I",
        "100",
        "--interval-count",
        "3",
        "-x,",
        "-e",
        "task-clock,cs",
        "sleep",
        "5",
    ]);
    assert_eq!(
        code,
        128 + 15,
        "the command is stopped with SIGTERM after the last row: {text}"
    );
    assert_eq!(text.lines().count(), 6, "3 rows × 2 events:\n{text}");
    let times: Vec<f64> = text
        .lines()
        .step_by(2)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");

    let (text, _) = ruperf_csv(&[
        "stat",
        "-I",
        "50",
        "-j",
        "-e",
        "task-clock",
        "sleep",
        "0.22",
    ]);
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 4 full intervals and a final partial one, give or take a tick on a loaded machine.
    assert!((4..=6).contains(&rows.len()), "{text}");
    assert!(rows.iter().all(|r| r["interval"].as_f64().is_some()));
}

#[test]
fn exit_status_is_the_commands() {
    ruperf()
        .args(["stat", "-e", "task-clock", "sh", "-c", "exit 3"])
        .assert()
        .code(3);
    ruperf()
        .args(["stat", "-e", "task-clock", "sh", "-c", "kill -9 $$"])
        .assert()
        .code(137);
    let out = ruperf()
        .args(["stat", "-e", "task-clock", "no-such-command-xyz"])
        .assert()
        .code(127);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(
        err.trim(),
        "ruperf: error: no-such-command-xyz: command not found"
    );
    let dir = scratch("stat-noexec");
    let f = dir.join("script");
    std::fs::write(&f, "#!/bin/sh\n").unwrap();
    ruperf()
        .args(["stat", "-e", "task-clock"])
        .arg(&f)
        .assert()
        .code(126);
    // Executable, but its interpreter is missing: 126 with the reason, through both launchers
    // (inherited counters and the gated fork of --no-inherit).
    let bad = dir.join("bad-interpreter");
    std::fs::write(&bad, "#!/no/such/interpreter\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for extra in [None, Some("--no-inherit")] {
        let out = ruperf()
            .args(["stat", "-e", "task-clock"])
            .args(extra)
            .arg(&bad)
            .assert()
            .code(126);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains("interpreter"), "{err}");
    }
}

#[test]
fn sigterm_is_forwarded_and_counts_still_print() {
    let out = signal_after(
        Command::new(ruperf_path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .args(["stat", "-e", "task-clock", "sleep", "30"]),
        300,
        nix::sys::signal::Signal::SIGTERM,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + 15), "{err}");
    assert!(
        err.contains("task-clock") && err.contains("seconds time elapsed"),
        "{err}"
    );
}

#[test]
fn system_wide_stops_on_sigint_with_counts() {
    let out = signal_after(
        Command::new(ruperf_path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .args(["stat", "-a", "-e", "cpu-clock"]),
        300,
        nix::sys::signal::Signal::SIGINT,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("'system wide'") && err.contains("cpu-clock"),
        "{err}"
    );
}

/// Runs ruperf with `args`, expects `code` and one stderr line containing every `needle`.
fn bad(args: &[&str], code: i32, needles: &[&str]) {
    let out = ruperf().args(args).assert().code(code);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(err.lines().count(), 1, "one line for {args:?}: {err}");
    assert!(err.starts_with("ruperf: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: expected '{n}' in: {err}");
    }
}

#[test]
fn bad_input_gets_one_line_and_a_documented_code() {
    bad(
        &["stat", "-e", "cyclez", "true"],
        64,
        &["unknown event 'cyclez'", "did you mean 'cycles'"],
    );
    bad(
        &["stat", "-e", "{cycles,instructions", "true"],
        64,
        &["unbalanced"],
    );
    bad(&["stat", "-e", "", "true"], 64, &["empty"]);
    bad(
        &["stat", "-e", "cycles:q", "true"],
        64,
        &["unknown modifier 'q'"],
    );
    // -r 0 repeats until interrupted (stat_depth.rs); -r 0 with -I is refused.
    bad(&["stat", "-r", "0", "-I", "100", "true"], 64, &["-I"]);
    bad(&["stat", "-I", "0", "true"], 64, &["-I 0"]);
    bad(
        &["stat", "-p", "999999999", "-e", "task-clock"],
        66,
        &["no such process: 999999999"],
    );
    bad(&["stat", "-p", "abc"], 64, &["'abc' is not a process"]);
    bad(
        &["stat", "-o", "/nonexistent-dir/out.txt", "true"],
        73,
        &["/nonexistent-dir/out.txt", "-o"],
    );
    bad(
        &["stat", "-C", "4096", "true"],
        64,
        &["CPU 4096 is not online"],
    );
    bad(&["stat"], 64, &["no command given"]);
    bad(&["stat", "--bogus", "true"], 64, &["--bogus"]);
}

#[test]
fn permission_refused_names_paranoid_and_fixes() {
    let paranoid: i32 = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(2);
    require!(
        paranoid >= 1,
        "perf_event_paranoid is {paranoid}: unprivileged -a is allowed here"
    );
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require!(
        nix::unistd::geteuid().is_root() && setpriv,
        "needs root and setpriv to drop to an unprivileged user"
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(ruperf_path())
        .args(["stat", "-a", "-e", "cpu-clock", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("perf_event_paranoid is {paranoid}")) && err.contains("CAP_PERFMON"),
        "{err}"
    );
}

#[test]
fn too_many_open_files_is_one_line() {
    let prlimit = Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require!(prlimit, "prlimit (util-linux) is not installed");
    let events = vec!["cpu-clock"; 40].join(",");
    let out = Command::new("prlimit")
        .args(["--nofile=24:24", "--"])
        .arg(ruperf_path())
        .args(["stat", "-a", "-e", &events, "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(71), "{err}");
    assert!(
        err.contains("too many open files") && err.contains("ulimit -n"),
        "{err}"
    );
}
