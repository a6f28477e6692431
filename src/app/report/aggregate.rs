//! Turning records into a compact profile: thread names, process maps, interned frames and a
//! trie of call stacks with their sample counts.
//!
//! The hot loop does no symbolization and allocates only when it meets a new frame or a new
//! stack: frames are interned per (process map version, address), stacks as trie nodes, and
//! samples are summed per (event, comm, pid, stack). Symbols are attached afterwards, once
//! per distinct frame.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::perfdata::reader::{Mmap, Record, Sample};
use crate::symbols::unwind::{DwarfUnwinder, MapRef, StackSample, UnwindStats};

/// A small, fast hasher for integer keys (multiply-rotate, as in rustc's FxHasher).
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_i32(&mut self, v: i32) {
        self.write_u64(v as u32 as u64);
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// HashMap with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// The DSO id of the kernel.
pub const DSO_KERNEL: u32 = 0;
/// The DSO id of addresses outside any known map.
pub const DSO_UNKNOWN: u32 = 1;

/// First value of the call chain context markers (`PERF_CONTEXT_MAX` = -4095).
const CONTEXT_MIN: u64 = (-4095i64) as u64;
const CONTEXT_KERNEL: u64 = (-128i64) as u64;
const CONTEXT_GUEST_KERNEL: u64 = (-2176i64) as u64;

/// One distinct code location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    /// DSO id (index into [`Profile::dsos`]).
    pub dso: u32,
    /// File offset within the DSO for user DSOs; the absolute address otherwise.
    pub addr: u64,
    /// Sampled in kernel context.
    pub kernel: bool,
}

/// Sum of samples for one (event, comm, pid, stack).
#[derive(Debug, Clone, Copy)]
pub struct StackCount {
    /// Event index.
    pub event: u32,
    /// Comm id (index into [`Profile::comms`]).
    pub comm: u32,
    /// Process id.
    pub pid: i32,
    /// Leaf node of the stack trie.
    pub node: u32,
    /// Sum of periods.
    pub period: u64,
    /// Number of samples.
    pub samples: u64,
}

/// Per-event totals.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventTotals {
    /// Samples.
    pub samples: u64,
    /// Sum of periods ("event count").
    pub period: u64,
}

#[derive(Debug, Clone, Copy)]
struct Map {
    start: u64,
    end: u64,
    pgoff: u64,
    dso: u32,
}

/// A process's mappings, by start address; they never overlap (a new map trims or replaces
/// what it covers), so inserting costs O(log n) plus the maps it overlaps.
#[derive(Debug, Clone, Default)]
struct Maps {
    version: u32,
    maps: BTreeMap<u64, Map>,
}

impl Maps {
    fn insert(&mut self, m: Map) {
        if m.end <= m.start {
            return;
        }
        // The maps that overlap [start, end): those starting before `end` whose end is past
        // `start`, found walking down from `end`.
        let mut hit = Vec::new();
        for (&start, o) in self.maps.range(..m.end).rev() {
            if o.end <= m.start {
                break;
            }
            hit.push(start);
        }
        for start in hit {
            let Some(o) = self.maps.remove(&start) else {
                continue;
            };
            if o.start < m.start {
                self.maps.insert(o.start, Map { end: m.start, ..o });
            }
            if o.end > m.end {
                let tail = Map {
                    start: m.end,
                    pgoff: o.pgoff.wrapping_add(m.end - o.start),
                    ..o
                };
                self.maps.insert(tail.start, tail);
            }
        }
        self.maps.insert(m.start, m);
    }

    fn find(&self, addr: u64) -> Option<&Map> {
        let (_, m) = self.maps.range(..=addr).next_back()?;
        (addr < m.end).then_some(m)
    }

    fn clear(&mut self) {
        self.maps.clear();
    }
}

