//! Records ruperf writes itself: COMM, FORK, MMAP2 describing processes that were already
//! running when recording started (read from /proc), the kernel's map and those of its loaded
//! modules, and FINISHED_ROUND.
//!
//! Builders are pure functions returning record bytes; the /proc readers are thin wrappers
//! over pure parsers.

use std::path::Path;

use crate::os::sys::bindings as b;
use crate::sysroot::Sysroot;

/// PERF_RECORD_MMAP.
pub const MMAP: u32 = 1;
/// PERF_RECORD_COMM.
pub const COMM: u32 = 3;
/// PERF_RECORD_EXIT.
pub const EXIT: u32 = 4;
/// PERF_RECORD_FORK.
pub const FORK: u32 = 7;
/// PERF_RECORD_SAMPLE.
pub const SAMPLE: u32 = 9;
/// PERF_RECORD_MMAP2.
pub const MMAP2: u32 = 10;
/// PERF_RECORD_FINISHED_ROUND: every record before it may be sorted and flushed.
pub const FINISHED_ROUND: u32 = 68;
/// The name perf gives the kernel's text map.
pub const KERNEL_MMAP_NAME: &str = "[kernel.kallsyms]_text";

/// The `sample_id_all` trailer every non-sample record carries, laid out for a sample_type.
#[derive(Debug, Clone, Copy)]
pub struct IdTrailer {
    /// The events' sample_type.
    pub sample_type: u64,
    /// The id written in the ID/IDENTIFIER slots (the first event's first id).
    pub id: u64,
}

impl IdTrailer {
    /// Appends the trailer for a record about `pid`/`tid` (time and cpu zero, as perf writes
    /// for synthesized records, so they sort before everything the kernel recorded).
    pub fn push(&self, out: &mut Vec<u8>, pid: u32, tid: u32) {
        let st = self.sample_type;
        if st & b::PERF_SAMPLE_TID as u64 != 0 {
            out.extend_from_slice(&pid.to_ne_bytes());
            out.extend_from_slice(&tid.to_ne_bytes());
        }
        if st & b::PERF_SAMPLE_TIME as u64 != 0 {
            out.extend_from_slice(&0u64.to_ne_bytes());
        }
        if st & b::PERF_SAMPLE_ID as u64 != 0 {
            out.extend_from_slice(&self.id.to_ne_bytes());
        }
        if st & b::PERF_SAMPLE_STREAM_ID as u64 != 0 {
            out.extend_from_slice(&self.id.to_ne_bytes());
        }
        if st & b::PERF_SAMPLE_CPU as u64 != 0 {
            out.extend_from_slice(&0u64.to_ne_bytes());
        }
        if st & b::PERF_SAMPLE_IDENTIFIER as u64 != 0 {
            out.extend_from_slice(&self.id.to_ne_bytes());
        }
    }
}

fn begin(out: &mut Vec<u8>, kind: u32, misc: u16) -> usize {
    let at = out.len();
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&misc.to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes());
    at
}

fn end(out: &mut [u8], at: usize) {
    let size = (out.len() - at) as u16;
    out[at + 6..at + 8].copy_from_slice(&size.to_ne_bytes());
}

/// A NUL-terminated string padded to 8 bytes.
fn push_name(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    let padded = (s.len() + 1).div_ceil(8) * 8;
    out.resize(out.len() + padded - s.len(), 0);
}

fn u32s(out: &mut Vec<u8>, vals: &[u32]) {
    for v in vals {
        out.extend_from_slice(&v.to_ne_bytes());
    }
}

fn u64s(out: &mut Vec<u8>, vals: &[u64]) {
    for v in vals {
        out.extend_from_slice(&v.to_ne_bytes());
    }
}

/// PERF_RECORD_LOST_SAMPLES (13) with the number of samples the kernel dropped, as perf
/// record writes at the end, so that `perf report` shows them in "Total Lost Samples".
pub fn lost_samples(out: &mut Vec<u8>, t: &IdTrailer, lost: u64) {
    let at = begin(out, 13, 0);
    u64s(out, &[lost]);
    t.push(out, u32::MAX, u32::MAX);
    end(out, at);
}

/// PERF_RECORD_COMM for a thread.
pub fn comm(out: &mut Vec<u8>, t: &IdTrailer, pid: u32, tid: u32, name: &str) {
    let at = begin(out, COMM, 0);
    u32s(out, &[pid, tid]);
    push_name(out, name);
    t.push(out, pid, tid);
    end(out, at);
}

