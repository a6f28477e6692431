//! Separate debug files, searched where perf searches them: perf's build-id cache
//! (`~/.debug/.build-id/xx/rest/debug`), `/usr/lib/debug/.build-id/xx/rest.debug`, and the
//! `.gnu_debuglink` name beside the binary, in its `.debug/` directory and under
//! `/usr/lib/debug/` + the binary's directory (with the link's CRC-32 checked).

use std::io::Read;
use std::path::{Path, PathBuf};

/// Where to look: the build-id cache directory and the system debug directory (both
/// overridable for tests and `--symfs`).
#[derive(Debug, Clone)]
pub struct DebugDirs {
    /// perf's build-id cache (`~/.debug`).
    pub cache: Option<PathBuf>,
    /// The system debug directory (`/usr/lib/debug`).
    pub system: PathBuf,
}

/// CRC-32 (IEEE, as `.gnu_debuglink` uses) of a whole file; `None` when unreadable.
fn file_crc(path: &Path) -> Option<u32> {
    let mut f = crate::sysroot::open_regular(path).ok()?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(h.finalize())
}

impl DebugDirs {
    /// Candidate files by build id, in perf's order.
    fn by_build_id(&self, id: &str) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if id.len() < 3 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
            return v;
        }
        let (head, rest) = id.split_at(2);
        if let Some(c) = &self.cache {
            v.push(c.join(".build-id").join(head).join(rest).join("debug"));
        }
        v.push(
            self.system
                .join(".build-id")
                .join(head)
                .join(format!("{rest}.debug")),
        );
        v
    }

    /// Candidate files for a debug link of the binary at `binary`.
    fn by_debuglink(&self, binary: &Path, name: &str) -> Vec<PathBuf> {
        let mut v = Vec::new();
        // A link is a file name, never a path.
        if name.is_empty() || name.contains('/') {
            return v;
        }
        let dir = binary.parent().unwrap_or(Path::new("/"));
        v.push(dir.join(name));
        v.push(dir.join(".debug").join(name));
        let rel = dir.strip_prefix("/").unwrap_or(dir);
        v.push(self.system.join(rel).join(name));
        v
    }

    /// The separate debug file of `binary`, if one is installed: by build id first, then by
    /// the debug link (whose CRC must match). Never the binary itself.
    pub fn find(
        &self,
        binary: &Path,
        build_id: Option<&str>,
        debuglink: Option<(&str, u32)>,
    ) -> Option<PathBuf> {
        let exists = |p: &Path| p != binary && p.is_file();
        if let Some(id) = build_id {
            if let Some(p) = self.by_build_id(id).into_iter().find(|p| exists(p)) {
                return Some(p);
            }
        }
        let (name, crc) = debuglink?;
        self.by_debuglink(binary, name)
            .into_iter()
            .find(|p| exists(p) && file_crc(p) == Some(crc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debuglink_needs_the_right_crc() {
        let dir = std::env::temp_dir().join(format!("ruperf-dbg-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".debug")).unwrap();
        let bin = dir.join("prog");
        std::fs::write(&bin, b"binary").unwrap();
        std::fs::write(dir.join(".debug/prog.debug"), b"debug info").unwrap();
        let crc = crc32fast::hash(b"debug info");
        let d = DebugDirs {
            cache: None,
            system: dir.join("sys"),
        };
        assert_eq!(
            d.find(&bin, None, Some(("prog.debug", crc))),
            Some(dir.join(".debug/prog.debug"))
        );
        assert_eq!(d.find(&bin, None, Some(("prog.debug", crc ^ 1))), None);
        assert_eq!(d.find(&bin, None, Some(("../prog", crc))), None);
        // By build id under the system directory.
        let p = dir.join("sys/.build-id/ab/cdef.debug");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"x").unwrap();
        assert_eq!(d.find(&bin, Some("abcdef"), None), Some(p));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
