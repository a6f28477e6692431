//! The `perf report --stdio` text layout.

use std::fmt::Write;

use crate::app::report::callgraph::print_graph;
use crate::app::report::energy::NJ_PER_J;
use crate::app::report::{Entry, GraphMode, Report, Section, SortKey};

/// perf's short sample counts: 5038 → "5K".
fn short_count(n: u64) -> String {
    if n > 1_000_000_000 {
        format!("{}G", n / 1_000_000_000)
    } else if n > 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else if n > 1000 {
        format!("{}K", n / 1000)
    } else {
        n.to_string()
    }
}

fn column_name(k: SortKey) -> &'static str {
    match k {
        SortKey::Comm => "Command",
        SortKey::Pid => "Pid:Command",
        SortKey::Dso => "Shared Object",
        SortKey::Sym => "Symbol",
        SortKey::Srcline => "Source:Line",
    }
}

fn column_value(k: SortKey, e: &Entry) -> String {
    match k {
        SortKey::Comm => e.comm.clone().unwrap_or_default(),
        SortKey::Pid => format!(
            "{:>7}:{}",
            e.pid.unwrap_or(-1),
            e.comm.as_deref().unwrap_or("")
        ),
        SortKey::Dso => e.dso.clone().unwrap_or_default(),
        SortKey::Sym => format!(
            "[{}] {}{}",
            if e.kernel { 'k' } else { '.' },
            e.symbol.as_deref().unwrap_or(""),
            if e.inlined { " (inlined)" } else { "" }
        ),
        SortKey::Srcline => e.srcline.clone().unwrap_or_default(),
    }
}

fn header_info(r: &Report, out: &mut String) {
    let m = &r.meta;
    out.push_str("# ========\n");
    let _ = writeln!(out, "# data size : {}", m.data_size);
    if let Some(h) = &m.hostname {
        let _ = writeln!(out, "# hostname : {h}");
    }
    if let Some(v) = &m.os_release {
        let _ = writeln!(out, "# os release : {v}");
    }
    if let Some(v) = &m.perf_version {
        let _ = writeln!(out, "# perf version : {v}");
    }
    if let Some(v) = &m.arch {
        let _ = writeln!(out, "# arch : {v}");
    }
    if let Some((online, avail)) = m.nr_cpus {
        let _ = writeln!(out, "# nrcpus online : {online}");
        let _ = writeln!(out, "# nrcpus avail : {avail}");
    }
    if let Some(v) = &m.cpu_desc {
        let _ = writeln!(out, "# cpudesc : {v}");
    }
    if !m.cmdline.is_empty() {
        let _ = writeln!(out, "# cmdline : {}", m.cmdline.join(" "));
    }
    for e in &m.events {
        let mut line = format!(
            "# event : name = {}, type = {}, config = {:#x}",
            e.name, e.attr_type, e.config
        );
        if let Some(f) = e.frequency {
            let _ = write!(line, ", sample_freq = {f}");
        }
        if let Some(p) = e.period {
            let _ = write!(line, ", sample_period = {p}");
        }
        if e.callchain {
            line.push_str(", sample_type = CALLCHAIN");
        }
        let _ = writeln!(out, "{line}");
    }
    for b in &m.build_ids {
        let _ = writeln!(out, "# build id : {} {}", b.build_id, b.path);
    }
    out.push_str("# ========\n#\n");
}

/// Renders the report as `perf report --stdio` does.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    if r.header {
        header_info(r, &mut out);
    } else {
        out.push_str(
            "# To display the perf.data header info, please use --header/--header-only options.\n#\n",
        );
    }
    let _ = write!(out, "#\n# Total Lost Samples: {}\n#\n", r.lost_samples);
    if let Some(e) = &r.energy {
        energy_header(e, &mut out);
    }
    for s in &r.sections {
        section(r, s, &mut out);
    }
    out
}

/// `--energy`: what was measured, how much the samples carry, and that it is an estimate.
fn energy_header(e: &crate::app::report::energy::EnergySummary, out: &mut String) {
    let _ = writeln!(
        out,
        "# Energy (estimate): {:.3} J of {:.3} J measured ({}) attributed to samples; \
         {:.3} J fell in intervals without samples",
        e.attributed_joules,
        e.measured_joules,
        e.domains.join(", "),
        e.unattributed_joules
    );
    let _ = writeln!(
        out,
        "# Each {:.0} ms interval's package energy is split evenly among the samples taken on \
         that package in it (GPU energy among all of its samples)",
        e.interval_ms
    );
    if e.failed_readings > 0 {
        let _ = writeln!(
            out,
            "# {} domain readings failed: their energy is unknown and not counted",
            e.failed_readings
        );
    }
    out.push_str("#\n");
}

