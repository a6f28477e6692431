//! Report entries with Children/Self accumulation, per-entry call trees, and perf's call-graph
//! text layout.

use std::collections::HashMap;
use std::fmt::Write;

use serde::Serialize;

use super::aggregate::EventTotals;
use super::{Config, Entry, GraphMode, Order, Resolved, SortKey};

/// A node of an entry's call tree.
#[derive(Debug, Clone, Serialize)]
pub struct CallNode {
    /// Symbol name.
    pub symbol: String,
    /// Shared object.
    pub dso: String,
    /// An inlined function (perf prints ` (inlined)` after the name).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inlined: bool,
    /// Sum of periods through this node.
    pub period: u64,
    /// `period` as a percentage of the event's total.
    pub percent: f64,
    /// Period of the chains that end at this node.
    pub ends: u64,
    /// Children above the threshold, largest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<CallNode>,
    /// Number of children before the threshold was applied.
    #[serde(skip)]
    pub all_children: usize,
}

#[derive(Debug, Default)]
struct TNode {
    sym: u32,
    hits: u64,
    ends: u64,
    children: Vec<u32>,
}

#[derive(Debug)]
struct Tree {
    nodes: Vec<TNode>,
}

impl Tree {
    fn new() -> Self {
        Tree {
            nodes: vec![TNode::default()],
        }
    }

    fn insert(&mut self, path: impl Iterator<Item = u32>, w: u64) {
        let mut cur = 0usize;
        self.nodes[0].hits = self.nodes[0].hits.saturating_add(w);
        for s in path {
            let found = self.nodes[cur]
                .children
                .iter()
                .copied()
                .find(|&c| self.nodes[c as usize].sym == s);
            let next = match found {
                Some(c) => c as usize,
                None => {
                    let id = self.nodes.len();
                    self.nodes.push(TNode {
                        sym: s,
                        ..Default::default()
                    });
                    self.nodes[cur].children.push(id as u32);
                    id
                }
            };
            self.nodes[next].hits = self.nodes[next].hits.saturating_add(w);
            cur = next;
        }
        self.nodes[cur].ends = self.nodes[cur].ends.saturating_add(w);
    }

    fn export(&self, r: &Resolved, at: usize, min_hits: u64, total: u64) -> Vec<CallNode> {
        let mut kids: Vec<usize> = self.nodes[at]
            .children
            .iter()
            .map(|&c| c as usize)
            .filter(|&c| self.nodes[c].hits >= min_hits.max(1))
            .collect();
        kids.sort_by(|&a, &b| {
            let (a, b) = (&self.nodes[a], &self.nodes[b]);
            b.hits.cmp(&a.hits).then(a.sym.cmp(&b.sym))
        });
        kids.into_iter()
            .map(|idx| {
                let n = &self.nodes[idx];
                let sym = &r.syms[n.sym as usize];
                CallNode {
                    symbol: sym.name.clone(),
                    dso: sym.dso.clone(),
                    inlined: sym.inlined,
                    period: n.hits,
                    percent: pct(n.hits, total),
                    ends: n.ends,
                    children: self.export(r, idx, min_hits, total),
                    all_children: n.children.len(),
                }
            })
            .collect()
    }
}

fn pct(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    comm: Option<u32>,
    pid: Option<i32>,
    dso: Option<u32>,
    sym: Option<u32>,
    srcline: Option<u32>,
}

#[derive(Debug)]
struct Acc {
    self_period: u64,
    children_period: u64,
    samples: u64,
    sym: u32,
    line: u32,
    comm: u32,
    pid: i32,
    tree: Option<Tree>,
}

