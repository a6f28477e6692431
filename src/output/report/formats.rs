//! Machine-readable and flame-graph outputs: JSON, collapsed stacks, SVG, and perf-script text.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::app::report::{entry_passes, Config, Report, Resolved};
use crate::error::{Error, Result};

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
    let (mut syms, mut lines) = (Vec::new(), Vec::new());
    for st in &r.profile.stacks {
        r.profile.stack_frames(st.node, &mut frames);
        let Some(&leaf) = frames.first() else {
            continue;
        };
        r.expand(&frames, &mut syms, &mut lines);
        let comm = &r.profile.comms[st.comm as usize];
        let leaf_sym = &r.syms[r.frame_sym[leaf as usize] as usize];
        if !entry_passes(cfg, comm, leaf_sym, None) {
            continue;
        }
        let mut line = String::with_capacity(16 * frames.len());
        line.push_str(&comm.replace([';', ' '], "_"));
        for &s in syms.iter().rev() {
            let sym = &r.syms[s as usize];
            line.push(';');
            let name = if sym.resolved {
                sym.name.clone()
            } else {
                format!("[{}]", sym.dso)
            };
            line.push_str(&name.replace(';', ":"));
            if sym.kernel {
                line.push_str("_[k]");
            } else if sym.inlined {
                // stackcollapse-perf's mark for inlined frames.
                line.push_str("_[i]");
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
/// speedscope import), through `ruperf script`'s renderer. Returns the warnings to print.
pub fn script(cfg: &Config, out: &mut dyn Write) -> Result<Vec<String>> {
    let scfg = crate::app::script::Config {
        input: cfg.input.clone(),
        sysroot: cfg.sysroot.clone(),
        comms: cfg.comms.clone(),
        no_inline: !cfg.inline,
        ..Default::default()
    };
    crate::output::script::stream(&scfg, false, out)
}
