//! perf's pipe format (`perf record -o -`, `perf report -i -`).
//!
//! A 16-byte header (`PERFILE2`, size 16) and then records only: the attributes travel as
//! HEADER_ATTR (64) records, event names as EVENT_UPDATE (78) NAME records, the tracing data
//! as a HEADER_TRACING_DATA (66) record *followed by* the section's bytes (padded to 8), build
//! ids as HEADER_BUILD_ID (67) records, and feature sections as HEADER_FEATURE (80) records
//! (perf's `util/header.c`, `util/synthetic-events.c`).
//!
//! Writing: [`header_records`] builds what precedes the kernel's records and
//! [`feature_records`] what ends the stream. Reading: [`spool`] turns a stream into an
//! ordinary perf.data file (on disk, so memory stays bounded), which the reader then checks
//! and reads like any other.

use std::io::{self, Read};

use super::features;
use super::writer::{FileAttr, Writer};

/// perf_pipe_file_header: magic and size (16).
pub fn file_header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(b"PERFILE2");
    h[8..].copy_from_slice(&16u64.to_ne_bytes());
    h
}

const HEADER_ATTR: u32 = 64;
const HEADER_TRACING_DATA: u32 = 66;
const HEADER_BUILD_ID: u32 = 67;
const EVENT_UPDATE: u32 = 78;
const HEADER_FEATURE: u32 = 80;
/// PERF_EVENT_UPDATE__NAME.
const UPDATE_NAME: u64 = 2;

fn record(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let size = 8 + body.len();
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&(size as u16).to_ne_bytes());
    out.extend_from_slice(body);
}

fn pad8(v: &mut Vec<u8>) {
    v.resize(v.len().div_ceil(8) * 8, 0);
}

/// The stream's start: header, one HEADER_ATTR and one EVENT_UPDATE name per event, and the
/// tracing data when there are tracepoints.
pub fn header_records(attrs: &[FileAttr], names: &[&str], tracing: Option<&[u8]>) -> Vec<u8> {
    let mut out = file_header().to_vec();
    for (a, name) in attrs.iter().zip(names) {
        let mut body = a.attr.to_vec();
        for id in &a.ids {
            body.extend_from_slice(&id.to_ne_bytes());
        }
        record(&mut out, HEADER_ATTR, &body);
        if let Some(&id) = a.ids.first() {
            let mut u = UPDATE_NAME.to_ne_bytes().to_vec();
            u.extend_from_slice(&id.to_ne_bytes());
            u.extend_from_slice(name.as_bytes());
            u.push(0);
            pad8(&mut u);
            record(&mut out, EVENT_UPDATE, &u);
        }
    }
    if let Some(td) = tracing {
        let aligned = td.len().div_ceil(8) * 8;
        let mut body = (aligned as u32).to_ne_bytes().to_vec();
        body.extend_from_slice(&[0u8; 4]);
        record(&mut out, HEADER_TRACING_DATA, &body);
        out.extend_from_slice(td);
        out.resize(out.len() + aligned - td.len(), 0);
    }
    out
}

/// The stream's end: build ids as HEADER_BUILD_ID records and the other feature sections as
/// HEADER_FEATURE records (tracing data and event descriptions travel earlier).
pub fn feature_records(features: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (bit, body) in features {
        match *bit {
            features::TRACING_DATA | features::EVENT_DESC => {}
            features::BUILD_ID => {
                // Already a sequence of build_id records; give each its record type.
                let mut pos = 0;
                while pos + 8 <= body.len() {
                    let size = u16::from_ne_bytes([body[pos + 6], body[pos + 7]]) as usize;
                    if size < 8 || pos + size > body.len() {
                        break;
                    }
                    let mut r = body[pos..pos + size].to_vec();
                    r[..4].copy_from_slice(&HEADER_BUILD_ID.to_ne_bytes());
                    out.extend_from_slice(&r);
                    pos += size;
                }
            }
            b => {
                let mut f = u64::from(b).to_ne_bytes().to_vec();
                f.extend_from_slice(body);
                pad8(&mut f);
                if f.len() + 8 <= u16::MAX as usize {
                    record(&mut out, HEADER_FEATURE, &f);
                }
            }
        }
    }
    out
}