/// Builds the sorted, filtered entries of one event.
pub(super) fn entries(
    r: &Resolved,
    cfg: &Config,
    event: u32,
    children: bool,
    order: Order,
    graph: Option<GraphMode>,
    totals: EventTotals,
) -> Vec<Entry> {
    let has = |k: SortKey| cfg.sort.contains(&k);
    let (k_comm, k_pid, k_dso, k_sym, k_line) = (
        has(SortKey::Comm),
        has(SortKey::Pid),
        has(SortKey::Dso),
        has(SortKey::Sym),
        has(SortKey::Srcline),
    );
    let mut dso_ids: HashMap<&str, u32> = HashMap::new();
    let sym_dso: Vec<u32> = r
        .syms
        .iter()
        .map(|s| {
            let n = dso_ids.len() as u32;
            *dso_ids.entry(s.dso.as_str()).or_insert(n)
        })
        .collect();
    let key_of = |comm: u32, pid: i32, sym: u32, line: u32| Key {
        comm: (k_comm || k_pid).then_some(comm),
        pid: k_pid.then_some(pid),
        dso: k_dso.then(|| sym_dso[sym as usize]),
        sym: k_sym.then_some(sym),
        srcline: k_line.then_some(line),
    };
    let want_tree = graph.is_some() && cfg.format != super::Format::Folded;
    let mut accs: HashMap<Key, Acc> = HashMap::new();
    let mut frames = Vec::new();
    let mut syms: Vec<u32> = Vec::new();
    let mut lines: Vec<u32> = Vec::new();
    let mut seen: Vec<Key> = Vec::new();
    for st in r.profile.stacks.iter().filter(|s| s.event == event) {
        r.profile.stack_frames(st.node, &mut frames);
        r.expand(&frames, &mut syms, &mut lines);
        // The sample's own entry is the symbol-table function, never an inlined one.
        let Some(&leaf_frame) = frames.first() else {
            continue;
        };
        let leaf = r.frame_sym[leaf_frame as usize];
        let leaf_line = lines.first().copied().unwrap_or(0);
        let leaf_key = key_of(st.comm, st.pid, leaf, leaf_line);
        let a = accs.entry(leaf_key).or_insert_with(|| Acc {
            self_period: 0,
            children_period: 0,
            samples: 0,
            sym: leaf,
            line: leaf_line,
            comm: st.comm,
            pid: st.pid,
            tree: want_tree.then(Tree::new),
        });
        a.self_period = a.self_period.saturating_add(st.period);
        a.samples += st.samples;
        if children {
            a.children_period = a.children_period.saturating_add(st.period);
        }
        if let Some(t) = a.tree.as_mut() {
            match order {
                Order::Callee => t.insert(syms.iter().copied(), st.period),
                Order::Caller => t.insert(syms.iter().rev().copied(), st.period),
            }
        }
        if !children {
            continue;
        }
        seen.clear();
        seen.push(leaf_key);
        let n = syms.len();
        for step in 0..n {
            // Caller order visits from the root, callee order from the leaf.
            let i = match order {
                Order::Caller => n - 1 - step,
                Order::Callee => step,
            };
            let s = syms[i];
            let k = key_of(st.comm, st.pid, s, lines[i]);
            if seen.contains(&k) {
                continue;
            }
            seen.push(k);
            let a = accs.entry(k).or_insert_with(|| Acc {
                self_period: 0,
                children_period: 0,
                samples: 0,
                sym: s,
                line: lines[i],
                comm: st.comm,
                pid: st.pid,
                tree: want_tree.then(Tree::new),
            });
            a.children_period = a.children_period.saturating_add(st.period);
            if let Some(t) = a.tree.as_mut() {
                match order {
                    Order::Caller => t.insert(syms[..=i].iter().rev().copied(), st.period),
                    Order::Callee => t.insert(syms[i..].iter().copied(), st.period),
                }
            }
        }
    }
    let keys = Keys {
        comm: k_comm || k_pid,
        pid: k_pid,
        dso: k_dso,
        sym: k_sym,
        srcline: k_line,
    };
    finish(r, cfg, accs, children, keys, totals.period)
}

/// Which sort keys the entries show.
#[derive(Debug, Clone, Copy)]
struct Keys {
    comm: bool,
    pid: bool,
    dso: bool,
    sym: bool,
    srcline: bool,
}

