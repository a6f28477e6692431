//! Energy in `ruperf stat` through the real binary: fake powercap trees under `--sysroot`
//! that the measured command itself rewrites, the NVML stand-in, and this machine's answer.

use std::path::Path;
use std::process::{Command, Stdio};

use ruperf::energy::fake::FakeTree;
use serde_json::Value;

use crate::common::{ruperf_path, scratch};
use crate::energy::nvml_standin;

const MAX: u64 = 262_143_328_850;

fn tree(name: &str) -> FakeTree {
    let t = FakeTree::at(scratch(name));
    t.cpus(&[(0, 0, 0), (1, 1, 0)]);
    t.powercap_zone("intel-rapl:0", "package-0", 5_000_000, MAX);
    t.powercap_zone("intel-rapl:0:0", "dram", 1_000_000, MAX);
    t.powercap_zone("intel-rapl:1", "package-1", MAX - 500_000, MAX);
    t.powercap_zone("intel-rapl:2", "psys", 0, MAX);
    t
}

fn set(path: &Path, v: u64) -> String {
    format!("echo {v} > '{}'", path.display())
}

/// Runs `ruperf --sysroot ROOT stat ARGS -- sh -c SCRIPT`; returns (stderr, status).
fn stat(root: &Path, args: &[&str], script: &str) -> (String, i32) {
    let out = Command::new(ruperf_path())
        .arg("--sysroot")
        .arg(root)
        .arg("stat")
        .args(args)
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn csv_field(text: &str, event: &str, idx: usize) -> String {
    let l = text
        .lines()
        .find(|l| l.split(',').nth(2) == Some(event))
        .unwrap_or_else(|| panic!("no {event} in:\n{text}"));
    l.split(',').nth(idx).unwrap().to_string()
}

#[test]
fn counters_and_rapl_share_one_table() {
    let t = tree("stat-energy-table");
    let script = [
        set(&t.energy_path("intel-rapl:0"), 8_000_000),
        set(&t.energy_path("intel-rapl:1"), 1_500_000),
    ]
    .join("; ");
    let (text, code) = stat(t.root(), &["-x,", "-e", "task-clock,rapl"], &script);
    assert_eq!(code, 0, "{text}");
    assert_eq!(csv_field(&text, "task-clock", 1), "msec");
    assert_eq!(csv_field(&text, "rapl/pkg:0", 0), "3.00");
    assert_eq!(csv_field(&text, "rapl/pkg:0", 1), "Joules");
    assert_eq!(csv_field(&text, "rapl/pkg:0", 6), "W");
    // Package 1 wrapped: 0.5 J to the top, one hidden 61 µJ step, then 1.5 J.
    assert_eq!(csv_field(&text, "rapl/pkg:1", 0), "2.00");
    assert_eq!(csv_field(&text, "rapl/dram:0", 0), "0.00");
    // The per-kind sum, and never package + dram + psys.
    assert_eq!(csv_field(&text, "rapl/pkg", 0), "5.00");
    assert!(
        text.lines()
            .all(|l| l.split(',').nth(2) != Some("rapl/psys")),
        "{text}"
    );
    let watts: f64 = csv_field(&text, "rapl/pkg:0", 5).parse().unwrap();
    let secs: f64 = csv_field(&text, "rapl/pkg:0", 3).parse::<f64>().unwrap() / 1e9;
    assert!(
        (watts - 3.0 / secs).abs() < 1e-3 * watts,
        "{watts} W over {secs} s"
    );
    assert!(
        text.contains("# note: RAPL and GPU energy is whole-package"),
        "{text}"
    );

    let (text, code) = stat(
        t.root(),
        &["-e", "rapl/pkg:0"],
        &set(&t.energy_path("intel-rapl:0"), 10_000_000),
    );
    assert_eq!(code, 0, "{text}");
    let line = text.lines().find(|l| l.contains("rapl/pkg:0")).unwrap();
    assert!(
        line.contains("2.00 Joules rapl/pkg:0") && line.contains(" W"),
        "{line}"
    );
    assert!(
        !text.contains("rapl/pkg:1") && !text.contains("dram"),
        "only the selected domain: {text}"
    );
    assert!(text.contains("note: RAPL and GPU energy"), "{text}");
}

#[test]
fn energy_in_json_with_repeats_and_intervals() {
    let t = tree("stat-energy-json");
    let path = t.energy_path("intel-rapl:0");
    // Each run adds exactly 1 J to whatever the file holds.
    let script = format!(
        "v=$(cat '{p}'); echo $((v + 1000000)) > '{p}'",
        p = path.display()
    );
    let (text, code) = stat(t.root(), &["-j", "-r", "3", "-e", "rapl/pkg"], &script);
    assert_eq!(code, 0, "{text}");
    let objs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pkg0 = objs.iter().find(|o| o["event"] == "rapl/pkg:0").unwrap();
    assert_eq!(pkg0["counter-value"], "1.000000");
    assert_eq!(pkg0["unit"], "Joules");
    assert_eq!(pkg0["metric-unit"], "W");
    assert_eq!(pkg0["energy-source"], "powercap");
    assert_eq!(pkg0["estimate"], false);
    assert_eq!(pkg0["variance"], 0.0);
    assert!(objs.iter().any(|o| o["note"]
        .as_str()
        .is_some_and(|n| n.contains("whole-package"))));

    let script = format!(
        "sleep 0.25; v=$(cat '{p}'); echo $((v + 2000000)) > '{p}'",
        p = path.display()
    );
    let (text, code) = stat(t.root(), &["-x,", "-I", "100", "-e", "rapl/pkg:0"], &script);
    assert_eq!(code, 0, "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(",rapl/pkg:0,"))
        .collect();
    assert!(rows.len() >= 2, "interval rows carry energy: {text}");
    let total: f64 = rows
        .iter()
        .map(|l| l.split(',').nth(1).unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(
        (total - 2.0).abs() < 1e-6,
        "interval joules add up to the 2 J consumed: {text}"
    );
}

#[test]
fn nvml_gpu_energy_through_the_stand_in() {
    let dir = scratch("stat-nvml");
    let lib = dir.join("libnvidia-ml.so.1");
    std::fs::copy(nvml_standin(), &lib).unwrap();
    let state = dir.join("libnvidia-ml.so.1.state");
    std::fs::write(&state, "gpu A100 1000 250000\n").unwrap();
    let script = format!("echo 'gpu A100 3500 250000' > '{}'", state.display());
    let out = Command::new(ruperf_path())
        .args(["stat", "-x,", "-e", "task-clock,nvml", "--nvml-lib"])
        .arg(&lib)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(csv_field(&text, "nvml/0", 0), "2.50");
    assert_eq!(csv_field(&text, "nvml/0", 6), "W");
    // The command runs for milliseconds: the report says the window is too short to trust.
    assert!(
        text.contains("# warning:") && text.contains("1 s"),
        "{text}"
    );
}

#[test]
fn this_machine_says_what_is_missing_for_rapl() {
    let rapl_here = Path::new("/sys/class/powercap/intel-rapl").exists()
        || Path::new("/sys/bus/event_source/devices/power/events/energy-pkg").exists()
        || Path::new("/dev/cpu/0/msr").exists();
    require!(
        !rapl_here,
        "this machine has RAPL; the refusal is tested where it has none"
    );
    for events in ["rapl", "cycles,rapl"] {
        let out = Command::new(ruperf_path())
            .args(["stat", "-e", events, "true"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(69), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        for part in ["perf power PMU", "powercap", "msr", "modprobe"] {
            assert!(err.contains(part), "{part} missing: {err}");
        }
    }
}

#[test]
fn bad_energy_names_and_sources() {
    let out = Command::new(ruperf_path())
        .args(["stat", "-e", "rapl/bogus", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rapl/pkg"));
    let out = Command::new(ruperf_path())
        .args(["stat", "--rapl-source", "foo", "-e", "rapl", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("perf, powercap or msr"));
    let out = Command::new(ruperf_path())
        .args(["stat", "-e", "{cycles,rapl}", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}