/// PERF_RECORD_FORK: `tid` of process `pid` was created by `ptid` of `ppid`.
pub fn fork(out: &mut Vec<u8>, t: &IdTrailer, pid: u32, ppid: u32, tid: u32, ptid: u32) {
    let at = begin(out, FORK, 0);
    u32s(out, &[pid, ppid, tid, ptid]);
    u64s(out, &[0]);
    t.push(out, pid, tid);
    end(out, at);
}

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapLine {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// File offset.
    pub pgoff: u64,
    /// Device major.
    pub maj: u32,
    /// Device minor.
    pub min: u32,
    /// Inode.
    pub ino: u64,
    /// PROT_* bits.
    pub prot: u32,
    /// MAP_SHARED or MAP_PRIVATE.
    pub flags: u32,
    /// Path, or a pseudo name like `[vdso]`; `//anon` for anonymous memory.
    pub path: String,
}

/// Parses /proc/PID/maps text, keeping executable mappings only (what perf synthesizes by
/// default). Malformed lines are skipped.
pub fn parse_maps(text: &str) -> Vec<MapLine> {
    parse_maps_with(text, false)
}

/// Parses /proc/PID/maps text; with `data`, the non-executable mappings too (what perf
/// synthesizes with `mmap_data`, as in `--call-graph dwarf`, whose unwinders read
/// `.eh_frame_hdr` from a binary's read-only segment).
pub fn parse_maps_with(text: &str, data: bool) -> Vec<MapLine> {
    text.lines()
        .filter_map(|l| parse_map_line(l, data))
        .collect()
}

fn parse_map_line(line: &str, data: bool) -> Option<MapLine> {
    let mut it = line.splitn(6, ' ');
    let range = it.next()?;
    let perms = it.next()?.as_bytes();
    let off = it.next()?;
    let dev = it.next()?;
    let ino = it.next()?;
    let path = it.next().unwrap_or("").trim_start();
    if perms.len() < 4 || (perms[2] != b'x' && !data) {
        return None;
    }
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    let mut prot = 0;
    if perms[0] == b'r' {
        prot |= libc::PROT_READ as u32;
    }
    if perms[1] == b'w' {
        prot |= libc::PROT_WRITE as u32;
    }
    if perms[2] == b'x' {
        prot |= libc::PROT_EXEC as u32;
    }
    Some(MapLine {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        pgoff: u64::from_str_radix(off, 16).ok()?,
        maj: u32::from_str_radix(maj, 16).ok()?,
        min: u32::from_str_radix(min, 16).ok()?,
        ino: ino.parse().ok()?,
        prot,
        flags: if perms[3] == b's' {
            libc::MAP_SHARED as u32
        } else {
            libc::MAP_PRIVATE as u32
        },
        path: if path.is_empty() {
            "//anon".to_string()
        } else {
            path.to_string()
        },
    })
}

/// PERF_RECORD_MMAP2 for one executable mapping of process `pid`.
pub fn mmap2(out: &mut Vec<u8>, t: &IdTrailer, pid: u32, m: &MapLine) {
    let at = begin(out, MMAP2, b::PERF_RECORD_MISC_USER as u16);
    u32s(out, &[pid, pid]);
    u64s(out, &[m.start, m.end - m.start, m.pgoff]);
    u32s(out, &[m.maj, m.min]);
    u64s(out, &[m.ino, 0]);
    u32s(out, &[m.prot, m.flags]);
    push_name(out, &m.path);
    t.push(out, pid, pid);
    end(out, at);
}

/// The MMAP record perf writes for the kernel: from `_text` to the top of the address space.
pub fn kernel_mmap(out: &mut Vec<u8>, t: &IdTrailer, text: u64) {
    let at = begin(out, MMAP, b::PERF_RECORD_MISC_KERNEL as u16);
    u32s(out, &[u32::MAX, 0]);
    u64s(out, &[text, u64::MAX - text, text]);
    push_name(out, KERNEL_MMAP_NAME);
    t.push(out, u32::MAX, 0);
    end(out, at);
}

/// One loaded kernel module: where its code is and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Start of the module's memory.
    pub start: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The module file (`/lib/modules/RELEASE/…/name.ko…`), or `[name]` when it is not found,
    /// as perf names module maps.
    pub path: String,
}

