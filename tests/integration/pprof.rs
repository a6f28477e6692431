//! `ruperf report --format pprof` read back by Go's own pprof (`go tool pprof`, Debian's
//! golang-go): the same top functions, with the same percentages, as `report --stdio`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::common::{ruperf, scratch, workload};

fn have_go() -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `go tool pprof ARGS FILE`'s standard output.
fn go_pprof(args: &[&str], file: &Path) -> String {
    let out = Command::new("go")
        .args(["tool", "pprof", "-symbolize=none"])
        .args(args)
        .arg(file)
        .env("PPROF_TMPDIR", file.parent().unwrap())
        .env("HOME", file.parent().unwrap())
        .output()
        .expect("go tool pprof");
    assert!(
        out.status.success(),
        "go tool pprof failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Function → flat% from `pprof -top` lines (`flat flat% sum% cum cum% name`).
fn pprof_top(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 6 || !cols[1].ends_with('%') || !cols[4].ends_with('%') {
                return None;
            }
            let pct = cols[1].trim_end_matches('%').parse().ok()?;
            Some((cols[5..].join(" "), pct))
        })
        .collect()
}

/// Function → cum% from `pprof -top` lines.
fn pprof_cum(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 6 || !cols[1].ends_with('%') || !cols[4].ends_with('%') {
                return None;
            }
            let pct = cols[4].trim_end_matches('%').parse().ok()?;
            Some((cols[5..].join(" "), pct))
        })
        .collect()
}

/// Symbol → its first percentage column (Self with --no-children, Children with --children),
/// summed over the rows of `report --stdio -g none`.
fn stdio_self(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = l.split_whitespace().collect();
        let Some(mark) = cols.iter().position(|c| *c == "[.]" || *c == "[k]") else {
            continue;
        };
        let Some(pct) = cols
            .first()
            .and_then(|c| c.strip_suffix('%'))
            .and_then(|p| p.parse::<f64>().ok())
        else {
            continue;
        };
        *out.entry(cols[mark + 1..].join(" ")).or_insert(0.0) += pct;
    }
    out
}

#[test]
fn go_pprof_reads_the_same_top_functions_as_the_stdio_report() {
    require!(
        have_go(),
        "`go` (Debian's golang-go) is needed for go tool pprof"
    );
    let dir = scratch("pprof-top");
    let data = dir.join("perf.data");
    ruperf()
        .args(["record", "-e", "cpu-clock", "-F", "4000", "-g", "-o"])
        .arg(&data)
        .arg(workload("report_hot"))
        .arg("30")
        .assert()
        .success();
    let pb = dir.join("profile.pb.gz");
    ruperf()
        .args(["report", "--format", "pprof", "-o"])
        .arg(&pb)
        .arg("-i")
        .arg(&data)
        .assert()
        .success();
    let stdio = ruperf()
        .args(["report", "--stdio", "--no-children", "-g", "none", "-i"])
        .arg(&data)
        .assert()
        .success();
    let ours = stdio_self(&String::from_utf8_lossy(&stdio.get_output().stdout));
    let top_text = go_pprof(&["-top", "-nodefraction=0"], &pb);
    let top = pprof_top(&top_text);
    assert!(top.len() >= 2, "pprof -top printed too little:\n{top_text}");
    assert_eq!(top[0].0, "hot_spin", "{top_text}");
    for (name, pct) in top.iter().filter(|(_, p)| *p >= 1.0) {
        let mine = ours
            .get(name)
            .unwrap_or_else(|| panic!("{name} ({pct}%) is in pprof's top, not in the report"));
        assert!(
            (mine - pct).abs() <= 1.0,
            "{name}: pprof {pct}% vs report {mine}%\n{top_text}"
        );
    }
    for (name, pct) in ours.iter().filter(|(_, p)| **p >= 1.0) {
        assert!(
            top.iter().any(|(n, _)| n == name),
            "{name} ({pct}%) is in the report, not in pprof's top:\n{top_text}"
        );
    }
    // Mappings carry the recorded build ids; the executable comes first.
    let raw = go_pprof(&["-raw"], &pb);
    let maps = raw.split("Mappings").nth(1).unwrap_or("");
    let first = maps.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(first.contains("workload-report_hot"), "{raw}");
    let id = first.split_whitespace().nth(3).unwrap_or("");
    assert!(
        id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{first}"
    );
    assert!(raw.contains("samples/count cpu-clock/nanoseconds"), "{raw}");
    assert!(raw.contains("comm:[workload-report"), "{raw}");
}

