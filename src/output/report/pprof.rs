//! `ruperf report --format pprof`: Google's profile.proto, gzipped — the format `go tool pprof`,
//! Grafana Pyroscope and Parca ingest.
//!
//! The messages are written out by hand below from pprof's `proto/profile.proto` (package
//! `perftools.profiles`), with prost's derive: the schema is small and frozen, and a build-time
//! generator would need `protoc` on every machine that builds ruperf.
//!
//! What goes where:
//! - one pair of sample types per event: `samples`/`count` (how many samples) and the event's
//!   weight (`cpu-clock`/`nanoseconds` for the clock events, `EVENT`/`count` otherwise), so
//!   `-sample_index` chooses; the default is the first event's weight, which is what
//!   `perf report` percentages are computed from;
//! - one sample per distinct (event, comm, pid, call stack) with `comm` and `pid` labels;
//! - one location per distinct code address, in the address space of its mapping's file
//!   (file offsets for user objects, kernel addresses for the kernel), each with its lines;
//! - one mapping per object, with the build id the recording holds for it;
//! - one function per distinct symbol, with the source file when known and the object's path
//!   otherwise.

use std::collections::HashMap;
use std::io::Write;

use prost::Message;

use crate::app::report::aggregate::{DSO_KERNEL, DSO_UNKNOWN};
use crate::app::report::{entry_passes, Config, Resolved};
use crate::error::{Error, Result};

/// The messages of profile.proto that ruperf writes (field numbers as in the schema).
pub mod proto {
    /// A whole profile.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        /// What each `Sample::value` means.
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        /// The samples.
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        /// Address ranges and the objects mapped there.
        #[prost(message, repeated, tag = "3")]
        pub mapping: Vec<Mapping>,
        /// Code locations.
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        /// Functions the locations name.
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        /// Every string; entry 0 is "".
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        /// Start of the collection, ns since the epoch.
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        /// Duration of the collection in ns.
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
        /// What happens between two samples.
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        /// How many of `period_type` between two samples.
        #[prost(int64, tag = "12")]
        pub period: i64,
        /// Free-form comments (string table indices).
        #[prost(int64, repeated, tag = "13")]
        pub comment: Vec<i64>,
        /// The preferred sample type (string table index of its type).
        #[prost(int64, tag = "14")]
        pub default_sample_type: i64,
    }

    /// A type and its unit (string table indices).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        /// Type name.
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        /// Unit.
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    /// A call stack with its values.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Location ids, leaf first.
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        /// One value per sample type.
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
        /// Labels.
        #[prost(message, repeated, tag = "3")]
        pub label: Vec<Label>,
    }

    /// A key with a string or a number.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Key (string table index).
        #[prost(int64, tag = "1")]
        pub key: i64,
        /// String value (string table index).
        #[prost(int64, tag = "2")]
        pub str: i64,
        /// Numeric value.
        #[prost(int64, tag = "3")]
        pub num: i64,
        /// Unit of `num` (string table index).
        #[prost(int64, tag = "4")]
        pub num_unit: i64,
    }

    /// An object mapped into memory.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Mapping {
        /// Nonzero id.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// First address.
        #[prost(uint64, tag = "2")]
        pub memory_start: u64,
        /// Limit of the range.
        #[prost(uint64, tag = "3")]
        pub memory_limit: u64,
        /// File offset of `memory_start`.
        #[prost(uint64, tag = "4")]
        pub file_offset: u64,
        /// Object path (string table index).
        #[prost(int64, tag = "5")]
        pub filename: i64,
        /// Build id (string table index).
        #[prost(int64, tag = "6")]
        pub build_id: i64,
        /// Locations carry function names.
        #[prost(bool, tag = "7")]
        pub has_functions: bool,
        /// Functions carry file names.
        #[prost(bool, tag = "8")]
        pub has_filenames: bool,
        /// Lines carry line numbers.
        #[prost(bool, tag = "9")]
        pub has_line_numbers: bool,
        /// Locations list inlined frames.
        #[prost(bool, tag = "10")]
        pub has_inline_frames: bool,
    }

    /// A code address and the source lines it stands for.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        /// Nonzero id.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// Its mapping (0: none).
        #[prost(uint64, tag = "2")]
        pub mapping_id: u64,
        /// Address in the mapping's range.
        #[prost(uint64, tag = "3")]
        pub address: u64,
        /// Innermost inlined function first, the physical function last.
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
        /// Several symbols share this address.
        #[prost(bool, tag = "5")]
        pub is_folded: bool,
    }

    /// A function and a line in it.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        /// Function id.
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        /// Line number (0: unknown).
        #[prost(int64, tag = "2")]
        pub line: i64,
    }

    /// A function.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        /// Nonzero id.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// Human-readable name (string table index).
        #[prost(int64, tag = "2")]
        pub name: i64,
        /// Name as the system knows it (string table index).
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        /// Source file (string table index).
        #[prost(int64, tag = "4")]
        pub filename: i64,
        /// First line.
        #[prost(int64, tag = "5")]
        pub start_line: i64,
    }
}

