//! DWARF unwinding of the user stacks that `record --call-graph dwarf` (ruperf's or perf's)
//! dumps with each sample, with the `framehop` crate.
//!
//! - Each DSO's unwind sections (`.eh_frame` with `.eh_frame_hdr`, or `.debug_frame`) are read
//!   once, on first use, through a `ReadCache` that reads only those sections; the file must
//!   carry the build id the recording gives (else perf's build-id cache copy is used, else the
//!   DSO has no unwind data and the chain ends in it).
//! - Each process gets a framehop unwinder whose modules are added lazily, as unwinding
//!   reaches a mapping; it is rebuilt when the process's executable maps change.
//! - Where a module has no CFI for an address, framehop's fallback follows the frame pointer.
//! - Each distinct input is unwound once: a walk is remembered under (process, maps version,
//!   ip, sp, bp) with the stack words it read, and a later sample whose dump holds the same
//!   values at those words gets the same frames without a walk (exact, and a few compares
//!   instead of hashing 8 KiB per sample).
//! - Unwinding stops at the root, at a return address of 0, at the first stack read outside
//!   the dump (counted as truncated when the dump was full), at a DSO replaced since the
//!   recording, or after `max_stack` frames. It never panics on bad CFI or short stacks.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};

/// Section bytes shared by every process that maps the DSO.
type Bytes = Arc<[u8]>;

/// perf's x86_64 register numbers (`enum perf_event_x86_regs`).
const REG_BP: u32 = 6;
const REG_SP: u32 = 7;
const REG_IP: u32 = 8;

/// The frame perf shows where an unwinding ran out of readable stack.
pub const CUT_MARK: u64 = u64::MAX;

/// Walks remembered before the memo is cleared (bounds its memory).
const MEMO_LIMIT: usize = 1 << 20;

/// An executable mapping of the sampled process, as the unwinder needs it.
#[derive(Debug, Clone, Copy)]
pub struct MapRef<'a> {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// File offset of `start`.
    pub pgoff: u64,
    /// The DSO's path as recorded.
    pub path: &'a str,
}

/// Counts for the report's warnings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnwindStats {
    /// Samples with user registers and a stack dump.
    pub samples: u64,
    /// Of those, stacks that went deeper than the dump (the chain is cut there).
    pub truncated: u64,
    /// Samples whose registers were missing or unusable (no user frames beyond the ip).
    pub no_regs: u64,
    /// The largest dump size seen (for the warning's advice).
    pub dump_size: u64,
    /// Samples whose walk was not redone: same registers and maps, and the same values in
    /// every stack word an earlier walk read.
    pub reused: u64,
}

/// Where the unwinder finds DSOs.
#[derive(Debug, Clone, Default)]
pub struct DsoSource {
    /// Prefix for absolute paths (the sysroot of the recording's files; empty for the host).
    pub root: PathBuf,
    /// Build ids the recording gives, by DSO path.
    pub build_ids: HashMap<String, String>,
    /// perf's build-id cache (`~/.debug`).
    pub debug_dir: Option<PathBuf>,
    /// May use this process's own vdso image for `[vdso]` (the host is the recording's).
    pub own_vdso: bool,
    /// The recording's kernel release is the running one.
    pub same_kernel: bool,
}

/// A DSO's unwind data, read once.
struct DsoUnwind {
    sections: ExplicitModuleSectionInfo<Bytes>,
    /// PT_LOAD segments: (file offset, file size, virtual address, executable).
    segments: Vec<(u64, u64, u64, bool)>,
}

impl DsoUnwind {
    /// framehop's `base_avma` for a mapping: the address where virtual address 0 would be.
    fn base_avma(&self, m: &MapRef<'_>) -> u64 {
        let len = m.end.saturating_sub(m.start);
        let overlaps =
            |s: &&(u64, u64, u64, bool)| s.0 < m.pgoff.saturating_add(len) && m.pgoff < s.0 + s.1;
        let seg = self
            .segments
            .iter()
            .filter(overlaps)
            .find(|s| s.3)
            .or_else(|| self.segments.iter().find(overlaps));
        let delta = seg.map_or(0, |s| s.2.wrapping_sub(s.0));
        m.start.wrapping_sub(m.pgoff).wrapping_sub(delta)
    }
}

