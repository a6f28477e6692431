//! `ruperf report` against Debian's perf on a real recording, and on bad input.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{have_perf, ruperf, scratch, workload};

/// One `perf record -g` of the report_hot workload, shared by the tests.
fn recording() -> &'static Option<PathBuf> {
    static REC: OnceLock<Option<PathBuf>> = OnceLock::new();
    REC.get_or_init(|| {
        if !have_perf() {
            return None;
        }
        let exe = workload("report_hot");
        let dir = scratch("report-rec");
        let data = dir.join("perf.data");
        let st = Command::new("perf")
            .args(["record", "-q", "-F", "5000", "-g", "-o"])
            .arg(&data)
            .arg(&exe)
            .arg("30")
            .status()
            .ok()?;
        st.success().then_some(data)
    })
}

/// Parses `perf report --stdio` entry lines: (comm, dso, symbol) → first percentage column.
fn entries(text: &str) -> Vec<((String, String, String), f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if line.starts_with('#') || !t.contains('%') || !(t.contains("[.]") || t.contains("[k]")) {
            continue;
        }
        let cols: Vec<&str> = t.split_whitespace().collect();
        let Some(pct) = cols[0]
            .strip_suffix('%')
            .and_then(|p| p.parse::<f64>().ok())
        else {
            continue;
        };
        let mark = cols
            .iter()
            .position(|c| *c == "[.]" || *c == "[k]")
            .unwrap();
        if mark < 2 || cols.len() <= mark + 1 {
            continue;
        }
        let key = (
            cols[mark - 2].to_string(),
            cols[mark - 1].to_string(),
            cols[mark + 1..].join(" "),
        );
        out.push((key, pct));
    }
    out
}

fn perf_report(data: &Path, extra: &[&str]) -> String {
    let out = Command::new("perf")
        .args(["report", "--stdio", "-i"])
        .arg(data)
        .args(extra)
        .output()
        .expect("perf report");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard output of a successful `ruperf report ARGS -i DATA`.
fn report_output(data: &Path, args: &[&str]) -> String {
    let out = ruperf()
        .arg("report")
        .args(args)
        .arg("-i")
        .arg(data)
        .assert()
        .success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

/// The `--json` report of DATA, parsed.
fn report_json(data: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&report_output(data, &[&["--json"], args].concat())).unwrap()
}

fn ruperf_report(data: &Path, extra: &[&str]) -> String {
    report_output(data, &[&["--stdio"], extra].concat())
}

fn compare_top(data: &Path, extra: &[&str]) {
    let theirs = entries(&perf_report(data, extra));
    let ours: HashMap<_, _> = entries(&ruperf_report(data, extra)).into_iter().collect();
    assert!(theirs.len() >= 3, "perf gave too few entries");
    for (key, pct) in theirs.iter().take(5) {
        let mine = ours.get(key).unwrap_or_else(|| {
            panic!("perf's entry {key:?} ({pct}%) is missing from ruperf's report {extra:?}")
        });
        assert!(
            (mine - pct).abs() <= 1.0,
            "{key:?}: ruperf {mine}% vs perf {pct}% {extra:?}"
        );
    }
}

#[test]
fn top_symbols_match_perf_report() {
    require!(
        recording().is_some(),
        "Debian's perf (perf record -g) is needed"
    );
    let data = recording().as_ref().unwrap();
    compare_top(data, &["--no-children"]);
    compare_top(data, &[]);
    let ours = ruperf_report(data, &["--no-children"]);
    let top = &entries(&ours)[0];
    assert_eq!(top.0 .2, "hot_spin", "{ours}");
    assert!(top.1 > 50.0, "{ours}");
    assert!(ours.contains("# Samples: "), "{ours}");
    assert!(ours.contains("of event 'cpu-clock"), "{ours}");
    // The caller graph shows both callers of hot_spin.
    let caller = ruperf_report(data, &["--no-children", "-g", "caller"]);
    assert!(caller.contains("--caller_a"), "{caller}");
    assert!(caller.contains("--caller_b"), "{caller}");
}

#[test]
fn folded_counts_add_up_to_the_samples() {
    require!(
        recording().is_some(),
        "Debian's perf (perf record -g) is needed"
    );
    let data = recording().as_ref().unwrap();
    let samples = report_json(data, &[])["sections"][0]["samples"]
        .as_u64()
        .unwrap();
    let text = report_output(data, &["--format", "folded"]);
    let mut sum = 0;
    for line in text.lines() {
        let (stack, n) = line.rsplit_once(' ').expect("STACK COUNT");
        // The command (the workload's name, cut to 15 characters by the kernel) comes first.
        assert!(stack.starts_with("workload-report;"), "{line}");
        sum += n.parse::<u64>().unwrap();
    }
    assert_eq!(sum, samples);
    assert!(text.contains(";caller_a;hot_spin "), "{text}");
}

#[test]
fn flamegraph_is_xml_naming_the_hot_function() {
    require!(
        recording().is_some(),
        "Debian's perf (perf record -g) is needed"
    );
    let data = recording().as_ref().unwrap();
    let svg = scratch("report-svg").join("flame.svg");
    ruperf()
        .args(["report", "-i"])
        .arg(data)
        .arg("--flamegraph")
        .arg(&svg)
        .assert()
        .success();
    let text = std::fs::read_to_string(&svg).unwrap();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, opts).expect("valid XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        titles.iter().any(|t| t.starts_with("hot_spin")),
        "{titles:?}"
    );
}

