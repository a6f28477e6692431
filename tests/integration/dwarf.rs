//! `--call-graph dwarf`: programs without frame pointers (C `-O2 -fomit-frame-pointer` and a
//! Rust release build), recorded by perf and by ruperf, reported by both; and bad input
//! (corrupt CFI, damaged stack dumps, a rebuilt binary).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{have_perf, ruperf, scratch};

/// The workload functions whose shares and chains are compared (library frames are named
/// differently by perf's inline expansion and alias choice, which tests of symbols cover).
const C_FUNCS: &[&str] = &[
    "main",
    "drive",
    "hash_work",
    "descend",
    "mix_leaf",
    "by_value",
];
const RUST_FUNCS: &[&str] = &[
    "dwarf_rust::main",
    "dwarf_rust::run",
    "dwarf_rust::apply_all",
    "dwarf_rust::sum_as",
];

fn workload_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/workloads")
        .join(name)
}

/// Builds both workloads into `dir`; None when a compiler is missing.
fn build(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let c = dir.join("dwarf_c");
    let ok = Command::new("cc")
        .args(["-O2", "-fomit-frame-pointer", "-g", "-o"])
        .arg(&c)
        .arg(workload_src("dwarf_c.c"))
        .status()
        .ok()?
        .success();
    let rs = dir.join("dwarf_rust");
    let ok = ok
        && Command::new("rustc")
            .args([
                "-C",
                "opt-level=3",
                "-C",
                "force-frame-pointers=no",
                "-g",
                "-o",
            ])
            .arg(&rs)
            .arg(workload_src("dwarf_rust.rs"))
            .status()
            .ok()?
            .success();
    ok.then_some((c, rs))
}

struct Recordings {
    dir: PathBuf,
    c: PathBuf,
    /// (program, recorder) → file.
    files: HashMap<(&'static str, &'static str), PathBuf>,
}

