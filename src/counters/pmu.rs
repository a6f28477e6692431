//! sysfs PMU discovery: `/sys/bus/event_source/devices/<pmu>/{type,format/,events/,cpumask}`.
//!
//! Parsers are pure functions over the files' text; [`Pmu::load`] reads a PMU under a
//! [`Sysroot`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::sysroot::Sysroot;

/// Where PMUs live under the root.
pub const DEVICES: &str = "/sys/bus/event_source/devices";

/// One bit range of a format field: `config:0-7` → (Config, 0, 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitRange {
    /// Which attr word receives the bits.
    pub word: ConfigWord,
    /// Lowest bit.
    pub lo: u32,
    /// Highest bit (inclusive).
    pub hi: u32,
}

/// The perf_event_attr word a format field writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigWord {
    /// `config`
    Config,
    /// `config1`
    Config1,
    /// `config2`
    Config2,
    /// `config3`
    Config3,
}

/// Parses a format file such as `config:0-7,32-35` or `config1:9`.
pub fn parse_format(text: &str) -> Option<Vec<BitRange>> {
    let (word, ranges) = text.trim().split_once(':')?;
    let word = match word {
        "config" => ConfigWord::Config,
        "config1" => ConfigWord::Config1,
        "config2" => ConfigWord::Config2,
        "config3" => ConfigWord::Config3,
        _ => return None,
    };
    let mut out = Vec::new();
    for r in ranges.split(',') {
        let (lo, hi) = match r.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let b: u32 = r.trim().parse().ok()?;
                (b, b)
            }
        };
        if lo > hi || hi > 63 {
            return None;
        }
        out.push(BitRange { word, lo, hi });
    }
    Some(out)
}

/// Spreads `value` over the bit ranges, low bits first (as the kernel's format attributes
/// describe). Returns None when the value does not fit.
pub fn place_bits(ranges: &[BitRange], mut value: u64, words: &mut [u64; 4]) -> Option<()> {
    for r in ranges {
        let width = r.hi - r.lo + 1;
        let mask = if width == 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        let part = value & mask;
        value = if width == 64 { 0 } else { value >> width };
        words[r.word as usize] |= part << r.lo;
    }
    (value == 0).then_some(())
}

/// Parses a term list `event=0x3c,umask=0x1,edge` into (name, value) pairs; a bare term is 1.
pub fn parse_terms(text: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for t in text
        .trim()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        match t.split_once('=') {
            Some((k, v)) => out.push((k.trim().to_string(), Some(v.trim().to_string()))),
            None => out.push((t.to_string(), None)),
        }
    }
    Some(out)
}

/// Parses a number as perf accepts it: decimal or 0x-prefixed hex.
pub fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// Parses a CPU list such as `0-3,8,10-11`.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text
        .trim()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 1 << 16 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// A named event alias a PMU publishes in `events/`.
#[derive(Debug, Clone, PartialEq)]
pub struct PmuEvent {
    /// File name, e.g. `energy-pkg`.
    pub name: String,
    /// The alias text, e.g. `event=0x02`.
    pub terms: String,
    /// Multiply raw counts by this (from `<name>.scale`), 1.0 if absent.
    pub scale: f64,
    /// Unit of scaled counts (from `<name>.unit`).
    pub unit: Option<String>,
    /// Description if the PMU gives one.
    pub desc: Option<String>,
}

/// A PMU found in sysfs.
#[derive(Debug, Clone, PartialEq)]
pub struct Pmu {
    /// Directory name, e.g. `msr`, `power`, `cpu`.
    pub name: String,
    /// perf_event_attr.type for it.
    pub type_id: u32,
    /// Format fields: term name → bit ranges.
    pub formats: BTreeMap<String, Vec<BitRange>>,
    /// Event aliases, sorted by name.
    pub events: Vec<PmuEvent>,
    /// CPUs to open system-wide events on (from `cpumask`), if the PMU says.
    pub cpumask: Option<Vec<u32>>,
}

