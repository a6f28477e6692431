//! `perf script -F`: which fields are printed, per event type, with perf's names and defaults.

use crate::error::{Error, Result};

/// One printable field (perf's `PERF_OUTPUT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Field {
    /// Thread name.
    Comm = 1 << 0,
    /// Thread id.
    Tid = 1 << 1,
    /// Process id.
    Pid = 1 << 2,
    /// Timestamp.
    Time = 1 << 3,
    /// CPU.
    Cpu = 1 << 4,
    /// Event name.
    Event = 1 << 5,
    /// Decoded tracepoint fields.
    Trace = 1 << 6,
    /// Instruction pointer.
    Ip = 1 << 7,
    /// Symbol.
    Sym = 1 << 8,
    /// DSO.
    Dso = 1 << 9,
    /// Data address.
    Addr = 1 << 10,
    /// Offset in the symbol.
    Symoff = 1 << 11,
    /// Sample period.
    Period = 1 << 13,
    /// Call/return indentation of branch traces (regular samples, the only kind ruperf
    /// records, print nothing for it, as in perf).
    Callindent = 1 << 20,
}

/// Field names as perf spells them.
pub const NAMES: &[(&str, Field)] = &[
    ("comm", Field::Comm),
    ("tid", Field::Tid),
    ("pid", Field::Pid),
    ("time", Field::Time),
    ("cpu", Field::Cpu),
    ("event", Field::Event),
    ("trace", Field::Trace),
    ("ip", Field::Ip),
    ("sym", Field::Sym),
    ("dso", Field::Dso),
    ("addr", Field::Addr),
    ("symoff", Field::Symoff),
    ("period", Field::Period),
    ("callindent", Field::Callindent),
];

/// The event types `-F type:` names (perf's `hw`, `sw`, `trace`, `raw`, `break`).
pub const TYPES: &[(&str, u32)] = &[("hw", 0), ("sw", 1), ("trace", 2), ("raw", 4), ("break", 5)];

/// A set of fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Set(pub u32);

impl Set {
    /// True when `f` is in the set.
    pub fn has(self, f: Field) -> bool {
        self.0 & f as u32 != 0
    }
    fn with(self, f: Field) -> Set {
        Set(self.0 | f as u32)
    }
    fn without(self, f: Field) -> Set {
        Set(self.0 & !(f as u32))
    }
}

const SAMPLE_DEFAULT: u32 = Field::Comm as u32
    | Field::Tid as u32
    | Field::Cpu as u32
    | Field::Time as u32
    | Field::Event as u32
    | Field::Ip as u32
    | Field::Sym as u32
    | Field::Symoff as u32
    | Field::Dso as u32
    | Field::Period as u32;
const TRACE_DEFAULT: u32 = Field::Comm as u32
    | Field::Tid as u32
    | Field::Cpu as u32
    | Field::Time as u32
    | Field::Event as u32
    | Field::Trace as u32;

/// Fields per attr type (0..=5), and whether the user chose them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    sets: [Set; 6],
    user: [bool; 6],
}

impl Default for Selection {
    fn default() -> Self {
        let mut sets = [Set(SAMPLE_DEFAULT); 6];
        sets[2] = Set(TRACE_DEFAULT);
        sets[4] = Set(SAMPLE_DEFAULT | Field::Addr as u32);
        Selection {
            sets,
            user: [false; 6],
        }
    }
}

fn field_by_name(name: &str) -> Result<Field> {
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            let all: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            Error::Usage(format!(
                "-F: unknown field '{name}' (fields: {})",
                all.join(",")
            ))
        })
}

