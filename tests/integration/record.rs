//! `ruperf record`: files that Debian's perf reads, targets, crash safety, bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{have_perf, ruperf, ruperf_path, scratch, signal_after, workload, Background};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `perf report --stdio --no-children` text of a file (panics if perf fails).
fn perf_report(file: &Path, extra: &[&str]) -> String {
    let out = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "-i"])
        .arg(file)
        .args(extra)
        .output()
        .expect("run perf report");
    assert!(
        out.status.success(),
        "perf report failed on {}: {}",
        file.display(),
        stderr_of(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn perf_script(file: &Path) -> String {
    let out = Command::new("perf")
        .args(["script", "-i"])
        .arg(file)
        .output()
        .expect("run perf script");
    assert!(out.status.success(), "perf script: {}", stderr_of(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first report line with a percentage: the top entry.
fn top_entry(report: &str) -> String {
    report
        .lines()
        .find(|l| !l.starts_with('#') && l.contains('%'))
        .unwrap_or("")
        .to_string()
}

fn percent(line: &str) -> f64 {
    line.split_whitespace()
        .next()
        .and_then(|p| p.trim_end_matches('%').parse().ok())
        .unwrap_or(0.0)
}

/// "Samples: 2K of event" → parse the exact sample count from `perf report --stdio -F` text
/// is lossy; count samples with perf script instead.
fn sample_count(file: &Path) -> usize {
    let out = Command::new("perf")
        .args(["script", "-F", "ip", "-i"])
        .arg(file)
        .output()
        .expect("perf script");
    assert!(out.status.success(), "{}", stderr_of(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn summary_samples(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("[ ruperf record: wrote "))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    let inner = line.split('(').nth(1).expect("( in summary");
    inner.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn hot_function_tops_perf_report_with_its_call_chain() {
    require!(have_perf(), "Debian's perf is not installed");
    let hot = workload("hot");
    let dir = scratch("rec-hot");
    let data = dir.join("hot.data");
    let out = ruperf()
        .args(["record", "-g", "-o"])
        .arg(&data)
        .arg(&hot)
        .arg("0.5")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("[ ruperf record: wrote ") && err.contains(" lost) ]"),
        "{err}"
    );
    let report = perf_report(&data, &["--sort", "sym"]);
    let top = top_entry(&report);
    assert!(
        top.contains("hot_spin"),
        "top entry is not hot_spin:\n{report}"
    );
    assert!(percent(&top) > 80.0, "hot_spin has only {top}");
    // The call chain as perf script prints it: callee first, then its callers.
    let script = perf_script(&data);
    let chain = script
        .split("\n\n")
        .find(|s| s.contains("hot_spin+"))
        .expect("a sample in hot_spin");
    let pos = |f: &str| {
        chain
            .find(f)
            .unwrap_or_else(|| panic!("{f} missing in:\n{chain}"))
    };
    assert!(pos("hot_spin+") < pos("middle_layer+"));
    assert!(pos("middle_layer+") < pos("run_work+"));
    assert!(pos("run_work+") < pos("main+"));
    assert!(chain.trim_start().starts_with("workload-hot "), "{chain}");
    // Build ids of the sampled program are in the file.
    let ids = Command::new("perf")
        .args(["buildid-list", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ids.stdout).contains(hot.to_str().unwrap()));
    // The header lists our features.
    let header = Command::new("perf")
        .args(["report", "--header-only", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    let h = String::from_utf8_lossy(&header.stdout);
    for key in [
        "# arch :",
        "# hostname :",
        "# os release :",
        "# cmdline :",
        "# nrcpus online :",
        "# event : name = ",
    ] {
        assert!(h.contains(key), "{key} missing in header:\n{h}");
    }
}

#[test]
fn inherited_children_are_sampled_under_their_own_name() {
    require!(have_perf(), "Debian's perf is not installed");
    let hot = workload("hot");
    let dir = scratch("rec-fork");
    let data = dir.join("fork.data");
    let out = ruperf()
        .args(["record", "-g", "-o"])
        .arg(&data)
        .arg(&hot)
        .args(["0.4", "fork"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = perf_report(&data, &["--sort", "comm,sym"]);
    let top = top_entry(&report);
    assert!(
        top.contains("hotchild") && top.contains("hot_spin"),
        "child not sampled under its own comm:\n{report}"
    );
}

#[test]
fn sample_count_matches_frequency_times_cpu_time() {
    require!(have_perf(), "Debian's perf is not installed");
    let hot = workload("hot");
    let dir = scratch("rec-count");
    let data = dir.join("count.data");
    let out = ruperf()
        .args(["record", "-e", "cpu-clock", "-F", "1000", "-o"])
        .arg(&data)
        .arg(&hot)
        .arg("0.8")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let cpu: f64 = stdout
        .split("cpu_seconds=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("workload prints its cpu time");
    let samples = sample_count(&data) as f64;
    let expected = 1000.0 * cpu;
    // Tolerance 15%: cpu-clock at 1 kHz fires once per ms of CPU time; the rest is
    // scheduling granularity and the exec before the program's own clock starts.
    assert!(
        (samples - expected).abs() <= 0.15 * expected,
        "{samples} samples for {cpu:.3} s of CPU at 1000 Hz (expected {expected:.0} ± 15%)"
    );
    assert_eq!(summary_samples(&stderr_of(&out)), samples as u64);
}

#[test]
fn attaches_to_a_running_process() {
    require!(have_perf(), "Debian's perf is not installed");
    let victim = Background::start("hot", &["-1"], 100);
    let dir = scratch("rec-pid");
    let data = dir.join("pid.data");
    let out = ruperf()
        .args(["record", "-g", "-p", &victim.pid(), "-o"])
        .arg(&data)
        .args(["--", "sleep", "0.4"])
        .output()
        .unwrap();
    drop(victim);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = perf_report(&data, &["--sort", "comm,sym"]);
    let top = top_entry(&report);
    // The process existed before recording: its name and maps come from synthesized records.
    assert!(top.contains("hot") && top.contains("hot_spin"), "{report}");
    assert!(percent(&top) > 80.0, "{top}");
}

#[test]
fn records_all_cpus_for_a_short_window() {
    require!(have_perf(), "Debian's perf is not installed");
    require!(
        is_root(),
        "system-wide sampling needs root at perf_event_paranoid > 0"
    );
    let busy = Background::start("hot", &["-1"], 100);
    let dir = scratch("rec-all");
    let data = dir.join("all.data");
    let out = ruperf()
        .args(["record", "-a", "-o"])
        .arg(&data)
        .args(["--", "sleep", "0.4"])
        .output()
        .unwrap();
    drop(busy);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = perf_report(&data, &["--sort", "comm,sym"]);
    assert!(
        report
            .lines()
            .any(|l| l.contains("hot_spin") && l.contains("hot")),
        "busy process missing from the system-wide report:\n{report}"
    );
    // Samples came from more than one CPU's ring when the machine has several.
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if online.trim() != "0" {
        let cpus = perf_report(&data, &["--sort", "cpu"]);
        let rows = cpus
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('%'))
            .count();
        assert!(rows >= 2, "{cpus}");
    }
}

/// A root whose /proc/modules lists one module and whose modules.dep names its file; everything
/// else is the real system (symlinks), so a system-wide recording works through it.
fn root_with_a_module(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("proc")).unwrap();
    for top in ["sys", "dev"] {
        std::os::unix::fs::symlink(format!("/{top}"), root.join(top)).unwrap();
    }
    for e in std::fs::read_dir("/proc").unwrap() {
        let name = e.unwrap().file_name();
        if name != "modules" {
            std::os::unix::fs::symlink(
                Path::new("/proc").join(&name),
                root.join("proc").join(&name),
            )
            .unwrap();
        }
    }
    std::fs::write(
        root.join("proc/modules"),
        "kvm 1142784 0 - Live 0xffffffffc0a5b000\n",
    )
    .unwrap();
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let lib = root.join("lib/modules").join(rel.trim());
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("modules.dep"), "kernel/arch/x86/kvm/kvm.ko.xz:\n").unwrap();
    root
}

#[test]
fn kernel_modules_get_the_maps_perf_expects() {
    require!(have_perf(), "Debian's perf is not installed");
    require!(
        is_root(),
        "system-wide sampling needs root at perf_event_paranoid > 0"
    );
    let dir = scratch("rec-modules");
    let root = root_with_a_module(&dir);
    let data = dir.join("mod.data");
    let out = ruperf()
        .arg("--sysroot")
        .arg(&root)
        .args(["record", "-a", "-o"])
        .arg(&data)
        .args(["--", "sleep", "0.1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // perf reads the module's map as a kernel map at the module's address, with its file.
    let dump = Command::new("perf")
        .args(["script", "-D", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let want = format!(
        "PERF_RECORD_MMAP -1/0: [0xffffffffc0a5b000(0x117000) @ 0]: x /lib/modules/{}/kernel/arch/x86/kvm/kvm.ko.xz",
        rel.trim()
    );
    assert!(
        dump.contains(&want),
        "{want} missing from:\n{}",
        &dump[..dump.len().min(4000)]
    );
    perf_report(&data, &["--sort", "dso"]);
}

/// Offsets of the records in a perf.data file's data section, with their types.
fn data_records(bytes: &[u8]) -> (u64, Vec<(usize, u32)>) {
    let u64_at = |o: usize| u64::from_ne_bytes(bytes[o..o + 8].try_into().unwrap());
    let (off, size) = (u64_at(40) as usize, u64_at(48) as usize);
    let mut pos = off;
    let mut out = Vec::new();
    while pos + 8 <= off + size {
        let kind = u32::from_ne_bytes(bytes[pos..pos + 4].try_into().unwrap());
        let len = u16::from_ne_bytes(bytes[pos + 6..pos + 8].try_into().unwrap()) as usize;
        assert!(len >= 8, "bad record at {pos}");
        out.push((pos, kind));
        pos += len;
    }
    assert_eq!(pos, off + size, "records do not tile the data section");
    (off as u64, out)
}

#[test]
fn a_file_cut_at_a_round_boundary_still_reads() {
    require!(have_perf(), "Debian's perf is not installed");
    let hot = workload("hot");
    let dir = scratch("rec-cut");
    let data = dir.join("full.data");
    let out = ruperf()
        .args(["record", "-g", "-F", "4000", "-m", "8", "-o"])
        .arg(&data)
        .arg(&hot)
        .arg("0.5")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let bytes = std::fs::read(&data).unwrap();
    let (off, recs) = data_records(&bytes);
    let rounds: Vec<usize> = recs
        .iter()
        .filter(|(_, k)| *k == 68)
        .map(|(p, _)| p + 8)
        .collect();
    assert!(
        rounds.len() >= 3,
        "only {} FINISHED_ROUND records",
        rounds.len()
    );
    let full = sample_count(&data);
    // Cut after a middle round and announce the shorter data section, as a killed
    // recording leaves it (features gone, header size at the last commit).
    let cut_at = rounds[rounds.len() / 2];
    let mut cut = bytes[..cut_at].to_vec();
    cut[48..56].copy_from_slice(&(cut_at as u64 - off).to_ne_bytes());
    cut[72..104].fill(0);
    let cut_path = dir.join("cut.data");
    std::fs::write(&cut_path, &cut).unwrap();
    let partial = sample_count(&cut_path);
    assert!(partial > 0 && partial < full, "{partial} of {full} samples");
    assert!(top_entry(&perf_report(&cut_path, &["--sort", "sym"])).contains("hot_spin"));
}

#[test]
fn a_killed_recording_is_readable_by_perf() {
    require!(have_perf(), "Debian's perf is not installed");
    let hot = workload("hot");
    let dir = scratch("rec-kill");
    let data = dir.join("killed.data");
    let mut rec = Command::new(ruperf_path())
        .args(["record", "-g", "-o"])
        .arg(&data)
        .arg(&hot)
        .arg("30")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the header announces samples (beyond the kernel map written at the start),
    // then kill ruperf outright.
    let start = Instant::now();
    loop {
        let announced = std::fs::read(&data)
            .ok()
            .filter(|b| b.len() >= 56)
            .map(|b| u64::from_ne_bytes(b[48..56].try_into().unwrap()))
            .unwrap_or(0);
        if announced > 16 * 1024 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no data committed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rec.kill().unwrap();
    rec.wait().unwrap();
    // The workload outlives its recorder: stop it.
    let _ = Command::new("pkill")
        .args(["-KILL", "-f", &format!("^{} 30$", hot.display())])
        .status();
    let report = perf_report(&data, &["--sort", "sym"]);
    assert!(top_entry(&report).contains("hot_spin"), "{report}");
}

#[test]
fn ctrl_c_stops_the_command_and_closes_the_file() {
    require!(have_perf(), "Debian's perf is not installed");
    let hot = workload("hot");
    let dir = scratch("rec-int");
    let data = dir.join("int.data");
    let out = signal_after(
        Command::new(ruperf_path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .args(["record", "-o"])
            .arg(&data)
            .arg(&hot)
            .arg("30"),
        500,
        nix::sys::signal::Signal::SIGINT,
    );
    // The command died of SIGINT: the shell convention 128 + 2.
    assert_eq!(out.status.code(), Some(130), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("[ ruperf record: wrote "));
    let bytes = std::fs::read(&data).unwrap();
    let features = u64::from_ne_bytes(bytes[72..80].try_into().unwrap());
    assert_ne!(features, 0, "file not finalized (no feature sections)");
    assert!(top_entry(&perf_report(&data, &["--sort", "sym"])).contains("hot_spin"));
}

#[test]
fn default_output_is_perf_data_and_the_old_one_is_kept() {
    let dir = scratch("rec-default");
    // Standard output not a pipe (a pipe would get perf's pipe format, as with perf).
    for _ in 0..2 {
        let st = Command::new(ruperf_path())
            .current_dir(&dir)
            .args(["record", "-e", "cpu-clock", "true"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    assert!(dir.join("perf.data").is_file());
    assert!(dir.join("perf.data.old").is_file());
    let b = std::fs::read(dir.join("perf.data")).unwrap();
    assert_eq!(&b[0..8], b"PERFILE2");
}

#[test]
fn exit_status_is_the_commands() {
    let dir = scratch("rec-status");
    let out = ruperf()
        .args(["record", "-e", "cpu-clock", "-o"])
        .arg(dir.join("s.data"))
        .args(["sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let out = ruperf()
        .args(["record", "-e", "cpu-clock", "-o"])
        .arg(dir.join("k.data"))
        .args(["sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128 + 15));
}

#[test]
fn default_event_falls_back_to_cpu_clock_and_says_so() {
    let dir = scratch("rec-fallback");
    let out = ruperf()
        .args(["record", "-o"])
        .arg(dir.join("f.data"))
        .arg("true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    let bytes = std::fs::read(dir.join("f.data")).unwrap();
    let attr_off = u64::from_ne_bytes(bytes[24..32].try_into().unwrap()) as usize;
    let ty = u32::from_ne_bytes(bytes[attr_off..attr_off + 4].try_into().unwrap());
    let size = u32::from_ne_bytes(bytes[attr_off + 4..attr_off + 8].try_into().unwrap());
    assert!(size <= 128, "attr size {size} is more than perf 6.1 reads");
    if ty == 1 {
        // software: the fallback happened and must have been announced in one line
        assert_eq!(
            err.lines()
                .filter(|l| l.contains("sampling cpu-clock instead"))
                .count(),
            1,
            "{err}"
        );
    } else {
        assert_eq!(ty, 0, "default event is cycles (hardware)");
        assert!(!err.contains("cpu-clock instead"), "{err}");
    }
}

#[test]
fn frequency_above_the_kernel_limit_is_capped_with_a_message() {
    let max: u64 = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let dir = scratch("rec-cap");
    let out = ruperf()
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-F",
            &(max * 10).to_string(),
            "-o",
        ])
        .arg(dir.join("c.data"))
        .arg("true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("perf_event_max_sample_rate")
            && err.contains(&format!("sampling at {max} Hz")),
        "{err}"
    );
}

fn assert_one_line_error(args: &[&str], code: i32, needle: &str) -> String {
    let out = ruperf().args(args).output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("ruperf: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains(needle), "{args:?}: {err}");
    err
}

#[test]
fn bad_input_gets_one_clear_line() {
    let dir = scratch("rec-bad");
    let out = dir.join("bad.data");
    let o = out.to_str().unwrap();
    assert_one_line_error(
        &["record", "-e", "no-such-event", "-o", o, "true"],
        64,
        "no-such-event",
    );
    assert_one_line_error(&["record", "-o", o, "-p", "999999999"], 66, "999999999");
    assert_one_line_error(
        &[
            "record",
            "-e",
            "cpu-clock",
            "-o",
            "/nonexistent-dir/x.data",
            "true",
        ],
        73,
        "/nonexistent-dir/x.data",
    );
    assert_one_line_error(
        &["record", "-e", "cpu-clock", "-o", o, "no-such-command-xyz"],
        127,
        "command not found",
    );
    assert_one_line_error(
        &["record", "-e", "cpu-clock", "-o", o, "-m", "3", "true"],
        64,
        "power of two",
    );
    assert_one_line_error(&["record", "-o", o], 64, "nothing to record");
    // Created, then the first write fails: an I/O error (74), as for `stat -o /dev/full`.
    assert_one_line_error(
        &["record", "-o", "/dev/full", "true"],
        74,
        "writing /dev/full",
    );
    assert_one_line_error(
        &["record", "--call-graph", "lbr", "-o", o, "true"],
        64,
        "dwarf[,SIZE]",
    );
    assert_one_line_error(
        &["record", "--call-graph", "dwarf,70000", "-o", o, "true"],
        64,
        "65528",
    );
    // An event the machine counts but cannot sample.
    if Path::new("/sys/bus/event_source/devices/msr").exists() {
        assert_one_line_error(
            &["record", "-e", "msr/tsc/", "-o", o, "true"],
            69,
            "cannot be sampled",
        );
    }
}

#[test]
fn permission_refused_names_the_paranoid_level() {
    require!(is_root(), "needs root to drop to an unprivileged user");
    let paranoid: i32 = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    require!(
        paranoid >= 1,
        "perf_event_paranoid < 1 allows unprivileged -a"
    );
    let dir = scratch("rec-perm");
    let bin = ruperf_path();
    // nobody must be able to reach the binary and write the output.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["record", "-a", "-e", "cpu-clock", "-o"])
        .arg(dir.join("p.data"))
        .args(["--", "true"])
        .output();
    let Ok(out) = out else {
        require!(false, "setpriv is not installed");
        return;
    };
    let err = stderr_of(&out);
    require!(
        !err.contains("Permission denied") || err.contains("ruperf: error:"),
        "nobody cannot execute {}: {err}",
        bin.display()
    );
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains(&format!("perf_event_paranoid is {paranoid}")),
        "{err}"
    );
    assert!(err.contains("CAP_PERFMON"), "{err}");
}

#[test]
fn a_full_disk_stops_cleanly_and_keeps_a_readable_file() {
    require!(is_root(), "mounting a small tmpfs needs root");
    require!(have_perf(), "Debian's perf is not installed");
    let hot = workload("hot");
    let dir = scratch("rec-full");
    let mnt: PathBuf = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    require!(ok, "cannot mount a tmpfs at {}", mnt.display());
    let data = mnt.join("full.data");
    let out = ruperf()
        .args(["record", "-g", "-F", "10000", "-o"])
        .arg(&data)
        .arg(&hot)
        .arg("1")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    let report = Command::new("perf")
        .args(["report", "--stdio", "--sort", "sym", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    let _ = Command::new("umount").arg(&mnt).status();
    assert_eq!(out.status.code(), Some(74), "{err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("ruperf: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("disk full") && errors[0].contains("-o"),
        "{err}"
    );
    assert!(report.status.success(), "{}", stderr_of(&report));
    assert!(String::from_utf8_lossy(&report.stdout).contains("hot_spin"));
}
