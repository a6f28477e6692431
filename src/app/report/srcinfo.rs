//! Inline frames and source lines for the frames of a profile.
//!
//! One sampled address can stand for several frames: the functions inlined at it, innermost
//! first, then the function the symbol table names. The profile keeps one [`Frame`] per
//! address; this module adds, per frame, the run of extra symbol ids to show before the
//! frame's own symbol ([`Resolved::expand`]) and, when `srcline` is a sort key, the frame's
//! `file:line`. DWARF is read only when one of them is wanted.

use std::collections::HashMap;

use super::aggregate::{Frame, Profile, DSO_KERNEL, DSO_UNKNOWN};
use super::{dso_short_name, Resolved, SymInfo};
use crate::symbols::{demangle, dwarf, Symbolizer};

/// What the report needs from DWARF.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// Inline frames (`--inline`, with call chains).
    pub inline: bool,
    /// Source lines (`--sort srcline`).
    pub srcline: bool,
    /// Only the sampled (leaf) frames are shown: callers need no DWARF.
    pub leaves_only: bool,
}

/// Inline runs and source lines of every frame.
#[derive(Debug, Default)]
pub struct SrcInfo {
    /// Flat inline symbol ids; frame `f` owns `inline_syms[runs[f].0..][..runs[f].1]`.
    pub inline_syms: Vec<u32>,
    /// Per frame: (start, length) into `inline_syms` (empty when not asked for).
    pub runs: Vec<(u32, u32)>,
    /// Distinct source lines as shown.
    pub srclines: Vec<String>,
    /// Per frame: index into `srclines` (empty when not asked for).
    pub frame_line: Vec<u32>,
}

/// perf's srcline text for an address without line information: `sym+OFFSET` (decimal) or
/// `dso[ADDR]`.
fn fallback_line(sym: &SymInfo, off: Option<u64>, addr: u64) -> String {
    match (sym.resolved, off) {
        (true, Some(o)) => format!("{}+{o}", sym.name),
        _ => format!("{}[{addr:x}]", sym.dso),
    }
}

/// Computes the inline runs and source lines of the profile's frames, adding the inline
/// symbols to `syms`/`ids`.
pub(super) fn attach(
    p: &Profile,
    symz: &mut Symbolizer,
    want: Wanted,
    syms: &mut Vec<SymInfo>,
    ids: &mut HashMap<SymInfo, u32>,
    frame_sym: &[u32],
) -> SrcInfo {
    let mut out = SrcInfo::default();
    if !want.inline && !want.srcline {
        return out;
    }
    let mut line_ids: HashMap<String, u32> = HashMap::new();
    if want.inline {
        out.runs = vec![(0, 0); p.frames.len()];
    }
    if want.srcline {
        out.frame_line = vec![0; p.frames.len()];
    }
    let mut order: Vec<u32> = if want.leaves_only {
        let mut leaves: Vec<u32> = p
            .stacks
            .iter()
            .filter(|st| st.node != 0)
            .map(|st| p.nodes[st.node as usize].1)
            .collect();
        leaves.sort_unstable();
        leaves.dedup();
        leaves
    } else {
        (0..p.frames.len() as u32).collect()
    };
    order.sort_by_key(|&i| (p.frames[i as usize].dso, p.frames[i as usize].addr));
    for i in order {
        let f: Frame = p.frames[i as usize];
        let own = &syms[frame_sym[i as usize] as usize];
        let user = f.dso != DSO_KERNEL && f.dso != DSO_UNKNOWN;
        let path = &p.dsos[f.dso as usize];
        let chain = if user {
            symz.src_frames(path, f.addr)
        } else {
            None
        };
        if want.srcline {
            let text = chain
                .as_ref()
                .and_then(|c| c.first())
                .and_then(dwarf::srcline)
                .unwrap_or_else(|| {
                    let off = if user {
                        symz.lookup_user(path, f.addr).map(|(_, o)| o)
                    } else {
                        symz.lookup_kernel(f.addr).map(|(_, _, o)| o)
                    };
                    let addr = if user {
                        symz.vaddr(path, f.addr).unwrap_or(f.addr)
                    } else {
                        f.addr
                    };
                    fallback_line(own, off, addr)
                });
            let next = out.srclines.len() as u32;
            let id = *line_ids.entry(text.clone()).or_insert(next);
            if id == next {
                out.srclines.push(text);
            }
            out.frame_line[i as usize] = id;
        }
        let Some(chain) = chain.filter(|c| want.inline && c.len() > 1) else {
            continue;
        };
        let start = out.inline_syms.len() as u32;
        let dso = dso_short_name(path);
        // All but the last frame are inlined; the last is the symbol table's function.
        for fr in &chain[..chain.len() - 1] {
            let name = fr
                .function
                .as_deref()
                .map_or_else(|| "??".to_owned(), demangle);
            let info = SymInfo {
                name,
                dso: dso.clone(),
                kernel: false,
                resolved: true,
                inlined: true,
            };
            let next = syms.len() as u32;
            let id = *ids.entry(info.clone()).or_insert(next);
            if id == next {
                syms.push(info);
            }
            out.inline_syms.push(id);
        }
        out.runs[i as usize] = (start, chain.len() as u32 - 1);
    }
    out
}

impl Resolved {
    /// The symbols of a stack given leaf first, with each frame's inline run expanded before
    /// its own symbol (innermost first); `lines` gets each position's source line id when
    /// source lines were computed.
    pub fn expand(&self, frames: &[u32], syms: &mut Vec<u32>, lines: &mut Vec<u32>) {
        syms.clear();
        lines.clear();
        let src = &self.src;
        for &f in frames {
            let line = src.frame_line.get(f as usize).copied().unwrap_or(0);
            if let Some(&(start, len)) = src.runs.get(f as usize) {
                for &s in &src.inline_syms[start as usize..(start + len) as usize] {
                    syms.push(s);
                    lines.push(line);
                }
            }
            syms.push(self.frame_sym[f as usize]);
            lines.push(line);
        }
    }

    /// The source line shown for id `id`.
    pub fn srcline(&self, id: u32) -> &str {
        self.src
            .srclines
            .get(id as usize)
            .map_or("??:0", String::as_str)
    }
}
