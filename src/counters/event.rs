//! The event grammar, as perf users type it.
//!
//! ```text
//! list     := item (',' item)*
//! item     := '{' event (',' event)* '}' [':' modifiers] | event
//! event    := symbolic [':' modifiers]          cycles, task-clock, L1-dcache-load-misses
//!           | 'r' HEX [':' modifiers]            raw PMU config, e.g. r003c
//!           | pmu '/' terms '/' [':' modifiers]  msr/tsc/, cpu/event=0x3c,umask=0/
//!           | subsys ':' name [':' modifiers]    syscalls:sys_enter_write, sched:* (globs)
//!           | energy                             rapl, rapl/pkg:0, nvml/0, energy
//! modifiers := [ukhGHpD]+
//! ```
//! Parsing resolves names against sysfs and tracefs under a [`Sysroot`], producing
//! [`EventSpec`]s that carry everything perf_event_open needs. Energy names are passed through
//! as [`Entry::Energy`] for the energy module to interpret.

use std::path::PathBuf;

use perf_event_open_sys::bindings as b;
use serde::Serialize;

use super::pmu::{self, Pmu};
use crate::error::{Error, Result};
use crate::os::sys;
use crate::sysroot::Sysroot;

/// The family an event belongs to (what `ruperf list` groups by).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventClass {
    /// Generalized hardware event (PERF_TYPE_HARDWARE).
    Hardware,
    /// Kernel software event (PERF_TYPE_SOFTWARE).
    Software,
    /// Generalized cache event (PERF_TYPE_HW_CACHE).
    HwCache,
    /// Raw PMU config (PERF_TYPE_RAW).
    Raw,
    /// A sysfs PMU event.
    Pmu,
    /// A tracepoint.
    Tracepoint,
}

/// A fully resolved counter event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSpec {
    /// Name as perf prints it (the spelling the user typed, with modifiers).
    pub name: String,
    /// Family of the event.
    pub class: EventClass,
    /// perf_event_attr.type
    pub attr_type: u32,
    /// perf_event_attr.config
    pub config: u64,
    /// perf_event_attr.config1
    pub config1: u64,
    /// perf_event_attr.config2
    pub config2: u64,
    /// Do not count user space.
    pub exclude_user: bool,
    /// Do not count the kernel.
    pub exclude_kernel: bool,
    /// Do not count the hypervisor.
    pub exclude_hv: bool,
    /// Do not count the host (`:G`).
    pub exclude_host: bool,
    /// Do not count guests (`:H`).
    pub exclude_guest: bool,
    /// Skid constraint (`:p`, `:pp`, `:ppp`).
    pub precise_ip: u8,
    /// Pinned on the PMU (`:D`).
    pub pinned: bool,
    /// True when the user chose u/k/h explicitly (no automatic `:u` fallback then).
    pub explicit_privilege: bool,
    /// Multiply raw counts by this to get `unit`s (sysfs `.scale`).
    pub scale: f64,
    /// Unit of scaled counts (sysfs `.unit`), if any.
    pub unit: Option<String>,
    /// CPUs the PMU requires system-wide events on (sysfs `cpumask`).
    pub cpus: Option<Vec<u32>>,
}

impl EventSpec {
    fn new(name: String, class: EventClass, attr_type: u32, config: u64) -> Self {
        EventSpec {
            name,
            class,
            attr_type,
            config,
            config1: 0,
            config2: 0,
            exclude_user: false,
            exclude_kernel: false,
            exclude_hv: false,
            exclude_host: false,
            exclude_guest: false,
            precise_ip: 0,
            pinned: false,
            explicit_privilege: false,
            scale: 1.0,
            unit: None,
            cpus: None,
        }
    }

    /// A perf_event_attr with type, config words and privilege bits set; everything else zero.
    pub fn to_attr(&self) -> sys::Attr {
        let mut a = sys::new_attr();
        a.type_ = self.attr_type;
        a.config = self.config;
        a.config1 = self.config1;
        a.config2 = self.config2;
        a.set_exclude_user(self.exclude_user as u64);
        a.set_exclude_kernel(self.exclude_kernel as u64);
        a.set_exclude_hv(self.exclude_hv as u64);
        a.set_exclude_host(self.exclude_host as u64);
        a.set_exclude_guest(self.exclude_guest as u64);
        a.set_precise_ip(self.precise_ip as u64);
        a.set_pinned(self.pinned as u64);
        a
    }

    /// True for task-clock and cpu-clock, whose counts are nanoseconds.
    pub fn is_clock(&self) -> bool {
        self.attr_type == b::PERF_TYPE_SOFTWARE
            && (self.config == b::PERF_COUNT_SW_TASK_CLOCK as u64
                || self.config == b::PERF_COUNT_SW_CPU_CLOCK as u64)
    }

    /// The same event restricted to user space, named with `:u` as perf does when the
    /// kernel refuses kernel profiling.
    pub fn user_only(&self) -> EventSpec {
        let mut e = self.clone();
        e.exclude_kernel = true;
        e.exclude_hv = true;
        e.name = format!("{}:u", self.name);
        e
    }
}

