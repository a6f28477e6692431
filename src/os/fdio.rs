//! Descriptors the caller of ruperf passed in by number (`--log-fd N`, `--control fd:N`), and
//! the C library's numeric locale (digit grouping as perf prints it).

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// A private duplicate (close-on-exec) of inherited descriptor `fd`, or EBADF when `fd` is
/// not open. The original stays open for whoever else holds it.
pub fn dup_inherited(fd: i32) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) reads no memory; an invalid fd fails with EBADF.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor this process owns and nothing else refers to.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The thousands separator and grouping of the user's LC_NUMERIC locale (as perf, which calls
/// `setlocale(LC_ALL, "")` and prints with `%'`): None in the C/POSIX locale, which groups
/// nothing. The grouping is the C library's list of group sizes, last one repeating.
pub fn numeric_grouping() -> Option<(String, Vec<u8>)> {
    // SAFETY: setlocale with a valid category and a NUL-terminated empty string; ruperf sets
    // the locale from this one thread before any other thread formats numbers.
    let set = unsafe { libc::setlocale(libc::LC_NUMERIC, c"".as_ptr()) };
    if set.is_null() {
        return None;
    }
    // SAFETY: localeconv returns a pointer to static storage valid until the next
    // setlocale/localeconv call; its strings are copied out at once.
    let (sep, grouping) = unsafe {
        let lc = libc::localeconv();
        if lc.is_null() {
            return None;
        }
        let sep = CStr::from_ptr((*lc).thousands_sep)
            .to_string_lossy()
            .into_owned();
        let grouping = CStr::from_ptr((*lc).grouping).to_bytes().to_vec();
        (sep, grouping)
    };
    // Back to "C" so that nothing else (float parsing in libc) changes behaviour.
    // SAFETY: as above, with a static NUL-terminated string.
    unsafe { libc::setlocale(libc::LC_NUMERIC, c"C".as_ptr()) };
    (!sep.is_empty() && !grouping.is_empty() && grouping[0] > 0).then_some((sep, grouping))
}
