//! Writing perf.data files that perf's own tools read.
//!
//! Layout: the 104-byte header, each event's u64 sample ids, the attribute section, the data
//! section (records appended as they are drained), then the feature index and feature bodies.
//! The header is written first with a data size of 0 and rewritten in place after every
//! committed chunk, so a recording that is killed or runs out of disk still has a header
//! that covers every complete record written before the last commit.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use crate::os::ring;
use crate::os::sys::ATTR_SIZE_VER7;

/// Size of the perf.data file header.
pub const HEADER_SIZE: u64 = 104;
/// Byte offset of the data section's size field in the header.
const DATA_SIZE_OFFSET: u64 = 48;
/// Size of one entry of the attribute section: the attr plus the section of its ids.
pub const FILE_ATTR_SIZE: u64 = ATTR_SIZE_VER7 as u64 + 16;

/// One event as stored in the file.
#[derive(Debug, Clone)]
pub struct FileAttr {
    /// The perf_event_attr bytes, 128 long, `size` field = 128.
    pub attr: [u8; ATTR_SIZE_VER7 as usize],
    /// Kernel ids of the event's instances (what PERF_SAMPLE_IDENTIFIER reports).
    pub ids: Vec<u64>,
}

/// The fixed fields of a perf.data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Where the attribute section starts.
    pub attrs_offset: u64,
    /// Its size in bytes.
    pub attrs_size: u64,
    /// Where the data section starts.
    pub data_offset: u64,
    /// Its size in bytes.
    pub data_size: u64,
    /// HEADER_* feature bits present after the data.
    pub features: [u64; 4],
}

impl Header {
    /// The 104 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE as usize] {
        let mut b = [0u8; HEADER_SIZE as usize];
        b[0..8].copy_from_slice(b"PERFILE2");
        let words = [
            HEADER_SIZE,
            FILE_ATTR_SIZE,
            self.attrs_offset,
            self.attrs_size,
            self.data_offset,
            self.data_size,
            0, // event_types offset (unused)
            0, // event_types size
            self.features[0],
            self.features[1],
            self.features[2],
            self.features[3],
        ];
        for (i, w) in words.iter().enumerate() {
            b[8 + i * 8..16 + i * 8].copy_from_slice(&w.to_ne_bytes());
        }
        b
    }
}

/// An open perf.data file receiving records.
#[derive(Debug)]
pub struct Writer {
    file: File,
    header: Header,
    /// Data bytes written and known to end on a record boundary.
    data_size: u64,
    /// Pipe mode: a stream with no header to rewrite (see [`crate::perfdata::pipe`]).
    pipe: bool,
}

impl Writer {
    /// Writes the header (data size 0), the ids and the attribute section to `file`, which
    /// must be empty, and positions it at the start of the data section.
    pub fn new(mut file: File, attrs: &[FileAttr]) -> io::Result<Writer> {
        let mut head = vec![0u8; HEADER_SIZE as usize];
        let mut id_sections = Vec::with_capacity(attrs.len());
        for a in attrs {
            let off = head.len() as u64;
            for id in &a.ids {
                head.extend_from_slice(&id.to_ne_bytes());
            }
            id_sections.push((off, a.ids.len() as u64 * 8));
        }
        let attrs_offset = head.len() as u64;
        for (a, (off, size)) in attrs.iter().zip(&id_sections) {
            head.extend_from_slice(&a.attr);
            head.extend_from_slice(&off.to_ne_bytes());
            head.extend_from_slice(&size.to_ne_bytes());
        }
        let header = Header {
            attrs_offset,
            attrs_size: attrs.len() as u64 * FILE_ATTR_SIZE,
            data_offset: head.len() as u64,
            data_size: 0,
            features: [0; 4],
        };
        head[..HEADER_SIZE as usize].copy_from_slice(&header.to_bytes());
        file.write_all(&head)?;
        Ok(Writer {
            file,
            header,
            data_size: 0,
            pipe: false,
        })
    }

    /// A pipe-mode stream on `file` (standard output): writes `start` (the pipe header and
    /// the attribute, name and tracing-data records) at once; feature sections follow the
    /// records at [`Writer::finish`].
    pub fn new_pipe(mut file: File, start: &[u8]) -> io::Result<Writer> {
        file.write_all(start)?;
        Ok(Writer {
            file,
            header: Header {
                data_offset: start.len() as u64,
                ..Header::default()
            },
            data_size: 0,
            pipe: true,
        })
    }

    /// Bytes of data written so far.
    pub fn data_size(&self) -> u64 {
        self.data_size
    }

    /// Total bytes in the file so far.
    pub fn file_size(&self) -> u64 {
        self.header.data_offset + self.data_size
    }

