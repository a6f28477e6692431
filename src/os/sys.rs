//! The only place where ruperf calls perf_event_open(2), its ioctls and mmap(2), and the few
//! other C library calls it needs: posix_spawn, getauxval, descriptors inherited by number
//! (`--log-fd N`, `--control fd:N`) and the numeric locale (digit grouping as perf prints it).
//!
//! Every file descriptor becomes an [`OwnedFd`] the moment the kernel returns it, so that
//! nothing above this module can leak or double-close one. Errors come back as
//! [`std::io::Error`] with the kernel's errno; callers turn them into messages that name the
//! event and the fix.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

pub use perf_event_open_sys::bindings;
pub use perf_event_open_sys::bindings::perf_event_attr as Attr;

/// Size of perf_event_attr that perf 6.1 still accepts in a perf.data file (PERF_ATTR_SIZE_VER7).
pub const ATTR_SIZE_VER7: u32 = 128;

/// Turns a negative syscall return into the thread's errno.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A zeroed attribute with `size` set to the size this crate was built with.
pub fn new_attr() -> Attr {
    Attr {
        size: std::mem::size_of::<Attr>() as u32,
        ..Attr::default()
    }
}

/// Opens one perf event. `pid`/`cpu` follow perf_event_open(2): pid -1 with a cpu counts
/// system-wide on that cpu; cpu -1 with a pid follows the task on every cpu.
/// The descriptor is opened close-on-exec.
pub fn perf_event_open(
    attr: &Attr,
    pid: i32,
    cpu: i32,
    group: Option<BorrowedFd<'_>>,
) -> io::Result<OwnedFd> {
    let group_fd = group.map_or(-1, |fd| fd.as_raw_fd());
    #[cfg(test)]
    if let Some(faked) = hooks::open(attr, pid, cpu, group_fd) {
        return faked;
    }
    let mut attr = *attr;
    let flags = bindings::PERF_FLAG_FD_CLOEXEC as libc::c_ulong;
    // SAFETY: `attr` is a fully initialised local copy that outlives the call; the kernel
    // only reads it (and may write back `size` on E2BIG, which is harmless on a copy).
    let ret = unsafe {
        perf_event_open_sys::perf_event_open(&mut attr, pid, cpu, group_fd, flags) as libc::c_long
    };
    let fd = check(ret)? as i32;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The syscall seam for unit tests: a test routes its own thread's perf_event_open calls to a
/// closure (which returns any descriptor it likes, e.g. /dev/null, or an errno), so that
/// group opening, its retries and its error handling run without a kernel that has the event.
#[cfg(test)]
pub mod hooks {
    use std::cell::RefCell;
    use std::io;
    use std::os::fd::OwnedFd;

    use super::Attr;

    /// A fake perf_event_open: (attr, pid, cpu, group fd or -1) → descriptor or error.
    pub type OpenHook = Box<dyn FnMut(&Attr, i32, i32, i32) -> io::Result<OwnedFd>>;

    thread_local! {
        static OPEN: RefCell<Option<OpenHook>> = const { RefCell::new(None) };
    }

    /// While the guard lives, this thread's perf_event_open calls go to `hook`.
    pub fn fake_open(hook: OpenHook) -> Guard {
        OPEN.with(|h| *h.borrow_mut() = Some(hook));
        Guard
    }

    /// Restores the real syscall when dropped.
    pub struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            OPEN.with(|h| *h.borrow_mut() = None);
        }
    }

    pub(super) fn open(attr: &Attr, pid: i32, cpu: i32, group: i32) -> Option<io::Result<OwnedFd>> {
        OPEN.with(|h| h.borrow_mut().as_mut().map(|f| f(attr, pid, cpu, group)))
    }

    /// A descriptor that stands for an opened event.
    pub fn fake_fd() -> OwnedFd {
        std::fs::File::open("/dev/null").expect("/dev/null").into()
    }
}

