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
                    out.extend_from_slice(b"+0x");
                    push_hex(out, *off, 0);
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

/// `v` in decimal, right-aligned in `width` (printf's `%*lu`).
fn push_dec(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = &buf[i..];
    out.resize(out.len() + width.saturating_sub(digits.len()), b' ');
    out.extend_from_slice(digits);
}

/// `v` zero-padded to `width` digits (printf's `%0*lu`).
fn push_dec0(out: &mut Vec<u8>, v: u64, width: usize) {
    let start = out.len();
    push_dec(out, v, width);
    for b in &mut out[start..] {
        if *b == b' ' {
            *b = b'0';
        }
    }
}

/// A signed id (`%*d`).
fn push_int(out: &mut Vec<u8>, v: i32, width: usize) {
    if v < 0 {
        let text = v.to_string();
        out.resize(out.len() + width.saturating_sub(text.len()), b' ');
        out.extend_from_slice(text.as_bytes());
    } else {
        push_dec(out, v as u64, width);
    }
}

/// `v` in lowercase hex, right-aligned in `width` (printf's `%*lx`).
fn push_hex(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut n = v;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    let digits = &buf[i..];
    out.resize(out.len() + width.saturating_sub(digits.len()), b' ');
    out.extend_from_slice(digits);
}

fn push_padded(out: &mut Vec<u8>, s: &str, width: usize) {
    out.resize(out.len() + width.saturating_sub(s.len()), b' ');
    out.extend_from_slice(s.as_bytes());
}

/// Renders samples, keeping each frame's call-chain line once made.
#[derive(Debug, Default)]
pub struct Renderer {
    /// Frame id → (sym/symoff/dso bits it was made with, the line's bytes).
    chain_lines: Vec<Option<(u8, Box<[u8]>)>>,
}

impl Renderer {
    fn chain_line(&mut self, out: &mut Vec<u8>, fr: &FrameSym, sym: bool, off: bool, dso: bool) {
        let key = sym as u8 | (off as u8) << 1 | (dso as u8) << 2;
        let i = fr.id as usize;
        if self.chain_lines.len() <= i {
            self.chain_lines.resize(i + 1, None);
        }
        if !matches!(&self.chain_lines[i], Some((k, _)) if *k == key) {
            let mut line = Vec::new();
            // The functions inlined here first, innermost first, marked as perf marks them
            // and without the DSO.
            for name in &fr.inlined {
                line.push(b'\t');
                push_hex(&mut line, fr.addr, 16);
                line.push(b' ');
                line.extend_from_slice(name.as_bytes());
                if off {
                    let o = fr.sym.as_ref().map_or(0, |s| s.1);
                    line.extend_from_slice(format!("+{o:#x}").as_bytes());
                }
                line.extend_from_slice(b" (inlined)\n");
            }
            line.push(b'\t');
            push_hex(&mut line, fr.addr, 16);
            sym_and_dso(&mut line, fr, sym, off, dso);
            line.push(b'\n');
            self.chain_lines[i] = Some((key, line.into_boxed_slice()));
        }
        if let Some((_, l)) = &self.chain_lines[i] {
            out.extend_from_slice(l);
        }
    }

