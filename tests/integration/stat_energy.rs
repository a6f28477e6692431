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

/// Runs `ruperf stat ARGS --nvml-lib LIB -- sh -c SCRIPT`; returns (stderr, status).
fn stat_nvml(lib: &Path, args: &[&str], script: &str) -> (String, i32) {
    let out = Command::new(ruperf_path())
        .arg("stat")
        .args(args)
        .arg("--nvml-lib")
        .arg(lib)
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn a_gpu_lost_mid_run_is_not_counted_in_every_format() {
    let dir = scratch("stat-nvml-lost");
    let lib = dir.join("libnvidia-ml.so.1");
    std::fs::copy(nvml_standin(), &lib).unwrap();
    let state = dir.join("libnvidia-ml.so.1.state");
    let start = "gpu A100 1000 250000\ngpu H100 50 300000\n";
    // GPU 0 consumes 2.5 J; GPU 1 falls off the bus (written whole, then renamed).
    let script = format!(
        "printf 'gpu A100 3500 250000\\ngpu H100 9000 300000\\nlost 1\\n' > '{s}.tmp' && mv '{s}.tmp' '{s}'",
        s = state.display()
    );
    let cause = "nvml/1: not counted: the reading at the end of the window failed: the GPU is lost (NVML_ERROR_GPU_IS_LOST)";

    std::fs::write(&state, start).unwrap();
    let (text, code) = stat_nvml(&lib, &["-e", "nvml"], &script);
    assert_eq!(code, 0, "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(2) == Some(name) || l.ends_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .to_string()
    };
    assert!(line("nvml/0").contains("2.50 Joules nvml/0"), "{text}");
    assert_eq!(
        line("nvml/1").trim(),
        "<not counted> Joules nvml/1",
        "{text}"
    );
    let sum = line("nvml");
    assert!(
        sum.contains("2.50 Joules nvml ") && sum.ends_with("W (partial sum)"),
        "{sum}"
    );
    assert!(text.contains(&format!("warning: {cause}")), "{text}");
    assert!(
        text.contains("warning: nvml: partial sum: nvml/1 not counted, left out of it"),
        "{text}"
    );

    std::fs::write(&state, start).unwrap();
    let (text, code) = stat_nvml(&lib, &["-x,", "-e", "nvml"], &script);
    assert_eq!(code, 0, "{text}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split(',').nth(2) == Some(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .to_string()
    };
    assert_eq!(row("nvml/1"), "<not counted>,Joules,nvml/1,0,0.00,,");
    assert!(row("nvml/0").starts_with("2.50,Joules,nvml/0,"), "{text}");
    assert!(row("nvml").starts_with("2.50,Joules,nvml,"), "{text}");
    assert!(row("nvml").ends_with(",W (partial sum)"), "{text}");
    assert!(text.contains(&format!("# warning: {cause}")), "{text}");

    std::fs::write(&state, start).unwrap();
    let (text, code) = stat_nvml(&lib, &["-j", "-e", "nvml"], &script);
    assert_eq!(code, 0, "{text}");
    let objs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let obj = |name: &str| objs.iter().find(|o| o["event"] == name).unwrap().clone();
    assert_eq!(obj("nvml/1")["counter-value"], "<not counted>");
    assert_eq!(obj("nvml/1")["pcnt-running"], 0.0);
    assert_eq!(obj("nvml/0")["counter-value"], "2.500000");
    assert_eq!(obj("nvml")["counter-value"], "2.500000");
    assert_eq!(obj("nvml")["partial"], true);
    assert!(obj("nvml/0").get("partial").is_none());
    assert!(objs.iter().any(|o| o["warning"] == cause), "{text}");
}

#[test]
fn multi_die_packages_through_the_binary() {
    let t = FakeTree::at(scratch("stat-energy-dies"));
    t.cpus_with_dies(&[(0, 0, 0, 0), (1, 0, 1, 0), (2, 1, 0, 0), (3, 1, 1, 0)]);
    for (zone, name) in [
        ("intel-rapl:0", "package-0-die-0"),
        ("intel-rapl:1", "package-0-die-1"),
        ("intel-rapl:2", "package-1-die-0"),
        ("intel-rapl:3", "package-1-die-1"),
    ] {
        t.powercap_zone(zone, name, 1_000_000, MAX);
    }
    let script = [
        set(&t.energy_path("intel-rapl:0"), 2_000_000), // 1 J
        set(&t.energy_path("intel-rapl:1"), 3_000_000), // 2 J
        set(&t.energy_path("intel-rapl:2"), 5_000_000), // 4 J
        set(&t.energy_path("intel-rapl:3"), 9_000_000), // 8 J
    ]
    .join("; ");
    let (text, code) = stat(t.root(), &["-x,", "-e", "rapl"], &script);
    assert_eq!(code, 0, "{text}");
    let names: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(',').nth(2))
        .collect();
    assert_eq!(
        names,
        [
            "rapl/pkg:0.die0",
            "rapl/pkg:0.die1",
            "rapl/pkg:0",
            "rapl/pkg:1.die0",
            "rapl/pkg:1.die1",
            "rapl/pkg:1",
            "rapl/pkg"
        ]
    );
    for (name, j) in [
        ("rapl/pkg:0.die0", "1.00"),
        ("rapl/pkg:0.die1", "2.00"),
        ("rapl/pkg:0", "3.00"),
        ("rapl/pkg:1", "12.00"),
        ("rapl/pkg", "15.00"),
    ] {
        assert_eq!(csv_field(&text, name, 0), j, "{name}: {text}");
    }
    let (text, code) = stat(t.root(), &["-x,", "-e", "rapl/pkg:1.die0"], &script);
    assert_eq!(code, 0, "{text}");
    assert_eq!(csv_field(&text, "rapl/pkg:1.die0", 0), "0.00");
    assert!(!text.contains("rapl/pkg:1,"), "{text}");
}

