//! RAPL through the model-specific registers: pread(2) of /dev/cpu/N/msr at the register
//! address, on one CPU per package (and, for AMD's per-core counter, one CPU per core).
//!
//! The energy unit is 2^-ESU joules, ESU being bits 12:8 of the unit register (Intel 0x606,
//! AMD 0xC0010299). Only bits 31:0 of an energy register count, so differences are taken
//! modulo 2^32. Per-model quirks follow the kernel: DRAM counts in fixed 2^-16 J units on
//! Haswell-EP, Broadwell-EP/D, Skylake-SP, Ice Lake-SP/D, Knights Landing/Mill and Sapphire
//! Rapids; psys counts in 1 J units on Sapphire Rapids.
//!
//! In a fake tree (`--sysroot`), /dev/cpu/N/msr is a regular, sparse file rather than the
//! character device; since AMD's registers are adjacent (0xC0010299, …29A, …29B) and each holds
//! 8 bytes, such a file keeps register R at byte offset 8 × R (see [`crate::energy::fake`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::{topology, Cpu};
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

    /// True on the server models whose DRAM domain counts in fixed 2^-16 J units.
    pub fn dram_fixed_unit(&self) -> bool {
        self.is_intel()
            && self.family == 6
            && matches!(
                self.model,
                0x3F // Haswell-EP
                | 0x4F // Broadwell-EP
                | 0x56 // Broadwell-D
                | 0x55 // Skylake-SP (and Cascade/Cooper Lake)
                | 0x6A // Ice Lake-SP
                | 0x6C // Ice Lake-D
                | 0x57 // Knights Landing
                | 0x85 // Knights Mill
                | 0x8F // Sapphire Rapids
                | 0xCF // Emerald Rapids
            )
    }

    /// True on the models whose psys domain counts in 1 J units.
    pub fn psys_joule_unit(&self) -> bool {
        self.is_intel() && self.family == 6 && matches!(self.model, 0x8F | 0xCF)
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
}