#[test]
fn pprof_names_a_bad_output_path_and_writes_to_a_pipe() {
    let dir = scratch("pprof-bad");
    let data = dir.join("perf.data");
    ruperf()
        .args(["record", "-e", "cpu-clock", "-o"])
        .arg(&data)
        .args(["true"])
        .assert()
        .success();
    let out = ruperf()
        .args(["report", "--format", "pprof", "-o"])
        .arg(dir.join("no/such/dir/p.pb.gz"))
        .arg("-i")
        .arg(&data)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("no/such/dir/p.pb.gz"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Without -o and with stdout a pipe, the gzip stream goes to stdout.
    let out = ruperf()
        .args(["report", "--format", "pprof", "-i"])
        .arg(&data)
        .assert()
        .success();
    assert_eq!(&out.get_output().stdout[..2], &[0x1f, 0x8b]);
}

#[test]
fn energy_profiles_carry_nanojoules_that_go_pprof_ranks_like_the_report() {
    use ruperf::energy::fake::FakeTree;
    require!(
        have_go(),
        "`go` (Debian's golang-go) is needed for go tool pprof"
    );
    let t = FakeTree::at(scratch("pprof-energy"));
    t.cpus(&[(0, 0, 0), (1, 0, 0)]);
    t.powercap_zone("intel-rapl:0", "package-0", 1_000, 262_143_328_850);
    let data = t.root().join("energy.data");
    // 10 µJ/ms for 400 ms, then 30 µJ/ms for 400 ms.
    ruperf()
        .arg("--sysroot")
        .arg(t.root())
        .args(["record", "--energy=rapl", "-F", "1000", "-g", "-o"])
        .arg(&data)
        .arg("--")
        .arg(workload("energy_phases"))
        .arg(t.energy_path("intel-rapl:0"))
        .args(["10", "30", "400"])
        .assert()
        .success();
    let pb = t.root().join("energy.pb.gz");
    ruperf()
        .args(["report", "--energy", "--format", "pprof", "-o"])
        .arg(&pb)
        .arg("-i")
        .arg(&data)
        .assert()
        .success();
    let stdio = ruperf()
        .args([
            "report",
            "--energy",
            "--stdio",
            "--children",
            "-g",
            "none",
            "-i",
        ])
        .arg(&data)
        .assert()
        .success();
    let ours = stdio_self(&String::from_utf8_lossy(&stdio.get_output().stdout));
    // The phases call the spinning leaf: compare what they and their callees got (pprof's
    // cum%, the report's Children%).
    let text = go_pprof(
        &["-top", "-cum", "-nodefraction=0", "-sample_index=energy"],
        &pb,
    );
    assert!(text.contains("Type: energy"), "{text}");
    let top = pprof_cum(&text);
    let pct = |name: &str| {
        top.iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("{name} not in\n{text}"))
    };
    for name in ["low_power_phase", "high_power_phase"] {
        let mine = ours.get(name).copied().unwrap_or_default();
        assert!(
            (pct(name) - mine).abs() <= 1.0,
            "{name}: pprof {} vs report {mine}\n{text}",
            pct(name)
        );
    }
    let ratio = pct("high_power_phase") / pct("low_power_phase");
    assert!(
        (2.4..3.6).contains(&ratio),
        "3x the power, {ratio}x the joules:\n{text}"
    );
    let raw = go_pprof(&["-raw"], &pb);
    assert!(raw.contains("energy/nanojoules"), "{raw}");
    assert!(raw.contains("an estimate"), "{raw}");
}

/// Inline frames reach pprof as several lines of one location (innermost first, as
/// profile.proto orders them), and functions carry their source file and line from DWARF.
#[test]
fn inline_frames_are_lines_of_one_location() {
    require!(
        have_go(),
        "`go` (Debian's golang-go) is needed for go tool pprof"
    );
    let dir = scratch("pprof-inline");
    let exe = dir.join("inline_hot");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workloads/inline_hot.c");
    let built = Command::new("cc")
        .args(["-O2", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(built.success());
    let data = dir.join("perf.data");
    ruperf()
        .args(["record", "-e", "cpu-clock", "-F", "2000", "-g", "-o"])
        .arg(&data)
        .arg(&exe)
        .arg("150000000")
        .assert()
        .success();
    let pb = dir.join("profile.pb.gz");
    ruperf()
        .args(["report", "--format", "pprof", "-o"])
        .arg(&pb)
        .arg("-i")
        .arg(&data)
        .assert()
        .success();
    let raw = go_pprof(&["-raw"], &pb);
    let lines: Vec<&str> = raw.lines().collect();
    // `N: 0xADDR M=1 mix inline_hot.c:LINE s=0` followed by the caller on its own line.
    let inlined = lines.windows(2).any(|w| {
        w[0].contains(" mix inline_hot.c:") && w[1].trim_start().starts_with("work inline_hot.c:")
    });
    assert!(inlined, "no location with mix inlined into work:\n{raw}");
}