fn section(r: &Report, s: &Section, out: &mut String) {
    let _ = writeln!(
        out,
        "# Samples: {} of event '{}'",
        short_count(s.samples),
        s.event
    );
    let _ = write!(out, "# Event count (approx.): {}\n#\n", s.event_count);
    // Columns: percentages, optional sample count, then the sort keys.
    let mut heads: Vec<(String, usize, bool)> = Vec::new(); // (title, width, right-aligned)
    if r.children {
        heads.push(("Children".into(), 8, true));
        heads.push(("Self".into(), 8, true));
    } else {
        heads.push(("Overhead".into(), 8, true));
    }
    let energy = r.energy.is_some();
    if energy {
        if r.children {
            heads.push(("Children J".into(), 10, true));
        }
        heads.push((
            if r.children { "Self J" } else { "Joules" }.into(),
            10,
            true,
        ));
    }
    if r.show_samples {
        heads.push(("Samples".into(), 12, true));
    }
    let keys: Vec<SortKey> = r.sort.clone();
    let values: Vec<Vec<String>> = s
        .entries
        .iter()
        .map(|e| keys.iter().map(|&k| column_value(k, e)).collect())
        .collect();
    for (i, &k) in keys.iter().enumerate() {
        let w = values
            .iter()
            .map(|v| v[i].chars().count())
            .max()
            .unwrap_or(0)
            .max(column_name(k).len());
        heads.push((column_name(k).into(), w, false));
    }
    let mut title = String::from("#");
    let mut dots = String::from("#");
    for (name, w, right) in &heads {
        if *right {
            let _ = write!(title, " {name:>w$} ");
        } else {
            let _ = write!(title, " {name:<w$} ");
        }
        let _ = write!(dots, " {} ", ".".repeat(*w));
    }
    out.push_str(title.trim_end());
    out.push('\n');
    out.push_str(dots.trim_end());
    out.push_str("\n#\n");
    let graph = r.graph.filter(|g| *g != GraphMode::None);
    for (e, vals) in s.entries.iter().zip(&values) {
        let mut line = String::from(" ");
        let mut cells: Vec<String> = Vec::new();
        if let Some(c) = e.children {
            cells.push(format!("{c:.2}%"));
        }
        cells.push(format!("{:.2}%", e.self_pct));
        if energy {
            let joules = |nj: u64| format!("{:.4}", nj as f64 / NJ_PER_J);
            if let Some(c) = e.children_period {
                cells.push(joules(c));
            }
            cells.push(joules(e.self_period));
        }
        if r.show_samples {
            cells.push(e.samples.to_string());
        }
        cells.extend(vals.iter().cloned());
        for ((_, w, right), cell) in heads.iter().zip(&cells) {
            if *right {
                let _ = write!(line, " {cell:>w$} ");
            } else {
                let _ = write!(line, " {cell:<w$} ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if let Some(mode) = graph {
            if mode == GraphMode::Folded {
                folded_chains(out, &e.callchain, s.event_count);
            } else {
                let entry_period = e.children_period.unwrap_or(e.self_period);
                print_graph(out, &e.callchain, entry_period, s.event_count, mode);
            }
        }
    }
    out.push('\n');
}

/// perf's `-g folded`: each chain on one line after its percentage, largest first (as perf
/// orders them).
fn folded_chains(out: &mut String, roots: &[crate::app::report::callgraph::CallNode], total: u64) {
    fn walk(
        n: &crate::app::report::callgraph::CallNode,
        path: &mut Vec<String>,
        lines: &mut Vec<(u64, String)>,
    ) {
        if n.inlined {
            path.push(format!("{} (inlined)", n.symbol));
        } else {
            path.push(n.symbol.clone());
        }
        if n.ends > 0 {
            lines.push((n.ends, path.join(";")));
        }
        for c in &n.children {
            walk(c, path, lines);
        }
        path.pop();
    }
    let mut path = Vec::new();
    let mut lines = Vec::new();
    for r in roots {
        walk(r, &mut path, &mut lines);
    }
    lines.sort_by_key(|l| std::cmp::Reverse(l.0));
    for (ends, chain) in lines {
        let pct = ends as f64 * 100.0 / total.max(1) as f64;
        let _ = writeln!(out, "{pct:.2}% {chain}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_counts_like_perf() {
        assert_eq!(short_count(999), "999");
        assert_eq!(short_count(1000), "1000");
        assert_eq!(short_count(5038), "5K");
        assert_eq!(short_count(12_345_678), "12M");
    }
}
