//! In-process symbolization: ELF symbol tables (through the `object` crate) and kallsyms.
//!
//! Each DSO is loaded at most once, on first use, and only its symbol table and program headers
//! are read (a `ReadCache` reads the byte ranges it needs, not the whole file). Where the
//! recording names a DSO's build id, the file on disk must carry the same one; otherwise perf's
//! build-id cache (`~/.debug/.build-id/xx/rest/elf`, filled by `perf record`) is tried, and
//! failing that the DSO's addresses stay unresolved with one warning. Kernel symbols come from
//! the cached kallsyms copy perf keeps per kernel build id, or from /proc/kallsyms when the
//! running kernel is the recorded one; they are relocated by the recorded `_text` address.

pub mod debugfile;
pub mod dwarf;
pub mod elf;
pub mod jitmap;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::sysroot::Sysroot;
use debugfile::DebugDirs;
use dwarf::{Dwarf, Frames};
pub use elf::{load_elf, ElfSymbols};

pub mod unwind;

/// A sorted symbol table with names in one arena.
#[derive(Debug, Default)]
pub struct SymbolTable {
    /// (start, end, name offset, name length), sorted by start.
    syms: Vec<(u64, u64, u32, u32)>,
    names: String,
}

impl SymbolTable {
    fn push(&mut self, start: u64, size: u64, name: &str) {
        let off = self.names.len() as u32;
        self.names.push_str(name);
        self.syms
            .push((start, start.saturating_add(size), off, name.len() as u32));
    }

    /// Sorts, removes duplicates (keeping the first name at an address) and gives size-less
    /// symbols the room up to the next symbol, as perf does.
    fn finish(&mut self, limit: u64) {
        self.syms.sort_by_key(|s| (s.0, std::cmp::Reverse(s.1)));
        self.syms.dedup_by_key(|s| s.0);
        for i in 0..self.syms.len() {
            if self.syms[i].1 <= self.syms[i].0 {
                let next = self.syms.get(i + 1).map_or(limit, |n| n.0);
                self.syms[i].1 = next.max(self.syms[i].0 + 1);
            }
        }
    }

    /// The symbol containing `addr`: its name and start address.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.syms.partition_point(|s| s.0 <= addr);
        let s = self.syms.get(i.checked_sub(1)?)?;
        if addr < s.1 {
            Some((&self.names[s.2 as usize..(s.2 + s.3) as usize], s.0))
        } else {
            None
        }
    }

    /// The symbols: (start, end, name).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, &str)> + '_ {
        self.syms
            .iter()
            .map(|s| (s.0, s.1, &self.names[s.2 as usize..(s.2 + s.3) as usize]))
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// True when the table has no symbols.
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// Parses kallsyms text (`ADDR TYPE NAME [MODULE]`), keeping text symbols. Returns the
    /// table, the `_text` address and, per symbol, its module (empty for the core kernel) as
    /// a suffix `\0module` appended to the name.
    pub fn from_kallsyms(text: &[u8]) -> (SymbolTable, Option<u64>) {
        let mut t = SymbolTable::default();
        let mut text_addr = None;
        for line in text.split(|&c| c == b'\n') {
            let Some(addr_end) = line.iter().position(|&c| c == b' ') else {
                continue;
            };
            let Some(addr) = parse_hex(&line[..addr_end]) else {
                continue;
            };
            let rest = &line[addr_end + 1..];
            if rest.len() < 3 {
                continue;
            }
            let ty = rest[0];
            let name_part = &rest[2..];
            let (name, module) = match name_part.iter().position(|&c| c == b'\t') {
                Some(p) => (&name_part[..p], &name_part[p + 1..]),
                None => (name_part, &b""[..]),
            };
            if name == b"_text" && text_addr.is_none() {
                text_addr = Some(addr);
            }
            if !matches!(ty, b't' | b'T' | b'w' | b'W') || addr == 0 {
                continue;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let module = module.strip_prefix(b"[").unwrap_or(module);
            let module = module.strip_suffix(b"]").unwrap_or(module);
            if module.is_empty() {
                t.push(addr, 0, name);
            } else {
                let m = String::from_utf8_lossy(module);
                t.push(addr, 0, &format!("{name}\0{m}"));
            }
        }
        t.finish(u64::MAX);
        (t, text_addr)
    }
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = v << 4 | u64::from(d);
    }
    Some(v)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Demangles Rust and C++ names; other names come back unchanged.
