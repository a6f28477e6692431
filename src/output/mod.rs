//! Presentation: turns typed results into bytes. Nothing here measures.
//!
//! stat has one exporter per format behind [`StatExporter`]: the perf-style table
//! ([`stat_table`]), CSV ([`stat_csv`]) and JSON lines ([`stat_json`]).

pub mod metrics;
pub mod stat_csv;
pub mod stat_json;
pub mod stat_table;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::stat::{CounterRow, IntervalRow, StatResult, Status};

/// One stat output format.
pub trait StatExporter {
    /// Writes one `-I` row as it arrives.
    fn interval(&mut self, row: &IntervalRow, out: &mut dyn Write) -> io::Result<()>;
    /// Writes the final result (after every run).
    fn finish(&mut self, result: &StatResult, out: &mut dyn Write) -> io::Result<()>;
}

/// Where output goes: stderr (perf's default for stat, leaving the command's stdout alone),
/// stdout, or a file.
pub enum Sink {
    /// Standard error.
    Stderr,
    /// Standard output.
    Stdout,
    /// A file opened by `-o`.
    File(PathBuf, io::BufWriter<File>),
}

impl Sink {
    /// Opens `-o FILE` (truncating unless `append`), failing before anything runs.
    pub fn file(path: &Path, append: bool) -> Result<Sink> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|source| Error::CantCreate {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Sink::File(path.to_path_buf(), io::BufWriter::new(f)))
    }

    /// Runs `f` against the sink. A closed pipe is not an error (the reader went away).
    pub fn write_with(&mut self, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
        let r = match self {
            Sink::Stderr => {
                let mut e = io::stderr().lock();
                f(&mut e).and_then(|_| e.flush())
            }
            Sink::Stdout => {
                let mut o = io::stdout().lock();
                f(&mut o).and_then(|_| o.flush())
            }
            Sink::File(_, w) => f(w).and_then(|_| w.flush()),
        };
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(Error::io(self.name(), e)),
            Ok(()) => Ok(()),
        }
    }

    fn name(&self) -> String {
        match self {
            Sink::Stderr => "writing to stderr".into(),
            Sink::Stdout => "writing to stdout".into(),
            Sink::File(p, _) => format!("writing {}", p.display()),
        }
    }
}

/// Integer with thousands separators: 1234567 → "1,234,567".
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The value and unit of a counter as perf prints them (clocks in msec, sysfs-scaled units
/// with two decimals, counts as integers). `sep` selects plain digits for CSV/JSON.
pub fn counter_value(row: &CounterRow, count: f64, grouped: bool) -> (String, String) {
    match row.status {
        Status::NotSupported => ("<not supported>".into(), String::new()),
        Status::NotCounted => ("<not counted>".into(), unit_of(row)),
        Status::Counted => {
            if row.is_clock {
                (format!("{:.2}", count / 1e6), "msec".into())
            } else if let Some(u) = &row.unit {
                (format!("{:.2}", count * row.scale), u.clone())
            } else if grouped {
                (thousands(count.round() as u64), String::new())
            } else {
                (format!("{}", count.round() as u64), String::new())
            }
        }
    }
}

fn unit_of(row: &CounterRow) -> String {
    if row.is_clock {
        "msec".into()
    } else {
        row.unit.clone().unwrap_or_default()
    }
}

/// Value in the unit shown (msec for clocks, scaled for sysfs units, count otherwise).
pub fn shown_value(row: &CounterRow, count: f64) -> f64 {
    if row.is_clock {
        count / 1e6
    } else if row.unit.is_some() {
        count * row.scale
    } else {
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
