//! RAPL through the model-specific registers: pread(2) of /dev/cpu/N/msr at the register
//! address, on one CPU per package (and, for AMD's per-core counter, one CPU per core).
//!
//! The energy unit is 2^-ESU joules, ESU being bits 12:8 of the unit register (Intel 0x606,
//! AMD 0xC0010299). Only bits 31:0 of an energy register count, so differences are taken
//! modulo 2^32. Per-model unit quirks (fixed DRAM units on Haswell-EP and later servers up to
//! Ice Lake-SP, 1 J psys units on Sapphire/Emerald/Granite Rapids, the Silvermont multiplier)
//! are the pure table in [`super::models`].
//!
//! In a fake tree (`--sysroot`), /dev/cpu/N/msr is a regular, sparse file rather than the
//! character device; since AMD's registers are adjacent (0xC0010299, …29A, …29B) and each holds
//! 8 bytes, such a file keeps register R at byte offset 8 × R (see [`crate::energy::fake`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::models::{self, Units, Vendor};
use super::{multi_die, topology, Cpu};
use crate::energy::{Channel, Domain, DomainKind, Meter, Source, Wrap};
use crate::sysroot::Sysroot;

/// Intel MSR_RAPL_POWER_UNIT.
pub const INTEL_POWER_UNIT: u64 = 0x606;
/// Intel MSR_PKG_ENERGY_STATUS.
pub const INTEL_PKG_ENERGY: u64 = 0x611;
/// Intel MSR_PP0_ENERGY_STATUS (cores).
pub const INTEL_PP0_ENERGY: u64 = 0x639;
/// Intel MSR_PP1_ENERGY_STATUS (uncore / graphics).
pub const INTEL_PP1_ENERGY: u64 = 0x641;
/// Intel MSR_DRAM_ENERGY_STATUS (0x618 is the DRAM power limit, not energy).
pub const INTEL_DRAM_ENERGY: u64 = 0x619;
/// Intel MSR_PLATFORM_ENERGY_STATUS (psys).
pub const INTEL_PSYS_ENERGY: u64 = 0x64D;
/// AMD MSR_AMD_RAPL_POWER_UNIT.
pub const AMD_POWER_UNIT: u64 = 0xC001_0299;
/// AMD MSR_AMD_CORE_ENERGY_STATUS (one per core).
pub const AMD_CORE_ENERGY: u64 = 0xC001_029A;
/// AMD MSR_AMD_PKG_ENERGY_STATUS.
pub const AMD_PKG_ENERGY: u64 = 0xC001_029B;

/// CPU vendor, family and model from /proc/cpuinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuId {
    /// `vendor_id`, e.g. `GenuineIntel`.
    pub vendor: String,
    /// `cpu family`.
    pub family: u32,
    /// `model`.
    pub model: u32,
}

impl CpuId {
    /// Parses the first processor of a /proc/cpuinfo text.
    pub fn parse(cpuinfo: &str) -> Option<CpuId> {
        let block = cpuinfo.split("\n\n").next()?;
        let field = |name: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        Some(CpuId {
            vendor: field("vendor_id")?,
            family: field("cpu family")?.parse().ok()?,
            model: field("model")?.parse().ok()?,
        })
    }

    fn is_intel(&self) -> bool {
        self.vendor == "GenuineIntel"
    }

    fn is_amd(&self) -> bool {
        self.vendor == "AuthenticAMD" || self.vendor == "HygonGenuine"
    }

    /// The vendor, if it has RAPL registers.
    pub fn rapl_vendor(&self) -> Option<Vendor> {
        if self.is_intel() {
            Some(Vendor::Intel)
        } else if self.is_amd() {
            Some(Vendor::Amd)
        } else {
            None
        }
    }

    /// The joules per count of every domain, given the power-unit register.
    pub fn units(&self, unit_register: u64) -> Option<Units> {
        Some(models::units(
            self.rapl_vendor()?,
            self.family,
            self.model,
            unit_register,
        ))
    }
}

/// Joules per unit from a power-unit register value: 2^-ESU, ESU = bits 12:8.
pub fn energy_unit(unit_register: u64) -> f64 {
    let esu = ((unit_register >> 8) & 0x1F) as i32;
    2f64.powi(-esu)
}

