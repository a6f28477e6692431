//! RAPL through the perf `power` PMU: its type and `events/energy-*` (with `.scale` and
//! `.unit`) from sysfs, one counter per CPU of the PMU's `cpumask` (one CPU per package), opened
//! system-wide (pid −1) with no exclude bits. Counts are 64-bit: the kernel folds the 32-bit
//! hardware wrap-arounds in. AMD's separate `power_core` PMU adds per-core energy, summed per
//! package.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::{package_of, topology, Cpu};
use crate::counters::pmu::parse_cpu_list;
use crate::counters::{has_perf_capability, permission_fix};
use crate::energy::{Channel, Domain, DomainKind, Meter, Source, Wrap};
use crate::os::sys::{new_attr, perf_event_open, read_words};
use crate::sysroot::Sysroot;

const DEVICES: &str = "/sys/bus/event_source/devices";

/// One energy event of a power PMU, as sysfs describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PmuEvent {
    /// The PMU's directory name (`power`, `power_core`).
    pub pmu: String,
    /// The event's name (`energy-pkg`).
    pub name: String,
    /// The domain kind it measures.
    pub kind: DomainKind,
    /// perf_event_attr.type.
    pub pmu_type: u32,
    /// perf_event_attr.config.
    pub config: u64,
    /// Joules per count.
    pub scale: f64,
    /// CPUs to open it on.
    pub cpus: Vec<u32>,
}

fn kind_of(event: &str) -> Option<DomainKind> {
    match event {
        "energy-pkg" => Some(DomainKind::Package),
        "energy-cores" | "energy-core" => Some(DomainKind::Cores),
        "energy-gpu" => Some(DomainKind::Uncore),
        "energy-ram" => Some(DomainKind::Dram),
        "energy-psys" => Some(DomainKind::Psys),
        _ => None,
    }
}

/// Parses an event's terms (`event=0x02`) into a config, placing each term where the PMU's
/// `format/<term>` file (`config:0-7`) says. Terms without a format file go to bit 0.
pub fn parse_config(terms: &str, format: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let mut config = 0u64;
    for term in terms.trim().split(',').filter(|t| !t.is_empty()) {
        let (name, value) = term.split_once('=').unwrap_or((term, "1"));
        let value = value.trim();
        let v = match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok()?,
            None => value.parse().ok()?,
        };
        let shift = match format(name.trim()) {
            Some(f) => {
                let bits = f.trim().strip_prefix("config:")?;
                bits.split('-').next()?.parse::<u32>().ok()?
            }
            None => 0,
        };
        config |= v.checked_shl(shift)?;
    }
    Some(config)
}

/// Reads the energy events of PMU `pmu` under `root`. `Ok(empty)` when the PMU exists with no
/// energy events; `Err` naming what is missing otherwise.
pub fn discover_pmu(root: &Sysroot, pmu: &str) -> Result<Vec<PmuEvent>, String> {
    let dir = root.path(format!("{DEVICES}/{pmu}"));
    if !dir.is_dir() {
        return Err("absent (this kernel or VM exposes no RAPL to perf)".into());
    }
    let pmu_type: u32 = std::fs::read_to_string(dir.join("type"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("{}/type unreadable", dir.display()))?;
    let cpus = std::fs::read_to_string(dir.join("cpumask"))
        .ok()
        .and_then(|s| parse_cpu_list(&s))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| vec![0]);
    let format = |term: &str| std::fs::read_to_string(dir.join("format").join(term)).ok();
    let mut names: Vec<String> = std::fs::read_dir(dir.join("events"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("energy-") && !n.contains('.'))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let Some(kind) = kind_of(&name) else {
            continue;
        };
        let ev = dir.join("events").join(&name);
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let Some(config) = read(&ev).and_then(|t| parse_config(&t, format)) else {
            continue;
        };
        let scale = match read(&dir.join("events").join(format!("{name}.scale"))) {
            Some(s) => match s.trim().parse::<f64>() {
                Ok(v) if v > 0.0 => v,
                _ => continue,
            },
            None => 1.0,
        };
        let unit = read(&dir.join("events").join(format!("{name}.unit")));
        if unit.as_deref().is_some_and(|u| u.trim() != "Joules") {
            continue;
        }
        out.push(PmuEvent {
            pmu: pmu.to_string(),
            name,
            kind,
            pmu_type,
            config,
            scale,
            cpus: cpus.clone(),
        });
    }
    Ok(out)
}

