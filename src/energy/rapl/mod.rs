//! RAPL (Running Average Power Limit) CPU energy through three interfaces, tried in this order:
//! the perf `power` PMU ([`perf_pmu`]), powercap sysfs ([`powercap`]) and the MSRs ([`msr`]).
//!
//! The first interface that opens is used. When a second one opens too, their domain sets are
//! compared: domains the second does not list are left out, with a warning naming them and the
//! `--rapl-source` that would keep them. A forced source is used alone.

pub mod models;
pub mod msr;
pub mod perf_pmu;
pub mod powercap;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::counters::pmu::parse_cpu_list;
use crate::energy::{Domain, Source};
use crate::error::Error;
use crate::sysroot::Sysroot;

/// A RAPL interface (`--rapl-source perf|powercap|msr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RaplSource {
    /// The perf `power` PMU.
    Perf,
    /// /sys/class/powercap intel-rapl zones.
    Powercap,
    /// /dev/cpu/N/msr.
    Msr,
}

impl RaplSource {
    /// Every interface, in auto-selection order.
    pub const ORDER: [RaplSource; 3] = [RaplSource::Perf, RaplSource::Powercap, RaplSource::Msr];

    /// The name used on the command line and in output.
    pub fn name(self) -> &'static str {
        match self {
            RaplSource::Perf => "perf",
            RaplSource::Powercap => "powercap",
            RaplSource::Msr => "msr",
        }
    }
}

impl fmt::Display for RaplSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RaplSource {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "perf" => Ok(RaplSource::Perf),
            "powercap" => Ok(RaplSource::Powercap),
            "msr" => Ok(RaplSource::Msr),
            other => Err(Error::Usage(format!(
                "--rapl-source {other}: unknown RAPL source; use perf, powercap or msr"
            ))),
        }
    }
}

/// An opened RAPL source and what the cross-check decided.
pub struct Opened {
    /// The interface in use.
    pub kind: RaplSource,
    /// The source.
    pub source: Box<dyn Source>,
    /// Domains left out because another interface does not list them.
    pub excluded: Vec<Domain>,
    /// Messages about the cross-check, for the user.
    pub warnings: Vec<String>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("kind", &self.kind)
            .field("domains", &self.source.domains())
            .field("excluded", &self.excluded)
            .field("warnings", &self.warnings)
            .finish()
    }
}

fn open_one(kind: RaplSource, root: &Sysroot) -> Result<Box<dyn Source>, String> {
    match kind {
        RaplSource::Perf => perf_pmu::PerfPmuSource::open(root).map(|s| Box::new(s) as _),
        RaplSource::Powercap => powercap::PowercapSource::open(root).map(|s| Box::new(s) as _),
        RaplSource::Msr => msr::MsrSource::open(root).map(|s| Box::new(s) as _),
    }
}

/// Opens RAPL: the `forced` interface, or the first of perf → powercap → msr that works,
/// cross-checked against the others. On failure, one reason per interface tried, each
/// starting with the interface's name.
pub fn open(root: &Sysroot, forced: Option<RaplSource>) -> Result<Opened, Vec<String>> {
    if let Some(kind) = forced {
        return match open_one(kind, root) {
            Ok(source) => Ok(Opened {
                kind,
                source,
                excluded: Vec::new(),
                warnings: Vec::new(),
            }),
            Err(why) => Err(vec![why]),
        };
    }
    let mut opened = Vec::new();
    let mut reasons = Vec::new();
    for kind in RaplSource::ORDER {
        match open_one(kind, root) {
            Ok(s) => opened.push((kind, s)),
            Err(why) => reasons.push(why),
        }
    }
    if opened.is_empty() {
        return Err(reasons);
    }
    let (kind, source) = opened.remove(0);
    // Cross-check with the next interface in order only: the two preferred ones must agree.
    opened.truncate(1);
    let (excluded, mut warnings) = cross_check(kind, source.domains(), &opened);
    // A tree that carries a power PMU is told why it was not used.
    if !root.is_host()
        && root
            .path("/sys/bus/event_source/devices/power/events")
            .is_dir()
    {
        warnings.insert(
            0,
            format!("rapl: perf power PMU: not available under --sysroot; using {kind}"),
        );
    }
    Ok(Opened {
        kind,
        source,
        excluded,
        warnings,
    })
}

