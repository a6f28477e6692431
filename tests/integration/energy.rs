//! Energy sources end to end at the library level: fake powercap and MSR trees rewritten by the
//! measured command itself, the perf power PMU fallback, and NVML through the stand-in library.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ruperf::energy::fake::FakeTree;
use ruperf::energy::rapl::{self, RaplSource};
use ruperf::energy::{parse_selector, EnergyReport, EnergySelector, EnergySession};
use ruperf::os::launcher::GatedChild;
use ruperf::sysroot::Sysroot;
use ruperf::Error;

use crate::common::scratch;

/// powercap's `max_energy_range_uj` for ESU 14: (2^32 − 1) × 61035 pJ / 1000, as the kernel
/// computes it; its hidden last step is one 61 µJ unit.
const MAX: u64 = 262_143_328_850;
const STEP: u64 = 61;

fn sel(s: &str) -> EnergySelector {
    parse_selector(s).expect("energy name").expect("valid")
}

/// Measures `script` (run by sh) the way `stat` does: read, release, wait, read.
fn measure(session: &mut EnergySession, script: &str) -> EnergyReport {
    let argv: Vec<OsString> = vec!["sh".into(), "-c".into(), script.into()];
    let mut child = GatedChild::spawn(&argv).expect("spawn");
    session.start().expect("start");
    child.release().expect("release");
    let (status, _) = child.wait().expect("wait");
    assert_eq!(status.shell_code(), 0, "{script}");
    session.finish().expect("finish")
}

fn joules(r: &EnergyReport, name: &str) -> f64 {
    r.rows
        .iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("no row {name} in {r:?}"))
        .joules
}

fn uj(v: u64) -> f64 {
    v as f64 * 1e-6
}

/// Two packages with core and dram, a psys zone, and the mmio duplicate of package 0.
fn powercap_tree(name: &str) -> FakeTree {
    let t = FakeTree::at(scratch(name));
    t.cpus(&[(0, 0, 0), (1, 1, 0)]);
    t.powercap_zone("intel-rapl:0", "package-0", 5_000_000, MAX);
    t.powercap_zone("intel-rapl:0:0", "core", 1_000_000, MAX);
    t.powercap_zone("intel-rapl:0:1", "dram", 0, MAX);
    t.powercap_zone("intel-rapl:1", "package-1", MAX - 2_000_000, MAX);
    t.powercap_zone("intel-rapl:1:0", "core", MAX, MAX);
    t.powercap_zone("intel-rapl:1:1", "dram", 777, MAX);
    t.powercap_zone("intel-rapl:2", "psys", 42, MAX);
    t.powercap_zone("intel-rapl-mmio:0", "package-0", 9_000_000, MAX);
    t
}

fn write_cmd(path: &Path, v: u64) -> String {
    format!("echo {v} > '{}'", path.display())
}

