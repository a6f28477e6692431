//! Setting up DWARF unwinding and chain caps for a report, and the warnings it leads to.

use std::path::PathBuf;

use super::aggregate::{Aggregator, Profile};
use super::Config;
use crate::perfdata::reader::{Meta, Recording};
use crate::symbols::unwind::{DsoSource, DwarfUnwinder};

/// Caps the chains at `--max-stack` while reading and gives the aggregator an unwinder for
/// the user stacks that `--call-graph dwarf` samples carry (it loads nothing until a sample
/// with a stack arrives).
pub fn prepare(rec: &mut Recording, agg: &mut Aggregator, cfg: &Config, meta: &Meta) {
    let max = cfg.max_stack.max(1);
    rec.set_max_stack(max);
    agg.set_max_stack(max);
    agg.set_unwinder(DwarfUnwinder::new(dso_source(cfg, meta), max));
}

/// Where DSOs are found: the sysroot, the recorded build ids and perf's build-id cache.
pub fn dso_source(cfg: &Config, meta: &Meta) -> DsoSource {
    dso_source_at(&cfg.sysroot, meta)
}

/// [`dso_source`] for a root of its own (`ruperf script`).
pub fn dso_source_at(sysroot: &crate::sysroot::Sysroot, meta: &Meta) -> DsoSource {
    DsoSource {
        root: if sysroot.is_host() {
            PathBuf::from("/")
        } else {
            sysroot.root().to_path_buf()
        },
        build_ids: meta
            .build_ids
            .iter()
            .map(|b| (b.path.clone(), b.build_id.clone()))
            .collect(),
        debug_dir: std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".debug")),
        own_vdso: sysroot.is_host(),
        same_kernel: nix::sys::utsname::uname()
            .is_ok_and(|u| meta.os_release.as_deref() == Some(&*u.release().to_string_lossy())),
    }
}

/// Warnings about the recording that perf gives too (lost samples) and about DWARF stacks.
pub fn warnings(p: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    let samples: u64 = p.events.iter().map(|e| e.samples).sum();
    let lost = p.lost_samples.max(p.lost);
    if lost > 0 {
        out.push(format!(
            "the kernel lost {lost} samples of {} (the ring buffer was full while recording): \
             the report undercounts; record with a larger -m or a lower -F",
            samples + lost
        ));
    }
    let u = p.unwind;
    if u.truncated > 0 {
        out.push(format!(
            "{} of {} DWARF call stacks were deeper than the {}-byte stack dump and are cut \
             short: record with a larger dump, e.g. --call-graph dwarf,{}",
            u.truncated,
            u.samples,
            u.dump_size,
            (u.dump_size * 2).clamp(8, 65528)
        ));
    }
    if u.no_regs > 0 {
        out.push(format!(
            "{} of {} samples have a user stack but no usable user registers (ip, sp, bp): \
             their chains stop at the sampled function",
            u.no_regs, u.samples
        ));
    }
    out
}
