//! `ruperf script`: every sample of a recording, one after the other, as `perf script`
//! prints them.
//!
//! The recording is streamed through the report side's reader and [`Aggregator`] (thread
//! names, maps, interned frames); each distinct frame is symbolized once and its text kept,
//! so a long recording costs one map lookup per address after the first. Tracepoint fields
//! are decoded from the formats the file carries (HEADER_TRACING_DATA). Samples reach a sink
//! as [`Line`]s; `output::script` turns them into perf's bytes.

pub mod dump;
pub mod fields;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::app::report::aggregate::{Aggregator, DSO_KERNEL, DSO_UNKNOWN};
use crate::error::{Error, Result};
use crate::perfdata::reader::{Meta, Record, Recording, Sample};
use crate::perfdata::tracefmt::Printer;
use crate::perfdata::tracing::TraceFormats;
use crate::symbols::{demangle, Symbolizer};
use crate::sysroot::Sysroot;
use fields::{Field, Selection, Set};

/// A `ruperf script` request.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The recording.
    pub input: PathBuf,
    /// Kernel interfaces root (for kallsyms).
    pub sysroot: Sysroot,
    /// Fields to print.
    pub fields: Selection,
    /// Hide call chains (`-G`).
    pub hide_call_graph: bool,
    /// Only these command names.
    pub comms: Option<Vec<String>>,
    /// Only these processes.
    pub pids: Option<Vec<i32>>,
    /// Only these threads.
    pub tids: Option<Vec<i32>>,
    /// Only these CPUs.
    pub cpus: Option<Vec<u32>>,
    /// Only samples in [start, end] (ns).
    pub time: Option<(u64, u64)>,
    /// Only samples whose symbol is one of these (`-S`).
    pub symbols: Option<Vec<String>>,
    /// Nanosecond timestamps (`--ns`).
    pub ns: bool,
    /// Leave out the functions inlined at call-chain addresses (`--no-inline`).
    pub no_inline: bool,
}

/// A code location as printed: the address perf shows, the symbol and offset, the DSO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSym {
    /// The frame's id (stable for the whole run: renderers may cache by it).
    pub id: u32,
    /// The address perf prints in call chains (map-relative for user DSOs).
    pub addr: u64,
    /// Demangled symbol and the offset into it.
    pub sym: Option<(String, u64)>,
    /// DSO as perf prints it (`/usr/lib/libc.so.6`, `[kernel.kallsyms]`, `[unknown]`).
    pub dso: String,
    /// The functions inlined at this address, innermost first (from DWARF; empty when there
    /// are none or inline frames are off). Printed in call chains before the frame's own line.
    pub inlined: Vec<String>,
}

/// One sample, ready to print.
#[derive(Debug)]
pub struct Line<'a> {
    /// Fields to print for this sample's event type.
    pub fields: Set,
    /// Event name.
    pub event: &'a str,
    /// Width of the event-name column (the longest name in the file).
    pub event_width: usize,
    /// Thread name.
    pub comm: &'a str,
    /// Process id.
    pub pid: i32,
    /// Thread id.
    pub tid: i32,
    /// CPU.
    pub cpu: u32,
    /// Timestamp in ns.
    pub time: u64,
    /// Period.
    pub period: u64,
    /// Sampled instruction pointer.
    pub ip: u64,
    /// Data address.
    pub addr: u64,
    /// The sampled location (for one-line output).
    pub at: &'a FrameSym,
    /// Call chain, leaf first; `None` prints one line.
    pub chain: Option<Vec<&'a FrameSym>>,
    /// Decoded tracepoint fields.
    pub trace: Option<&'a str>,
    /// Some event of the file has call chains and they are shown (perf's `use_callchain`,
    /// which stops padding the comm column).
    pub use_callchain: bool,
    /// Nanosecond timestamps (`--ns`).
    pub ns: bool,
}

