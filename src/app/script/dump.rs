//! `script -D`: every record of the data section with its raw bytes, in perf's layout (the
//! offset, size and type line, then the hex and ASCII dump; the one-line decoding after it
//! names the record type only).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// perf's names of record types.
fn record_name(t: u32) -> &'static str {
    match t {
        1 => "MMAP",
        2 => "LOST",
        3 => "COMM",
        4 => "EXIT",
        5 => "THROTTLE",
        6 => "UNTHROTTLE",
        7 => "FORK",
        8 => "READ",
        9 => "SAMPLE",
        10 => "MMAP2",
        11 => "AUX",
        12 => "ITRACE_START",
        13 => "LOST_SAMPLES",
        14 => "SWITCH",
        15 => "SWITCH_CPU_WIDE",
        16 => "NAMESPACES",
        17 => "KSYMBOL",
        18 => "BPF_EVENT",
        19 => "CGROUP",
        20 => "TEXT_POKE",
        21 => "AUX_OUTPUT_HW_ID",
        64 => "HEADER_ATTR",
        65 => "HEADER_EVENT_TYPE",
        66 => "HEADER_TRACING_DATA",
        67 => "HEADER_BUILD_ID",
        68 => "FINISHED_ROUND",
        69 => "ID_INDEX",
        70 => "AUXTRACE_INFO",
        71 => "AUXTRACE",
        72 => "AUXTRACE_ERROR",
        73 => "THREAD_MAP",
        74 => "CPU_MAP",
        75 => "STAT_CONFIG",
        76 => "STAT",
        77 => "STAT_ROUND",
        78 => "EVENT_UPDATE",
        79 => "TIME_CONV",
        80 => "HEADER_FEATURE",
        81 => "COMPRESSED",
        82 => "FINISHED_INIT",
        _ => "UNKNOWN",
    }
}

/// Appends perf's hex dump of `b` (`.  0000:  xx … ascii`).
pub fn hex_dump(out: &mut Vec<u8>, b: &[u8]) {
    let _ = writeln!(out, ".\n. ... raw event: size {} bytes", b.len());
    for (i, chunk) in b.chunks(16).enumerate() {
        let _ = write!(out, ".  {:04x}:  ", i * 16);
        for c in chunk {
            let _ = write!(out, "{c:02x} ");
        }
        for _ in chunk.len()..16 {
            out.extend_from_slice(b"   ");
        }
        out.push(b' ');
        for &c in chunk {
            out.push(if (0x20..0x7f).contains(&c) { c } else { b'.' });
        }
        for _ in chunk.len()..16 {
            out.push(b' ');
        }
        out.push(b'\n');
    }
}

/// Dumps the data section of the perf.data file `path` to `w`; returns warnings.
pub fn dump(path: &Path, w: &mut dyn Write) -> Result<Vec<String>> {
    let io = |e| Error::io(format!("cannot read {}", path.display()), e);
    let mut f = crate::sysroot::open_regular(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoInput {
            path: path.to_path_buf(),
            reason: "no such file (record one with `ruperf record`, or name another with -i)"
                .into(),
        },
        _ => Error::io(format!("cannot open {}", path.display()), e),
    })?;
    let len = f.metadata().map_err(io)?.len();
    let mut head = [0u8; 104];
    f.read_exact(&mut head).map_err(io)?;
    if &head[..8] != b"PERFILE2" {
        return Err(Error::Data(format!(
            "{}: not a perf.data file (or a pipe-mode stream; -D reads files)",
            path.display()
        )));
    }
    let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or([0; 8]));
    let (start, mut size) = (word(40), word(48));
    if size == 0 || start.saturating_add(size) > len {
        size = len.saturating_sub(start);
    }
    f.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut data = Vec::new();
    f.take(size).read_to_end(&mut data).map_err(io)?;
    let name = path.display().to_string();
    let mut out = Vec::with_capacity(1 << 16);
    let mut pos = 0usize;
    let mut warnings = Vec::new();
    while pos + 8 <= data.len() {
        let t = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap_or([0; 4]));
        let sz = u16::from_le_bytes([data[pos + 6], data[pos + 7]]) as usize;
        if sz < 8 || pos + sz > data.len() {
            warnings.push(format!(
                "{name}: corrupted record at offset {:#x}; the dump stops there",
                start as usize + pos
            ));
            break;
        }
        let off = start as usize + pos;
        let _ = writeln!(out, "\n{off:#x}@{name} [{sz:#x}]: event: {t}");
        hex_dump(&mut out, &data[pos..pos + sz]);
        let _ = writeln!(
            out,
            "\n0 {off:#x} [{sz:#x}]: PERF_RECORD_{}",
            record_name(t)
        );
        pos += sz;
        if out.len() >= 1 << 16 {
            if w.write_all(&out).is_err() {
                return Ok(warnings);
            }
            out.clear();
        }
    }
    let _ = w.write_all(&out);
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_lines_as_perf() {
        let mut out = Vec::new();
        hex_dump(&mut out, b"E\0\0\0\0\0P\0\x02\0\0\0\0\0\0\0ab");
        let s = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[1], ". ... raw event: size 18 bytes");
        assert_eq!(
            lines[2],
            ".  0000:  45 00 00 00 00 00 50 00 02 00 00 00 00 00 00 00  E.....P........."
        );
        assert_eq!(
            lines[3],
            format!(
                ".  0010:  61 62 {}ab{}",
                " ".repeat(3 * 14 + 1),
                " ".repeat(14)
            )
        );
    }
}