/// Compares the chosen interface's domains with the others'. Returns the domains to leave out
/// and the messages to show.
///
/// Like is compared with like: each side's domains are taken at package level (a die domain
/// counts as its package's), so an interface that splits a package into dies and one that
/// does not still agree on the package; the die split itself is reported when it differs.
fn cross_check(
    kind: RaplSource,
    chosen: &[Domain],
    others: &[(RaplSource, Box<dyn Source>)],
) -> (Vec<Domain>, Vec<String>) {
    let mut excluded = BTreeSet::new();
    let mut warnings = Vec::new();
    let packages =
        |ds: &[Domain]| -> BTreeSet<Domain> { ds.iter().map(Domain::package_domain).collect() };
    let split = |ds: &[Domain]| -> BTreeSet<Domain> {
        ds.iter()
            .filter(|d| d.die.is_some())
            .map(Domain::package_domain)
            .collect()
    };
    let mine = packages(chosen);
    for (other_kind, other) in others {
        let theirs = packages(other.domains());
        let only_mine: Vec<&Domain> = mine.difference(&theirs).collect();
        let only_theirs: Vec<&Domain> = theirs.difference(&mine).collect();
        let (my_split, their_split) = (split(chosen), split(other.domains()));
        let split_differs: Vec<&Domain> = my_split
            .symmetric_difference(&their_split)
            .filter(|d| mine.contains(*d) && theirs.contains(*d))
            .collect();
        if !split_differs.is_empty() {
            warnings.push(format!(
                "rapl: {kind} and {other_kind} disagree on the dies of {}; the package figures are compared and the die figures are {kind}'s",
                join(&split_differs)
            ));
        }
        if only_mine.is_empty() && only_theirs.is_empty() {
            continue;
        }
        if only_mine.len() == mine.len() {
            warnings.push(format!(
                "rapl: {kind} and {other_kind} list no common domain; using {kind} unchecked"
            ));
            continue;
        }
        if !only_mine.is_empty() {
            warnings.push(format!(
                "rapl: {kind} lists {} which {other_kind} does not; left out (--rapl-source {kind} keeps it)",
                join(&only_mine)
            ));
            excluded.extend(
                chosen
                    .iter()
                    .filter(|d| only_mine.contains(&&d.package_domain()))
                    .cloned(),
            );
        }
        if !only_theirs.is_empty() {
            warnings.push(format!(
                "rapl: {other_kind} also lists {} which {kind} does not (--rapl-source {other_kind} reads it)",
                join(&only_theirs)
            ));
        }
    }
    (excluded.into_iter().collect(), warnings)
}

fn join(ds: &[&Domain]) -> String {
    ds.iter()
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One CPU as the topology files describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// The CPU number.
    pub cpu: u32,
    /// physical_package_id.
    pub package: u32,
    /// die_id within the package (0 where the kernel has no die topology).
    pub die: u32,
    /// core_id within the package.
    pub core: u32,
}