/// The aggregated content of a recording, before symbolization.
#[derive(Debug, Default)]
pub struct Profile {
    /// Totals per event.
    pub events: Vec<EventTotals>,
    /// Records lost (PERF_RECORD_LOST).
    pub lost: u64,
    /// Samples lost (PERF_RECORD_LOST_SAMPLES).
    pub lost_samples: u64,
    /// Command names.
    pub comms: Vec<String>,
    /// DSO paths as recorded; 0 is the kernel, 1 unknown.
    pub dsos: Vec<String>,
    /// Distinct frames.
    pub frames: Vec<Frame>,
    /// Stack trie: (parent node, frame); node 0 is the root and has no frame.
    pub nodes: Vec<(u32, u32)>,
    /// Sample sums per (event, comm, pid, stack).
    pub stacks: Vec<StackCount>,
    /// The kernel's `_text` address as recorded, if a kernel map was recorded.
    pub kernel_text: Option<u64>,
    /// DWARF unwinding counts (all zero for frame-pointer recordings).
    pub unwind: UnwindStats,
}

impl Profile {
    /// The frames of a stack from leaf to root.
    pub fn stack_frames(&self, mut node: u32, out: &mut Vec<u32>) {
        out.clear();
        while node != 0 {
            let (parent, frame) = self.nodes[node as usize];
            out.push(frame);
            node = parent;
        }
    }
}

/// Builds a [`Profile`] from records fed one at a time.
#[derive(Debug, Default)]
pub struct Aggregator {
    p: Profile,
    comm_ids: HashMap<Vec<u8>, u32>,
    dso_ids: HashMap<Vec<u8>, u32>,
    threads: FastMap<i32, u32>,
    procs: FastMap<i32, Maps>,
    kernel_maps: Vec<(u64, u64)>,
    next_version: u32,
    /// (map version, address with the kernel bit in bit 0 of the version slot) → frame.
    frame_cache: FastMap<(u32, u64), u32>,
    frame_ids: FastMap<Frame, u32>,
    node_ids: FastMap<(u32, u32), u32>,
    stack_ids: FastMap<(u32, u32, i32, u32), u32>,
    unknown_comm: FastMap<i32, u32>,
    scratch: Vec<u32>,
    /// Unwinds the user stacks of `--call-graph dwarf` samples, when set.
    unwinder: Option<DwarfUnwinder>,
    /// At most this many kernel call-chain frames are used (perf's `--max-stack`).
    max_stack: usize,
}

impl Aggregator {
    /// A new aggregator for `events` events.
    pub fn new(events: usize) -> Self {
        let mut a = Aggregator {
            next_version: 1,
            max_stack: usize::MAX,
            ..Default::default()
        };
        a.p.events = vec![EventTotals::default(); events];
        a.p.dsos = vec!["[kernel.kallsyms]".into(), "[unknown]".into()];
        a.p.nodes.push((0, 0));
        a
    }

    /// Unwinds the user stacks that samples carry (PERF_SAMPLE_REGS_USER + STACK_USER) with
    /// `u`, appending the user frames after the kernel part of the call chain.
    pub fn set_unwinder(&mut self, u: DwarfUnwinder) {
        self.unwinder = Some(u);
    }

    /// Uses at most `n` frames of each sample's recorded call chain.
    pub fn set_max_stack(&mut self, n: usize) {
        self.max_stack = n.max(1);
    }

