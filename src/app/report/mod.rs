//! `ruperf report`: from a perf.data file to perf-style reports.
//!
//! [`load`] reads the recording into an aggregated [`aggregate::Profile`] and symbolizes each
//! distinct frame once ([`Resolved`]); [`build`] turns that into a [`Report`] (plain,
//! serializable data: entries with Children/Self and call trees); the `stdio`, `formats`
//! modules render it. The `script` format streams samples instead of aggregating them.

pub mod aggregate;
pub mod callgraph;
pub mod energy;
pub mod srcinfo;
pub mod unwind;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::perfdata::reader::{Meta, ReadStats, Record, Recording, Sample};
use crate::symbols::{demangle, Symbolizer};
use crate::sysroot::Sysroot;
use aggregate::{Aggregator, Frame, Profile, DSO_KERNEL, DSO_UNKNOWN};

/// A `--sort` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    /// Command name.
    Comm,
    /// Process id (shown as `pid:comm`).
    Pid,
    /// Shared object.
    Dso,
    /// Symbol.
    Sym,
    /// Source file and line (`file.c:12`).
    Srcline,
}

impl SortKey {
    /// Parses perf's key names.
    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s.trim() {
            "comm" => SortKey::Comm,
            "pid" => SortKey::Pid,
            "dso" => SortKey::Dso,
            "sym" | "symbol" => SortKey::Sym,
            "srcline" => SortKey::Srcline,
            _ => return None,
        })
    }
}

/// Call-graph layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphMode {
    /// Percentages relative to the total (perf's `graph`).
    Graph,
    /// Percentages relative to the parent node (perf's `fractal`).
    Fractal,
    /// One line per chain (perf's `folded`).
    Folded,
    /// No call graph.
    None,
}

/// Call-chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Outermost caller first.
    Caller,
    /// Sampled function first.
    Callee,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// perf report --stdio text.
    Stdio,
    /// JSON (docs/report-json.md).
    Json,
    /// Collapsed stacks, one line per stack with its sample count.
    Folded,
    /// perf script text, one block per sample.
    Script,
    /// Google's profile.proto, gzipped.
    Pprof,
}

/// Everything `ruperf report` needs, free of clap types.
#[derive(Debug, Clone)]
pub struct Config {
    /// The perf.data file.
    pub input: PathBuf,
    /// Sort (and column) keys.
    pub sort: Vec<SortKey>,
    /// Children/Self columns: None means "when call chains exist".
    pub children: Option<bool>,
    /// Call-graph layout.
    pub graph: GraphMode,
    /// Minimum percentage for call-graph branches.
    pub graph_min_percent: f64,
    /// Chain order: None means caller with children, callee without (perf's defaults).
    pub order: Option<Order>,
    /// Hide entries below this percentage.
    pub percent_limit: f64,
    /// Frames kept of each call chain (perf's `--max-stack`, default 127).
    pub max_stack: usize,
    /// Show sample counts.
    pub show_samples: bool,
    /// Print the recording's header information.
    pub header: bool,
    /// Only these commands.
    pub comms: Option<Vec<String>>,
    /// Only these shared objects.
    pub dsos: Option<Vec<String>>,
    /// Only these symbols.
    pub symbols: Option<Vec<String>>,
    /// Output format.
    pub format: Format,
    /// Write a flame graph SVG here.
    pub flamegraph: Option<PathBuf>,
    /// Root for /proc and /sys.
    pub sysroot: Sysroot,
    /// Show a progress bar (stderr is a terminal).
    pub progress: bool,
    /// Weight samples by the energy measured while they were taken (`--energy`).
    pub energy: bool,
    /// Show inline frames in call chains where debug information has them (perf's default).
    pub inline: bool,
    /// perf's `--symfs`: look up recorded DSO paths under this directory.
    pub symfs: Option<PathBuf>,
}

/// A symbol as shown: resolved name or the unresolved address, its DSO and mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SymInfo {
    /// Shown name (demangled), or the address as perf prints unresolved ones.
    pub name: String,
    /// Shown DSO name (basename, `[kernel.kallsyms]`, `[module]`, `[unknown]`).
    pub dso: String,
    /// Kernel context (`[k]`).
    pub kernel: bool,
    /// True when a symbol table named it.
    pub resolved: bool,
    /// An inlined function (from DWARF), shown with perf's ` (inlined)`.
    pub inlined: bool,
}

