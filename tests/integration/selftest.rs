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

mod energy {
    use std::process::{Command, Stdio};

    use ruperf::energy::fake::FakeTree;

    use crate::common::{ruperf_path, scratch};
    use crate::energy::nvml_standin;

    const MAX: u64 = 262_143_328_850;

    fn tree(name: &str) -> FakeTree {
        let t = FakeTree::at(scratch(name));
        t.cpus(&[(0, 0, 0)]);
        t.powercap_zone("intel-rapl:0", "package-0", 1_000_000, MAX);
        t
    }

    #[test]
    fn powercap_passes_when_the_counter_moves_and_fails_when_frozen() {
        let t = tree("selftest-powercap-moves");
        // Something consumes energy while the test is busy: a writer bumps the counter.
        let mut writer = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sleep 0.03; echo 4000000 > '{}'",
                t.energy_path("intel-rapl:0").display()
            ))
            .spawn()
            .unwrap();
        let out = Command::new(ruperf_path())
            .arg("--sysroot")
            .arg(t.root())
            .args(["test", "powercap"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        writer.wait().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(
            text.contains("RAPL through powercap") && text.contains(": Ok"),
            "{text}"
        );

        let frozen = tree("selftest-powercap-frozen");
        let out = Command::new(ruperf_path())
            .arg("--sysroot")
            .arg(frozen.root())
            .args(["test", "powercap"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains("FAILED!") && text.contains("none moved"),
            "{text}"
        );
    }

    #[test]
    fn a_named_nvml_library_that_refuses_fails_the_test() {
        let dir = scratch("selftest-nvml-refuses");
        let lib = dir.join("libnvidia-ml.so.1");
        std::fs::copy(nvml_standin(), &lib).unwrap();
        std::fs::write(dir.join("libnvidia-ml.so.1.state"), "init 9\n").unwrap();
        let out = Command::new(ruperf_path())
            .arg("--nvml-lib")
            .arg(&lib)
            .args(["test", "NVML"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("FAILED!"), "{text}");

        let state = dir.join("libnvidia-ml.so.1.state");
        std::fs::write(&state, "gpu A100 1000 250000\n").unwrap();
        // A counter frozen over the probe window fails, as powercap's does.
        let out = Command::new(ruperf_path())
            .arg("--nvml-lib")
            .arg(&lib)
            .args(["test", "NVML"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains("FAILED!") && text.contains("nvml/0 did not move over 200 ms"),
            "{text}"
        );
        // The GPU consumes while the test probes: a writer advances the counter every 10 ms
        // (rename, so that the stand-in never reads a half-written file) until killed.
        let mut writer = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "i=1000; while [ $i -lt 9000000 ]; do i=$((i + 1000)); \
                 echo \"gpu A100 $i 250000\" > '{s}.tmp' && mv '{s}.tmp' '{s}'; sleep 0.01; done",
                s = state.display()
            ))
            .spawn()
            .unwrap();
        let out = Command::new(ruperf_path())
            .arg("--nvml-lib")
            .arg(&lib)
            .args(["test", "NVML"])
            .output()
            .unwrap();
        writer.kill().unwrap();
        writer.wait().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(
            text.contains("GPU energy through NVML") && text.contains(": Ok"),
            "{text}"
        );
    }

    #[test]
    fn list_shows_rapl_domains_of_a_fake_tree_and_gpus_of_the_stand_in() {
        let t = FakeTree::at(scratch("list-energy"));
        t.cpus(&[(0, 0, 0), (1, 1, 0)]);
        t.powercap_zone("intel-rapl:0", "package-0", 1, MAX);
        t.powercap_zone("intel-rapl:0:0", "dram", 1, MAX);
        t.powercap_zone("intel-rapl:1", "package-1", 1, MAX);
        let out = Command::new(ruperf_path())
            .arg("--sysroot")
            .arg(t.root())
            .args(["list", "rapl", "--json"])
            .output()
            .unwrap();
        let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(names, ["rapl/pkg:0", "rapl/dram:0", "rapl/pkg:1"]);

        let dir = scratch("list-nvml");
        let lib = dir.join("libnvidia-ml.so.1");
        std::fs::copy(nvml_standin(), &lib).unwrap();
        std::fs::write(
            dir.join("libnvidia-ml.so.1.state"),
            "gpu A100 1000 250000\ngpu H100 1 1\n",
        )
        .unwrap();
        let out = Command::new(ruperf_path())
            .arg("--nvml-lib")
            .arg(&lib)
            .args(["list", "nvml", "--available"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("nvml/0") && text.contains("nvml/1") && text.contains("A100"),
            "{text}"
        );
        assert!(
            text.contains("[Energy: NVIDIA GPU, unit Joules]  supported"),
            "{text}"
        );
    }
}
