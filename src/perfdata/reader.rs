//! Reading perf.data files, whoever wrote them.
//!
//! Record decoding is done by the `linux-perf-data` crate. Before it sees a byte, [`Recording::open`]
//! checks the file's layout against its real size, so that no length field read from the file can
//! make the reader allocate more than the file holds, loop forever or panic.
//!
//! **The bounded-resource rule** (for every change to this module): a length, count or offset
//! read from the file is checked against the bytes that really remain, and against a cap for
//! its kind, before anything is allocated, looped over or handed to the crate. Memory is then
//! bounded by a small multiple of the file's size, and time by its number of records.
//!
//! - the 104-byte header, the attribute section and every feature section must lie inside the file;
//! - each feature section has a size cap for its kind (`feature_cap`) and may not overlap the
//!   header, the attributes, the data, the feature table or another section, so that all of them
//!   together hold at most the file's size (a table pointing every entry at the whole file is
//!   read once, not nine times);
//! - the data section is walked record by record (8-byte headers only); a record that is shorter
//!   than its own header or runs past the end stops the walk, and the records before it are read;
//!   so does an MMAP2 record whose build id claims more than 20 bytes (the kernel's maximum,
//!   which the crate asserts);
//! - a data size of 0, or one larger than the file, means `perf record` was killed before it could
//!   finish the header: the records up to the last complete one are read, with a warning;
//! - the only feature section handed to the crate is EVENT_DESC, after its counts were checked
//!   against its size; the others (build ids, host, command line) are decoded here, bounded.
//!
//! The crate reads a virtual file: a repaired header, the original bytes up to the end of the
//! data section, then a copy of the attributes and a rebuilt feature table. Both endiannesses are
//! handled; the consumer sees [`Record`]s in time order (the crate sorts each round).

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use linux_perf_data::linux_perf_event_reader::{
    CpuMode, EventRecord, Mmap2FileId, RawData, SampleFormat, SamplingPolicy,
};
use linux_perf_data::{PerfFileReader, PerfFileRecord};
use serde::Serialize;

use super::user_stack::{self, TailFormat, UserTail};
use crate::error::{Error, Result};

/// Size of the file header perf writes (`struct perf_file_header`).
pub const HEADER_SIZE: u64 = 104;
const FEATURE_BITS: usize = 256;
/// Feature numbers (`enum perf_header_feature` in perf's header.h).
mod feat {
    pub const TRACING_DATA: usize = 1;
    pub const BUILD_ID: usize = 2;
    pub const HOSTNAME: usize = 3;
    pub const OSRELEASE: usize = 4;
    pub const VERSION: usize = 5;
    pub const ARCH: usize = 6;
    pub const NRCPUS: usize = 7;
    pub const CPUDESC: usize = 8;
    pub const CMDLINE: usize = 11;
    pub const EVENT_DESC: usize = 12;
    pub const RUPERF_ENERGY: usize = crate::perfdata::energy::FEATURE as usize;
}
/// Record types this module looks at directly.
const RECORD_SAMPLE: u32 = 9;
const RECORD_LOST_SAMPLES: u32 = 13;
const RECORD_AUXTRACE: u32 = 71;
const RECORD_MMAP2: u32 = 10;
/// `PERF_RECORD_MISC_MMAP_BUILD_ID`: an MMAP2 record carries a build id, not an inode.
const MISC_MMAP_BUILD_ID: u16 = 1 << 14;
/// Call-chain values from here up are context markers (`PERF_CONTEXT_MAX` = -4095).
const CONTEXT_MAX: u64 = (-4095i64) as u64;
/// `PERF_RECORD_MISC_BUILD_ID_SIZE` in a build-id record's misc field.
const MISC_BUILD_ID_SIZE: u16 = 1 << 15;
/// The smallest perf_event_attr (PERF_ATTR_SIZE_VER0) and a generous upper bound.
const ATTR_SIZE_MIN: u64 = 64;
const ATTR_SIZE_MAX: u64 = 4096;

/// One event of the recording.
#[derive(Debug, Clone, Serialize)]
pub struct EventInfo {
    /// The event's name as the recorder wrote it (e.g. `cpu-clock:ppp`), or a description
    /// of its type and config when the file has no names.
    pub name: String,
    /// The attr type (0 hardware, 1 software, 2 tracepoint, …).
    pub attr_type: u32,
    /// The attr config.
    pub config: u64,
    /// Whether samples carry call chains (PERF_SAMPLE_CALLCHAIN).
    pub callchain: bool,
    /// Sampling frequency in Hz when sampling by frequency.
    pub frequency: Option<u64>,
    /// Fixed sample period when sampling by period.
    pub period: Option<u64>,
}

/// A DSO's build id as recorded in the BUILD_ID feature section.
#[derive(Debug, Clone, Serialize)]
pub struct BuildIdEntry {
    /// Process id the entry belongs to (-1 for the kernel).
    pub pid: i32,
    /// True for the kernel and its modules.
    pub kernel: bool,
    /// The DSO's path as recorded (`[kernel.kallsyms]` for the kernel).
    pub path: String,
    /// The build id bytes, as lowercase hex.
    pub build_id: String,
}

/// What the file says about itself, besides records.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Meta {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub file_size: u64,
    /// True when the file is big-endian (written on another kind of machine).
    pub big_endian: bool,
    /// The events, in attribute order.
    pub events: Vec<EventInfo>,
    /// Host name of the recording machine.
    pub hostname: Option<String>,
    /// Kernel release of the recording machine.
    pub os_release: Option<String>,
    /// Version of the recording tool.
    pub perf_version: Option<String>,
    /// Architecture of the recording machine.
    pub arch: Option<String>,
    /// CPUs online and available at recording time.
    pub nr_cpus: Option<(u32, u32)>,
    /// CPU description.
    pub cpu_desc: Option<String>,
    /// The recording command line.
    pub cmdline: Vec<String>,
    /// Build ids of the DSOs that got samples.
    pub build_ids: Vec<BuildIdEntry>,
    /// ruperf's energy readings (feature section [`crate::perfdata::energy::FEATURE`]), raw.
    pub energy: Option<Vec<u8>>,
    /// Size of the data section that will be read.
    pub data_size: u64,
    /// True when the file was cut short (killed recorder, truncated copy, corruption).
    pub truncated: bool,
    /// The HEADER_TRACING_DATA section (tracepoint formats), when recorded.
    #[serde(skip)]
    pub tracing_data: Option<std::sync::Arc<Vec<u8>>>,
}

/// A sample, borrowed from the reader for the duration of one callback.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Index into [`Meta::events`].
    pub event: usize,
    /// Process id (-1 when not recorded).
    pub pid: i32,
    /// Thread id (-1 when not recorded).
    pub tid: i32,
    /// Timestamp in ns (0 when not recorded).
    pub time: u64,
    /// CPU (when recorded).
    pub cpu: Option<u32>,
    /// The sample's weight: its period, or the event's fixed period, or 1.
    pub period: u64,
    /// The sampled instruction pointer (0 when not recorded).
    pub ip: u64,
    /// True when the sample was taken in kernel mode.
    pub kernel: bool,
    /// The raw call chain, context markers included; empty when not recorded; at most
    /// [`Recording::set_max_stack`] addresses.
    pub callchain: &'a [u64],
    /// The user registers (PERF_SAMPLE_REGS_USER), in the order of `regs_mask`'s bits; empty
    /// when not recorded.
    pub user_regs: &'a [u64],
    /// The event's `sample_regs_user`.
    pub regs_mask: u64,
    /// The user stack dump (PERF_SAMPLE_STACK_USER): the bytes copied and the size asked for.
    pub user_stack: UserTail<'a>,
    /// PERF_SAMPLE_ADDR (0 when not recorded).
    pub addr: u64,
    /// PERF_SAMPLE_RAW: a tracepoint's fields (empty when not recorded).
    pub raw: &'a [u8],
}