/// The unwinder of one process, for one version of its maps.
struct ProcUnwinder {
    version: u32,
    unwinder: UnwinderX86_64<Bytes>,
    /// Mappings already looked at: (start, end, usable); a handful per process, searched
    /// linearly (cheaper than a map lookup per frame).
    seen: Vec<(u64, u64, bool)>,
}

/// Unwinds the user stacks of samples, caching per DSO, per process and per distinct stack.
pub struct DwarfUnwinder {
    source: DsoSource,
    dsos: HashMap<String, Option<Arc<DsoUnwind>>>,
    procs: HashMap<i32, ProcUnwinder>,
    cache: CacheX86_64,
    memo: HashMap<WalkKey, Vec<Walk>>,
    memo_len: usize,
    stats: UnwindStats,
    max_stack: usize,
}

impl std::fmt::Debug for DwarfUnwinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DwarfUnwinder")
            .field("dsos", &self.dsos.len())
            .field("procs", &self.procs.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// One sample's unwinding input.
#[derive(Debug, Clone, Copy)]
pub struct StackSample<'a> {
    /// Process id.
    pub pid: i32,
    /// Version of the process's maps (changes when they change).
    pub maps_version: u32,
    /// `sample_regs_user`.
    pub regs_mask: u64,
    /// Register values in mask-bit order.
    pub regs: &'a [u64],
    /// The dumped stack, from the user stack pointer up.
    pub stack: &'a [u8],
    /// The dump size asked for.
    pub stack_size: u64,
}

fn reg(mask: u64, regs: &[u64], r: u32) -> Option<u64> {
    if mask & (1 << r) == 0 {
        return None;
    }
    let idx = (mask & ((1u64 << r) - 1)).count_ones() as usize;
    regs.get(idx).copied()
}

