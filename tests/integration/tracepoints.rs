//! Tracepoints in `record`: every event recorded (period 1), raw data, and the tracing-data
//! feature, judged by Debian's perf reading ruperf's files.

use std::process::Command;

use crate::common::{have_perf, ruperf, scratch, tracefs, workload};

fn perf_out(args: &[&str]) -> (String, String) {
    let o = Command::new("perf").args(args).output().expect("perf runs");
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn perf_script_counts_every_write_of_a_ruperf_recording() {
    require!(have_perf(), "perf is not installed");
    require!(tracefs().is_some(), "tracefs is not mounted");
    let dir = scratch("tp-writes");
    let data = dir.join("w.data");
    let writes = workload("writes");
    ruperf()
        .args(["record", "-e", "syscalls:sys_enter_write", "-o"])
        .arg(&data)
        .arg(&writes)
        .arg("1234")
        .assert()
        .success();
    let d = data.to_str().unwrap();
    let (out, err) = perf_out(&["script", "-i", d]);
    assert!(!err.contains("Error"), "perf script complained: {err}");
    let ours = out
        .lines()
        .filter(|l| l.contains("syscalls:sys_enter_write: fd: 0x00000003"))
        .count();
    assert_eq!(
        ours, 1234,
        "perf script must see every write(2) of the workload"
    );
    let (evlist, _) = perf_out(&["evlist", "-v", "-i", d]);
    assert!(
        evlist.contains("sample_period, sample_freq }: 1,"),
        "{evlist}"
    );
    assert!(evlist.contains("RAW"), "{evlist}");
    let (report, rerr) = perf_out(&["report", "--stdio", "-i", d]);
    assert!(!rerr.contains("incompatible"), "{rerr}");
    assert!(report.contains("count: 0x00000001"), "{report}");
}

#[test]
fn filters_reach_the_kernel_and_rejections_name_the_filter() {
    require!(tracefs().is_some(), "tracefs is not mounted");
    let dir = scratch("tp-filter");
    let data = dir.join("f.data");
    let writes = workload("writes");
    // Only writes of 1 byte to fd 3 pass: all of them; a filter for fd 99 passes none.
    for (filter, want) in [("fd == 3", 50usize), ("fd == 99", 0)] {
        let out = ruperf()
            .args([
                "record",
                "-e",
                "syscalls:sys_enter_write",
                "--filter",
                filter,
                "-o",
            ])
            .arg(&data)
            .arg(&writes)
            .arg("50")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("({want} samples")), "{filter}: {err}");
    }
    let out = ruperf()
        .args([
            "record",
            "-e",
            "syscalls:sys_enter_write",
            "--filter",
            "nosuchfield > 1",
            "-o",
        ])
        .arg(&data)
        .arg(&writes)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'nosuchfield > 1'") && err.contains("rejected"),
        "{err}"
    );
}

#[test]
fn globs_record_every_matching_tracepoint_that_perf_names() {
    require!(have_perf(), "perf is not installed");
    require!(tracefs().is_some(), "tracefs is not mounted");
    let dir = scratch("tp-glob");
    let data = dir.join("g.data");
    ruperf()
        .args(["record", "-e", "syscalls:sys_*_write", "-o"])
        .arg(&data)
        .arg(workload("writes"))
        .arg("10")
        .assert()
        .success();
    let (evlist, _) = perf_out(&["evlist", "-i", data.to_str().unwrap()]);
    assert_eq!(
        evlist
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        vec!["syscalls:sys_enter_write", "syscalls:sys_exit_write"]
    );
    let (out, _) = perf_out(&["script", "-i", data.to_str().unwrap()]);
    assert_eq!(
        out.lines().filter(|l| l.contains("sys_exit_write")).count(),
        10
    );
}

fn evlist_v(data: &std::path::Path) -> String {
    perf_out(&["evlist", "-v", "-i", data.to_str().unwrap()]).0
}

#[test]
fn record_options_as_perf_spells_them() {
    require!(have_perf(), "perf is not installed");
    let dir = scratch("rec-opts");
    let data = dir.join("o.data");
    let w = workload("writes");
    let run = |args: &[&str]| {
        let out = ruperf()
            .arg("record")
            .args(args)
            .arg("-o")
            .arg(&data)
            .arg(&w)
            .arg("20000")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    run(&["-e", "cpu-clock", "-F99"]);
    assert!(evlist_v(&data).contains("sample_freq }: 99,"));
    run(&["-e", "cpu-clock", "-F=123"]);
    assert!(evlist_v(&data).contains("sample_freq }: 123,"));
    run(&["-e", "cpu-clock", "-c1000"]);
    assert!(evlist_v(&data).contains("sample_period, sample_freq }: 1000,"));
    let max: String = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .unwrap()
        .trim()
        .to_string();
    run(&["-e", "cpu-clock", "-F", "max"]);
    assert!(evlist_v(&data).contains(&format!("sample_freq }}: {max},")));
    run(&["-e", "cpu-clock/period=5000/"]);
    let v = evlist_v(&data);
    assert!(
        v.contains("sample_period, sample_freq }: 5000,") && !v.contains("freq: 1"),
        "{v}"
    );
    run(&["-e", "cpu-clock/freq=77/u"]);
    assert!(evlist_v(&data).contains("sample_freq }: 77,"));
    run(&["-e", "cpu-clock", "-d", "-i", "--all-user"]);
    let v = evlist_v(&data);
    assert!(
        v.contains("ADDR") && !v.contains("inherit: 1") && v.contains("exclude_kernel: 1"),
        "{v}"
    );
    // No cycles counter here: perf's fallback to cpu-clock, modifiers kept, said on stderr.
    let err = run(&["-e", "cycles:u"]);
    if err.contains("not supported") {
        assert!(err.contains("sampling cpu-clock:u instead"), "{err}");
        assert_eq!(
            perf_out(&["evlist", "-i", data.to_str().unwrap()])
                .0
                .lines()
                .next(),
            Some("cpu-clock:u")
        );
    }
    run(&["-s", "-e", "cpu-clock"]);
    let v = evlist_v(&data);
    assert!(
        v.contains("inherit_stat: 1") && v.contains("TOTAL_TIME_ENABLED|TOTAL_TIME_RUNNING|ID"),
        "{v}"
    );
    let quiet = run(&["-q", "-e", "cpu-clock"]);
    assert!(quiet.is_empty(), "{quiet}");
    let verbose = run(&["-v", "-e", "cpu-clock"]);
    assert!(verbose.contains("event 0: cpu-clock"), "{verbose}");
}