/// The string table: each distinct string once, "" first.
#[derive(Debug, Default)]
struct Strings {
    table: Vec<String>,
    ids: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Strings::default();
        s.id("");
        s
    }

    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.ids.insert(s.to_owned(), i);
        i
    }
}

/// One source line a location stands for: a symbol (index into `Resolved::syms`), a line
/// number (0 when unknown) and the source file when DWARF names it. A location lists them
/// innermost inlined function first, its own (symbol-table) function last, as profile.proto
/// wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameLine {
    /// Symbol id.
    pub sym: u32,
    /// Line number, 0 when unknown.
    pub line: u64,
    /// Source file, when known.
    pub file: Option<String>,
}

/// `file:LINE` as the source-line table spells it; anything else (`sym+0x12`, `??:0`) names
/// no line.
fn split_srcline(text: &str) -> Option<(&str, u64)> {
    let (file, line) = text.rsplit_once(':')?;
    let line = line.parse::<u64>().ok().filter(|&l| l > 0)?;
    Some((file, line))
}

/// The lines of one frame, innermost first: the functions inlined at its address (when the
/// report read inline frames), then its own function. The innermost gets the frame's source
/// line; the callers it was inlined into get 0 (their call-site lines are not kept).
pub fn frame_lines(r: &Resolved, frame: u32) -> Vec<FrameLine> {
    let (mut syms, mut lines) = (Vec::new(), Vec::new());
    r.expand(&[frame], &mut syms, &mut lines);
    let src = (!r.src.frame_line.is_empty())
        .then(|| lines.first().and_then(|&id| split_srcline(r.srcline(id))))
        .flatten();
    syms.iter()
        .enumerate()
        .map(|(k, &sym)| FrameLine {
            sym,
            line: if k == 0 { src.map_or(0, |s| s.1) } else { 0 },
            file: if k == 0 {
                src.map(|s| s.0.to_string())
            } else {
                None
            },
        })
        .collect()
}

/// The sample type of `report --energy`'s weights.
const ENERGY: &str = "energy";

/// The weight unit of an event: clock events count nanoseconds.
fn weight_unit(event: &str) -> &'static str {
    let base = event.split(':').next().unwrap_or(event);
    match base {
        "cpu-clock" | "task-clock" => "nanoseconds",
        ENERGY => "nanojoules",
        _ => "count",
    }
}

/// The event's name without perf's modifiers (`cpu-clock:ppp` → `cpu-clock`).
fn event_base(event: &str) -> &str {
    match event.split_once(':') {
        // Tracepoints (`sched:sched_switch`) keep their system.
        Some((sys, m)) if m.chars().all(|c| "ukhGHpPSDIWe".contains(c)) && !m.is_empty() => sys,
        _ => event,
    }
}