    /// Appends one sample as perf script prints it.
    pub fn sample(&mut self, out: &mut Vec<u8>, l: &Line<'_>) {
        let f = l.fields;
        if f.has(Field::Comm) {
            if f.has(Field::Ip) && l.use_callchain {
                out.extend_from_slice(l.comm.as_bytes());
            } else {
                push_padded(out, l.comm, 16);
            }
            out.push(b' ');
        }
        match (f.has(Field::Pid), f.has(Field::Tid)) {
            (true, true) => {
                push_int(out, l.pid, 5);
                out.push(b'/');
                let start = out.len();
                push_int(out, l.tid, 0);
                let n = out.len() - start;
                out.resize(out.len() + 5usize.saturating_sub(n), b' ');
                out.push(b' ');
            }
            (true, false) => {
                push_int(out, l.pid, 5);
                out.push(b' ');
            }
            (false, true) => {
                push_int(out, l.tid, 5);
                out.push(b' ');
            }
            _ => {}
        }
        if f.has(Field::Cpu) {
            out.push(b'[');
            push_dec0(out, u64::from(l.cpu), 3);
            out.extend_from_slice(b"] ");
        }
        if f.has(Field::Time) {
            let (secs, ns) = (l.time / 1_000_000_000, l.time % 1_000_000_000);
            if l.ns {
                push_dec(out, secs, 5);
                out.push(b'.');
                push_dec0(out, ns, 9);
            } else {
                // "%12s" of "secs.usecs"
                let digits = if secs == 0 {
                    1
                } else {
                    secs.ilog10() as usize + 1
                };
                out.resize(out.len() + 12usize.saturating_sub(digits + 7), b' ');
                push_dec(out, secs, 0);
                out.push(b'.');
                push_dec0(out, ns / 1000, 6);
            }
            out.extend_from_slice(b": ");
        }
        if f.has(Field::Period) {
            push_dec(out, l.period, 10);
            out.push(b' ');
        }
        if f.has(Field::Event) {
            push_padded(out, l.event, l.event_width);
            out.extend_from_slice(b": ");
        }
        if let (true, Some(t)) = (f.has(Field::Trace), l.trace) {
            out.extend_from_slice(t.as_bytes());
        }
        if f.has(Field::Addr) {
            push_hex(out, l.addr, 16);
        }
        if f.has(Field::Ip) {
            let (sym, off, dso) = (f.has(Field::Sym), f.has(Field::Symoff), f.has(Field::Dso));
            match &l.chain {
                Some(chain) => {
                    out.push(b'\n');
                    for fr in chain {
                        self.chain_line(out, fr, sym, off, dso);
                    }
                }
                None => {
                    out.push(b' ');
                    push_hex(out, l.ip, 16);
                    sym_and_dso(out, l.at, sym, off, dso);
                }
            }
        }
        out.push(b'\n');
    }
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
    let mut r = Renderer::default();
    let outcome = crate::app::script::run(cfg, rec, &mut |line| {
        r.sample(&mut buf, line);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::script::fields::Selection;

    #[test]
    fn numbers_as_printf_pads_them() {
        let mut o = Vec::new();
        push_dec(&mut o, 42, 5);
        push_dec0(&mut o, 7, 3);
        push_hex(&mut o, 0xffffffff81000000, 16);
        push_hex(&mut o, 0x1289, 16);
        push_int(&mut o, -1, 5);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "   42007ffffffff81000000            1289   -1"
        );
    }

    #[test]
    fn a_sample_line_as_perf_prints_it() {
        let at = FrameSym {
            inlined: Vec::new(),
            id: 0,
            addr: 0x1289,
            sym: Some(("hot_spin".into(), 0x21)),
            dso: "/tmp/sc/hot".into(),
        };
        let sel = Selection::default();
        let line = Line {
            fields: sel.for_type(1, false, true, false),
            event: "cpu-clock",
            event_width: 9,
            comm: "hot",
            pid: 499,
            tid: 499,
            cpu: 0,
            time: 2_665_835_621_123,
            period: 250000,
            ip: 0x562944a72289,
            addr: 0,
            at: &at,
            chain: None,
            trace: None,
            use_callchain: false,
            ns: false,
        };
        let mut out = Vec::new();
        Renderer::default().sample(&mut out, &line);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "             hot   499  2665.835621:     250000 cpu-clock:      562944a72289 hot_spin+0x21 (/tmp/sc/hot)\n"
        );
        let chained = Line {
            chain: Some(vec![&at, &at]),
            use_callchain: true,
            ..line
        };
        let mut out = Vec::new();
        Renderer::default().sample(&mut out, &chained);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "hot   499  2665.835621:     250000 cpu-clock: \n\t            1289 hot_spin+0x21 (/tmp/sc/hot)\n\t            1289 hot_spin+0x21 (/tmp/sc/hot)\n\n"
        );
    }
}