/// One entry of an event list, in the order the user gave.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Entry {
    /// Counter events; a braced `{a,b}` group is scheduled together, otherwise one event.
    Group {
        /// Members, leader first.
        events: Vec<EventSpec>,
        /// True for `{...}` groups.
        braced: bool,
    },
    /// An energy name (`rapl`, `rapl/pkg:0`, `nvml/0`, `energy`) for the energy module.
    Energy(String),
}

/// A parsed event list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventList {
    /// Entries in the user's order.
    pub entries: Vec<Entry>,
}

impl EventList {
    /// Every counter event, in order.
    pub fn counters(&self) -> impl Iterator<Item = &EventSpec> {
        self.entries.iter().flat_map(|e| match e {
            Entry::Group { events, .. } => events.as_slice(),
            Entry::Energy(_) => &[],
        })
    }

    /// Every energy name, in order.
    pub fn energy(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Energy(s) => Some(s.as_str()),
            Entry::Group { .. } => None,
        })
    }

    /// True when nothing was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Generalized hardware events: perf's names and aliases.
pub const HARDWARE: &[(&str, u32)] = &[
    ("cpu-cycles", b::PERF_COUNT_HW_CPU_CYCLES),
    ("cycles", b::PERF_COUNT_HW_CPU_CYCLES),
    ("instructions", b::PERF_COUNT_HW_INSTRUCTIONS),
    ("cache-references", b::PERF_COUNT_HW_CACHE_REFERENCES),
    ("cache-misses", b::PERF_COUNT_HW_CACHE_MISSES),
    ("branch-instructions", b::PERF_COUNT_HW_BRANCH_INSTRUCTIONS),
    ("branches", b::PERF_COUNT_HW_BRANCH_INSTRUCTIONS),
    ("branch-misses", b::PERF_COUNT_HW_BRANCH_MISSES),
    ("bus-cycles", b::PERF_COUNT_HW_BUS_CYCLES),
    (
        "stalled-cycles-frontend",
        b::PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
    ),
    (
        "idle-cycles-frontend",
        b::PERF_COUNT_HW_STALLED_CYCLES_FRONTEND,
    ),
    (
        "stalled-cycles-backend",
        b::PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
    ),
    (
        "idle-cycles-backend",
        b::PERF_COUNT_HW_STALLED_CYCLES_BACKEND,
    ),
    ("ref-cycles", b::PERF_COUNT_HW_REF_CPU_CYCLES),
];

/// Kernel software events: perf's names and aliases.
pub const SOFTWARE: &[(&str, u32)] = &[
    ("cpu-clock", b::PERF_COUNT_SW_CPU_CLOCK),
    ("task-clock", b::PERF_COUNT_SW_TASK_CLOCK),
    ("page-faults", b::PERF_COUNT_SW_PAGE_FAULTS),
    ("faults", b::PERF_COUNT_SW_PAGE_FAULTS),
    ("context-switches", b::PERF_COUNT_SW_CONTEXT_SWITCHES),
    ("cs", b::PERF_COUNT_SW_CONTEXT_SWITCHES),
    ("cpu-migrations", b::PERF_COUNT_SW_CPU_MIGRATIONS),
    ("migrations", b::PERF_COUNT_SW_CPU_MIGRATIONS),
    ("minor-faults", b::PERF_COUNT_SW_PAGE_FAULTS_MIN),
    ("major-faults", b::PERF_COUNT_SW_PAGE_FAULTS_MAJ),
    ("alignment-faults", b::PERF_COUNT_SW_ALIGNMENT_FAULTS),
    ("emulation-faults", b::PERF_COUNT_SW_EMULATION_FAULTS),
    ("dummy", b::PERF_COUNT_SW_DUMMY),
    ("bpf-output", b::PERF_COUNT_SW_BPF_OUTPUT),
    ("cgroup-switches", b::PERF_COUNT_SW_CGROUP_SWITCHES),
];

/// Cache names (first is perf's canonical spelling) and their PERF_COUNT_HW_CACHE_* id.
pub const CACHES: &[(&[&str], u32)] = &[
    (
        &["L1-dcache", "l1-d", "l1d", "L1-data"],
        b::PERF_COUNT_HW_CACHE_L1D,
    ),
    (
        &["L1-icache", "l1-i", "l1i", "L1-instruction"],
        b::PERF_COUNT_HW_CACHE_L1I,
    ),
    (&["LLC", "L2"], b::PERF_COUNT_HW_CACHE_LL),
    (&["dTLB", "d-tlb", "Data-TLB"], b::PERF_COUNT_HW_CACHE_DTLB),
    (
        &["iTLB", "i-tlb", "Instruction-TLB"],
        b::PERF_COUNT_HW_CACHE_ITLB,
    ),
    (
        &["branch", "branches", "bpu", "btb", "bpc"],
        b::PERF_COUNT_HW_CACHE_BPU,
    ),
    (&["node"], b::PERF_COUNT_HW_CACHE_NODE),
];

const CACHE_OPS: &[(&[&str], u32)] = &[
    (&["load", "loads", "read"], b::PERF_COUNT_HW_CACHE_OP_READ),
    (
        &["store", "stores", "write"],
        b::PERF_COUNT_HW_CACHE_OP_WRITE,
    ),
    (
        &[
            "prefetch",
            "prefetches",
            "speculative-read",
            "speculative-load",
        ],
        b::PERF_COUNT_HW_CACHE_OP_PREFETCH,
    ),
];