/// What a run saw, besides the lines.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Warnings for stderr.
    pub warnings: Vec<String>,
    /// The file's description (for `--header`).
    pub meta: Meta,
}

struct Symbols {
    symz: Symbolizer,
    cache: Vec<Option<FrameSym>>,
    inline: bool,
}

impl Symbols {
    fn get(&mut self, agg: &Aggregator, id: u32) -> &FrameSym {
        let i = id as usize;
        if self.cache.len() <= i {
            self.cache.resize(i + 1, None);
        }
        if self.cache[i].is_none() {
            let p = agg.profile();
            let fr = p.frames[i];
            let f = match fr.dso {
                DSO_KERNEL => {
                    let (sym, dso) = match self.symz.lookup_kernel(fr.addr) {
                        Some((n, m, off)) => (
                            Some((demangle(n), off)),
                            if m.is_empty() {
                                "[kernel.kallsyms]".to_owned()
                            } else {
                                format!("[{m}]")
                            },
                        ),
                        None => (None, "[kernel.kallsyms]".to_owned()),
                    };
                    FrameSym {
                        id,
                        addr: fr.addr,
                        sym,
                        dso,
                        inlined: Vec::new(),
                    }
                }
                DSO_UNKNOWN => FrameSym {
                    id,
                    addr: fr.addr,
                    sym: None,
                    dso: "[unknown]".into(),
                    inlined: Vec::new(),
                },
                d => {
                    let path = p.dsos[d as usize].clone();
                    let sym = self
                        .symz
                        .lookup_user(&path, fr.addr)
                        .map(|(n, off)| (demangle(n), off));
                    let inlined = if self.inline && sym.is_some() {
                        self.inlined_at(&path, fr.addr)
                    } else {
                        Vec::new()
                    };
                    FrameSym {
                        id,
                        addr: fr.addr,
                        sym,
                        dso: path,
                        inlined,
                    }
                }
            };
            self.cache[i] = Some(f);
        }
        self.cache[i].as_ref().expect("filled above")
    }

    /// The functions DWARF says are inlined at file offset `off` of `path`, innermost first
    /// (all of the chain but its last entry, the symbol table's own function).
    fn inlined_at(&mut self, path: &str, off: u64) -> Vec<String> {
        let Some(chain) = self.symz.src_frames(path, off).filter(|c| c.len() > 1) else {
            return Vec::new();
        };
        chain[..chain.len() - 1]
            .iter()
            .map(|fr| {
                fr.function
                    .as_deref()
                    .map_or_else(|| "??".to_owned(), demangle)
            })
            .collect()
    }
}

fn keep(cfg: &Config, s: &Sample<'_>, comm: &str) -> bool {
    if cfg
        .comms
        .as_ref()
        .is_some_and(|c| !c.iter().any(|x| x == comm))
    {
        return false;
    }
    if cfg.pids.as_ref().is_some_and(|p| !p.contains(&s.pid)) {
        return false;
    }
    if cfg.tids.as_ref().is_some_and(|t| !t.contains(&s.tid)) {
        return false;
    }
    if cfg
        .cpus
        .as_ref()
        .is_some_and(|c| !s.cpu.is_some_and(|cpu| c.contains(&cpu)))
    {
        return false;
    }
    if let Some((a, b)) = cfg.time {
        if s.time < a || s.time > b {
            return false;
        }
    }
    true
}

/// Per-event facts the printer needs.
struct EventView {
    name: String,
    attr_type: u32,
    has_cpu: bool,
    has_period: bool,
    chain: bool,
}

/// Opens the recording (for `--header-only` and for [`run`]).
pub fn open(cfg: &Config) -> Result<Recording> {
    Recording::open(&cfg.input)
}

/// What the samples of each event show, after checking the recording has every field asked
/// for.
struct View {
    events: Vec<EventView>,
    sets: Vec<Set>,
    /// Width of the event-name column (the longest name in the file).
    event_width: usize,
    /// Call chains are recorded and shown.
    any_chain: bool,
}

