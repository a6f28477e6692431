//! `ruperf list` on this machine and on fake trees.

use serde_json::Value;

use crate::common::{ruperf, scratch, tracefs};

fn json_lines(args: &[&str]) -> Vec<Value> {
    let out = ruperf().args(args).assert().success();
    String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn json_lists_known_events_of_this_machine() {
    let all = json_lines(&["list", "--json"]);
    let has = |n: &str| all.iter().any(|e| e["name"] == n);
    assert!(has("task-clock") && has("cpu-cycles") && has("L1-dcache-load-misses"));
    for e in &all {
        assert!(e["name"].is_string() && e["class"].is_string(), "{e}");
    }
    if std::path::Path::new("/sys/bus/event_source/devices/msr/events/tsc").exists() {
        assert!(has("msr/tsc/"));
    }
    require!(tracefs().is_some(), "tracefs is not mounted");
    assert!(has("sched:sched_switch") && has("syscalls:sys_enter_write"));
    let cs = all
        .iter()
        .find(|e| e["name"] == "context-switches")
        .unwrap();
    assert_eq!(cs["aliases"][0], "cs");
    assert_eq!(cs["class"], "software");
}

#[test]
fn available_marks_what_really_opens() {
    let v = json_lines(&["list", "--available", "--json", "hw", "sw"]);
    let get = |n: &str| {
        v.iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(get("task-clock")["available"]["supported"], true);
    if !std::path::Path::new("/sys/bus/event_source/devices/cpu").exists() {
        let c = get("cpu-cycles");
        assert_eq!(c["available"]["supported"], false);
        assert!(
            c["available"]["reason"]
                .as_str()
                .unwrap()
                .contains("ENOENT"),
            "{c}"
        );
    }
}

#[test]
fn filters_by_class_glob_and_substring() {
    let sw = json_lines(&["list", "sw", "--json"]);
    assert!(sw.iter().all(|e| e["class"] == "software") && sw.len() >= 10);
    require!(tracefs().is_some(), "tracefs is not mounted");
    let sched = json_lines(&["list", "sched:*", "--json"]);
    assert!(
        !sched.is_empty()
            && sched
                .iter()
                .all(|e| e["name"].as_str().unwrap().starts_with("sched:"))
    );
    let sub = json_lines(&["list", "sys_enter_writ", "--json"]);
    assert!(sub.iter().any(|e| e["name"] == "syscalls:sys_enter_write"));
    let out = ruperf()
        .args(["list", "--available", "sched:sched_switch"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("sched:sched_switch") && text.contains("[Tracepoint event]  supported"),
        "{text}"
    );
}

#[test]
fn no_match_and_missing_tracefs_are_one_line_errors() {
    let out = ruperf()
        .args(["list", "no-such-event-anywhere"])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(err.lines().count(), 1);
    assert!(
        err.contains("no event matches 'no-such-event-anywhere'"),
        "{err}"
    );
    let empty = scratch("list-no-tracefs");
    let out = ruperf()
        .arg("--sysroot")
        .arg(&empty)
        .args(["list", "tracepoint"])
        .assert()
        .code(69);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("mount -t tracefs"), "{err}");
}

#[test]
fn pmu_events_from_a_fake_tree_show_unit_and_scale() {
    let root = scratch("list-fake-pmu");
    let p = root.join("sys/bus/event_source/devices/power");
    std::fs::create_dir_all(p.join("events")).unwrap();
    std::fs::write(p.join("type"), "23\n").unwrap();
    std::fs::write(p.join("events/energy-pkg"), "event=0x02\n").unwrap();
    std::fs::write(p.join("events/energy-pkg.unit"), "Joules\n").unwrap();
    std::fs::write(
        p.join("events/energy-pkg.scale"),
        "2.3283064365386962890625e-10\n",
    )
    .unwrap();
    let v = json_lines(&["--sysroot", root.to_str().unwrap(), "list", "pmu", "--json"]);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["name"], "power/energy-pkg/");
    assert_eq!(v[0]["unit"], "Joules");
    assert!((v[0]["scale"].as_f64().unwrap() - 2f64.powi(-32)).abs() < 1e-20);
}
