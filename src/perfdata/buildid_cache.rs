//! perf's build-id cache (`~/.debug`, or `$PERF_BUILDID_DIR`), read by `report` and filled by
//! `record` as `perf record` fills it:
//!
//! ```text
//! ~/.debug/<path>/<build-id>/elf            a copy of the DSO ("vdso" for [vdso], "kallsyms")
//! ~/.debug/.build-id/<xx>/<rest of id>      symlink to ../../<path>/<build-id>
//! ```
//!
//! so a binary deleted or rebuilt after the recording still resolves, and perf finds what
//! ruperf cached (and the reverse).

use std::io;
use std::path::{Path, PathBuf};

/// Largest file copied into the cache (perf copies whatever it sampled; this bounds a run).
const MAX_COPY: u64 = 2 << 30;

/// The cache directory: `$PERF_BUILDID_DIR`, else `$HOME/.debug`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PERF_BUILDID_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".debug"))
}

fn valid_id(id: &str) -> bool {
    id.len() > 2 && id.len() <= 128 && id.bytes().all(|c| c.is_ascii_hexdigit())
}

/// The cached file for `build_id` (`leaf` is "elf", "vdso", "debug" or "kallsyms"), whether
/// or not it exists.
pub fn lookup(dir: &Path, build_id: &str, leaf: &str) -> Option<PathBuf> {
    if !valid_id(build_id) {
        return None;
    }
    Some(
        dir.join(".build-id")
            .join(&build_id[..2])
            .join(&build_id[2..])
            .join(leaf),
    )
}

/// The cache's directory for one DSO path and id (`<dir>/<path>/<id>`).
fn entry_dir(dir: &Path, dso: &str, build_id: &str) -> PathBuf {
    dir.join(dso.trim_start_matches('/')).join(build_id)
}

/// Adds `bytes` as the cached `leaf` of (`dso`, `build_id`), with its `.build-id` link.
/// Does nothing when the entry is already there.
pub fn add_bytes(
    dir: &Path,
    dso: &str,
    build_id: &str,
    leaf: &str,
    bytes: &[u8],
) -> io::Result<()> {
    add_with(dir, dso, build_id, leaf, |dst| std::fs::write(dst, bytes))
}

/// Adds a copy of the file at `src` as the cached `leaf` of (`dso`, `build_id`).
pub fn add_file(dir: &Path, dso: &str, build_id: &str, leaf: &str, src: &Path) -> io::Result<()> {
    add_with(dir, dso, build_id, leaf, |dst| {
        use std::io::Read;
        let f = crate::sysroot::open_regular(src)?;
        if f.metadata()?.len() > MAX_COPY {
            return Err(io::Error::other("too large to cache"));
        }
        let mut out = std::fs::File::create(dst)?;
        io::copy(&mut f.take(MAX_COPY), &mut out)?;
        Ok(())
    })
}

fn add_with(
    dir: &Path,
    dso: &str,
    build_id: &str,
    leaf: &str,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    if !valid_id(build_id) || dso.is_empty() || dso.split('/').any(|c| c == "..") {
        return Err(io::Error::other("not a cacheable DSO"));
    }
    let entry = entry_dir(dir, dso, build_id);
    let file = entry.join(leaf);
    if !file.exists() {
        std::fs::create_dir_all(&entry)?;
        // Write beside, then rename: a concurrent reader never sees half a file.
        let tmp = entry.join(format!(".{leaf}.{}", std::process::id()));
        write(&tmp).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        std::fs::rename(&tmp, &file)?;
    }
    let link_dir = dir.join(".build-id").join(&build_id[..2]);
    let link = link_dir.join(&build_id[2..]);
    if std::fs::symlink_metadata(&link).is_err() {
        std::fs::create_dir_all(&link_dir)?;
        let target = Path::new("../..")
            .join(dso.trim_start_matches('/'))
            .join(build_id);
        std::os::unix::fs::symlink(target, &link)?;
    }
    Ok(())
}