/// A new or replaced memory mapping.
#[derive(Debug, Clone)]
pub struct Mmap<'a> {
    /// Process the mapping belongs to (-1 for kernel maps).
    pub pid: i32,
    /// Start address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// File offset of `start`.
    pub pgoff: u64,
    /// The mapped file, `[vdso]`, `//anon`, `[kernel.kallsyms]_text`, …
    pub path: &'a [u8],
    /// True for kernel maps.
    pub kernel: bool,
    /// Executable mapping (always true for MMAP2 records from `perf record`, which only
    /// asks for executable maps unless --data is used).
    pub executable: bool,
    /// The build id carried by the record, if any.
    pub build_id: Option<Vec<u8>>,
}

/// One record of the data section.
#[derive(Debug, Clone)]
pub enum Record<'a> {
    /// A sample.
    Sample(Sample<'a>),
    /// A thread's command name was set (by exec when `exec` is true).
    Comm {
        /// Process id.
        pid: i32,
        /// Thread id.
        tid: i32,
        /// The new name.
        name: &'a [u8],
        /// True when set by execve.
        exec: bool,
    },
    /// A thread or process was created.
    Fork {
        /// New process id.
        pid: i32,
        /// Parent process id.
        ppid: i32,
        /// New thread id.
        tid: i32,
        /// Parent thread id.
        ptid: i32,
    },
    /// A thread exited.
    Exit {
        /// Process id.
        pid: i32,
        /// Thread id.
        tid: i32,
    },
    /// A memory mapping.
    Mmap(Mmap<'a>),
    /// The kernel dropped records because the ring buffer was full.
    Lost {
        /// Number of records lost.
        count: u64,
    },
    /// The kernel dropped samples (PERF_RECORD_LOST_SAMPLES).
    LostSamples {
        /// Number of samples lost.
        count: u64,
    },
}

/// Counts gathered while reading the data section.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReadStats {
    /// Records handed to the callback.
    pub records: u64,
    /// Records that could not be decoded and were skipped.
    pub bad_records: u64,
    /// Records of types this reader does not use.
    pub other_records: u64,
}

/// An open perf.data file, checked and ready to be read.
pub struct Recording {
    meta: Meta,
    warnings: Vec<String>,
    reader: PerfFileReader<View>,
    progress: Rc<Cell<u64>>,
    data_start: u64,
    /// Fixed periods per event, for samples without PERF_SAMPLE_PERIOD.
    fixed_period: Vec<u64>,
    /// (sample_type, read_format) per event.
    formats: Vec<(u64, u64)>,
    /// Register mask and branch type per event, for the sample's tail.
    tails: Vec<TailFormat>,
    chain: Vec<u64>,
    regs: Vec<u64>,
    max_stack: usize,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("meta", &self.meta)
            .finish()
    }
}

/// The raw 104-byte header, decoded with the file's endianness.
#[derive(Debug, Clone, Copy)]
struct RawHeader {
    big_endian: bool,
    attr_size: u64,
    attrs: (u64, u64),
    data: (u64, u64),
    features: [u64; 4],
}