/// Builds the profile of a resolved recording (the samples that pass the report's filters).
pub fn build(r: &Resolved, cfg: &Config) -> proto::Profile {
    let mut s = Strings::new();
    let mut p = proto::Profile::default();
    // With --energy the first event's samples carry nanojoules (an estimate), the others none.
    let events: Vec<&str> = if r.energy.is_some() {
        vec![ENERGY]
    } else {
        r.meta.events.iter().map(|e| event_base(&e.name)).collect()
    };
    let single = events.len() == 1;
    for ev in &events {
        let count = if single {
            "samples".to_owned()
        } else {
            format!("samples:{ev}")
        };
        p.sample_type.push(proto::ValueType {
            r#type: s.id(&count),
            unit: s.id("count"),
        });
        p.sample_type.push(proto::ValueType {
            r#type: s.id(ev),
            unit: s.id(weight_unit(ev)),
        });
    }
    if let (Some(first), Some(info)) = (events.first(), r.meta.events.first()) {
        p.default_sample_type = s.id(first);
        p.period_type = Some(proto::ValueType {
            r#type: s.id(first),
            unit: s.id(weight_unit(first)),
        });
        p.period = if r.energy.is_some() {
            0
        } else {
            sample_period(info)
        };
    }
    let used = add_samples(r, cfg, events.len(), &mut s, &mut p);
    add_locations(r, &used, &mut s, &mut p);
    let comment = format!(
        "ruperf report {} ({})",
        r.meta.path.display(),
        env!("CARGO_PKG_VERSION")
    );
    p.comment.push(s.id(&comment));
    if r.energy.is_some() {
        let note = "energy: each interval's measured joules split among its samples (an estimate; see README)";
        p.comment.push(s.id(note));
    }
    p.string_table = s.table;
    p
}

/// Adds one sample per stack that passes the filters; returns which frames they use.
fn add_samples(
    r: &Resolved,
    cfg: &Config,
    events: usize,
    s: &mut Strings,
    p: &mut proto::Profile,
) -> Vec<bool> {
    let nvalues = 2 * events;
    let mut used = vec![false; r.profile.frames.len()];
    let mut frames = Vec::new();
    let (comm_key, pid_key) = (s.id("comm"), s.id("pid"));
    for st in &r.profile.stacks {
        r.profile.stack_frames(st.node, &mut frames);
        let Some(&leaf) = frames.first() else {
            continue;
        };
        let comm = &r.profile.comms[st.comm as usize];
        let leaf_sym = &r.syms[r.frame_sym[leaf as usize] as usize];
        let ev = st.event as usize;
        if ev * 2 + 1 >= nvalues || !entry_passes(cfg, comm, leaf_sym, None) {
            continue;
        }
        let mut value = vec![0i64; nvalues];
        value[ev * 2] = st.samples as i64;
        value[ev * 2 + 1] = st.period as i64;
        for &f in &frames {
            used[f as usize] = true;
        }
        p.sample.push(proto::Sample {
            location_id: frames.iter().map(|&f| u64::from(f) + 1).collect(),
            value,
            label: vec![
                proto::Label {
                    key: comm_key,
                    str: s.id(comm),
                    ..Default::default()
                },
                proto::Label {
                    key: pid_key,
                    num: i64::from(st.pid),
                    ..Default::default()
                },
            ],
        });
    }
    used
}