/// The vdso image of this process (the same for every process of this kernel and ABI), read
/// from `/proc/self/mem` at the `[vdso]` range of `/proc/self/maps`.
pub fn own_vdso() -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let range = line.split(' ').next()?;
    let (a, b) = range.split_once('-')?;
    let (start, end) = (
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    );
    let len = end.checked_sub(start).filter(|&l| l > 0 && l <= 1 << 20)?;
    let mem = std::fs::File::open("/proc/self/mem").ok()?;
    let mut buf = vec![0u8; len as usize];
    mem.read_exact_at(&mut buf, start).ok()?;
    Some(buf)
}

/// The GNU build id (hex) of an ELF image in memory.
pub fn image_build_id(bytes: &[u8]) -> Option<String> {
    use object::Object;
    let obj = object::File::parse(bytes).ok()?;
    let id = obj.build_id().ok()??;
    Some(id.iter().map(|b| format!("{b:02x}")).collect())
}

/// What `record` does with build ids (perf's `-B/--no-buildid`, `-N/--no-buildid-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Write the BUILD_ID section and add the sampled DSOs to the cache (perf's default).
    #[default]
    Cache,
    /// Write the BUILD_ID section only (`-N`).
    NoCache,
    /// Neither (`-B`).
    Omit,
}

/// The vdso's build-id entry, its image saved for the cache.
pub struct Vdso {
    /// Build id bytes.
    pub id: Vec<u8>,
    /// The image.
    pub image: Vec<u8>,
}

/// This kernel's vdso, as `record` saves it (perf saves the image it finds in its own
/// address space too: every process of one kernel and ABI maps the same vdso).
pub fn vdso() -> Option<Vdso> {
    use object::Object;
    let image = own_vdso()?;
    let id = object::File::parse(&image[..])
        .ok()?
        .build_id()
        .ok()??
        .to_vec();
    Some(Vdso { id, image })
}

/// Adds what a recording sampled to the cache, as `perf record` does at its end: a copy of
/// each DSO, the vdso image and the kernel's kallsyms text. Failures are returned as one-line
/// warnings; the recording itself is already written.
pub fn add_recorded(
    entries: &[(String, Vec<u8>)],
    vdso: Option<&Vdso>,
    kallsyms: Option<&Path>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(dir) = cache_dir() else {
        return warnings;
    };
    let hex = |id: &[u8]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
    for (path, id) in entries {
        let id = hex(id);
        let r = match path.as_str() {
            "[kernel.kallsyms]" => match kallsyms {
                Some(k) => add_file(&dir, path, &id, "kallsyms", k),
                None => Ok(()),
            },
            "[vdso]" => match vdso {
                Some(v) => add_bytes(&dir, path, &id, "vdso", &v.image),
                None => Ok(()),
            },
            p if p.starts_with('/') => add_file(&dir, p, &id, "elf", Path::new(p)),
            _ => Ok(()),
        };
        if let Err(e) = r {
            warnings.push(format!(
                "cannot add {path} to the build-id cache {} ({e}); use -N to skip it",
                dir.display()
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_entries_perf_can_follow() {
        let dir = std::env::temp_dir().join(format!("ruperf-bidc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let id = "0123456789abcdef0123456789abcdef01234567";
        add_bytes(&dir, "/usr/bin/prog", id, "elf", b"ELF").unwrap();
        // Twice is fine.
        add_bytes(&dir, "/usr/bin/prog", id, "elf", b"ELF").unwrap();
        let p = lookup(&dir, id, "elf").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"ELF");
        assert!(dir.join("usr/bin/prog").join(id).join("elf").is_file());
        assert!(add_bytes(&dir, "/a/../b", id, "elf", b"x").is_err());
        assert!(lookup(&dir, "zz", "elf").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn own_vdso_is_an_elf_with_a_build_id() {
        if let Some(v) = own_vdso() {
            assert!(v.starts_with(b"\x7fELF"));
            assert!(image_build_id(&v).is_some());
        }
    }
}
