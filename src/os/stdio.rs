//! Standard streams that the caller closed.
//!
//! ruperf enters through C `main`, so Rust's runtime start-up, which reopens closed standard
//! descriptors on /dev/null, never runs. Without it, `ruperf record >&-` would hand fd 1 to
//! the perf.data file and every line meant for stdout would land inside the recording.

/// Opens /dev/null on each of fds 0, 1 and 2 that is closed, so later opens never reuse them.
/// Writes to a stream closed this way are discarded; nothing else changes.
pub fn reopen_closed_std_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only queries the descriptor's flags; an unused fd gives EBADF.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        if !closed {
            continue;
        }
        // SAFETY: the path is a NUL-terminated literal; open returns the lowest free fd,
        // which is `fd` because the lower ones are open.
        let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if got >= 0 && got != fd {
            // SAFETY: `got` is a descriptor this function just opened and owns.
            unsafe { libc::close(got) };
            return;
        }
    }
}