/// Checks the documented JSON schema (docs/report-json.md).
fn check_node(n: &serde_json::Value) {
    assert!(n["symbol"].is_string() && n["dso"].is_string(), "{n}");
    assert!(
        n["period"].is_u64() && n["ends"].is_u64() && n["percent"].is_f64(),
        "{n}"
    );
    if let Some(kids) = n.get("children") {
        for k in kids.as_array().unwrap() {
            check_node(k);
        }
    }
}

#[test]
fn json_follows_its_schema() {
    require!(
        recording().is_some(),
        "Debian's perf (perf record -g) is needed"
    );
    let data = recording().as_ref().unwrap();
    let v = report_json(data, &["-n"]);
    assert_eq!(v["version"], 1);
    assert!(v["file"].is_string());
    assert!(v["lost_samples"].is_u64() && v["lost_records"].is_u64());
    assert_eq!(v["children"], true);
    assert_eq!(v["order"], "caller");
    assert_eq!(v["sort"], serde_json::json!(["comm", "dso", "sym"]));
    assert!(v["warnings"].is_array() && v["truncated"].is_boolean());
    let s = &v["sections"][0];
    assert!(s["event"].as_str().unwrap().starts_with("cpu-clock"));
    assert!(s["samples"].as_u64().unwrap() > 100);
    assert!(s["event_count"].is_u64());
    let entries = s["entries"].as_array().unwrap();
    let mut self_sum = 0.0;
    for e in entries {
        assert!(e["children"].is_f64() && e["self"].is_f64(), "{e}");
        assert!(
            e["children_period"].is_u64() && e["self_period"].is_u64(),
            "{e}"
        );
        assert!(e["samples"].is_u64() && e["kernel"].is_boolean(), "{e}");
        assert!(e["comm"].is_string() && e["dso"].is_string() && e["symbol"].is_string());
        for n in e
            .get("callchain")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            check_node(n);
        }
        self_sum += e["self"].as_f64().unwrap();
    }
    assert!((self_sum - 100.0).abs() < 0.01, "{self_sum}");
}

#[test]
fn script_format_lists_samples_with_symbols() {
    require!(
        recording().is_some(),
        "Debian's perf (perf record -g) is needed"
    );
    let data = recording().as_ref().unwrap();
    let text = report_output(data, &["--format", "script"]);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("workload-report "), "{first}");
    assert!(
        first.contains(": ") && first.contains("cpu-clock"),
        "{first}"
    );
    assert!(
        text.contains("\thot_spin+0x") || text.contains(" hot_spin+0x"),
        "no hot_spin frame"
    );
    let blocks = text.split("\n\n").filter(|b| !b.trim().is_empty()).count();
    let v = report_json(data, &[]);
    assert_eq!(blocks as u64, v["sections"][0]["samples"].as_u64().unwrap());
}

#[test]
fn truncated_recording_gives_a_warning_and_a_partial_report() {
    require!(
        recording().is_some(),
        "Debian's perf (perf record -g) is needed"
    );
    let data = recording().as_ref().unwrap();
    let bytes = std::fs::read(data).unwrap();
    let dir = scratch("report-cut");
    // Cut in the middle of the data section, and a copy whose header was never finished.
    let cut = dir.join("cut.data");
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let (data_offset, data_size) = (word(40), word(48));
    std::fs::write(&cut, &bytes[..data_offset + data_size / 2]).unwrap();
    let mut unfinished = bytes.clone();
    unfinished[48..56].copy_from_slice(&0u64.to_le_bytes());
    let unf = dir.join("unfinished.data");
    std::fs::write(&unf, &unfinished).unwrap();
    for p in [&cut, &unf] {
        let out = ruperf()
            .args(["report", "--no-children", "-i"])
            .arg(p)
            .assert()
            .success();
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            err.contains("ruperf: warning:") && err.contains("cut short"),
            "{err}"
        );
        assert!(text.contains("hot_spin"), "{text}");
    }
}

#[test]
fn bad_inputs_fail_with_one_line_and_the_right_code() {
    let dir = scratch("report-bad");
    let missing = dir.join("nothing.data");
    let out = ruperf()
        .args(["report", "-i"])
        .arg(&missing)
        .assert()
        .code(66);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ruperf: error:") && err.contains("ruperf record"),
        "{err}"
    );

    // Default input is ./perf.data.
    let out = ruperf().current_dir(&dir).arg("report").assert().code(66);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("perf.data"));

    let junk = dir.join("junk.data");
    std::fs::write(&junk, b"definitely not a recording\n").unwrap();
    let out = ruperf().args(["report", "-i"]).arg(&junk).assert().code(65);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a perf.data file"), "{err}");

    let empty = dir.join("empty.data");
    std::fs::write(&empty, b"").unwrap();
    ruperf()
        .args(["report", "-i"])
        .arg(&empty)
        .assert()
        .code(65);

    let out = ruperf()
        .args(["report", "--sort", "bogus", "-i"])
        .arg(&junk)
        .assert()
        .code(64);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("--sort"));
}