const CACHE_RESULTS: &[(&[&str], u32)] = &[
    (
        &["refs", "Reference", "ops", "access"],
        b::PERF_COUNT_HW_CACHE_RESULT_ACCESS,
    ),
    (
        &["misses", "miss", "Miss"],
        b::PERF_COUNT_HW_CACHE_RESULT_MISS,
    ),
];

/// The hardware-cache events perf lists: `<cache>-<op>s` and `<cache>-<op>-misses`, for the
/// combinations the generic tables allow.
pub fn cache_event_names() -> Vec<String> {
    let mut v = Vec::new();
    for (names, id) in CACHES {
        for (op_names, op) in CACHE_OPS {
            if !cache_combination_exists(*id, *op) {
                continue;
            }
            v.push(format!("{}-{}", names[0], op_names[1]));
            v.push(format!("{}-{}-misses", names[0], op_names[0]));
        }
    }
    v
}

fn cache_combination_exists(cache: u32, op: u32) -> bool {
    // perf lists only the combinations that make sense: instruction caches and the branch
    // predictor are read-only; prefetch applies to data caches.
    match cache {
        x if x == b::PERF_COUNT_HW_CACHE_L1I
            || x == b::PERF_COUNT_HW_CACHE_ITLB
            || x == b::PERF_COUNT_HW_CACHE_BPU =>
        {
            op == b::PERF_COUNT_HW_CACHE_OP_READ
        }
        x if x == b::PERF_COUNT_HW_CACHE_DTLB || x == b::PERF_COUNT_HW_CACHE_NODE => {
            op != b::PERF_COUNT_HW_CACHE_OP_PREFETCH
        }
        _ => true,
    }
}

/// The energy keywords the grammar passes through to the energy module.
pub const ENERGY_KEYWORDS: &[&str] = &["rapl", "nvml", "energy"];

/// Parses one or more `-e` arguments into one list.
pub fn parse_event_args(args: &[String], root: &Sysroot) -> Result<EventList> {
    let mut out = EventList::default();
    for a in args {
        out.entries.extend(parse_events(a, root)?.entries);
    }
    if out.entries.is_empty() {
        return Err(Error::Event(
            "empty event list: give events with -e, e.g. -e task-clock,page-faults (see `ruperf list`)".into(),
        ));
    }
    Ok(out)
}

/// Parses an event list string (`-e` argument).
pub fn parse_events(list: &str, root: &Sysroot) -> Result<EventList> {
    let mut resolver = Resolver::new(root);
    let mut entries = Vec::new();
    for item in split_top(list)? {
        let item = item.trim();
        if item.is_empty() {
            return Err(Error::Event(format!(
                "empty event in list '{list}': remove the stray comma"
            )));
        }
        if let Some(rest) = item.strip_prefix('{') {
            let close = rest.rfind('}').ok_or_else(|| {
                Error::Event(format!(
                    "unbalanced '{{' in '{item}': close the group with '}}'"
                ))
            })?;
            let (inner, after) = (&rest[..close], &rest[close + 1..]);
            let group_mods = match after {
                "" => None,
                m => Some(m.strip_prefix(':').ok_or_else(|| {
                    Error::Event(format!(
                        "unexpected '{m}' after group '{item}': use {{a,b}}:u for modifiers"
                    ))
                })?),
            };
            let mut events = Vec::new();
            for member in split_top(inner)? {
                let member = member.trim();
                if member.is_empty() {
                    return Err(Error::Event(format!("empty event in group '{item}'")));
                }
                if member.starts_with('{') {
                    return Err(Error::Event(format!(
                        "nested group in '{item}': groups cannot nest"
                    )));
                }
                if is_energy(member, &mut resolver) {
                    return Err(Error::Event(format!(
                        "'{member}' cannot be in a group: energy is not a perf counter; list it outside {{}}"
                    )));
                }
                for mut ev in resolver.event(member)? {
                    if let Some(m) = group_mods {
                        apply_modifiers(&mut ev, m, item)?;
                        ev.name = format!("{}:{m}", ev.name);
                    }
                    events.push(ev);
                }
            }
            if events.is_empty() {
                return Err(Error::Event(format!("empty group '{item}'")));
            }
            entries.push(Entry::Group {
                events,
                braced: true,
            });
        } else if item.contains('}') {
            return Err(Error::Event(format!("unbalanced '}}' in '{item}'")));
        } else if is_energy(item, &mut resolver) {
            entries.push(Entry::Energy(item.to_string()));
        } else {
            for ev in resolver.event(item)? {
                entries.push(Entry::Group {
                    events: vec![ev],
                    braced: false,
                });
            }
        }
    }
    Ok(EventList { entries })
}

fn is_energy(item: &str, r: &mut Resolver<'_>) -> bool {
    let base = item.split(['/', ':']).next().unwrap_or("");
    ENERGY_KEYWORDS.contains(&base) && r.pmu(base).is_none()
}

