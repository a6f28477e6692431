//! The only place where ruperf calls perf_event_open(2), its ioctls and mmap(2).
//!
//! Every file descriptor becomes an [`OwnedFd`] the moment the kernel returns it, so that
//! nothing above this module can leak or double-close one. Errors come back as
//! [`std::io::Error`] with the kernel's errno; callers turn them into messages that name the
//! event and the fix.

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
    let mut attr = *attr;
    let group_fd = group.map_or(-1, |fd| fd.as_raw_fd());
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

/// PERF_EVENT_IOC_SET_OUTPUT: send `fd`'s records into `target`'s ring buffer.
pub fn set_output(fd: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: SET_OUTPUT takes another perf fd as an integer; both are live descriptors.
    check(
        unsafe { perf_event_open_sys::ioctls::SET_OUTPUT(fd.as_raw_fd(), target.as_raw_fd()) } as _,
    )?;
    Ok(())
}

/// PERF_EVENT_IOC_SET_FILTER: a tracepoint filter (ftrace's filter syntax).
pub fn set_filter(fd: BorrowedFd<'_>, filter: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: SET_FILTER reads a NUL-terminated string through the pointer, which borrows
    // `filter` for the duration of the call; fd is a live descriptor.
    check(unsafe {
        perf_event_open_sys::ioctls::SET_FILTER(fd.as_raw_fd(), filter.as_ptr() as *mut _)
    } as _)?;
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
