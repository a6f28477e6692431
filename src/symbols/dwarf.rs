//! Source lines and inline frames from DWARF, through `addr2line` (over `gimli`).
//!
//! A DSO's DWARF is parsed once, on the first question about it, and each address is
//! answered once (a per-DSO cache), so a report asks addr2line about each distinct address
//! of the profile only one time. Compressed debug sections (`SHF_COMPRESSED`, as Debian's
//! `/usr/lib/debug` files have them) are inflated by `object`.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use object::{Object, ObjectSection};

type Reader = gimli::EndianRcSlice<gimli::RunTimeEndian>;

/// Debug sections larger than this are not loaded (a sanity bound, far above real files).
const MAX_SECTION: u64 = 2 << 30;

/// One frame of the inline chain at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrcFrame {
    /// Function name as DWARF gives it (linkage name when present, still mangled).
    pub function: Option<String>,
    /// Source file (as recorded: may be a full or relative path).
    pub file: Option<String>,
    /// Line number (0 when unknown).
    pub line: u32,
}

/// What DWARF says about one address: the chain from the innermost inlined function out to
/// the function the symbol table names (the last frame).
pub type Frames = Rc<[SrcFrame]>;

/// A DSO's parsed DWARF and the answers given so far.
pub struct Dwarf {
    ctx: addr2line::Context<Reader>,
    cache: HashMap<u64, Frames>,
}

impl std::fmt::Debug for Dwarf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dwarf")
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl Dwarf {
    /// Parses the DWARF of the ELF file at `path`. `None` when it has none or is unreadable.
    pub fn load(path: &Path) -> Option<Dwarf> {
        let file = crate::sysroot::open_regular(path).ok()?;
        let cache = object::ReadCache::new(file);
        let obj = object::File::parse(&cache).ok()?;
        obj.section_by_name(".debug_info")?;
        let endian = if obj.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
            // Location lists and macros say nothing about lines or inlining: not inflated.
            let unused = matches!(
                id,
                gimli::SectionId::DebugLoc
                    | gimli::SectionId::DebugLocLists
                    | gimli::SectionId::DebugMacinfo
                    | gimli::SectionId::DebugMacro
            );
            let data: Rc<[u8]> = match obj.section_by_name(id.name()).filter(|_| !unused) {
                Some(s) if s.size() <= MAX_SECTION => match s.uncompressed_data() {
                    Ok(d) => Rc::from(&d[..]),
                    Err(_) => Rc::from(&[][..]),
                },
                _ => Rc::from(&[][..]),
            };
            Ok(gimli::EndianRcSlice::new(data, endian))
        };
        let dwarf = gimli::Dwarf::load(load).ok()?;
        let ctx = addr2line::Context::from_dwarf(dwarf).ok()?;
        Some(Dwarf {
            ctx,
            cache: HashMap::new(),
        })
    }

    /// The inline chain at virtual address `vaddr` (innermost first); empty when DWARF does
    /// not cover it.
    pub fn frames(&mut self, vaddr: u64) -> Frames {
        if let Some(f) = self.cache.get(&vaddr) {
            return f.clone();
        }
        let f: Frames = self.lookup(vaddr).into();
        self.cache.insert(vaddr, f.clone());
        f
    }

    fn lookup(&self, vaddr: u64) -> Vec<SrcFrame> {
        let mut out = Vec::new();
        let Ok(mut it) = self.ctx.find_frames(vaddr).skip_all_loads() else {
            return out;
        };
        // Bounded: a corrupt DIE tree cannot make the chain unbounded.
        while let Ok(Some(fr)) = it.next() {
            let function = fr
                .function
                .as_ref()
                .and_then(|n| n.raw_name().ok().map(|c| c.into_owned()));
            let (file, line) = match &fr.location {
                Some(l) => (l.file.map(str::to_owned), l.line.unwrap_or(0)),
                None => (None, 0),
            };
            out.push(SrcFrame {
                function,
                file,
                line,
            });
            if out.len() >= 256 {
                break;
            }
        }
        out
    }
}

/// perf's srcline text for a location: `basename:line`.
pub fn srcline(f: &SrcFrame) -> Option<String> {
    let file = f.file.as_deref()?;
    if f.line == 0 {
        return None;
    }
    let base = file.rsplit('/').next().unwrap_or(file);
    Some(format!("{base}:{}", f.line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_test_binary_has_lines() {
        // This test binary is built with debug info: this function's address has a line.
        let exe = std::env::current_exe().unwrap();
        let Some(mut d) = Dwarf::load(&exe) else {
            panic!("the test binary has DWARF");
        };
        let (_, syms) = crate::symbols::load_elf(&exe).unwrap();
        // Find a symbol of this crate and look it up.
        let mut found = false;
        for (start, _, name) in syms.table.iter().take(5000) {
            if name.contains("ruperf") {
                let f = d.frames(start);
                if let Some(last) = f.last() {
                    assert!(last.file.as_deref().is_some_and(|p| p.ends_with(".rs")));
                    found = true;
                    break;
                }
            }
        }
        let n = syms.table.iter().filter(|s| s.2.contains("ruperf")).count();
        assert!(found, "no ruperf symbol had a source line (of {n})");
    }

    #[test]
    fn srcline_is_basename_and_line() {
        let f = SrcFrame {
            function: None,
            file: Some("/src/a/inl.c".into()),
            line: 4,
        };
        assert_eq!(srcline(&f).as_deref(), Some("inl.c:4"));
        assert_eq!(srcline(&SrcFrame { line: 0, ..f }), None);
    }
}
