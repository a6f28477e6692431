//! RAPL through powercap sysfs: /sys/class/powercap/intel-rapl:N (packages and psys) and
//! intel-rapl:N:M (core, uncore, dram), `energy_uj` in µJ, wrapping at `max_energy_range_uj`.
//!
//! The intel-rapl-mmio tree can repeat a package domain on recent Intel clients: a domain
//! already given by intel-rapl is not read twice.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::energy::{Channel, Domain, DomainKind, Meter, Source, Wrap};
use crate::sysroot::Sysroot;

const CLASS: &str = "/sys/class/powercap";

/// Open powercap zones.
#[derive(Debug)]
pub struct PowercapSource {
    domains: Vec<Domain>,
    channels: Vec<Channel>,
    files: Vec<File>,
    paths: Vec<std::path::PathBuf>,
    errors: Vec<Option<String>>,
    warnings: Vec<String>,
    /// The CPU is AMD's or Hygon's: the kernel's `core` zone reads one core's counter.
    amd: bool,
}

/// A zone directory name split into its tree and numbers: `intel-rapl:0:1` → ("intel-rapl", [0, 1]).
fn split_zone(dir: &str) -> Option<(&str, Vec<u32>)> {
    let (tree, nums) = dir.split_once(':')?;
    if tree != "intel-rapl" && tree != "intel-rapl-mmio" {
        return None;
    }
    let nums: Option<Vec<u32>> = nums.split(':').map(|n| n.parse().ok()).collect();
    let nums = nums?;
    (1..=2).contains(&nums.len()).then_some((tree, nums))
}

/// The kind and package of a top-level zone name: `package-1` → Package 1, `psys` → Psys.
/// Multi-die parts name zones `package-P-die-D`; the die is returned too, and the zone is
/// that die of package P (never package D, nor a package of its own).
fn parse_top_name(name: &str) -> Option<(DomainKind, u32, Option<u32>)> {
    if name == "psys" {
        return Some((DomainKind::Psys, 0, None));
    }
    let rest = name.strip_prefix("package-")?;
    match rest.split_once("-die-") {
        Some((p, d)) => Some((DomainKind::Package, p.parse().ok()?, Some(d.parse().ok()?))),
        None => Some((DomainKind::Package, rest.parse().ok()?, None)),
    }
}

fn parse_child_name(name: &str) -> Option<DomainKind> {
    match name {
        "core" => Some(DomainKind::Cores),
        "uncore" => Some(DomainKind::Uncore),
        "dram" => Some(DomainKind::Dram),
        _ => None,
    }
}

/// Reads a small decimal file through an open handle at offset 0 (sysfs re-renders on pread).
fn pread_u64(f: &File) -> io::Result<u64> {
    let mut buf = [0u8; 32];
    let n = f.read_at(&mut buf, 0)?;
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a decimal number"))
}

/// The reason text for a zone's `energy_uj` that cannot be opened or read.
pub fn energy_error(path: &Path, err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "{}: permission denied (energy_uj is readable only by root since Linux 5.10; \
             run as root or `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj`)",
            path.display()
        ),
        _ => format!("{}: {err}", path.display()),
    }
}

struct Zone {
    tree_rank: u8,
    kind: DomainKind,
    package: u32,
    die: Option<u32>,
    dir: String,
}

/// The zones named in `dirs` (zone directory names, each one `split_zone` accepts) that ruperf
/// reads: top-level zones (packages, dies, psys) first,
/// so that children (cores, uncore, dram) can find their package.
fn zones_of(root: &Sysroot, dirs: &[String]) -> Vec<Zone> {
    let read_name = |dir: &str| root.read_trimmed(format!("{CLASS}/{dir}/name")).ok();

    // Top-level zones first, so children can find their package.
    let mut zones: Vec<Zone> = Vec::new();
    for dir in dirs {
        let (tree, nums) = split_zone(dir).expect("filtered");
        if nums.len() != 1 {
            continue;
        }
        let Some((kind, package, die)) = read_name(dir).as_deref().and_then(parse_top_name) else {
            continue;
        };
        zones.push(Zone {
            tree_rank: u8::from(tree != "intel-rapl"),
            kind,
            package,
            die,
            dir: dir.clone(),
        });
    }
    let mut children = Vec::new();
    for dir in dirs {
        let (tree, nums) = split_zone(dir).expect("filtered");
        if nums.len() != 2 {
            continue;
        }
        let parent = format!("{tree}:{}", nums[0]);
        let Some(p) = zones.iter().find(|z| z.dir == parent) else {
            continue;
        };
        let Some(kind) = read_name(dir).as_deref().and_then(parse_child_name) else {
            continue;
        };
        children.push(Zone {
            tree_rank: p.tree_rank,
            kind,
            package: p.package,
            die: p.die,
            dir: dir.clone(),
        });
    }
    zones.extend(children);
    zones
}

