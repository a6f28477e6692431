//! HEADER_TRACING_DATA: the tracefs format files perf stores beside tracepoint samples.
//!
//! Layout (perf's `util/trace-event-info.c`, version 0.6, native endianness):
//! ```text
//! "\x17\x08\x44tracing" "0.6\0" u8 big_endian u8 sizeof(long) u32 page_size
//! "header_page\0"  u64 size, events/header_page
//! "header_event\0" u64 size, events/header_event
//! u32 count, { u64 size, format }*              ftrace's own events (those recorded)
//! u32 systems, { "system\0" u32 count { u64 size, format }* }*
//! u32 size, kallsyms (perf writes 0)
//! u32 size, printk_formats
//! u64 size, saved_cmdlines
//! ```
//! [`build`] writes it from tracefs; [`TraceFormats::parse`] reads the event formats back
//! (from perf's files or ruperf's) so samples' raw data can be decoded.

use std::collections::HashMap;
use std::io;
use std::path::Path;

/// The magic that opens the section.
const MAGIC: &[u8] = b"\x17\x08\x44tracing";
const VERSION: &[u8] = b"0.6\0";

fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = crate::sysroot::open_regular(path)?;
    let mut v = Vec::new();
    // tracefs files report size 0, and some (header_page) answer only the first read made
    // at each offset in full: read in large chunks until EOF, bounded.
    let mut chunk = vec![0u8; 1 << 16];
    while v.len() < 64 << 20 {
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => v.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(v)
}

fn push_sized64(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u64).to_ne_bytes());
    out.extend_from_slice(body);
}

fn dir_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The tracing-data section for the tracepoints `tps` ((system, name) pairs), read from the
/// tracefs directory `tracing` (the parent of `events/`), in perf's layout and order
/// (systems and events in directory order).
pub fn build(tracing: &Path, tps: &[(String, String)]) -> io::Result<Vec<u8>> {
    let events = tracing.join("events");
    let mut out = Vec::with_capacity(8192);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(VERSION);
    out.push(cfg!(target_endian = "big") as u8);
    out.push(std::mem::size_of::<libc::c_long>() as u8);
    out.extend_from_slice(&(crate::os::ring::page_size() as u32).to_ne_bytes());
    for name in ["header_page", "header_event"] {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        push_sized64(&mut out, &read_file(&events.join(name))?);
    }
    let wanted = |sys: &str, ev: &str| tps.iter().any(|(s, e)| s == sys && e == ev);
    let formats_of = |sys: &str| -> io::Result<Vec<Vec<u8>>> {
        let mut v = Vec::new();
        for ev in dir_names(&events.join(sys)) {
            if wanted(sys, &ev) {
                v.push(read_file(&events.join(sys).join(&ev).join("format"))?);
            }
        }
        Ok(v)
    };
    let ftrace = formats_of("ftrace")?;
    out.extend_from_slice(&(ftrace.len() as u32).to_ne_bytes());
    for f in &ftrace {
        push_sized64(&mut out, f);
    }
    let mut systems = Vec::new();
    for sys in dir_names(&events) {
        if sys != "ftrace" && tps.iter().any(|(s, _)| *s == sys) {
            systems.push((sys.clone(), formats_of(&sys)?));
        }
    }
    out.extend_from_slice(&(systems.len() as u32).to_ne_bytes());
    for (sys, formats) in &systems {
        out.extend_from_slice(sys.as_bytes());
        out.push(0);
        out.extend_from_slice(&(formats.len() as u32).to_ne_bytes());
        for f in formats {
            push_sized64(&mut out, f);
        }
    }
    // kallsyms: perf records an empty one.
    out.extend_from_slice(&0u32.to_ne_bytes());
    let printk = read_file(&tracing.join("printk_formats")).unwrap_or_default();
    out.extend_from_slice(&(printk.len() as u32).to_ne_bytes());
    out.extend_from_slice(&printk);
    let cmdlines = read_file(&tracing.join("saved_cmdlines")).unwrap_or_default();
    push_sized64(&mut out, &cmdlines);
    Ok(out)
}

