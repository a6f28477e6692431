//! In-process symbolization: ELF symbol tables (through the `object` crate) and kallsyms.
//!
//! Each DSO is loaded at most once, on first use, and only its symbol table and program headers
//! are read (a `ReadCache` reads the byte ranges it needs, not the whole file). Where the
//! recording names a DSO's build id, the file on disk must carry the same one; otherwise perf's
//! build-id cache (`~/.debug/.build-id/xx/rest/elf`, filled by `perf record`) is tried, and
//! failing that the DSO's addresses stay unresolved with one warning. Kernel symbols come from
//! the cached kallsyms copy perf keeps per kernel build id, or from /proc/kallsyms when the
//! running kernel is the recorded one; they are relocated by the recorded `_text` address.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

use crate::sysroot::Sysroot;

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

/// An ELF file's symbols and the mapping from file offsets to its virtual addresses.
#[derive(Debug, Default)]
pub struct ElfSymbols {
    /// Symbols by virtual address.
    pub table: SymbolTable,
    /// PT_LOAD segments: (file offset, file size, virtual address).
    segments: Vec<(u64, u64, u64)>,
    /// True when the table came from .symtab (not only the exported .dynsym).
    full: bool,
}

impl ElfSymbols {
    /// The virtual address of a file offset, through the PT_LOAD segments.
    pub fn offset_to_vaddr(&self, off: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| off >= s.0 && off - s.0 < s.1.max(1))
            .map(|s| off - s.0 + s.2)
    }
}

/// Reads an ELF file's build id (hex) and symbols. `None` when it is not a readable ELF.
pub fn load_elf(path: &Path) -> Option<(Option<String>, ElfSymbols)> {
    let file = crate::sysroot::open_regular(path).ok()?;
    let cache = object::ReadCache::new(file);
    let obj = object::File::parse(&cache).ok()?;
    let build_id = obj.build_id().ok().flatten().map(hex);
    let mut out = ElfSymbols::default();
    for seg in obj.segments() {
        let (off, size) = seg.file_range();
        if size > 0 {
            out.segments.push((off, size, seg.address()));
        }
    }
    let add = |table: &mut SymbolTable,
               syms: object::SymbolIterator<'_, '_, &object::ReadCache<File>>| {
        for s in syms {
            if s.kind() != SymbolKind::Text || s.address() == 0 || s.is_undefined() {
                continue;
            }
            if let Ok(name) = s.name() {
                if !name.is_empty() {
                    table.push(s.address(), s.size(), name);
                }
            }
        }
    };
    add(&mut out.table, obj.symbols());
    out.full = !out.table.is_empty();
    if out.table.is_empty() {
        add(&mut out.table, obj.dynamic_symbols());
    }
    out.table.finish(u64::MAX);
    Some((build_id, out))
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
            if let Ok(d) = sym.demangle() {
                return d;
            }
        }
    }
    name.to_owned()
}

/// Where a DSO's symbols come from, resolved once.
#[derive(Debug)]
enum Loaded {
    Elf(ElfSymbols),
    Missing,
}

/// Symbolizes addresses of user DSOs and the kernel, loading each source once.
#[derive(Debug)]
pub struct Symbolizer {
    sysroot: Sysroot,
    /// Directory of perf's build-id cache (`~/.debug`).
    debug_dir: Option<PathBuf>,
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
        let debug_dir = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".debug"));
        Symbolizer {
            sysroot,
            debug_dir,
            recorded,
            dsos: HashMap::new(),
            kernel: None,
            kernel_text: None,
            warnings: Vec::new(),
        }
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
        if build_id.len() < 3 {
            return None;
        }
        let p = self
            .debug_dir
            .as_ref()?
            .join(".build-id")
            .join(&build_id[..2])
            .join(&build_id[2..])
            .join(leaf);
        p.exists().then_some(p)
    }

    /// Replaces a stripped file's exported symbols with the full table of its separate debug
    /// file (`/usr/lib/debug/.build-id/xx/rest.debug`), when installed.
    fn with_debug_symbols(&self, build_id: Option<&str>, mut syms: ElfSymbols) -> ElfSymbols {
        let Some(id) = build_id.filter(|id| id.len() > 2) else {
            return syms;
        };
        if syms.full {
            return syms;
        }
        let p = Path::new("/usr/lib/debug/.build-id")
            .join(&id[..2])
            .join(format!("{}.debug", &id[2..]));
        if let Some((_, dbg)) = load_elf(&p) {
            if dbg.full {
                syms.table = dbg.table;
                syms.full = true;
            }
        }
        syms
    }

    fn load_dso(&mut self, path: &str) -> Loaded {
        let wanted = self.recorded.get(path).cloned();
        let on_disk = if path.starts_with('/') {
            load_elf(Path::new(path))
        } else {
            None
        };
        let on_disk = on_disk.map(|(id, syms)| {
            let syms = self.with_debug_symbols(id.as_deref(), syms);
            (id, syms)
        });
        match (&wanted, on_disk) {
            (None, Some((_, syms))) => return Loaded::Elf(syms),
            (Some(w), Some((Some(have), syms))) if *w == have => return Loaded::Elf(syms),
            (Some(_), Some(_)) => {
                if let Some((_, syms)) = wanted
                    .as_deref()
                    .and_then(|w| self.cache_path(w, "elf"))
                    .and_then(|p| load_elf(&p))
                {
                    return Loaded::Elf(syms);
                }
                self.warnings.push(format!(
                    "{path} changed since the recording (its build id differs) and no copy is cached in ~/.debug; its addresses are left unresolved"
                ));
                return Loaded::Missing;
            }
            (_, None) => {}
        }
        // Not on disk: perf's build-id cache, or the vdso copy perf keeps.
        if let Some(w) = &wanted {
            let leaf = if path == "[vdso]" { "vdso" } else { "elf" };
            if let Some((_, syms)) = self.cache_path(w, leaf).and_then(|p| load_elf(&p)) {
                return Loaded::Elf(syms);
            }
        }
        if path.starts_with('/') {
            let what = match std::fs::metadata(path) {
                Ok(m) if !m.is_file() => "is not a regular file, so ruperf does not open it",
                Ok(_) => "is not an ELF file ruperf can read symbols from",
                Err(_) => "is missing (it was recorded but is no longer on disk)",
            };
            self.warnings
                .push(format!("{path} {what}; its addresses are left unresolved"));
        }
        Loaded::Missing
    }

    /// The symbol at file offset `off` of the user DSO `path`: (name, offset of the address
    /// into the symbol). `None` when the DSO or the address has no symbol.
    pub fn lookup_user(&mut self, path: &str, off: u64) -> Option<(&str, u64)> {
        if !self.dsos.contains_key(path) {
            let loaded = self.load_dso(path);
            self.dsos.insert(path.to_owned(), loaded);
        }
        match self.dsos.get(path)? {
            Loaded::Elf(e) => {
                let vaddr = e.offset_to_vaddr(off)?;
                e.table.lookup(vaddr).map(|(n, start)| (n, vaddr - start))
            }
            Loaded::Missing => None,
        }
    }

    /// The virtual address of file offset `off` in `path`, once loaded (for display of
    /// unresolved addresses).
    pub fn vaddr(&self, path: &str, off: u64) -> Option<u64> {
        match self.dsos.get(path)? {
            Loaded::Elf(e) => e.offset_to_vaddr(off),
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
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
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
