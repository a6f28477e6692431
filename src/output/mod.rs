//! Presentation: turns typed results into bytes. Nothing here measures.
//!
//! stat has one exporter per format behind [`StatExporter`]: the perf-style table
//! ([`stat::table`]), CSV ([`stat::csv`]) and JSON lines ([`stat::json`]).

pub mod metrics;
pub mod report;
pub mod script;
pub mod stat;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::app::stat::{spread, CounterRow, IntervalRow, Spread, StatResult, Status};
use crate::energy::EnergyReport;
use crate::error::{Error, Result};

/// One stat output format.
pub trait StatExporter {
    /// Writes one `-I` row as it arrives.
    fn interval(&mut self, row: &IntervalRow, out: &mut dyn Write) -> io::Result<()>;
    /// Writes the final result (after every run).
    fn finish(&mut self, result: &StatResult, out: &mut dyn Write) -> io::Result<()>;
}

/// Where output goes: stderr (perf's default for stat, leaving the command's stdout alone),
/// stdout, or a file. Text is gathered in a buffer and written with one system call per flush.
pub struct Sink {
    dest: Dest,
    pending: Vec<u8>,
    last_flush: Option<Instant>,
}

enum Dest {
    Stderr,
    Stdout,
    File(PathBuf, File),
}

impl Sink {
    /// Standard error.
    pub fn stderr() -> Sink {
        Sink::new(Dest::Stderr)
    }

    /// Standard output.
    pub fn stdout() -> Sink {
        Sink::new(Dest::Stdout)
    }

