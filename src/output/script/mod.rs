//! `perf script` text: one line per sample (or a block with its call chain), byte for byte
//! as perf 6.1 prints it, and the `--header` block.

use std::io::Write;

use crate::app::script::fields::Field;
use crate::app::script::{FrameSym, Line};
use crate::perfdata::reader::Meta;

fn sym_and_dso(out: &mut Vec<u8>, f: &FrameSym, sym: bool, symoff: bool, dso: bool) {
    if sym {
        match &f.sym {
            Some((name, off)) => {
                out.push(b' ');
                out.extend_from_slice(name.as_bytes());
                if symoff {
                    let _ = write!(out, "+0x{off:x}");
                }
            }
            None => out.extend_from_slice(b" [unknown]"),
        }
    }
    if dso {
        out.extend_from_slice(b" (");
        out.extend_from_slice(f.dso.as_bytes());
        out.push(b')');
    }
}

/// Appends one sample as perf script prints it.
pub fn sample(out: &mut Vec<u8>, l: &Line<'_>) {
    let f = l.fields;
    if f.has(Field::Comm) {
        if f.has(Field::Ip) && l.use_callchain {
            let _ = write!(out, "{} ", l.comm);
        } else {
            let _ = write!(out, "{:>16} ", l.comm);
        }
    }
    match (f.has(Field::Pid), f.has(Field::Tid)) {
        (true, true) => {
            let _ = write!(out, "{:>5}/{:<5} ", l.pid, l.tid);
        }
        (true, false) => {
            let _ = write!(out, "{:>5} ", l.pid);
        }
        (false, true) => {
            let _ = write!(out, "{:>5} ", l.tid);
        }
        _ => {}
    }
    if f.has(Field::Cpu) {
        let _ = write!(out, "[{:03}] ", l.cpu);
    }
    if f.has(Field::Time) {
        let (secs, ns) = (l.time / 1_000_000_000, l.time % 1_000_000_000);
        if l.ns {
            let _ = write!(out, "{secs:>5}.{ns:09}: ");
        } else {
            let t = format!("{secs}.{:06}", ns / 1000);
            let _ = write!(out, "{t:>12}: ");
        }
    }
    if f.has(Field::Period) {
        let _ = write!(out, "{:>10} ", l.period);
    }
    if f.has(Field::Event) {
        let _ = write!(out, "{:>w$}: ", l.event, w = l.event_width);
    }
    if let (true, Some(t)) = (f.has(Field::Trace), l.trace) {
        out.extend_from_slice(t.as_bytes());
    }
    if f.has(Field::Addr) {
        let _ = write!(out, "{:16x}", l.addr);
    }
    if f.has(Field::Ip) {
        let (sym, off, dso) = (f.has(Field::Sym), f.has(Field::Symoff), f.has(Field::Dso));
        match &l.chain {
            Some(chain) => {
                out.push(b'\n');
                for fr in chain {
                    let _ = write!(out, "\t{:16x}", fr.addr);
                    sym_and_dso(out, fr, sym, off, dso);
                    out.push(b'\n');
                }
            }
            None => {
                let _ = write!(out, " {:16x}", l.ip);
                sym_and_dso(out, l.at, sym, off, dso);
            }
        }
    }
    out.push(b'\n');
}

/// The `--header` block: what the file says about itself, in perf's `# key : value` form.
pub fn header(out: &mut Vec<u8>, m: &Meta) {
    out.extend_from_slice(b"# ========\n");
    let _ = writeln!(out, "# data size      : {}", m.data_size);
    let mut kv = |k: &str, v: &str| {
        let _ = writeln!(out, "# {k} : {v}");
    };
    for (k, v) in [
        ("hostname", &m.hostname),
        ("os release", &m.os_release),
        ("perf version", &m.perf_version),
        ("arch", &m.arch),
    ] {
        if let Some(v) = v {
            kv(k, v);
        }
    }
    if let Some((online, avail)) = m.nr_cpus {
        kv("nrcpus online", &online.to_string());
        kv("nrcpus avail", &avail.to_string());
    }
    if let Some(d) = &m.cpu_desc {
        kv("cpudesc", d);
    }
    if !m.cmdline.is_empty() {
        kv("cmdline", &format!("{} ", m.cmdline.join(" ")));
    }
    for e in &m.events {
        let mut s = format!(
            "name = {}, type = {}, config = {:#x}",
            e.name, e.attr_type, e.config
        );
        if let Some(p) = e.period {
            s.push_str(&format!(", sample_period = {p}"));
        }
        if let Some(f) = e.frequency {
            s.push_str(&format!(", sample_freq = {f}"));
        }
        kv("event", &s);
    }
    out.extend_from_slice(b"# ========\n#\n");
}

/// Streams the samples of `cfg` to `w`, as perf script prints them; returns the warnings.
pub fn stream(
    cfg: &crate::app::script::Config,
    with_header: bool,
    w: &mut dyn Write,
) -> crate::error::Result<Vec<String>> {
    let rec = crate::app::script::open(cfg)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 17);
    if with_header {
        header(&mut buf, rec.meta());
    }
    let mut io_err: Option<std::io::Error> = None;
    let outcome = crate::app::script::run(cfg, rec, &mut |line| {
        sample(&mut buf, line);
        if buf.len() >= 1 << 16 {
            if let Err(e) = w.write_all(&buf) {
                io_err = Some(e);
                return false;
            }
            buf.clear();
        }
        true
    })?;
    if io_err.is_none() {
        if let Err(e) = w.write_all(&buf).and_then(|_| w.flush()) {
            io_err = Some(e);
        }
    }
    match io_err {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(crate::error::Error::io("writing the script output", e))
        }
        _ => Ok(outcome.warnings),
    }
}