fn rd_u16(b: &[u8], big: bool) -> u16 {
    let a = [b[0], b[1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

fn rd_u32(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn rd_u64(b: &[u8], big: bool) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    if big {
        u64::from_be_bytes(a)
    } else {
        u64::from_le_bytes(a)
    }
}

fn wr_u64(out: &mut Vec<u8>, v: u64, big: bool) {
    if big {
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn data_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Data(format!("{}: {what}", path.display()))
}

/// Decodes the file header; `Err` carries the one-line reason.
fn parse_header(bytes: &[u8]) -> std::result::Result<RawHeader, String> {
    const HINT: &str = "not a perf.data file (record one with `ruperf record` or `perf record`)";
    if bytes.len() < 8 {
        return Err(HINT.into());
    }
    let big = match &bytes[..8] {
        b"PERFILE2" => false,
        b"2ELIFREP" => true,
        b"PERFFILE" => return Err(
            "perf.data version 1 (written by perf before 2.6.38) is not supported; re-record it"
                .into(),
        ),
        _ => return Err(HINT.into()),
    };
    if (bytes.len() as u64) < 16 {
        return Err("the file ends inside its header (truncated); re-record it".into());
    }
    let header_size = rd_u64(&bytes[8..], big);
    if header_size == 16 {
        return Err(
            "this is a pipe-mode perf.data (`perf record -o -`); convert it with `perf inject -i IN -o OUT` first"
                .into(),
        );
    }
    if !(HEADER_SIZE..=1 << 20).contains(&header_size) {
        return Err(format!(
            "unknown perf.data header size {header_size} (written by a newer or different tool?)"
        ));
    }
    if (bytes.len() as u64) < HEADER_SIZE {
        return Err("the file ends inside its header (truncated); re-record it".into());
    }
    let sec = |at: usize| (rd_u64(&bytes[at..], big), rd_u64(&bytes[at + 8..], big));
    let mut features = [0u64; 4];
    for (i, f) in features.iter_mut().enumerate() {
        *f = rd_u64(&bytes[72 + 8 * i..], big);
    }
    Ok(RawHeader {
        big_endian: big,
        attr_size: rd_u64(&bytes[16..], big),
        attrs: sec(24),
        data: sec(40),
        features,
    })
}

fn within(section: (u64, u64), len: u64) -> bool {
    section
        .0
        .checked_add(section.1)
        .is_some_and(|end| end <= len)
}

/// Result of walking the data section's record headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Every record lies inside the section.
    Clean,
    /// A record runs past the end: the file was cut.
    Cut,
    /// A record is smaller than its own header: corrupted bytes.
    Corrupt,
}

/// Walks record headers from `start` up to `end`; returns the end of the last complete record.
fn walk_records<R: Read + Seek>(
    src: &mut R,
    start: u64,
    end: u64,
    big: bool,
) -> io::Result<(u64, u64, Stop)> {
    src.seek(SeekFrom::Start(start))?;
    let cap = (end.saturating_sub(start)).clamp(64, 1 << 18) as usize;
    let mut reader = BufReader::with_capacity(cap, src);
    let mut pos = start;
    let mut count = 0u64;
    let mut hdr = [0u8; 16];
    loop {
        if pos == end {
            return Ok((pos, count, Stop::Clean));
        }
        if end - pos < 8 {
            return Ok((pos, count, Stop::Cut));
        }
        if let Err(e) = reader.read_exact(&mut hdr[..8]) {
            return if e.kind() == io::ErrorKind::UnexpectedEof {
                Ok((pos, count, Stop::Cut))
            } else {
                Err(e)
            };
        }
        let ty = rd_u32(&hdr, big);
        let size = u64::from(rd_u16(&hdr[6..], big));
        if size < 8 {
            return Ok((pos, count, Stop::Corrupt));
        }
        let mut total = size;
        let mut consumed = 8u64;
        if ty == RECORD_AUXTRACE {
            // The trace data follows the record; its size is the first body field.
            if size < 16 || end - pos < 16 {
                return Ok((
                    pos,
                    count,
                    if size < 16 { Stop::Corrupt } else { Stop::Cut },
                ));
            }
            if reader.read_exact(&mut hdr[8..16]).is_err() {
                return Ok((pos, count, Stop::Cut));
            }
            consumed = 16;
            total = match size.checked_add(rd_u64(&hdr[8..], big)) {
                Some(t) => t,
                None => return Ok((pos, count, Stop::Corrupt)),
            };
        }
        if total > end - pos {
            return Ok((pos, count, Stop::Cut));
        }
        let misc = rd_u16(&hdr[4..], big);
        if ty == RECORD_MMAP2 && misc & MISC_MMAP_BUILD_ID != 0 {
            // linux-perf-data asserts that an MMAP2 build id holds at most 20 bytes (the
            // kernel's BUILD_ID_SIZE_MAX): a larger size is corrupt and must not reach it.
            let mut body = [0u8; 33];
            if size < 8 + 33 || reader.read_exact(&mut body).is_err() || body[32] > 20 {
                return Ok((pos, count, Stop::Corrupt));
            }
            consumed += 33;
        }
        let skip = total - consumed;
        if skip > 0 {
            reader.seek_relative(skip as i64)?;
        }
        pos += total;
        count += 1;
    }
}

/// Checks the EVENT_DESC section's counts against its size so that the crate's parser
/// allocates no more than the section holds.
fn event_desc_ok(b: &[u8], big: bool) -> bool {
    let len = b.len() as u64;
    if len < 8 {
        return false;
    }
    let nr = u64::from(rd_u32(b, big));
    let attr_size = u64::from(rd_u32(&b[4..], big));
    if nr == 0 || !(ATTR_SIZE_MIN..=ATTR_SIZE_MAX).contains(&attr_size) {
        return false;
    }
    let mut pos = 8u64;
    for _ in 0..nr {
        if pos + attr_size + 8 > len {
            return false;
        }
        let own = u64::from(rd_u32(&b[(pos + 4) as usize..], big));
        if own < ATTR_SIZE_MIN || own > attr_size {
            return false;
        }
        pos += attr_size;
        let nr_ids = u64::from(rd_u32(&b[pos as usize..], big));
        let slen = u64::from(rd_u32(&b[(pos + 4) as usize..], big));
        pos += 8;
        if slen > len - pos {
            return false;
        }
        pos += slen;
        if nr_ids > (len - pos) / 8 {
            return false;
        }
        pos += nr_ids * 8;
    }
    true
}

/// A string as perf writes it: `u32 len` then `len` bytes, NUL padded.
fn header_string(b: &[u8], big: bool) -> Option<(String, usize)> {
    if b.len() < 4 {
        return None;
    }
    let len = rd_u32(b, big) as usize;
    let body = b.get(4..4usize.checked_add(len)?)?;
    let end = body.iter().position(|&c| c == 0).unwrap_or(body.len());
    Some((String::from_utf8_lossy(&body[..end]).into_owned(), 4 + len))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The most bytes feature section `bit` may hold; a section claiming more is ignored. Strings
/// get 64 KiB, the command line 4 MiB (Linux's argument limit is 2 MiB), build ids and event
/// descriptions 64 MiB (a million DSOs or events).
fn feature_cap(bit: usize) -> u64 {
    match bit {
        feat::NRCPUS => 64,
        feat::HOSTNAME | feat::OSRELEASE | feat::VERSION | feat::ARCH | feat::CPUDESC => 64 << 10,
        feat::CMDLINE => 4 << 20,
        // A day of readings every 10 ms for a few domains.
        feat::RUPERF_ENERGY => 1 << 30,
        _ => 64 << 20,
    }
}

/// True when the byte ranges (offset, size) share a byte.
fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.1 > 0 && b.1 > 0 && a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

/// Decodes the BUILD_ID feature section (a run of `perf_record_header_build_id`).
fn parse_build_ids(b: &[u8], big: bool) -> Vec<BuildIdEntry> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while b.len() - pos >= 8 + 4 + 24 {
        let misc = rd_u16(&b[pos + 4..], big);
        let size = rd_u16(&b[pos + 6..], big) as usize;
        if size < 36 || size > b.len() - pos {
            break;
        }
        let rec = &b[pos..pos + size];
        let pid = rd_u32(&rec[8..], big) as i32;
        let raw = &rec[12..36];
        let id = if misc & MISC_BUILD_ID_SIZE != 0 {
            let n = (raw[20] as usize).min(20);
            &raw[..n]
        } else {
            let mut n = 20;
            while n > 0 && raw[n - 1] == 0 {
                n -= 1;
            }
            &raw[..n]
        };
        let name = &rec[36..];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        out.push(BuildIdEntry {
            pid,
            kernel: misc & 0x7 == 1 || misc & 0x7 == 4,
            path: String::from_utf8_lossy(&name[..end]).into_owned(),
            build_id: hex(id),
        });
        pos += size;
    }
    out
}

/// The byte view handed to the crate: a repaired header, the original file up to the end of the
/// data section, then `tail` (attributes and feature table rebuilt by [`Recording::open`]).
struct View {
    file: BufReader<File>,
    /// Where `file`'s cursor is.
    file_pos: u64,
    header: Vec<u8>,
    pass_end: u64,
    tail: Vec<u8>,
    pos: u64,
    /// Highest offset read so far, for progress.
    progress: Rc<Cell<u64>>,
}

impl View {
    fn len(&self) -> u64 {
        self.pass_end + self.tail.len() as u64
    }
}

impl Read for View {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pos = self.pos;
        let n = if pos < self.header.len() as u64 {
            let src = &self.header[pos as usize..];
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            n
        } else if pos < self.pass_end {
            let want = (self.pass_end - pos).min(buf.len() as u64) as usize;
            if self.file_pos != pos {
                let delta = pos as i128 - self.file_pos as i128;
                if let Ok(d) = i64::try_from(delta) {
                    self.file.seek_relative(d)?;
                } else {
                    self.file.seek(SeekFrom::Start(pos))?;
                }
                self.file_pos = pos;
            }
            let n = self.file.read(&mut buf[..want])?;
            self.file_pos += n as u64;
            n
        } else if pos < self.len() {
            let src = &self.tail[(pos - self.pass_end) as usize..];
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            n
        } else {
            0
        };
        self.pos += n as u64;
        if self.pos > self.progress.get() && self.pos <= self.pass_end {
            self.progress.set(self.pos);
        }
        Ok(n)
    }
}

impl Seek for View {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )),
        }
    }
}

/// Refuses, as perf does, a recording owned by someone other than this user or root: such a
/// file can name any path for report to open and parse (with root's rights, when root runs
/// it). `-f` skips the check. A file that cannot be examined passes here and fails at open.
pub fn check_owner(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() == 0 || meta.uid() == me {
        return Ok(());
    }
    Err(Error::Permission(format!(
        "{} is owned by uid {}, neither you nor root: a recording names the files report opens, \
         so check where it came from, then pass -f (--force) to read it anyway",
        path.display(),
        meta.uid()
    )))
}

