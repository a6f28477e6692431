//! The private scratch directory the self-tests write their recordings into.
//!
//! `ruperf test` often runs as root, in a world-writable temporary directory. A predictable
//! name (`/tmp/ruperf-test-PID`) could be created by another user first, with symlinks inside
//! pointing at files root would then overwrite. The directory is therefore made fresh by
//! mkdtemp (a random name, created exclusively, mode 0700) and removed without following any
//! link inside it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A fresh directory only this user can enter; removed with everything in it when dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates `ruperf-test-XXXXXX` under `parent` (normally the system temporary directory).
    pub fn create_in(parent: &Path) -> Result<Scratch> {
        let template = parent.join("ruperf-test-XXXXXX");
        let dir = nix::unistd::mkdtemp(&template).map_err(|e| {
            Error::io(
                format!("creating a private directory in {}", parent.display()),
                e.into(),
            )
        })?;
        Ok(Scratch { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // std's remove_dir_all removes symlinks without following them.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn fresh_private_and_removed_without_following_links() {
        let a = Scratch::create_in(&std::env::temp_dir()).unwrap();
        let b = Scratch::create_in(&std::env::temp_dir()).unwrap();
        assert_ne!(a.path(), b.path(), "a new name each time");
        let meta = std::fs::symlink_metadata(a.path()).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
        // A link inside pointing at a directory outside: dropping must not empty the target.
        let outside = b.path().join("keep");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("file"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, a.path().join("link")).unwrap();
        let gone = a.path().to_path_buf();
        drop(a);
        assert!(!gone.exists());
        assert!(outside.join("file").exists(), "the link's target survives");
    }
}
