//! Event discovery for `ruperf list`: every class ruperf can name, and (with `--available`)
//! whether each one really opens on this machine.

use serde::Serialize;

use crate::counters::event::{self, EventSpec, HARDWARE, SOFTWARE};
use crate::counters::group::{counting_attr, OpenOptions, Target};
use crate::counters::pmu::Pmu;
use crate::counters::{classify_open_error, OpenFailure};
use crate::energy::nvml::NvmlSource;
use crate::energy::rapl::{self, RaplSource};
use crate::energy::Source;
use crate::error::Error;
use crate::os::sys;
use crate::sysroot::Sysroot;

/// The class an entry is listed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListClass {
    /// Generalized hardware events.
    Hardware,
    /// Kernel software events.
    Software,
    /// Generalized hardware-cache events.
    HwCache,
    /// Raw event syntax.
    Raw,
    /// sysfs PMU events.
    Pmu,
    /// Tracepoints.
    Tracepoint,
    /// RAPL energy domains.
    Rapl,
    /// NVIDIA GPUs.
    Nvml,
}

impl ListClass {
    /// perf's bracketed label.
    pub fn label(self) -> &'static str {
        match self {
            ListClass::Hardware => "Hardware event",
            ListClass::Software => "Software event",
            ListClass::HwCache => "Hardware cache event",
            ListClass::Raw => "Raw hardware event descriptor",
            ListClass::Pmu => "Kernel PMU event",
            ListClass::Tracepoint => "Tracepoint event",
            ListClass::Rapl => "Energy: RAPL domain",
            ListClass::Nvml => "Energy: NVIDIA GPU",
        }
    }

    /// The class named by a filter word, as perf accepts them.
    pub fn from_filter(word: &str) -> Option<ListClass> {
        Some(match word {
            "hw" | "hardware" => ListClass::Hardware,
            "sw" | "software" => ListClass::Software,
            "cache" | "hwcache" => ListClass::HwCache,
            "raw" => ListClass::Raw,
            "pmu" => ListClass::Pmu,
            "tracepoint" | "tp" => ListClass::Tracepoint,
            "rapl" => ListClass::Rapl,
            "nvml" | "gpu" => ListClass::Nvml,
            _ => return None,
        })
    }
}

/// Whether an entry really works here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Availability {
    /// True when it opened (and, for energy, read).
    pub supported: bool,
    /// Why not, with the fix where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One listed event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    /// The name to pass to `-e`.
    pub name: String,
    /// Other accepted spellings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Its class.
    pub class: ListClass,
    /// Description, where the kernel or ruperf has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    /// Unit of scaled values (sysfs `.unit`, or Joules for energy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Scale applied to raw counts (sysfs `.scale`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Set with `--available`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<Availability>,
}

impl Listed {
    fn new(name: impl Into<String>, class: ListClass) -> Self {
        Listed {
            name: name.into(),
            aliases: Vec::new(),
            class,
            desc: None,
            unit: None,
            scale: None,
            available: None,
        }
    }
}

/// Something a class could not be listed from, with the fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// The class that is missing entries.
    pub class: ListClass,
    /// Why, and how to fix it.
    pub text: String,
    /// True when the class is there but this user may not read it (exit 77, not 69).
    #[serde(skip)]
    pub denied: bool,
}

/// What the listing found, plus notes on what could not be looked at.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Listing {
    /// Entries in class order.
    pub events: Vec<Listed>,
    /// Things that could not be listed (e.g. tracefs not mounted), with the fix.
    pub notes: Vec<Note>,
}

fn table_entries(table: &[(&str, u32)], class: ListClass) -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    for (name, cfg) in table {
        if let Some(prev) = out
            .last_mut()
            .filter(|p| table.iter().any(|(n, c)| *n == p.name && c == cfg))
        {
            prev.aliases.push(name.to_string());
        } else {
            out.push(Listed::new(*name, class));
        }
    }
    out
}