/// One field of a tracepoint's raw data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The C declaration's type, e.g. `unsigned int`, `char[16]` shown as `char`.
    pub type_name: String,
    /// The field's name.
    pub name: String,
    /// Byte offset in the raw data.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Signed integer.
    pub signed: bool,
    /// A fixed array (`char comm[16]`): the element count when known.
    pub array: Option<usize>,
    /// `__data_loc`: the field holds (len << 16 | offset) of variable data.
    pub dynamic: bool,
}

impl Field {
    /// True for character arrays and strings (printed as text).
    pub fn is_string(&self) -> bool {
        let t = self.type_name.trim_start_matches("const ");
        (self.array.is_some() || self.dynamic) && (t.starts_with("char") || t == "u8 ")
    }

    /// True for pointer types.
    pub fn is_pointer(&self) -> bool {
        self.type_name.contains('*')
    }
}

/// One tracepoint's format, as tracefs describes it.
#[derive(Debug, Clone)]
pub struct EventFormat {
    /// Subsystem, e.g. `sched`.
    pub system: String,
    /// Event name, e.g. `sched_switch`.
    pub name: String,
    /// The kernel's id (the attr config).
    pub id: u64,
    /// Fields, common ones first.
    pub fields: Vec<Field>,
    /// The `print fmt:` line, after the colon.
    pub print_fmt: String,
}

impl EventFormat {
    /// Parses one `format` file.
    pub fn parse(system: &str, text: &str) -> Option<EventFormat> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        let mut print_fmt = String::new();
        for line in text.lines() {
            let l = line.trim();
            if let Some(v) = l.strip_prefix("name:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = l.strip_prefix("ID:") {
                id = v.trim().parse().ok();
            } else if let Some(v) = l.strip_prefix("print fmt:") {
                print_fmt = v.trim().to_string();
            } else if l.starts_with("field:") {
                if let Some(f) = parse_field(l) {
                    fields.push(f);
                }
            }
        }
        Some(EventFormat {
            system: system.to_string(),
            name: name?,
            id: id?,
            fields,
            print_fmt,
        })
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Fields after the `common_` ones.
    pub fn own_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields
            .iter()
            .filter(|f| !f.name.starts_with("common_"))
    }
}

/// `field:unsigned int fd; offset:16; size:8; signed:0;` (tab-separated)
fn parse_field(line: &str) -> Option<Field> {
    let mut decl = "";
    let (mut offset, mut size, mut signed) = (None, None, false);
    for part in line.split(';') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("field:") {
            decl = v.trim();
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = v.trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = v.trim() == "1";
        }
    }
    let dynamic = decl.starts_with("__data_loc");
    let decl = decl.trim_start_matches("__data_loc").trim();
    let decl_owned = decl.replace("[]", "");
    let decl = decl_owned.trim();
    let (decl, array) = match decl.find('[').filter(|_| decl.ends_with(']')) {
        Some(open) => {
            let inner = decl[open + 1..].trim_end_matches(']');
            (&decl[..open], Some(inner.parse().unwrap_or(0)))
        }
        None => (decl, None),
    };
    let split = decl.rfind([' ', '*'])?;
    let name = decl[split + 1..].to_string();
    let type_name = decl[..split + 1].trim_end().to_string();
    Some(Field {
        type_name,
        name,
        offset: offset?,
        size: size?,
        signed,
        array,
        dynamic,
    })
}

/// The event formats of a tracing-data section, by id.
#[derive(Debug, Clone, Default)]
pub struct TraceFormats {
    /// Formats by tracepoint id.
    pub by_id: HashMap<u64, EventFormat>,
    /// sizeof(long) on the recording machine.
    pub long_size: u8,
    /// The recording machine was big-endian.
    pub big_endian: bool,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn cstr(&mut self) -> Option<&'a str> {
        let rest = self.b.get(self.pos..)?;
        let end = rest.iter().position(|&c| c == 0)?;
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).ok()
    }
    fn u32(&mut self) -> Option<u32> {
        let s: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }
    fn u64(&mut self) -> Option<u64> {
        let s: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(if self.big {
            u64::from_be_bytes(s)
        } else {
            u64::from_le_bytes(s)
        })
    }
    fn sized64(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u64()?).ok()?;
        self.take(n)
    }
}

