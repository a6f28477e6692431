//! Per-unit aggregation (`--per-socket`, `--per-die`, `--per-core`, `--per-node`,
//! `--per-cache`, `--per-thread`): which unit each CPU or thread belongs to, and the folding of
//! per-CPU readings into per-unit sums, as perf aggregates raw value/enabled/running before
//! scaling.

use serde::Serialize;

use crate::counters::group::RawCount;
use crate::counters::topology::{self, CpuPlace};
use crate::error::{Error, Result};
use crate::sysroot::Sysroot;

/// The unit counts are summed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AggrMode {
    /// One row per socket.
    Socket,
    /// One row per die of a socket.
    Die,
    /// One row per physical core.
    Core,
    /// One row per NUMA node.
    Node,
    /// One row per cache instance of this level (None: the highest level present).
    Cache(Option<u32>),
    /// One row per thread of the `-p`/`-t` target.
    Thread,
}

impl AggrMode {
    /// The option that selects the mode, for messages.
    pub fn flag(self) -> &'static str {
        match self {
            AggrMode::Socket => "--per-socket",
            AggrMode::Die => "--per-die",
            AggrMode::Core => "--per-core",
            AggrMode::Node => "--per-node",
            AggrMode::Cache(_) => "--per-cache",
            AggrMode::Thread => "--per-thread",
        }
    }

    /// Parses `--per-cache`'s optional level: `L1`, `l2`, `3`.
    pub fn cache_level(text: &str) -> Result<u32> {
        let t = text.trim();
        let digits = t.strip_prefix(['L', 'l']).unwrap_or(t);
        digits
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=4).contains(l))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--per-cache={text}: not a cache level (use L1, L2, L3 or L4)"
                ))
            })
    }
}

/// The identity of one aggregation unit, ordered as perf orders its rows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum AggrId {
    /// A socket.
    Socket {
        /// Socket number.
        socket: i32,
    },
    /// A die.
    Die {
        /// Socket number.
        socket: i32,
        /// Die number within the socket.
        die: i32,
    },
    /// A core.
    Core {
        /// Socket number.
        socket: i32,
        /// Die number.
        die: i32,
        /// Core id.
        core: i32,
    },
    /// A NUMA node.
    Node {
        /// Node number.
        node: i32,
    },
    /// A cache instance.
    Cache {
        /// Socket number.
        socket: i32,
        /// Die number.
        die: i32,
        /// Cache level.
        level: u32,
        /// Cache id.
        id: i32,
    },
    /// A thread.
    Thread {
        /// Thread id.
        tid: i32,
        /// Its command name.
        comm: String,
    },
}

/// The unit a row was summed over, and how many CPUs it covers (perf's aggregate number).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Aggr {
    /// Which unit.
    pub id: AggrId,
    /// CPUs summed (0 for a thread).
    pub nr: u32,
}

/// A unit and the CPUs (or the thread) it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Which unit.
    pub id: AggrId,
    /// The CPUs summed into it (empty for a thread).
    pub cpus: Vec<u32>,
}

/// The unit a CPU falls in under `mode` (never Thread).
fn id_of(mode: AggrMode, p: &CpuPlace, level: u32) -> AggrId {
    match mode {
        AggrMode::Socket => AggrId::Socket { socket: p.socket },
        AggrMode::Die => AggrId::Die {
            socket: p.socket,
            die: p.die,
        },
        AggrMode::Core | AggrMode::Thread => AggrId::Core {
            socket: p.socket,
            die: p.die,
            core: p.core,
        },
        AggrMode::Node => AggrId::Node { node: p.node },
        AggrMode::Cache(_) => AggrId::Cache {
            socket: p.socket,
            die: p.die,
            level,
            id: p.cache(level).unwrap_or(-1),
        },
    }
}

/// The CPU units of `mode` over `cpus`, in perf's order.
pub fn cpu_units(mode: AggrMode, places: &[CpuPlace]) -> Vec<Unit> {
    let level = match mode {
        AggrMode::Cache(Some(l)) => l,
        _ => topology::top_cache_level(places).unwrap_or(3),
    };
    let mut units: Vec<Unit> = Vec::new();
    for p in places {
        let id = id_of(mode, p, level);
        match units.iter_mut().find(|u| u.id == id) {
            Some(u) => u.cpus.push(p.cpu),
            None => units.push(Unit {
                id,
                cpus: vec![p.cpu],
            }),
        }
    }
    units.sort_by(|a, b| a.id.cmp(&b.id));
    units
}

/// Reads the topology of `cpus` and builds the units of `mode`.
pub fn units_for(mode: AggrMode, root: &Sysroot, cpus: &[u32]) -> Vec<Unit> {
    cpu_units(mode, &topology::places(root, cpus))
}

/// One thread unit per tid, named from /proc/TID/comm.
pub fn thread_units(root: &Sysroot, tids: &[i32]) -> Vec<Unit> {
    tids.iter()
        .map(|&tid| Unit {
            id: AggrId::Thread {
                tid,
                comm: root
                    .read_trimmed(format!("/proc/{tid}/comm"))
                    .unwrap_or_else(|_| "?".into()),
            },
            cpus: Vec::new(),
        })
        .collect()
}

