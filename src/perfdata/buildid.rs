//! Build ids: the GNU build-id note of ELF files and of the running kernel.
//!
//! Only the ELF header, the program (or section) headers and the note segments are read, a
//! few kilobytes per DSO, so looking up the DSOs of a recording costs little.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::sysroot::Sysroot;

const NT_GNU_BUILD_ID: u32 = 3;
const PT_NOTE: u32 = 4;
const SHT_NOTE: u32 = 7;
/// Notes larger than this are not build-id notes worth reading.
const MAX_NOTE: u64 = 1 << 16;

/// Finds the GNU build id in a block of ELF notes (4-byte aligned entries).
pub fn from_notes(notes: &[u8], big_endian: bool) -> Option<Vec<u8>> {
    let rd = |b: &[u8]| -> Option<u32> {
        let a: [u8; 4] = b.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    };
    let mut pos = 0usize;
    while pos + 12 <= notes.len() {
        let namesz = rd(&notes[pos..pos + 4])? as usize;
        let descsz = rd(&notes[pos + 4..pos + 8])? as usize;
        let kind = rd(&notes[pos + 8..pos + 12])?;
        let name_start = pos + 12;
        let desc_start = name_start.checked_add(namesz.div_ceil(4) * 4)?;
        let desc_end = desc_start.checked_add(descsz)?;
        if desc_end > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && &notes[name_start..name_start + namesz] == b"GNU\0" {
            return Some(notes[desc_start..desc_end].to_vec());
        }
        pos = desc_start + descsz.div_ceil(4) * 4;
    }
    None
}

struct Elf {
    file: File,
    is64: bool,
    be: bool,
}

impl Elf {
    fn bytes(&self, off: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut b = vec![0u8; len];
        self.file.read_exact_at(&mut b, off)?;
        Ok(b)
    }

    fn int(&self, b: &[u8], at: usize, width: usize) -> u64 {
        let s = &b[at..at + width];
        let mut v = 0u64;
        if self.be {
            for &x in s {
                v = (v << 8) | x as u64;
            }
        } else {
            for &x in s.iter().rev() {
                v = (v << 8) | x as u64;
            }
        }
        v
    }

    fn word(&self, b: &[u8], at32: usize, at64: usize) -> u64 {
        if self.is64 {
            self.int(b, at64, 8)
        } else {
            self.int(b, at32, 4)
        }
    }

    /// Note blocks (offset, size) from the program headers, else from the section headers.
    fn note_blocks(&self, ehdr: &[u8]) -> io::Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        let phoff = self.word(ehdr, 28, 32);
        let phentsize = self.int(ehdr, if self.is64 { 54 } else { 42 }, 2) as usize;
        let phnum = self.int(ehdr, if self.is64 { 56 } else { 44 }, 2) as usize;
        if phoff != 0 && phentsize >= 32 && phnum > 0 && phnum < 4096 {
            let ph = self.bytes(phoff, phentsize * phnum)?;
            for i in 0..phnum {
                let e = &ph[i * phentsize..(i + 1) * phentsize];
                if self.int(e, 0, 4) as u32 == PT_NOTE {
                    let (off, size) = if self.is64 {
                        (self.int(e, 8, 8), self.int(e, 32, 8))
                    } else {
                        (self.int(e, 4, 4), self.int(e, 16, 4))
                    };
                    out.push((off, size));
                }
            }
        }
        if out.is_empty() {
            let shoff = self.word(ehdr, 32, 40);
            let shentsize = self.int(ehdr, if self.is64 { 58 } else { 46 }, 2) as usize;
            let shnum = self.int(ehdr, if self.is64 { 60 } else { 48 }, 2) as usize;
            if shoff != 0 && shentsize >= 40 && shnum > 0 && shnum < 65536 {
                let sh = self.bytes(shoff, shentsize * shnum)?;
                for i in 0..shnum {
                    let e = &sh[i * shentsize..(i + 1) * shentsize];
                    if self.int(e, 4, 4) as u32 == SHT_NOTE {
                        let (off, size) = if self.is64 {
                            (self.int(e, 24, 8), self.int(e, 32, 8))
                        } else {
                            (self.int(e, 16, 4), self.int(e, 20, 4))
                        };
                        out.push((off, size));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Reads the GNU build id of an ELF file; Ok(None) when it is not ELF or has no build id.
pub fn elf_build_id(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
    let mut ident = [0u8; 64];
    let n = file.read_at(&mut ident, 0)?;
    if n < 52 || &ident[0..4] != b"\x7fELF" {
        return Ok(None);
    }
    let elf = Elf {
        file,
        is64: ident[4] == 2,
        be: ident[5] == 2,
    };
    if elf.is64 && n < 64 {
        return Ok(None);
    }
    for (off, size) in elf.note_blocks(&ident[..n])? {
        if size == 0 || size > MAX_NOTE {
            continue;
        }
        let notes = elf.bytes(off, size as usize)?;
        if let Some(id) = from_notes(&notes, elf.be) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The running kernel's build id, from /sys/kernel/notes.
pub fn kernel_build_id(root: &Sysroot) -> Option<Vec<u8>> {
    let notes = std::fs::read(root.path("/sys/kernel/notes")).ok()?;
    from_notes(&notes, cfg!(target_endian = "big"))
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
        assert_eq!(from_notes(&notes, false), Some(vec![0xab; 20]));
        assert_eq!(from_notes(&notes[..20], false), None);
        assert_eq!(from_notes(&[], false), None);
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