/// Every counter-class event this machine names. Energy entries are added by the caller.
pub fn discover(root: &Sysroot, classes: &[ListClass]) -> Listing {
    let want = |c| classes.is_empty() || classes.contains(&c);
    let mut l = Listing::default();
    if want(ListClass::Hardware) {
        l.events
            .extend(table_entries(HARDWARE, ListClass::Hardware));
    }
    if want(ListClass::Software) {
        l.events
            .extend(table_entries(SOFTWARE, ListClass::Software));
    }
    if want(ListClass::HwCache) {
        l.events.extend(
            event::cache_event_names()
                .into_iter()
                .map(|n| Listed::new(n, ListClass::HwCache)),
        );
    }
    if want(ListClass::Raw) {
        let mut r = Listed::new("rNNN", ListClass::Raw);
        r.desc = Some("raw PMU config in hex, e.g. r003c".into());
        l.events.push(r);
        let mut p = Listed::new("pmu/term=value[,term=value...]/modifier", ListClass::Raw);
        p.desc = Some(
            "terms placed through the PMU's format/ files, e.g. cpu/event=0x3c,umask=0/".into(),
        );
        l.events.push(p);
    }
    if want(ListClass::Pmu) {
        for p in Pmu::all(root) {
            for e in &p.events {
                let mut x = Listed::new(format!("{}/{}/", p.name, e.name), ListClass::Pmu);
                x.desc = e.desc.clone();
                x.unit = e.unit.clone();
                x.scale = (e.scale != 1.0).then_some(e.scale);
                l.events.push(x);
            }
        }
    }
    if want(ListClass::Tracepoint) {
        match event::tracefs_events(root) {
            Ok(dir) => {
                let mut names = Vec::with_capacity(4096);
                for sub in sorted_dirs(&dir) {
                    // Only ftrace's own internal entries can lack an `id` (and so cannot be
                    // opened); looking every id up would double the listing's cost, since
                    // tracefs creates each inode on lookup.
                    let check_id = sub == "ftrace";
                    for ev in sorted_dirs(&dir.join(&sub)) {
                        if !check_id || dir.join(&sub).join(&ev).join("id").exists() {
                            names.push(format!("{sub}:{ev}"));
                        }
                    }
                }
                l.events.extend(
                    names
                        .into_iter()
                        .map(|n| Listed::new(n, ListClass::Tracepoint)),
                );
            }
            Err(e) => l.notes.push(Note {
                class: ListClass::Tracepoint,
                text: e.to_string(),
                denied: matches!(e, crate::error::Error::Permission(_)),
            }),
        }
    }
    l
}

/// RAPL domains as each interface sees them, and NVIDIA GPUs. Interfaces that do not work
/// add one note each, with the reason and the fix.
pub fn discover_energy(
    root: &Sysroot,
    nvml_lib: Option<&std::path::Path>,
    classes: &[ListClass],
) -> Listing {
    let want = |c| classes.is_empty() || classes.contains(&c);
    let mut l = Listing::default();
    let mut add = |d: &crate::energy::Domain, class, desc: String| {
        let mut x = Listed::new(d.name.clone(), class);
        x.desc = Some(desc);
        x.unit = Some("Joules".into());
        l.events.push(x);
    };
    if want(ListClass::Rapl) {
        let mut missing = Vec::new();
        for kind in RaplSource::ORDER {
            match rapl::open(root, Some(kind)) {
                Ok(o) => {
                    for d in &crate::energy::selectable_domains(o.source.domains()) {
                        add(d, ListClass::Rapl, format!("read through {}", kind.name()));
                    }
                }
                Err(reasons) => missing.push(reasons.join("; ")),
            }
        }
        if !missing.is_empty() {
            l.notes.push(Note {
                class: ListClass::Rapl,
                text: format!("rapl: {}", missing.join("; ")),
                denied: false,
            });
        }
    }
    if want(ListClass::Nvml) {
        match NvmlSource::open(nvml_lib) {
            Ok(src) => {
                for (d, name) in src.domains().iter().zip(src.names()) {
                    add(d, ListClass::Nvml, format!("{name}, read through NVML"));
                }
            }
            Err(why) => l.notes.push(Note {
                class: ListClass::Nvml,
                text: why,
                denied: false,
            }),
        }
    }
    l
}

