//! The perf mmap ring buffer, read as perf_event_open(2) prescribes.
//!
//! The first page of the mapping is `perf_event_mmap_page`; the data area after it is a
//! power-of-two ring. The kernel advances `data_head` after writing whole records; the
//! reader loads it with acquire ordering (the kernel's `smp_rmb` pairing), copies the bytes
//! between its tail and that head, then publishes the new `data_tail` with release ordering
//! so the kernel never overwrites bytes still being copied. Copying linearises records that
//! wrap around the end of the ring, so callers always see whole, contiguous records.

use std::io;
use std::mem::offset_of;
use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use super::sys::{self, bindings::perf_event_mmap_page};

/// One event's ring buffer, mapped shared and read-write.
#[derive(Debug)]
pub struct RingBuffer {
    map: sys::Mapping,
    data_offset: usize,
    data_size: usize,
}

/// The system page size.
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |v| v as usize)
}

impl RingBuffer {
    /// Maps a ring of `data_pages` pages (a power of two) plus the control page for `fd`.
    pub fn map(fd: BorrowedFd<'_>, data_pages: usize) -> io::Result<Self> {
        if !data_pages.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "ring buffer pages must be a power of two",
            ));
        }
        let page = page_size();
        let map = sys::Mapping::new(fd, (data_pages + 1) * page)?;
        let mut ring = RingBuffer {
            map,
            data_offset: page,
            data_size: data_pages * page,
        };
        // Kernels since 4.1 publish where the data area is; older ones use the next page.
        let off = ring.load_field(offset_of!(perf_event_mmap_page, data_offset)) as usize;
        let size = ring.load_field(offset_of!(perf_event_mmap_page, data_size)) as usize;
        if off != 0 && size.is_power_of_two() && off + size <= ring.map.len() {
            ring.data_offset = off;
            ring.data_size = size;
        }
        Ok(ring)
    }

    /// Size of the data area in bytes.
    pub fn data_size(&self) -> usize {
        self.data_size
    }

    fn atomic(&self, field_offset: usize) -> &AtomicU64 {
        debug_assert!(field_offset % 8 == 0 && field_offset + 8 <= self.map.len());
        // SAFETY: the control page is mapped for as long as `self` lives, the field is an
        // 8-byte-aligned u64 inside it (page-aligned mapping, offset_of a u64 field), and the
        // kernel only ever accesses it atomically as a whole word.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(field_offset).cast::<u64>()) }
    }

    fn load_field(&self, field_offset: usize) -> u64 {
        self.atomic(field_offset).load(Ordering::Acquire)
    }

    /// Copies every complete record now in the ring to the end of `out` and frees that space
    /// for the kernel. Returns the number of bytes copied.
    pub fn drain_into(&mut self, out: &mut Vec<u8>) -> usize {
        let head_field = self.atomic(offset_of!(perf_event_mmap_page, data_head));
        let head = head_field.load(Ordering::Acquire);
        let tail_field = self.atomic(offset_of!(perf_event_mmap_page, data_tail));
        // Only this reader writes data_tail, so a relaxed load sees our own last store.
        let tail = tail_field.load(Ordering::Relaxed);
        let (first, second) = spans(self.data_size, tail, head);
        let n = first.len() + second.len();
        if n == 0 {
            return 0;
        }
        out.reserve(n);
        for span in [first, second] {
            if span.is_empty() {
                continue;
            }
            // SAFETY: `span` lies inside the data area (spans() keeps it below data_size),
            // which is mapped while `self` lives; the kernel does not write bytes between
            // our tail and the head it published until we advance data_tail below.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    self.map.as_ptr().add(self.data_offset + span.start),
                    span.len(),
                )
            };
            out.extend_from_slice(bytes);
        }
        // Release: every read of the copied bytes happens before the kernel may reuse them.
        self.atomic(offset_of!(perf_event_mmap_page, data_tail))
            .store(tail.wrapping_add(n as u64), Ordering::Release);
        n
    }
}