/// The modules in /proc/modules text (`name size refs deps state address …`). Modules whose
/// address is hidden (zero, as for readers without CAP_SYSLOG) are left out: their map would
/// be wrong. `files` maps a module name (with `-` written `_`) to its file.
pub fn parse_modules(text: &str, files: &std::collections::HashMap<String, String>) -> Vec<Module> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (name, size, addr) = (f.first()?, f.get(1)?, f.get(5)?);
            let start = u64::from_str_radix(addr.trim_start_matches("0x"), 16).ok()?;
            let size = size.parse().ok()?;
            (start != 0 && size != 0).then(|| Module {
                start,
                size,
                path: files
                    .get(&name.replace('-', "_"))
                    .cloned()
                    .unwrap_or_else(|| format!("[{name}]")),
            })
        })
        .collect()
}

/// Module files listed in modules.dep text (`kernel/…/name.ko.xz: deps…`), by module name
/// (`-` written `_`); relative paths are taken under `base` (`/lib/modules/RELEASE`).
pub fn module_files(dep: &str, base: &str) -> std::collections::HashMap<String, String> {
    dep.lines()
        .filter_map(|l| {
            let file = l.split(':').next()?.trim();
            let stem = Path::new(file).file_name()?.to_str()?;
            let name = stem.split(".ko").next()?.replace('-', "_");
            let path = if file.starts_with('/') {
                file.to_string()
            } else {
                format!("{base}/{file}")
            };
            Some((name, path))
        })
        .collect()
}

/// The kernel's loaded modules, from /proc/modules and /lib/modules/RELEASE/modules.dep.
pub fn kernel_modules(root: &Sysroot) -> Vec<Module> {
    let Ok(text) = std::fs::read_to_string(root.path("/proc/modules")) else {
        return Vec::new();
    };
    let files = root
        .read_trimmed("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|rel| {
            let base = format!("/lib/modules/{rel}");
            let dep = std::fs::read_to_string(root.path(format!("{base}/modules.dep"))).ok()?;
            Some(module_files(&dep, &base))
        })
        .unwrap_or_default();
    parse_modules(&text, &files)
}

/// The MMAP record perf writes for a kernel module.
pub fn module_mmap(out: &mut Vec<u8>, t: &IdTrailer, m: &Module) {
    let at = begin(out, MMAP, b::PERF_RECORD_MISC_KERNEL as u16);
    u32s(out, &[u32::MAX, 0]);
    u64s(out, &[m.start, m.size, 0]);
    push_name(out, &m.path);
    t.push(out, u32::MAX, 0);
    end(out, at);
}

/// PERF_RECORD_FINISHED_ROUND (a bare header).
pub fn finished_round(out: &mut Vec<u8>) {
    let at = begin(out, FINISHED_ROUND, 0);
    end(out, at);
}

/// The address of `_text` from kallsyms text; None when hidden (all zeros) or absent.
pub fn kallsyms_text(mut lines: impl Iterator<Item = String>) -> Option<u64> {
    lines.find_map(|l| {
        let mut f = l.split_whitespace();
        let addr = f.next()?;
        let kind = f.next()?;
        let name = f.next()?;
        if name == "_text" && (kind == "T" || kind == "t") {
            u64::from_str_radix(addr, 16).ok().filter(|&a| a != 0)
        } else {
            None
        }
    })
}

/// Reads `_text` from /proc/kallsyms, stopping at the first match (it is near the top).
pub fn kernel_text_address(root: &Sysroot) -> Option<u64> {
    use std::io::BufRead;
    let f = std::fs::File::open(root.path("/proc/kallsyms")).ok()?;
    kallsyms_text(std::io::BufReader::new(f).lines().map_while(|l| l.ok()))
}

fn read_comm(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    Some(s.trim_end_matches('\n').to_string())
}

/// The thread ids of a process, from /proc/PID/task (the pid itself when unreadable).
pub fn process_threads(root: &Sysroot, pid: i32) -> Vec<i32> {
    let mut tids: Vec<i32> = std::fs::read_dir(root.path(format!("/proc/{pid}/task")))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    if tids.is_empty() {
        tids.push(pid);
    }
    tids
}