/// Opens the recording `path` names: a regular file only (a FIFO, device or directory is
/// refused without blocking), with an error that says what the path is instead.
fn open_input(path: &Path) -> Result<File> {
    if path == Path::new("-") {
        return Err(Error::Usage(
            "-i -: pipe input is not supported yet (record to a file with -o FILE and report that)"
                .into(),
        ));
    }
    match crate::sysroot::open_regular(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoInput {
            path: path.to_path_buf(),
            reason: "no such file (record one with `ruperf record`, or name another with -i)"
                .into(),
        }),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(Error::Permission(format!(
            "cannot read {}: permission denied (check its owner and mode: recordings are \
             created 0600, readable by their owner only)",
            path.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            use std::os::unix::fs::FileTypeExt;
            let what = match std::fs::metadata(path).map(|m| m.file_type()) {
                Ok(t) if t.is_dir() => "a directory",
                Ok(t) if t.is_char_device() => "a character device",
                Ok(t) if t.is_block_device() => "a block device",
                Ok(t) if t.is_fifo() => "a FIFO (pipe input is not supported yet)",
                Ok(t) if t.is_socket() => "a socket",
                _ => "something other than a regular file",
            };
            Err(data_error(
                path,
                format!("is {what}, not a perf.data file (name a recording with -i)"),
            ))
        }
        Err(e) => Err(Error::io(format!("cannot open {}", path.display()), e)),
    }
}

impl Recording {
    /// Opens and checks `path`. A missing file is [`Error::NoInput`]; a file that is not a
    /// perf.data, or whose header or attributes are unusable, is [`Error::Data`]. Damage the
    /// reader can work around (a cut data section, bad feature sections) becomes a warning.
    pub fn open(path: &Path) -> Result<Recording> {
        if let Some(r) = super::pipe::open_stream(path)? {
            return Ok(r);
        }
        let mut file = open_input(path)?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
            .len();
        let mut head = vec![0u8; HEADER_SIZE.min(file_len) as usize];
        file.read_exact(&mut head)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        if file_len == 0 {
            return Err(data_error(
                path,
                "empty file, not a perf.data file (record one with `ruperf record`)",
            ));
        }
        let h = parse_header(&head).map_err(|m| data_error(path, m))?;
        let big = h.big_endian;
        let mut warnings = Vec::new();

        // Attributes: required, inside the file, a whole number of sane entries.
        if !(ATTR_SIZE_MIN + 16..=ATTR_SIZE_MAX).contains(&h.attr_size) {
            return Err(data_error(
                path,
                format!(
                    "unsupported attribute size {} (corrupted header, or a newer format)",
                    h.attr_size
                ),
            ));
        }
        if h.attrs.1 == 0 || !within(h.attrs, file_len) || h.attrs.1 % h.attr_size != 0 {
            return Err(data_error(
                path,
                "the event attribute section is missing or lies outside the file (corrupted or cut header)",
            ));
        }
        let mut attrs = vec![0u8; h.attrs.1 as usize];
        file.seek(SeekFrom::Start(h.attrs.0))
            .and_then(|_| file.read_exact(&mut attrs))
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        for entry in attrs.chunks(h.attr_size as usize) {
            let own = u64::from(rd_u32(&entry[4..], big));
            if own < ATTR_SIZE_MIN || own > h.attr_size - 16 {
                return Err(data_error(
                    path,
                    format!(
                        "an event attribute declares size {own} (corrupted, or a newer format)"
                    ),
                ));
            }
        }

        // Data section: find where the complete records end.
        let (data_off, declared) = h.data;
        if data_off < HEADER_SIZE || data_off > file_len {
            return Err(data_error(
                path,
                format!(
                    "the data section starts at {data_off}, outside the file (corrupted header)"
                ),
            ));
        }
        let unfinished = declared == 0 || !within(h.data, file_len);
        let scan_end = if unfinished {
            file_len
        } else {
            data_off + declared
        };
        let (data_end, nrec, stop) = walk_records(&mut file, data_off, scan_end, big)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let mut truncated = false;
        if unfinished && file_len > data_off {
            truncated = true;
            warnings.push(format!(
                "{}: the header's data size ({declared} bytes) does not match the file: the recording was cut short or its recorder killed; reading the {nrec} complete records in the {} bytes after the header",
                path.display(),
                data_end - data_off
            ));
        } else if stop != Stop::Clean {
            truncated = true;
            warnings.push(format!(
                "{}: {} at byte {data_end}; reporting the {nrec} records before it",
                path.display(),
                if stop == Stop::Cut {
                    "the data section is cut short"
                } else {
                    "corrupted record"
                }
            ));
        }

        // Feature sections: only when the header was finished and the table is intact.
        let mut sections: Vec<(usize, Vec<u8>)> = Vec::new();
        let nfeat: usize = h.features.iter().map(|w| w.count_ones() as usize).sum();
        if !unfinished && nfeat > 0 {
            let table_at = data_off + declared;
            let table_len = nfeat as u64 * 16;
            if !within((table_at, table_len), file_len) {
                warnings.push(format!(
                    "{}: the feature sections are missing (cut file?); event names, build ids and host details are unknown",
                    path.display()
                ));
            } else {
                let mut table = vec![0u8; table_len as usize];
                file.seek(SeekFrom::Start(table_at))
                    .and_then(|_| file.read_exact(&mut table))
                    .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
                let bits = (0..FEATURE_BITS).filter(|b| h.features[b / 64] >> (b % 64) & 1 == 1);
                // Byte ranges already spoken for: a feature section may not reuse them, so
                // the sections together never hold more than the file's size.
                let mut taken: Vec<(u64, u64)> = vec![
                    (0, HEADER_SIZE),
                    h.attrs,
                    (data_off, declared),
                    (table_at, table_len),
                ];
                for (i, bit) in bits.enumerate() {
                    let sec = (
                        rd_u64(&table[i * 16..], big),
                        rd_u64(&table[i * 16 + 8..], big),
                    );
                    let wanted = matches!(
                        bit,
                        feat::BUILD_ID
                            | feat::TRACING_DATA
                            | feat::HOSTNAME
                            | feat::OSRELEASE
                            | feat::VERSION
                            | feat::ARCH
                            | feat::NRCPUS
                            | feat::CPUDESC
                            | feat::CMDLINE
                            | feat::EVENT_DESC
                            | feat::RUPERF_ENERGY
                    );
                    if !wanted {
                        continue;
                    }
                    if !within(sec, file_len) {
                        warnings.push(format!(
                            "{}: feature section {bit} lies outside the file; ignoring it",
                            path.display()
                        ));
                        continue;
                    }
                    if sec.1 > feature_cap(bit) {
                        warnings.push(format!(
                            "{}: feature section {bit} claims {} bytes, more than such a section \
                             ever holds ({}); ignoring it",
                            path.display(),
                            sec.1,
                            feature_cap(bit)
                        ));
                        continue;
                    }
                    if let Some(other) = taken.iter().find(|t| overlaps(**t, sec)) {
                        warnings.push(format!(
                            "{}: feature section {bit} overlaps bytes {}..{} that another part \
                             of the file already holds; ignoring it",
                            path.display(),
                            other.0,
                            other.0 + other.1
                        ));
                        continue;
                    }
                    taken.push(sec);
                    let mut b = vec![0u8; sec.1 as usize];
                    file.seek(SeekFrom::Start(sec.0))
                        .and_then(|_| file.read_exact(&mut b))
                        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
                    sections.push((bit, b));
                }
            }
        }
        let section = |bit: usize| sections.iter().find(|s| s.0 == bit).map(|s| &s.1[..]);
        let string = |bit: usize| {
            section(bit)
                .and_then(|b| header_string(b, big))
                .map(|s| s.0)
        };

        let mut event_desc = section(feat::EVENT_DESC).map(|b| b.to_vec());
        if event_desc
            .as_deref()
            .is_some_and(|b| !event_desc_ok(b, big))
        {
            warnings.push(format!(
                "{}: the event description section is corrupted; event names are unknown",
                path.display()
            ));
            event_desc = None;
        }

        // The virtual file: the repaired header, the original bytes up to data_end, then the
        // tail: the feature table (EVENT_DESC only, which the crate looks for right after the
        // data), the EVENT_DESC bytes, and a copy of the attributes.
        let mut features = [0u64; 4];
        let mut tail = Vec::new();
        if let Some(desc) = &event_desc {
            features[feat::EVENT_DESC / 64] |= 1 << (feat::EVENT_DESC % 64);
            wr_u64(&mut tail, data_end + 16, big);
            wr_u64(&mut tail, desc.len() as u64, big);
            tail.extend_from_slice(desc);
        }
        let attrs_at = data_end + tail.len() as u64;
        tail.extend_from_slice(&attrs);
        let mut header = Vec::with_capacity(HEADER_SIZE as usize);
        header.extend_from_slice(&head[..8]);
        for v in [
            HEADER_SIZE,
            h.attr_size,
            attrs_at,
            h.attrs.1,
            data_off,
            data_end - data_off,
            0,
            0,
        ] {
            wr_u64(&mut header, v, big);
        }
        for w in features {
            wr_u64(&mut header, w, big);
        }

        let progress = Rc::new(Cell::new(0));
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let view = View {
            file: BufReader::with_capacity(file_len.clamp(64, 1 << 18) as usize, file),
            file_pos: 0,
            header,
            pass_end: data_end,
            tail,
            pos: 0,
            progress: progress.clone(),
        };
        let reader = PerfFileReader::parse_file(view).map_err(|e| {
            data_error(
                path,
                format!("cannot decode the event attributes: {e} (corrupted or unsupported file)"),
            )
        })?;

        let mut events = Vec::new();
        let mut fixed_period = Vec::new();
        let mut formats = Vec::new();
        let mut tails = Vec::new();
        let raw_attrs: Vec<(u32, u64)> = attrs
            .chunks(h.attr_size as usize)
            .map(|e| (rd_u32(e, big), rd_u64(&e[8..], big)))
            .collect();
        for (i, a) in reader.perf_file.event_attributes().iter().enumerate() {
            let attr = a.attributes();
            let (type_num, config) = raw_attrs.get(i).copied().unwrap_or((u32::MAX, 0));
            let (frequency, period) = match attr.sampling_policy {
                SamplingPolicy::Frequency(f) => (Some(f), None),
                SamplingPolicy::Period(p) => (None, Some(p.get())),
                SamplingPolicy::NoSampling => (None, None),
            };
            fixed_period.push(period.unwrap_or(1));
            formats.push((attr.sample_format.bits(), attr.read_format.bits()));
            tails.push(TailFormat {
                regs_mask: attr.sample_regs_user,
                branch_type: attr.branch_sample_format.bits(),
            });
            events.push(EventInfo {
                name: a
                    .name()
                    .map(str::to_owned)
                    .unwrap_or_else(|| default_event_name(type_num, config)),
                attr_type: type_num,
                config,
                callchain: attr.sample_format.contains(SampleFormat::CALLCHAIN),
                frequency,
                period,
            });
        }

        let cmdline = section(feat::CMDLINE)
            .map(|b| {
                let mut v = Vec::new();
                if b.len() >= 4 {
                    let n = rd_u32(b, big) as usize;
                    let mut pos = 4;
                    for _ in 0..n.min(b.len() / 4) {
                        match header_string(&b[pos..], big) {
                            Some((s, used)) => {
                                v.push(s);
                                pos += used;
                            }
                            None => break,
                        }
                    }
                }
                v
            })
            .unwrap_or_default();
        let nr_cpus = section(feat::NRCPUS)
            .filter(|b| b.len() >= 8)
            .map(|b| (rd_u32(&b[4..], big), rd_u32(b, big)));
        let meta = Meta {
            path: path.to_path_buf(),
            file_size: file_len,
            big_endian: big,
            events,
            hostname: string(feat::HOSTNAME),
            os_release: string(feat::OSRELEASE),
            perf_version: string(feat::VERSION),
            arch: string(feat::ARCH),
            nr_cpus,
            cpu_desc: string(feat::CPUDESC),
            cmdline,
            build_ids: section(feat::BUILD_ID)
                .map(|b| parse_build_ids(b, big))
                .unwrap_or_default(),
            energy: section(feat::RUPERF_ENERGY).map(<[u8]>::to_vec),
            data_size: data_end - data_off,
            truncated,
            tracing_data: section(feat::TRACING_DATA).map(|b| std::sync::Arc::new(b.to_vec())),
        };
        Ok(Recording {
            meta,
            warnings,
            reader,
            progress,
            data_start: data_off,
            fixed_period,
            formats,
            tails,
            chain: Vec::new(),
            regs: Vec::new(),
            max_stack: usize::MAX,
        })
    }

    /// Keeps at most `n` addresses of each sample's call chain (perf's `--max-stack`); the
    /// rest are skipped while decoding, so a very long chain costs nothing.
    pub fn set_max_stack(&mut self, n: usize) {
        self.max_stack = n;
    }

    /// Names the recording after where it came from (a pipe stream read through a spool
    /// file), with a warning about the stream if any.
    pub(crate) fn set_source(&mut self, path: &Path, warning: Option<String>) {
        self.meta.path = path.to_path_buf();
        self.warnings.extend(warning);
    }

    /// The sample_type of event `index` (0 when out of range).
    pub fn sample_type(&self, index: usize) -> u64 {
        self.formats.get(index).map_or(0, |f| f.0)
    }

    /// The file's description of itself.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Problems found so far that did not stop the reading (one line each).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A handle that reports how many bytes of the data section have been consumed, usable
    /// from inside [`Recording::for_each`]'s callback (for progress bars).
    pub fn progress(&self) -> Progress {
        Progress {
            seen: self.progress.clone(),
            start: self.data_start,
        }
    }

    /// Hands every record of the data section, in time order, to `f`. Records that cannot be
    /// decoded are counted and skipped; a failure of the stream itself (possible only with
    /// damaged compressed data) ends the reading with a warning, after the records before it.
    pub fn for_each(&mut self, mut f: impl FnMut(&Record<'_>)) -> ReadStats {
        let mut stats = ReadStats::default();
        let big = self.meta.big_endian;
        loop {
            let next = self
                .reader
                .record_iter
                .next_record(&mut self.reader.perf_file);
            let rec = match next {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    self.warnings.push(format!(
                        "{}: stopped reading at a damaged record ({e}); the report covers the records before it",
                        self.meta.path.display()
                    ));
                    self.meta.truncated = true;
                    break;
                }
            };
            let (attr_index, raw) = match rec {
                PerfFileRecord::EventRecord { attr_index, record } => (attr_index, record),
                PerfFileRecord::UserRecord(_) => {
                    stats.other_records += 1;
                    continue;
                }
            };
            if raw.record_type.0 == RECORD_LOST_SAMPLES {
                // struct { u64 lost; struct sample_id id; }
                let b = raw.data.as_slice();
                if b.len() >= 8 {
                    stats.records += 1;
                    f(&Record::LostSamples {
                        count: rd_u64(&b, big),
                    });
                } else {
                    stats.bad_records += 1;
                }
                continue;
            }
            if raw.record_type.0 == RECORD_SAMPLE {
                // Decoded here rather than by the crate, whose call-chain length arithmetic
                // can overflow on corrupted bytes.
                let body = raw.data.as_slice();
                let (st, rf) = self.formats.get(attr_index).copied().unwrap_or((0, 0));
                let Some(d) = decode_sample(&body, st, rf, big, self.max_stack, &mut self.chain)
                else {
                    stats.bad_records += 1;
                    continue;
                };
                let tail = self.tails.get(attr_index).copied().unwrap_or_default();
                let Some(user_stack) =
                    user_stack::decode(&body, d.end, st, tail, big, &mut self.regs)
                else {
                    stats.bad_records += 1;
                    continue;
                };
                let period = d
                    .period
                    .unwrap_or_else(|| self.fixed_period.get(attr_index).copied().unwrap_or(1));
                stats.records += 1;
                f(&Record::Sample(Sample {
                    event: attr_index,
                    pid: d.pid,
                    tid: d.tid,
                    time: d.time,
                    cpu: d.cpu,
                    period,
                    ip: d.ip,
                    kernel: matches!(raw.misc & 7, 1 | 4),
                    callchain: &self.chain,
                    user_regs: &self.regs,
                    regs_mask: tail.regs_mask,
                    user_stack,
                    addr: d.addr,
                    raw: body.get(d.raw.clone()).unwrap_or(&[]),
                }));
                continue;
            }
            let parsed = match raw.parse() {
                Ok(p) => p,
                Err(_) => {
                    stats.bad_records += 1;
                    continue;
                }
            };
            let out = match parsed {
                EventRecord::Comm(c) => Record::Comm {
                    pid: c.pid,
                    tid: c.tid,
                    name: raw_bytes(&c.name, &mut self.chain),
                    exec: c.is_execve,
                },
                EventRecord::Fork(r) => Record::Fork {
                    pid: r.pid,
                    ppid: r.ppid,
                    tid: r.tid,
                    ptid: r.ptid,
                },
                EventRecord::Exit(r) => Record::Exit {
                    pid: r.pid,
                    tid: r.tid,
                },
                EventRecord::Mmap(m) => Record::Mmap(Mmap {
                    pid: m.pid,
                    start: m.address,
                    len: m.length,
                    pgoff: m.page_offset,
                    path: raw_bytes(&m.path, &mut self.chain),
                    kernel: matches!(m.cpu_mode, CpuMode::Kernel | CpuMode::GuestKernel),
                    executable: m.is_executable,
                    build_id: None,
                }),
                EventRecord::Mmap2(m) => Record::Mmap(Mmap {
                    pid: m.pid,
                    start: m.address,
                    len: m.length,
                    pgoff: m.page_offset,
                    path: raw_bytes(&m.path, &mut self.chain),
                    kernel: matches!(m.cpu_mode, CpuMode::Kernel | CpuMode::GuestKernel),
                    executable: m.protection & 4 != 0,
                    build_id: match m.file_id {
                        Mmap2FileId::BuildId(b) => Some(b),
                        Mmap2FileId::InodeAndVersion(_) => None,
                    },
                }),
                EventRecord::Lost(l) => Record::Lost { count: l.count },
                _ => {
                    stats.other_records += 1;
                    continue;
                }
            };
            stats.records += 1;
            f(&out);
        }
        stats
    }
}

/// The fields of a sample this reader uses.
#[derive(Debug, Default)]
struct Decoded {
    ip: u64,
    pid: i32,
    tid: i32,
    time: u64,
    cpu: Option<u32>,
    period: Option<u64>,
    /// Where the fields after the call chain start.
    end: usize,
    addr: u64,
    raw: std::ops::Range<usize>,
}

/// Decodes a PERF_RECORD_SAMPLE body up to its call chain (into `chain`, at most `max_stack`
/// addresses besides context markers); `None` when the body is shorter than its sample_type
/// says.
fn decode_sample(
    b: &[u8],
    st: u64,
    rf: u64,
    big: bool,
    max_stack: usize,
    chain: &mut Vec<u64>,
) -> Option<Decoded> {
    let mut pos = 0usize;
    let u64_at = |pos: &mut usize| -> Option<u64> {
        let v = b.get(*pos..*pos + 8).map(|s| rd_u64(s, big))?;
        *pos += 8;
        Some(v)
    };
    let mut d = Decoded {
        pid: -1,
        tid: -1,
        ..Default::default()
    };
    let has = |bit: u64| st & bit != 0;
    if has(1 << 16) {
        u64_at(&mut pos)?; // IDENTIFIER
    }
    if has(1) {
        d.ip = u64_at(&mut pos)?;
    }
    if has(2) {
        let s = b.get(pos..pos + 8)?;
        d.pid = rd_u32(s, big) as i32;
        d.tid = rd_u32(&s[4..], big) as i32;
        pos += 8;
    }
    if has(4) {
        d.time = u64_at(&mut pos)?;
    }
    if has(8) {
        d.addr = u64_at(&mut pos)?;
    }
    if has(0x40) {
        u64_at(&mut pos)?; // ID
    }
    if has(0x200) {
        u64_at(&mut pos)?; // STREAM_ID
    }
    if has(0x80) {
        let s = b.get(pos..pos + 8)?;
        d.cpu = Some(rd_u32(s, big));
        pos += 8;
    }
    if has(0x100) {
        d.period = Some(u64_at(&mut pos)?);
    }
    if has(0x10) {
        // READ: one value, or a group of `nr` values, each with optional id and lost.
        let per_value = 1 + u64::from(rf & 4 != 0) + u64::from(rf & 16 != 0);
        let times = u64::from(rf & 1 != 0) + u64::from(rf & 2 != 0);
        let words = if rf & 8 != 0 {
            let nr = u64_at(&mut pos)?;
            nr.checked_mul(per_value)?.checked_add(times)?
        } else {
            per_value + times
        };
        let bytes = usize::try_from(words.checked_mul(8)?).ok()?;
        pos = pos.checked_add(bytes).filter(|&p| p <= b.len())?;
    }
    chain.clear();
    if has(0x20) {
        let nr = u64_at(&mut pos)?;
        let bytes = usize::try_from(nr.checked_mul(8)?).ok()?;
        let s = b.get(pos..pos.checked_add(bytes)?)?;
        let mut kept = 0usize;
        for c in s.chunks_exact(8) {
            let v = rd_u64(c, big);
            if v < CONTEXT_MAX {
                if kept == max_stack {
                    break;
                }
                kept += 1;
            }
            chain.push(v);
        }
        pos += bytes;
    }
    if has(0x400) {
        // RAW: u32 size, then the bytes (padded so the record stays 8-byte aligned).
        let n = rd_u32(b.get(pos..pos + 4)?, big) as usize;
        let start = pos + 4;
        if start.checked_add(n)? <= b.len() {
            d.raw = start..start + n;
        }
    }
    d.end = pos;
    Some(d)
}

/// Reports how far the reading has got; see [`Recording::progress`].
#[derive(Debug, Clone)]
pub struct Progress {
    seen: Rc<Cell<u64>>,
    start: u64,
}

impl Progress {
    /// Bytes of the data section consumed so far.
    pub fn bytes(&self) -> u64 {
        self.seen.get().saturating_sub(self.start)
    }
}

/// The bytes of `raw`, borrowed when contiguous (always, for file records) and copied into
/// `scratch` otherwise.
fn raw_bytes<'a>(raw: &RawData<'a>, scratch: &'a mut Vec<u64>) -> &'a [u8] {
    match raw {
        RawData::Single(b) => b,
        RawData::Split(a, _) => {
            // Never produced when reading files; keep the first part rather than copy.
            let _ = scratch;
            a
        }
    }
}

/// The name perf gives an event that the file does not name.
fn default_event_name(attr_type: u32, config: u64) -> String {
    const SOFTWARE: [&str; 12] = [
        "cpu-clock",
        "task-clock",
        "page-faults",
        "context-switches",
        "cpu-migrations",
        "minor-faults",
        "major-faults",
        "alignment-faults",
        "emulation-faults",
        "dummy",
        "bpf-output",
        "cgroup-switches",
    ];
    const HARDWARE: [&str; 10] = [
        "cycles",
        "instructions",
        "cache-references",
        "cache-misses",
        "branches",
        "branch-misses",
        "bus-cycles",
        "stalled-cycles-frontend",
        "stalled-cycles-backend",
        "ref-cycles",
    ];
    match attr_type {
        0 => HARDWARE
            .get(config as usize)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("hardware:{config:#x}")),
        1 => SOFTWARE
            .get(config as usize)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("software:{config:#x}")),
        2 => format!("tracepoint:{config}"),
        4 => format!("r{config:x}"),
        t => format!("type{t}/config={config:#x}/"),
    }
}