pub fn demangle(name: &str) -> String {
    if name.starts_with("_R") || name.starts_with("_ZN") {
        if let Ok(d) = rustc_demangle::try_demangle(name) {
            return format!("{d:#}");
        }
    }
    if name.starts_with("_Z") {
        if let Ok(sym) = cpp_demangle::Symbol::new(name) {
            // perf's default (DMGL_NO_OPTS): no parameters, no return type.
            let opts = cpp_demangle::DemangleOptions::new()
                .no_params()
                .no_return_type();
            if let Ok(d) = sym.demangle_with_options(&opts) {
                return d;
            }
        }
    }
    name.to_owned()
}

/// A user DSO's symbols and, loaded on first need, its DWARF.
#[derive(Debug)]
struct Dso {
    syms: ElfSymbols,
    /// The file whose DWARF answers line and inline questions (the binary or its debug file).
    dwarf_path: Option<PathBuf>,
    /// `None` until first asked; then the parsed DWARF, if any.
    dwarf: Option<Option<Dwarf>>,
}

/// Where a DSO's symbols come from, resolved once.
#[derive(Debug)]
enum Loaded {
    Elf(Box<Dso>),
    /// A JIT map (`/tmp/perf-PID.map`): absolute addresses.
    Jit(SymbolTable),
    Missing,
}

/// Symbolizes addresses of user DSOs and the kernel, loading each source once.
#[derive(Debug)]
pub struct Symbolizer {
    sysroot: Sysroot,
    /// Directory of perf's build-id cache (`~/.debug`).
    debug_dir: Option<PathBuf>,
    /// Where separate debug files are searched.
    dirs: DebugDirs,
    /// `--symfs`: a root prefixed to every recorded DSO path.
    symfs: Option<PathBuf>,
    /// Build ids the recording gives, by DSO path.
    recorded: HashMap<String, String>,
    dsos: HashMap<String, Loaded>,
    kernel: Option<Option<(SymbolTable, i64)>>,
    /// `_text` address at recording time (pgoff of the kernel MMAP).
    kernel_text: Option<u64>,
    warnings: Vec<String>,
}

impl Symbolizer {
    /// A symbolizer for a recording whose BUILD_ID section maps `recorded` paths to ids.
    pub fn new(sysroot: Sysroot, recorded: HashMap<String, String>) -> Self {
        let debug_dir = crate::perfdata::buildid_cache::cache_dir();
        Symbolizer {
            sysroot,
            dirs: DebugDirs {
                cache: debug_dir.clone(),
                system: PathBuf::from("/usr/lib/debug"),
            },
            debug_dir,
            symfs: None,
            recorded,
            dsos: HashMap::new(),
            kernel: None,
            kernel_text: None,
            warnings: Vec::new(),
        }
    }

    /// Looks up every recorded DSO path under `dir` (perf's `--symfs`), including the
    /// system debug directory.
    pub fn set_symfs(&mut self, dir: PathBuf) {
        self.dirs.system = dir.join("usr/lib/debug");
        self.symfs = Some(dir);
    }

    /// Sets the kernel's `_text` address as recorded (the kernel map's pgoff).
    pub fn set_kernel_text(&mut self, addr: u64) {
        self.kernel_text = Some(addr);
    }

    /// The recorded `_text` address, once set.
    pub fn kernel_text(&self) -> Option<u64> {
        self.kernel_text
    }

