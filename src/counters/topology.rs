//! CPU topology from sysfs (through the [`Sysroot`]): the socket, die, core, NUMA node and
//! caches of each CPU, as perf reads them for `stat --per-socket/-die/-core/-node/-cache`.
//!
//! Missing files read as perf reads them: a die or socket of 0 when the kernel has no such
//! file, node 0 without a node directory, a cache's id from the first CPU sharing it when
//! `id` is absent.

use crate::counters::pmu::parse_cpu_list;
use crate::sysroot::Sysroot;

/// Where one CPU sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuPlace {
    /// The CPU number.
    pub cpu: u32,
    /// `topology/physical_package_id`.
    pub socket: i32,
    /// `topology/die_id`.
    pub die: i32,
    /// `topology/core_id`.
    pub core: i32,
    /// The NUMA node whose `cpulist` holds the CPU.
    pub node: i32,
    /// Data or unified caches: (level, id).
    pub caches: Vec<(u32, i32)>,
}

impl CpuPlace {
    /// The id of this CPU's cache at `level` (data or unified), if it has one.
    pub fn cache(&self, level: u32) -> Option<i32> {
        self.caches.iter().find(|(l, _)| *l == level).map(|c| c.1)
    }
}

fn read_i32(root: &Sysroot, path: &str) -> Option<i32> {
    root.read_trimmed(path).ok()?.parse().ok()
}

/// The NUMA node of every CPU, from /sys/devices/system/node/nodeN/cpulist.
fn nodes(root: &Sysroot) -> Vec<(i32, Vec<u32>)> {
    let Ok(dir) = std::fs::read_dir(root.path("/sys/devices/system/node")) else {
        return Vec::new();
    };
    let mut out: Vec<(i32, Vec<u32>)> = dir
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let n: i32 = name.strip_prefix("node")?.parse().ok()?;
            let list = root
                .read_trimmed(format!("/sys/devices/system/node/{name}/cpulist"))
                .ok()?;
            Some((n, parse_cpu_list(&list).unwrap_or_default()))
        })
        .collect();
    out.sort();
    out
}

/// The data and unified caches of `cpu`: (level, id).
fn caches(root: &Sysroot, cpu: u32) -> Vec<(u32, i32)> {
    let base = format!("/sys/devices/system/cpu/cpu{cpu}/cache");
    let Ok(dir) = std::fs::read_dir(root.path(&base)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("index") {
            continue;
        }
        let at = |f: &str| root.read_trimmed(format!("{base}/{name}/{f}")).ok();
        if at("type").as_deref() == Some("Instruction") {
            continue;
        }
        let Some(level) = at("level").and_then(|l| l.parse().ok()) else {
            continue;
        };
        let id = at("id").and_then(|i| i.parse().ok()).or_else(|| {
            at("shared_cpu_list")
                .and_then(|l| parse_cpu_list(&l))
                .and_then(|v| v.first().map(|&c| c as i32))
        });
        if let Some(id) = id {
            out.push((level, id));
        }
    }
    out.sort_unstable();
    out.dedup_by_key(|c| c.0);
    out
}

/// The place of each CPU in `cpus`, in the same order.
pub fn places(root: &Sysroot, cpus: &[u32]) -> Vec<CpuPlace> {
    let nodes = nodes(root);
    cpus.iter()
        .map(|&cpu| {
            let t = |f: &str| {
                read_i32(
                    root,
                    &format!("/sys/devices/system/cpu/cpu{cpu}/topology/{f}"),
                )
            };
            CpuPlace {
                cpu,
                socket: t("physical_package_id").unwrap_or(0),
                die: t("die_id").unwrap_or(0),
                core: t("core_id").unwrap_or(cpu as i32),
                node: nodes
                    .iter()
                    .find(|(_, l)| l.contains(&cpu))
                    .map_or(0, |n| n.0),
                caches: caches(root, cpu),
            }
        })
        .collect()
}