/// The online CPUs and their package, die and core, from /sys/devices/system/cpu under `root`
/// (`topology/physical_package_id`, `die_id`, `core_id`). A CPU without topology files is
/// taken as package 0, die 0, core = its number.
pub fn topology(root: &Sysroot) -> Vec<Cpu> {
    let cpus = root
        .read_trimmed("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(&s))
        .unwrap_or_else(|| {
            let mut v: Vec<u32> = std::fs::read_dir(root.path("/sys/devices/system/cpu"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
                .collect();
            v.sort_unstable();
            v
        });
    cpus.into_iter()
        .map(|cpu| {
            let read = |f: &str| -> Option<u32> {
                root.read_trimmed(format!("/sys/devices/system/cpu/cpu{cpu}/topology/{f}"))
                    .ok()?
                    .parse()
                    .ok()
            };
            Cpu {
                cpu,
                package: read("physical_package_id").unwrap_or(0),
                die: read("die_id").unwrap_or(0),
                core: read("core_id").unwrap_or(cpu),
            }
        })
        .collect()
}

/// The package of `cpu`, if the topology lists it.
pub fn package_of(topo: &[Cpu], cpu: u32) -> Option<u32> {
    topo.iter().find(|c| c.cpu == cpu).map(|c| c.package)
}

/// The die of `cpu` when its package has several dies (`None` for a single-die package or a
/// CPU the topology does not list).
pub fn die_of(topo: &[Cpu], cpu: u32) -> Option<u32> {
    let c = topo.iter().find(|c| c.cpu == cpu)?;
    multi_die(topo, c.package).then_some(c.die)
}

/// True when package `package` has CPUs on more than one die.
pub fn multi_die(topo: &[Cpu], package: u32) -> bool {
    let mut dies = topo.iter().filter(|c| c.package == package).map(|c| c.die);
    let first = dies.next();
    dies.any(|d| Some(d) != first)
}

/// One lead CPU per (package, die), in order: the CPUs a per-die counter is read on.
pub fn die_leads(topo: &[Cpu]) -> Vec<Cpu> {
    let mut leads: Vec<Cpu> = Vec::new();
    for c in topo {
        if !leads
            .iter()
            .any(|l| (l.package, l.die) == (c.package, c.die))
        {
            leads.push(*c);
        }
    }
    leads.sort_by_key(|c| (c.package, c.die, c.cpu));
    leads
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::fake::FakeTree;
    use crate::energy::DomainKind;

    #[test]
    fn source_names() {
        for k in RaplSource::ORDER {
            assert_eq!(k.name().parse::<RaplSource>().unwrap(), k);
        }
        let e = "rdtsc".parse::<RaplSource>().unwrap_err();
        assert!(e.to_string().contains("use perf, powercap or msr"));
    }

    #[test]
    fn topology_from_fake_tree() {
        let t = FakeTree::new("topo");
        t.cpus(&[(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]);
        let topo = topology(&t.sysroot());
        assert_eq!(topo.len(), 4);
        assert_eq!(package_of(&topo, 2), Some(1));
        assert_eq!(topo[3].core, 1);
        assert_eq!(die_of(&topo, 2), None);
        assert_eq!(
            die_leads(&topo).iter().map(|c| c.cpu).collect::<Vec<_>>(),
            [0, 2]
        );
    }

    #[test]
    fn die_topology() {
        let t = FakeTree::new("topo-dies");
        // Package 0 has two dies (CPUs 0-1 and 2-3); package 1 one die (CPUs 4-5).
        t.cpus_with_dies(&[
            (0, 0, 0, 0),
            (1, 0, 0, 1),
            (2, 0, 1, 0),
            (3, 0, 1, 1),
            (4, 1, 0, 0),
            (5, 1, 0, 1),
        ]);
        let topo = topology(&t.sysroot());
        assert_eq!(topo[2].die, 1);
        assert!(multi_die(&topo, 0) && !multi_die(&topo, 1));
        assert_eq!(die_of(&topo, 3), Some(1));
        assert_eq!(die_of(&topo, 0), Some(0));
        assert_eq!(die_of(&topo, 5), None);
        let leads: Vec<(u32, u32, u32)> = die_leads(&topo)
            .iter()
            .map(|c| (c.cpu, c.package, c.die))
            .collect();
        assert_eq!(leads, [(0, 0, 0), (2, 0, 1), (4, 1, 0)]);
        // No die_id file: die 0.
        let t = FakeTree::new("topo-nodie");
        t.cpus(&[(0, 0, 0), (1, 0, 1)]);
        assert!(topology(&t.sysroot()).iter().all(|c| c.die == 0));
    }

    #[test]
    fn nothing_available_lists_every_interface() {
        let t = FakeTree::new("rapl-none");
        t.cpus(&[(0, 0, 0)]);
        let reasons = open(&t.sysroot(), None).unwrap_err();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].starts_with("perf power PMU:"), "{reasons:?}");
        assert!(reasons[1].starts_with("powercap:"), "{reasons:?}");
        assert!(reasons[2].starts_with("msr:"), "{reasons:?}");
        assert!(reasons[2].contains("modprobe msr"), "{reasons:?}");
        let forced = open(&t.sysroot(), Some(RaplSource::Powercap)).unwrap_err();
        assert_eq!(forced.len(), 1);
        assert!(forced[0].starts_with("powercap:"));
    }

    #[test]
    fn cross_check_keeps_agreed_domains() {
        let t = FakeTree::new("rapl-cross");
        t.cpus(&[(0, 0, 0), (1, 0, 1)]);
        // powercap: package and core; MSR (AMD): package and per-core energy, plus psys? no.
        t.powercap_zone("intel-rapl:0", "package-0", 1_000, 262_143_328_850);
        t.powercap_zone("intel-rapl:0:0", "core", 500, 262_143_328_850);
        t.powercap_zone("intel-rapl:0:1", "dram", 500, 262_143_328_850);
        t.cpuinfo("GenuineIntel", 6, 0x8C);
        t.msr(0, 0x606, 0x000A_0E03);
        t.msr(0, 0x611, 1000);
        t.msr(0, 0x639, 400);
        let o = open(&t.sysroot(), None).unwrap();
        assert_eq!(o.kind, RaplSource::Powercap);
        assert_eq!(o.excluded, vec![Domain::rapl(DomainKind::Dram, 0)]);
        assert!(
            o.warnings[0].contains("powercap lists rapl/dram:0 which msr does not"),
            "{:?}",
            o.warnings
        );
        let o = open(&t.sysroot(), Some(RaplSource::Powercap)).unwrap();
        assert!(o.excluded.is_empty() && o.warnings.is_empty());
    }

    #[test]
    fn cross_check_compares_dies_with_dies() {
        let t = FakeTree::new("rapl-cross-dies");
        t.cpus_with_dies(&[(0, 0, 0, 0), (1, 0, 1, 0)]);
        t.powercap_zone("intel-rapl:0", "package-0-die-0", 1_000, 262_143_328_850);
        t.powercap_zone("intel-rapl:1", "package-0-die-1", 1_000, 262_143_328_850);
        t.cpuinfo("GenuineIntel", 6, 0x55);
        for cpu in [0, 1] {
            t.msr(cpu, 0x606, 0x000A_0E03);
            t.msr(cpu, 0x611, 1000);
        }
        let o = open(&t.sysroot(), None).unwrap();
        assert_eq!(o.kind, RaplSource::Powercap);
        assert!(o.excluded.is_empty() && o.warnings.is_empty(), "{o:?}");
        let names: Vec<&str> = o.source.domains().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["rapl/pkg:0.die0", "rapl/pkg:0.die1"]);
        // Without die_id in the topology MSR sees one die: the package still agrees.
        t.cpus(&[(0, 0, 0), (1, 0, 1)]);
        std::fs::remove_file(t.path("/sys/devices/system/cpu/cpu1/topology/die_id")).unwrap();
        std::fs::remove_file(t.path("/sys/devices/system/cpu/cpu0/topology/die_id")).unwrap();
        let o = open(&t.sysroot(), None).unwrap();
        assert!(o.excluded.is_empty(), "{o:?}");
        assert_eq!(o.warnings.len(), 1, "{o:?}");
        assert!(
            o.warnings[0].starts_with("rapl: powercap and msr disagree on the dies of rapl/pkg:0"),
            "{o:?}"
        );
    }
}