impl PowercapSource {
    /// Discovers and opens every intel-rapl zone under `root`. The error starts with
    /// `powercap:` and says what is missing.
    pub fn open(root: &Sysroot) -> Result<Self, String> {
        let class = root.path(CLASS);
        let entries = match std::fs::read_dir(&class) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(format!(
                "powercap: {}/intel-rapl absent (load intel_rapl_msr: `modprobe intel_rapl_msr`)",
                class.display()
            ))
            }
            Err(e) => return Err(format!("powercap: {}: {e}", class.display())),
        };
        let mut dirs: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| split_zone(n).is_some())
            .collect();
        dirs.sort();
        let mut zones = zones_of(root, &dirs);
        if zones.is_empty() {
            return Err(format!(
                "powercap: {}/intel-rapl absent (load intel_rapl_msr: `modprobe intel_rapl_msr`)",
                class.display()
            ));
        }
        // intel-rapl before intel-rapl-mmio, so the MSR-backed tree wins duplicates.
        zones.sort_by_key(|z| (z.tree_rank, z.package, z.die, z.kind));

        let mut src = PowercapSource {
            domains: Vec::new(),
            channels: Vec::new(),
            files: Vec::new(),
            paths: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            amd: is_amd(root),
        };
        let mut first_error = None;
        // Packages with a die that cannot be read: their other dies are left out too.
        let mut broken = Vec::new();
        for z in zones {
            let domain = Domain::rapl_at(z.kind, z.package, z.die);
            if src.domains.contains(&domain) {
                continue;
            }
            match open_zone(root, &z.dir) {
                Ok((file, max)) => {
                    src.channels.push(Channel {
                        domain: src.domains.len(),
                        meter: Meter::Counter {
                            wrap: Wrap::powercap(max),
                            joules_per_unit: 1e-6,
                        },
                    });
                    src.domains.push(domain);
                    src.files.push(file);
                    src.paths
                        .push(root.path(format!("{CLASS}/{}/energy_uj", z.dir)));
                    src.errors.push(None);
                }
                Err(why) => {
                    src.warnings
                        .push(format!("powercap: {domain} left out: {why}"));
                    if domain.die.is_some() {
                        broken.push(domain.package_domain());
                    }
                    first_error.get_or_insert(why);
                }
            }
        }
        src.drop_dies_of(&broken);
        if src.domains.is_empty() {
            return Err(format!(
                "powercap: {}",
                first_error.unwrap_or_else(|| "no readable zone".into())
            ));
        }
        Ok(src)
    }
}

impl PowercapSource {
    /// Leaves out every die domain of the packages in `broken` (a package is all of its dies
    /// or none: the sum of some dies would be silently low), saying so per domain.
    fn drop_dies_of(&mut self, broken: &[Domain]) {
        let mut keep = Vec::new();
        for (i, d) in self.domains.iter().enumerate() {
            let gone = d.die.is_some() && broken.contains(&d.package_domain());
            if gone {
                self.warnings.push(format!(
                    "powercap: {d} left out: another die of {} cannot be read",
                    d.package_domain()
                ));
            } else {
                keep.push(i);
            }
        }
        keep_only(&mut self.domains, &keep);
        keep_only(&mut self.files, &keep);
        keep_only(&mut self.paths, &keep);
        keep_only(&mut self.errors, &keep);
        keep_only(&mut self.channels, &keep);
        for (i, ch) in self.channels.iter_mut().enumerate() {
            ch.domain = i;
        }
    }
}

/// Keeps the elements of `v` at the positions in `keep`.
fn keep_only<T>(v: &mut Vec<T>, keep: &[usize]) {
    let old = std::mem::take(v);
    *v = old
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, x)| x)
        .collect();
}

/// True when /proc/cpuinfo under `root` names an AMD or Hygon CPU.
fn is_amd(root: &Sysroot) -> bool {
    std::fs::read_to_string(root.path("/proc/cpuinfo"))
        .ok()
        .and_then(|s| super::msr::CpuId::parse(&s))
        .and_then(|id| id.rapl_vendor())
        == Some(super::models::Vendor::Amd)
}