/// True when `head` (at least 16 bytes) starts a pipe-mode stream.
pub fn is_pipe_header(head: &[u8]) -> bool {
    head.len() >= 16
        && &head[..8] == b"PERFILE2"
        && u64::from_le_bytes(head[8..16].try_into().unwrap_or([0; 8])) == 16
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean end of stream before the first.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(invalid("the stream ends inside a record")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// What a pipe stream carried besides its records.
#[derive(Debug, Default)]
pub struct Spooled {
    /// Records read.
    pub records: u64,
    /// True when the stream ended inside a record (the records before it are kept).
    pub cut: bool,
}

struct Meta {
    attrs: Vec<FileAttr>,
    names: Vec<(u64, String)>,
    features: Vec<(u32, Vec<u8>)>,
    build_ids: Vec<u8>,
}

fn header_attr(body: &[u8]) -> Option<FileAttr> {
    let size = u32::from_ne_bytes(body.get(4..8)?.try_into().ok()?) as usize;
    if !(64..=body.len()).contains(&size) {
        return None;
    }
    let mut attr = [0u8; 128];
    let keep = size.min(128);
    attr[..keep].copy_from_slice(&body[..keep]);
    attr[4..8].copy_from_slice(&(keep as u32).to_ne_bytes());
    let ids = body[size..]
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    Some(FileAttr { attr, ids })
}

/// Handles one user record of the stream's metadata; false when it is an ordinary record.
fn take_meta(m: &mut Meta, kind: u32, whole: &[u8], r: &mut dyn Read) -> io::Result<bool> {
    let body = &whole[8..];
    match kind {
        HEADER_ATTR => {
            let a =
                header_attr(body).ok_or_else(|| invalid("a HEADER_ATTR record is malformed"))?;
            m.attrs.push(a);
        }
        HEADER_TRACING_DATA => {
            let size = u32::from_ne_bytes(
                body.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| invalid("a HEADER_TRACING_DATA record is malformed"))?,
            ) as usize;
            if size > 256 << 20 {
                return Err(invalid("the tracing data is implausibly large"));
            }
            let mut td = vec![0u8; size];
            if !read_full(r, &mut td)? {
                return Err(invalid("the stream ends inside the tracing data"));
            }
            m.features.push((features::TRACING_DATA, td));
        }
        HEADER_BUILD_ID => {
            let mut b = whole.to_vec();
            b[..4].copy_from_slice(&0u32.to_ne_bytes());
            m.build_ids.extend_from_slice(&b);
        }
        HEADER_FEATURE => {
            if body.len() >= 8 {
                let bit = u64::from_ne_bytes(body[..8].try_into().unwrap_or([0; 8]));
                if bit < 256 {
                    m.features.push((bit as u32, body[8..].to_vec()));
                }
            }
        }
        EVENT_UPDATE => {
            if body.len() >= 16
                && u64::from_ne_bytes(body[..8].try_into().unwrap_or([0; 8])) == UPDATE_NAME
            {
                let id = u64::from_ne_bytes(body[8..16].try_into().unwrap_or([0; 8]));
                let raw = &body[16..];
                let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
                m.names
                    .push((id, String::from_utf8_lossy(&raw[..end]).into_owned()));
            }
        }
        65 => {} // HEADER_EVENT_TYPE: obsolete
        _ => return Ok(false),
    }
    Ok(true)
}

/// Copies the pipe stream `r` (after its 16-byte header) into `out` as a perf.data file.
pub fn spool(r: &mut dyn Read, out: std::fs::File) -> io::Result<Spooled> {
    let mut m = Meta {
        attrs: Vec::new(),
        names: Vec::new(),
        features: Vec::new(),
        build_ids: Vec::new(),
    };
    let mut data = Vec::with_capacity(1 << 20);
    let mut spooled = Spooled::default();
    let mut writer: Option<Writer> = None;
    let mut file = Some(out);
    let mut head = [0u8; 8];
    loop {
        match read_full(r, &mut head) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => {
                spooled.cut = true;
                break;
            }
        }
        let kind = u32::from_ne_bytes(head[..4].try_into().unwrap_or([0; 4]));
        let size = u16::from_ne_bytes([head[6], head[7]]) as usize;
        if size < 8 {
            return Err(invalid(
                "a record is shorter than its header (not a perf pipe stream?)",
            ));
        }
        let mut whole = vec![0u8; size];
        whole[..8].copy_from_slice(&head);
        if !read_full(r, &mut whole[8..]).unwrap_or(false) && size > 8 {
            spooled.cut = true;
            break;
        }
        spooled.records += 1;
        if kind >= 64 && take_meta(&mut m, kind, &whole, r)? {
            continue;
        }
        if writer.is_none() {
            if m.attrs.is_empty() {
                return Err(invalid("the stream has records before any event attribute"));
            }
            let f = file.take().ok_or_else(|| invalid("output already used"))?;
            writer = Some(Writer::new(f, &m.attrs)?);
        }
        data.extend_from_slice(&whole);
        if data.len() >= 1 << 20 {
            let w = writer.as_mut().expect("opened above");
            w.append(&data)?;
            w.commit()?;
            data.clear();
        }
    }
    let mut w = match writer {
        Some(w) => w,
        None if m.attrs.is_empty() => {
            return Err(invalid(
                "the stream holds no event attributes (empty or not perf data)",
            ))
        }
        None => Writer::new(
            file.take().ok_or_else(|| invalid("output already used"))?,
            &m.attrs,
        )?,
    };
    w.append(&data)?;
    let mut feats = std::mem::take(&mut m.features);
    if !m.build_ids.is_empty() {
        feats.push((features::BUILD_ID, std::mem::take(&mut m.build_ids)));
    }
    if !feats.iter().any(|(b, _)| *b == features::EVENT_DESC) && !m.names.is_empty() {
        let descs: Vec<features::EventDesc<'_>> = m
            .attrs
            .iter()
            .filter_map(|a| {
                let name = m
                    .names
                    .iter()
                    .find(|(id, _)| a.ids.first() == Some(id))
                    .map(|(_, n)| n.as_str())?;
                Some(features::EventDesc {
                    attr: &a.attr,
                    name,
                    ids: &a.ids,
                })
            })
            .collect();
        if descs.len() == m.attrs.len() {
            feats.push((features::EVENT_DESC, features::event_desc(&descs)));
        }
    }
    feats.sort_by_key(|(b, _)| *b);
    feats.dedup_by_key(|(b, _)| *b);
    w.finish(&feats)?;
    Ok(spooled)
}