/// Builders of small perf.data files for tests (here and in the report modules).
#[cfg(test)]
pub(crate) mod fixture {
    /// Little- or big-endian byte writer.
    pub struct W {
        pub big: bool,
        pub b: Vec<u8>,
    }

    impl W {
        pub fn new(big: bool) -> Self {
            W { big, b: Vec::new() }
        }
        fn put(&mut self, le: &[u8], be: &[u8]) -> &mut Self {
            self.b.extend_from_slice(if self.big { be } else { le });
            self
        }
        pub fn u16(&mut self, v: u16) -> &mut Self {
            self.put(&v.to_le_bytes(), &v.to_be_bytes())
        }
        pub fn u32(&mut self, v: u32) -> &mut Self {
            self.put(&v.to_le_bytes(), &v.to_be_bytes())
        }
        pub fn u64(&mut self, v: u64) -> &mut Self {
            self.put(&v.to_le_bytes(), &v.to_be_bytes())
        }
        pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
            self.b.extend_from_slice(v);
            self
        }
        /// A NUL-terminated string padded to 8 bytes.
        pub fn cstr8(&mut self, s: &str) -> &mut Self {
            self.b.extend_from_slice(s.as_bytes());
            let pad = 8 - s.len() % 8;
            self.b.extend(std::iter::repeat_n(0, pad));
            self
        }
    }

    /// sample_type: IP | TID | TIME | CALLCHAIN | PERIOD.
    pub const SAMPLE_TYPE: u64 = 0x1 | 0x2 | 0x4 | 0x20 | 0x100;

    fn attr(big: bool) -> Vec<u8> {
        let mut w = W::new(big);
        w.u32(1).u32(128).u64(0); // software, size, cpu-clock
        w.u64(4000).u64(SAMPLE_TYPE).u64(0);
        w.u64((1 << 8) | (1 << 9) | (1 << 10)); // mmap, comm, freq
        while w.b.len() < 128 {
            w.b.push(0);
        }
        w.b
    }

    fn record(big: bool, ty: u32, misc: u16, body: &[u8]) -> Vec<u8> {
        let mut w = W::new(big);
        w.u32(ty).u16(misc).u16(8 + body.len() as u16).bytes(body);
        w.b
    }

    /// The data section: COMM and MMAP for pid 42, `n` samples with 3-frame call chains
    /// (one kernel frame), and FINISHED_ROUND records.
    pub fn data(big: bool, n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut c = W::new(big);
        c.u32(42).u32(42).cstr8("hotprog");
        out.extend(record(big, 3, 0, &c.b));
        let mut m = W::new(big);
        m.u32(42)
            .u32(42)
            .u64(0x400000)
            .u64(0x1000)
            .u64(0)
            .cstr8("/nonexistent/hotprog");
        out.extend(record(big, 1, 2, &m.b));
        for i in 0..n {
            let mut s = W::new(big);
            let ip = 0x400100 + (i % 3) * 0x10;
            s.u64(ip).u32(42).u32(42).u64(1000 + i).u64(250_000);
            s.u64(5)
                .u64((-128i64) as u64)
                .u64(0xffff_ffff_8100_0000)
                .u64((-512i64) as u64)
                .u64(ip)
                .u64(0x400800);
            out.extend(record(big, 9, 2, &s.b));
            if i % 4 == 3 {
                out.extend(record(big, 68, 0, &[]));
            }
        }
        let mut l = W::new(big);
        l.u64(7).u64(3);
        out.extend(record(big, 2, 0, &l.b));
        out
    }

    /// A whole perf.data file with `n` samples; `data_size` overrides the header's data size.
    pub fn file(big: bool, n: u64, data_size: Option<u64>) -> Vec<u8> {
        file_from(big, &data(big, n), data_size)
    }

    /// An MMAP2 record carrying a build id whose size byte says `id_size`.
    pub fn mmap2_build_id(big: bool, id_size: u8) -> Vec<u8> {
        let mut m = W::new(big);
        m.u32(42).u32(42).u64(0x500000).u64(0x1000).u64(0);
        m.bytes(&[id_size, 0, 0, 0]).bytes(&[0xab; 20]);
        m.u32(5).u32(2).cstr8("/nonexistent/lib.so");
        record(big, 10, 2 | (1 << 14), &m.b)
    }

    /// A whole perf.data file around the data section `data`.
    pub fn file_from(big: bool, data: &[u8], data_size: Option<u64>) -> Vec<u8> {
        let attr = attr(big);
        let attrs_at = 104u64;
        let data_at = attrs_at + 144;
        let data_end = data_at + data.len() as u64;
        // Feature sections: HOSTNAME (3) and EVENT_DESC (12).
        let mut host = W::new(big);
        host.u32(8).bytes(b"testhost");
        let mut desc = W::new(big);
        desc.u32(1).u32(128).bytes(&attr).u32(1).u32(16);
        desc.bytes(b"cpu-clock:ppp\0\0\0").u64(7);
        let table_at = data_end;
        let host_at = table_at + 32;
        let desc_at = host_at + host.b.len() as u64;
        let mut w = W::new(big);
        w.bytes(if big { b"2ELIFREP" } else { b"PERFILE2" });
        w.u64(104).u64(144);
        w.u64(attrs_at).u64(144);
        w.u64(data_at).u64(data_size.unwrap_or(data.len() as u64));
        w.u64(0).u64(0);
        w.u64((1 << 3) | (1 << 12)).u64(0).u64(0).u64(0);
        w.bytes(&attr).u64(0).u64(0);
        w.bytes(data);
        w.u64(host_at).u64(host.b.len() as u64);
        w.u64(desc_at).u64(desc.b.len() as u64);
        w.bytes(&host.b).bytes(&desc.b);
        w.b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ruperf-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        // Overwrite in place rather than truncate to zero: ext4 flushes files that are
        // truncated and rewritten, which would make these thousands of small writes slow.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&p)
            .unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f.set_len(bytes.len() as u64).unwrap();
        p
    }

    #[derive(Debug, Default, PartialEq)]
    struct Seen {
        samples: u64,
        comms: Vec<String>,
        mmaps: u64,
        lost: u64,
        chain_len: usize,
        period: u64,
    }

    fn read_all(p: &Path) -> Result<(Seen, Vec<String>, Meta)> {
        let mut r = Recording::open(p)?;
        let mut seen = Seen::default();
        r.for_each(|rec| match rec {
            Record::Sample(s) => {
                seen.samples += 1;
                seen.period += s.period;
                seen.chain_len = seen.chain_len.max(s.callchain.len());
            }
            Record::Comm { name, .. } => seen.comms.push(String::from_utf8_lossy(name).into()),
            Record::Mmap(_) => seen.mmaps += 1,
            Record::Lost { count } => seen.lost += count,
            _ => {}
        });
        Ok((seen, r.warnings().to_vec(), r.meta().clone()))
    }

    #[test]
    fn reads_both_endiannesses_alike() {
        for big in [false, true] {
            let p = scratch(&format!("ok-{big}"), &fixture::file(big, 10, None));
            let (seen, warnings, meta) = read_all(&p).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(meta.big_endian, big);
            assert_eq!(meta.events.len(), 1);
            assert_eq!(meta.events[0].name, "cpu-clock:ppp");
            assert!(meta.events[0].callchain);
            assert_eq!(meta.hostname.as_deref(), Some("testhost"));
            assert_eq!(seen.samples, 10);
            assert_eq!(seen.period, 2_500_000);
            assert_eq!(seen.comms, vec!["hotprog".to_string()]);
            assert_eq!(seen.mmaps, 1);
            assert_eq!(seen.lost, 3);
            assert_eq!(seen.chain_len, 5);
            assert!(!meta.truncated);
        }
    }

    #[test]
    fn unfinished_header_reads_to_last_complete_record() {
        // A killed recorder leaves data size 0 and no feature sections.
        let full = fixture::file(false, 10, Some(0));
        let data_end = full.len() - 32 - 12 - (8 + 128 + 8 + 16 + 8);
        let cut = &full[..data_end - 5];
        let p = scratch("killed", cut);
        let (seen, warnings, meta) = read_all(&p).unwrap();
        assert!(meta.truncated);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("cut short"), "{warnings:?}");
        // The last record (LOST) is incomplete; all samples are there.
        assert_eq!(seen.samples, 10);
        assert_eq!(seen.lost, 0);
        // Data size larger than the file: the same.
        let p = scratch("oversized", &fixture::file(false, 10, Some(1 << 40)));
        let (seen, warnings, _) = read_all(&p).unwrap();
        assert_eq!(seen.samples, 10);
        assert!(!warnings.is_empty());
    }

    #[test]
    fn not_perf_data_and_missing_file() {
        let p = scratch("text", b"hello, this is not a perf.data file at all");
        let e = Recording::open(&p).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::DATAERR);
        assert!(e.to_string().contains("not a perf.data file"), "{e}");
        let e = Recording::open(Path::new("/nonexistent/perf.data")).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::NOINPUT);
        assert!(e.to_string().contains("ruperf record"), "{e}");
        let mut v1 = fixture::file(false, 1, None);
        v1[..8].copy_from_slice(b"PERFFILE");
        let e = Recording::open(&scratch("v1", &v1)).unwrap_err();
        assert!(e.to_string().contains("version 1"), "{e}");
    }

    /// Opening and reading must end in a result or an error for any bytes: never a panic, a
    /// hang or an allocation beyond the file's size.
    fn survives(name: &str, bytes: &[u8]) -> Option<Seen> {
        let p = scratch(name, bytes);
        read_all(&p).ok().map(|r| r.0)
    }

    #[test]
    fn an_mmap2_build_id_longer_than_20_bytes_is_a_corrupt_record_not_an_abort() {
        let mut data = fixture::data(false, 3);
        data.extend(fixture::mmap2_build_id(false, 20));
        let (seen, warnings, _) = read_all(&scratch(
            "mmap2-20",
            &fixture::file_from(false, &data, None),
        ))
        .unwrap();
        assert_eq!(seen.mmaps, 2, "a 20-byte build id is valid");
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut data = fixture::data(false, 3);
        data.extend(fixture::mmap2_build_id(false, 21));
        data.extend(fixture::data(false, 2));
        let (seen, warnings, meta) = read_all(&scratch(
            "mmap2-21",
            &fixture::file_from(false, &data, None),
        ))
        .unwrap();
        assert_eq!(seen.samples, 3, "the records before the bad one are read");
        assert!(meta.truncated);
        assert!(warnings[0].contains("corrupted record"), "{warnings:?}");
    }

    #[test]
    fn feature_sections_pointing_at_the_whole_file_are_ignored() {
        let mut f = fixture::file(false, 4, None);
        let len = f.len() as u64;
        // The table's two entries (HOSTNAME, EVENT_DESC) sit 32 bytes before their contents.
        let host_len = 4 + 8;
        let desc_len = 4 + 4 + 128 + 4 + 4 + 16 + 8;
        let table_at = f.len() - desc_len - host_len - 32;
        for entry in 0..2 {
            let at = table_at + entry * 16;
            f[at..at + 8].copy_from_slice(&0u64.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&len.to_le_bytes());
        }
        let (seen, warnings, meta) = read_all(&scratch("whole-file-features", &f)).unwrap();
        assert_eq!(seen.samples, 4, "the data is still read");
        assert_eq!(meta.hostname, None);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings
            .iter()
            .all(|w| w.contains("overlaps") || w.contains("claims")));
        // Two sections sharing bytes: the first is kept, the second ignored.
        let mut g = fixture::file(false, 4, None);
        let host_at = (table_at + 32) as u64;
        g[table_at + 16..table_at + 24].copy_from_slice(&host_at.to_le_bytes());
        g[table_at + 24..table_at + 32].copy_from_slice(&(host_len as u64).to_le_bytes());
        let (_, warnings, meta) = read_all(&scratch("shared-features", &g)).unwrap();
        assert_eq!(meta.hostname.as_deref(), Some("testhost"));
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("feature section 12 overlaps")),
            "{warnings:?}"
        );
    }

    #[test]
    fn every_truncation_is_an_error_or_a_partial_read() {
        for big in [false, true] {
            let full = fixture::file(big, 6, None);
            for cut in 0..full.len() {
                if let Some(seen) = survives("trunc", &full[..cut]) {
                    assert!(seen.samples <= 6, "cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn every_bit_flip_is_survived() {
        let full = fixture::file(false, 4, None);
        for bit in 0..full.len() * 8 {
            let mut b = full.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            if let Some(seen) = survives("flip", &b) {
                assert!(seen.samples <= 8, "bit {bit}");
            }
        }
    }

    #[test]
    fn random_bytes_are_survived() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let template = fixture::file(false, 4, None);
        for round in 0..1500 {
            let len = (next() % 700) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of them look like perf.data: a valid magic and header size, or the whole
            // template with a random run of bytes overwritten (hits length fields).
            if round % 2 == 0 && b.len() >= 16 {
                b[..8].copy_from_slice(b"PERFILE2");
                b[8..16].copy_from_slice(&104u64.to_le_bytes());
            }
            if round % 3 == 0 {
                b = template.clone();
                let at = (next() as usize) % b.len();
                let n = 1 + (next() as usize) % 16;
                for i in at..(at + n).min(b.len()) {
                    b[i] = next() as u8;
                }
            }
            survives("random", &b);
        }
    }
}