/// The byte ranges of the data area holding `[tail, head)`, in order: the part up to the end
/// of the ring and the part that wrapped to its start. A head more than one ring ahead of the
/// tail (which the kernel never publishes in non-overwrite mode) is clamped to one ring.
pub fn spans(data_size: usize, tail: u64, head: u64) -> (Range<usize>, Range<usize>) {
    let avail = (head.wrapping_sub(tail) as usize).min(data_size);
    let start = (tail as usize) & (data_size - 1);
    let first_len = avail.min(data_size - start);
    (start..start + first_len, 0..avail - first_len)
}

/// Record types that carry a count of records the kernel had to drop.
pub const PERF_RECORD_LOST: u32 = 2;
/// PERF_RECORD_LOST_SAMPLES: samples dropped inside the PMU driver.
pub const PERF_RECORD_LOST_SAMPLES: u32 = 13;

/// One record header seen while walking a buffer of whole records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// PERF_RECORD_* type.
    pub kind: u32,
    /// header.misc.
    pub misc: u16,
    /// The whole record, header included.
    pub bytes: &'a [u8],
}

/// Walks records laid end to end in `buf`. Stops at the first header whose size is
/// impossible (shorter than a header or running past the end).
pub fn records(buf: &[u8]) -> impl Iterator<Item = RecordRef<'_>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let hdr = buf.get(pos..pos + 8)?;
        let kind = u32::from_ne_bytes(hdr[0..4].try_into().ok()?);
        let misc = u16::from_ne_bytes(hdr[4..6].try_into().ok()?);
        let size = u16::from_ne_bytes(hdr[6..8].try_into().ok()?) as usize;
        if size < 8 {
            return None;
        }
        let bytes = buf.get(pos..pos + size)?;
        pos += size;
        Some(RecordRef { kind, misc, bytes })
    })
}

/// Records dropped, as reported by LOST and LOST_SAMPLES records in `rec`.
pub fn lost_count(rec: &RecordRef<'_>) -> u64 {
    let at = match rec.kind {
        PERF_RECORD_LOST => 16,
        PERF_RECORD_LOST_SAMPLES => 8,
        _ => return 0,
    };
    rec.bytes
        .get(at..at + 8)
        .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_without_wrap() {
        assert_eq!(spans(4096, 0, 0), (0..0, 0..0));
        assert_eq!(spans(4096, 100, 300), (100..300, 0..0));
        assert_eq!(spans(4096, 4096 + 8, 4096 + 16), (8..16, 0..0));
    }

    #[test]
    fn spans_that_wrap_split_at_the_end() {
        // A 64-byte record starting 24 bytes before the end straddles the boundary.
        let (a, b) = spans(4096, 4096 - 24, 4096 + 40);
        assert_eq!(a, 4072..4096);
        assert_eq!(b, 0..40);
        // Counters wrap around u64 too.
        let (a, b) = spans(4096, u64::MAX - 7, 8);
        assert_eq!(a.len() + b.len(), 16);
        assert_eq!(a, 4088..4096);
        assert_eq!(b, 0..8);
    }

    #[test]
    fn records_walk_and_count_lost() {
        let mut buf = Vec::new();
        // LOST: header, id, lost=5
        buf.extend_from_slice(&2u32.to_ne_bytes());
        buf.extend_from_slice(&0u16.to_ne_bytes());
        buf.extend_from_slice(&24u16.to_ne_bytes());
        buf.extend_from_slice(&7u64.to_ne_bytes());
        buf.extend_from_slice(&5u64.to_ne_bytes());
        // SAMPLE with 8 bytes of body
        buf.extend_from_slice(&9u32.to_ne_bytes());
        buf.extend_from_slice(&2u16.to_ne_bytes());
        buf.extend_from_slice(&16u16.to_ne_bytes());
        buf.extend_from_slice(&1u64.to_ne_bytes());
        // A broken header (size 4) ends the walk.
        buf.extend_from_slice(&9u32.to_ne_bytes());
        buf.extend_from_slice(&0u16.to_ne_bytes());
        buf.extend_from_slice(&4u16.to_ne_bytes());
        let recs: Vec<_> = records(&buf).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].kind, 2);
        assert_eq!(lost_count(&recs[0]), 5);
        assert_eq!(recs[1].kind, 9);
        assert_eq!(recs[1].misc, 2);
        assert_eq!(lost_count(&recs[1]), 0);
    }
}