/// Adds the locations of the used frames, their functions and their mappings.
fn add_locations(r: &Resolved, used: &[bool], s: &mut Strings, p: &mut proto::Profile) {
    let build_ids: HashMap<&str, &str> = r
        .meta
        .build_ids
        .iter()
        .map(|b| (b.path.as_str(), b.build_id.as_str()))
        .collect();
    // Per object: the address range its used frames cover.
    let mut ranges: Vec<Option<(u64, u64)>> = vec![None; r.profile.dsos.len()];
    let mut funcs: Vec<Option<u32>> = vec![None; r.syms.len()];
    // Per function: its source file, when DWARF named one.
    let mut files: Vec<Option<String>> = vec![None; r.syms.len()];
    // Per object: (any line number known, any inlined frame).
    let mut detail = vec![(false, false); r.profile.dsos.len()];
    for (i, f) in r.profile.frames.iter().enumerate() {
        if !used[i] {
            continue;
        }
        let lines = frame_lines(r, i as u32);
        if let Some(d) = detail.get_mut(f.dso as usize) {
            d.0 |= lines.iter().any(|l| l.line != 0);
            d.1 |= lines.len() > 1;
        }
        let mapping_id = if f.dso == DSO_UNKNOWN {
            0
        } else if let Some(range) = ranges.get_mut(f.dso as usize) {
            let (lo, hi) = range.get_or_insert((f.addr, f.addr));
            *lo = (*lo).min(f.addr);
            *hi = (*hi).max(f.addr);
            u64::from(f.dso) + 1
        } else {
            0
        };
        for l in &lines {
            funcs[l.sym as usize] = Some(f.dso);
            if let Some(file) = &l.file {
                files[l.sym as usize].get_or_insert_with(|| file.clone());
            }
        }
        p.location.push(proto::Location {
            id: i as u64 + 1,
            mapping_id,
            address: f.addr,
            line: lines
                .iter()
                .map(|l| proto::Line {
                    function_id: u64::from(l.sym) + 1,
                    line: l.line as i64,
                })
                .collect(),
            is_folded: false,
        });
    }
    for (sym, dso) in funcs.iter().enumerate() {
        let Some(dso) = *dso else { continue };
        let info = &r.syms[sym];
        let name = s.id(&info.name);
        let file = match &files[sym] {
            Some(f) => s.id(f),
            None => r
                .profile
                .dsos
                .get(dso as usize)
                .filter(|_| dso != DSO_UNKNOWN)
                .map_or(0, |path| s.id(path)),
        };
        p.function.push(proto::Function {
            id: sym as u64 + 1,
            name,
            system_name: name,
            filename: file,
            start_line: 0,
        });
    }
    for dso in mapping_order(r, &ranges) {
        let Some((lo, hi)) = ranges[dso] else {
            continue;
        };
        let path = &r.profile.dsos[dso];
        let build_id = build_ids.get(path.as_str()).map_or(0, |b| s.id(b));
        p.mapping.push(proto::Mapping {
            id: dso as u64 + 1,
            memory_start: lo,
            memory_limit: hi.saturating_add(1),
            // User addresses are file offsets already; kernel ones are addresses.
            file_offset: if dso as u32 == DSO_KERNEL { 0 } else { lo },
            filename: s.id(path),
            build_id,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: detail[dso].0,
            has_inline_frames: detail[dso].1,
        });
    }
}

/// The order of the mappings: pprof takes the first for the main binary, so the executable
/// (the object named like the busiest command) comes first and the kernel last.
fn mapping_order(r: &Resolved, ranges: &[Option<(u64, u64)>]) -> Vec<usize> {
    let mut per_comm = vec![0u64; r.profile.comms.len()];
    for st in &r.profile.stacks {
        if let Some(c) = per_comm.get_mut(st.comm as usize) {
            *c += st.samples;
        }
    }
    let busiest = per_comm
        .iter()
        .enumerate()
        .max_by_key(|&(_, n)| *n)
        .map(|(i, _)| r.profile.comms[i].as_str())
        .unwrap_or("");
    let rank = |dso: usize| -> u8 {
        let path = &r.profile.dsos[dso];
        let short = crate::app::report::dso_short_name(path);
        if dso as u32 == DSO_KERNEL || path.starts_with('[') {
            2
        } else if !busiest.is_empty() && short.starts_with(busiest) {
            0
        } else {
            1
        }
    };
    let mut order: Vec<usize> = (0..ranges.len()).filter(|&d| ranges[d].is_some()).collect();
    order.sort_by_key(|&d| (rank(d), d));
    order
}

/// The number of events between two samples: the fixed period, or for clock events sampled
/// by frequency the nanoseconds between two samples.
fn sample_period(info: &crate::perfdata::reader::EventInfo) -> i64 {
    match (info.period, info.frequency) {
        (Some(p), _) => p as i64,
        (None, Some(f)) if f > 0 && weight_unit(event_base(&info.name)) == "nanoseconds" => {
            (1_000_000_000 / f) as i64
        }
        _ => 0,
    }
}

/// Writes the profile, gzipped, to `out`.
pub fn write(p: &proto::Profile, out: &mut dyn Write) -> std::io::Result<()> {
    let bytes = p.encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()?.flush()
}