fn open_zone(root: &Sysroot, dir: &str) -> Result<(File, u64), String> {
    let path = root.path(format!("{CLASS}/{dir}/energy_uj"));
    let file = File::open(&path).map_err(|e| energy_error(&path, &e))?;
    pread_u64(&file).map_err(|e| energy_error(&path, &e))?;
    let max_path = root.path(format!("{CLASS}/{dir}/max_energy_range_uj"));
    let max = std::fs::read_to_string(&max_path)
        .map_err(|e| format!("{}: {e}", max_path.display()))?
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("{}: not a number", max_path.display()))?;
    if max == 0 {
        return Err(format!("{}: zero range", max_path.display()));
    }
    Ok((file, max))
}

impl Source for PowercapSource {
    fn backend(&self) -> &'static str {
        "powercap"
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    fn channels(&self) -> &[Channel] {
        &self.channels
    }

    fn read(&mut self, out: &mut [Option<u64>]) {
        for (i, (slot, f)) in out.iter_mut().zip(&self.files).enumerate() {
            *slot = match pread_u64(f) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.errors[i] = Some(energy_error(&self.paths[i], &e));
                    None
                }
            };
        }
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn failure(&self, channel: usize) -> Option<String> {
        self.errors.get(channel).cloned().flatten()
    }

    fn domain_notes(&self, domain: usize) -> Vec<String> {
        match self.domains.get(domain) {
            Some(d) if self.amd && d.kind == DomainKind::Cores => vec![format!(
                "{d}: on AMD, powercap's core zone reads only the lead CPU's core counter (the kernel reads one core), not the sum of every core; --rapl-source msr sums every core"
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::fake::FakeTree;
    use crate::energy::Accumulator;

    const MAX: u64 = 262_143_328_850;

    fn two_socket(t: &FakeTree) {
        t.powercap_zone("intel-rapl:0", "package-0", 1_000_000, MAX);
        t.powercap_zone("intel-rapl:0:0", "core", 2_000, MAX);
        t.powercap_zone("intel-rapl:0:1", "dram", 3_000, 65_532_610_987);
        t.powercap_zone("intel-rapl:1", "package-1", 4_000, MAX);
        t.powercap_zone("intel-rapl:1:0", "core", 5_000, MAX);
        t.powercap_zone("intel-rapl:2", "psys", 6_000, MAX);
        t.powercap_zone("intel-rapl-mmio:0", "package-0", 7_000, MAX);
        // The control-type directory has no zone number and is not a zone.
        t.write("/sys/class/powercap/intel-rapl/enabled", "1\n");
    }

    #[test]
    fn names() {
        assert_eq!(
            split_zone("intel-rapl:0:1"),
            Some(("intel-rapl", vec![0, 1]))
        );
        assert_eq!(
            split_zone("intel-rapl-mmio:0"),
            Some(("intel-rapl-mmio", vec![0]))
        );
        assert_eq!(split_zone("intel-rapl"), None);
        assert_eq!(split_zone("dtpm:0"), None);
        assert_eq!(
            parse_top_name("package-1"),
            Some((DomainKind::Package, 1, None))
        );
        assert_eq!(
            parse_top_name("package-0-die-1"),
            Some((DomainKind::Package, 0, Some(1)))
        );
        assert_eq!(parse_top_name("package-0-die-x"), None);
        assert_eq!(parse_top_name("psys"), Some((DomainKind::Psys, 0, None)));
        assert_eq!(parse_top_name("core"), None);
    }

    #[test]
    fn discovers_two_packages_without_the_mmio_duplicate() {
        let t = FakeTree::new("pc-disc");
        two_socket(&t);
        let s = PowercapSource::open(&t.sysroot()).unwrap();
        let names: Vec<&str> = s.domains().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rapl/pkg:0",
                "rapl/cores:0",
                "rapl/dram:0",
                "rapl/psys:0",
                "rapl/pkg:1",
                "rapl/cores:1"
            ]
        );
        // The dram zone keeps its own range.
        assert_eq!(
            s.channels()[2].meter,
            Meter::Counter {
                wrap: Wrap::powercap(65_532_610_987),
                joules_per_unit: 1e-6
            }
        );
    }

    #[test]
    fn die_zones_belong_to_their_package() {
        let t = FakeTree::new("pc-dies");
        // Two packages of two dies: intel-rapl:N numbers dies, not packages.
        t.powercap_zone("intel-rapl:0", "package-0-die-0", 0, MAX);
        t.powercap_zone("intel-rapl:0:0", "dram", 0, MAX);
        t.powercap_zone("intel-rapl:1", "package-0-die-1", 0, MAX);
        t.powercap_zone("intel-rapl:2", "package-1-die-0", 0, MAX);
        t.powercap_zone("intel-rapl:3", "package-1-die-1", 0, MAX);
        let s = PowercapSource::open(&t.sysroot()).unwrap();
        let names: Vec<&str> = s.domains().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rapl/pkg:0.die0",
                "rapl/dram:0.die0",
                "rapl/pkg:0.die1",
                "rapl/pkg:1.die0",
                "rapl/pkg:1.die1"
            ]
        );
        assert_eq!(s.domains()[2], Domain::rapl_die(DomainKind::Package, 0, 1));
        // A die that cannot be read takes its package's other dies out with it.
        std::fs::remove_file(t.energy_path("intel-rapl:3")).unwrap();
        let s = PowercapSource::open(&t.sysroot()).unwrap();
        let names: Vec<&str> = s.domains().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["rapl/pkg:0.die0", "rapl/dram:0.die0", "rapl/pkg:0.die1"]
        );
        let w = s.warnings();
        assert!(
            w[0].starts_with("powercap: rapl/pkg:1.die1 left out: "),
            "{w:?}"
        );
        assert_eq!(
            w[1],
            "powercap: rapl/pkg:1.die0 left out: another die of rapl/pkg:1 cannot be read"
        );
        assert_eq!(s.channels().len(), 3);
        assert!(s.channels().iter().enumerate().all(|(i, c)| c.domain == i));
    }

    #[test]
    fn amd_cores_zone_says_it_is_one_core() {
        let t = FakeTree::new("pc-amd");
        t.cpuinfo("AuthenticAMD", 0x19, 0x01);
        t.powercap_zone("intel-rapl:0", "package-0", 0, MAX);
        t.powercap_zone("intel-rapl:0:0", "core", 0, MAX);
        let s = PowercapSource::open(&t.sysroot()).unwrap();
        assert!(s.domain_notes(0).is_empty());
        let n = s.domain_notes(1);
        assert_eq!(n.len(), 1);
        assert!(
            n[0].starts_with(
                "rapl/cores:0: on AMD, powercap's core zone reads only the lead CPU's core"
            ),
            "{n:?}"
        );
        // Intel's core zone is the whole PP0 domain: nothing to say.
        t.cpuinfo("GenuineIntel", 6, 0x8C);
        let s = PowercapSource::open(&t.sysroot()).unwrap();
        assert!(s.domain_notes(1).is_empty());
    }

    #[test]
    fn mmio_alone_is_used() {
        let t = FakeTree::new("pc-mmio");
        t.powercap_zone("intel-rapl-mmio:0", "package-0", 7_000, MAX);
        let s = PowercapSource::open(&t.sysroot()).unwrap();
        assert_eq!(s.domains(), [Domain::rapl(DomainKind::Package, 0)]);
    }

    #[test]
    fn reads_across_a_wrap() {
        let t = FakeTree::new("pc-wrap");
        two_socket(&t);
        let mut acc = Accumulator::new(Box::new(PowercapSource::open(&t.sysroot()).unwrap()));
        acc.read();
        // pkg0 climbs to 100 µJ under the top, wraps (the hidden step of one 61 µJ unit), reaches 500.
        t.set_energy("intel-rapl:0", MAX - 100);
        acc.read();
        t.set_energy("intel-rapl:0", 500);
        t.set_energy("intel-rapl:1", 4_000 + 2_500_000);
        let r = acc.read();
        let expect_pkg0 = ((MAX - 100 - 1_000_000) + 100 + 61 + 500) as f64 * 1e-6;
        assert!((r.joules[0] - expect_pkg0).abs() < 1e-9, "{r:?}");
        assert!((r.joules[4] - 2.5).abs() < 1e-12);
        assert_eq!(r.joules[1], 0.0);
    }

    #[test]
    fn missing_tree_and_unreadable_zone() {
        let t = FakeTree::new("pc-none");
        let e = PowercapSource::open(&t.sysroot()).unwrap_err();
        assert!(
            e.starts_with("powercap: ") && e.contains("intel-rapl absent"),
            "{e}"
        );
        t.powercap_zone("intel-rapl:0", "package-0", 1, MAX);
        std::fs::remove_file(t.energy_path("intel-rapl:0")).unwrap();
        let e = PowercapSource::open(&t.sysroot()).unwrap_err();
        assert!(e.contains("energy_uj"), "{e}");
        let eacces = io::Error::from_raw_os_error(libc::EACCES);
        let msg = energy_error(Path::new("/sys/x/energy_uj"), &eacces);
        assert!(
            msg.contains("root since Linux 5.10") && msg.contains("chmod"),
            "{msg}"
        );
    }
}
