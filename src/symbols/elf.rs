//! ELF symbol tables as perf reads them: `.symtab` (else `.dynsym`), perf's choice among
//! aliases at one address, `name@plt` stubs synthesized from the PLT relocations, and the
//! MiniDebugInfo symbol table (`.gnu_debugdata`, xz) of stripped distribution binaries.

use std::borrow::Cow;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, ObjectSymbolTable, SymbolFlags};

use super::SymbolTable;

/// Largest MiniDebugInfo we decompress (they are a few hundred KiB in practice).
const MAX_DEBUGDATA: u64 = 64 << 20;

const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;

/// An ELF file's symbols and the mapping from file offsets to its virtual addresses.
#[derive(Debug, Default)]
pub struct ElfSymbols {
    /// Symbols by virtual address.
    pub table: SymbolTable,
    /// PT_LOAD segments: (file offset, file size, virtual address).
    pub(super) segments: Vec<(u64, u64, u64)>,
    /// True when the table came from .symtab (not only the exported .dynsym).
    pub full: bool,
    /// `.gnu_debuglink`: the separate debug file's name and CRC-32.
    pub debuglink: Option<(String, u32)>,
    /// True when the file carries DWARF line or inline information (`.debug_info`).
    pub has_dwarf: bool,
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

/// A function symbol before perf's alias choice.
struct Cand<'a> {
    addr: u64,
    size: u64,
    name: Cow<'a, str>,
    weak: bool,
    global: bool,
}

/// perf's `choose_best_symbol`: true when `b` should replace `a` at the same address.
fn better(a: &Cand<'_>, b: &Cand<'_>) -> bool {
    if (a.size == 0) != (b.size == 0) {
        return a.size == 0;
    }
    if a.weak != b.weak {
        return a.weak;
    }
    if a.global != b.global {
        return b.global;
    }
    let under = |s: &str| s.bytes().take_while(|&c| c == b'_').count();
    let (ua, ub) = (under(&a.name), under(&b.name));
    if ua != ub {
        return ub < ua;
    }
    b.name.len() > a.name.len()
}

/// Keeps, at each address, the alias perf would show, and pushes the winners into `table`.
fn push_best(table: &mut SymbolTable, mut cands: Vec<Cand<'_>>) {
    // Stable: among equal addresses the file's order decides ties, as in perf.
    cands.sort_by_key(|c| c.addr);
    let mut i = 0;
    while i < cands.len() {
        let mut best = i;
        let mut j = i + 1;
        while j < cands.len() && cands[j].addr == cands[i].addr {
            if better(&cands[best], &cands[j]) {
                best = j;
            }
            j += 1;
        }
        let c = &cands[best];
        table.push(c.addr, c.size, &c.name);
        i = j;
    }
}

/// The function symbols of one symbol table, as perf's `elf_sym__is_function` keeps them.
fn functions<'d: 'f, 'f, R: object::ReadRef<'d> + 'f>(
    syms: impl Iterator<Item = object::Symbol<'d, 'f, R>>,
) -> Vec<Cand<'d>> {
    let mut out = Vec::new();
    for s in syms {
        let SymbolFlags::Elf { st_info, .. } = s.flags() else {
            continue;
        };
        let ty = st_info.st_type().0;
        if !matches!(ty, STT_FUNC | STT_GNU_IFUNC) || s.is_undefined() || s.address() == 0 {
            continue;
        }
        let Ok(name) = s.name() else { continue };
        if name.is_empty() {
            continue;
        }
        let bind = st_info.st_bind().0;
        out.push(Cand {
            addr: s.address(),
            size: s.size(),
            name: Cow::Borrowed(name),
            weak: bind == STB_WEAK,
            global: bind == STB_GLOBAL,
        });
    }
    out
}