    /// The user frames of a DWARF sample, appended to `frames`; false when the sample has
    /// no stack to unwind.
    fn unwind_user(&mut self, s: &Sample<'_>, version: u32, frames: &mut Vec<u32>) -> bool {
        let Some(u) = self.unwinder.as_mut() else {
            return false;
        };
        if s.user_regs.is_empty() && s.user_stack.stack_size == 0 {
            return false;
        }
        let maps = self.procs.get(&s.pid);
        let dsos = &self.p.dsos;
        let find = |addr: u64| -> Option<MapRef<'_>> {
            let m = maps?.find(addr)?;
            Some(MapRef {
                start: m.start,
                end: m.end,
                pgoff: m.pgoff,
                path: dsos.get(m.dso as usize)?.as_str(),
            })
        };
        let sample = StackSample {
            pid: s.pid,
            maps_version: version,
            regs_mask: s.regs_mask,
            regs: s.user_regs,
            stack: s.user_stack.stack,
            stack_size: s.user_stack.stack_size,
        };
        let user = u.unwind(&sample, &find);
        for &addr in user.iter() {
            let f = self.frame(s.pid, version, false, addr);
            frames.push(f);
        }
        !user.is_empty()
    }

    fn intern_comm(&mut self, name: &[u8]) -> u32 {
        if let Some(&id) = self.comm_ids.get(name) {
            return id;
        }
        let id = self.p.comms.len() as u32;
        self.p
            .comms
            .push(String::from_utf8_lossy(name).into_owned());
        self.comm_ids.insert(name.to_vec(), id);
        id
    }

    fn intern_dso(&mut self, path: &[u8]) -> u32 {
        if let Some(&id) = self.dso_ids.get(path) {
            return id;
        }
        let id = self.p.dsos.len() as u32;
        self.p.dsos.push(String::from_utf8_lossy(path).into_owned());
        self.dso_ids.insert(path.to_vec(), id);
        id
    }

    fn bump_version(&mut self, pid: i32) {
        let v = self.next_version;
        self.next_version = self.next_version.wrapping_add(1).max(1);
        self.procs.entry(pid).or_default().version = v;
    }

    /// Feeds one record.
    pub fn add(&mut self, r: &Record<'_>) {
        match r {
            Record::Sample(s) => self.sample(s),
            Record::Comm {
                pid,
                tid,
                name,
                exec,
            } => {
                let id = self.intern_comm(name);
                self.threads.insert(*tid, id);
                if *exec && pid == tid {
                    // A new program: the old maps are gone.
                    self.procs.entry(*pid).or_default().clear();
                    self.bump_version(*pid);
                }
            }
            Record::Fork {
                pid,
                ppid,
                tid,
                ptid,
            } => {
                if let Some(&c) = self.threads.get(ptid) {
                    self.threads.insert(*tid, c);
                }
                if pid != ppid && !self.procs.contains_key(pid) {
                    if let Some(parent) = self.procs.get(ppid).cloned() {
                        self.procs.insert(*pid, parent);
                    }
                    self.bump_version(*pid);
                }
            }
            Record::Exit { .. } => {}
            Record::Mmap(m) => self.mmap(m),
            Record::Lost { count } => self.p.lost += count,
            Record::LostSamples { count } => self.p.lost_samples += count,
        }
    }

    fn mmap(&mut self, m: &Mmap<'_>) {
        let end = m.start.saturating_add(m.len);
        if m.kernel || m.pid == -1 {
            if m.path.starts_with(b"[kernel.kallsyms]") {
                self.p.kernel_text = Some(m.pgoff);
            }
            self.kernel_maps.push((m.start, end));
            return;
        }
        if !m.executable {
            return;
        }
        // Anonymous code (JITs) resolves through /tmp/perf-PID.map by absolute address.
        let (dso, pgoff) = if crate::symbols::jitmap::is_anon(m.path) {
            let jit = crate::symbols::jitmap::map_path(m.pid);
            (self.intern_dso(jit.as_bytes()), m.start)
        } else {
            (self.intern_dso(m.path), m.pgoff)
        };
        self.procs.entry(m.pid).or_default().insert(Map {
            start: m.start,
            end,
            pgoff,
            dso,
        });
        self.bump_version(m.pid);
    }

    fn is_kernel_addr(&self, addr: u64) -> bool {
        if self.kernel_maps.is_empty() {
            addr >> 63 == 1
        } else {
            self.kernel_maps.iter().any(|&(s, e)| addr >= s && addr < e) || addr >> 63 == 1
        }
    }

    fn frame(&mut self, pid: i32, version: u32, kernel: bool, addr: u64) -> u32 {
        let key = (if kernel { 0 } else { version }, addr);
        if let Some(&id) = self.frame_cache.get(&key) {
            return id;
        }
        let f = if kernel {
            if self.is_kernel_addr(addr) {
                Frame {
                    dso: DSO_KERNEL,
                    addr,
                    kernel: true,
                }
            } else {
                Frame {
                    dso: DSO_UNKNOWN,
                    addr,
                    kernel: true,
                }
            }
        } else {
            match self.procs.get(&pid).and_then(|m| m.find(addr)) {
                Some(m) => Frame {
                    dso: m.dso,
                    addr: addr.wrapping_sub(m.start).wrapping_add(m.pgoff),
                    kernel: false,
                },
                None => Frame {
                    dso: DSO_UNKNOWN,
                    addr,
                    kernel: false,
                },
            }
        };
        let next = self.p.frames.len() as u32;
        let id = *self.frame_ids.entry(f).or_insert(next);
        if id == next {
            self.p.frames.push(f);
        }
        self.frame_cache.insert(key, id);
        id
    }

    /// The frames of a sample, leaf first, interned against the process's current maps.
    pub fn sample_frames(&mut self, s: &Sample<'_>, frames: &mut Vec<u32>) {
        let version = self.procs.get(&s.pid).map_or(0, |m| m.version);
        frames.clear();
        if !s.callchain.is_empty() {
            let mut kernel = s.kernel;
            for &v in s.callchain {
                if v >= CONTEXT_MIN {
                    kernel = v == CONTEXT_KERNEL || v == CONTEXT_GUEST_KERNEL;
                    continue;
                }
                if frames.len() == self.max_stack {
                    break;
                }
                let f = self.frame(s.pid, version, kernel, v);
                frames.push(f);
            }
        }
        let unwound = self.unwind_user(s, version, frames);
        if frames.is_empty() && !unwound {
            let f = self.frame(s.pid, version, s.kernel, s.ip);
            frames.push(f);
        }
    }

    /// The command name of a sample's thread (`:PID` when the recording never named it).
    pub fn sample_comm(&mut self, s: &Sample<'_>) -> u32 {
        match self.threads.get(&s.tid) {
            Some(&c) => c,
            None => match self.unknown_comm.get(&s.pid) {
                Some(&c) => c,
                None => {
                    let c = self.intern_comm(format!(":{}", s.pid).as_bytes());
                    self.unknown_comm.insert(s.pid, c);
                    c
                }
            },
        }
    }

    /// The profile built so far (frames, DSOs and comms are valid at any time).
    pub fn profile(&self) -> &Profile {
        &self.p
    }

    fn sample(&mut self, s: &Sample<'_>) {
        let Some(tot) = self.p.events.get_mut(s.event) else {
            return;
        };
        tot.samples += 1;
        tot.period = tot.period.saturating_add(s.period);
        let comm = self.sample_comm(s);
        let mut frames = std::mem::take(&mut self.scratch);
        self.sample_frames(s, &mut frames);
        // Insert root first.
        let mut node = 0u32;
        for &f in frames.iter().rev() {
            let next = self.p.nodes.len() as u32;
            let id = *self.node_ids.entry((node, f)).or_insert(next);
            if id == next {
                self.p.nodes.push((node, f));
            }
            node = id;
        }
        self.scratch = frames;
        let key = (s.event as u32, comm, s.pid, node);
        let next = self.p.stacks.len() as u32;
        let idx = *self.stack_ids.entry(key).or_insert(next);
        if idx == next {
            self.p.stacks.push(StackCount {
                event: s.event as u32,
                comm,
                pid: s.pid,
                node,
                period: 0,
                samples: 0,
            });
        }
        let st = &mut self.p.stacks[idx as usize];
        st.period = st.period.saturating_add(s.period);
        st.samples += 1;
    }

    /// The finished profile.
    pub fn finish(mut self) -> Profile {
        if let Some(u) = &self.unwinder {
            self.p.unwind = u.stats();
        }
        self.p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perfdata::user_stack::UserTail;

    fn mmap(pid: i32, start: u64, len: u64, path: &[u8]) -> Record<'_> {
        Record::Mmap(Mmap {
            pid,
            start,
            len,
            pgoff: 0,
            path,
            kernel: false,
            executable: true,
            build_id: None,
        })
    }

    fn sample<'a>(pid: i32, ip: u64, chain: &'a [u64]) -> Sample<'a> {
        Sample {
            event: 0,
            pid,
            tid: pid,
            time: 0,
            cpu: None,
            period: 1,
            ip,
            kernel: false,
            callchain: chain,
            user_regs: &[],
            regs_mask: 0,
            user_stack: UserTail::default(),
            addr: 0,
            raw: &[],
        }
    }

    #[test]
    fn overlapping_maps_are_trimmed() {
        let mut m = Maps::default();
        let map = |start, end, pgoff, dso| Map {
            start,
            end,
            pgoff,
            dso,
        };
        m.insert(map(0x1000, 0x9000, 0, 2));
        m.insert(map(0x3000, 0x4000, 0, 3));
        m.insert(map(0x8000, 0xa000, 0, 4));
        assert_eq!(m.find(0x2fff).map(|x| x.dso), Some(2));
        assert_eq!(m.find(0x3000).map(|x| x.dso), Some(3));
        let tail = m.find(0x4000).unwrap();
        assert_eq!(
            (tail.dso, tail.start, tail.end, tail.pgoff),
            (2, 0x4000, 0x8000, 0x3000)
        );
        assert_eq!(m.find(0x9fff).map(|x| x.dso), Some(4));
        assert!(m.find(0xa000).is_none() && m.find(0xfff).is_none());
        // A map covering several replaces them all.
        m.insert(map(0, 0x10000, 0, 5));
        assert_eq!(m.maps.len(), 1);
    }

    #[test]
    fn eighty_thousand_mmaps_of_one_process_are_all_kept() {
        let mut agg = Aggregator::new(1);
        let names: Vec<Vec<u8>> = (0..1000)
            .map(|i| format!("/lib/l{i}.so").into_bytes())
            .collect();
        // Insertion is O(log n) per map (a BTreeMap keyed by start address); before, each
        // insert rescanned every map, and 80,000 of them took tens of seconds. Speed itself is
        // for benchmarks, not tests: this checks that all of them are kept and found.
        for i in 0..80_000u64 {
            agg.add(&mmap(
                7,
                0x10_0000 + i * 0x2000,
                0x1000,
                &names[(i % 1000) as usize],
            ));
        }
        let mut frames = Vec::new();
        agg.sample_frames(
            &sample(7, 0x10_0000 + 79_999 * 0x2000 + 5, &[]),
            &mut frames,
        );
        let f = agg.profile().frames[frames[0] as usize];
        assert_eq!(agg.profile().dsos[f.dso as usize], "/lib/l999.so");
        assert_eq!(f.addr, 5);
    }

    #[test]
    fn max_stack_caps_the_chain() {
        let mut agg = Aggregator::new(1);
        agg.set_max_stack(127);
        let mut chain = vec![(-512i64) as u64]; // PERF_CONTEXT_USER
        chain.extend((0..4000u64).map(|i| 0x40_0000 + i * 16));
        let mut frames = Vec::new();
        agg.sample_frames(&sample(1, 0x40_0000, &chain), &mut frames);
        assert_eq!(frames.len(), 127);
        // Leaf first, as perf keeps them.
        assert_eq!(agg.profile().frames[frames[0] as usize].addr, 0x40_0000);
    }
}