/// The stack word at `addr` of a dump starting at `sp`; None outside the dump.
fn read_word(stack: &[u8], sp: u64, addr: u64) -> Option<u64> {
    let at = usize::try_from(addr.checked_sub(sp)?).ok()?;
    let b = stack.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// A walk remembered: the stack words it read (None: outside the dump) decide its result,
/// together with the registers and maps of its key.
struct Walk {
    reads: Vec<(u64, Option<u64>)>,
    dump: (u64, u64),
    frames: Arc<[u64]>,
    truncated: bool,
}

/// (pid, maps version, ip, sp, bp): framehop's x86_64 unwinding reads no other register.
type WalkKey = (i32, u32, u64, u64, u64);

impl DwarfUnwinder {
    /// An unwinder finding DSOs through `source`, keeping at most `max_stack` user frames.
    pub fn new(source: DsoSource, max_stack: usize) -> Self {
        DwarfUnwinder {
            source,
            dsos: HashMap::new(),
            procs: HashMap::new(),
            cache: CacheX86_64::new(),
            memo: HashMap::new(),
            memo_len: 0,
            stats: UnwindStats::default(),
            max_stack,
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> UnwindStats {
        self.stats
    }

    /// The user frames of a sample, leaf first: the sampled user ip, then each caller's
    /// return address minus one (the call instruction, as perf reports it). Empty when the
    /// sample has no usable registers. `find_map` gives the process's mapping at an address.
    pub fn unwind<'m>(
        &mut self,
        s: &StackSample<'_>,
        find_map: &dyn Fn(u64) -> Option<MapRef<'m>>,
    ) -> Arc<[u64]> {
        self.stats.samples += 1;
        self.stats.dump_size = self.stats.dump_size.max(s.stack_size);
        let (Some(ip), Some(sp), Some(bp)) = (
            reg(s.regs_mask, s.regs, REG_IP),
            reg(s.regs_mask, s.regs, REG_SP),
            reg(s.regs_mask, s.regs, REG_BP),
        ) else {
            self.stats.no_regs += 1;
            return Arc::from(Vec::new());
        };
        // Each distinct input is walked once: a new sample reuses an earlier walk when every
        // word that walk read holds the same value (a few compares, not a hash of the dump).
        let key = (s.pid, s.maps_version, ip, sp, bp);
        let dump = (s.stack.len() as u64, s.stack_size);
        if let Some(walks) = self.memo.get(&key) {
            let same = |w: &&Walk| {
                w.dump == dump && w.reads.iter().all(|&(a, v)| read_word(s.stack, sp, a) == v)
            };
            if let Some(w) = walks.iter().find(same) {
                self.stats.reused += 1;
                self.stats.truncated += u64::from(w.truncated);
                return w.frames.clone();
            }
        }
        let (frames, reads, truncated) = self.walk(s, (ip, sp, bp), find_map);
        self.stats.truncated += u64::from(truncated);
        let frames: Arc<[u64]> = frames.into();
        if self.memo_len >= MEMO_LIMIT {
            self.memo.clear();
            self.memo_len = 0;
        }
        let walks = self.memo.entry(key).or_default();
        if walks.len() >= 8 {
            walks.remove(0);
            self.memo_len -= 1;
        }
        walks.push(Walk {
            reads,
            dump,
            frames: frames.clone(),
            truncated,
        });
        self.memo_len += 1;
        frames
    }

    /// Walks the stack from (ip, sp, bp): the frames, the words read, and whether the walk
    /// ran past a full dump.
    #[allow(clippy::type_complexity)]
    fn walk<'m>(
        &mut self,
        s: &StackSample<'_>,
        (ip, sp, bp): (u64, u64, u64),
        find_map: &dyn Fn(u64) -> Option<MapRef<'m>>,
    ) -> (Vec<u64>, Vec<(u64, Option<u64>)>, bool) {
        let mut frames = vec![ip];
        let stack = s.stack;
        let stack_end = sp.saturating_add(stack.len() as u64);
        let mut past_end = false;
        let mut reads = Vec::new();
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let v = read_word(stack, sp, addr);
            reads.push((addr, v));
            past_end |= v.is_none() && addr >= stack_end;
            v.ok_or(())
        };
        let mut regs = UnwindRegsX86_64::new(ip, sp, bp);
        let mut addr = FrameAddress::from_instruction_pointer(ip);
        // Taken out of the table for the walk: one lookup per sample, not per frame.
        let mut p = self.take_proc(s.pid, s.maps_version);
        while frames.len() < self.max_stack {
            if !self.ensure_module(&mut p, addr.address_for_lookup(), find_map) {
                break;
            }
            let next = p
                .unwinder
                .unwind_frame(addr, &mut regs, &mut self.cache, &mut read_stack);
            match next {
                Ok(Some(ra)) if ra != 0 => match FrameAddress::from_return_address(ra) {
                    Some(a) => {
                        frames.push(a.address_for_lookup());
                        addr = a;
                    }
                    None => break,
                },
                // As perf (libdw gives pc 0 for a return address it cannot read, and perf
                // reports pc - 1): a chain cut by an unreadable stack word ends in an
                // `[unknown]` frame at 0xffffffffffffffff.
                Err(framehop::Error::CouldNotReadStack(_)) if frames.len() < self.max_stack => {
                    frames.push(CUT_MARK);
                    break;
                }
                _ => break,
            }
        }
        self.procs.insert(s.pid, p);
        let truncated = past_end && stack.len() as u64 >= s.stack_size && s.stack_size > 0;
        (frames, reads, truncated)
    }

    /// The process's unwinder, removed from the table (new when its maps changed).
    fn take_proc(&mut self, pid: i32, version: u32) -> ProcUnwinder {
        match self.procs.remove(&pid) {
            Some(p) if p.version == version => p,
            _ => ProcUnwinder {
                version,
                unwinder: UnwinderX86_64::new(),
                seen: Vec::new(),
            },
        }
    }

    /// Adds the module of the mapping at `addr`, once. False when unwinding must stop there:
    /// the DSO is missing or was replaced since the recording (its CFI would be wrong).
    fn ensure_module<'m>(
        &mut self,
        p: &mut ProcUnwinder,
        addr: u64,
        find_map: &dyn Fn(u64) -> Option<MapRef<'m>>,
    ) -> bool {
        if let Some(&(_, _, ok)) = p.seen.iter().find(|s| s.0 <= addr && addr < s.1) {
            return ok;
        }
        let Some(m) = find_map(addr) else {
            // Outside every known map (JIT code, a vdso without a copy): framehop falls back
            // to the frame pointer.
            return true;
        };
        let dso = self.dso(m.path);
        let ok = match dso {
            Some(d) => {
                let module = Module::new(
                    m.path.to_owned(),
                    m.start..m.end,
                    d.base_avma(&m),
                    d.sections.clone(),
                );
                p.unwinder.add_module(module);
                true
            }
            // Pseudo-files ([vdso], //anon, …) without a copy keep the frame-pointer fallback.
            None => !m.path.starts_with('/'),
        };
        p.seen.push((m.start, m.end, ok));
        ok
    }

    fn dso(&mut self, path: &str) -> Option<Arc<DsoUnwind>> {
        if let Some(d) = self.dsos.get(path) {
            return d.clone();
        }
        let d = self.load_dso(path).map(Arc::new);
        self.dsos.insert(path.to_owned(), d.clone());
        d
    }

    /// The file to read for `path`: itself when its build id is the recorded one, else
    /// perf's cached copy.
    fn load_dso(&self, path: &str) -> Option<DsoUnwind> {
        let wanted = self.source.build_ids.get(path);
        let mut candidates: Vec<PathBuf> = Vec::new();
        if path.starts_with('/') {
            candidates.push(self.source.root.join(path.trim_start_matches('/')));
        }
        if let (Some(id), Some(dir)) = (wanted, &self.source.debug_dir) {
            if id.len() > 2 {
                let leaf = if path == "[vdso]" { "vdso" } else { "elf" };
                candidates.push(
                    dir.join(".build-id")
                        .join(&id[..2])
                        .join(&id[2..])
                        .join(leaf),
                );
            }
        }
        let want = wanted.map(String::as_str);
        let found = candidates
            .iter()
            .find_map(|c| read_unwind_sections(c, want));
        if found.is_none() && path == "[vdso]" && self.source.own_vdso {
            return own_vdso(want, self.source.same_kernel);
        }
        found
    }
}