#[test]
fn powercap_command_consumes_across_wraps_and_edges() {
    let t = powercap_tree("energy-powercap");
    let mut s = EnergySession::open(&[sel("rapl")], &t.sysroot(), None, None).unwrap();
    let script = [
        // pkg0: 5 J of plain consumption.
        write_cmd(&t.energy_path("intel-rapl:0"), 10_000_000),
        // The mmio copy of pkg0 moves too, but must not be counted.
        write_cmd(&t.energy_path("intel-rapl-mmio:0"), 99_000_000),
        // cores:0 wraps: 1 J → top of the range → 250 000 µJ.
        write_cmd(&t.energy_path("intel-rapl:0:0"), 250_000),
        // dram:0 climbs exactly to the top of the range, no wrap.
        write_cmd(&t.energy_path("intel-rapl:0:1"), MAX),
        // pkg1 wraps from 2 J below the top to 3 J.
        write_cmd(&t.energy_path("intel-rapl:1"), 3_000_000),
        // cores:1 goes from exactly the top to exactly zero: one hidden step.
        write_cmd(&t.energy_path("intel-rapl:1:0"), 0),
        // dram:1 and psys do not move: zero, not a wrap.
    ]
    .join("; ");
    let r = measure(&mut s, &script);
    let names: Vec<&str> = r.rows.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "rapl/pkg:0",
            "rapl/cores:0",
            "rapl/dram:0",
            "rapl/psys:0",
            "rapl/pkg:1",
            "rapl/cores:1",
            "rapl/dram:1"
        ]
    );
    assert_eq!(joules(&r, "rapl/pkg:0"), 5.0);
    assert_eq!(
        joules(&r, "rapl/cores:0"),
        uj((MAX - 1_000_000) + STEP + 250_000)
    );
    assert_eq!(joules(&r, "rapl/dram:0"), uj(MAX));
    assert_eq!(joules(&r, "rapl/pkg:1"), uj(2_000_000 + STEP + 3_000_000));
    assert_eq!(joules(&r, "rapl/cores:1"), uj(STEP));
    assert_eq!(joules(&r, "rapl/dram:1"), 0.0);
    assert_eq!(joules(&r, "rapl/psys:0"), 0.0);
    // Per-kind sums across packages; psys, dram and package never added together.
    let pkg = r.totals.iter().find(|t| t.name == "rapl/pkg").unwrap();
    assert_eq!(pkg.domains, 2);
    assert_eq!(pkg.joules, 5.0 + uj(2_000_000 + STEP + 3_000_000));
    assert!(r.totals.iter().all(|t| t.name != "rapl/psys"));
    for row in &r.rows {
        assert_eq!(row.source, "powercap");
        assert!(!row.estimate);
        assert!(row.seconds > 0.0);
        assert_eq!(row.watts, row.joules / row.seconds);
    }
}

#[test]
fn powercap_selected_domains_and_intervals() {
    let t = powercap_tree("energy-powercap-sel");
    let mut s = EnergySession::open(
        &[sel("rapl/dram"), sel("rapl/pkg:1")],
        &t.sysroot(),
        None,
        Some(RaplSource::Powercap),
    )
    .unwrap();
    let names: Vec<&str> = s.domains().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["rapl/dram:0", "rapl/pkg:1", "rapl/dram:1"]);
    s.start().unwrap();
    t.set_energy("intel-rapl:1", MAX - 1_000_000);
    let i1 = s.interval().unwrap();
    t.set_energy("intel-rapl:1", 500);
    let i2 = s.interval().unwrap();
    let total = s.finish().unwrap();
    assert_eq!(joules(&i1, "rapl/pkg:1"), 1.0);
    assert_eq!(joules(&i2, "rapl/pkg:1"), uj(1_000_000 + STEP + 500));
    assert_eq!(joules(&total, "rapl/pkg:1"), uj(2_000_000 + STEP + 500));
}

/// A shell command that stores `value` in register `reg` of a fake MSR file
/// (register R lives at byte offset 8 × R, so `dd bs=8 seek=R`).
fn msr_cmd(path: &Path, reg: u64, value: u64) -> String {
    let bytes: String = value
        .to_le_bytes()
        .iter()
        .map(|b| format!("\\{b:03o}"))
        .collect();
    format!(
        "printf '{bytes}' | dd of='{}' bs=8 seek={reg} conv=notrunc status=none",
        path.display()
    )
}

