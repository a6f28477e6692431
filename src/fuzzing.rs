//! Entry points for the fuzz targets in `fuzz/` and for the seed-corpus test that `cargo test`
//! runs on every build (tests/integration/fuzz_seeds.rs): both feed bytes through exactly
//! these functions, so that what the fuzzer finds is what the tests keep checking.
//!
//! Each entry must return for any input: never panic, hang or allocate without bound.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::sysroot::Sysroot;

/// Inputs larger than this are ignored (the fuzzer's interest is in structure, not size).
pub const MAX_INPUT: usize = 1 << 20;

/// Reads `bytes` as a perf.data file: header checks, feature sections, every record.
pub fn perf_data(bytes: &[u8]) {
    if bytes.len() > MAX_INPUT {
        return;
    }
    thread_local! {
        static FILE: PathBuf = scratch().join(format!("{:?}.data", std::thread::current().id()));
    }
    FILE.with(|path| {
        if std::fs::write(path, bytes).is_err() {
            return;
        }
        if let Ok(mut rec) = crate::perfdata::reader::Recording::open(path) {
            let mut n = 0u64;
            rec.for_each(|r| {
                std::hint::black_box(r);
                n += 1;
            });
            std::hint::black_box((n, rec.meta(), rec.warnings()));
        }
    });
}

/// Parses `bytes` (when UTF-8, as a command line delivers it) as a `-e` event list, resolved
/// against a small fixed fake machine (a `cpu` PMU with formats and events, a few
/// tracepoints), never the host.
pub fn event_grammar(bytes: &[u8]) {
    if bytes.len() > 4096 {
        return;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let _ = std::hint::black_box(crate::counters::event::parse_events(text, fake_machine()));
}

/// A private directory (mkdtemp, 0700: never a predictable name in a shared /tmp) for the
/// inputs written as files and the fake machine; [`cleanup`] removes it.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        nix::unistd::mkdtemp(&std::env::temp_dir().join("ruperf-fuzz-XXXXXX"))
            .expect("creating a private scratch directory for fuzz inputs")
    })
}

/// Removes the scratch directory; call it once, after the last input.
pub fn cleanup() {
    let _ = std::fs::remove_dir_all(scratch());
}

fn fake_machine() -> &'static Sysroot {
    static ROOT: OnceLock<Sysroot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = scratch().join("root");
        let files: &[(&str, &str)] = &[
            ("sys/bus/event_source/devices/cpu/type", "4"),
            (
                "sys/bus/event_source/devices/cpu/format/event",
                "config:0-7",
            ),
            (
                "sys/bus/event_source/devices/cpu/format/umask",
                "config:8-15",
            ),
            (
                "sys/bus/event_source/devices/cpu/format/cmask",
                "config:24-31",
            ),
            (
                "sys/bus/event_source/devices/cpu/events/cycles",
                "event=0x3c",
            ),
            (
                "sys/bus/event_source/devices/cpu/events/mem-loads",
                "event=0xcd,umask=0x1",
            ),
            ("sys/bus/event_source/devices/msr/type", "9"),
            (
                "sys/bus/event_source/devices/msr/format/event",
                "config:0-63",
            ),
            ("sys/bus/event_source/devices/msr/events/tsc", "event=0x00"),
            ("sys/kernel/tracing/events/sched/sched_switch/id", "300"),
            (
                "sys/kernel/tracing/events/syscalls/sys_enter_write/id",
                "600",
            ),
            (
                "sys/kernel/tracing/events/syscalls/sys_exit_write/id",
                "601",
            ),
            ("proc/sys/kernel/perf_event_paranoid", "2"),
        ];
        for (rel, body) in files {
            let p = dir.join(rel);
            if let Some(parent) = p.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(&p, format!("{body}\n"));
        }
        Sysroot::new(dir)
    })
}
