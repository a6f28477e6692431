//! Pipe mode both ways: ruperf's stream read by perf, perf's stream read by ruperf.

use std::process::{Command, Stdio};

use crate::common::{have_perf, ruperf_path, scratch, tracefs, workload};

/// Runs `left | right` and returns right's stdout.
fn pipe(left: &mut Command, right: &mut Command) -> String {
    let mut l = left
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = right
        .stdin(l.stdout.take().unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(l.wait().unwrap().success());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cmd(prog: &str, args: &[&str]) -> Command {
    let mut c = Command::new(prog);
    c.args(args);
    c
}

#[test]
fn ruperf_stream_read_by_perf_script_and_report() {
    require!(have_perf(), "perf is not installed");
    require!(tracefs().is_some(), "tracefs is not mounted");
    let w = workload("writes");
    let r = ruperf_path();
    let r = r.to_str().unwrap();
    let rec = [
        "record",
        "-e",
        "syscalls:sys_enter_write",
        "-o",
        "-",
        w.to_str().unwrap(),
        "400",
    ];
    let s = pipe(&mut cmd(r, &rec), &mut cmd("perf", &["script", "-i", "-"]));
    assert_eq!(
        s.lines()
            .filter(|l| l.contains("sys_enter_write: fd:"))
            .count(),
        400
    );
    // No -o and standard output a pipe: the stream, as perf does.
    let rec2 = [
        "record",
        "-e",
        "syscalls:sys_enter_write",
        w.to_str().unwrap(),
        "30",
    ];
    let s = pipe(&mut cmd(r, &rec2), &mut cmd("perf", &["script", "-i", "-"]));
    assert_eq!(s.lines().count(), 30);
    let rep = pipe(
        &mut cmd(
            r,
            &[
                "record",
                "-e",
                "cpu-clock",
                "-o",
                "-",
                w.to_str().unwrap(),
                "200000",
            ],
        ),
        &mut cmd("perf", &["report", "--stdio", "-i", "-"]),
    );
    assert!(rep.contains("of event 'cpu-clock'"), "{rep}");
    assert!(rep.contains("writes"), "{rep}");
}

#[test]
fn perf_stream_read_by_ruperf_script_and_report() {
    require!(have_perf(), "perf is not installed");
    require!(tracefs().is_some(), "tracefs is not mounted");
    let dir = scratch("pipe-perf");
    let w = workload("writes");
    let r = ruperf_path();
    let r = r.to_str().unwrap();
    // perf's stream, kept in a file too, so perf script can print the same file.
    let file = dir.join("stream.data");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "perf record -e syscalls:sys_enter_write -o - {} 250 > {}",
            w.display(),
            file.display()
        ))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let f = file.to_str().unwrap();
    let theirs = cmd("perf", &["script", "-i", f]).output().unwrap().stdout;
    let mine = pipe(&mut cmd("cat", &[f]), &mut cmd(r, &["script", "-i", "-"]));
    assert_eq!(mine, String::from_utf8_lossy(&theirs));
    assert_eq!(mine.lines().count(), 250);
    // A pipe-format file named with -i works as well.
    let named = ruperf_cmd_out(r, &["script", "-i", f]);
    assert_eq!(named, mine);
    let rep = pipe(
        &mut cmd(
            "perf",
            &[
                "record",
                "-e",
                "cpu-clock",
                "-o",
                "-",
                w.to_str().unwrap(),
                "200000",
            ],
        ),
        &mut cmd(r, &["report", "--stdio", "-i", "-"]),
    );
    assert!(rep.contains("writes"), "{rep}");
}

fn ruperf_cmd_out(r: &str, args: &[&str]) -> String {
    let o = Command::new(r).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_stream_that_is_not_perf_data_is_refused_cleanly() {
    let mut l = cmd("echo", &["hello, not perf data"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Command::new(ruperf_path())
        .args(["script", "-i", "-"])
        .stdin(l.stdout.take().unwrap())
        .output()
        .unwrap();
    let _ = l.wait();
    assert_eq!(
        out.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a perf pipe-mode stream"), "{err}");
}