impl TraceFormats {
    /// Parses a tracing-data section; `None` when it is not one. Bounded by the input: no
    /// count read from it can make this allocate more than the input's size.
    pub fn parse(b: &[u8]) -> Option<TraceFormats> {
        let mut c = Cursor {
            b,
            pos: 0,
            big: false,
        };
        if c.take(MAGIC.len())? != MAGIC {
            return None;
        }
        let version = c.cstr()?.to_string();
        let big = c.take(1)?[0] != 0;
        c.big = big;
        let long_size = c.take(1)?[0];
        c.u32()?; // page size
        let mut out = TraceFormats {
            by_id: HashMap::new(),
            long_size,
            big_endian: big,
        };
        for name in ["header_page", "header_event"] {
            if c.cstr()? != name {
                return None;
            }
            c.sized64()?;
        }
        let mut add = |system: &str, text: &[u8]| {
            if let Some(f) = EventFormat::parse(system, &String::from_utf8_lossy(text)) {
                out.by_id.insert(f.id, f);
            }
        };
        let n = c.u32()?;
        for _ in 0..n {
            add("ftrace", c.sized64()?);
        }
        let systems = c.u32()?;
        for _ in 0..systems {
            let system = c.cstr()?.to_string();
            let count = c.u32()?;
            for _ in 0..count {
                add(&system, c.sized64()?);
            }
        }
        let _ = version;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const WRITE_FORMAT: &str = "name: sys_enter_write
ID: 840
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * buf;\toffset:24;\tsize:8;\tsigned:0;
\tfield:size_t count;\toffset:32;\tsize:8;\tsigned:0;

print fmt: \"fd: 0x%08lx, buf: 0x%08lx, count: 0x%08lx\", ((unsigned long)(REC->fd)), ((unsigned long)(REC->buf)), ((unsigned long)(REC->count))
";

    #[test]
    fn format_files_parse() {
        let f = EventFormat::parse("syscalls", WRITE_FORMAT).unwrap();
        assert_eq!(f.id, 840);
        assert_eq!(f.name, "sys_enter_write");
        assert_eq!(f.fields.len(), 8);
        let buf = f.field("buf").unwrap();
        assert_eq!((buf.offset, buf.size), (24, 8));
        assert!(buf.is_pointer());
        assert_eq!(f.field("fd").unwrap().type_name, "unsigned int");
        assert!(f.print_fmt.starts_with("\"fd: 0x%08lx"));
        let comm =
            parse_field("field:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;").unwrap();
        assert_eq!((comm.name.as_str(), comm.array), ("prev_comm", Some(16)));
        assert!(comm.is_string());
        let loc =
            parse_field("field:__data_loc char[] name;\toffset:8;\tsize:4;\tsigned:0;").unwrap();
        assert!(loc.dynamic && loc.is_string());
        assert_eq!(loc.name, "name");
    }

    #[test]
    fn section_round_trip() {
        let dir = std::env::temp_dir().join(format!("ruperf-td-{}", std::process::id()));
        let ev = dir.join("events/syscalls/sys_enter_write");
        std::fs::create_dir_all(&ev).unwrap();
        std::fs::create_dir_all(dir.join("events/syscalls/sys_exit_write")).unwrap();
        std::fs::write(ev.join("format"), WRITE_FORMAT).unwrap();
        std::fs::write(dir.join("events/header_page"), "hp").unwrap();
        std::fs::write(dir.join("events/header_event"), "he").unwrap();
        std::fs::write(dir.join("printk_formats"), "pk").unwrap();
        let tps = [("syscalls".to_string(), "sys_enter_write".to_string())];
        let b = build(&dir, &tps).unwrap();
        assert_eq!(&b[..10], MAGIC);
        assert_eq!(&b[10..14], b"0.6\0");
        let t = TraceFormats::parse(&b).unwrap();
        assert_eq!(t.long_size, 8);
        assert_eq!(t.by_id[&840].system, "syscalls");
        // Truncations never panic.
        for n in 0..b.len() {
            let _ = TraceFormats::parse(&b[..n]);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
