//! `ruperf record` → `ruperf report`: files written by ruperf, whole, killed or cut, read back.

use std::process::{Command, Stdio};

use crate::common::{ruperf, ruperf_path, scratch, signal_after, workload};

fn record(out: &std::path::Path, secs: &str) -> String {
    let o = ruperf()
        .args(["record", "-g", "-F", "2000", "-o"])
        .arg(out)
        .arg(workload("hot"))
        .arg(secs)
        .assert()
        .success();
    String::from_utf8_lossy(&o.get_output().stderr).into_owned()
}

/// The sample count from `[ ruperf record: wrote … (N samples, M lost) ]`.
fn samples_of(summary: &str) -> u64 {
    let tail = summary.rsplit('(').next().unwrap();
    tail.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn report_reads_what_record_wrote() {
    let dir = scratch("roundtrip");
    let data = dir.join("rt.data");
    let summary = record(&data, "0.4");
    let n = samples_of(&summary);
    assert!(n > 100, "{summary}");

    let out = ruperf()
        .args(["report", "--stdio", "--no-children", "-i"])
        .arg(&data)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let first = text
        .lines()
        .find(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .unwrap();
    assert!(
        first.contains("hot_spin") && first.contains("[.]"),
        "hot_spin on top: {text}"
    );
    let pct: f64 = first
        .trim_start()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(pct > 80.0, "{first}");
    assert!(
        text.contains("of event 'cpu-clock'") || text.contains("of event 'cycles'"),
        "{text}"
    );

    let out = ruperf()
        .args(["report", "--format", "folded", "-i"])
        .arg(&data)
        .assert()
        .success();
    let folded = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let sum: u64 = folded
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sum, n, "folded counts add up to the recorded samples");
    assert!(
        folded
            .lines()
            .any(|l| l.contains("main;run_work;middle_layer;hot_spin")),
        "{folded}"
    );

    let out = ruperf()
        .args(["report", "--json", "-i"])
        .arg(&data)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["truncated"], false);
    assert_eq!(v["sections"][0]["samples"], n);
}

#[test]
fn a_killed_recording_is_reported_up_to_the_kill() {
    let dir = scratch("roundtrip-killed");
    let data = dir.join("killed.data");
    signal_after(
        Command::new(ruperf_path())
            .stderr(Stdio::null())
            .args(["record", "-g", "-F", "2000", "-o"])
            .arg(&data)
            .arg(workload("hot"))
            .arg("-1"),
        600,
        nix::sys::signal::Signal::SIGKILL,
    );
    // The workload was orphaned by the kill; stop it.
    let _ = Command::new("pkill")
        .args(["-f", &format!("{} -1", workload("hot").display())])
        .status();
    let out = ruperf()
        .args(["report", "--stdio", "--no-children", "-i"])
        .arg(&data)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("hot_spin"), "{text}");
}

#[test]
fn ruperf_files_cut_anywhere_never_break_the_reader() {
    let dir = scratch("roundtrip-cut");
    let data = dir.join("whole.data");
    record(&data, "0.1");
    let bytes = std::fs::read(&data).unwrap();
    let cut = dir.join("cut.data");
    // Sixty offsets spread over the file (odd steps, so they land inside records), plus the
    // edges of the header.
    let step = (bytes.len() / 60) | 1;
    let mut offsets: Vec<usize> = (0..bytes.len()).step_by(step).collect();
    offsets.extend([0, 1, 103, 104, 105, bytes.len() - 1]);
    for at in offsets {
        std::fs::write(&cut, &bytes[..at]).unwrap();
        let out = Command::new(ruperf_path())
            .args(["report", "--stdio", "-i"])
            .arg(&cut)
            .output()
            .unwrap();
        let code = out.status.code();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(code, Some(0) | Some(65)),
            "cut at {at}: status {code:?}: {err}"
        );
        assert!(!err.contains("panicked"), "cut at {at}: {err}");
        if code == Some(65) {
            assert_eq!(err.lines().count(), 1, "cut at {at}: {err}");
        }
    }
}

/// hotspot's parser, if installed (Debian's `hotspot` package).
fn hotspot_parser() -> Option<std::path::PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/libexec/hotspot-perfparser",
        "/usr/libexec/hotspot-perfparser",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

#[test]
fn hotspot_reads_ruperf_recordings() {
    let parser = hotspot_parser();
    require!(
        parser.is_some(),
        "hotspot is not installed (apt-get install hotspot)"
    );
    let dir = scratch("roundtrip-hotspot");
    let data = dir.join("hs.data");
    record(&data, "0.2");
    let out = dir.join("hs.bin");
    let st = Command::new(parser.unwrap())
        .env("QT_QPA_PLATFORM", "offscreen")
        .arg("--input")
        .arg(&data)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // The parser's output stream carries the resolved symbol names of the call chains.
    let bytes = std::fs::read(&out).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    for sym in ["hot_spin", "middle_layer", "run_work"] {
        assert!(text.contains(sym), "{sym} not resolved by hotspot's parser");
    }
}

#[test]
fn samply_imports_ruperf_recordings() {
    let samply = Command::new("samply")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require!(
        samply,
        "samply is not installed (cargo install --locked samply)"
    );
    let dir = scratch("roundtrip-samply");
    let data = dir.join("s.data");
    let n = samples_of(&record(&data, "0.2"));
    let json = dir.join("profile.json");
    let st = Command::new("samply")
        .args(["import", "--save-only", "-o"])
        .arg(&json)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let threads = v["threads"].as_array().unwrap();
    let imported: u64 = threads
        .iter()
        .filter_map(|t| t["samples"]["length"].as_u64())
        .sum();
    assert_eq!(imported, n, "every recorded sample imported");
    assert!(
        threads.iter().any(|t| t["name"]
            .as_str()
            .is_some_and(|s| s.starts_with("workload-hot"))),
        "{threads:?}"
    );
}