/// Filters the accumulated entries, builds their call trees and sorts them as perf does.
fn finish(
    r: &Resolved,
    cfg: &Config,
    accs: HashMap<Key, Acc>,
    children: bool,
    k: Keys,
    total: u64,
) -> Vec<Entry> {
    let min_hits = (total as f64 * cfg.graph_min_percent / 100.0).ceil() as u64;
    let mut out: Vec<Entry> = accs
        .into_values()
        .filter_map(|a| {
            let sym = &r.syms[a.sym as usize];
            let comm = &r.profile.comms[a.comm as usize];
            if !super::entry_passes(cfg, comm, sym, None) {
                return None;
            }
            let first = if children {
                a.children_period
            } else {
                a.self_period
            };
            if pct(first, total) < cfg.percent_limit {
                return None;
            }
            Some(Entry {
                children: children.then(|| pct(a.children_period, total)),
                self_pct: pct(a.self_period, total),
                children_period: children.then_some(a.children_period),
                self_period: a.self_period,
                samples: a.samples,
                comm: k.comm.then(|| comm.clone()),
                pid: k.pid.then_some(a.pid),
                dso: k.dso.then(|| sym.dso.clone()),
                symbol: k.sym.then(|| sym.name.clone()),
                inlined: k.sym && sym.inlined,
                srcline: k.srcline.then(|| r.srcline(a.line).to_owned()),
                kernel: sym.kernel,
                callchain: a
                    .tree
                    .as_ref()
                    .map(|t| t.export(r, 0, min_hits, total))
                    .unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        let fa = a.children_period.unwrap_or(a.self_period);
        let fb = b.children_period.unwrap_or(b.self_period);
        fb.cmp(&fa)
            .then(b.self_period.cmp(&a.self_period))
            .then_with(|| a.comm.cmp(&b.comm))
            .then_with(|| a.dso.cmp(&b.dso))
            .then_with(|| a.symbol.cmp(&b.symbol))
            .then_with(|| a.srcline.cmp(&b.srcline))
    });
    out
}

/// Prints an entry's call tree the way `perf report --stdio` does.
pub fn print_graph(
    out: &mut String,
    roots: &[CallNode],
    entry_period: u64,
    total: u64,
    mode: GraphMode,
) {
    const MARGIN: usize = 12;
    if roots.is_empty() {
        return;
    }
    let mut margin = MARGIN;
    let mut level: &[CallNode] = roots;
    let mut parent_hits = entry_period;
    if roots.len() == 1 && roots[0].period == entry_period {
        // One chain covering the whole entry: no percentage, "---" prefix.
        let chain = compressed(&roots[0]);
        for (j, n) in chain.iter().enumerate() {
            pad(out, margin);
            if j == 0 {
                out.push_str("|\n");
                pad(out, margin);
                out.push_str("---");
            } else {
                out.push_str("   ");
            }
            push_name(out, n);
        }
        margin += 3;
        let last = chain[chain.len() - 1];
        level = &last.children;
        parent_hits = last.period;
    }
    let mask = vec![true];
    print_level(out, level, &mask, margin, total, parent_hits, mode);
    out.push('\n');
}

/// A call-graph line's name, with perf's ` (inlined)` mark.
fn push_name(out: &mut String, n: &CallNode) {
    out.push_str(&n.symbol);
    if n.inlined {
        out.push_str(" (inlined)");
    }
    out.push('\n');
}

fn pad(out: &mut String, mut n: usize) {
    const SPACES: &str = "                                ";
    while n > 0 {
        let k = n.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// The run of nodes printed as one block: a node continues into its only child while no
/// chain ends at it.
fn compressed(n: &CallNode) -> Vec<&CallNode> {
    let mut v = vec![n];
    let mut cur = n;
    while cur.all_children == 1 && cur.ends == 0 && cur.children.len() == 1 {
        cur = &cur.children[0];
        v.push(cur);
    }
    v
}

fn print_level(
    out: &mut String,
    kids: &[CallNode],
    mask: &[bool],
    margin: usize,
    total: u64,
    parent_hits: u64,
    mode: GraphMode,
) {
    let depth = mask.len();
    for (i, child) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        // Separator line with the mask as it was.
        pad(out, margin);
        for &m in mask.iter() {
            out.push_str(if m { "|          " } else { "           " });
        }
        out.push('\n');
        let mut new_mask = mask.to_vec();
        if last {
            new_mask[depth - 1] = false;
        }
        let chain = compressed(child);
        for (j, n) in chain.iter().enumerate() {
            pad(out, margin);
            for (k, &m) in new_mask.iter().enumerate() {
                out.push(if m { '|' } else { ' ' });
                if j == 0 && k == depth - 1 {
                    let base = if mode == GraphMode::Fractal {
                        parent_hits
                    } else {
                        total
                    };
                    let _ = write!(out, "--{:.2}%--", pct(child.period, base));
                } else {
                    out.push_str("          ");
                }
            }
            push_name(out, n);
        }
        let end = chain[chain.len() - 1];
        new_mask.push(true);
        print_level(
            out,
            &end.children,
            &new_mask,
            margin,
            total,
            end.period,
            mode,
        );
    }
}