/// Reads a DSO's unwind sections; `None` when it is not a readable ELF or its build id is not
/// `want`.
fn read_unwind_sections(path: &Path, want: Option<&str>) -> Option<DsoUnwind> {
    let file = crate::sysroot::open_regular(path).ok()?;
    let cache = object::ReadCache::new(file);
    let obj = object::File::parse(&cache).ok()?;
    unwind_sections(&obj, want)
}

/// The vdso image of this process, when the recording's vdso is the running kernel's (same
/// build id, or none recorded and the same kernel release): read from /proc/self/mem, no
/// unsafe code needed.
fn own_vdso(want: Option<&str>, same_kernel: bool) -> Option<DsoUnwind> {
    use std::io::{Read, Seek, SeekFrom};
    if want.is_none() && !same_kernel {
        return None;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let (s, e) = line.split_whitespace().next()?.split_once('-')?;
    let (start, end) = (
        u64::from_str_radix(s, 16).ok()?,
        u64::from_str_radix(e, 16).ok()?,
    );
    let len = usize::try_from(end.checked_sub(start)?).ok()?;
    if len > 1 << 20 {
        return None;
    }
    let mut mem = std::fs::File::open("/proc/self/mem").ok()?;
    mem.seek(SeekFrom::Start(start)).ok()?;
    let mut image = vec![0u8; len];
    mem.read_exact(&mut image).ok()?;
    let obj = object::File::parse(&*image).ok()?;
    unwind_sections(&obj, want)
}

fn unwind_sections<'d, R: object::ReadRef<'d>>(
    obj: &object::File<'d, R>,
    want: Option<&str>,
) -> Option<DsoUnwind> {
    if let Some(want) = want {
        let have = obj.build_id().ok().flatten()?;
        let hex: String = have.iter().map(|b| format!("{b:02x}")).collect();
        if hex != want {
            return None;
        }
    }
    let range = |name: &str| -> Option<Range<u64>> {
        let s = obj.section_by_name(name)?;
        Some(s.address()..s.address().checked_add(s.size())?)
    };
    let data = |name: &str| -> Option<Bytes> {
        let s = obj.section_by_name(name)?;
        let d = s.data().ok()?;
        (!d.is_empty()).then(|| Arc::from(d))
    };
    let sections = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: range(".text"),
        got_svma: range(".got"),
        eh_frame_svma: range(".eh_frame"),
        eh_frame: data(".eh_frame"),
        eh_frame_hdr_svma: range(".eh_frame_hdr"),
        eh_frame_hdr: data(".eh_frame_hdr"),
        debug_frame: data(".debug_frame"),
        ..Default::default()
    };
    let segments = obj
        .segments()
        .filter_map(|seg| {
            let (off, size) = seg.file_range();
            let exec = match seg.flags() {
                object::SegmentFlags::Elf { p_flags, .. } => p_flags.contains(object::elf::PF_X),
                _ => false,
            };
            (size > 0).then_some((off, size, seg.address(), exec))
        })
        .collect();
    Some(DsoUnwind { sections, segments })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_by_mask_position() {
        let mask = 0xff0fff;
        let regs: Vec<u64> = (0..20).collect();
        assert_eq!(reg(mask, &regs, REG_BP), Some(6));
        assert_eq!(reg(mask, &regs, REG_IP), Some(8));
        // R8 is bit 16, the 13th register dumped.
        assert_eq!(reg(mask, &regs, 16), Some(12));
        assert_eq!(reg(mask, &regs, 12), None);
        assert_eq!(reg(mask, &regs[..3], REG_IP), None);
    }

    #[test]
    fn a_walk_is_reused_only_when_every_word_it_read_is_the_same() {
        let mut u = DwarfUnwinder::new(DsoSource::default(), 127);
        let none = |_: u64| None;
        // No module: the frame-pointer fallback reads [bp] and [bp + 8].
        let sp = 0x7ff0_0000u64;
        let mut regs = vec![0u64; 20];
        regs[8] = 0x401000;
        regs[7] = sp;
        regs[6] = sp + 0x20;
        let mut stack = vec![0u8; 256];
        // Frame at bp: saved bp pointing outside the dump, return address 0x402345.
        stack[0x20..0x28].copy_from_slice(&(sp + 0x1000).to_le_bytes());
        stack[0x28..0x30].copy_from_slice(&0x402345u64.to_le_bytes());
        let mut sample = |stack: &[u8]| -> Vec<u64> {
            let s = StackSample {
                pid: 1,
                maps_version: 1,
                regs_mask: 0xff0fff,
                regs: &regs,
                stack,
                stack_size: 256,
            };
            u.unwind(&s, &none).to_vec()
        };
        let first = sample(&stack);
        // The saved bp points past the dump: the chain ends in perf's cut mark.
        assert_eq!(first, [0x401000, 0x402344, CUT_MARK]);
        // A word the walk did not read changes: reused.
        stack[0x80] = 9;
        let again = sample(&stack);
        assert_eq!(again, first);
        // The return address changes: walked again.
        stack[0x28..0x30].copy_from_slice(&0x403000u64.to_le_bytes());
        let other = sample(&stack);
        assert_eq!(other[1], 0x402fff);
        assert_eq!(u.stats().reused, 1);
        assert_eq!(u.stats().samples, 3);
    }

    #[test]
    fn missing_registers_and_garbage_stacks_end_the_chain() {
        let mut u = DwarfUnwinder::new(DsoSource::default(), 127);
        let none = |_: u64| None;
        let s = StackSample {
            pid: 1,
            maps_version: 1,
            regs_mask: 0xff0fff,
            regs: &[1, 2],
            stack: &[],
            stack_size: 8192,
        };
        assert!(u.unwind(&s, &none).is_empty());
        assert_eq!(u.stats().no_regs, 1);
        // Frame-pointer fallback over random bytes: bounded, never panics.
        let mut regs = vec![0u64; 20];
        regs[8] = 0x401000; // ip
        regs[7] = 0x7ff0_0000; // sp
        regs[6] = 0x7ff0_0010; // bp, inside the dump
        let mut stack = vec![0u8; 4096];
        let mut x = 0x1234_5678u64;
        for b in stack.iter_mut() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            *b = (x >> 56) as u8;
        }
        let s = StackSample {
            regs: &regs,
            stack: &stack,
            stack_size: 4096,
            ..s
        };
        let f = u.unwind(&s, &none);
        assert!(!f.is_empty() && f.len() <= 127);
        assert_eq!(f[0], 0x401000);
    }
}