fn open_error(path: &std::path::Path, err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => format!(
            "msr: {} absent (modprobe msr, needs CAP_SYS_RAWIO)",
            path.display()
        ),
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "msr: {}: permission denied (needs read access and CAP_SYS_RAWIO: run as root)",
            path.display()
        ),
        _ => format!("msr: {}: {err}", path.display()),
    }
}

/// An open MSR file: the device (register R at offset R) or a fake tree's regular file
/// (register R at offset 8 × R).
#[derive(Debug)]
struct MsrFile {
    file: File,
    stride: u64,
}

impl MsrFile {
    fn open(path: &std::path::Path) -> io::Result<MsrFile> {
        let file = File::open(path)?;
        let stride = if file.metadata()?.file_type().is_file() {
            8
        } else {
            1
        };
        Ok(MsrFile { file, stride })
    }
}

fn read_msr(f: &MsrFile, reg: u64) -> io::Result<u64> {
    let mut b = [0u8; 8];
    let offset = reg
        .checked_mul(f.stride)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let n = f.file.read_at(&mut b, offset)?;
    if n != 8 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short MSR read",
        ));
    }
    Ok(u64::from_ne_bytes(b))
}

/// RAPL energy registers of every package.
#[derive(Debug)]
pub struct MsrSource {
    domains: Vec<Domain>,
    channels: Vec<Channel>,
    files: Vec<MsrFile>,
    /// Per channel: (index into files, register).
    regs: Vec<(usize, u64)>,
    /// Per channel: why the last reading failed.
    errors: Vec<Option<String>>,
    /// Domains left out while opening, and why.
    warnings: Vec<String>,
}

/// The CPUs that share one set of RAPL registers: a package, or one die of a multi-die Intel
/// package (the kernel's perf PMU reads Intel RAPL per die, AMD per package).
#[derive(Debug)]
struct Group {
    package: u32,
    die: Option<u32>,
    cpus: Vec<Cpu>,
}

fn groups(topo: &[Cpu], vendor: Vendor) -> Vec<Group> {
    let mut map: BTreeMap<(u32, Option<u32>), Vec<Cpu>> = BTreeMap::new();
    for c in topo {
        let die = (vendor == Vendor::Intel && multi_die(topo, c.package)).then_some(c.die);
        map.entry((c.package, die)).or_default().push(*c);
    }
    if map.is_empty() {
        let cpu = Cpu {
            cpu: 0,
            package: 0,
            die: 0,
            core: 0,
        };
        map.insert((0, None), vec![cpu]);
    }
    map.into_iter()
        .map(|((package, die), cpus)| Group { package, die, cpus })
        .collect()
}