/// Splits on commas outside `{}` and outside `pmu/.../` term lists.
fn split_top(s: &str) -> Result<Vec<&str>> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let (mut depth, mut in_terms, mut start) = (0i32, false, 0usize);
    let mut token_start = 0usize;
    for (i, &c) in bytes.iter().enumerate() {
        match c {
            b'{' if !in_terms => depth += 1,
            b'}' if !in_terms => {
                depth -= 1;
                if depth < 0 {
                    return Err(Error::Event(format!("unbalanced '}}' in '{s}'")));
                }
            }
            b'/' => {
                if in_terms {
                    in_terms = false;
                } else {
                    let base = s[token_start..i].trim_start_matches('{');
                    if !ENERGY_KEYWORDS.contains(&base) {
                        in_terms = true;
                    }
                }
            }
            b',' if !in_terms => {
                token_start = i + 1;
                if depth == 0 {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(Error::Event(format!(
            "unbalanced '{{' in '{s}': close the group with '}}'"
        )));
    }
    if in_terms {
        return Err(Error::Event(format!(
            "unterminated PMU term list in '{s}': end it with '/', e.g. msr/tsc/"
        )));
    }
    out.push(&s[start..]);
    Ok(out)
}

/// Applies a modifier string such as `u`, `uk`, `ppp`, `G`, `D`.
fn apply_modifiers(ev: &mut EventSpec, mods: &str, whole: &str) -> Result<()> {
    let (mut u, mut k, mut h) = (false, false, false);
    for c in mods.chars() {
        match c {
            'u' => u = true,
            'k' => k = true,
            'h' => h = true,
            'G' => ev.exclude_host = true,
            'H' => ev.exclude_guest = true,
            'p' => {
                if ev.precise_ip >= 3 {
                    return Err(Error::Event(format!("too many 'p' modifiers in '{whole}': at most :ppp")));
                }
                ev.precise_ip += 1;
            }
            'D' => ev.pinned = true,
            other => {
                return Err(Error::Event(format!(
                    "unknown modifier '{other}' in '{whole}': use u (user), k (kernel), h (hypervisor), G, H, p, D"
                )))
            }
        }
    }
    if u || k || h {
        ev.exclude_user = !u;
        ev.exclude_kernel = !k;
        ev.exclude_hv = !h;
        ev.explicit_privilege = true;
    }
    Ok(())
}

/// Name lookup with lazily loaded PMUs.
struct Resolver<'a> {
    root: &'a Sysroot,
    pmus: Vec<(String, Option<Pmu>)>,
}

impl<'a> Resolver<'a> {
    fn new(root: &'a Sysroot) -> Self {
        Resolver {
            root,
            pmus: Vec::new(),
        }
    }

    fn pmu(&mut self, name: &str) -> Option<&Pmu> {
        if !self.pmus.iter().any(|(n, _)| n == name) {
            let p = if name.is_empty() || name.contains(['.', '\0']) {
                None
            } else {
                Pmu::load(self.root, name)
            };
            self.pmus.push((name.to_string(), p));
        }
        self.pmus
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, p)| p.as_ref())
    }

    /// Resolves one event token (no braces, no commas at top level). Tracepoint globs may
    /// yield several events.
    fn event(&mut self, tok: &str) -> Result<Vec<EventSpec>> {
        // pmu/terms/[:mods]
        if let Some(slash) = tok.find('/') {
            let pmu_name = &tok[..slash];
            let rest = &tok[slash + 1..];
            let end = rest.find('/').ok_or_else(|| {
                Error::Event(format!(
                    "unterminated PMU term list in '{tok}': end it with '/'"
                ))
            })?;
            let terms = &rest[..end];
            let after = &rest[end + 1..];
            let mods = match after {
                "" => None,
                m => Some(m.strip_prefix(':').ok_or_else(|| {
                    Error::Event(format!("unexpected '{m}' after '{pmu_name}/{terms}/'"))
                })?),
            };
            let mut ev = self.pmu_event(tok, pmu_name, terms)?;
            if let Some(m) = mods {
                apply_modifiers(&mut ev, m, tok)?;
            }
            return Ok(vec![ev]);
        }
        let mut parts = tok.splitn(3, ':');
        let first = parts.next().unwrap_or("");
        let second = parts.next();
        let third = parts.next();
        if let Some(mut ev) = symbolic(first, tok)? {
            if third.is_some() {
                return Err(Error::Event(format!("too many ':' in '{tok}'")));
            }
            if let Some(m) = second {
                apply_modifiers(&mut ev, m, tok)?;
            }
            ev.name = tok.to_string();
            return Ok(vec![ev]);
        }
        if let Some(name) = second {
            return self.tracepoints(tok, first, name, third);
        }
        Err(Error::Event(unknown_event_message(first, self.root)))
    }

    fn pmu_event(&mut self, tok: &str, pmu_name: &str, terms: &str) -> Result<EventSpec> {
        let root = self.root.clone();
        let Some(pmu) = self.pmu(pmu_name).cloned() else {
            let names = Pmu::names(&root);
            let hint = suggest(pmu_name, names.iter().map(String::as_str));
            return Err(Error::Event(format!(
                "unknown PMU '{pmu_name}' in '{tok}'{hint} (PMUs are listed in {})",
                pmu::DEVICES
            )));
        };
        let mut ev = EventSpec::new(tok.to_string(), EventClass::Pmu, pmu.type_id, 0);
        ev.cpus = pmu.cpumask.clone();
        let mut words = [0u64; 4];
        let list = pmu::parse_terms(terms).unwrap_or_default();
        if list.is_empty() {
            return Err(Error::Event(format!(
                "empty term list in '{tok}': name an event, e.g. {pmu_name}/{}/",
                pmu.events.first().map_or("event=0x1", |e| e.name.as_str())
            )));
        }
        for (key, val) in list {
            self.apply_term(&pmu, tok, &key, val.as_deref(), &mut words, &mut ev, 0)?;
        }
        ev.config = words[0];
        ev.config1 = words[1];
        ev.config2 = words[2];
        Ok(ev)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_term(
        &self,
        pmu: &Pmu,
        tok: &str,
        key: &str,
        val: Option<&str>,
        words: &mut [u64; 4],
        ev: &mut EventSpec,
        depth: u8,
    ) -> Result<()> {
        let num = |v: Option<&str>| -> Result<u64> {
            match v {
                None => Ok(1),
                Some(s) => pmu::parse_num(s).ok_or_else(|| {
                    Error::Event(format!(
                        "bad value '{s}' for term '{key}' in '{tok}': use decimal or 0x hex"
                    ))
                }),
            }
        };
        match key {
            "config" => words[0] |= num(val)?,
            "config1" => words[1] |= num(val)?,
            "config2" => words[2] |= num(val)?,
            "name" => {
                ev.name = val
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| Error::Event(format!("empty name= in '{tok}'")))?
                    .to_string()
            }
            _ => {
                if let Some(ranges) = pmu.formats.get(key) {
                    let v = num(val)?;
                    pmu::place_bits(ranges, v, words).ok_or_else(|| {
                        Error::Event(format!(
                            "value {v:#x} does not fit term '{key}' of PMU '{}' in '{tok}'",
                            pmu.name
                        ))
                    })?;
                } else if let (Some(alias), None, 0) = (pmu.event(key), val, depth) {
                    ev.scale = alias.scale;
                    ev.unit = alias.unit.clone();
                    for (k, v) in pmu::parse_terms(&alias.terms).unwrap_or_default() {
                        self.apply_term(pmu, tok, &k, v.as_deref(), words, ev, depth + 1)?;
                    }
                } else {
                    let known = pmu
                        .events
                        .iter()
                        .map(|e| e.name.as_str())
                        .chain(pmu.formats.keys().map(String::as_str));
                    let hint = suggest(key, known);
                    return Err(Error::Event(format!(
                        "PMU '{}' has no event or term '{key}' (in '{tok}'){hint}",
                        pmu.name
                    )));
                }
            }
        }
        Ok(())
    }

    fn tracepoints(
        &mut self,
        tok: &str,
        subsys: &str,
        name: &str,
        mods: Option<&str>,
    ) -> Result<Vec<EventSpec>> {
        let events_dir = tracefs_events(self.root)?;
        let mut out = Vec::new();
        let subsystems = matching_dirs(&events_dir, subsys);
        for s in &subsystems {
            for n in matching_dirs(&events_dir.join(s), name) {
                let id_path = events_dir.join(s).join(&n).join("id");
                let Ok(text) = std::fs::read_to_string(&id_path) else {
                    continue;
                };
                let id: u64 = text.trim().parse().map_err(|_| {
                    Error::Data(format!("{}: not a tracepoint id", id_path.display()))
                })?;
                let mut ev = EventSpec::new(
                    format!("{s}:{n}"),
                    EventClass::Tracepoint,
                    b::PERF_TYPE_TRACEPOINT,
                    id,
                );
                if let Some(m) = mods {
                    apply_modifiers(&mut ev, m, tok)?;
                    ev.name = format!("{s}:{n}:{m}");
                }
                out.push(ev);
            }
        }
        if out.is_empty() {
            if subsystems.is_empty() && !subsys.contains(['*', '?']) {
                let hint = {
                    let mut all: Vec<String> = list_names(&events_dir);
                    all.extend(HARDWARE.iter().chain(SOFTWARE).map(|(n, _)| n.to_string()));
                    suggest(subsys, all.iter().map(String::as_str))
                };
                return Err(Error::Event(format!(
                    "unknown event '{tok}': no tracepoint subsystem '{subsys}'{hint} (see `ruperf list tracepoint`)"
                )));
            }
            let candidates: Vec<String> = subsystems
                .iter()
                .flat_map(|s| list_names(&events_dir.join(s)))
                .collect();
            let hint = suggest(name, candidates.iter().map(String::as_str));
            return Err(Error::Event(format!(
                "unknown tracepoint '{tok}'{hint} (see `ruperf list '{subsys}:*'`)"
            )));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Resolves hardware, software, hardware-cache and raw names. `Ok(None)` when `name` is none
/// of those.
fn symbolic(name: &str, tok: &str) -> Result<Option<EventSpec>> {
    if let Some((_, c)) = HARDWARE.iter().find(|(n, _)| *n == name) {
        return Ok(Some(EventSpec::new(
            name.into(),
            EventClass::Hardware,
            b::PERF_TYPE_HARDWARE,
            *c as u64,
        )));
    }
    if let Some((_, c)) = SOFTWARE.iter().find(|(n, _)| *n == name) {
        return Ok(Some(EventSpec::new(
            name.into(),
            EventClass::Software,
            b::PERF_TYPE_SOFTWARE,
            *c as u64,
        )));
    }
    if let Some(cfg) = hw_cache(name) {
        return Ok(Some(EventSpec::new(
            name.into(),
            EventClass::HwCache,
            b::PERF_TYPE_HW_CACHE,
            cfg,
        )));
    }
    if let Some(hex) = name.strip_prefix('r') {
        if !hex.is_empty()
            && hex.len() <= 18
            && hex.chars().all(|c| c.is_ascii_hexdigit() || c == 'x')
        {
            let hex = hex.strip_prefix("0x").unwrap_or(hex);
            let v = u64::from_str_radix(hex, 16).map_err(|_| {
                Error::Event(format!(
                    "bad raw event '{tok}': use r followed by up to 16 hex digits, e.g. r003c"
                ))
            })?;
            return Ok(Some(EventSpec::new(
                name.into(),
                EventClass::Raw,
                b::PERF_TYPE_RAW,
                v,
            )));
        }
    }
    Ok(None)
}

fn lookup(table: &[(&[&str], u32)], s: &str) -> Option<u32> {
    table
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(s)))
        .map(|(_, v)| *v)
}

