//! `ruperf test` here, and on environments broken on purpose.

use serde_json::Value;

use crate::common::{ruperf, scratch};

#[test]
fn passes_here_with_missing_hardware_skipped_for_a_reason() {
    let out = ruperf().args(["test", "--json"]).assert().success();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (tests, summary) = lines.split_at(lines.len() - 1);
    assert!(tests.len() >= 8);
    for t in tests {
        assert_ne!(t["result"], "fail", "{t}");
        if t["result"] == "skip" {
            assert!(
                t["detail"].as_str().is_some_and(|d| d.len() > 10),
                "a skip needs its reason: {t}"
            );
        }
    }
    let s = &summary[0]["summary"];
    assert_eq!(s["failed"], 0);
    assert!(s["can-measure"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "software events"));
    if !std::path::Path::new("/sys/bus/event_source/devices/cpu").exists() {
        let hw = tests
            .iter()
            .find(|t| t["capability"] == "hardware counters")
            .unwrap();
        assert_eq!(hw["result"], "skip");
        assert!(hw["detail"].as_str().unwrap().contains("ENOENT"), "{hw}");
    }
}

#[test]
fn human_output_lists_numbers_and_summary() {
    let out = ruperf().args(["test", "1", "software"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains(" 1: perf_event_open works") && text.contains(": Ok"),
        "{text}"
    );
    assert!(text.contains(" 3: software events count"), "{text}");
    assert!(
        !text.contains(" 2: "),
        "only the selected tests run: {text}"
    );
    assert!(
        text.contains("ruperf can measure here: perf events, software events."),
        "{text}"
    );
    let out = ruperf()
        .args(["test", "--list", "--skip", "2"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains(" 1: ") && !text.contains(" 2: ") && text.contains(" 3: "),
        "{text}"
    );
}

#[test]
fn fails_when_paranoid_forbids_everything() {
    let root = scratch("selftest-paranoid4");
    std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
    std::fs::write(root.join("proc/sys/kernel/perf_event_paranoid"), "4\n").unwrap();
    let out = ruperf()
        .arg("--sysroot")
        .arg(&root)
        .args(["test", "permissions"])
        .assert()
        .code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("FAILED!")
            && text.contains("perf_event_paranoid is 4")
            && text.contains("CAP_PERFMON"),
        "{text}"
    );
}

#[test]
fn unknown_test_is_a_usage_error() {
    let out = ruperf().args(["test", "999"]).assert().code(64);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("there is no test 999"));
    let out = ruperf().args(["test", "no-such-test"]).assert().code(64);
    assert!(String::from_utf8_lossy(&out.get_output().stderr)
        .contains("no test name contains 'no-such-test'"));
}