impl Selection {
    /// Parses perf's `-F` syntax: `f1,f2` (all types), `type:f1,f2` (one type), and
    /// `+f`/`-f` to add to or remove from the defaults.
    pub fn parse(spec: &str) -> Result<Selection> {
        let mut sel = Selection::default();
        let (types, list): (Vec<usize>, &str) = match spec.split_once(':') {
            Some((t, rest)) if !t.contains(',') => {
                let ty = TYPES
                    .iter()
                    .find(|(n, _)| *n == t)
                    .map(|(_, i)| *i as usize)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "-F {spec}: unknown event type '{t}' (types: hw, sw, trace, raw, break)"
                        ))
                    })?;
                (vec![ty], rest)
            }
            _ => ((0..6).collect(), spec),
        };
        let items: Vec<&str> = list.split(',').filter(|s| !s.is_empty()).collect();
        if items.is_empty() {
            return Err(Error::Usage(format!("-F '{spec}': no fields given")));
        }
        let relative = items.iter().all(|i| i.starts_with(['+', '-']));
        for &t in &types {
            let mut set = if relative { sel.sets[t] } else { Set(0) };
            for item in &items {
                set = match item.as_bytes()[0] {
                    b'+' => set.with(field_by_name(&item[1..])?),
                    b'-' => set.without(field_by_name(&item[1..])?),
                    _ => set.with(field_by_name(item)?),
                };
            }
            sel.sets[t] = set;
            sel.user[t] = !relative;
        }
        Ok(sel)
    }

    /// A field the user asked for that an event of type `ty` with `sample_type` cannot
    /// provide (perf refuses to print such a field).
    pub fn missing(&self, ty: u32, sample_type: u64) -> Option<(&'static str, &'static str)> {
        let i = (ty as usize).min(5);
        if !self.user[i] {
            return None;
        }
        let need: [(Field, u64, &str, &str); 6] = [
            (Field::Ip, 0x1, "IP", "ip"),
            (Field::Tid, 0x2, "TID", "tid"),
            (Field::Pid, 0x2, "TID", "pid"),
            (Field::Time, 0x4, "TIME", "time"),
            (Field::Cpu, 0x80, "CPU", "cpu"),
            (Field::Period, 0x100, "PERIOD", "period"),
        ];
        need.iter()
            .find(|(f, bit, _, _)| self.sets[i].has(*f) && sample_type & bit == 0)
            .map(|(_, _, attr, name)| (*attr, *name))
    }

    /// The fields for events of attr type `ty`, after dropping defaults the events cannot
    /// provide (`has_cpu`, `has_period`) and adding ip/sym/dso to tracepoints recorded with
    /// call chains (as perf does).
    pub fn for_type(&self, ty: u32, has_cpu: bool, has_period: bool, chain: bool) -> Set {
        let i = (ty as usize).min(5);
        let mut s = self.sets[i];
        if !self.user[i] {
            if !has_cpu {
                s = s.without(Field::Cpu);
            }
            // perf prints the fixed period of events sampled with -c, so a missing
            // PERIOD bit does not drop the column.
            let _ = has_period;
            if ty == 2 && chain {
                s = s
                    .with(Field::Ip)
                    .with(Field::Sym)
                    .with(Field::Symoff)
                    .with(Field::Dso);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_user_lists() {
        let d = Selection::default();
        let sw = d.for_type(1, false, false, false);
        assert!(sw.has(Field::Ip) && sw.has(Field::Period) && !sw.has(Field::Cpu));
        let tp = d.for_type(2, true, true, true);
        assert!(tp.has(Field::Trace) && tp.has(Field::Ip) && !tp.has(Field::Period));
        let s = Selection::parse("comm,tid,time").unwrap();
        let f = s.for_type(1, true, true, true);
        assert!(f.has(Field::Comm) && !f.has(Field::Ip) && !f.has(Field::Cpu));
        let s = Selection::parse("trace:comm,trace").unwrap();
        assert!(s.for_type(2, true, true, false).has(Field::Trace));
        assert!(s.for_type(1, true, true, false).has(Field::Ip));
        let s = Selection::parse("-period,+addr").unwrap();
        let f = s.for_type(1, true, true, false);
        assert!(!f.has(Field::Period) && f.has(Field::Addr) && f.has(Field::Cpu));
        let e = Selection::parse("comm,bogus").unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("symoff"), "{e}");
        assert!(Selection::parse("xx:comm").is_err());
    }
}
