//! Is ruperf running with more privilege than the user who started it?
//!
//! A binary given `cap_perfmon+ep` (or made setuid) runs with privileges its caller does not
//! have. Such a process must not let the caller choose code to load (`--nvml-lib`,
//! `RUPERF_NVML_LIB`) or trees to trust (`--sysroot`) unless only root could have put them
//! there. The kernel says so through the auxiliary vector: `AT_SECURE` is set when an exec
//! gained privilege (setuid, setgid, file capabilities), the same flag glibc uses to ignore
//! `LD_PRELOAD` and `LD_LIBRARY_PATH`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// True when this process gained privilege at exec (file capabilities, setuid, setgid) or its
/// real and effective ids differ.
pub fn elevated() -> bool {
    super::sys::at_secure()
        || nix::unistd::getuid() != nix::unistd::geteuid()
        || nix::unistd::getgid() != nix::unistd::getegid()
}

/// True when ruperf runs setuid or setgid (effective ids differ from the real ones). Such a
/// ruperf would start the profiled command with those ids: a root shell for anyone.
pub fn setuid_or_setgid() -> bool {
    nix::unistd::getuid() != nix::unistd::geteuid()
        || nix::unistd::getgid() != nix::unistd::getegid()
}

/// The environment variable that names an NVML library to load.
pub const NVML_ENV: &str = "RUPERF_NVML_LIB";

/// Removes `RUPERF_NVML_LIB` from the environment of an elevated process, before the command
/// line (whose `--nvml-lib` falls back to it) is parsed. Returns the ignored value so that the
/// caller can say it was ignored.
pub fn drop_untrusted_environment() -> Option<std::ffi::OsString> {
    if !elevated() {
        return None;
    }
    let value = std::env::var_os(NVML_ENV)?;
    // Called at the start of main, before any other thread exists.
    std::env::remove_var(NVML_ENV);
    Some(value)
}

/// Why a path may not be trusted by an elevated process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    /// The file or directory at fault (the path as resolved).
    pub path: PathBuf,
    /// The rule it breaks.
    pub rule: &'static str,
}

/// Resolves `path` (symlinks included) and checks that it and every directory above it are
/// owned by root and writable by neither group nor others, so that no unprivileged user can
/// replace what it names. Returns the resolved path: use it, not the one given, so that a
/// symlink swapped after the check changes nothing.
pub fn trusted_path(path: &Path) -> Result<PathBuf, Untrusted> {
    let resolved = fs::canonicalize(path).map_err(|_| Untrusted {
        path: path.to_path_buf(),
        rule: "it does not exist or cannot be resolved",
    })?;
    for p in resolved.ancestors() {
        let meta = fs::symlink_metadata(p).map_err(|_| Untrusted {
            path: p.to_path_buf(),
            rule: "it cannot be examined",
        })?;
        if meta.uid() != 0 {
            return Err(Untrusted {
                path: p.to_path_buf(),
                rule: "it is not owned by root",
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(Untrusted {
                path: p.to_path_buf(),
                rule: "it is writable by group or others",
            });
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn system_paths_are_trusted_and_resolved() {
        let p = trusted_path(Path::new("/usr/bin/../bin")).expect("root-owned");
        assert_eq!(p, fs::canonicalize("/usr/bin").unwrap());
    }

    #[test]
    fn writable_or_foreign_paths_are_refused() {
        let err = trusted_path(Path::new("/tmp")).expect_err("/tmp is world-writable");
        assert_eq!(err.path, PathBuf::from("/tmp"));
        assert_eq!(err.rule, "it is writable by group or others");
        let dir = std::env::temp_dir().join(format!("ruperf-priv-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("lib.so");
        fs::write(&file, b"x").unwrap();
        // The file's own directory passes or fails on its own merits, but /tmp above it fails.
        let err = trusted_path(&file).expect_err("under /tmp");
        assert!(err.path == Path::new("/tmp") || err.rule == "it is not owned by root");
        let missing = trusted_path(&dir.join("absent")).expect_err("missing");
        assert_eq!(missing.rule, "it does not exist or cannot be resolved");
        fs::remove_dir_all(&dir).unwrap();
    }
}