impl Pmu {
    /// Reads one PMU under the root.
    pub fn load(root: &Sysroot, name: &str) -> Option<Pmu> {
        let dir = root.path(DEVICES).join(name);
        let type_id = std::fs::read_to_string(dir.join("type"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let mut formats = BTreeMap::new();
        for (fname, path) in list_dir(dir.join("format")) {
            if let Some(r) = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| parse_format(&t))
            {
                formats.insert(fname, r);
            }
        }
        let mut events = Vec::new();
        for (ename, path) in list_dir(dir.join("events")) {
            if ename.contains('.') {
                continue;
            }
            let Ok(terms) = std::fs::read_to_string(&path) else {
                continue;
            };
            let side = |ext: &str| {
                std::fs::read_to_string(dir.join("events").join(format!("{ename}.{ext}")))
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            events.push(PmuEvent {
                scale: side("scale").and_then(|s| s.parse().ok()).unwrap_or(1.0),
                unit: side("unit"),
                desc: side("desc"),
                terms: terms.trim().to_string(),
                name: ename,
            });
        }
        events.sort_by(|a, b| a.name.cmp(&b.name));
        let cpumask = ["cpumask", "cpus"].iter().find_map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).ok()?;
            parse_cpu_list(&text).filter(|v| !v.is_empty())
        });
        Some(Pmu {
            name: name.to_string(),
            type_id,
            formats,
            events,
            cpumask,
        })
    }

    /// Names of every PMU under the root, sorted.
    pub fn names(root: &Sysroot) -> Vec<String> {
        let mut v: Vec<String> = list_dir(root.path(DEVICES))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        v.sort();
        v
    }

    /// Every PMU under the root.
    pub fn all(root: &Sysroot) -> Vec<Pmu> {
        Self::names(root)
            .iter()
            .filter_map(|n| Pmu::load(root, n))
            .collect()
    }

    /// The event alias with this name.
    pub fn event(&self, name: &str) -> Option<&PmuEvent> {
        self.events.iter().find(|e| e.name == name)
    }
}

fn list_dir(dir: PathBuf) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .collect()
}

/// The CPUs the kernel reports online (`/sys/devices/system/cpu/online`).
pub fn online_cpus(root: &Sysroot) -> Vec<u32> {
    root.read_trimmed("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|t| parse_cpu_list(&t))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n as u32).collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_place() {
        let f = parse_format("config:0-7,32-35\n").unwrap();
        assert_eq!(f.len(), 2);
        let mut w = [0u64; 4];
        place_bits(&f, 0xabc, &mut w).unwrap();
        assert_eq!(w[0], 0xbc | (0xa << 32));
        let f1 = parse_format("config1:9").unwrap();
        let mut w = [0u64; 4];
        place_bits(&f1, 1, &mut w).unwrap();
        assert_eq!(w[1], 1 << 9);
        assert!(place_bits(&f1, 2, &mut [0u64; 4]).is_none());
        let full = parse_format("config:0-63").unwrap();
        let mut w = [0u64; 4];
        place_bits(&full, u64::MAX, &mut w).unwrap();
        assert_eq!(w[0], u64::MAX);
        assert!(parse_format("bogus:1-2").is_none());
        assert!(parse_format("config:9-2").is_none());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8\n"), Some(vec![0, 1, 2, 3, 8]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert!(parse_cpu_list("a-b").is_none());
    }

    #[test]
    fn numbers_and_terms() {
        assert_eq!(parse_num("0x3c"), Some(0x3c));
        assert_eq!(parse_num("17"), Some(17));
        assert_eq!(parse_num("zz"), None);
        let t = parse_terms("event=0x3c,umask=0x1,edge").unwrap();
        assert_eq!(t[2], ("edge".to_string(), None));
    }

    #[test]
    fn loads_fake_power_pmu() {
        let dir = std::env::temp_dir().join(format!("ruperf-pmu-{}", std::process::id()));
        let p = dir.join("sys/bus/event_source/devices/power");
        std::fs::create_dir_all(p.join("events")).unwrap();
        std::fs::create_dir_all(p.join("format")).unwrap();
        std::fs::write(p.join("type"), "23\n").unwrap();
        std::fs::write(p.join("cpumask"), "0,4\n").unwrap();
        std::fs::write(p.join("format/event"), "config:0-7\n").unwrap();
        std::fs::write(p.join("events/energy-pkg"), "event=0x02\n").unwrap();
        std::fs::write(
            p.join("events/energy-pkg.scale"),
            "2.3283064365386962890625e-10\n",
        )
        .unwrap();
        std::fs::write(p.join("events/energy-pkg.unit"), "Joules\n").unwrap();
        let root = Sysroot::new(&dir);
        let pmu = Pmu::load(&root, "power").unwrap();
        assert_eq!(pmu.type_id, 23);
        assert_eq!(pmu.cpumask, Some(vec![0, 4]));
        let e = pmu.event("energy-pkg").unwrap();
        assert_eq!(e.scale, 2f64.powi(-32));
        assert_eq!(e.unit.as_deref(), Some("Joules"));
        assert_eq!(Pmu::names(&root), vec!["power".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