fn view(cfg: &Config, rec: &Recording, meta: &Meta, formats: &TraceFormats) -> Result<View> {
    let events: Vec<EventView> = meta
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let st = rec.sample_type(i);
            EventView {
                name: e.name.clone(),
                attr_type: e.attr_type,
                has_cpu: st & 0x80 != 0,
                has_period: st & 0x100 != 0,
                chain: e.callchain,
            }
        })
        .collect();
    for (i, e) in events.iter().enumerate() {
        if let Some((attr, field)) = cfg.fields.missing(e.attr_type, rec.sample_type(i)) {
            return Err(Error::Usage(format!(
                "samples for '{}' event do not have {attr} attribute set; cannot print '{field}' field (choose fields the recording has)",
                e.name
            )));
        }
    }
    if cfg.cpus.is_some() && !events.iter().any(|e| e.has_cpu) {
        return Err(Error::Usage(
            "-C: the file does not contain CPU numbers (recorded without PERF_SAMPLE_CPU); remove -C".into(),
        ));
    }
    let event_width = events.iter().map(|e| e.name.len()).max().unwrap_or(0);
    let any_chain = events.iter().any(|e| e.chain) && !cfg.hide_call_graph;
    let sets: Vec<Set> = events
        .iter()
        .map(|e| {
            cfg.fields
                .for_type(e.attr_type, e.has_cpu, e.has_period, e.chain && any_chain)
        })
        .collect();
    if meta.events.iter().any(|e| e.attr_type == 2) && formats.by_id.is_empty() {
        let wants_trace = sets.iter().any(|s| s.has(Field::Trace));
        if wants_trace {
            return Err(Error::Data(format!(
                "{}: the recording has tracepoints but no tracing data (HEADER_TRACING_DATA); re-record it",
                cfg.input.display()
            )));
        }
    }
    Ok(View {
        events,
        sets,
        event_width,
        any_chain,
    })
}

/// The symbolizer and the aggregator (process maps, DWARF unwinding as `report` does it, at
/// perf's default --max-stack) that turn samples into printed frames.
fn decoders(
    cfg: &Config,
    rec: &mut Recording,
    meta: &Meta,
    any_chain: bool,
) -> (Symbols, Aggregator) {
    let build_ids: HashMap<String, String> = meta
        .build_ids
        .iter()
        .map(|b| (b.path.clone(), b.build_id.clone()))
        .collect();
    let syms = Symbols {
        symz: Symbolizer::new(cfg.sysroot.clone(), build_ids),
        cache: Vec::new(),
        // Inline frames are printed in call chains only: no DWARF is read without them.
        inline: !cfg.no_inline && any_chain,
    };
    let mut agg = Aggregator::new(meta.events.len());
    let max_stack = 127;
    rec.set_max_stack(max_stack);
    agg.set_max_stack(max_stack);
    agg.set_unwinder(crate::symbols::unwind::DwarfUnwinder::new(
        crate::app::report::unwind::dso_source_at(&cfg.sysroot, meta),
        max_stack,
    ));
    (syms, agg)
}

/// The command name perf prints: a thread no COMM record named is named after its tid, and
/// the idle task is `swapper`.
fn shown_comm(name: &str, tid: i32) -> std::borrow::Cow<'_, str> {
    if !name.starts_with(':') {
        return std::borrow::Cow::Borrowed(name);
    }
    std::borrow::Cow::Owned(if tid == 0 {
        "swapper".to_string()
    } else {
        format!(":{tid}")
    })
}

