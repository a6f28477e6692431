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
