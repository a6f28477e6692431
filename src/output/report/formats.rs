//! Machine-readable and flame-graph outputs: JSON, collapsed stacks, SVG, and perf-script text.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use crate::app::report::aggregate::{Aggregator, DSO_KERNEL, DSO_UNKNOWN};
use crate::app::report::{entry_passes, Config, Report, Resolved};
use crate::error::{Error, Result};
use crate::perfdata::reader::{Record, Recording};
use crate::symbols::{demangle, Symbolizer};

/// The report as pretty JSON (schema: docs/report-json.md).
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// Collapsed stacks: `comm;outermost;…;leaf COUNT`, one line per distinct stack, sorted, with
/// sample counts (they add up to the number of samples that pass the filters).
pub fn folded_lines(r: &Resolved, cfg: &Config) -> Vec<String> {
    let mut acc: BTreeMap<String, u64> = BTreeMap::new();
    let mut frames = Vec::new();
    for st in &r.profile.stacks {
        r.profile.stack_frames(st.node, &mut frames);
        let Some(&leaf) = frames.first() else {
            continue;
        };
        let comm = &r.profile.comms[st.comm as usize];
        let leaf_sym = &r.syms[r.frame_sym[leaf as usize] as usize];
        if !entry_passes(cfg, comm, leaf_sym, None) {
            continue;
        }
        let mut line = String::with_capacity(16 * frames.len());
        line.push_str(&comm.replace([';', ' '], "_"));
        for &f in frames.iter().rev() {
            let sym = &r.syms[r.frame_sym[f as usize] as usize];
            line.push(';');
            let name = if sym.resolved {
                sym.name.clone()
            } else {
                format!("[{}]", sym.dso)
            };
            line.push_str(&name.replace(';', ":"));
            if sym.kernel {
                line.push_str("_[k]");
            }
        }
        // With --energy a stack weighs its attributed microjoules instead of its samples.
        *acc.entry(line).or_default() += if cfg.energy {
            st.period / 1000
        } else {
            st.samples
        };
    }
    acc.into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect()
}

/// Writes a flame graph SVG of the folded stacks to `path`.
/// The caller checks for samples first (none is a warning, as in perf report).
pub fn flamegraph(lines: &[String], title: &str, path: &Path) -> Result<()> {
    if lines.is_empty() {
        return Err(Error::Internal(format!(
            "no samples to draw in {}",
            path.display()
        )));
    }
    let file =
        crate::sysroot::create_output(path, 0o666, false).map_err(|source| Error::CantCreate {
            path: path.to_path_buf(),
            source,
        })?;
    let mut w = std::io::BufWriter::new(file);
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = title.to_owned();
    opt.count_name = "samples".to_owned();
    inferno::flamegraph::from_lines(&mut opt, lines.iter().map(String::as_str), &mut w)
        .and_then(|_| w.flush())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Streams the samples as `perf script` prints them (the text the Firefox profiler and
/// speedscope import). Returns the warnings to print.
pub fn script(cfg: &Config, out: &mut dyn Write) -> Result<Vec<String>> {
    let mut rec = Recording::open(&cfg.input)?;
    let meta = rec.meta().clone();
    let names: Vec<String> = meta.events.iter().map(|e| e.name.clone()).collect();
    let build_ids: HashMap<String, String> = meta
        .build_ids
        .iter()
        .map(|b| (b.path.clone(), b.build_id.clone()))
        .collect();
    let mut symz = Symbolizer::new(cfg.sysroot.clone(), build_ids);
    let mut agg = Aggregator::new(meta.events.len());
    crate::app::report::unwind::prepare(&mut rec, &mut agg, cfg, &meta);
    let mut lines: Vec<Option<String>> = Vec::new();
    let mut frames = Vec::new();
    let mut buf = String::new();
    let mut io_err: Option<std::io::Error> = None;
    rec.for_each(|r| {
        if io_err.is_some() {
            return;
        }
        let Record::Sample(s) = r else {
            agg.add(r);
            return;
        };
        if let (Some(t), None) = (agg.profile().kernel_text, symz_kernel_text_set(&symz)) {
            symz.set_kernel_text(t);
        }
        let comm = agg.sample_comm(s);
        agg.sample_frames(s, &mut frames);
        let p = agg.profile();
        let comm_name = &p.comms[comm as usize];
        if cfg
            .comms
            .as_ref()
            .is_some_and(|c| !c.iter().any(|x| x == comm_name))
        {
            return;
        }
        buf.clear();
        use std::fmt::Write as _;
        let _ = writeln!(
            buf,
            "{} {:>5} {:>5}.{:06}: {:>10} {}: ",
            comm_name,
            s.tid,
            s.time / 1_000_000_000,
            s.time % 1_000_000_000 / 1000,
            s.period,
            names.get(s.event).map_or("?", |n| n.as_str())
        );
        for &f in &frames {
            if lines.len() <= f as usize {
                lines.resize(f as usize + 1, None);
            }
            if lines[f as usize].is_none() {
                let fr = p.frames[f as usize];
                let text = match fr.dso {
                    DSO_KERNEL => match symz.lookup_kernel(fr.addr) {
                        Some((n, m, off)) => {
                            let dso = if m.is_empty() {
                                "[kernel.kallsyms]".to_owned()
                            } else {
                                format!("[{m}]")
                            };
                            format!("{:>16x} {}+{:#x} ({dso})", fr.addr, demangle(n), off)
                        }
                        None => format!("{:>16x} [unknown] ([kernel.kallsyms])", fr.addr),
                    },
                    DSO_UNKNOWN => format!("{:>16x} [unknown] ([unknown])", fr.addr),
                    d => {
                        let path = p.dsos[d as usize].clone();
                        match symz.lookup_user(&path, fr.addr) {
                            Some((n, off)) => {
                                format!("{:>16x} {}+{:#x} ({path})", fr.addr, demangle(n), off)
                            }
                            None => format!("{:>16x} [unknown] ({path})", fr.addr),
                        }
                    }
                };
                lines[f as usize] = Some(text);
            }
            buf.push('\t');
            buf.push_str(lines[f as usize].as_deref().unwrap_or(""));
            buf.push('\n');
        }
        buf.push('\n');
        if let Err(e) = out.write_all(buf.as_bytes()) {
            io_err = Some(e);
        }
    });
    if let Some(e) = io_err {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(Error::io("writing the script output", e));
        }
    }
    let mut warnings = rec.warnings().to_vec();
    warnings.extend(symz.take_warnings());
    Ok(warnings)
}

fn symz_kernel_text_set(s: &Symbolizer) -> Option<u64> {
    s.kernel_text()
}