/// A loaded, aggregated and symbolized recording.
#[derive(Debug)]
pub struct Resolved {
    /// The file's description of itself.
    pub meta: Meta,
    /// The aggregated samples.
    pub profile: Profile,
    /// Distinct symbols.
    pub syms: Vec<SymInfo>,
    /// Frame id → symbol id.
    pub frame_sym: Vec<u32>,
    /// Inline frames and source lines per frame (see [`srcinfo`]).
    pub src: srcinfo::SrcInfo,
    /// Read statistics.
    pub stats: ReadStats,
    /// Warnings (one line each), to print before the report.
    pub warnings: Vec<String>,
    /// With `--energy`: what was measured and attributed.
    pub energy: Option<energy::EnergySummary>,
}

/// Shown DSO name for a recorded path.
pub fn dso_short_name(path: &str) -> String {
    if crate::symbols::jitmap::is_map_path(path) {
        // perf's name for a JIT map's DSO.
        let pid = path
            .trim_start_matches("/tmp/perf-")
            .trim_end_matches(".map");
        return format!("[JIT] tid {pid}");
    }
    if path.starts_with('[') {
        return path.to_owned();
    }
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// An unresolved address as perf prints it (`%-#.*llx`: no `0x` for zero).
pub fn unresolved_name(addr: u64) -> String {
    if addr == 0 {
        "0000000000000000".to_owned()
    } else {
        format!("{addr:#018x}")
    }
}

/// Builds the recorded build ids map (path → hex id).
fn recorded_build_ids(meta: &Meta) -> HashMap<String, String> {
    meta.build_ids
        .iter()
        .map(|b| (b.path.clone(), b.build_id.clone()))
        .collect()
}

/// Reads, aggregates and symbolizes a recording.
pub fn load(cfg: &Config) -> Result<Resolved> {
    let mut rec = Recording::open(&cfg.input)?;
    let meta = rec.meta().clone();
    let mut agg = Aggregator::new(meta.events.len());
    let attribution = if cfg.energy {
        Some(energy_attribution(cfg, &meta)?)
    } else {
        None
    };
    unwind::prepare(&mut rec, &mut agg, cfg, &meta);
    let bar = progress_bar(cfg.progress, meta.data_size);
    let progress = rec.progress();
    let mut n = 0u32;
    let stats = rec.for_each(|r| {
        match (r, &attribution) {
            (Record::Sample(s), Some(a)) => agg.add(&Record::Sample(Sample {
                period: a.weight(s),
                ..*s
            })),
            _ => agg.add(r),
        }
        n = n.wrapping_add(1);
        if n % 65536 == 0 {
            if let Some(b) = &bar {
                b.set_position(progress.bytes());
            }
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut warnings = rec.warnings().to_vec();
    if stats.bad_records > 0 {
        warnings.push(format!(
            "{}: skipped {} records that could not be decoded",
            meta.path.display(),
            stats.bad_records
        ));
    }
    let profile = agg.finish();
    warnings.extend(unwind::warnings(&profile));
    let mut symz = symbolizer(cfg, &meta);
    if let Some(t) = profile.kernel_text {
        symz.set_kernel_text(t);
    }
    let (mut syms, frame_sym, mut ids) = resolve_frames(&profile, &mut symz);
    let src = srcinfo::attach(
        &profile,
        &mut symz,
        wanted(cfg, &meta),
        &mut syms,
        &mut ids,
        &frame_sym,
    );
    warnings.extend(symz.take_warnings());
    Ok(Resolved {
        meta,
        profile,
        syms,
        frame_sym,
        src,
        stats,
        warnings,
        energy: attribution.map(|a| a.summary()),
    })
}

/// The first pass of `--energy`: the recording's energy readings and how many samples each
/// interval holds.
fn energy_attribution(cfg: &Config, meta: &Meta) -> Result<energy::Attribution> {
    let bytes = meta.energy.as_deref().ok_or_else(|| {
        Error::Unavailable(format!(
            "{}: holds no energy readings (record with `ruperf record --energy`)",
            meta.path.display()
        ))
    })?;
    let trace = crate::perfdata::energy::EnergyTrace::decode(bytes)
        .map_err(|why| Error::Data(format!("{}: {why}", meta.path.display())))?;
    let mut a = energy::Attribution::new(trace);
    let mut rec = Recording::open(&cfg.input)?;
    rec.for_each(|r| {
        if let Record::Sample(s) = r {
            a.count(s);
        }
    });
    Ok(a)
}

/// The symbolizer for a recording, with the report's `--symfs`.
pub fn symbolizer(cfg: &Config, meta: &Meta) -> Symbolizer {
    let mut symz = Symbolizer::new(cfg.sysroot.clone(), recorded_build_ids(meta));
    if let Some(d) = &cfg.symfs {
        symz.set_symfs(d.clone());
    }
    symz
}

/// What the report needs from DWARF: inline frames only where call chains are shown (or
/// drawn), source lines only for the srcline key.
pub fn wanted(cfg: &Config, meta: &Meta) -> srcinfo::Wanted {
    let chains = meta.events.iter().any(|e| e.callchain);
    // A flat Self-only report of the leaves shows no inline frame: no DWARF for it.
    let flat = cfg.graph == GraphMode::None
        && cfg.children == Some(false)
        && matches!(cfg.format, Format::Stdio | Format::Json)
        && cfg.flamegraph.is_none();
    srcinfo::Wanted {
        inline: cfg.inline && chains && !flat,
        leaves_only: flat || !chains,
        // pprof's locations carry line numbers and its functions their source files.
        srcline: cfg.sort.contains(&SortKey::Srcline) || cfg.format == Format::Pprof,
    }
}

fn progress_bar(enabled: bool, len: u64) -> Option<indicatif::ProgressBar> {
    // Only worth it for big files.
    if !enabled || len < 64 << 20 {
        return None;
    }
    let b = indicatif::ProgressBar::new(len);
    b.set_style(
        indicatif::ProgressStyle::with_template("reading {bytes}/{total_bytes} [{bar:30}] {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(b)
}

/// Symbolizes every distinct frame, DSO by DSO.
fn resolve_frames(
    p: &Profile,
    symz: &mut Symbolizer,
) -> (Vec<SymInfo>, Vec<u32>, HashMap<SymInfo, u32>) {
    let mut syms: Vec<SymInfo> = Vec::new();
    let mut ids: HashMap<SymInfo, u32> = HashMap::new();
    let mut frame_sym = vec![0u32; p.frames.len()];
    let mut demangled: HashMap<String, String> = HashMap::new();
    // Group by DSO so that each is loaded once and its lookups stay warm.
    let mut order: Vec<u32> = (0..p.frames.len() as u32).collect();
    order.sort_by_key(|&i| (p.frames[i as usize].dso, p.frames[i as usize].addr));
    for i in order {
        let f: Frame = p.frames[i as usize];
        let info = symbolize(p, symz, &f, &mut demangled);
        let next = syms.len() as u32;
        let id = *ids.entry(info.clone()).or_insert(next);
        if id == next {
            syms.push(info);
        }
        frame_sym[i as usize] = id;
    }
    (syms, frame_sym, ids)
}

pub(crate) fn symbolize(
    p: &Profile,
    symz: &mut Symbolizer,
    f: &Frame,
    demangled: &mut HashMap<String, String>,
) -> SymInfo {
    let mut dem = |n: &str| -> String {
        if let Some(d) = demangled.get(n) {
            return d.clone();
        }
        let d = demangle(n);
        demangled.insert(n.to_owned(), d.clone());
        d
    };
    match f.dso {
        DSO_KERNEL => match symz.lookup_kernel(f.addr) {
            Some((name, module, _)) => {
                let dso = if module.is_empty() {
                    "[kernel.kallsyms]".to_owned()
                } else {
                    format!("[{module}]")
                };
                let name = name.to_owned();
                SymInfo {
                    name: dem(&name),
                    dso,
                    kernel: true,
                    resolved: true,
                    inlined: false,
                }
            }
            None => SymInfo {
                name: unresolved_name(f.addr),
                dso: "[kernel.kallsyms]".into(),
                kernel: true,
                resolved: false,
                inlined: false,
            },
        },
        DSO_UNKNOWN => SymInfo {
            name: unresolved_name(f.addr),
            dso: "[unknown]".into(),
            kernel: f.kernel,
            resolved: false,
            inlined: false,
        },
        d => {
            let path = &p.dsos[d as usize];
            let dso = dso_short_name(path);
            match symz.lookup_user(path, f.addr) {
                Some((name, _)) => {
                    let name = name.to_owned();
                    SymInfo {
                        name: dem(&name),
                        dso,
                        kernel: f.kernel,
                        resolved: true,
                        inlined: false,
                    }
                }
                None => SymInfo {
                    name: unresolved_name(symz.vaddr(path, f.addr).unwrap_or(f.addr)),
                    dso,
                    kernel: f.kernel,
                    resolved: false,
                    inlined: false,
                },
            }
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Children percentage (with call chains accumulated), when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<f64>,
    /// Self percentage.
    #[serde(rename = "self")]
    pub self_pct: f64,
    /// Children period, when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children_period: Option<u64>,
    /// Self period.
    pub self_period: u64,
    /// Samples whose leaf is this entry.
    pub samples: u64,
    /// Command, when sorted by comm or pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// Process id, when sorted by pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Shared object, when sorted by dso.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dso: Option<String>,
    /// Symbol, when sorted by sym.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// An inlined function (perf prints ` (inlined)` after the name).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inlined: bool,
    /// Source line (`file.c:12`), when sorted by srcline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srcline: Option<String>,
    /// Kernel symbol (`[k]`) rather than user (`[.]`).
    pub kernel: bool,
    /// Call tree (empty without call chains or with `-g none`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub callchain: Vec<callgraph::CallNode>,
}

/// The report for one event.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Event name.
    pub event: String,
    /// Number of samples.
    pub samples: u64,
    /// Sum of sample periods (perf's "Event count (approx.)").
    pub event_count: u64,
    /// Entries, sorted by the first percentage column.
    pub entries: Vec<Entry>,
}

/// A whole report: plain data, rendered by `stdio` or serialized to JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Format version of this JSON document.
    pub version: u32,
    /// The perf.data file.
    pub file: String,
    /// Samples lost by the kernel.
    pub lost_samples: u64,
    /// Records lost by the kernel.
    pub lost_records: u64,
    /// Whether Children columns are shown.
    pub children: bool,
    /// Call-chain order of the trees.
    pub order: Order,
    /// Sort keys.
    pub sort: Vec<SortKey>,
    /// One section per event that has samples.
    pub sections: Vec<Section>,
    /// Warnings about the input.
    pub warnings: Vec<String>,
    /// Whether the input was cut short or damaged.
    pub truncated: bool,
    /// With `--energy`: the energy measured and attributed; every period in the report is
    /// then in nanojoules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy: Option<energy::EnergySummary>,
    /// The recording's own description (for `--header`).
    #[serde(skip)]
    pub meta: Meta,
    /// Show sample counts (presentation setting).
    #[serde(skip)]
    pub show_samples: bool,
    /// Call graph layout (presentation setting).
    #[serde(skip)]
    pub graph: Option<GraphMode>,
    /// Print the header (presentation setting).
    #[serde(skip)]
    pub header: bool,
}

fn matches_filter(filter: &Option<Vec<String>>, value: &str, alt: Option<&str>) -> bool {
    match filter {
        None => true,
        Some(list) => list
            .iter()
            .any(|f| f == value || alt.is_some_and(|a| a == f)),
    }
}

/// Turns a resolved recording into a report.
pub fn build(r: &Resolved, cfg: &Config) -> Report {
    let has_chains = r.meta.events.iter().any(|e| e.callchain);
    let children = cfg.children.unwrap_or(has_chains) && has_chains;
    let order = cfg.order.unwrap_or(if children {
        Order::Caller
    } else {
        Order::Callee
    });
    let graph = if has_chains && cfg.graph != GraphMode::None {
        Some(cfg.graph)
    } else {
        None
    };
    let mut sections = Vec::new();
    for (ev, info) in r.meta.events.iter().enumerate() {
        let totals = r.profile.events.get(ev).copied().unwrap_or_default();
        // With --energy only the first event's samples carry joules.
        if totals.samples == 0 || (r.energy.is_some() && ev != 0) {
            continue;
        }
        let entries = callgraph::entries(r, cfg, ev as u32, children, order, graph, totals);
        sections.push(Section {
            event: info.name.clone(),
            samples: totals.samples,
            event_count: totals.period,
            entries,
        });
    }
    Report {
        version: 1,
        file: r.meta.path.display().to_string(),
        lost_samples: r.profile.lost_samples,
        lost_records: r.profile.lost,
        children,
        order,
        sort: cfg.sort.clone(),
        sections,
        warnings: r.warnings.clone(),
        truncated: r.meta.truncated,
        energy: r.energy.clone(),
        meta: r.meta.clone(),
        show_samples: cfg.show_samples,
        graph,
        header: cfg.header,
    }
}

/// True when a stack's leaf entry passes the comm/dso/symbol filters.
pub(crate) fn entry_passes(
    cfg: &Config,
    comm: &str,
    sym: &SymInfo,
    dso_path: Option<&str>,
) -> bool {
    matches_filter(&cfg.comms, comm, None)
        && matches_filter(&cfg.dsos, &sym.dso, dso_path)
        && matches_filter(&cfg.symbols, &sym.name, None)
}