/// Opens `path` when it is a pipe-mode stream: `-` (standard input) or a file that starts
/// with the 16-byte pipe header. The stream is spooled into an unlinked temporary file and
/// read from there. `Ok(None)` for ordinary perf.data files.
pub fn open_stream(
    path: &std::path::Path,
) -> crate::error::Result<Option<super::reader::Recording>> {
    use crate::error::Error;
    let stdin = path == std::path::Path::new("-");
    let mut input: Box<dyn Read> = if stdin {
        Box::new(io::stdin().lock())
    } else {
        let Ok(mut f) = crate::sysroot::open_regular(path) else {
            return Ok(None);
        };
        let mut head = [0u8; 16];
        if f.read_exact(&mut head).is_err() || !is_pipe_header(&head) {
            return Ok(None);
        }
        Box::new(io::BufReader::new(f))
    };
    let name = if stdin {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    if stdin {
        let mut head = [0u8; 16];
        match read_full(&mut input, &mut head) {
            Ok(true) if is_pipe_header(&head) => {}
            Ok(true) if &head[..8] == b"PERFILE2" => {
                return Err(Error::Data(
                    "-i -: standard input holds a perf.data file, not a pipe-mode stream; give its name with -i FILE".into(),
                ))
            }
            Ok(_) => {
                return Err(Error::Data(
                    "-i -: standard input is not a perf pipe-mode stream (record one with `ruperf record -o -` or `perf record -o -`)".into(),
                ))
            }
            Err(e) => return Err(Error::io("cannot read standard input", e)),
        }
    }
    let tmp = std::env::temp_dir().join(format!(
        "ruperf-stream-{}-{}.data",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|source| Error::CantCreate {
            path: tmp.clone(),
            source,
        })?;
    let res = spool(&mut input, file);
    let spooled = match res {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Data(format!(
                "{name}: not a readable perf pipe stream: {e}"
            )));
        }
    };
    let rec = super::reader::Recording::open(&tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut rec = rec?;
    rec.set_source(
        path,
        spooled.cut.then(|| {
            format!(
                "{name}: the stream ends inside a record; reading the complete records before it"
            )
        }),
    );
    Ok(Some(rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_stream_spools_into_a_file_with_names_and_tracing_data() {
        let mut attr = [0u8; 128];
        attr[4] = 128;
        attr[0] = 2;
        let attrs = vec![FileAttr {
            attr,
            ids: vec![7, 8],
        }];
        let td = b"\x17\x08\x44tracing0.6\0rest".to_vec();
        let mut s = header_records(&attrs, &["sched:sched_switch"], Some(&td));
        // one FINISHED_ROUND record, then a feature
        record(&mut s, 68, &[]);
        s.extend(feature_records(&[(
            features::HOSTNAME,
            features::string("vm"),
        )]));
        let path = std::env::temp_dir().join(format!("ruperf-pipe-{}", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        let sp = spool(&mut &s[16..], f).unwrap();
        assert!(!sp.cut);
        let rec = crate::perfdata::reader::Recording::open(&path).unwrap();
        let meta = rec.meta();
        assert_eq!(meta.events[0].name, "sched:sched_switch");
        assert_eq!(meta.hostname.as_deref(), Some("vm"));
        assert_eq!(
            meta.tracing_data.as_deref().map(|v| &v[..10]),
            Some(&td[..10])
        );
        // A stream cut anywhere never panics.
        for n in 0..s.len() - 16 {
            let f = std::fs::File::create(&path).unwrap();
            let _ = spool(&mut &s[16..16 + n], f);
        }
        std::fs::remove_file(&path).unwrap();
    }
}