fn sorted_dirs(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Keeps the entries whose name (or an alias) matches `pattern`: a glob when it has `*` or
/// `?`, otherwise a substring.
pub fn filter(events: &mut Vec<Listed>, pattern: &str) {
    let glob = pattern.contains(['*', '?']);
    let hit = |n: &str| {
        if glob {
            event::glob_match(pattern, n)
        } else {
            n.contains(pattern)
        }
    };
    events.retain(|e| hit(&e.name) || e.aliases.iter().any(|a| hit(a)));
}

/// Tracepoints probed one by one at most; above this, one per subsystem.
pub const TRACEPOINT_PROBE_LIMIT: usize = 200;

/// Opens each counter entry briefly and records whether it works.
///
/// Closing a tracepoint event makes the kernel wait for an RCU grace period under a global
/// mutex (~30 ms in a VM), so probing all of a machine's ~2000 tracepoints would take over a
/// minute. Up to [`TRACEPOINT_PROBE_LIMIT`] tracepoints are each opened; beyond that, the
/// first tracepoint of each subsystem is opened and the others carry its result, saying so.
pub fn probe(events: &mut [Listed], root: &Sysroot) {
    let tracepoints = events
        .iter()
        .filter(|e| e.class == ListClass::Tracepoint)
        .count();
    let per_subsystem = tracepoints > TRACEPOINT_PROBE_LIMIT;
    let mut subsystem: Option<(String, String, Availability)> = None;
    for e in events.iter_mut() {
        if per_subsystem && e.class == ListClass::Tracepoint {
            let sub = e.name.split(':').next().unwrap_or("").to_string();
            match &subsystem {
                Some((s, via, av)) if *s == sub => {
                    let mut av = av.clone();
                    let note = format!("probed through {via}");
                    av.reason = Some(match av.reason {
                        Some(r) => format!("{r}; {note}"),
                        None => note,
                    });
                    e.available = Some(av);
                }
                _ => {
                    probe_one(e, root);
                    let av = e.available.clone().unwrap_or(Availability {
                        supported: false,
                        reason: None,
                    });
                    subsystem = Some((sub, e.name.clone(), av));
                }
            }
        } else {
            probe_one(e, root);
        }
    }
}

fn probe_one(e: &mut Listed, root: &Sysroot) {
    if matches!(e.class, ListClass::Rapl | ListClass::Nvml) {
        // Energy entries are listed only when their interface opened and read.
        e.available = Some(Availability {
            supported: true,
            reason: None,
        });
        return;
    }
    if e.available.is_some() || e.class == ListClass::Raw {
        return;
    }
    e.available = Some(match event::parse_events(&e.name, root) {
        Err(err) => Availability {
            supported: false,
            reason: Some(err.to_string()),
        },
        Ok(list) => match list.counters().next() {
            Some(spec) => try_open(spec, root),
            None => Availability {
                supported: false,
                reason: Some("not a counter event".into()),
            },
        },
    });
}

fn try_open(spec: &EventSpec, root: &Sysroot) -> Availability {
    // PMUs with a cpumask count system-wide on one of their CPUs; everything else on ourselves.
    let (target, pid, cpu) = match &spec.cpus {
        Some(c) => (
            Target::Cpus(c.clone()),
            -1,
            c.first().copied().unwrap_or(0) as i32,
        ),
        None => (Target::Tids(vec![0]), 0, -1),
    };
    let attr = counting_attr(spec, &target, false, OpenOptions { inherit: false });
    let result = sys::perf_event_open(&attr, pid, cpu, None);
    if let Err(e) = &result {
        if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) && spec.cpus.is_none()
        {
            // As stat would: retry user-space only.
            let attr = counting_attr(
                &spec.user_only(),
                &target,
                false,
                OpenOptions { inherit: false },
            );
            if sys::perf_event_open(&attr, pid, cpu, None).is_ok() {
                return Availability {
                    supported: true,
                    reason: Some("user space only (:u): kernel profiling is not permitted".into()),
                };
            }
        }
    }
    match &result {
        Ok(_) => Availability {
            supported: true,
            reason: None,
        },
        Err(e) => {
            let why = match classify_open_error(&spec.name, e, root, "this process") {
                OpenFailure::NotSupported(w) => w,
                OpenFailure::Fatal(err) => err.to_string(),
            };
            Availability {
                supported: false,
                reason: Some(why),
            }
        }
    }
}

/// The classes a filter word selects, or None when it is a name pattern.
pub fn classes_for(word: &str) -> Option<Vec<ListClass>> {
    if word == "energy" {
        return Some(vec![ListClass::Rapl, ListClass::Nvml]);
    }
    ListClass::from_filter(word).map(|c| vec![c])
}

/// Error for a filter that matched nothing.
pub fn no_match(filter: &str) -> Error {
    Error::Failed(format!(
        "no event matches '{filter}' (classes: hw, sw, cache, raw, pmu, tracepoint, rapl, nvml, energy; \
         or a glob such as 'sched:*', or a substring)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_fold_into_one_entry() {
        let sw = table_entries(SOFTWARE, ListClass::Software);
        let cs = sw.iter().find(|e| e.name == "context-switches").unwrap();
        assert_eq!(cs.aliases, ["cs"]);
        let hw = table_entries(HARDWARE, ListClass::Hardware);
        assert!(hw
            .iter()
            .any(|e| e.name == "cpu-cycles" && e.aliases == ["cycles"]));
    }

    #[test]
    fn filters() {
        let mut v = vec![
            Listed::new("sched:sched_switch", ListClass::Tracepoint),
            Listed::new("syscalls:sys_enter_write", ListClass::Tracepoint),
        ];
        filter(&mut v, "sched:*");
        assert_eq!(v.len(), 1);
        let mut v = vec![Listed::new(
            "syscalls:sys_enter_write",
            ListClass::Tracepoint,
        )];
        filter(&mut v, "enter_wr");
        assert_eq!(v.len(), 1);
        assert_eq!(classes_for("sw"), Some(vec![ListClass::Software]));
        assert_eq!(classes_for("sched"), None);
    }

    #[test]
    fn probe_marks_task_clock_supported() {
        let root = Sysroot::default();
        let mut v = table_entries(SOFTWARE, ListClass::Software);
        probe(&mut v, &root);
        let tc = v.iter().find(|e| e.name == "task-clock").unwrap();
        assert!(tc.available.as_ref().unwrap().supported, "{tc:?}");
    }
}