/// `name@plt` symbols for the PLT stubs, one per `.rela.plt` (or `.rel.plt`) entry, in the
/// order of the relocations: after the PLT header in `.plt`, or from the start of `.plt.sec`
/// where the binary has one (IBT).
fn plt_symbols<'d, R: object::ReadRef<'d>>(obj: &object::File<'d, R>) -> Vec<Cand<'static>> {
    let mut out = Vec::new();
    let (rel, rela) = match obj.section_by_name(".rela.plt") {
        Some(s) => (s, true),
        None => match obj.section_by_name(".rel.plt") {
            Some(s) => (s, false),
            None => return out,
        },
    };
    let Ok(data) = rel.data() else { return out };
    let (entry, first) = match (obj.section_by_name(".plt.sec"), obj.section_by_name(".plt")) {
        (Some(sec), _) => (16, sec.address()),
        (None, Some(plt)) => {
            let ent = match plt_entsize(obj, ".plt") {
                0 => 16,
                e => e,
            };
            (ent, plt.address() + ent)
        }
        (None, None) => return out,
    };
    let Some(dynsyms) = obj.dynamic_symbol_table() else {
        return out;
    };
    let is64 = obj.is_64();
    let le = obj.is_little_endian();
    let width = match (is64, rela) {
        (true, true) => 24,
        (true, false) => 16,
        (false, true) => 12,
        (false, false) => 8,
    };
    let word = |b: &[u8]| -> u64 {
        let fold = |v: u64, &x: &u8| v << 8 | u64::from(x);
        if le {
            b.iter().rev().fold(0, fold)
        } else {
            b.iter().fold(0, fold)
        }
    };
    for (i, r) in data.chunks_exact(width).enumerate() {
        let info = if is64 {
            word(&r[8..16])
        } else {
            word(&r[4..8])
        };
        let idx = if is64 { info >> 32 } else { info >> 8 };
        let Ok(sym) = dynsyms.symbol_by_index(object::SymbolIndex(idx as usize)) else {
            continue;
        };
        let Ok(name) = sym.name() else { continue };
        if name.is_empty() {
            continue;
        }
        out.push(Cand {
            addr: first + i as u64 * entry,
            size: entry,
            name: Cow::Owned(format!("{name}@plt")),
            weak: false,
            global: true,
        });
    }
    out
}

/// A section's `sh_entsize`, read from the ELF section header.
fn plt_entsize<'d, R: object::ReadRef<'d>>(obj: &object::File<'d, R>, name: &str) -> u64 {
    use object::read::elf::SectionHeader;
    match obj {
        object::File::Elf64(f) => {
            let e = f.endian();
            f.elf_section_table()
                .section_by_name(e, name.as_bytes())
                .map_or(0, |(_, s)| s.sh_entsize(e))
        }
        object::File::Elf32(f) => {
            let e = f.endian();
            f.elf_section_table()
                .section_by_name(e, name.as_bytes())
                .map_or(0, |(_, s)| u64::from(s.sh_entsize(e)))
        }
        _ => 0,
    }
}

/// Decompresses `.gnu_debugdata` (an xz-compressed ELF holding a `.symtab`), at most
/// [`MAX_DEBUGDATA`] bytes.
fn mini_debuginfo(xz: &[u8]) -> Option<Vec<u8>> {
    struct Capped(Vec<u8>);
    impl std::io::Write for Capped {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0.len() as u64 + b.len() as u64 > MAX_DEBUGDATA {
                return Err(std::io::Error::other("MiniDebugInfo too large"));
            }
            self.0.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped(Vec::new());
    let mut input = std::io::BufReader::new(xz);
    lzma_rs::xz_decompress(&mut input, &mut out).ok()?;
    Some(out.0)
}

/// Reads an ELF file's build id (hex) and symbols. `None` when it is not a readable ELF.
pub fn load_elf(path: &Path) -> Option<(Option<String>, ElfSymbols)> {
    let file = crate::sysroot::open_regular(path).ok()?;
    let cache = object::ReadCache::new(file);
    let obj = object::File::parse(&cache).ok()?;
    Some(read_elf(&obj))
}

/// Reads the build id and symbols of an ELF image in memory (the vdso).
pub fn load_image(bytes: &[u8]) -> Option<(Option<String>, ElfSymbols)> {
    let obj = object::File::parse(bytes).ok()?;
    Some(read_elf(&obj))
}

fn read_elf<'d, R: object::ReadRef<'d>>(obj: &object::File<'d, R>) -> (Option<String>, ElfSymbols) {
    let build_id = obj.build_id().ok().flatten().map(super::hex);
    let mut out = ElfSymbols::default();
    for seg in obj.segments() {
        let (off, size) = seg.file_range();
        if size > 0 {
            out.segments.push((off, size, seg.address()));
        }
    }
    out.debuglink = obj
        .gnu_debuglink()
        .ok()
        .flatten()
        .map(|(n, crc)| (String::from_utf8_lossy(n).into_owned(), crc));
    out.has_dwarf = obj
        .section_by_name(".debug_info")
        .is_some_and(|s| s.size() > 0);
    let mut cands = functions(obj.symbols());
    out.full = !cands.is_empty();
    if cands.is_empty() {
        cands = functions(obj.dynamic_symbols());
        // MiniDebugInfo holds the local symbols .dynsym lacks: both together, as gdb does.
        let mini = obj
            .section_by_name(".gnu_debugdata")
            .and_then(|s| s.data().ok())
            .and_then(mini_debuginfo);
        if let Some(bytes) = &mini {
            if let Ok(m) = object::File::parse(&bytes[..]) {
                let extra: Vec<Cand<'static>> = functions(m.symbols())
                    .into_iter()
                    .map(|c| Cand {
                        name: Cow::Owned(c.name.into_owned()),
                        ..c
                    })
                    .collect();
                out.full = !extra.is_empty();
                cands.extend(extra);
            }
        }
        let mut all: Vec<Cand<'_>> = cands;
        all.extend(plt_symbols(obj));
        push_best(&mut out.table, all);
    } else {
        cands.extend(plt_symbols(obj));
        push_best(&mut out.table, cands);
    }
    out.table.finish(u64::MAX);
    (build_id, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, size: u64, weak: bool, global: bool) -> Cand<'_> {
        Cand {
            addr: 0x1000,
            size,
            name: Cow::Borrowed(name),
            weak,
            global,
        }
    }

    #[test]
    fn alias_choice_follows_perf() {
        // glibc's write: locals win over weak ones, then the longest name.
        let mut t = SymbolTable::default();
        push_best(
            &mut t,
            vec![
                cand("__GI___write", 157, false, false),
                cand("__GI___libc_write", 157, false, false),
                cand("__libc_write", 157, false, false),
                cand("__write", 157, true, false),
                cand("write", 157, true, false),
            ],
        );
        t.finish(u64::MAX);
        assert_eq!(t.lookup(0x1000).unwrap().0, "__GI___libc_write");
        // A global beats a local; fewer leading underscores beat more.
        assert!(better(
            &cand("a", 1, false, false),
            &cand("b", 1, false, true)
        ));
        assert!(better(
            &cand("__read", 1, false, true),
            &cand("read", 1, false, true)
        ));
        assert!(better(
            &cand("x", 0, false, true),
            &cand("y", 4, true, false)
        ));
    }

    #[test]
    fn corrupt_xz_is_refused() {
        assert!(mini_debuginfo(b"\xfd7zXZ\0garbage").is_none());
    }
}
