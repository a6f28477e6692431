//! `stat --baseline`: the regression gate, on a workload whose page faults scale with its
//! argument (touch_pages K touches K pages).

use std::path::{Path, PathBuf};

use crate::common::{ruperf, scratch, workload};

const EVENTS: &str = "task-clock,page-faults";

/// `stat -r 5 -j -o FILE` of touch_pages PAGES, the baseline.
fn baseline(dir: &Path, pages: &str) -> PathBuf {
    let file = dir.join("base.json");
    ruperf()
        .args(["stat", "-r", "5", "-j", "-e", EVENTS, "-o"])
        .arg(&file)
        .arg(workload("touch_pages"))
        .arg(pages)
        .assert()
        .success();
    file
}

/// Runs the gate; returns (exit code, the verdict JSON object, stderr text).
fn gate(
    base: &Path,
    events: &str,
    pages: &str,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let out = ruperf()
        .args(["stat", "-r", "5", "-j", "-e", events, "--baseline"])
        .arg(base)
        .args(extra)
        .arg(workload("touch_pages"))
        .arg(pages)
        .output()
        .expect("ruperf");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let verdict = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("verdict").cloned())
        .unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), verdict, err)
}

#[test]
fn a_repeated_json_summary_holds_each_runs_values_and_where_they_came_from() {
    let dir = scratch("gate-json");
    let file = baseline(&dir, "1000");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pf = lines
        .iter()
        .find(|l| l["event"] == "page-faults")
        .expect(&text);
    assert_eq!(pf["runs"], 5, "{text}");
    let values: Vec<f64> = pf["run-values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 5);
    let mean = values.iter().sum::<f64>() / 5.0;
    let shown: f64 = pf["counter-value"].as_str().unwrap().parse().unwrap();
    assert!((mean - shown).abs() < 1e-3, "{text}");
    assert!(
        values.iter().all(|&v| (1000.0..1200.0).contains(&v)),
        "{text}"
    );
    let info = lines.iter().find_map(|l| l.get("run-info")).expect(&text);
    assert_eq!(info["runs"], 5);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        info["target"]
            .as_str()
            .unwrap()
            .contains("touch_pages 1000"),
        "{info}"
    );
}

#[test]
fn the_same_work_passes_and_four_times_the_work_fails() {
    let dir = scratch("gate-4x");
    let base = baseline(&dir, "3000");
    let (code, v, err) = gate(
        &base,
        EVENTS,
        "3000",
        &["--fail-above", "10", "--gate-events", "page-faults"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["result"], "pass", "{err}");
    assert_eq!(v["compared"].as_array().unwrap().len(), 2, "{v}");

    let (code, v, err) = gate(&base, EVENTS, "12000", &["--fail-above", "10"]);
    assert_eq!(code, 79, "{err}");
    assert_eq!(v["result"], "fail", "{err}");
    let pf = v["compared"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["event"] == "page-faults")
        .unwrap();
    assert_eq!(pf["regressed"], true, "{pf}");
    let change = pf["change-pct"].as_f64().unwrap();
    assert!(
        (250.0..320.0).contains(&change),
        "4x the pages: {change}% more faults"
    );
    assert!(pf["p-value"].as_f64().unwrap() < 0.05, "{pf}");
    let ci = pf["ci-pct"].as_array().unwrap();
    assert!(
        ci[0].as_f64().unwrap() > 10.0 && ci[1].as_f64().unwrap() >= change,
        "{pf}"
    );
    assert!(v["regressed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "page-faults"));
    assert!(
        v["differences"].to_string().contains("touch_pages 12000"),
        "{v}"
    );

    // The text form says the same, one row per event, and the verdict.
    let out = ruperf()
        .args([
            "stat",
            "-r",
            "3",
            "-e",
            EVENTS,
            "--fail-above",
            "10",
            "--baseline",
        ])
        .arg(&base)
        .arg(workload("touch_pages"))
        .arg("12000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(79));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Welch's t-test, 95% confidence"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("page-faults") && l.contains('['))
        .expect(&text);
    assert!(row.contains("REGRESSED"), "{text}");
    assert!(text.contains("Verdict: FAIL: "), "{text}");
}

#[test]
fn noise_alone_does_not_fail_across_repeated_runs() {
    let dir = scratch("gate-noise");
    let base = baseline(&dir, "5000");
    for round in 0..3 {
        let (code, v, err) = gate(&base, EVENTS, "5000", &["--fail-above", "25"]);
        assert_eq!(code, 0, "round {round}: {err}");
        assert_eq!(v["result"], "pass", "round {round}: {err}");
        assert_eq!(v["regressed"].as_array().unwrap().len(), 0, "{v}");
    }
}

#[test]
fn another_event_set_says_what_is_compared_and_what_is_missing() {
    let dir = scratch("gate-events");
    let base = baseline(&dir, "1000");
    let (code, v, err) = gate(
        &base,
        "page-faults,context-switches",
        "1000",
        &["--fail-above", "10"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        v["missing-in-baseline"],
        serde_json::json!(["context-switches"]),
        "{v}"
    );
    assert_eq!(
        v["missing-in-run"],
        serde_json::json!(["task-clock"]),
        "{v}"
    );
    let compared: Vec<&str> = v["compared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["event"].as_str().unwrap())
        .collect();
    assert_eq!(compared, vec!["page-faults"]);
    // Gating an event that cannot be compared is a usage error, after the comparison.
    let (code, _, err) = gate(
        &base,
        "page-faults",
        "1000",
        &["--gate-events", "task-clock"],
    );
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("--gate-events: task-clock not compared"),
        "{err}"
    );
}

#[test]
fn bad_baselines_and_flags_are_one_line_errors() {
    let dir = scratch("gate-bad");
    let not_json = dir.join("table.txt");
    std::fs::write(&not_json, " Performance counter stats for 'true':\n").unwrap();
    let old = dir.join("old.json");
    std::fs::write(
        &old,
        "{\"counter-value\":\"1.0\",\"unit\":\"\",\"event\":\"page-faults\",\"variance\":1.0}\n",
    )
    .unwrap();
    let cases: [(&[&str], &Path, i32, &str); 4] = [
        (&["-r", "3"], &not_json, 65, "line 1: not a JSON object"),
        (&["-r", "3"], &old, 65, "no per-run values"),
        (
            &["-r", "3"],
            &dir.join("missing.json"),
            66,
            "no such baseline",
        ),
        (&[], &old, 64, "add -r 5"),
    ];
    for (flags, file, code, text) in cases {
        let out = ruperf()
            .arg("stat")
            .args(flags)
            .arg("--baseline")
            .arg(file)
            .arg("true")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{flags:?} {}: {err}",
            file.display()
        );
        assert!(err.contains(text), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let out = ruperf()
        .args(["stat", "--fail-above", "5", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}