/// Streams every sample that passes the filters to `sink`, in time order. The sink returns
/// false to stop early (a closed pipe).
pub fn run(
    cfg: &Config,
    mut rec: Recording,
    sink: &mut dyn FnMut(&Line<'_>) -> bool,
) -> Result<Outcome> {
    let meta = rec.meta().clone();
    let formats = meta
        .tracing_data
        .as_ref()
        .and_then(|b| TraceFormats::parse(b))
        .unwrap_or_default();
    let mut printer = Printer::new(&formats);
    let View {
        events,
        sets,
        event_width,
        any_chain,
    } = view(cfg, &rec, &meta, &formats)?;
    let (mut syms, mut agg) = decoders(cfg, &mut rec, &meta, any_chain);
    let mut frames = Vec::new();
    let mut chain_ids: Vec<u32> = Vec::new();
    let mut trace_text = String::new();
    let mut stopped = false;
    rec.for_each(|r| {
        if stopped {
            return;
        }
        let Record::Sample(s) = r else {
            agg.add(r);
            return;
        };
        if let (Some(t), None) = (agg.profile().kernel_text, syms.symz.kernel_text()) {
            syms.symz.set_kernel_text(t);
        }
        let comm_id = agg.sample_comm(s);
        let Some(ev) = events.get(s.event) else {
            return;
        };
        let set = sets[s.event];
        if !keep(cfg, s, &agg.profile().comms[comm_id as usize]) {
            return;
        }
        let one = Sample {
            callchain: &[],
            user_regs: &[],
            user_stack: Default::default(),
            ..*s
        };
        agg.sample_frames(&one, &mut frames);
        let at_id = frames[0];
        let show_chain = any_chain
            && ev.chain
            && set.has(Field::Ip)
            && (!s.callchain.is_empty() || !s.user_stack.stack.is_empty());
        chain_ids.clear();
        if show_chain {
            agg.sample_frames(s, &mut chain_ids);
        }
        // Fill the cache first, then borrow.
        let at_sym = syms.get(&agg, at_id).sym.clone();
        if let Some(list) = &cfg.symbols {
            if !at_sym
                .as_ref()
                .is_some_and(|(n, _)| list.iter().any(|x| x == n))
            {
                return;
            }
        }
        for &c in &chain_ids {
            syms.get(&agg, c);
        }
        let trace = if set.has(Field::Trace) && ev.attr_type == 2 {
            trace_text.clear();
            printer.print(meta.events[s.event].config, s.raw, &mut trace_text);
            Some(trace_text.as_str())
        } else {
            None
        };
        let cache = &syms.cache;
        let comm = shown_comm(&agg.profile().comms[comm_id as usize], s.tid);
        let line = Line {
            fields: set,
            event: &ev.name,
            event_width,
            comm: &comm,
            pid: s.pid,
            tid: s.tid,
            cpu: s.cpu.unwrap_or(0),
            time: s.time,
            period: s.period,
            ip: s.ip,
            addr: s.addr,
            at: cache[at_id as usize].as_ref().expect("filled"),
            chain: show_chain.then(|| {
                chain_ids
                    .iter()
                    .map(|&c| cache[c as usize].as_ref().expect("filled"))
                    .collect()
            }),
            trace,
            use_callchain: any_chain,
            ns: cfg.ns,
        };
        if !sink(&line) {
            stopped = true;
        }
    });
    let mut warnings = rec.warnings().to_vec();
    warnings.extend(syms.symz.take_warnings());
    Ok(Outcome { warnings, meta })
}

/// Parses perf's `--time start,end` (seconds, either side may be empty).
pub fn parse_time_range(text: &str) -> Result<(u64, u64)> {
    let bad = || {
        Error::Usage(format!(
            "--time '{text}': expected START,END in seconds (e.g. 1025.28,1025.29; either may be empty)"
        ))
    };
    let (a, b) = text.split_once(',').ok_or_else(bad)?;
    let secs = |s: &str, dflt: u64| -> Result<u64> {
        if s.trim().is_empty() {
            return Ok(dflt);
        }
        let v: f64 = s.trim().parse().map_err(|_| bad())?;
        if v.is_nan() || v < 0.0 {
            return Err(bad());
        }
        Ok((v * 1e9).round() as u64)
    };
    Ok((secs(a, 0)?, secs(b, u64::MAX)?))
}