/// The highest cache level any of `places` has (perf's `--per-cache` default).
pub fn top_cache_level(places: &[CpuPlace]) -> Option<u32> {
    places
        .iter()
        .flat_map(|p| p.caches.iter().map(|c| c.0))
        .max()
}

/// True when sysfs lists a core PMU that counts cycles (`cpu`, hybrid `cpu_core`/`cpu_atom`,
/// Arm's `armv8_*`): what perf's metric tables need.
pub fn hardware_pmu_present(root: &Sysroot) -> bool {
    let Ok(dir) = std::fs::read_dir(root.path("/sys/bus/event_source/devices")) else {
        return false;
    };
    dir.flatten().any(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n == "cpu" || n == "cpu_core" || n == "cpu_atom" || n.starts_with("armv8")
    })
}

/// Test helpers: write a fake topology under a directory.
#[cfg(test)]
pub mod fake {
    use std::fs;
    use std::path::Path;

    /// Writes CPU `cpu`'s topology files and one unified cache per (level, id).
    pub fn cpu(root: &Path, cpu: u32, socket: i32, die: i32, core: i32, caches: &[(u32, i32)]) {
        let t = root.join(format!("sys/devices/system/cpu/cpu{cpu}/topology"));
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join("physical_package_id"), format!("{socket}\n")).unwrap();
        fs::write(t.join("die_id"), format!("{die}\n")).unwrap();
        fs::write(t.join("core_id"), format!("{core}\n")).unwrap();
        for (i, (level, id)) in caches.iter().enumerate() {
            let c = root.join(format!("sys/devices/system/cpu/cpu{cpu}/cache/index{i}"));
            fs::create_dir_all(&c).unwrap();
            fs::write(c.join("level"), format!("{level}\n")).unwrap();
            fs::write(c.join("type"), "Unified\n").unwrap();
            fs::write(c.join("id"), format!("{id}\n")).unwrap();
        }
    }

    /// Writes NUMA node `n` holding `cpulist`.
    pub fn node(root: &Path, n: i32, cpulist: &str) {
        let d = root.join(format!("sys/devices/system/node/node{n}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("cpulist"), format!("{cpulist}\n")).unwrap();
    }

    /// Writes the online CPU list.
    pub fn online(root: &Path, list: &str) {
        let d = root.join("sys/devices/system/cpu");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("online"), format!("{list}\n")).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_two_socket_layout() {
        let tree = crate::energy::fake::FakeTree::new("topology");
        let r = tree.root();
        fake::cpu(r, 0, 0, 0, 0, &[(2, 0), (3, 0)]);
        fake::cpu(r, 1, 0, 1, 1, &[(2, 1), (3, 0)]);
        fake::cpu(r, 2, 1, 0, 0, &[(2, 2), (3, 1)]);
        // An instruction cache is ignored; a missing id falls back to the first sharer.
        let c = r.join("sys/devices/system/cpu/cpu2/cache/index2");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("level"), "1\n").unwrap();
        std::fs::write(c.join("type"), "Instruction\n").unwrap();
        let d = r.join("sys/devices/system/cpu/cpu2/cache/index3");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("level"), "1\n").unwrap();
        std::fs::write(d.join("type"), "Data\n").unwrap();
        std::fs::write(d.join("shared_cpu_list"), "2-3\n").unwrap();
        fake::node(r, 0, "0-1");
        fake::node(r, 1, "2");
        let p = places(&tree.sysroot(), &[0, 1, 2, 7]);
        assert_eq!((p[1].socket, p[1].die, p[1].core, p[1].node), (0, 1, 1, 0));
        assert_eq!((p[2].socket, p[2].node), (1, 1));
        assert_eq!(p[2].caches, vec![(1, 2), (2, 2), (3, 1)]);
        assert_eq!(p[0].cache(3), Some(0));
        // CPU 7 has no files at all: socket/die 0, core = its number, node 0.
        assert_eq!((p[3].socket, p[3].die, p[3].core, p[3].node), (0, 0, 7, 0));
        assert_eq!(top_cache_level(&p), Some(3));
    }
}