#[test]
fn msr_intel_server_command_wraps_and_dram_quirk() {
    let t = FakeTree::at(scratch("energy-msr-intel"));
    t.cpus(&[(0, 0, 0), (1, 1, 0)]);
    t.cpuinfo("GenuineIntel", 6, 0x6A); // Ice Lake-SP: DRAM in fixed 2^-16 J units.
    for cpu in [0, 1] {
        t.msr(cpu, 0x606, 0x000A_0E03); // ESU 14: 61 µJ.
        t.msr(cpu, 0x611, 0xFFFF_F000);
        t.msr(cpu, 0x619, 5);
    }
    let mut s =
        EnergySession::open(&[sel("rapl")], &t.sysroot(), None, Some(RaplSource::Msr)).unwrap();
    // 32-bit counters at 61 µJ wrap after 262 kJ: 262 s at 1 kW, polled every 60 s at most.
    assert!(s.poll_period().is_some());
    let script = [
        msr_cmd(&t.msr_path(0), 0x611, 0x0000_1000), // wraps: 0x2000 units.
        msr_cmd(&t.msr_path(0), 0x619, 5 + 3 * 65536), // 3 J in 2^-16 J units.
        msr_cmd(&t.msr_path(1), 0x611, 0xFFFF_F000 + 16384), // 1 J, no wrap.
    ]
    .join(" && ");
    let r = measure(&mut s, &script);
    assert_eq!(joules(&r, "rapl/pkg:0"), 8192.0 / 16384.0);
    assert_eq!(joules(&r, "rapl/dram:0"), 3.0);
    assert_eq!(joules(&r, "rapl/pkg:1"), 1.0);
    assert_eq!(joules(&r, "rapl/dram:1"), 0.0);
    assert!(r.rows.iter().all(|x| x.source == "msr"));
}

#[test]
fn msr_amd_command_package_and_cores() {
    let t = FakeTree::at(scratch("energy-msr-amd"));
    t.cpus(&[(0, 0, 0), (1, 0, 1)]);
    t.cpuinfo("AuthenticAMD", 0x19, 0x11);
    t.msr(0, 0xC001_0299, 0x000A_1003); // ESU 16: 15.3 µJ.
    t.msr(0, 0xC001_029B, 0xFFFF_FFFF);
    t.msr(0, 0xC001_029A, 10);
    t.msr(1, 0xC001_029A, 0xFFFF_FFF0);
    let mut s = EnergySession::open(&[sel("rapl")], &t.sysroot(), None, None).unwrap();
    let script = [
        msr_cmd(&t.msr_path(0), 0xC001_029B, 2 * 65536 - 1), // wraps: 2 J.
        msr_cmd(&t.msr_path(0), 0xC001_029A, 10 + 65536),    // core 0: 1 J.
        msr_cmd(&t.msr_path(1), 0xC001_029A, 0x0000_7FF0),   // core 1 wraps: 0.5 J.
    ]
    .join(" && ");
    let r = measure(&mut s, &script);
    assert_eq!(joules(&r, "rapl/pkg:0"), 2.0);
    assert_eq!(joules(&r, "rapl/cores:0"), 1.5);
}

#[test]
fn perf_pmu_without_events_falls_back() {
    let t = powercap_tree("energy-pmu-empty");
    // A power PMU with no events, as on this machine's kernel: unavailable, not an error.
    t.perf_pmu("power", 23, "0", &[]);
    let o = rapl::open(&t.sysroot(), None).unwrap();
    assert_eq!(o.kind, RaplSource::Powercap);
    // Forcing it says why.
    let e = EnergySession::open(&[sel("rapl")], &t.sysroot(), None, Some(RaplSource::Perf))
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)));
    assert!(
        e.to_string()
            .starts_with("no energy source available: rapl: perf power PMU: no energy events"),
        "{e}"
    );
}

#[test]
fn host_rapl_is_used_or_explained_in_one_line() {
    let root = Sysroot::default();
    match EnergySession::open(&[sel("rapl")], &root, None, None) {
        Ok(s) => assert!(!s.domains().is_empty()),
        Err(e) => {
            let msg = e.to_string();
            assert_eq!(e.exit_code(), 69);
            assert!(!msg.contains('\n'), "{msg}");
            for part in ["rapl: perf power PMU: ", "; powercap: ", "; msr: "] {
                assert!(msg.contains(part), "{part} missing in {msg}");
            }
        }
    }
}

// ---- NVML through the stand-in library ----

/// Builds tests/nvml-standin once per test run and returns the library's path.
pub fn nvml_standin() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nvml-standin/Cargo.toml");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nvml-standin");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--offline", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("running cargo to build the NVML stand-in");
        assert!(status.success(), "building the NVML stand-in failed");
        target.join("debug/libnvml_standin.so")
    })
    .clone()
}