fn record(recorder: &str, exe: &Path, out: &Path) -> bool {
    let mut cmd = match recorder {
        "perf" => {
            let mut c = Command::new("perf");
            c.args(["record", "-q"]);
            c
        }
        _ => {
            let mut c = Command::new(crate::common::ruperf_path());
            c.arg("record");
            c
        }
    };
    cmd.args(["--call-graph", "dwarf", "-F", "1000", "-o"])
        .arg(out)
        .arg(exe)
        .arg("1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Each workload recorded once by perf and once by ruperf, shared by the tests.
fn recordings() -> &'static Option<Recordings> {
    static REC: OnceLock<Option<Recordings>> = OnceLock::new();
    REC.get_or_init(|| {
        if !have_perf() {
            return None;
        }
        let dir = scratch("dwarf-rec");
        let (c, rs) = build(&dir)?;
        let mut files = HashMap::new();
        for (prog, exe) in [("c", &c), ("rust", &rs)] {
            for recorder in ["perf", "ruperf"] {
                let out = dir.join(format!("{prog}.{recorder}.data"));
                if !record(recorder, exe, &out) {
                    return None;
                }
                files.insert((prog, recorder), out);
            }
        }
        Some(Recordings { dir, c, files })
    })
}

fn perf_report(data: &Path, args: &[&str]) -> String {
    let out = Command::new("perf")
        .args(["report", "--stdio", "-i"])
        .arg(data)
        .args(args)
        .output()
        .expect("perf report");
    assert!(
        out.status.success(),
        "perf report failed on {}",
        data.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ruperf_report(data: &Path, args: &[&str]) -> String {
    let out = ruperf()
        .args(["report", "--stdio", "-i"])
        .arg(data)
        .args(args)
        .assert()
        .success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

/// `--children --sort sym -g none` lines: symbol → Children percentage (summed over entries
/// of one name: perf keeps the two instances of a generic apart, and they never nest here).
fn children(text: &str) -> HashMap<String, f64> {
    let mut out: HashMap<String, f64> = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 4 || !matches!(cols[2], "[.]" | "[k]") {
            continue;
        }
        if let Some(p) = cols[0]
            .strip_suffix('%')
            .and_then(|p| p.parse::<f64>().ok())
        {
            *out.entry(cols[3..].join(" ")).or_default() += p;
        }
    }
    out
}

/// `--no-children --sort sym -g folded` chains restricted to `funcs` (recursion collapsed):
/// chain → summed percentage.
fn chains(text: &str, funcs: &[&str]) -> HashMap<String, f64> {
    let mut out: HashMap<String, f64> = HashMap::new();
    for line in text.lines() {
        let Some((pct, chain)) = line.split_once("% ") else {
            continue;
        };
        let Ok(pct) = pct.trim().parse::<f64>() else {
            continue;
        };
        let mut kept: Vec<&str> = Vec::new();
        for f in chain.split(';') {
            let f = f.trim_end_matches(" (inlined)");
            if funcs.contains(&f) && kept.last() != Some(&f) {
                kept.push(f);
            }
        }
        if !kept.is_empty() {
            *out.entry(kept.join(";")).or_default() += pct;
        }
    }
    out
}

fn compare_with_perf(data: &Path, funcs: &[&str], extra: &[&str]) {
    let args = [&["--children", "--sort", "sym", "-g", "none"], extra].concat();
    let theirs = children(&perf_report(data, &args));
    let ours = children(&ruperf_report(data, &args));
    for f in funcs {
        let t = theirs.get(*f).copied().unwrap_or(0.0);
        let o = ours.get(*f).copied().unwrap_or(0.0);
        assert!(
            (t - o).abs() <= 1.0,
            "{}: {f} children {o}% in ruperf vs {t}% in perf",
            data.display()
        );
    }
    let args = [&["--no-children", "--sort", "sym", "-g", "folded,0"], extra].concat();
    let theirs = chains(&perf_report(data, &args), funcs);
    let ours = chains(&ruperf_report(data, &args), funcs);
    let mut top: Vec<(&String, &f64)> = theirs.iter().collect();
    top.sort_by(|a, b| b.1.total_cmp(a.1));
    assert!(top.len() >= 2, "perf gave too few chains: {theirs:?}");
    for (chain, pct) in top.into_iter().take(4) {
        let mine = ours.get(chain).copied().unwrap_or(0.0);
        assert!(
            (mine - pct).abs() <= 1.0,
            "{}: chain {chain}: ruperf {mine}% vs perf {pct}%\nruperf's: {ours:?}",
            data.display()
        );
    }
}

#[test]
fn c_without_frame_pointers_matches_perf() {
    require!(
        recordings().is_some(),
        "Debian's perf (perf record --call-graph dwarf), cc and rustc are needed"
    );
    let r = recordings().as_ref().unwrap();
    for recorder in ["perf", "ruperf"] {
        let data = &r.files[&("c", recorder)];
        compare_with_perf(data, C_FUNCS, &[]);
        // perf's --max-stack: the leaf-most frames are kept.
        compare_with_perf(data, C_FUNCS, &["--max-stack", "3"]);
        // The callers are really there: main carries nearly everything in children mode.
        let ours = children(&ruperf_report(
            data,
            &["--children", "--sort", "sym", "-g", "none"],
        ));
        assert!(
            ours["main"] > 95.0,
            "{recorder}'s file: main {}%",
            ours["main"]
        );
        assert!(ours["descend"] > 3.0, "{recorder}'s file: descend {ours:?}");
        // The other outputs carry the unwound frames too.
        let folded = ruperf()
            .args(["report", "--format", "folded", "-i"])
            .arg(data)
            .output()
            .unwrap();
        let folded = String::from_utf8_lossy(&folded.stdout);
        assert!(folded.contains(";main;drive;hash_work "), "{folded}");
        let json = ruperf()
            .args(["report", "--json", "-i"])
            .arg(data)
            .output()
            .unwrap();
        let json = String::from_utf8_lossy(&json.stdout);
        assert!(
            json.contains("\"symbol\": \"descend\""),
            "no descend in the JSON"
        );
    }
}

#[test]
fn rust_release_build_matches_perf() {
    require!(
        recordings().is_some(),
        "Debian's perf (perf record --call-graph dwarf), cc and rustc are needed"
    );
    let r = recordings().as_ref().unwrap();
    for recorder in ["perf", "ruperf"] {
        let data = &r.files[&("rust", recorder)];
        compare_with_perf(data, RUST_FUNCS, &[]);
        let ours = chains(
            &ruperf_report(data, &["--no-children", "--sort", "sym", "-g", "folded,0"]),
            RUST_FUNCS,
        );
        for leaf in ["dwarf_rust::sum_as", "dwarf_rust::apply_all"] {
            let chain = format!("{leaf};dwarf_rust::run;dwarf_rust::main");
            assert!(
                ours.get(&chain).copied().unwrap_or(0.0) > 10.0,
                "{recorder}'s file: no {chain} in {ours:?}"
            );
        }
    }
}

#[test]
fn perf_unwinds_ruperf_files_as_its_own() {
    require!(
        recordings().is_some(),
        "Debian's perf (perf record --call-graph dwarf), cc and rustc are needed"
    );
    let r = recordings().as_ref().unwrap();
    let evlist = Command::new("perf")
        .args(["evlist", "-v", "-i"])
        .arg(&r.files[&("c", "ruperf")])
        .output()
        .unwrap();
    let evlist = String::from_utf8_lossy(&evlist.stdout);
    for want in [
        "REGS_USER",
        "STACK_USER",
        "CALLCHAIN",
        "exclude_callchain_user: 1",
        "sample_regs_user: 0xff0fff",
        "sample_stack_user: 8192",
    ] {
        assert!(evlist.contains(want), "no {want} in {evlist}");
    }
    // The same shape from perf on either recorder's file (different runs: loose bounds).
    for recorder in ["perf", "ruperf"] {
        let data = &r.files[&("c", recorder)];
        let c = chains(
            &perf_report(data, &["--no-children", "--sort", "sym", "-g", "folded,0"]),
            C_FUNCS,
        );
        let hash = c.get("hash_work;drive;main").copied().unwrap_or(0.0);
        let leaf = c.get("mix_leaf;descend;drive;main").copied().unwrap_or(0.0);
        assert!(
            hash > 15.0 && leaf > 3.0,
            "perf on {recorder}'s file: {c:?}"
        );
    }
}

#[test]
fn bad_stack_size_is_a_usage_error() {
    for bad in ["dwarf,0", "dwarf,70000", "dwarf,big", "lbr"] {
        let out = ruperf()
            .args(["record", "--call-graph", bad, "-o", "/dev/null", "true"])
            .assert()
            .code(64);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert_eq!(err.trim().lines().count(), 1, "{bad}: {err}");
        assert!(err.contains("--call-graph"), "{bad}: {err}");
    }
}

/// ruperf report on DATA must end cleanly (0, or a documented error), never panic.
fn survives(data: &Path, home: Option<&Path>) -> (String, String) {
    let mut cmd = ruperf();
    cmd.args(["report", "--stdio", "--no-children", "-g", "folded", "-i"])
        .arg(data);
    if let Some(h) = home {
        cmd.env("HOME", h);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && out.status.code().is_some_and(|c| c != 101),
        "{}: {stderr}",
        data.display()
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn damaged_stack_dumps_never_panic() {
    require!(
        recordings().is_some(),
        "Debian's perf (perf record --call-graph dwarf), cc and rustc are needed"
    );
    let r = recordings().as_ref().unwrap();
    let good = std::fs::read(&r.files[&("c", "ruperf")]).unwrap();
    let dir = scratch("dwarf-damaged");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for round in 0..8 {
        let mut bytes = good.clone();
        // Scribble over many bytes past the header: registers, stack words, sizes.
        for _ in 0..(100 << round) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = 4096 + (x as usize % (bytes.len() - 4096));
            bytes[at] = (x >> 32) as u8;
        }
        let p = dir.join(format!("damaged{round}.data"));
        std::fs::write(&p, &bytes).unwrap();
        survives(&p, None);
    }
}

/// Overwrites the bytes of the ELF section `name` in `path` with `fill`.
fn scribble_section(path: &Path, name: &str, fill: u8) {
    use object::{Object, ObjectSection};
    let mut bytes = std::fs::read(path).unwrap();
    let (off, size) = {
        let obj = object::File::parse(&*bytes).unwrap();
        let s = obj.section_by_name(name).unwrap();
        s.file_range().unwrap()
    };
    for b in &mut bytes[off as usize..(off + size) as usize] {
        *b = fill;
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_cfi_and_a_rebuilt_binary_end_the_chain() {
    require!(
        recordings().is_some(),
        "Debian's perf (perf record --call-graph dwarf), cc and rustc are needed"
    );
    let r = recordings().as_ref().unwrap();
    let dir = scratch("dwarf-cfi");
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    // The program does not need its CFI to run; the unwinder must survive garbage in it.
    let exe = dir.join("dwarf_c");
    std::fs::copy(&r.c, &exe).unwrap();
    scribble_section(&exe, ".eh_frame_hdr", 0xff);
    scribble_section(&exe, ".eh_frame", 0x5a);
    let data = dir.join("cfi.data");
    let st = ruperf()
        .env("HOME", &home)
        .args(["record", "--call-graph", "dwarf", "-F", "500", "-o"])
        .arg(&data)
        .arg(&exe)
        .arg("0.3")
        .output()
        .unwrap();
    assert!(st.status.success());
    let (out, _) = survives(&data, Some(&home));
    assert!(out.contains("hash_work"), "{out}");

    // Rebuild the binary differently at the same path: its build id changes, so its CFI
    // no longer describes the recorded code and the chain ends at the sampled address.
    let data = dir.join("rebuilt.data");
    let exe = dir.join("rebuilt");
    std::fs::copy(&r.c, &exe).unwrap();
    let st = ruperf()
        .env("HOME", &home)
        .args(["record", "--call-graph", "dwarf", "-F", "500", "-o"])
        .arg(&data)
        .arg(&exe)
        .arg("0.3")
        .output()
        .unwrap();
    assert!(st.status.success());
    let _ = std::fs::remove_dir_all(home.join(".debug"));
    let ok = Command::new("cc")
        .args(["-O0", "-g", "-o"])
        .arg(&exe)
        .arg(workload_src("dwarf_c.c"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let (_, err) = survives(&data, Some(&home));
    let script = ruperf()
        .env("HOME", &home)
        .args(["report", "--format", "script", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(script.status.success());
    let script = String::from_utf8_lossy(&script.stdout).into_owned();
    // No sample's chain goes on past its first frame in the replaced binary.
    let mut ended = 0;
    for block in script.split("\n\n") {
        let frames: Vec<&str> = block.lines().filter(|l| l.starts_with('\t')).collect();
        if let Some(i) = frames.iter().position(|f| f.ends_with("/rebuilt)")) {
            assert_eq!(
                i + 1,
                frames.len(),
                "unwound through a replaced binary:\n{block}"
            );
            ended += 1;
        }
    }
    assert!(
        ended > 50,
        "{ended} chains reached the replaced binary:\n{script}"
    );
    assert!(
        err.contains("rebuilt"),
        "no warning about the replaced binary: {err}"
    );
    let _ = &r.dir;
}

#[test]
fn truncated_stacks_and_lost_samples_are_reported() {
    require!(
        recordings().is_some(),
        "Debian's perf (perf record --call-graph dwarf), cc and rustc are needed"
    );
    let r = recordings().as_ref().unwrap();
    let dir = scratch("dwarf-warn");
    // 24 levels of recursion do not fit in a 256-byte dump.
    let data = dir.join("short.data");
    ruperf()
        .args(["record", "--call-graph", "dwarf,256", "-F", "500", "-o"])
        .arg(&data)
        .arg(&r.c)
        .arg("0.3")
        .assert()
        .success();
    let (_, err) = survives(&data, None);
    assert!(
        err.contains("deeper than the 256-byte stack dump") && err.contains("dwarf,512"),
        "{err}"
    );
    // Each cut chain ends in the frame perf shows there, in both reports alike.
    let args = ["--children", "--sort", "sym", "-g", "none"];
    let ours = children(&ruperf_report(&data, &args));
    let theirs = children(&perf_report(&data, &args));
    let mark = "0xffffffffffffffff";
    assert!(ours.get(mark).copied().unwrap_or(0.0) > 50.0, "{ours:?}");
    assert!((ours[mark] - theirs.get(mark).copied().unwrap_or(0.0)).abs() <= 1.0);
    // A ring of four pages holds one 8 KiB sample at a time: samples are lost, and both
    // reports say how many.
    let data = dir.join("lost.data");
    ruperf()
        .args([
            "record",
            "--call-graph",
            "dwarf",
            "-m",
            "4",
            "-F",
            "4000",
            "-o",
        ])
        .arg(&data)
        .arg(&r.c)
        .arg("0.3")
        .assert()
        .success();
    let total = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("# Total Lost Samples: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let theirs = total(&perf_report(&data, &[]));
    let out = ruperf()
        .args(["report", "--stdio", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    let ours = total(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(ours, theirs, "Total Lost Samples: ruperf vs perf");
    let err = String::from_utf8_lossy(&out.stderr);
    // Almost always some are lost at this size; when none are, there is nothing to warn of.
    assert_eq!(
        err.contains(&format!("lost {ours} samples")),
        ours > 0,
        "{err}"
    );
}