impl MsrSource {
    /// Opens the MSR files of one CPU per package and finds the energy registers that count.
    /// The error starts with `msr:` and says what is missing.
    pub fn open(root: &Sysroot) -> Result<Self, String> {
        let topo = topology(root);
        let first_cpu = topo.first().map_or(0, |c| c.cpu);
        let mut packages: BTreeMap<u32, Vec<Cpu>> = BTreeMap::new();
        for c in &topo {
            packages.entry(c.package).or_default().push(*c);
        }
        if packages.is_empty() {
            packages.insert(
                0,
                vec![Cpu {
                    cpu: first_cpu,
                    package: 0,
                    core: 0,
                }],
            );
        }
        let mut src = MsrSource {
            domains: Vec::new(),
            channels: Vec::new(),
            files: Vec::new(),
            regs: Vec::new(),
        };
        let open = |cpu: u32, files: &mut Vec<MsrFile>| -> Result<usize, String> {
            let path = root.path(format!("/dev/cpu/{cpu}/msr"));
            let f = MsrFile::open(&path).map_err(|e| open_error(&path, &e))?;
            files.push(f);
            Ok(files.len() - 1)
        };
        // The device first: its absence is the usual reason and the one with a fix.
        let lead0 = packages.values().next().map_or(first_cpu, |c| c[0].cpu);
        let path0 = root.path(format!("/dev/cpu/{lead0}/msr"));
        MsrFile::open(&path0).map_err(|e| open_error(&path0, &e))?;
        let cpuinfo = root.path("/proc/cpuinfo");
        let id = std::fs::read_to_string(&cpuinfo)
            .ok()
            .and_then(|s| CpuId::parse(&s))
            .ok_or_else(|| format!("msr: cannot tell the CPU model from {}", cpuinfo.display()))?;
        if !id.is_intel() && !id.is_amd() {
            return Err(format!("msr: {} CPUs have no RAPL registers", id.vendor));
        }
        for (&package, cpus) in &packages {
            let lead = open(cpus[0].cpu, &mut src.files)?;
            let unit_reg = if id.is_intel() {
                INTEL_POWER_UNIT
            } else {
                AMD_POWER_UNIT
            };
            let units = read_msr(&src.files[lead], unit_reg).map_err(|e| {
                format!(
                    "msr: CPU {} has no RAPL unit register {unit_reg:#x} ({e})",
                    cpus[0].cpu
                )
            })?;
            let unit = energy_unit(units);
            let counts =
                |f: &MsrFile, reg: u64| read_msr(f, reg).is_ok_and(|v| v & 0xFFFF_FFFF != 0);
            let add = |src: &mut MsrSource, kind: DomainKind, file: usize, reg: u64, unit: f64| {
                let domain = Domain::rapl(kind, package);
                let di = match src.domains.iter().position(|d| *d == domain) {
                    Some(i) => i,
                    None => {
                        src.domains.push(domain);
                        src.domains.len() - 1
                    }
                };
                src.channels.push(Channel {
                    domain: di,
                    meter: Meter::Counter {
                        wrap: Wrap::Bits(32),
                        joules_per_unit: unit,
                    },
                });
                src.regs.push((file, reg));
            };
            if id.is_intel() {
                let dram_unit = if id.dram_fixed_unit() {
                    2f64.powi(-16)
                } else {
                    unit
                };
                let psys_unit = if id.psys_joule_unit() { 1.0 } else { unit };
                for (kind, reg, u) in [
                    (DomainKind::Package, INTEL_PKG_ENERGY, unit),
                    (DomainKind::Cores, INTEL_PP0_ENERGY, unit),
                    (DomainKind::Uncore, INTEL_PP1_ENERGY, unit),
                    (DomainKind::Dram, INTEL_DRAM_ENERGY, dram_unit),
                    (DomainKind::Psys, INTEL_PSYS_ENERGY, psys_unit),
                ] {
                    if counts(&src.files[lead], reg) {
                        add(&mut src, kind, lead, reg, u);
                    }
                }
            } else {
                if counts(&src.files[lead], AMD_PKG_ENERGY) {
                    add(&mut src, DomainKind::Package, lead, AMD_PKG_ENERGY, unit);
                }
                // The core counter is per physical core: one CPU per core, summed per package.
                let mut seen = Vec::new();
                for c in cpus {
                    if seen.contains(&c.core) {
                        continue;
                    }
                    seen.push(c.core);
                    let fi = if c.cpu == cpus[0].cpu {
                        lead
                    } else {
                        match open(c.cpu, &mut src.files) {
                            Ok(i) => i,
                            Err(_) => continue,
                        }
                    };
                    if counts(&src.files[fi], AMD_CORE_ENERGY) {
                        add(&mut src, DomainKind::Cores, fi, AMD_CORE_ENERGY, unit);
                    }
                }
            }
        }
        if src.domains.is_empty() {
            return Err("msr: no RAPL energy register counts on this CPU".into());
        }
        // Domains in (package, kind) order; channels keep pointing at the right one.
        let mut order: Vec<usize> = (0..src.domains.len()).collect();
        order.sort_by_key(|&i| (src.domains[i].index, src.domains[i].kind));
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
        for (slot, &(file, reg)) in out.iter_mut().zip(&self.regs) {
            *slot = read_msr(&self.files[file], reg).ok();
        }
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
    fn cpuinfo_parsing_and_quirks() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n\
                    model name\t: Intel(R) Xeon(R)\n\nprocessor\t: 1\n";
        let id = CpuId::parse(text).unwrap();
        assert_eq!(id.model, 0x55);
        assert!(id.dram_fixed_unit() && !id.psys_joule_unit());
        let spr = CpuId {
            vendor: "GenuineIntel".into(),
            family: 6,
            model: 0x8F,
        };
        assert!(spr.dram_fixed_unit() && spr.psys_joule_unit());
        let client = CpuId {
            model: 0x8C,
            ..spr.clone()
        };
        assert!(!client.dram_fixed_unit() && !client.psys_joule_unit());
        let amd = CpuId {
            vendor: "AuthenticAMD".into(),
            family: 0x19,
            model: 0x55,
        };
        assert!(!amd.dram_fixed_unit());
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
