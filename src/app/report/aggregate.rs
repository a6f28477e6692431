//! Turning records into a compact profile: thread names, process maps, interned frames and a
//! trie of call stacks with their sample counts.
//!
//! The hot loop does no symbolization and allocates only when it meets a new frame or a new
//! stack: frames are interned per (process map version, address), stacks as trie nodes, and
//! samples are summed per (event, comm, pid, stack). Symbols are attached afterwards, once
//! per distinct frame.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::perfdata::reader::{Mmap, Record, Sample};

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

#[derive(Debug, Clone, Default)]
struct Maps {
    version: u32,
    maps: Vec<Map>,
}

impl Maps {
    fn insert(&mut self, m: Map) {
        // Trim or drop whatever the new map overlaps.
        let mut out = Vec::with_capacity(self.maps.len() + 2);
        for &o in &self.maps {
            if o.end <= m.start || o.start >= m.end {
                out.push(o);
                continue;
            }
            if o.start < m.start {
                out.push(Map { end: m.start, ..o });
            }
            if o.end > m.end {
                out.push(Map {
                    start: m.end,
                    pgoff: o.pgoff.wrapping_add(m.end - o.start),
                    ..o
                });
            }
        }
        out.push(m);
        out.sort_by_key(|x| x.start);
        self.maps = out;
    }

    fn find(&self, addr: u64) -> Option<&Map> {
        let i = self.maps.partition_point(|m| m.start <= addr);
        let m = self.maps.get(i.checked_sub(1)?)?;
        (addr < m.end).then_some(m)
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
}

impl Aggregator {
    /// A new aggregator for `events` events.
    pub fn new(events: usize) -> Self {
        let mut a = Aggregator {
            next_version: 1,
            ..Default::default()
        };
        a.p.events = vec![EventTotals::default(); events];
        a.p.dsos = vec!["[kernel.kallsyms]".into(), "[unknown]".into()];
        a.p.nodes.push((0, 0));
        a
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
                    self.procs.entry(*pid).or_default().maps.clear();
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
                let f = self.frame(s.pid, version, kernel, v);
                frames.push(f);
            }
        }
        if frames.is_empty() {
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
        tot.period += s.period;
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
        st.period += s.period;
        st.samples += 1;
    }

    /// The finished profile.
    pub fn finish(self) -> Profile {
        self.p
    }
}