/// Builds the profile and writes it to `path` (or stdout for `-`).
pub fn export(r: &Resolved, cfg: &Config, path: &std::path::Path) -> Result<()> {
    let p = build(r, cfg);
    if path.as_os_str() == "-" {
        return crate::output::Sink::stdout().write_with(|w| write(&p, w));
    }
    // Never through a symbolic link another user planted (see sysroot::create_output).
    let file =
        crate::sysroot::create_output(path, 0o666, false).map_err(|source| Error::CantCreate {
            path: path.to_path_buf(),
            source,
        })?;
    let mut w = std::io::BufWriter::new(file);
    write(&p, &mut w).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_interned_with_empty_first() {
        let mut s = Strings::new();
        assert_eq!(s.id("a"), 1);
        assert_eq!(s.id(""), 0);
        assert_eq!(s.id("a"), 1);
        assert_eq!(s.id("b"), 2);
        assert_eq!(s.table, vec!["", "a", "b"]);
    }

    #[test]
    fn event_names_and_units() {
        assert_eq!(event_base("cpu-clock:ppp"), "cpu-clock");
        assert_eq!(event_base("sched:sched_switch"), "sched:sched_switch");
        assert_eq!(event_base("cycles"), "cycles");
        assert_eq!(weight_unit("task-clock"), "nanoseconds");
        assert_eq!(weight_unit("page-faults"), "count");
    }

    use crate::app::report::aggregate::{EventTotals, Frame, Profile, StackCount};
    use crate::app::report::{Format, GraphMode, SymInfo};
    use crate::perfdata::reader::{BuildIdEntry, EventInfo, Meta, ReadStats};

    /// Two stacks of `prog`: main → hot (30 samples) and main → libc's memcpy (10), one
    /// event, cpu-clock at 1 kHz.
    fn resolved() -> Resolved {
        let profile = Profile {
            events: vec![EventTotals {
                samples: 40,
                period: 40_000_000,
            }],
            comms: vec!["prog".into()],
            dsos: vec![
                "[kernel.kallsyms]".into(),
                "[unknown]".into(),
                "/usr/lib/libc.so.6".into(),
                "/bin/prog".into(),
            ],
            frames: vec![
                Frame {
                    dso: 3,
                    addr: 0x1100,
                    kernel: false,
                },
                Frame {
                    dso: 3,
                    addr: 0x1200,
                    kernel: false,
                },
                Frame {
                    dso: 2,
                    addr: 0x9000,
                    kernel: false,
                },
            ],
            // node 1: main (root child), 2: main→hot, 3: main→memcpy
            nodes: vec![(0, 0), (0, 0), (1, 1), (1, 2)],
            stacks: vec![
                StackCount {
                    event: 0,
                    comm: 0,
                    pid: 7,
                    node: 2,
                    period: 30_000_000,
                    samples: 30,
                },
                StackCount {
                    event: 0,
                    comm: 0,
                    pid: 7,
                    node: 3,
                    period: 10_000_000,
                    samples: 10,
                },
            ],
            ..Default::default()
        };
        let sym = |name: &str, dso: &str| SymInfo {
            name: name.into(),
            dso: dso.into(),
            kernel: false,
            resolved: true,
            inlined: false,
        };
        Resolved {
            meta: Meta {
                events: vec![EventInfo {
                    name: "cpu-clock:ppp".into(),
                    attr_type: 1,
                    config: 0,
                    callchain: true,
                    frequency: Some(1000),
                    period: None,
                }],
                build_ids: vec![BuildIdEntry {
                    pid: 7,
                    kernel: false,
                    path: "/bin/prog".into(),
                    build_id: "ab".repeat(20),
                }],
                ..Default::default()
            },
            profile,
            syms: vec![
                sym("main", "prog"),
                sym("hot", "prog"),
                sym("memcpy", "libc.so.6"),
            ],
            frame_sym: vec![0, 1, 2],
            src: Default::default(),
            stats: ReadStats::default(),
            warnings: vec![],
            energy: None,
        }
    }

    fn config(symbols: Option<Vec<String>>) -> Config {
        Config {
            input: "perf.data".into(),
            sort: vec![],
            children: None,
            graph: GraphMode::None,
            graph_min_percent: 0.5,
            order: None,
            percent_limit: 0.0,
            max_stack: 127,
            show_samples: false,
            header: false,
            comms: None,
            dsos: None,
            symbols,
            format: Format::Pprof,
            flamegraph: None,
            sysroot: crate::sysroot::Sysroot::default(),
            progress: false,
            energy: false,
            inline: false,
            symfs: None,
        }
    }

    #[test]
    fn builds_samples_locations_mappings_and_functions() {
        let r = resolved();
        let p = build(&r, &config(None));
        let st = |i: i64| p.string_table[i as usize].as_str();
        let types: Vec<(&str, &str)> = p
            .sample_type
            .iter()
            .map(|t| (st(t.r#type), st(t.unit)))
            .collect();
        assert_eq!(
            types,
            vec![("samples", "count"), ("cpu-clock", "nanoseconds")]
        );
        assert_eq!(st(p.default_sample_type), "cpu-clock");
        assert_eq!(p.period, 1_000_000);
        assert_eq!(p.sample.len(), 2);
        // Leaf first: hot (frame 1) then main (frame 0).
        assert_eq!(p.sample[0].location_id, vec![2, 1]);
        assert_eq!(p.sample[0].value, vec![30, 30_000_000]);
        let labels: Vec<(&str, String)> = p.sample[0]
            .label
            .iter()
            .map(|l| {
                (
                    st(l.key),
                    if l.str != 0 {
                        st(l.str).to_owned()
                    } else {
                        l.num.to_string()
                    },
                )
            })
            .collect();
        assert_eq!(labels, vec![("comm", "prog".into()), ("pid", "7".into())]);
        // The executable's mapping comes first, with its build id; libc has none recorded.
        assert_eq!(st(p.mapping[0].filename), "/bin/prog");
        assert_eq!(st(p.mapping[0].build_id), "ab".repeat(20));
        assert_eq!(
            (p.mapping[0].memory_start, p.mapping[0].memory_limit),
            (0x1100, 0x1201)
        );
        assert_eq!(st(p.mapping[1].filename), "/usr/lib/libc.so.6");
        assert_eq!(p.mapping[1].build_id, 0);
        let memcpy = p.location.iter().find(|l| l.address == 0x9000).unwrap();
        assert_eq!(memcpy.mapping_id, p.mapping[1].id);
        assert_eq!(memcpy.line.len(), 1);
        let f = p
            .function
            .iter()
            .find(|f| f.id == memcpy.line[0].function_id)
            .unwrap();
        assert_eq!(
            (st(f.name), st(f.filename)),
            ("memcpy", "/usr/lib/libc.so.6")
        );
        assert_eq!(p.string_table[0], "");
        // The report's filters apply: only the stack whose leaf is hot.
        let only = build(&r, &config(Some(vec!["hot".into()])));
        assert_eq!(only.sample.len(), 1);
        assert_eq!(only.sample[0].value, vec![30, 30_000_000]);
        assert!(only.location.iter().all(|l| l.address != 0x9000));
    }

    #[test]
    fn energy_weights_are_nanojoules_of_the_first_event() {
        let mut r = resolved();
        // --energy: periods are nanojoules; here 3 J and 1 J.
        r.profile.stacks[0].period = 3_000_000_000;
        r.profile.stacks[1].period = 1_000_000_000;
        r.energy = Some(Default::default());
        let p = build(&r, &config(None));
        let st = |i: i64| p.string_table[i as usize].as_str();
        let types: Vec<(&str, &str)> = p
            .sample_type
            .iter()
            .map(|t| (st(t.r#type), st(t.unit)))
            .collect();
        assert_eq!(types, vec![("samples", "count"), ("energy", "nanojoules")]);
        assert_eq!(p.sample[0].value, vec![30, 3_000_000_000]);
        assert_eq!(p.period, 0);
        assert!(p.comment.iter().any(|&c| st(c).contains("an estimate")));
    }

    #[test]
    fn a_profile_survives_the_round_trip_through_gzip() {
        let mut s = Strings::new();
        let p = proto::Profile {
            sample_type: vec![proto::ValueType {
                r#type: s.id("samples"),
                unit: s.id("count"),
            }],
            sample: vec![proto::Sample {
                location_id: vec![1],
                value: vec![7],
                label: vec![],
            }],
            string_table: s.table.clone(),
            ..Default::default()
        };
        let mut gz = Vec::new();
        write(&p, &mut gz).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        assert_eq!(proto::Profile::decode(&raw[..]).unwrap(), p);
    }
}