/// A private copy of the stand-in (so each test loads its own instance) with its state file.
struct StandIn {
    lib: PathBuf,
}

impl StandIn {
    fn new(name: &str, state: &str) -> StandIn {
        let dir = scratch(name);
        let lib = dir.join("libnvidia-ml.so.1");
        std::fs::copy(nvml_standin(), &lib).expect("copy stand-in");
        let s = StandIn { lib };
        s.set(state);
        s
    }

    fn set(&self, state: &str) {
        let mut p = self.lib.clone().into_os_string();
        p.push(".state");
        std::fs::write(p, state).expect("write stand-in state");
    }

    fn open(&self, sels: &[&str]) -> Result<EnergySession, Error> {
        let sels: Vec<EnergySelector> = sels.iter().map(|s| sel(s)).collect();
        EnergySession::open(&sels, &Sysroot::default(), Some(&self.lib), None)
    }
}

#[test]
fn nvml_energy_counter() {
    let gpu = StandIn::new("nvml-energy", "gpu A100 1000 250000\ngpu H100 50 300000\n");
    let mut s = gpu.open(&["nvml"]).unwrap();
    assert_eq!(s.poll_period(), None);
    s.start().unwrap();
    gpu.set("gpu A100 3500 250000\ngpu H100 50 300000\n");
    let r = s.finish().unwrap();
    assert_eq!(joules(&r, "nvml/0"), 2.5);
    assert_eq!(joules(&r, "nvml/1"), 0.0);
    let row = &r.rows[0];
    assert_eq!(row.source, "nvml");
    assert!(!row.estimate);
    assert!(row
        .warnings
        .iter()
        .any(|w| w.starts_with("window under 1 s")));
    let total = r.totals.iter().find(|t| t.name == "nvml").unwrap();
    assert_eq!((total.domains, total.joules), (2, 2.5));
}

#[test]
fn nvml_counter_going_down_is_a_driver_reload() {
    let gpu = StandIn::new("nvml-reload", "gpu A100 90000 250000\n");
    let mut s = gpu.open(&["nvml/0"]).unwrap();
    s.start().unwrap();
    gpu.set("gpu A100 200 250000\n");
    let r = s.finish().unwrap();
    assert_eq!(joules(&r, "nvml/0"), 0.2);
    assert!(
        r.rows[0]
            .warnings
            .iter()
            .any(|w| w.starts_with("driver reload detected")),
        "{r:?}"
    );
}

#[test]
fn nvml_not_supported_falls_back_to_power_integration() {
    let gpu = StandIn::new("nvml-power", "gpu T4 - 70000\n");
    let mut s = gpu.open(&["nvml"]).unwrap();
    assert!(
        s.poll_period().unwrap().as_millis() <= 100,
        "at least 10 Hz"
    );
    s.start().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(120));
    let r = s.finish().unwrap();
    let row = &r.rows[0];
    assert!(row.estimate);
    // Constant 70 W integrated over every interval of the window: exactly 70 W on average.
    assert!((row.watts - 70.0).abs() < 1e-9, "{row:?}");
    // The background poller ran for this window (how often is a matter for the benchmarks).
    assert!(r.poll.is_some());
}

#[test]
fn nvml_one_of_two_gpus_unsupported() {
    let gpu = StandIn::new("nvml-mixed", "gpu A100 10 250000\ngpu Ancient - -\n");
    let mut s = gpu.open(&["nvml"]).unwrap();
    let names: Vec<&str> = s.domains().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["nvml/0"]);
    assert!(s
        .warnings()
        .iter()
        .any(|w| w == "nvml/1 (Ancient): reports neither total energy nor power; skipped"));
    s.start().unwrap();
    let r = s.finish().unwrap();
    assert_eq!(r.rows.len(), 1);
    assert!(r.warnings.iter().any(|w| w.contains("nvml/1 (Ancient)")));
    // Asking for the unsupported one alone is an error naming what is there.
    let e = gpu.open(&["nvml/1"]).unwrap_err();
    assert!(
        e.to_string()
            .contains("nvml/1: not measured on this machine (available: nvml/0)"),
        "{e}"
    );
}