/// The die of the `pos`-th CPU of a cpumask when the mask holds several CPUs of its package
/// (the PMU counts per die): its `die_id`, or, where the topology does not tell those CPUs'
/// dies apart, its rank among them. `None` when the mask has one CPU of the package.
fn die_in_mask(topo: &[Cpu], cpus: &[u32], places: &[u32], pos: usize) -> Option<u32> {
    let package = places[pos];
    let same: Vec<u32> = cpus
        .iter()
        .zip(places)
        .filter(|(_, &p)| p == package)
        .map(|(&c, _)| c)
        .collect();
    if same.len() < 2 {
        return None;
    }
    let die_of = |cpu: u32| topo.iter().find(|c| c.cpu == cpu).map(|c| c.die);
    let mut dies: Vec<Option<u32>> = same.iter().map(|&c| die_of(c)).collect();
    dies.sort_unstable();
    dies.dedup();
    if dies.len() == same.len() && dies.iter().all(Option::is_some) {
        die_of(cpus[pos])
    } else {
        same.iter().position(|&c| c == cpus[pos]).map(|i| i as u32)
    }
}

/// Counters of the perf power PMU(s).
#[derive(Debug)]
pub struct PerfPmuSource {
    domains: Vec<Domain>,
    channels: Vec<Channel>,
    fds: Vec<OwnedFd>,
    warnings: Vec<String>,
}

impl PerfPmuSource {
    /// Discovers the power PMU's energy events and opens them on every CPU of its cpumask.
    /// The error starts with `perf power PMU:`; a PMU without energy events is an error here
    /// (the interface is unavailable), not a failure of ruperf.
    ///
    /// Under `--sysroot` the tree's PMU `type` names nothing real (perf events always count
    /// this machine's hardware), so no event is opened: the interface is unavailable.
    pub fn open(root: &Sysroot) -> Result<Self, String> {
        if !root.is_host() {
            return Err(
                "perf power PMU: not available under --sysroot (perf events would count \
                 this machine's counters, not the tree's)"
                    .into(),
            );
        }
        let events = discover_pmu(root, "power").map_err(|e| format!("perf power PMU: {e}"))?;
        if events.is_empty() {
            return Err(format!(
                "perf power PMU: no energy events in {} (the CPU or hypervisor exposes no RAPL)",
                root.path(format!("{DEVICES}/power/events")).display()
            ));
        }
        let core_events = discover_pmu(root, "power_core").unwrap_or_default();
        Self::from_events(&topology(root), &events, &core_events)
    }