    /// Warnings gathered while loading (one line each).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn cache_path(&self, build_id: &str, leaf: &str) -> Option<PathBuf> {
        let p = crate::perfdata::buildid_cache::lookup(self.debug_dir.as_deref()?, build_id, leaf)?;
        p.exists().then_some(p)
    }

    fn on_disk(&self, path: &str) -> PathBuf {
        match &self.symfs {
            Some(root) => root.join(path.trim_start_matches('/')),
            None => PathBuf::from(path),
        }
    }

    /// Completes a file's symbols from its separate debug file and picks the file whose DWARF
    /// answers line questions.
    /// `file` is the file read (perhaps a build-id cache copy); `recorded` the path the
    /// recording names, beside which a debug link is looked up, as perf does.
    fn with_debug_file(
        &self,
        file: &Path,
        recorded: &Path,
        build_id: Option<&str>,
        mut syms: ElfSymbols,
    ) -> Dso {
        let mut dwarf_path = syms.has_dwarf.then(|| file.to_path_buf());
        if !syms.full || dwarf_path.is_none() {
            let link = syms.debuglink.as_ref().map(|(n, c)| (n.as_str(), *c));
            let found = self
                .dirs
                .find(recorded, build_id, link)
                .or_else(|| self.dirs.find(file, build_id, link));
            if let Some(dbg_path) = found {
                if let Some((_, dbg)) = load_elf(&dbg_path) {
                    if !syms.full && dbg.full {
                        syms.table = dbg.table;
                        syms.full = true;
                    }
                    if dwarf_path.is_none() && dbg.has_dwarf {
                        dwarf_path = Some(dbg_path);
                    }
                }
            }
        }
        Dso {
            syms,
            dwarf_path,
            dwarf: None,
        }
    }

    fn load_dso(&mut self, path: &str) -> Loaded {
        if jitmap::is_map_path(path) {
            return match jitmap::load(&self.on_disk(path)) {
                Some(t) => Loaded::Jit(t),
                None => Loaded::Missing,
            };
        }
        let wanted = self.recorded.get(path).cloned();
        let file = self.on_disk(path);
        let on_disk = if path.starts_with('/') {
            load_elf(&file).map(|(id, s)| (id, s, file.clone()))
        } else {
            None
        };
        let from_cache = |leaf: &str| {
            let p = self.cache_path(wanted.as_deref()?, leaf)?;
            load_elf(&p).map(|(id, s)| (id, s, p))
        };
        let found = match (&wanted, on_disk) {
            (None, Some(d)) => Some(d),
            (Some(w), Some(d)) if d.0.as_deref() == Some(w.as_str()) => Some(d),
            (Some(_), Some(_)) => {
                let c = from_cache("elf");
                if c.is_none() {
                    self.warnings.push(format!(
                        "{path} changed since the recording (its build id differs) and no copy is cached in ~/.debug; its addresses are left unresolved"
                    ));
                    return Loaded::Missing;
                }
                c
            }
            // Not on disk: perf's build-id cache, or the vdso copy perf keeps.
            (_, None) => from_cache(if path == "[vdso]" { "vdso" } else { "elf" }),
        };
        if found.is_none() && path == "[vdso]" {
            // As perf: this machine's own vdso, when it is the recorded one (or none is named).
            if let Some((id, syms)) =
                crate::perfdata::buildid_cache::own_vdso().and_then(|b| elf::load_image(&b))
            {
                if wanted.is_none() || wanted == id {
                    return Loaded::Elf(Box::new(Dso {
                        syms,
                        dwarf_path: None,
                        dwarf: None,
                    }));
                }
            }
        }
        match found {
            Some((id, syms, file)) => {
                let recorded = self.on_disk(path);
                let dso = self.with_debug_file(&file, &recorded, id.as_deref(), syms);
                Loaded::Elf(Box::new(dso))
            }
            None => {
                if path.starts_with('/') {
                    let what = match std::fs::metadata(path) {
                        Ok(m) if !m.is_file() => {
                            "is not a regular file, so ruperf does not open it"
                        }
                        Ok(_) => "is not an ELF file ruperf can read symbols from",
                        Err(_) => {
                            "is missing (it was recorded but is no longer on disk, nor in ~/.debug)"
                        }
                    };
                    self.warnings
                        .push(format!("{path} {what}; its addresses are left unresolved"));
                }
                Loaded::Missing
            }
        }
    }

    fn dso(&mut self, path: &str) -> &mut Loaded {
        if !self.dsos.contains_key(path) {
            let loaded = self.load_dso(path);
            self.dsos.insert(path.to_owned(), loaded);
        }
        self.dsos.get_mut(path).expect("inserted above")
    }

    /// The symbol at file offset `off` of the user DSO `path`: (name, offset of the address
    /// into the symbol). `None` when the DSO or the address has no symbol.
    pub fn lookup_user(&mut self, path: &str, off: u64) -> Option<(&str, u64)> {
        match self.dso(path) {
            Loaded::Elf(e) => {
                let vaddr = e.syms.offset_to_vaddr(off)?;
                e.syms
                    .table
                    .lookup(vaddr)
                    .map(|(n, start)| (n, vaddr - start))
            }
            Loaded::Jit(t) => t.lookup(off).map(|(n, start)| (n, off - start)),
            Loaded::Missing => None,
        }
    }

    /// The DWARF inline chain at file offset `off` of `path` (innermost first, the last
    /// frame being the symbol's own function); empty without debug information. Parses the
    /// DSO's DWARF on first use.
    pub fn src_frames(&mut self, path: &str, off: u64) -> Option<Frames> {
        let Loaded::Elf(e) = self.dso(path) else {
            return None;
        };
        let vaddr = e.syms.offset_to_vaddr(off)?;
        if e.dwarf.is_none() {
            e.dwarf = Some(e.dwarf_path.as_deref().and_then(Dwarf::load));
        }
        let d = e.dwarf.as_mut()?.as_mut()?;
        let f = d.frames(vaddr);
        (!f.is_empty()).then_some(f)
    }

    /// The virtual address of file offset `off` in `path`, once loaded (for display of
    /// unresolved addresses).
    pub fn vaddr(&self, path: &str, off: u64) -> Option<u64> {
        match self.dsos.get(path)? {
            Loaded::Elf(e) => e.syms.offset_to_vaddr(off),
            Loaded::Jit(_) => Some(off),
            Loaded::Missing => None,
        }
    }

    fn load_kernel(&mut self) -> Option<(SymbolTable, i64)> {
        let recorded = self.recorded.get("[kernel.kallsyms]").cloned();
        let running = std::fs::read(self.sysroot.path("/sys/kernel/notes"))
            .ok()
            .and_then(|b| gnu_build_id_note(&b));
        let mut text = None;
        if let (Some(id), Some(dir)) = (&recorded, &self.debug_dir) {
            let p = dir.join("[kernel.kallsyms]").join(id).join("kallsyms");
            text = read_limited(&p);
        }
        if text.is_none() {
            let same = match (&recorded, &running) {
                (Some(r), Some(n)) => r == n,
                _ => true,
            };
            if same {
                text = read_limited(&self.sysroot.path("/proc/kallsyms"));
            } else {
                self.warnings.push(
                    "the recording's kernel is not the running one and no kallsyms copy is cached in ~/.debug; kernel addresses are left unresolved".into(),
                );
                return None;
            }
        }
        let Some(text) = text else {
            self.warnings.push(
                "cannot read /proc/kallsyms; kernel addresses are left unresolved (run as root or lower kernel.kptr_restrict)".into(),
            );
            return None;
        };
        let (table, text_addr) = SymbolTable::from_kallsyms(&text);
        if table.is_empty() {
            self.warnings.push(
                "/proc/kallsyms shows no addresses (kernel.kptr_restrict); kernel addresses are left unresolved".into(),
            );
            return None;
        }
        let delta = match (self.kernel_text, text_addr) {
            (Some(rec), Some(now)) => now.wrapping_sub(rec) as i64,
            _ => 0,
        };
        Some((table, delta))
    }

    /// The kernel symbol at `addr`: (name, module or "" for the core kernel, offset of `addr`
    /// into the symbol).
    pub fn lookup_kernel(&mut self, addr: u64) -> Option<(&str, &str, u64)> {
        if self.kernel.is_none() {
            self.kernel = Some(self.load_kernel());
        }
        let (table, delta) = self.kernel.as_ref()?.as_ref()?;
        let at = addr.wrapping_add(*delta as u64);
        let (name, start) = table.lookup(at)?;
        let off = at - start;
        Some(match name.split_once('\0') {
            Some((n, m)) => (n, m, off),
            None => (name, "", off),
        })
    }
}

