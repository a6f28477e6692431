//! The root under which every /sys, /proc and /dev path is read.
//!
//! It defaults to `/` and moves with `--sysroot DIR` (as `lscpu --sysroot` does), so that
//! discovery and energy code can be exercised on fake trees.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
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

/// Opens a file that a recording or a user-named path points at, for reading, only if it is a
/// regular file. The open never blocks (O_NONBLOCK, so a FIFO or a device named in an MMAP
/// record cannot hang a report) and a device, FIFO, socket or directory is refused with
/// `InvalidInput` after an fstat of the opened descriptor (no check-then-open race).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// Creates (or truncates, or with `append` extends) an output file for writing. A new file
/// gets `mode` less the umask; an existing file keeps its owner and mode, as with perf.
///
/// A symbolic link at `path` is followed only when root or this user owns it (`/dev/stdout`,
/// a link of one's own): a link another user planted where the output goes, the classic
/// attack on a root `-o /tmp/...`, is refused with `InvalidInput`. Without a link the open
/// uses O_NOFOLLOW, so a link that appears after the check is refused too.
pub fn create_output(path: &Path, mode: u32, append: bool) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    let link = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Some(m.uid()),
        _ => None,
    };
    let mut flags = libc::O_NOCTTY | libc::O_CLOEXEC;
    match link {
        Some(owner) if owner != 0 && owner != nix::unistd::geteuid().as_raw() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "it is a symbolic link owned by another user (uid {owner}), which ruperf \
                     does not write through"
                ),
            ));
        }
        Some(_) => {}
        None => flags |= libc::O_NOFOLLOW,
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .mode(mode)
        .custom_flags(flags)
        .open(path)
        .map_err(explain_link_refusal)
}

/// Turns the ELOOP of an O_NOFOLLOW open of a symbolic link into an error that says so.
pub fn explain_link_refusal(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "it became a symbolic link while ruperf opened it, which ruperf does not write through",
        )
    } else {
        e
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

    #[test]
    fn open_regular_refuses_fifos_devices_and_directories() {
        let dir = std::env::temp_dir().join(format!("ruperf-open-regular-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(
            nix::unistd::mkfifo(c.as_c_str(), nix::sys::stat::Mode::S_IRWXU),
            Ok(())
        );
        let plain = dir.join("plain");
        std::fs::write(&plain, b"x").unwrap();
        assert!(open_regular(&plain).is_ok());
        for bad in [fifo.as_path(), Path::new("/dev/zero"), dir.as_path()] {
            let err = open_regular(bad).expect_err("not a regular file");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{}", bad.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn create_output_is_private_and_refuses_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ruperf-create-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let out = dir.join("perf.data");
        drop(create_output(&out, 0o600, false).unwrap());
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        // A link of one's own (or root's, like /dev/stdout) is followed, as perf does.
        let own = dir.join("own-link");
        std::os::unix::fs::symlink(&out, &own).unwrap();
        assert!(create_output(&own, 0o600, true).is_ok());
        assert!(create_output(Path::new("/dev/stdout"), 0o600, true).is_ok());
        assert!(create_output(Path::new("/dev/null"), 0o600, false).is_ok());
        // A link another user planted is refused, and its target is untouched.
        let link = dir.join("planted");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        let err = create_output(&link, 0o600, false).expect_err("a planted link");
        assert!(err.to_string().contains("owned by another user"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