    /// Appends whole records. On failure (e.g. a full disk) the file is cut back to the end
    /// of the previous chunk, so it never ends inside a record, and the error is returned.
    ///
    /// When the whole chunk does not fit, as many leading records as fit are kept (and
    /// included in the data size), so a full disk loses as little as possible.
    pub fn append(&mut self, records: &[u8]) -> io::Result<()> {
        let Err(e) = self.file.write_all(records) else {
            self.data_size += records.len() as u64;
            return Ok(());
        };
        let _ = self.file.set_len(self.file_size());
        let _ = self.file.seek(SeekFrom::End(0));
        for r in ring::records(records) {
            if self.file.write_all(r.bytes).is_err() {
                let _ = self.file.set_len(self.file_size());
                break;
            }
            self.data_size += r.bytes.len() as u64;
        }
        Err(e)
    }

    /// Records the current data size in the header, so readers see everything appended.
    /// Rewrites bytes that already exist: this works on a full disk too.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.pipe || self.header.data_size == self.data_size {
            return Ok(());
        }
        self.file
            .write_all_at(&self.data_size.to_ne_bytes(), DATA_SIZE_OFFSET)?;
        self.header.data_size = self.data_size;
        Ok(())
    }

    /// Appends the feature sections (bit, body) after the data and writes the final header.
    /// On failure the features are dropped and the header still covers all the data.
    pub fn finish(mut self, features: &[(u32, Vec<u8>)]) -> io::Result<u64> {
        if self.pipe {
            let tail = crate::perfdata::pipe::feature_records(features);
            self.file.write_all(&tail)?;
            return Ok(self.file_size() + tail.len() as u64);
        }
        self.commit()?;
        let mut feats: Vec<&(u32, Vec<u8>)> = features.iter().collect();
        feats.sort_by_key(|(bit, _)| *bit);
        let data_end = self.file_size();
        let index_size = feats.len() as u64 * 16;
        let mut index = Vec::with_capacity(index_size as usize);
        let mut off = data_end + index_size;
        let mut bits = [0u64; 4];
        for (bit, body) in &feats {
            index.extend_from_slice(&off.to_ne_bytes());
            index.extend_from_slice(&(body.len() as u64).to_ne_bytes());
            off += body.len() as u64;
            bits[(*bit / 64) as usize] |= 1 << (bit % 64);
        }
        let mut tail = index;
        for (_, body) in &feats {
            tail.extend_from_slice(body);
        }
        if let Err(e) = self.file.write_all(&tail).and_then(|_| self.file.flush()) {
            let _ = self.file.set_len(data_end);
            return Err(e);
        }
        self.header.features = bits;
        self.file.write_all_at(&self.header.to_bytes(), 0)?;
        Ok(data_end + tail.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(n: u8) -> FileAttr {
        let mut a = [0u8; 128];
        a[0] = n;
        a[4] = 128;
        FileAttr {
            attr: a,
            ids: vec![10 + n as u64, 20 + n as u64],
        }
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
    }

    #[test]
    fn layout_header_ids_attrs_data_features() {
        let path = std::env::temp_dir().join(format!("ruperf-w-{}", std::process::id()));
        let f = File::create(&path).unwrap();
        let mut w = Writer::new(f, &[attr(1), attr(2)]).unwrap();
        // Before any commit, a reader sees an empty data section.
        let b = std::fs::read(&path).unwrap();
        assert_eq!(&b[0..8], b"PERFILE2");
        assert_eq!(u64_at(&b, 8), 104);
        assert_eq!(u64_at(&b, 16), 144);
        assert_eq!(u64_at(&b, 48), 0);
        w.append(&[7u8; 16]).unwrap();
        w.commit().unwrap();
        w.append(&[8u8; 8]).unwrap();
        let b = std::fs::read(&path).unwrap();
        assert_eq!(u64_at(&b, 48), 16, "only committed data is announced");
        let total = w
            .finish(&[(6, b"arch".to_vec()), (3, b"host".to_vec())])
            .unwrap();
        let b = std::fs::read(&path).unwrap();
        assert_eq!(b.len() as u64, total);
        // ids of attr 1 right after the header, then attr 2's
        assert_eq!(u64_at(&b, 104), 11);
        assert_eq!(u64_at(&b, 112), 21);
        assert_eq!(u64_at(&b, 120), 12);
        let attrs_off = u64_at(&b, 24) as usize;
        assert_eq!(attrs_off, 136);
        assert_eq!(u64_at(&b, 32), 288);
        assert_eq!(b[attrs_off], 1);
        assert_eq!(u64_at(&b, attrs_off + 128), 104);
        assert_eq!(u64_at(&b, attrs_off + 136), 16);
        assert_eq!(b[attrs_off + 144], 2);
        let data_off = u64_at(&b, 40) as usize;
        assert_eq!(data_off, attrs_off + 288);
        assert_eq!(u64_at(&b, 48), 24);
        assert_eq!(u64_at(&b, 72), (1 << 3) | (1 << 6));
        // Index in ascending bit order: HOSTNAME (3) first.
        let idx = data_off + 24;
        let host_off = u64_at(&b, idx) as usize;
        assert_eq!(&b[host_off..host_off + 4], b"host");
        let arch_off = u64_at(&b, idx + 16) as usize;
        assert_eq!(&b[arch_off..arch_off + 4], b"arch");
        std::fs::remove_file(&path).unwrap();
    }
}