/// Reads a file of at most 256 MiB.
fn read_limited(p: &Path) -> Option<Vec<u8>> {
    let f = crate::sysroot::open_regular(p).ok()?;
    let mut v = Vec::new();
    f.take(256 << 20).read_to_end(&mut v).ok()?;
    Some(v)
}

/// The GNU build id in a run of ELF notes (as in /sys/kernel/notes), as hex.
pub fn gnu_build_id_note(b: &[u8]) -> Option<String> {
    crate::perfdata::buildid::from_notes(b).map(|id| hex(&id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_text_symbols_only_with_modules() {
        let text = b"ffffffff81000000 T _text\nffffffff81000010 T startup_64\nffffffff81000100 t helper\nffffffff81001000 D some_data\nffffffffc0000000 t mod_fn\t[kvm]\n0000000000000000 A fixed\n";
        let (t, text_addr) = SymbolTable::from_kallsyms(text);
        assert_eq!(text_addr, Some(0xffffffff81000000));
        assert_eq!(t.lookup(0xffffffff81000020).unwrap().0, "startup_64");
        assert_eq!(t.lookup(0xffffffff81000100).unwrap().0, "helper");
        // Data symbols do not end text symbols early; the size-less helper runs to mod_fn.
        assert_eq!(t.lookup(0xffffffff81001004).unwrap().0, "helper");
        assert_eq!(t.lookup(0xffffffffc0000004).unwrap().0, "mod_fn\0kvm");
        assert!(t.lookup(0x1000).is_none());
    }

    #[test]
    fn sized_symbols_do_not_cover_gaps() {
        let mut t = SymbolTable::default();
        t.push(0x1000, 0x10, "a");
        t.push(0x2000, 0, "b");
        t.push(0x3000, 0x10, "c");
        t.finish(u64::MAX);
        assert_eq!(t.lookup(0x100f).unwrap(), ("a", 0x1000));
        assert!(t.lookup(0x1010).is_none());
        assert_eq!(t.lookup(0x2fff).unwrap().0, "b");
        assert!(t.lookup(0x3010).is_none());
    }

    #[test]
    fn demangles_rust_and_cpp() {
        assert_eq!(
            demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"),
            "core::ptr::drop_in_place"
        );
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar");
        assert_eq!(demangle("_ZN1A1fIiEEvT_"), "A::f<int>");
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
    }

    #[test]
    fn build_id_note() {
        let mut b = Vec::new();
        b.extend_from_slice(&4u32.to_ne_bytes());
        b.extend_from_slice(&4u32.to_ne_bytes());
        b.extend_from_slice(&3u32.to_ne_bytes());
        b.extend_from_slice(b"GNU\0");
        b.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(gnu_build_id_note(&b).as_deref(), Some("deadbeef"));
        assert_eq!(gnu_build_id_note(&b[..10]), None);
    }

    #[test]
    fn loads_own_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let (_, syms) = load_elf(&exe).expect("test binary is ELF");
        assert!(syms.table.len() > 100);
    }
}