/// perf_event_open counting only tasks of the cgroup whose directory `cgroup` is open on
/// (PERF_FLAG_PID_CGROUP; CPU-wide, so `cpu` must be a CPU).
pub fn perf_event_open_cgroup(
    attr: &Attr,
    cgroup: BorrowedFd<'_>,
    cpu: i32,
    group: Option<BorrowedFd<'_>>,
) -> io::Result<OwnedFd> {
    let mut attr = *attr;
    let group_fd = group.map_or(-1, |fd| fd.as_raw_fd());
    let flags = (bindings::PERF_FLAG_FD_CLOEXEC | bindings::PERF_FLAG_PID_CGROUP) as libc::c_ulong;
    // SAFETY: as in perf_event_open: a local attr copy outlives the call; the cgroup
    // descriptor is borrowed, so it stays open for the duration of the call.
    let ret = unsafe {
        perf_event_open_sys::perf_event_open(&mut attr, cgroup.as_raw_fd(), cpu, group_fd, flags)
            as libc::c_long
    };
    let fd = check(ret)? as i32;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What an ioctl applies to: the event alone or its whole group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only this event.
    Event,
    /// The event and every member of its group (the fd must be the leader's).
    Group,
}

impl Scope {
    fn flag(self) -> libc::c_uint {
        match self {
            Scope::Event => 0,
            Scope::Group => bindings::PERF_IOC_FLAG_GROUP,
        }
    }
}

/// PERF_EVENT_IOC_ENABLE.
pub fn enable(fd: BorrowedFd<'_>, scope: Scope) -> io::Result<()> {
    // SAFETY: ENABLE takes an integer flag argument and no pointer; fd is a live descriptor.
    check(unsafe { perf_event_open_sys::ioctls::ENABLE(fd.as_raw_fd(), scope.flag()) } as _)?;
    Ok(())
}

/// PERF_EVENT_IOC_DISABLE.
pub fn disable(fd: BorrowedFd<'_>, scope: Scope) -> io::Result<()> {
    // SAFETY: DISABLE takes an integer flag argument and no pointer; fd is a live descriptor.
    check(unsafe { perf_event_open_sys::ioctls::DISABLE(fd.as_raw_fd(), scope.flag()) } as _)?;
    Ok(())
}

/// PERF_EVENT_IOC_ID: the kernel's unique id of this event (what PERF_SAMPLE_ID reports).
pub fn event_id(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut id: u64 = 0;
    // SAFETY: ID writes one u64 through the pointer, which points at a live local.
    check(unsafe { perf_event_open_sys::ioctls::ID(fd.as_raw_fd(), &mut id) } as _)?;
    Ok(id)
}

/// PERF_EVENT_IOC_SET_FILTER: a tracepoint filter expression (`fd == 1 && count > 2`).
pub fn set_filter(fd: BorrowedFd<'_>, filter: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: SET_FILTER reads a NUL-terminated string through the pointer and does not keep
    // it; `filter` outlives the call and the kernel never writes through it.
    check(unsafe {
        perf_event_open_sys::ioctls::SET_FILTER(fd.as_raw_fd(), filter.as_ptr() as *mut _)
    } as _)?;
    Ok(())
}

/// PERF_EVENT_IOC_SET_OUTPUT: send `fd`'s records into `target`'s ring buffer.
pub fn set_output(fd: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: SET_OUTPUT takes another perf fd as an integer; both are live descriptors.
    check(
        unsafe { perf_event_open_sys::ioctls::SET_OUTPUT(fd.as_raw_fd(), target.as_raw_fd()) } as _,
    )?;
    Ok(())
}

/// Reads a counter into `buf` (at most 32 words): the u64 words the kernel wrote for the
/// event's read_format, e.g. value, time_enabled, time_running[, id].
pub fn read_words<'a>(fd: BorrowedFd<'_>, buf: &'a mut [u64]) -> io::Result<&'a [u64]> {
    let mut raw = [0u8; 256];
    let want = (buf.len() * 8).min(raw.len());
    let n = nix::unistd::read(fd, &mut raw[..want]).map_err(io::Error::from)?;
    let words = n / 8;
    for (slot, chunk) in buf.iter_mut().zip(raw[..words * 8].chunks_exact(8)) {
        *slot = u64::from_ne_bytes(chunk.try_into().expect("8-byte chunk"));
    }
    Ok(&buf[..words])
}

