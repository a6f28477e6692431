//! Feature sections: the metadata perf keeps after the data (HEADER_* bits).

use crate::os::sys::ATTR_SIZE_VER7;

/// HEADER_TRACING_DATA.
pub const TRACING_DATA: u32 = 1;
/// HEADER_BUILD_ID.
pub const BUILD_ID: u32 = 2;
/// HEADER_HOSTNAME.
pub const HOSTNAME: u32 = 3;
/// HEADER_OSRELEASE.
pub const OSRELEASE: u32 = 4;
/// HEADER_VERSION.
pub const VERSION: u32 = 5;
/// HEADER_ARCH.
pub const ARCH: u32 = 6;
/// HEADER_NRCPUS.
pub const NRCPUS: u32 = 7;
/// HEADER_CMDLINE.
pub const CMDLINE: u32 = 11;
/// HEADER_EVENT_DESC.
pub const EVENT_DESC: u32 = 12;
/// HEADER_SAMPLE_TIME.
pub const SAMPLE_TIME: u32 = 21;

/// perf pads strings in headers to this alignment.
const NAME_ALIGN: usize = 64;
/// PERF_RECORD_MISC_BUILD_ID_SIZE: the build-id entry carries its length.
const MISC_BUILD_ID_SIZE: u16 = 1 << 15;

/// A perf header string: u32 length (padded, with NUL) then the bytes, zero-padded.
pub fn string(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    push_string(&mut out, s);
    out
}

fn push_string(out: &mut Vec<u8>, s: &str) {
    push_bytes(out, s.as_bytes());
}

/// A perf string of raw bytes: perf stores arguments as the kernel gave them, UTF-8 or not.
fn push_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let padded = (s.len() + 1).div_ceil(NAME_ALIGN) * NAME_ALIGN;
    out.extend_from_slice(&(padded as u32).to_ne_bytes());
    out.extend_from_slice(s);
    out.resize(out.len() + padded - s.len(), 0);
}

/// HEADER_NRCPUS: CPUs available (configured), CPUs online.
pub fn nrcpus(available: u32, online: u32) -> Vec<u8> {
    let mut out = available.to_ne_bytes().to_vec();
    out.extend_from_slice(&online.to_ne_bytes());
    out
}

/// HEADER_CMDLINE: a count then that many strings.
pub fn cmdline(args: &[std::ffi::OsString]) -> Vec<u8> {
    let mut out = (args.len() as u32).to_ne_bytes().to_vec();
    for a in args {
        push_bytes(&mut out, a.as_encoded_bytes());
    }
    out
}

/// One event for HEADER_EVENT_DESC.
#[derive(Debug, Clone)]
pub struct EventDesc<'a> {
    /// perf_event_attr bytes (128).
    pub attr: &'a [u8; ATTR_SIZE_VER7 as usize],
    /// Event name.
    pub name: &'a str,
    /// Instance ids.
    pub ids: &'a [u64],
}

/// HEADER_EVENT_DESC: count, attr size, then per event: attr, id count, name, ids.
pub fn event_desc(events: &[EventDesc<'_>]) -> Vec<u8> {
    let mut out = (events.len() as u32).to_ne_bytes().to_vec();
    out.extend_from_slice(&ATTR_SIZE_VER7.to_ne_bytes());
    for e in events {
        out.extend_from_slice(e.attr);
        out.extend_from_slice(&(e.ids.len() as u32).to_ne_bytes());
        push_string(&mut out, e.name);
        for id in e.ids {
            out.extend_from_slice(&id.to_ne_bytes());
        }
    }
    out
}

/// One DSO for HEADER_BUILD_ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildIdEntry {
    /// True for the kernel (and modules): PERF_RECORD_MISC_KERNEL, else USER.
    pub kernel: bool,
    /// The build id (up to 20 bytes).
    pub id: Vec<u8>,
    /// The DSO's name as in its MMAP record (e.g. `/usr/lib/libc.so.6`, `[kernel.kallsyms]`).
    pub path: String,
}

/// HEADER_BUILD_ID: a sequence of build_id records (host machine, pid -1).
pub fn build_ids(entries: &[BuildIdEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let name_len = (e.path.len() + 1).div_ceil(NAME_ALIGN) * NAME_ALIGN;
        let size = 8 + 4 + 24 + name_len;
        let misc = if e.kernel { 1u16 } else { 2u16 } | MISC_BUILD_ID_SIZE;
        out.extend_from_slice(&0u32.to_ne_bytes()); // header.type
        out.extend_from_slice(&misc.to_ne_bytes());
        out.extend_from_slice(&(size as u16).to_ne_bytes());
        out.extend_from_slice(&(-1i32).to_ne_bytes()); // pid: the host machine
        let n = e.id.len().min(20);
        let mut id = [0u8; 24];
        id[..n].copy_from_slice(&e.id[..n]);
        id[20] = n as u8;
        out.extend_from_slice(&id);
        out.extend_from_slice(e.path.as_bytes());
        out.resize(out.len() + name_len - e.path.len(), 0);
    }
    out
}

/// HEADER_SAMPLE_TIME: first and last sample time.
pub fn sample_time(first: u64, last: u64) -> Vec<u8> {
    let mut out = first.to_ne_bytes().to_vec();
    out.extend_from_slice(&last.to_ne_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_padded_to_64_with_a_nul() {
        let s = string("x86_64");
        assert_eq!(s.len(), 4 + 64);
        assert_eq!(u32::from_ne_bytes(s[0..4].try_into().unwrap()), 64);
        assert_eq!(&s[4..10], b"x86_64");
        assert!(s[10..].iter().all(|&b| b == 0));
        // Exactly 64 characters need a second block for the NUL.
        assert_eq!(string(&"a".repeat(64)).len(), 4 + 128);
    }

    #[test]
    fn cmdline_is_a_counted_list() {
        let c = cmdline(&["ruperf".into(), "record".into()]);
        assert_eq!(u32::from_ne_bytes(c[0..4].try_into().unwrap()), 2);
        assert_eq!(c.len(), 4 + 2 * 68);
    }

    #[test]
    fn build_id_records_carry_size_and_name() {
        let b = build_ids(&[BuildIdEntry {
            kernel: false,
            id: (1..=20).collect(),
            path: "/bin/true".into(),
        }]);
        assert_eq!(b.len(), 36 + 64);
        let misc = u16::from_ne_bytes(b[4..6].try_into().unwrap());
        assert_eq!(misc, 2 | 0x8000);
        assert_eq!(u16::from_ne_bytes(b[6..8].try_into().unwrap()), 100);
        assert_eq!(i32::from_ne_bytes(b[8..12].try_into().unwrap()), -1);
        assert_eq!(b[12], 1);
        assert_eq!(b[31], 20);
        assert_eq!(b[32], 20, "size byte");
        assert_eq!(&b[36..45], b"/bin/true");
    }

    #[test]
    fn event_desc_lists_attr_name_ids() {
        let attr = [0u8; 128];
        let d = event_desc(&[EventDesc {
            attr: &attr,
            name: "cpu-clock",
            ids: &[5, 6],
        }]);
        assert_eq!(d.len(), 8 + 128 + 4 + 68 + 16);
        assert_eq!(u32::from_ne_bytes(d[4..8].try_into().unwrap()), 128);
        assert_eq!(u32::from_ne_bytes(d[136..140].try_into().unwrap()), 2);
    }
}
