//! Energy per function: `record --energy` on a fake powercap tree that the profiled program
//! advances at known rates in two phases, then `report --energy`.

use std::path::Path;

use ruperf::energy::fake::FakeTree;
use serde_json::Value;

use crate::common::{have_perf, ruperf, scratch, workload};

const MAX: u64 = 262_143_328_850;

/// Records `energy_phases` with the first phase at `low` µJ/ms and the second at `high`, each
/// `ms` long, and returns the recording's path.
fn record(name: &str, low: u32, high: u32, ms: u32) -> (FakeTree, std::path::PathBuf) {
    let t = FakeTree::at(scratch(name));
    t.cpus(&[(0, 0, 0), (1, 0, 0)]);
    t.powercap_zone("intel-rapl:0", "package-0", 1_000, MAX);
    let data = t.root().join("energy.data");
    let counter = t.energy_path("intel-rapl:0");
    ruperf()
        .arg("--sysroot")
        .arg(t.root())
        .args(["record", "--energy=rapl", "-F", "1000", "-g", "-o"])
        .arg(&data)
        .arg("--")
        .arg(workload("energy_phases"))
        .arg(&counter)
        .args([low.to_string(), high.to_string(), ms.to_string()])
        .assert()
        .success();
    (t, data)
}

fn report_json(data: &Path) -> Value {
    let out = ruperf()
        .args(["report", "--energy", "--children", "--json", "-i"])
        .arg(data)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).expect("report JSON")
}

fn children_joules(report: &Value, symbol: &str) -> f64 {
    let entries = report["sections"][0]["entries"]
        .as_array()
        .expect("entries");
    let e = entries
        .iter()
        .find(|e| e["symbol"] == symbol)
        .unwrap_or_else(|| panic!("no {symbol} in {report}"));
    e["children_period"].as_u64().expect("children period") as f64 / 1e9
}

#[test]
fn attributed_joules_follow_each_phases_power() {
    // 10 µJ/ms (10 W) for 400 ms, then 30 µJ/ms for 400 ms: 4 mJ and 12 mJ.
    let (_t, data) = record("energy-profile", 10, 30, 400);
    let r = report_json(&data);
    let e = &r["energy"];
    assert_eq!(e["estimate"], true, "{e}");
    assert_eq!(e["domains"][0], "rapl/pkg:0", "{e}");
    let measured = e["measured_joules"].as_f64().unwrap();
    assert!(
        (measured - 0.016).abs() < 0.0005,
        "measured {measured} J of 0.016"
    );
    // Energy of an interval in which the program got no sample (it was descheduled on a busy
    // machine) stays unattributed; the two always add up to what was measured.
    let attributed = e["attributed_joules"].as_f64().unwrap();
    let unattributed = e["unattributed_joules"].as_f64().unwrap();
    assert!(attributed > 0.7 * measured, "{e}");
    assert!((attributed + unattributed - measured).abs() < 1e-9, "{e}");
    let (low, high) = (
        children_joules(&r, "low_power_phase"),
        children_joules(&r, "high_power_phase"),
    );
    let ratio = high / low;
    assert!(
        (2.4..3.6).contains(&ratio),
        "high {high} J / low {low} J = {ratio}, want ~3"
    );
    assert!(
        (low - 0.004).abs() < 0.0015 && (high - 0.012).abs() < 0.0025,
        "{low} {high}"
    );

    // The same weights as folded stacks (µJ) and in perf's own reader, which still reads the file.
    let folded = ruperf()
        .args(["report", "--energy", "--format", "folded", "-i"])
        .arg(&data)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&folded.get_output().stdout).into_owned();
    let weight = |phase: &str| -> u64 {
        text.lines()
            .filter(|l| l.contains(phase))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let folded_ratio = weight("high_power_phase") as f64 / weight("low_power_phase") as f64;
    assert!((2.4..3.6).contains(&folded_ratio), "{text}");
    if have_perf() {
        let out = std::process::Command::new("perf")
            .args(["report", "--stdio", "-i"])
            .arg(&data)
            .output()
            .expect("perf report");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("high_power_phase"));
    }
}

#[test]
fn energy_needs_a_recording_with_readings_and_a_source() {
    let dir = scratch("energy-profile-bad");
    let plain = dir.join("plain.data");
    ruperf()
        .args(["record", "-F", "500", "-o"])
        .arg(&plain)
        .args(["--", "true"])
        .assert()
        .success();
    let out = ruperf()
        .args(["report", "--energy", "-i"])
        .arg(&plain)
        .assert()
        .code(69);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("record --energy"), "{err}");
    // No RAPL under an empty sysroot: the energy sources say what is missing.
    let empty = FakeTree::at(dir.join("empty"));
    empty.cpus(&[(0, 0, 0)]);
    let out = ruperf()
        .arg("--sysroot")
        .arg(empty.root())
        .args(["record", "--energy=rapl", "-o"])
        .arg(dir.join("none.data"))
        .args(["--", "true"])
        .assert()
        .code(69);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("no energy source"), "{err}");
    ruperf()
        .args(["record", "--energy=bogus", "--", "true"])
        .assert()
        .code(64);
}