/// Every process id in /proc.
pub fn all_processes(root: &Sysroot) -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_dir(root.path("/proc"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// COMM and FORK records for each thread of `pid`, then MMAP2 records for its executable
/// mappings. A process that vanished meanwhile yields nothing.
pub fn synthesize_process(out: &mut Vec<u8>, root: &Sysroot, t: &IdTrailer, pid: i32) {
    synthesize_process_with(out, root, t, pid, false)
}

/// [`synthesize_process`], with the non-executable mappings too when `data` is set.
pub fn synthesize_process_with(
    out: &mut Vec<u8>,
    root: &Sysroot,
    t: &IdTrailer,
    pid: i32,
    data: bool,
) {
    let Some(main_comm) = read_comm(&root.path(format!("/proc/{pid}/comm"))) else {
        return;
    };
    let p = pid as u32;
    for tid in process_threads(root, pid) {
        let name = read_comm(&root.path(format!("/proc/{pid}/task/{tid}/comm")))
            .unwrap_or_else(|| main_comm.clone());
        if tid != pid {
            fork(out, t, p, p, tid as u32, p);
        }
        comm(out, t, p, tid as u32, &name);
    }
    if let Ok(maps) = std::fs::read_to_string(root.path(format!("/proc/{pid}/maps"))) {
        for m in parse_maps_with(&maps, data) {
            mmap2(out, t, p, &m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::ring;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1835021                    /usr/bin/cat
55d0c0a02000-55d0c0a07000 r-xp 00002000 fd:01 1835021                    /usr/bin/cat
7f1c2a228000-7f1c2a3bd000 r-xp 00028000 fd:01 1837893                    /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2a400000-7f1c2a401000 rwxs 00000000 00:05 12                         /dev/zero (deleted)
7ffd6a1f0000-7ffd6a1f2000 r-xp 00000000 00:00 0                          [vdso]
7f0000000000-7f0000001000 r-xp 00000000 00:00 0 
garbage line
";

    #[test]
    fn maps_keep_executable_lines() {
        let m = parse_maps(MAPS);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].path, "/usr/bin/cat");
        assert_eq!(m[0].start, 0x55d0c0a02000);
        assert_eq!(m[0].pgoff, 0x2000);
        assert_eq!((m[0].maj, m[0].min, m[0].ino), (0xfd, 1, 1835021));
        assert_eq!(m[0].flags, libc::MAP_PRIVATE as u32);
        assert_eq!(m[2].path, "/dev/zero (deleted)");
        assert_eq!(m[2].flags, libc::MAP_SHARED as u32);
        assert_eq!(m[2].prot & libc::PROT_WRITE as u32, libc::PROT_WRITE as u32);
        assert_eq!(m[3].path, "[vdso]");
        assert_eq!(m[4].path, "//anon");
    }

    #[test]
    fn kallsyms_text_found_or_hidden() {
        let lines = |s: &str| s.lines().map(String::from).collect::<Vec<_>>().into_iter();
        let shown = "0000000000000000 A fixed_percpu_data\nffffffff81000000 T _stext\nffffffff81000000 T _text\n";
        assert_eq!(kallsyms_text(lines(shown)), Some(0xffffffff81000000));
        let hidden = "0000000000000000 T _text\n";
        assert_eq!(kallsyms_text(lines(hidden)), None);
        assert_eq!(kallsyms_text(lines("")), None);
    }

    #[test]
    fn records_are_aligned_and_carry_the_trailer() {
        let t = IdTrailer {
            sample_type: (b::PERF_SAMPLE_IDENTIFIER
                | b::PERF_SAMPLE_IP
                | b::PERF_SAMPLE_TID
                | b::PERF_SAMPLE_TIME
                | b::PERF_SAMPLE_CPU
                | b::PERF_SAMPLE_PERIOD) as u64,
            id: 42,
        };
        let mut out = Vec::new();
        comm(&mut out, &t, 10, 11, "hot");
        fork(&mut out, &t, 10, 10, 12, 10);
        mmap2(&mut out, &t, 10, &parse_maps(MAPS)[1]);
        kernel_mmap(&mut out, &t, 0xffffffff81000000);
        finished_round(&mut out);
        let recs: Vec<_> = ring::records(&out).collect();
        assert_eq!(
            recs.iter().map(|r| r.kind).collect::<Vec<_>>(),
            vec![COMM, FORK, MMAP2, MMAP, FINISHED_ROUND]
        );
        for r in &recs[..4] {
            assert_eq!(r.bytes.len() % 8, 0);
            // trailer: pid/tid, time, cpu, identifier = 32 bytes; identifier last.
            let n = r.bytes.len();
            assert_eq!(u64::from_ne_bytes(r.bytes[n - 8..].try_into().unwrap()), 42);
        }
        // COMM: header, pid, tid, "hot\0" padded to 8, trailer
        assert_eq!(recs[0].bytes.len(), 8 + 8 + 8 + 32);
        assert_eq!(&recs[0].bytes[16..20], b"hot\0");
        assert_eq!(recs[4].bytes.len(), 8);
        let k = &recs[3].bytes;
        assert_eq!(recs[3].misc, b::PERF_RECORD_MISC_KERNEL as u16);
        assert_eq!(u32::from_ne_bytes(k[8..12].try_into().unwrap()), u32::MAX);
        assert_eq!(
            &k[40..40 + KERNEL_MMAP_NAME.len()],
            KERNEL_MMAP_NAME.as_bytes()
        );
    }

    const MODULES: &str = "\
kvm_amd 155648 0 - Live 0xffffffffc0b9a000
kvm 1142784 1 kvm_amd, Live 0xffffffffc0a5b000
nvidia 56344576 2 nvidia_modeset, Live 0xffffffffc1000000 (POE)
hidden 4096 0 - Live 0x0000000000000000
";
    const DEP: &str = "\
kernel/arch/x86/kvm/kvm.ko.xz: kernel/virt/lib/irqbypass.ko.xz
kernel/arch/x86/kvm/kvm-amd.ko.xz: kernel/arch/x86/kvm/kvm.ko.xz
";

    #[test]
    fn modules_from_proc_and_modules_dep() {
        let files = module_files(DEP, "/lib/modules/6.1.0-13-amd64");
        assert_eq!(
            files["kvm_amd"],
            "/lib/modules/6.1.0-13-amd64/kernel/arch/x86/kvm/kvm-amd.ko.xz"
        );
        let mods = parse_modules(MODULES, &files);
        assert_eq!(
            mods,
            vec![
                Module {
                    start: 0xffffffffc0b9a000,
                    size: 155648,
                    path: files["kvm_amd"].clone(),
                },
                Module {
                    start: 0xffffffffc0a5b000,
                    size: 1142784,
                    path: "/lib/modules/6.1.0-13-amd64/kernel/arch/x86/kvm/kvm.ko.xz".into(),
                },
                // Not in modules.dep (built out of tree): perf's bracketed name.
                Module {
                    start: 0xffffffffc1000000,
                    size: 56344576,
                    path: "[nvidia]".into(),
                },
            ]
        );
        // Read through a sysroot, as record does.
        let dir = std::env::temp_dir().join(format!("ruperf-modules-{}", std::process::id()));
        let rel = "6.1.0-13-amd64";
        std::fs::create_dir_all(dir.join("proc/sys/kernel")).unwrap();
        std::fs::create_dir_all(dir.join(format!("lib/modules/{rel}"))).unwrap();
        std::fs::write(dir.join("proc/modules"), MODULES).unwrap();
        std::fs::write(dir.join("proc/sys/kernel/osrelease"), format!("{rel}\n")).unwrap();
        std::fs::write(dir.join(format!("lib/modules/{rel}/modules.dep")), DEP).unwrap();
        assert_eq!(kernel_modules(&Sysroot::new(&dir)), mods);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(kernel_modules(&Sysroot::new("/nonexistent")).is_empty());
    }

    #[test]
    fn module_map_record() {
        let t = IdTrailer {
            sample_type: (b::PERF_SAMPLE_IDENTIFIER | b::PERF_SAMPLE_TID | b::PERF_SAMPLE_TIME)
                as u64,
            id: 7,
        };
        let m = Module {
            start: 0xffffffffc0a5b000,
            size: 1142784,
            path: "[kvm]".into(),
        };
        let mut out = Vec::new();
        module_mmap(&mut out, &t, &m);
        let recs: Vec<_> = ring::records(&out).collect();
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!((r.kind, r.misc), (MMAP, b::PERF_RECORD_MISC_KERNEL as u16));
        let word = |at: usize| u64::from_ne_bytes(r.bytes[at..at + 8].try_into().unwrap());
        // header 8, pid/tid 8, then start, len, pgoff, then the name.
        assert_eq!(
            u32::from_ne_bytes(r.bytes[8..12].try_into().unwrap()),
            u32::MAX
        );
        assert_eq!((word(16), word(24), word(32)), (m.start, m.size, 0));
        assert_eq!(&r.bytes[40..46], b"[kvm]\0");
        assert_eq!(r.bytes.len() % 8, 0);
    }

    #[test]
    fn synthesizes_this_process() {
        let t = IdTrailer {
            sample_type: (b::PERF_SAMPLE_IDENTIFIER | b::PERF_SAMPLE_TID) as u64,
            id: 1,
        };
        let mut out = Vec::new();
        let me = std::process::id() as i32;
        synthesize_process(&mut out, &Sysroot::default(), &t, me);
        let kinds: Vec<u32> = ring::records(&out).map(|r| r.kind).collect();
        assert!(kinds.contains(&COMM));
        assert!(kinds.contains(&MMAP2));
        let mut vanished = Vec::new();
        synthesize_process(&mut vanished, &Sysroot::default(), &t, i32::MAX);
        assert!(vanished.is_empty());
    }
}