impl MsrSource {
    /// Opens the MSR files of one CPU per package (per die on a multi-die Intel package) and
    /// finds the energy registers that count. The error starts with `msr:` and says what is
    /// missing.
    pub fn open(root: &Sysroot) -> Result<Self, String> {
        let topo = topology(root);
        // The device first: its absence is the usual reason and the one with a fix.
        let lead0 = topo.first().map_or(0, |c| c.cpu);
        let path0 = root.path(format!("/dev/cpu/{lead0}/msr"));
        MsrFile::open(&path0).map_err(|e| open_error(&path0, &e))?;
        let cpuinfo = root.path("/proc/cpuinfo");
        let id = std::fs::read_to_string(&cpuinfo)
            .ok()
            .and_then(|s| CpuId::parse(&s))
            .ok_or_else(|| format!("msr: cannot tell the CPU model from {}", cpuinfo.display()))?;
        let vendor = id
            .rapl_vendor()
            .ok_or_else(|| format!("msr: {} CPUs have no RAPL registers", id.vendor))?;
        let mut src = MsrSource {
            domains: Vec::new(),
            channels: Vec::new(),
            files: Vec::new(),
            regs: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        for g in groups(&topo, vendor) {
            src.add_group(root, &id, vendor, &g)?;
        }
        if src.domains.is_empty() {
            return Err("msr: no RAPL energy register counts on this CPU".into());
        }
        // Domains in (package, die, kind) order; channels keep pointing at the right one.
        let mut order: Vec<usize> = (0..src.domains.len()).collect();
        order.sort_by_key(|&i| {
            let d = &src.domains[i];
            (d.index, d.die, d.kind)
        });
        let mut remap = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old] = new;
        }
        src.domains = order.iter().map(|&i| src.domains[i].clone()).collect();
        for ch in &mut src.channels {
            ch.domain = remap[ch.domain];
        }
        Ok(src)
    }

    fn open_file(&mut self, root: &Sysroot, cpu: u32) -> Result<usize, String> {
        let path = root.path(format!("/dev/cpu/{cpu}/msr"));
        let f = MsrFile::open(&path).map_err(|e| open_error(&path, &e))?;
        self.files.push(f);
        Ok(self.files.len() - 1)
    }

    fn add(&mut self, domain: Domain, file: usize, reg: u64, unit: f64) {
        let di = match self.domains.iter().position(|d| *d == domain) {
            Some(i) => i,
            None => {
                self.domains.push(domain);
                self.domains.len() - 1
            }
        };
        self.channels.push(Channel {
            domain: di,
            meter: Meter::Counter {
                wrap: Wrap::Bits(32),
                joules_per_unit: unit,
            },
        });
        self.regs.push((file, reg));
        self.errors.push(None);
    }

    /// Adds the registers of one package or die, read on its lead CPU.
    fn add_group(
        &mut self,
        root: &Sysroot,
        id: &CpuId,
        vendor: Vendor,
        g: &Group,
    ) -> Result<(), String> {
        let lead_cpu = g.cpus[0].cpu;
        let lead = self.open_file(root, lead_cpu)?;
        let unit_reg = match vendor {
            Vendor::Intel => INTEL_POWER_UNIT,
            Vendor::Amd => AMD_POWER_UNIT,
        };
        let raw = read_msr(&self.files[lead], unit_reg).map_err(|e| {
            format!("msr: CPU {lead_cpu} has no RAPL unit register {unit_reg:#x} ({e})")
        })?;
        let units = id
            .units(raw)
            .ok_or_else(|| format!("msr: {} CPUs have no RAPL registers", id.vendor))?;
        let counts = |f: &MsrFile, reg: u64| read_msr(f, reg).is_ok_and(|v| v & 0xFFFF_FFFF != 0);
        let domain = |kind| Domain::rapl_at(kind, g.package, g.die);
        if vendor == Vendor::Intel {
            for (kind, reg) in [
                (DomainKind::Package, INTEL_PKG_ENERGY),
                (DomainKind::Cores, INTEL_PP0_ENERGY),
                (DomainKind::Uncore, INTEL_PP1_ENERGY),
                (DomainKind::Dram, INTEL_DRAM_ENERGY),
                (DomainKind::Psys, INTEL_PSYS_ENERGY),
            ] {
                if counts(&self.files[lead], reg) {
                    self.add(domain(kind), lead, reg, units.of(kind));
                }
            }
            return Ok(());
        }
        if counts(&self.files[lead], AMD_PKG_ENERGY) {
            self.add(domain(DomainKind::Package), lead, AMD_PKG_ENERGY, units.pkg);
        }
        // The core counter is per physical core: one CPU per core, summed per package. Every
        // core or none: a sum over some cores would be silently low.
        if !counts(&self.files[lead], AMD_CORE_ENERGY) {
            return Ok(());
        }
        let mut seen = Vec::new();
        let mut files = Vec::new();
        for c in &g.cpus {
            if seen.contains(&c.core) {
                continue;
            }
            seen.push(c.core);
            let fi = if c.cpu == lead_cpu {
                Ok(lead)
            } else {
                self.open_file(root, c.cpu)
            };
            match fi.and_then(|fi| {
                read_msr(&self.files[fi], AMD_CORE_ENERGY)
                    .map(|_| fi)
                    .map_err(|e| format!("msr: CPU {}: register {AMD_CORE_ENERGY:#x}: {e}", c.cpu))
            }) {
                Ok(fi) => files.push(fi),
                Err(why) => {
                    let d = domain(DomainKind::Cores);
                    self.warnings.push(format!("{d}: left out: {why}"));
                    return Ok(());
                }
            }
        }
        for fi in files {
            self.add(domain(DomainKind::Cores), fi, AMD_CORE_ENERGY, units.cores);
        }
        Ok(())
    }
}