    /// Opens the given energy events (as [`discover_pmu`] returns them) on this machine, placed
    /// on packages and dies by `topo`: one counter per CPU of each event's cpumask. Where the
    /// cpumask holds several CPUs of one package (Intel counts RAPL per die), each becomes a
    /// die domain (`rapl/pkg:0.die1`). AMD's `power_core` events are used when `power` has no
    /// core event, summed per package.
    pub fn from_events(
        topo: &[Cpu],
        events: &[PmuEvent],
        core_events: &[PmuEvent],
    ) -> Result<Self, String> {
        let host = Sysroot::default();
        let mut src = PerfPmuSource {
            domains: Vec::new(),
            channels: Vec::new(),
            fds: Vec::new(),
            warnings: Vec::new(),
        };
        let has_cores = events.iter().any(|e| e.kind == DomainKind::Cores);
        for ev in events {
            let places: Vec<u32> = ev
                .cpus
                .iter()
                .enumerate()
                .map(|(pos, &cpu)| package_of(topo, cpu).unwrap_or(pos as u32))
                .collect();
            for (pos, (&cpu, &package)) in ev.cpus.iter().zip(&places).enumerate() {
                let die = die_in_mask(topo, &ev.cpus, &places, pos);
                let domain = Domain::rapl_at(ev.kind, package, die);
                src.open_event(&host, ev, cpu, domain)
                    .map_err(|e| format!("perf power PMU: {e}"))?;
            }
        }
        if !has_cores {
            for ev in core_events.iter().filter(|e| e.kind == DomainKind::Cores) {
                // All cores or none: a sum over some cores would be silently low.
                let mark = (src.domains.len(), src.channels.len(), src.fds.len());
                for &cpu in &ev.cpus {
                    let package = package_of(topo, cpu).unwrap_or(0);
                    let domain = Domain::rapl(ev.kind, package);
                    let name = domain.name.clone();
                    if let Err(e) = src.open_event(&host, ev, cpu, domain) {
                        src.warnings
                            .push(format!("{name}: left out: perf power_core PMU: {e}"));
                        src.domains.truncate(mark.0);
                        src.channels.truncate(mark.1);
                        src.fds.truncate(mark.2);
                        break;
                    }
                }
            }
        }
        // Domains in (package, die, kind) order.
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

    fn open_event(
        &mut self,
        root: &Sysroot,
        ev: &PmuEvent,
        cpu: u32,
        domain: Domain,
    ) -> Result<(), String> {
        let mut attr = new_attr();
        attr.type_ = ev.pmu_type;
        attr.config = ev.config;
        let fd = perf_event_open(&attr, -1, cpu as i32, None).map_err(|e| {
            match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => format!(
                    "{}/{}/ on CPU {cpu}: system-wide counting needs perf_event_paranoid <= 0 or CAP_PERFMON{}; {}",
                    ev.pmu,
                    ev.name,
                    if has_perf_capability() { "" } else { " (not held)" },
                    permission_fix(root)
                ),
                _ => format!("{}/{}/ on CPU {cpu}: {e}", ev.pmu, ev.name),
            }
        })?;
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
                wrap: Wrap::Bits(64),
                joules_per_unit: ev.scale,
            },
        });
        self.fds.push(fd);
        Ok(())
    }
}

impl Source for PerfPmuSource {
    fn backend(&self) -> &'static str {
        "perf"
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    fn channels(&self) -> &[Channel] {
        &self.channels
    }