/// `<cache>[-<op>[-<result>]]` → PERF_TYPE_HW_CACHE config.
fn hw_cache(name: &str) -> Option<u64> {
    // Cache names may themselves contain '-', so try every split point for the cache part.
    for (names, id) in CACHES {
        for n in names.iter() {
            let Some(rest) = name
                .get(..n.len())
                .filter(|p| p.eq_ignore_ascii_case(n))
                .map(|_| &name[n.len()..])
            else {
                continue;
            };
            if rest.is_empty() {
                return Some(cache_config(
                    *id,
                    b::PERF_COUNT_HW_CACHE_OP_READ,
                    b::PERF_COUNT_HW_CACHE_RESULT_ACCESS,
                ));
            }
            let Some(rest) = rest.strip_prefix('-') else {
                continue;
            };
            for (op_names, op) in CACHE_OPS {
                for on in op_names.iter() {
                    let Some(tail) = rest.strip_prefix(on) else {
                        continue;
                    };
                    if tail.is_empty() {
                        return Some(cache_config(*id, *op, b::PERF_COUNT_HW_CACHE_RESULT_ACCESS));
                    }
                    if let Some(res) = tail
                        .strip_prefix('-')
                        .and_then(|r| lookup(CACHE_RESULTS, r))
                    {
                        return Some(cache_config(*id, *op, res));
                    }
                }
            }
            if let Some(res) = lookup(CACHE_RESULTS, rest) {
                return Some(cache_config(*id, b::PERF_COUNT_HW_CACHE_OP_READ, res));
            }
        }
    }
    None
}