impl Source for MsrSource {
    fn backend(&self) -> &'static str {
        "msr"
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    fn channels(&self) -> &[Channel] {
        &self.channels
    }

    fn read(&mut self, out: &mut [Option<u64>]) {
        for (i, (slot, &(file, reg))) in out.iter_mut().zip(&self.regs).enumerate() {
            *slot = match read_msr(&self.files[file], reg) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.errors[i] = Some(format!("MSR {reg:#x}: {e}"));
                    None
                }
            };
        }
    }

    fn failure(&self, channel: usize) -> Option<String> {
        self.errors.get(channel).cloned().flatten()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::fake::FakeTree;
    use crate::energy::Accumulator;

    #[test]
    fn unit_register_fixtures() {
        assert_eq!(energy_unit(0x000A_0E03), 2f64.powi(-14));
        assert!((energy_unit(0x000A_0E03) * 1e6 - 61.035_156_25).abs() < 1e-9);
        assert_eq!(energy_unit(0x000A_1003), 2f64.powi(-16));
        assert!((energy_unit(0x000A_1003) * 1e6 - 15.258_789_062_5).abs() < 1e-9);
    }

    #[test]
    fn cpuinfo_parsing_and_units() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\
                    model name\t: Intel(R) Xeon(R)\n\nprocessor\t: 1\n";
        let id = CpuId::parse(text).unwrap();
        assert_eq!(id.model, 0x55);
        assert_eq!(id.rapl_vendor(), Some(Vendor::Intel));
        let u = id.units(0x000A_0E03).unwrap();
        assert_eq!((u.pkg, u.dram), (2f64.powi(-14), 2f64.powi(-16)));
        let amd = CpuId {
            vendor: "HygonGenuine".into(),
            family: 0x18,
            model: 0x00,
        };
        assert_eq!(amd.rapl_vendor(), Some(Vendor::Amd));
        let via = CpuId {
            vendor: "CentaurHauls".into(),
            ..amd
        };
        assert_eq!(via.units(0x0A_0E03), None);
        assert_eq!(CpuId::parse("processor: 0\n"), None);
    }

    #[test]
    fn intel_server_two_packages_with_dram_quirk() {
        let t = FakeTree::new("msr-skx");
        t.cpus(&[(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]);
        t.cpuinfo("GenuineIntel", 6, 0x55);
        for cpu in [0, 2] {
            t.msr(cpu, INTEL_POWER_UNIT, 0x000A_0E03);
            t.msr(cpu, INTEL_PKG_ENERGY, 0xFFFF_FF00);
            t.msr(cpu, INTEL_PP0_ENERGY, 10);
            t.msr(cpu, INTEL_DRAM_ENERGY, 0x10);
            // The DRAM power limit next door: never read as energy.
            t.msr(cpu, 0x618, 0xDEAD);
        }
        let src = MsrSource::open(&t.sysroot()).unwrap();
        let names: Vec<&str> = src.domains().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rapl/pkg:0",
                "rapl/cores:0",
                "rapl/dram:0",
                "rapl/pkg:1",
                "rapl/cores:1",
                "rapl/dram:1"
            ]
        );
        let mut acc = Accumulator::new(Box::new(src));
        acc.read();
        // Package 0 wraps across 2^32: 0xFFFFFF00 → 0x100 is 0x200 units of 2^-14 J.
        t.msr(0, INTEL_PKG_ENERGY, 0x100);
        // Package 1 does not move: a zero delta, not a wrap.
        // DRAM 0 advances 0x10000 units of the fixed 2^-16 J: exactly 1 J.
        t.msr(0, INTEL_DRAM_ENERGY, 0x10 + 0x1_0000);
        // Reserved high bits set on cores 1 are ignored.
        t.msr(2, INTEL_PP0_ENERGY, 0xFFFF_0000_0000_0000 | 10 | 0x4000);
        let r = acc.read();
        assert_eq!(r.joules[0], 512.0 / 16384.0);
        assert_eq!(r.joules[1], 0.0);
        assert_eq!(r.joules[2], 1.0);
        assert_eq!(r.joules[3], 0.0);
        assert_eq!(r.joules[4], 1.0);
        assert_eq!(r.joules[5], 0.0);
    }

    #[test]
    fn intel_client_psys_and_uncore() {
        let t = FakeTree::new("msr-client");
        t.cpus(&[(0, 0, 0), (1, 0, 1)]);
        t.cpuinfo("GenuineIntel", 6, 0x8C);
        t.msr(0, INTEL_POWER_UNIT, 0x000A_0E03);
        t.msr(0, INTEL_PKG_ENERGY, 1);
        t.msr(0, INTEL_PP1_ENERGY, 1);
        t.msr(0, INTEL_DRAM_ENERGY, 100);
        t.msr(0, INTEL_PSYS_ENERGY, 1);
        let src = MsrSource::open(&t.sysroot()).unwrap();
        let kinds: Vec<DomainKind> = src.domains().iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            [
                DomainKind::Package,
                DomainKind::Uncore,
                DomainKind::Dram,
                DomainKind::Psys
            ]
        );
        // Client parts use the 0x606 unit for DRAM.
        let mut acc = Accumulator::new(Box::new(src));
        acc.read();
        t.msr(0, INTEL_DRAM_ENERGY, 100 + 16384);
        t.msr(0, INTEL_PSYS_ENERGY, 3);
        let r = acc.read();
        assert_eq!(r.joules[2], 1.0);
        assert_eq!(r.joules[3], 2.0 / 16384.0);
    }

    #[test]
    fn sapphire_rapids_psys_counts_joules() {
        let t = FakeTree::new("msr-spr");
        t.cpus(&[(0, 0, 0)]);
        t.cpuinfo("GenuineIntel", 6, 0x8F);
        t.msr(0, INTEL_POWER_UNIT, 0x000A_0E03);
        t.msr(0, INTEL_PKG_ENERGY, 5);
        t.msr(0, INTEL_PSYS_ENERGY, 0xFFFF_FFFF);
        let mut acc = Accumulator::new(Box::new(MsrSource::open(&t.sysroot()).unwrap()));
        acc.read();
        t.msr(0, INTEL_PSYS_ENERGY, 41);
        let r = acc.read();
        assert_eq!(r.joules[1], 42.0);
    }

    #[test]
    fn sapphire_rapids_dram_uses_the_standard_unit() {
        for model in [0x8F, 0xCF] {
            let t = FakeTree::new("msr-spr-dram");
            t.cpus(&[(0, 0, 0)]);
            t.cpuinfo("GenuineIntel", 6, model);
            t.msr(0, INTEL_POWER_UNIT, 0x000A_0E03);
            t.msr(0, INTEL_PKG_ENERGY, 5);
            t.msr(0, INTEL_DRAM_ENERGY, 7);
            let mut acc = Accumulator::new(Box::new(MsrSource::open(&t.sysroot()).unwrap()));
            acc.read();
            // 3 × 16384 counts of 2^-14 J: exactly 3 J (the Haswell-EP unit would give 0.75 J).
            t.msr(0, INTEL_DRAM_ENERGY, 7 + 3 * 16384);
            let r = acc.read();
            assert_eq!(r.joules[1], 3.0, "model {model:#x}");
        }
    }

    #[test]
    fn multi_die_package_reads_one_cpu_per_die() {
        let t = FakeTree::new("msr-dies");
        // Cascade Lake-AP style: package 0 with dies 0 (CPUs 0, 1) and 1 (CPUs 2, 3).
        t.cpus_with_dies(&[(0, 0, 0, 0), (1, 0, 0, 1), (2, 0, 1, 0), (3, 0, 1, 1)]);
        t.cpuinfo("GenuineIntel", 6, 0x55);
        for cpu in [0, 2] {
            t.msr(cpu, INTEL_POWER_UNIT, 0x000A_0E03);
            t.msr(cpu, INTEL_PKG_ENERGY, 100);
            t.msr(cpu, INTEL_DRAM_ENERGY, 100);
        }
        // The second CPU of a die holds a different value: never read.
        t.msr(1, INTEL_PKG_ENERGY, 999);
        let src = MsrSource::open(&t.sysroot()).unwrap();
        let names: Vec<&str> = src.domains().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rapl/pkg:0.die0",
                "rapl/dram:0.die0",
                "rapl/pkg:0.die1",
                "rapl/dram:0.die1"
            ]
        );
        let mut acc = Accumulator::new(Box::new(src));
        acc.read();
        t.msr(0, INTEL_PKG_ENERGY, 100 + 16384); // die 0: 1 J
        t.msr(2, INTEL_PKG_ENERGY, 100 + 2 * 16384); // die 1: 2 J
        t.msr(1, INTEL_PKG_ENERGY, 5);
        let r = acc.read();
        assert_eq!((r.joules[0], r.joules[2]), (1.0, 2.0));
    }

    #[test]
    fn amd_package_and_per_core_energy() {
        let t = FakeTree::new("msr-amd");
        // Two cores with two threads each.
        t.cpus(&[(0, 0, 0), (1, 0, 1), (2, 0, 0), (3, 0, 1)]);
        t.cpuinfo("AuthenticAMD", 0x19, 0x01);
        t.msr(0, AMD_POWER_UNIT, 0x000A_1003);
        t.msr(0, AMD_PKG_ENERGY, 0xFFFF_FFFF);
        t.msr(0, AMD_CORE_ENERGY, 100);
        t.msr(1, AMD_CORE_ENERGY, 200);
        // The sibling thread's file exists but is never read.
        t.msr(2, AMD_CORE_ENERGY, 7);
        let src = MsrSource::open(&t.sysroot()).unwrap();
        assert_eq!(src.channels().len(), 3);
        let mut acc = Accumulator::new(Box::new(src));
        acc.read();
        t.msr(0, AMD_PKG_ENERGY, 0xFFFF);
        t.msr(0, AMD_CORE_ENERGY, 100 + 65536);
        t.msr(1, AMD_CORE_ENERGY, 200 + 65536);
        t.msr(2, AMD_CORE_ENERGY, 999_999);
        let r = acc.read();
        // 0xFFFFFFFF → 0xFFFF is 0x10000 units of 2^-16 J = 1 J.
        assert_eq!(r.joules[0], 1.0);
        assert_eq!(r.joules[1], 2.0);
    }

    #[test]
    fn amd_cores_all_or_none() {
        let t = FakeTree::new("msr-amd-partial");
        t.cpus(&[(0, 0, 0), (1, 0, 1)]);
        t.cpuinfo("AuthenticAMD", 0x19, 0x01);
        t.msr(0, AMD_POWER_UNIT, 0x000A_1003);
        t.msr(0, AMD_PKG_ENERGY, 5);
        t.msr(0, AMD_CORE_ENERGY, 100);
        // CPU 1 (core 1) has no MSR file: the cores domain is left out, with the reason.
        let src = MsrSource::open(&t.sysroot()).unwrap();
        assert_eq!(src.domains(), [Domain::rapl(DomainKind::Package, 0)]);
        let w = src.warnings();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("rapl/cores:0: left out: msr: ") && w[0].contains("/dev/cpu/1/msr"),
            "{w:?}"
        );
    }

    #[test]
    fn missing_device_files_say_how_to_fix() {
        let t = FakeTree::new("msr-none");
        t.cpus(&[(0, 0, 0)]);
        t.cpuinfo("GenuineIntel", 6, 0x55);
        let e = MsrSource::open(&t.sysroot()).unwrap_err();
        assert!(
            e.starts_with("msr: ") && e.contains("/dev/cpu/0/msr absent"),
            "{e}"
        );
        assert!(
            e.contains("modprobe msr") && e.contains("CAP_SYS_RAWIO"),
            "{e}"
        );
        let perm = open_error(
            std::path::Path::new("/dev/cpu/0/msr"),
            &io::Error::from_raw_os_error(libc::EPERM),
        );
        assert!(perm.contains("CAP_SYS_RAWIO"), "{perm}");
        // A unit register that is missing (short read past the end of the file).
        t.msr(0, 0x10, 0);
        let e = MsrSource::open(&t.sysroot()).unwrap_err();
        assert!(e.contains("no RAPL unit register 0x606"), "{e}");
    }
}