/// Sums per-CPU readings into units, unit-major (for each unit, every counter in order):
/// `per_cpu[counter]` holds that counter's (cpu, reading) pairs. A counter with no readings
/// (not supported) gives a zero reading in every unit.
pub fn fold_cpus(
    per_cpu: &[Vec<(u32, RawCount)>],
    units: &[Unit],
) -> Vec<(usize, usize, RawCount)> {
    let mut out = Vec::with_capacity(units.len() * per_cpu.len());
    for (u, unit) in units.iter().enumerate() {
        for (c, each) in per_cpu.iter().enumerate() {
            let mut sum = RawCount::default();
            for (_, r) in each.iter().filter(|(cpu, _)| unit.cpus.contains(cpu)) {
                sum.value = sum.value.wrapping_add(r.value);
                sum.enabled = sum.enabled.wrapping_add(r.enabled);
                sum.running = sum.running.wrapping_add(r.running);
            }
            out.push((c, u, sum));
        }
    }
    out
}

/// Per-thread readings, counter-major (perf prints each event's threads together):
/// `per_task[counter]` holds (tid, reading) pairs.
pub fn fold_threads(
    per_task: &[Vec<(i32, RawCount)>],
    units: &[Unit],
) -> Vec<(usize, usize, RawCount)> {
    let mut out = Vec::with_capacity(units.len() * per_task.len());
    for (c, each) in per_task.iter().enumerate() {
        for (u, unit) in units.iter().enumerate() {
            let AggrId::Thread { tid, .. } = unit.id else {
                continue;
            };
            let r = each
                .iter()
                .find(|(t, _)| *t == tid)
                .map(|x| x.1)
                .unwrap_or_default();
            out.push((c, u, r));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::topology::fake;
    use crate::energy::fake::FakeTree;

    /// Two sockets, two dies each on socket 0, two cores per die, SMT on socket 1.
    fn layout() -> FakeTree {
        let t = FakeTree::new("aggr");
        let r = t.root();
        fake::online(r, "0-5");
        fake::cpu(r, 0, 0, 0, 0, &[(2, 0), (3, 0)]);
        fake::cpu(r, 1, 0, 0, 1, &[(2, 1), (3, 0)]);
        fake::cpu(r, 2, 0, 1, 0, &[(2, 2), (3, 1)]);
        fake::cpu(r, 3, 0, 1, 1, &[(2, 3), (3, 1)]);
        fake::cpu(r, 4, 1, 0, 0, &[(2, 4), (3, 2)]);
        fake::cpu(r, 5, 1, 0, 0, &[(2, 4), (3, 2)]);
        fake::node(r, 0, "0-3");
        fake::node(r, 1, "4-5");
        t
    }

    fn cpus_of(units: &[Unit]) -> Vec<Vec<u32>> {
        units.iter().map(|u| u.cpus.clone()).collect()
    }

    #[test]
    fn units_follow_the_fake_topology() {
        let t = layout();
        let root = t.sysroot();
        let all: Vec<u32> = (0..6).collect();
        let s = units_for(AggrMode::Socket, &root, &all);
        assert_eq!(cpus_of(&s), vec![vec![0, 1, 2, 3], vec![4, 5]]);
        let d = units_for(AggrMode::Die, &root, &all);
        assert_eq!(d.len(), 3);
        assert_eq!(d[1].id, AggrId::Die { socket: 0, die: 1 });
        let c = units_for(AggrMode::Core, &root, &all);
        assert_eq!(c.len(), 5, "SMT siblings 4 and 5 share a core");
        assert_eq!(c[4].cpus, vec![4, 5]);
        let n = units_for(AggrMode::Node, &root, &all);
        assert_eq!(cpus_of(&n), vec![vec![0, 1, 2, 3], vec![4, 5]]);
        let l3 = units_for(AggrMode::Cache(None), &root, &all);
        assert_eq!(cpus_of(&l3), vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        let l2 = units_for(AggrMode::Cache(Some(2)), &root, &all);
        assert_eq!(l2.len(), 5);
        // -C 1,4: only those CPUs' units.
        let some = units_for(AggrMode::Socket, &root, &[1, 4]);
        assert_eq!(cpus_of(&some), vec![vec![1], vec![4]]);
    }

    #[test]
    fn folding_sums_raw_counts_per_unit() {
        let t = layout();
        let units = units_for(AggrMode::Socket, &t.sysroot(), &(0..6).collect::<Vec<_>>());
        let r = |v| RawCount {
            value: v,
            enabled: 10,
            running: 5,
        };
        let per_cpu = vec![
            (0..6).map(|c| (c, r(c as u64 + 1))).collect::<Vec<_>>(),
            Vec::new(),
        ];
        let f = fold_cpus(&per_cpu, &units);
        assert_eq!(f.len(), 4);
        assert_eq!((f[0].0, f[0].1), (0, 0));
        assert_eq!(f[0].2.value, 1 + 2 + 3 + 4);
        assert_eq!((f[0].2.enabled, f[0].2.running), (40, 20));
        assert_eq!(f[1].2, RawCount::default(), "unsupported counter");
        assert_eq!((f[2].0, f[2].1, f[2].2.value), (0, 1, 5 + 6));
    }

    #[test]
    fn cache_level_spellings() {
        assert_eq!(AggrMode::cache_level("L2").unwrap(), 2);
        assert_eq!(AggrMode::cache_level("l3").unwrap(), 3);
        assert_eq!(AggrMode::cache_level("1").unwrap(), 1);
        let e = AggrMode::cache_level("L9").unwrap_err().to_string();
        assert!(e.contains("--per-cache=L9"), "{e}");
    }
}