fn cache_config(cache: u32, op: u32, result: u32) -> u64 {
    cache as u64 | (op as u64) << 8 | (result as u64) << 16
}

/// The tracefs `events/` directory, mounting tracefs first when we may (root, real system).
pub fn tracefs_events(root: &Sysroot) -> Result<PathBuf> {
    let mut closed = None;
    for cand in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let p = root.path(cand).join("events");
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                closed.get_or_insert(cand);
            }
            _ => {}
        }
    }
    if let Some(dir) = closed {
        return Err(Error::Permission(format!(
            "tracefs is mounted at {dir} but this user may not read it, so tracepoints cannot be \
             found: open it with `sudo mount -o remount,mode=755 {dir}` or run as root"
        )));
    }
    if root.is_host() && nix::unistd::geteuid().is_root() {
        let target = std::path::Path::new("/sys/kernel/tracing");
        let mounted = nix::mount::mount(
            Some("nodev"),
            target,
            Some("tracefs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
        if mounted.is_ok() && target.join("events").is_dir() {
            return Ok(target.join("events"));
        }
    }
    Err(Error::Unavailable(
        "tracefs is not mounted, so tracepoints cannot be found: mount it with \
         `sudo mount -t tracefs nodev /sys/kernel/tracing`"
            .into(),
    ))
}

fn list_names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn matching_dirs(dir: &std::path::Path, pattern: &str) -> Vec<String> {
    if !pattern.contains(['*', '?']) {
        return if dir.join(pattern).is_dir() && !pattern.is_empty() && !pattern.contains('/') {
            vec![pattern.to_string()]
        } else {
            Vec::new()
        };
    }
    let mut v: Vec<String> = list_names(dir)
        .into_iter()
        .filter(|n| glob_match(pattern, n))
        .collect();
    v.sort();
    v
}

/// Shell-style glob with `*` and `?`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn unknown_event_message(name: &str, root: &Sysroot) -> String {
    let mut known: Vec<String> = HARDWARE
        .iter()
        .chain(SOFTWARE)
        .map(|(n, _)| n.to_string())
        .collect();
    known.extend(cache_event_names());
    known.extend(ENERGY_KEYWORDS.iter().map(|s| s.to_string()));
    known.extend(Pmu::names(root).into_iter().map(|p| format!("{p}/")));
    let hint = suggest(name, known.iter().map(String::as_str));
    format!("unknown event '{name}'{hint} (run `ruperf list` for every event)")
}