    /// Opens `-o FILE` (truncating unless `append`), failing before anything runs.
    pub fn file(path: &Path, append: bool) -> Result<Sink> {
        let f = crate::sysroot::create_output(path, 0o666, append).map_err(|source| {
            Error::CantCreate {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(Sink::new(Dest::File(path.to_path_buf(), f)))
    }

    /// `--log-fd N`: an inherited descriptor (duplicated, so closing ours leaves the caller's).
    pub fn fd(n: i32) -> Result<Sink> {
        let fd = crate::os::sys::dup_inherited(n).map_err(|e| {
            Error::Usage(format!(
                "--log-fd {n}: descriptor {n} is not open ({e}); open it in the shell, e.g. `3>log`"
            ))
        })?;
        Ok(Sink::new(Dest::File(
            PathBuf::from(format!("descriptor {n}")),
            File::from(fd),
        )))
    }

    fn new(dest: Dest) -> Sink {
        Sink {
            dest,
            pending: Vec::new(),
            last_flush: None,
        }
    }

    /// Runs `f` against the sink and writes everything out. A closed pipe is not an error (the
    /// reader went away).
    pub fn write_with(&mut self, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
        self.write_batched(f, Duration::ZERO)
    }

    /// Runs `f` against the sink; writes out only if the last write is at least `max_delay`
    /// old, so that output produced at a high rate (`-I 1`) costs one system call per
    /// `max_delay` rather than one per row, and no text waits longer than that while more
    /// arrives. Text still pending is written by the next [`Sink::write_with`].
    pub fn write_batched(
        &mut self,
        f: impl FnOnce(&mut dyn Write) -> io::Result<()>,
        max_delay: Duration,
    ) -> Result<()> {
        // Writing into a Vec cannot fail; an exporter's own error is passed on.
        f(&mut self.pending).map_err(|e| Error::io(self.name(), e))?;
        let now = Instant::now();
        if self
            .last_flush
            .is_some_and(|t| now.duration_since(t) < max_delay)
        {
            return Ok(());
        }
        self.last_flush = Some(now);
        let r = match &mut self.dest {
            Dest::Stderr => io::stderr().lock().write_all(&self.pending),
            Dest::Stdout => io::stdout().lock().write_all(&self.pending),
            Dest::File(_, f) => f.write_all(&self.pending),
        };
        self.pending.clear();
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(Error::io(self.name(), e)),
            Ok(()) => Ok(()),
        }
    }

    fn name(&self) -> String {
        match &self.dest {
            Dest::Stderr => "writing to stderr".into(),
            Dest::Stdout => "writing to stdout".into(),
            Dest::File(p, _) => format!("writing {}", p.display()),
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

/// Groups the integer digits of `value` (`1234567.50` → `1,234,567.50`) with `sep` after
/// the group sizes of a C `grouping` string (last size repeats), as `printf("%'f")` does.
/// Text that does not start with digits (`<not counted>`) is returned as is.
pub fn group_digits(value: &str, sep: &str, grouping: &[u8]) -> String {
    let int_len = value.bytes().take_while(u8::is_ascii_digit).count();
    if int_len == 0 || grouping.is_empty() {
        return value.to_string();
    }
    let (int, rest) = value.split_at(int_len);
    let mut groups: Vec<&str> = Vec::new();
    let mut end = int.len();
    let mut g = 0;
    while end > 0 {
        let size = grouping[g.min(grouping.len() - 1)];
        // CHAR_MAX (or 0 after the first) means no further grouping.
        if size == 0 || size >= 127 {
            groups.push(&int[..end]);
            break;
        }
        let start = end.saturating_sub(size as usize);
        groups.push(&int[start..end]);
        end = start;
        g += 1;
    }
    groups.reverse();
    format!("{}{rest}", groups.join(sep))
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
            } else if let (Some(u), 1.0) = (&row.unit, row.scale) {
                // perf's tool events (`duration_time` in ns) and unscaled units: integers.
                (format!("{}", count.round() as u64), u.clone())
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

/// An energy figure as the exporters print it: one domain, or the sum of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyLine {
    /// `rapl/pkg:0`, `nvml/1`, or a per-kind sum such as `rapl/pkg`.
    pub name: String,
    /// Joules (mean over runs with `-r`).
    pub joules: f64,
    /// Window in seconds.
    pub seconds: f64,
    /// Average power in watts.
    pub watts: f64,
    /// Integrated from power readings rather than read from an energy counter.
    pub estimate: bool,
    /// Backend: perf, powercap, msr, nvml.
    pub source: String,
    /// With `-r`: the spread of the joules in percent.
    pub noise: Option<f64>,
    /// False when the reading failed: printed as `<not counted>`, never as 0.
    pub counted: bool,
    /// A per-kind sum that leaves out a domain that was not counted.
    pub partial: bool,
}

impl EnergyLine {
    /// The metric unit: watts, marked when estimated or when a sum is partial.
    pub fn watt_unit(&self) -> &'static str {
        match (self.estimate, self.partial) {
            (false, false) => "W",
            (true, false) => "W (estimate)",
            (false, true) => "W (partial sum)",
            (true, true) => "W (estimate, partial sum)",
        }
    }
}

fn lines_of(r: &EnergyReport) -> Vec<EnergyLine> {
    let rows = r.rows.iter().map(|e| EnergyLine {
        name: e.name.clone(),
        joules: e.joules,
        seconds: e.seconds,
        watts: e.watts,
        estimate: e.estimate,
        source: e.source.to_string(),
        noise: None,
        counted: e.counted,
        partial: false,
    });
    let totals = r.totals.iter().map(|t| EnergyLine {
        name: t.name.clone(),
        joules: t.joules,
        seconds: t.seconds,
        watts: t.watts,
        estimate: t.estimate,
        source: "sum".to_string(),
        noise: None,
        counted: t.counted,
        partial: t.partial,
    });
    rows.chain(totals).collect()
}

/// Energy lines of one report (an interval or a single run).
pub fn energy_lines(r: Option<&EnergyReport>) -> Vec<EnergyLine> {
    r.map(lines_of).unwrap_or_default()
}

/// The counts a `stat` summary prints: each counter's mean over the runs (the last run's row
/// otherwise), and the spreads `-r` shows.
#[derive(Debug)]
pub struct Means {
    /// One row per counter, its count the mean over the runs.
    pub rows: Vec<CounterRow>,
    /// Each row's `( +- x% )` figure, when there were several runs.
    pub noise: Vec<Option<f64>>,
    /// Elapsed seconds over the runs.
    pub elapsed: Spread,
}

/// The [`Means`] of a run set with at least one run.
pub fn means(res: &StatResult) -> Means {
    let several = res.runs.len() > 1;
    let last = &res.runs[res.runs.len() - 1];
    let (rows, noise) = last
        .counters
        .iter()
        .enumerate()
        .map(|(i, row)| {
            // Match by position, or by name and unit when runs differ in shape (threads that
            // came and went under -p).
            let vals: Vec<f64> = res
                .runs
                .iter()
                .filter_map(|r| {
                    r.counters
                        .get(i)
                        .filter(|c| c.name == row.name && c.cpu == row.cpu && c.aggr == row.aggr)
                        .or_else(|| {
                            r.counters.iter().find(|c| {
                                c.name == row.name && c.cpu == row.cpu && c.aggr == row.aggr
                            })
                        })
                        .map(|c| c.count)
                })
                .collect();
            let s = spread(&vals);
            let mean = CounterRow {
                count: s.mean,
                ..row.clone()
            };
            // perf shows no spread on aggregated rows.
            (mean, (several && row.aggr.is_none()).then_some(s.pct))
        })
        .unzip();
    let elapsed: Vec<f64> = res.runs.iter().map(|r| r.elapsed).collect();
    Means {
        rows,
        noise,
        elapsed: spread(&elapsed),
    }
}

/// Energy lines averaged over every run, with the spread when there are several. Runs in
/// which a line was not counted are left out of its mean; a line counted in no run stays
/// `<not counted>`, and a sum partial in any run stays partial.
pub fn energy_means(res: &StatResult) -> Vec<EnergyLine> {
    let per_run: Vec<Vec<EnergyLine>> = res
        .runs
        .iter()
        .filter_map(|r| r.energy.as_ref())
        .map(lines_of)
        .collect();
    let Some(last) = per_run.last() else {
        return Vec::new();
    };
    last.iter()
        .enumerate()
        .map(|(i, l)| {
            let counted: Vec<&EnergyLine> = per_run
                .iter()
                .filter_map(|r| r.get(i))
                .filter(|x| x.counted)
                .collect();
            let pick =
                |f: fn(&EnergyLine) -> f64| -> Vec<f64> { counted.iter().map(|x| f(x)).collect() };
            if counted.is_empty() {
                return l.clone();
            }
            let j = spread(&pick(|x| x.joules));
            EnergyLine {
                joules: j.mean,
                seconds: spread(&pick(|x| x.seconds)).mean,
                watts: spread(&pick(|x| x.watts)).mean,
                noise: (counted.len() > 1).then_some(j.pct),
                counted: true,
                partial: per_run
                    .iter()
                    .filter_map(|r| r.get(i))
                    .any(|x| x.partial || (x.source == "sum" && !x.counted)),
                ..l.clone()
            }
        })
        .collect()
}

/// Notes to print after the figures: the scope of energy, and every warning once.
pub fn energy_notes(res: &StatResult) -> Vec<String> {
    let any = res.runs.iter().any(|r| r.energy.is_some());
    if !any {
        return Vec::new();
    }
    let mut notes = vec![format!("note: {}", crate::energy::SCOPE_NOTE)];
    let warnings = res.energy_warnings.iter().chain(
        res.runs
            .iter()
            .filter_map(|r| r.energy.as_ref())
            .flat_map(|e| {
                e.warnings
                    .iter()
                    .chain(e.rows.iter().flat_map(|r| r.warnings.iter()))
            }),
    );
    for w in warnings {
        let w = format!("warning: {w}");
        if !notes.contains(&w) {
            notes.push(w);
        }
    }
    notes
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

    #[test]
    fn locale_grouping() {
        assert_eq!(group_digits("1234567", ",", &[3]), "1,234,567");
        assert_eq!(group_digits("1234567.89", ".", &[3, 3]), "1.234.567.89");
        // en_IN: 3 then 2s.
        assert_eq!(group_digits("123456789", ",", &[3, 2]), "12,34,56,789");
        assert_eq!(group_digits("999", ",", &[3]), "999");
        assert_eq!(group_digits("<not counted>", ",", &[3]), "<not counted>");
        assert_eq!(group_digits("12345", ",", &[3, 127]), "12,345");
    }
}
