//! Build ids: the GNU build-id note of ELF files and of the running kernel.
//!
//! Only the ELF header, the program (or section) headers and the note segments are read, a
//! few kilobytes per DSO, so looking up the DSOs of a recording costs little.

use std::io;
use std::path::Path;

use object::elf::{FileHeader32, FileHeader64, NT_GNU_BUILD_ID};
use object::read::elf::{FileHeader, NoteIterator, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind, ReadCache, ReadRef};

use crate::sysroot::Sysroot;

/// Notes larger than this are not build-id notes worth reading: a note segment or section
/// claiming more is skipped before anything is read, so a crafted size cannot make ruperf
/// allocate it.
const MAX_NOTE: u64 = 1 << 16;

/// The GNU build id among the notes of one block (a PT_NOTE segment, an SHT_NOTE section, or
/// /sys/kernel/notes). This is ruperf's one note parser: `object`'s note iterator, which
/// checks every size against the block.
fn build_id_in<Elf: FileHeader>(
    mut notes: NoteIterator<'_, Elf>,
    endian: Elf::Endian,
) -> Option<Vec<u8>> {
    while let Ok(Some(note)) = notes.next() {
        if note.n_type(endian) == NT_GNU_BUILD_ID && note.name() == b"GNU" {
            return Some(note.desc().to_vec());
        }
    }
    None
}

/// Finds the GNU build id in a block of native-endian, 4-byte aligned ELF notes (the layout
/// of /sys/kernel/notes).
pub fn from_notes(notes: &[u8]) -> Option<Vec<u8>> {
    let endian = Endianness::default();
    let it = NoteIterator::<FileHeader64<Endianness>>::new(endian, 4, notes).ok()?;
    build_id_in(it, endian)
}

/// The build id from the note segments, else from the note sections, of an ELF image.
fn elf_notes_build_id<'d, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'d>>(
    data: R,
) -> Option<Vec<u8>> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    for ph in header.program_headers(endian, data).ok()? {
        if ph.p_filesz(endian).into() > MAX_NOTE {
            continue;
        }
        if let Ok(Some(notes)) = ph.notes(endian, data) {
            if let Some(id) = build_id_in(notes, endian) {
                return Some(id);
            }
        }
    }
    // e_shnum 0 means the count lives in section 0 (more than 65,535 sections): not read,
    // so the section table read stays bounded by 65,535 entries.
    if header.e_shnum(endian) == 0 {
        return None;
    }
    for sh in header.section_headers(endian, data).ok()? {
        if sh.sh_size(endian).into() > MAX_NOTE {
            continue;
        }
        if let Ok(Some(notes)) = sh.notes(endian, data) {
            if let Some(id) = build_id_in(notes, endian) {
                return Some(id);
            }
        }
    }
    None
}

/// Reads the GNU build id of an ELF file; Ok(None) when it is not ELF or has no build id.
/// Only the headers and the (bounded) note blocks are read. The file is opened as a regular
/// file only (never a FIFO or a device, never blocking).
pub fn elf_build_id(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = crate::sysroot::open_regular(path)?;
    let cache = ReadCache::new(file);
    Ok(match FileKind::parse(&cache) {
        Ok(FileKind::Elf32) => elf_notes_build_id::<FileHeader32<Endianness>, _>(&cache),
        Ok(FileKind::Elf64) => elf_notes_build_id::<FileHeader64<Endianness>, _>(&cache),
        _ => None,
    })
}

/// The running kernel's build id, from /sys/kernel/notes.
pub fn kernel_build_id(root: &Sysroot) -> Option<Vec<u8>> {
    let notes = std::fs::read(root.path("/sys/kernel/notes")).ok()?;
    from_notes(&notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&(name.len() as u32).to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(name);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n.extend_from_slice(desc);
        n.resize(n.len().div_ceil(4) * 4, 0);
        n
    }

    #[test]
    fn finds_the_gnu_note_after_others() {
        let mut notes = note(b"Xen\0", 6, &[1, 2, 3]);
        notes.extend(note(b"GNU\0", 1, &[0; 16])); // ABI tag, not a build id
        notes.extend(note(b"GNU\0", 3, &[0xab; 20]));
        assert_eq!(from_notes(&notes), Some(vec![0xab; 20]));
        assert_eq!(from_notes(&notes[..20]), None);
        assert_eq!(from_notes(&[]), None);
    }

    /// A little-endian ELF64 header with `phnum` program headers of `phentsize` bytes at 64.
    fn elf64(phentsize: u16, phnum: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2; // 64-bit
        h[5] = 1; // little-endian
        h[6] = 1; // version
        h[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        h[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        h[54..56].copy_from_slice(&phentsize.to_le_bytes());
        h[56..58].copy_from_slice(&phnum.to_le_bytes());
        h
    }

    fn pt_note(offset: u64, size: u64) -> Vec<u8> {
        let mut p = vec![0u8; 56];
        p[..4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        p[8..16].copy_from_slice(&offset.to_le_bytes());
        p[32..40].copy_from_slice(&size.to_le_bytes()); // p_filesz
        p[40..48].copy_from_slice(&size.to_le_bytes());
        p[48..56].copy_from_slice(&4u64.to_le_bytes()); // p_align
        p
    }

    fn build_id_of(bytes: &[u8]) -> Option<Vec<u8>> {
        let path = std::env::temp_dir().join(format!(
            "ruperf-elf-{}-{:x}",
            std::process::id(),
            bytes
                .iter()
                .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(b as u64))
        ));
        std::fs::write(&path, bytes).unwrap();
        let id = elf_build_id(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        id
    }

    #[test]
    fn crafted_program_headers_never_panic_or_allocate_their_claims() {
        let good_note = note(b"GNU\0", 3, &[0x5a; 20]);
        let mut ok = elf64(56, 1);
        ok.extend(pt_note(120, good_note.len() as u64));
        ok.extend(&good_note);
        assert_eq!(build_id_of(&ok), Some(vec![0x5a; 20]));
        // Program headers shorter than the format's (the old parser indexed past them).
        for phentsize in [32u16, 39, 40] {
            let mut short = elf64(phentsize, 3);
            short.extend(vec![4u8; 60]);
            assert_eq!(build_id_of(&short), None, "phentsize {phentsize}");
        }
        // A note segment claiming 1 TiB, and one past the end of the file.
        let mut huge = elf64(56, 2);
        huge.extend(pt_note(176, 1 << 40));
        huge.extend(pt_note(1 << 20, 64));
        assert_eq!(build_id_of(&huge), None);
        // A note whose sizes overrun its block.
        let mut bad = note(b"GNU\0", 3, &[1; 20]);
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(from_notes(&bad), None);
    }

    #[test]
    fn reads_a_real_binary_like_readelf() {
        let exe = std::env::current_exe().unwrap();
        let ours = elf_build_id(&exe).unwrap();
        // Cross-check against /bin/sh when readelf is present.
        let sh = Path::new("/bin/sh");
        if let Ok(out) = std::process::Command::new("readelf")
            .arg("-n")
            .arg(sh)
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(hex) = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Build ID: "))
            {
                let id = elf_build_id(sh).unwrap().expect("build id of /bin/sh");
                let ours_hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(ours_hex, hex.trim());
            }
        }
        // A non-ELF file has none.
        let path = std::env::temp_dir().join(format!("ruperf-nonelf-{}", std::process::id()));
        std::fs::write(&path, b"#!/bin/sh\n").unwrap();
        assert_eq!(elf_build_id(&path).unwrap(), None);
        std::fs::remove_file(&path).unwrap();
        let _ = ours;
    }
}