#[test]
fn a_fake_power_pmu_is_never_opened_under_sysroot() {
    let t = tree("stat-energy-fake-pmu");
    // Its type is the host's msr PMU: opening it would count msr/tsc/ as joules.
    let ty = std::fs::read_to_string("/sys/bus/event_source/devices/msr/type")
        .map_or(7, |s| s.trim().parse().unwrap_or(7));
    t.perf_pmu(
        "power",
        ty,
        "0",
        &[("energy-pkg", "event=0x00", "1e-9", "Joules")],
    );
    let (text, code) = stat(
        t.root(),
        &["-x,", "-e", "rapl/pkg:0"],
        &set(&t.energy_path("intel-rapl:0"), 6_000_000),
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(csv_field(&text, "rapl/pkg:0", 0), "1.00");
    assert!(
        text.contains(
            "# warning: rapl: perf power PMU: not available under --sysroot; using powercap"
        ),
        "{text}"
    );
    let (text, code) = stat(
        t.root(),
        &["--rapl-source", "perf", "-e", "rapl", "true"],
        "true",
    );
    assert_eq!(code, 69, "{text}");
    assert!(
        text.contains("perf power PMU: not available under --sysroot"),
        "{text}"
    );
}

#[test]
fn amd_cores_through_powercap_say_they_are_one_core() {
    let t = FakeTree::at(scratch("stat-energy-amd-cores"));
    t.cpus(&[(0, 0, 0), (1, 0, 1)]);
    t.cpuinfo("AuthenticAMD", 0x19, 0x01);
    t.powercap_zone("intel-rapl:0", "package-0", 1_000_000, MAX);
    t.powercap_zone("intel-rapl:0:0", "core", 1_000_000, MAX);
    let (text, code) = stat(
        t.root(),
        &["--rapl-source", "powercap", "-e", "rapl/cores"],
        &set(&t.energy_path("intel-rapl:0:0"), 1_500_000),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0.50 Joules rapl/cores:0"), "{text}");
    assert!(
        text.contains("warning: rapl/cores:0: on AMD, powercap's core zone reads only the lead CPU's core counter"),
        "{text}"
    );
}

#[test]
fn repeats_average_only_the_runs_that_counted() {
    let dir = scratch("stat-nvml-lost-repeat");
    let lib = dir.join("libnvidia-ml.so.1");
    std::fs::copy(nvml_standin(), &lib).unwrap();
    let state = dir.join("libnvidia-ml.so.1.state");
    let marker = dir.join("second-run");
    let _ = std::fs::remove_file(&marker);
    std::fs::write(&state, "gpu A100 0 1\ngpu H100 0 1\n").unwrap();
    // Run 1: each GPU consumes; run 2: GPU 0 consumes 2 J more, GPU 1 is lost.
    let script = format!(
        "if [ -e '{m}' ]; then printf 'gpu A100 3000 1\\ngpu H100 4000 1\\nlost 1\\n' > '{s}.tmp'; \
         else touch '{m}'; printf 'gpu A100 1000 1\\ngpu H100 4000 1\\n' > '{s}.tmp'; fi; mv '{s}.tmp' '{s}'",
        m = marker.display(),
        s = state.display()
    );
    let (text, code) = stat_nvml(&lib, &["-x,", "-r", "2", "-e", "nvml"], &script);
    assert_eq!(code, 0, "{text}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split(',').nth(2) == Some(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .to_string()
    };
    // nvml/0: 1 J then 2 J, mean 1.5 J with a spread.
    assert!(
        row("nvml/0").starts_with("1.50,Joules,nvml/0,33.33%,"),
        "{text}"
    );
    // nvml/1: counted in run 1 only (4 J), never averaged with a failed run as 0.
    assert!(row("nvml/1").starts_with("4.00,Joules,nvml/1,"), "{text}");
    // The sum missed a GPU in one run: flagged partial.
    assert!(row("nvml").ends_with(",W (partial sum)"), "{text}");
}

/// A PMU event resolved from a fake tree is never opened on the host: its type number there
/// (here the host's software type, so cpu-clock) would be counted and printed as joules.
#[test]
fn fake_pmu_events_are_not_counted_on_the_host() {
    let t = FakeTree::at(scratch("stat-fake-pmu"));
    t.cpus(&[(0, 0, 0)]);
    t.perf_pmu(
        "power",
        1,
        "0",
        &[("energy-pkg", "event=0x00", "1e-9", "Joules")],
    );
    let out = Command::new(ruperf_path())
        .arg("--sysroot")
        .arg(t.root())
        .args([
            "stat",
            "-x,",
            "-a",
            "-e",
            "power/energy-pkg/",
            "sleep",
            "0.05",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("<not supported>,") && l.contains("power/energy-pkg/")),
        "{err}"
    );
}
