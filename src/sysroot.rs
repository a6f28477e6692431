//! The root under which every /sys, /proc and /dev path is read.
//!
//! It defaults to `/` and moves with `--sysroot DIR` (as `lscpu --sysroot` does), so that
//! discovery and energy code can be exercised on fake trees.

use std::path::{Path, PathBuf};

/// A filesystem root for kernel interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysroot {
    root: PathBuf,
}

impl Default for Sysroot {
    fn default() -> Self {
        Sysroot {
            root: PathBuf::from("/"),
        }
    }
}

impl Sysroot {
    /// A root at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Sysroot { root: dir.into() }
    }

    /// True when this is the real root `/`.
    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The root directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Joins an absolute kernel path such as `/sys/bus/event_source` onto the root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        let rel = abs.strip_prefix("/").unwrap_or(abs);
        self.root.join(rel)
    }

    /// Reads a small text file under the root, trimmed of trailing whitespace.
    pub fn read_trimmed(&self, abs: impl AsRef<Path>) -> std::io::Result<String> {
        let s = std::fs::read_to_string(self.path(abs))?;
        Ok(s.trim_end().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_under_root() {
        let r = Sysroot::new("/tmp/fake");
        assert_eq!(
            r.path("/sys/class/powercap"),
            PathBuf::from("/tmp/fake/sys/class/powercap")
        );
        assert!(!r.is_host());
        assert_eq!(
            Sysroot::default().path("/proc/cpuinfo"),
            PathBuf::from("/proc/cpuinfo")
        );
        assert!(Sysroot::default().is_host());
    }
}