    fn read(&mut self, out: &mut [Option<u64>]) {
        let mut buf = [0u64; 1];
        for (slot, fd) in out.iter_mut().zip(&self.fds) {
            *slot = match read_words(fd.as_fd(), &mut buf) {
                Ok([v]) => Some(*v),
                _ => None,
            };
        }
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::fake::FakeTree;

    const SCALE: &str = "2.3283064365386962890625e-10";

    #[test]
    fn config_terms() {
        let fmt = |t: &str| (t == "event").then(|| "config:0-7\n".to_string());
        assert_eq!(parse_config("event=0x02\n", fmt), Some(2));
        assert_eq!(parse_config("event=5", fmt), Some(5));
        let fmt_hi = |_: &str| Some("config:8-15".to_string());
        assert_eq!(parse_config("event=0x01", fmt_hi), Some(0x100));
        assert_eq!(parse_config("event=zz", fmt), None);
    }

    #[test]
    fn discovery_with_scale_and_unit() {
        let t = FakeTree::new("pmu-disc");
        t.cpus(&[(0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 1, 1)]);
        t.perf_pmu(
            "power",
            23,
            "0,2",
            &[
                ("energy-pkg", "event=0x02", SCALE, "Joules"),
                ("energy-cores", "event=0x01", SCALE, "Joules"),
                ("energy-ram", "event=0x03", "1.52587890625e-05", "Joules"),
                ("energy-psys", "event=0x05", SCALE, "Joules"),
                // Not Joules: ignored.
                ("energy-gpu", "event=0x04", SCALE, "Watts"),
            ],
        );
        let evs = discover_pmu(&t.sysroot(), "power").unwrap();
        let summary: Vec<(&str, DomainKind, u64, f64)> = evs
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.config, e.scale))
            .collect();
        assert_eq!(
            summary,
            [
                ("energy-cores", DomainKind::Cores, 1, 2f64.powi(-32)),
                ("energy-pkg", DomainKind::Package, 2, 2f64.powi(-32)),
                ("energy-psys", DomainKind::Psys, 5, 2f64.powi(-32)),
                ("energy-ram", DomainKind::Dram, 3, 2f64.powi(-16)),
            ]
        );
        assert!(evs.iter().all(|e| e.pmu_type == 23 && e.cpus == [0, 2]));
    }

    #[test]
    fn empty_or_absent_pmu_is_unavailable() {
        let t = FakeTree::new("pmu-empty");
        assert!(discover_pmu(&t.sysroot(), "power")
            .unwrap_err()
            .starts_with("absent"));
        t.perf_pmu("power", 23, "0", &[]);
        assert_eq!(discover_pmu(&t.sysroot(), "power"), Ok(vec![]));
    }

    #[test]
    fn never_opens_host_events_under_a_sysroot() {
        let t = FakeTree::new("pmu-sysroot");
        t.cpus(&[(0, 0, 0)]);
        // The type of a real host PMU (msr), as a fake tree could carry by chance.
        let ty = std::fs::read_to_string("/sys/bus/event_source/devices/msr/type")
            .map_or(7, |s| s.trim().parse().unwrap_or(7));
        t.perf_pmu(
            "power",
            ty,
            "0",
            &[("energy-pkg", "event=0x00", SCALE, "Joules")],
        );
        let e = PerfPmuSource::open(&t.sysroot()).unwrap_err();
        assert_eq!(
            e,
            "perf power PMU: not available under --sysroot (perf events would count this \
             machine's counters, not the tree's)"
        );
    }

    #[test]
    fn cpumask_dies() {
        let cpu = |cpu, package, die| Cpu {
            cpu,
            package,
            die,
            core: 0,
        };
        let topo = [cpu(0, 0, 0), cpu(4, 0, 1), cpu(8, 1, 0)];
        let cpus = [0, 4, 8];
        let places = [0, 0, 1];
        let got: Vec<Option<u32>> = (0..3)
            .map(|i| die_in_mask(&topo, &cpus, &places, i))
            .collect();
        assert_eq!(got, [Some(0), Some(1), None]);
        // A topology without die_id (all 0): the rank within the package.
        let flat = [cpu(0, 0, 0), cpu(4, 0, 0)];
        let got: Vec<Option<u32>> = (0..2)
            .map(|i| die_in_mask(&flat, &[0, 4], &[0, 0], i))
            .collect();
        assert_eq!(got, [Some(0), Some(1)]);
    }

    #[test]
    fn fake_type_fails_cleanly_at_open() {
        // A PMU type no kernel has: perf_event_open refuses; the reason names the event.
        let ev = PmuEvent {
            pmu: "power".into(),
            name: "energy-pkg".into(),
            kind: DomainKind::Package,
            pmu_type: 0x7FFF_FF00,
            config: 2,
            scale: 2f64.powi(-32),
            cpus: vec![0],
        };
        let e = PerfPmuSource::from_events(&[], &[ev], &[]).unwrap_err();
        assert!(
            e.starts_with("perf power PMU: power/energy-pkg/ on CPU 0: "),
            "{e}"
        );
    }

    #[test]
    fn host_pmu_opens_or_explains() {
        // On this machine the power PMU is absent or has no events; where RAPL exists it opens.
        match PerfPmuSource::open(&Sysroot::default()) {
            Ok(src) => assert!(!src.domains().is_empty()),
            Err(e) => assert!(e.starts_with("perf power PMU: "), "{e}"),
        }
    }
}
