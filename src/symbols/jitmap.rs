//! perf's JIT symbol maps, `/tmp/perf-PID.map`: one `START SIZE NAME` line per function
//! (hexadecimal, with or without `0x`), written by JITs (V8, the JVM's perf-map-agent,
//! LuaJIT, ...). Addresses are absolute.

use std::io::Read;
use std::path::Path;

use super::SymbolTable;

/// Largest map file read (JITs of big services write tens of MiB).
const MAX_MAP: u64 = 512 << 20;

/// True when a recorded map name is an anonymous executable mapping perf resolves through
/// the process's JIT map (`//anon`, `[anon:...]`, `/dev/zero`, `/anon_hugepage`).
pub fn is_anon(path: &[u8]) -> bool {
    path == b"//anon"
        || path.starts_with(b"//anon")
        || path.starts_with(b"[anon")
        || path.starts_with(b"/dev/zero")
        || path.starts_with(b"/anon_hugepage")
}

/// The JIT map path perf uses for process `pid`.
pub fn map_path(pid: i32) -> String {
    format!("/tmp/perf-{pid}.map")
}

/// True when `path` names a JIT map (`/tmp/perf-PID.map`).
pub fn is_map_path(path: &str) -> bool {
    path.strip_prefix("/tmp/perf-")
        .and_then(|r| r.strip_suffix(".map"))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()))
}

fn hex(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

/// Parses a JIT map's text; malformed lines are skipped.
pub fn parse(text: &str) -> SymbolTable {
    let mut t = SymbolTable::default();
    for line in text.lines() {
        let mut it = line.splitn(3, ' ');
        let (Some(a), Some(s), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Some(addr), Some(size)) = (hex(a), hex(s)) else {
            continue;
        };
        let name = name.trim_end();
        if !name.is_empty() {
            t.push(addr, size.max(1), name);
        }
    }
    t.finish(u64::MAX);
    t
}

/// Reads and parses the JIT map at `path`.
pub fn load(path: &Path) -> Option<SymbolTable> {
    let f = crate::sysroot::open_regular(path).ok()?;
    let mut text = String::new();
    f.take(MAX_MAP).read_to_string(&mut text).ok()?;
    Some(parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_map_lines() {
        let t =
            parse("7f0000001000 40 jit_add\n0x7f0000002000 0x10 LazyCompile:~f a.js:1\nbogus\n");
        assert_eq!(t.lookup(0x7f0000001010).unwrap().0, "jit_add");
        assert_eq!(t.lookup(0x7f0000002004).unwrap().0, "LazyCompile:~f a.js:1");
        assert!(t.lookup(0x7f0000001040).is_none());
        assert!(is_map_path("/tmp/perf-123.map"));
        assert!(!is_map_path("/tmp/perf-.map"));
        assert!(is_anon(b"//anon"));
        assert!(!is_anon(b"/usr/bin/x"));
    }
}