/// ", did you mean 'x' or 'y'?" for the closest names, or "" when none is close.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let w = word.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| {
            *d <= (w.len().max(c.len()) / 3).max(1)
                || (w.len() >= 3 && c.to_ascii_lowercase().starts_with(&w))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    match scored.as_slice() {
        [] => String::new(),
        [(_, a)] => format!(", did you mean '{a}'?"),
        [(_, a), (_, b), ..] => format!(", did you mean '{a}' or '{b}'?"),
    }
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost 1 (so `cycels` is one step from `cycles`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = (a[i - 1] != b[j - 1]) as usize;
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake tree with an msr PMU, a cpu PMU with formats and aliases, a power PMU and
    /// tracefs with two tracepoints.
    fn fake_root() -> (Sysroot, PathBuf) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ruperf-ev-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let d = dir.join("sys/bus/event_source/devices");
        let w = |p: &str, s: &str| {
            let p = d.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w("msr/type", "9\n");
        w("msr/format/event", "config:0-63\n");
        w("msr/events/tsc", "event=0x00\n");
        w("cpu/type", "4\n");
        w("cpu/format/event", "config:0-7\n");
        w("cpu/format/umask", "config:8-15\n");
        w("cpu/format/edge", "config:18\n");
        w("cpu/format/ldlat", "config1:0-15\n");
        w("cpu/events/cycles-t", "event=0x3c,in_tx=1\n");
        w("cpu/events/mem-loads", "event=0xcd,umask=0x1\n");
        w("power/type", "23\n");
        w("power/cpumask", "0\n");
        w("power/format/event", "config:0-7\n");
        w("power/events/energy-pkg", "event=0x02\n");
        w(
            "power/events/energy-pkg.scale",
            "2.3283064365386962890625e-10\n",
        );
        w("power/events/energy-pkg.unit", "Joules\n");
        let t = dir.join("sys/kernel/tracing/events");
        for (s, n, id) in [
            ("syscalls", "sys_enter_write", 840),
            ("syscalls", "sys_exit_write", 839),
            ("sched", "sched_switch", 300),
        ] {
            std::fs::create_dir_all(t.join(s).join(n)).unwrap();
            std::fs::write(t.join(s).join(n).join("id"), format!("{id}\n")).unwrap();
        }
        (Sysroot::new(&dir), dir)
    }

    fn one(list: &str, root: &Sysroot) -> EventSpec {
        let l = parse_events(list, root).unwrap();
        let e = l.counters().next().unwrap().clone();
        e
    }

    #[test]
    fn hardware_and_software_names() {
        let (r, dir) = fake_root();
        for (n, c) in HARDWARE {
            let e = one(n, &r);
            assert_eq!(
                (e.attr_type, e.config, e.class.clone()),
                (b::PERF_TYPE_HARDWARE, *c as u64, EventClass::Hardware)
            );
        }
        for (n, c) in SOFTWARE {
            let e = one(n, &r);
            assert_eq!(
                (e.attr_type, e.config),
                (b::PERF_TYPE_SOFTWARE, *c as u64),
                "{n}"
            );
        }
        assert_eq!(
            one("cs", &r).config,
            b::PERF_COUNT_SW_CONTEXT_SWITCHES as u64
        );
        assert!(one("task-clock", &r).is_clock());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cache_names() {
        let (r, dir) = fake_root();
        let e = one("L1-dcache-load-misses", &r);
        assert_eq!(e.attr_type, b::PERF_TYPE_HW_CACHE);
        assert_eq!(e.config, 1 << 16);
        assert_eq!(one("L1-dcache-loads", &r).config, 0);
        assert_eq!(one("LLC-store-misses", &r).config, 2 | (1 << 8) | (1 << 16));
        assert_eq!(one("dTLB-loads", &r).config, 3);
        assert_eq!(one("iTLB-load-misses", &r).config, 4 | (1 << 16));
        assert_eq!(one("branch-loads", &r).config, 5);
        assert_eq!(one("L1-dcache-prefetches", &r).config, 2 << 8);
        assert_eq!(one("node-load-misses", &r).config, 6 | (1 << 16));
        for n in cache_event_names() {
            assert_eq!(one(&n, &r).attr_type, b::PERF_TYPE_HW_CACHE, "{n}");
        }
        assert!(cache_event_names().contains(&"L1-icache-load-misses".to_string()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn raw_and_pmu_events() {
        let (r, dir) = fake_root();
        let e = one("r003c", &r);
        assert_eq!((e.attr_type, e.config), (b::PERF_TYPE_RAW, 0x3c));
        let e = one("msr/tsc/", &r);
        assert_eq!((e.attr_type, e.config, e.name.as_str()), (9, 0, "msr/tsc/"));
        let e = one("cpu/event=0x3c,umask=0x1,edge/", &r);
        assert_eq!((e.attr_type, e.config), (4, 0x3c | 0x100 | 1 << 18));
        let e = one("cpu/mem-loads,ldlat=3/", &r);
        assert_eq!((e.config, e.config1), (0xcd | 0x100, 3));
        let e = one("cpu/config=0x1234,name=mine/", &r);
        assert_eq!((e.config, e.name.as_str()), (0x1234, "mine"));
        let e = one("power/energy-pkg/", &r);
        assert_eq!(e.unit.as_deref(), Some("Joules"));
        assert_eq!(e.cpus, Some(vec![0]));
        assert!((e.scale - 2f64.powi(-32)).abs() < 1e-20);
        let l = parse_events("cpu/event=1,umask=2/,msr/tsc/", &r).unwrap();
        assert_eq!(l.counters().count(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tracepoints_and_globs() {
        let (r, dir) = fake_root();
        let e = one("syscalls:sys_enter_write", &r);
        assert_eq!(
            (e.attr_type, e.config, e.class.clone()),
            (b::PERF_TYPE_TRACEPOINT, 840, EventClass::Tracepoint)
        );
        let l = parse_events("syscalls:sys_*_write", &r).unwrap();
        let names: Vec<_> = l.counters().map(|e| e.name.clone()).collect();
        assert_eq!(
            names,
            ["syscalls:sys_enter_write", "syscalls:sys_exit_write"]
        );
        let e = one("sched:sched_switch:u", &r);
        assert!(e.exclude_kernel && !e.exclude_user);
        assert_eq!(e.name, "sched:sched_switch:u");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn modifiers() {
        let (r, dir) = fake_root();
        let e = one("cycles:u", &r);
        assert!(!e.exclude_user && e.exclude_kernel && e.exclude_hv && e.explicit_privilege);
        assert_eq!(e.name, "cycles:u");
        let e = one("cycles:k", &r);
        assert!(e.exclude_user && !e.exclude_kernel);
        let e = one("cycles:uk", &r);
        assert!(!e.exclude_user && !e.exclude_kernel && e.exclude_hv);
        let e = one("instructions:ppp", &r);
        assert_eq!(e.precise_ip, 3);
        let e = one("cycles:GD", &r);
        assert!(e.exclude_host && e.pinned);
        let e = one("cycles:H", &r);
        assert!(e.exclude_guest);
        let a = one("cycles:u", &r).to_attr();
        assert_eq!((a.exclude_kernel(), a.exclude_user()), (1, 0));
        assert!(
            matches!(parse_events("cycles:pppp", &r), Err(Error::Event(m)) if m.contains("at most"))
        );
        assert!(
            matches!(parse_events("cycles:z", &r), Err(Error::Event(m)) if m.contains("unknown modifier 'z'"))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn groups_lists_and_energy() {
        let (r, dir) = fake_root();
        let l = parse_events(
            "{cycles,instructions}:u,task-clock,rapl,nvml/0,rapl/pkg:0,energy",
            &r,
        )
        .unwrap();
        assert_eq!(l.entries.len(), 6);
        match &l.entries[0] {
            Entry::Group { events, braced } => {
                assert!(braced);
                assert_eq!(events.len(), 2);
                assert_eq!(events[1].name, "instructions:u");
                assert!(events[1].exclude_kernel);
            }
            other => panic!("{other:?}"),
        }
        let energy: Vec<_> = l.energy().collect();
        assert_eq!(energy, ["rapl", "nvml/0", "rapl/pkg:0", "energy"]);
        let l = parse_event_args(&["task-clock".into(), "{msr/tsc/,cs}".into()], &r).unwrap();
        assert_eq!(l.counters().count(), 3);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_name_the_token_and_suggest() {
        let (r, dir) = fake_root();
        let err = |s: &str| match parse_events(s, &r) {
            Err(Error::Event(m)) | Err(Error::Unavailable(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        let m = err("cyclez");
        assert!(
            m.contains("'cyclez'") && m.contains("did you mean 'cycles'"),
            "{m}"
        );
        assert!(err("cycelz").contains("did you mean 'cycles'"));
        let m = err("task-clok");
        assert!(m.contains("task-clock"), "{m}");
        let m = err("msx/tsc/");
        assert!(
            m.contains("unknown PMU 'msx'") && m.contains("'msr'"),
            "{m}"
        );
        let m = err("msr/tsx/");
        assert!(
            m.contains("no event or term 'tsx'") && m.contains("'tsc'"),
            "{m}"
        );
        let m = err("syscalls:sys_enter_wrte");
        assert!(m.contains("sys_enter_write"), "{m}");
        let m = err("schd:sched_switch");
        assert!(
            m.contains("no tracepoint subsystem 'schd'") && m.contains("sched"),
            "{m}"
        );
        assert!(err("{cycles,instructions").contains("unbalanced"));
        assert!(err("cycles}").contains("unbalanced"));
        assert!(err("{cycles,{cs}}").contains("nest"));
        assert!(err("cycles,,cs").contains("empty event"));
        assert!(err("msr/tsc").contains("unterminated"));
        assert!(err("{rapl,cycles}").contains("cannot be in a group"));
        assert!(err("cpu/event=zz/").contains("bad value 'zz'"));
        assert!(err("cpu/umask=0x1ff/").contains("does not fit"));
        assert!(
            err("r12345678901234567890").contains("raw")
                || err("r12345678901234567890").contains("unknown")
        );
        assert!(
            matches!(parse_event_args(&[], &r), Err(Error::Event(m)) if m.contains("empty event list"))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tracefs_missing_says_how_to_mount() {
        let dir = std::env::temp_dir().join(format!("ruperf-notrace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        match parse_events("sched:sched_switch", &Sysroot::new(&dir)) {
            Err(Error::Unavailable(m)) => assert!(m.contains("mount -t tracefs"), "{m}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn globs() {
        assert!(glob_match("sys_*_write", "sys_enter_write"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(!glob_match("sys_*", "sched"));
    }
}
