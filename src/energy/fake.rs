//! Fake kernel trees for energy discovery: powercap zones, MSR device files, a perf `power`
//! PMU, CPU topology and /proc/cpuinfo, laid out under a directory that serves as `--sysroot`.
//!
//! Tests, benchmarks and self-tests use them to drive every backend on machines without the
//! hardware. MSR files are sparse regular files: register R's 8 bytes sit at byte offset 8 × R
//! (the device itself takes R as the offset, but AMD's RAPL registers are adjacent, so a byte
//! file needs the stride; the MSR backend applies it to regular files only).

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sysroot::Sysroot;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fake tree; removed on drop unless created with [`FakeTree::at`].
#[derive(Debug)]
pub struct FakeTree {
    root: PathBuf,
    owned: bool,
}

impl FakeTree {
    /// A fresh tree in the system temporary directory, removed on drop.
    pub fn new(name: &str) -> Self {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let root =
            std::env::temp_dir().join(format!("ruperf-fake-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).expect("create fake tree");
        FakeTree { root, owned: true }
    }

    /// A tree at `dir` (created if missing), left in place on drop.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        let root = dir.into();
        fs::create_dir_all(&root).expect("create fake tree");
        FakeTree { root, owned: false }
    }

    /// The tree's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A [`Sysroot`] for the tree.
    pub fn sysroot(&self) -> Sysroot {
        Sysroot::new(&self.root)
    }

    /// The path of an absolute kernel path inside the tree.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.sysroot().path(abs)
    }

    /// Writes a file (creating parent directories).
    pub fn write(&self, abs: &str, contents: &str) {
        let p = self.path(abs);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, contents).expect("write fake file");
    }

    /// Online CPUs as `(cpu, physical_package_id, core_id)`.
    pub fn cpus(&self, cpus: &[(u32, u32, u32)]) {
        let list: Vec<String> = cpus.iter().map(|c| c.0.to_string()).collect();
        self.write("/sys/devices/system/cpu/online", &(list.join(",") + "\n"));
        for &(cpu, pkg, core) in cpus {
            let t = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
            self.write(&format!("{t}/physical_package_id"), &format!("{pkg}\n"));
            self.write(&format!("{t}/core_id"), &format!("{core}\n"));
        }
    }

    /// Online CPUs as `(cpu, physical_package_id, die_id, core_id)`, for multi-die packages.
    pub fn cpus_with_dies(&self, cpus: &[(u32, u32, u32, u32)]) {
        let plain: Vec<(u32, u32, u32)> = cpus.iter().map(|c| (c.0, c.1, c.3)).collect();
        self.cpus(&plain);
        for &(cpu, _, die, _) in cpus {
            let t = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
            self.write(&format!("{t}/die_id"), &format!("{die}\n"));
        }
    }

    /// /proc/cpuinfo naming a vendor (`GenuineIntel`, `AuthenticAMD`), family and model.
    pub fn cpuinfo(&self, vendor: &str, family: u32, model: u32) {
        self.write(
            "/proc/cpuinfo",
            &format!(
                "processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n\
                 model name\t: Fake CPU\n\nprocessor\t: 1\nvendor_id\t: {vendor}\n\
                 cpu family\t: {family}\nmodel\t\t: {model}\n\n"
            ),
        );
    }

    /// A powercap zone directory `/sys/class/powercap/<zone>` (e.g. `intel-rapl:0:1`) with its
    /// `name`, `energy_uj` and `max_energy_range_uj`.
    pub fn powercap_zone(&self, zone: &str, name: &str, energy_uj: u64, max_uj: u64) {
        let d = format!("/sys/class/powercap/{zone}");
        self.write(&format!("{d}/name"), &format!("{name}\n"));
        self.write(&format!("{d}/max_energy_range_uj"), &format!("{max_uj}\n"));
        self.set_energy(zone, energy_uj);
    }

    /// The `energy_uj` file of a zone (for commands that rewrite it).
    pub fn energy_path(&self, zone: &str) -> PathBuf {
        self.path(&format!("/sys/class/powercap/{zone}/energy_uj"))
    }

    /// Rewrites a zone's `energy_uj` in place.
    pub fn set_energy(&self, zone: &str, energy_uj: u64) {
        self.write(
            &format!("/sys/class/powercap/{zone}/energy_uj"),
            &format!("{energy_uj}\n"),
        );
    }

    /// The MSR device file of a CPU.
    pub fn msr_path(&self, cpu: u32) -> PathBuf {
        self.path(&format!("/dev/cpu/{cpu}/msr"))
    }

    /// Stores `value` in register `reg` of CPU `cpu`'s MSR file (sparse, created if missing;
    /// the register sits at byte offset 8 × `reg`).
    pub fn msr(&self, cpu: u32, reg: u64, value: u64) {
        let p = self.msr_path(cpu);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .expect("open fake msr");
        f.write_all_at(&value.to_ne_bytes(), reg * 8)
            .expect("write fake msr");
    }

    /// A perf PMU directory `/sys/bus/event_source/devices/<pmu>` with `type`, `cpumask` and
    /// events `(name, "event=0x02", scale, unit)`.
    pub fn perf_pmu(&self, pmu: &str, ty: u32, cpumask: &str, events: &[(&str, &str, &str, &str)]) {
        let d = format!("/sys/bus/event_source/devices/{pmu}");
        self.write(&format!("{d}/type"), &format!("{ty}\n"));
        self.write(&format!("{d}/cpumask"), &format!("{cpumask}\n"));
        self.write(&format!("{d}/format/event"), "config:0-7\n");
        for (name, config, scale, unit) in events {
            self.write(&format!("{d}/events/{name}"), &format!("{config}\n"));
            self.write(&format!("{d}/events/{name}.scale"), &format!("{scale}\n"));
            self.write(&format!("{d}/events/{name}.unit"), &format!("{unit}\n"));
        }
    }
}

impl Drop for FakeTree {
    fn drop(&mut self) {
        if self.owned {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}