#[test]
fn nvml_zero_gpus_missing_library_and_unloaded_driver() {
    let none = StandIn::new("nvml-zero", "# no GPUs\n");
    let e = none.open(&["nvml"]).unwrap_err();
    assert_eq!(e.exit_code(), 69);
    assert_eq!(
        e.to_string(),
        "no energy source available: nvml: no NVIDIA GPU found (the driver reports 0 devices)"
    );
    let unloaded = StandIn::new("nvml-unloaded", "init 9\ngpu A100 1 1\n");
    let e = unloaded.open(&["nvml"]).unwrap_err();
    assert!(
        e.to_string()
            .contains("nvml: the NVIDIA driver is not loaded"),
        "{e}"
    );
    let e = EnergySession::open(
        &[sel("nvml")],
        &Sysroot::default(),
        Some(Path::new("/nonexistent/libnvidia-ml.so.1")),
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "no energy source available: nvml: cannot load /nonexistent/libnvidia-ml.so.1"
        ),
        "{e}"
    );
}

#[test]
fn energy_mixes_rapl_and_nvml() {
    let t = powercap_tree("energy-both");
    let gpu = StandIn::new("nvml-both", "gpu A100 0 100000\n");
    let mut s = EnergySession::open(&[sel("energy")], &t.sysroot(), Some(&gpu.lib), None).unwrap();
    s.start().unwrap();
    t.set_energy("intel-rapl:0", 6_000_000);
    gpu.set("gpu A100 4000 100000\n");
    let r = s.finish().unwrap();
    assert_eq!(joules(&r, "rapl/pkg:0"), 1.0);
    assert_eq!(joules(&r, "nvml/0"), 4.0);
    assert_eq!(r.rows.last().unwrap().source, "nvml");
}

#[test]
fn host_message_is_printed_for_review() {
    // Shows the host's one-line answer in the test log (`--nocapture`); asserts only its shape.
    if let Err(e) = EnergySession::open(&[sel("energy")], &Sysroot::default(), None, None) {
        eprintln!("host: {e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("no energy source available: rapl: "),
            "{msg}"
        );
        assert!(msg.contains("; nvml: ") && !msg.contains('\n'), "{msg}");
    }
}

/// A fake `power` PMU whose energy-pkg is really the kernel's `msr/tsc/` counter, so that the
/// perf backend opens and reads a live system-wide counter (pid −1, no exclude bits).
fn tsc_as_power_pmu(t: &FakeTree) -> Option<()> {
    let ty = std::fs::read_to_string("/sys/bus/event_source/devices/msr/type").ok()?;
    t.perf_pmu(
        "power",
        ty.trim().parse().ok()?,
        "0",
        &[("energy-pkg", "event=0x00", "1e-9", "Joules")],
    );
    Some(())
}

#[test]
fn perf_backend_reads_a_live_counter() {
    let t = FakeTree::at(scratch("energy-perf-live"));
    t.cpus(&[(0, 0, 0)]);
    require!(
        tsc_as_power_pmu(&t).is_some(),
        "the msr PMU (msr/tsc/) is not available"
    );
    let mut s =
        match EnergySession::open(&[sel("rapl")], &t.sysroot(), None, Some(RaplSource::Perf)) {
            Ok(s) => s,
            Err(e) => {
                require!(false, "cannot open msr/tsc/ system-wide: {e}");
                unreachable!()
            }
        };
    // A 64-bit count takes weeks to wrap even at a kilowatt: polled at the longest period.
    assert_eq!(s.poll_period(), Some(std::time::Duration::from_secs(60)));
    let r = measure(&mut s, "true");
    let row = &r.rows[0];
    assert_eq!((row.name.as_str(), row.source), ("rapl/pkg:0", "perf"));
    // The TSC advanced while the command ran: a positive "energy" at 1 ns per tick.
    assert!(row.joules > 0.0, "{row:?}");
}