/// A shared, read-write memory mapping of a perf event's ring buffer.
/// Unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; moving it to another
// thread moves ownership of the whole region.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared and read-write (as perf_event_open(2) requires for a
    /// ring buffer whose tail the reader advances).
    pub fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh mapping at a kernel-chosen address; no existing memory is touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap NULL"))?;
        Ok(Mapping { ptr, len })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a mapping has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned and the region is unmapped once.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// Starts `path` with `argv` and `envp` (NULL-terminated arrays of C strings) through
/// posix_spawn, with an empty signal mask and SIGPIPE at its default action in the child.
/// Returns the pid, or the errno of the failed spawn or exec.
pub fn posix_spawn_reset(
    path: &std::ffi::CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Result<i32, i32> {
    assert!(argv.last().is_some_and(|p| p.is_null()) && envp.last().is_some_and(|p| p.is_null()));
    let mut pid: libc::pid_t = 0;
    // SAFETY: the attribute object is initialised before use and destroyed after; the sets are
    // plain values filled by sigemptyset/sigaddset; `path`, `argv` and `envp` are valid
    // NULL-terminated C arrays that outlive the call (checked above). posix_spawn itself is
    // safe to call from a multi-threaded process with signal handlers installed.
    unsafe {
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        let rc = libc::posix_spawnattr_init(&mut attr);
        if rc != 0 {
            return Err(rc);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let mut rc = libc::posix_spawnattr_setsigmask(&mut attr, &empty);
        if rc == 0 {
            rc = libc::posix_spawnattr_setsigdefault(&mut attr, &pipe);
        }
        if rc == 0 {
            let flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            rc = libc::posix_spawnattr_setflags(&mut attr, flags as libc::c_short);
        }
        if rc == 0 {
            rc = libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                std::ptr::null(),
                &attr,
                argv.as_ptr().cast::<*mut libc::c_char>(),
                envp.as_ptr().cast::<*mut libc::c_char>(),
            );
        }
        libc::posix_spawnattr_destroy(&mut attr);
        if rc != 0 {
            return Err(rc);
        }
    }
    Ok(pid)
}

/// Opens a pidfd for `pid` (pidfd_open(2), Linux 5.3+): pollable, readable when it exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let ret = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// The first [`ATTR_SIZE_VER7`] bytes of `attr` as the kernel's ABI lays them out, with the
/// `size` field set to 128: the form a perf.data file stores (perf 6.1 refuses larger attrs).
pub fn attr_file_bytes(attr: &Attr) -> [u8; ATTR_SIZE_VER7 as usize] {
    const _: () = assert!(std::mem::size_of::<Attr>() >= ATTR_SIZE_VER7 as usize);
    let mut out = [0u8; ATTR_SIZE_VER7 as usize];
    // SAFETY: Attr is a #[repr(C)] struct of integers, unions of integers and a bitfield
    // byte array, laid out by bindgen with no padding (its layout tests assert each field's
    // offset); every byte is initialised, and we read within its size.
    let bytes = unsafe {
        std::slice::from_raw_parts((attr as *const Attr).cast::<u8>(), ATTR_SIZE_VER7 as usize)
    };
    out.copy_from_slice(bytes);
    out[4..8].copy_from_slice(&ATTR_SIZE_VER7.to_ne_bytes());
    out
}

/// Whether the kernel started ruperf in secure-execution mode (AT_SECURE: file capabilities,
/// setuid or setgid).
pub fn at_secure() -> bool {
    // SAFETY: getauxval reads the process's auxiliary vector; it has no preconditions and
    // returns 0 for an absent entry.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

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
