//! perf-style human output for stat.

use std::io::{self, Write};

use crate::app::stat::{CounterRow, IntervalRow, StatResult, Status};
use crate::output::metrics::{Context, Style};
use crate::output::{
    counter_value, energy_lines, energy_means, energy_notes, means, EnergyLine, StatExporter,
};

/// The human table, laid out as `perf stat` lays it out.
#[derive(Debug, Default)]
pub struct Table {
    /// Show each event's attr (`-v`).
    pub verbose: bool,
    header_done: bool,
}

impl Table {
    /// A table exporter.
    pub fn new(verbose: bool) -> Self {
        Table {
            verbose,
            header_done: false,
        }
    }
}

const METRIC_WIDTH: usize = 34;

/// Width of the unit column: 4 as perf, wider when a unit such as `Joules` needs it.
fn unit_width(rows: &[CounterRow], energy: &[EnergyLine]) -> usize {
    let counters = rows.iter().map(|r| counter_value(r, r.count, true).1.len());
    let joules = energy.iter().map(|_| "Joules".len());
    counters.chain(joules).max().unwrap_or(0).max(4)
}

fn finish_line(mut s: String, metric: String, noise: Option<f64>, running_pct: f64) -> String {
    s.push_str(&format!("{metric:<METRIC_WIDTH$}"));
    if let Some(pct) = noise {
        s.push_str(&format!("  ( +- {pct:>5.2}% )"));
    }
    if running_pct < 100.0 {
        s.push_str(&format!("  ({running_pct:.2}%)"));
    }
    s.truncate(s.trim_end().len());
    s
}

/// Formats one energy line: joules, with the average power as the metric.
fn energy_line(e: &EnergyLine, uw: usize) -> String {
    if !e.counted {
        let s = format!("{:>18} {:<uw$} {}", "<not counted>", "Joules", e.name);
        return s.trim_end().to_string();
    }
    let s = format!("{:>18.2} {:<uw$} {:<32} ", e.joules, "Joules", e.name);
    finish_line(
        s,
        format!("# {:>8.3} {}", e.watts, e.watt_unit()),
        e.noise,
        100.0,
    )
}

/// Formats one counter line (without a leading interval timestamp). A per-CPU row (`-A`)
/// starts with its CPU, as perf's `CPU0      ` column.
fn line(row: &CounterRow, count: f64, ctx: &Context, noise: Option<f64>, uw: usize) -> String {
    let (value, unit) = counter_value(row, count, true);
    let cpu = row.cpu.map_or(String::new(), |c| format!("CPU{c:<7} "));
    let s = format!("{cpu}{value:>18} {unit:<uw$} {:<32} ", row.name);
    let shown = CounterRow {
        count,
        ..row.clone()
    };
    let metric = match ctx.metric(&shown) {
        Some(m) => {
            let num = match m.style {
                Style::Plain => format!("{:>8.3} {}", m.value, m.unit),
                Style::Percent => format!("{:>7.2}% {}", m.value, m.unit),
                Style::Ratio => format!("{:>7.2}  {}", m.value, m.unit),
            };
            format!("# {num}")
        }
        None => String::new(),
    };
    if row.status == Status::Counted {
        finish_line(s, metric, noise, row.running_pct)
    } else {
        finish_line(s, metric, None, 100.0)
    }
}

/// Decimal places that show a mean to the precision its spread allows, as perf does:
/// `ceil(-log10(stderr)) + 2`, from 2 to 9, found by comparing with powers of ten.
fn precision(stderr: f64) -> usize {
    const TENTHS: [f64; 7] = [1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
    2 + TENTHS.iter().filter(|&&p| stderr < p).count()
}

impl StatExporter for Table {
    fn interval(&mut self, row: &IntervalRow, out: &mut dyn Write) -> io::Result<()> {
        if !self.header_done {
            if row.counters.iter().any(|c| c.cpu.is_some()) {
                writeln!(
                    out,
                    "#           time CPU                    counts unit events"
                )?;
            } else {
                writeln!(out, "#           time             counts unit events")?;
            }
            self.header_done = true;
        }
        let ctx = Context::new(&row.counters, row.length);
        let energy = energy_lines(row.energy.as_ref());
        let uw = unit_width(&row.counters, &energy);
        for c in &row.counters {
            writeln!(
                out,
                "{:>16.9} {}",
                row.time,
                line(c, c.count, &ctx, None, uw)
            )?;
        }
        for e in &energy {
            writeln!(out, "{:>16.9} {}", row.time, energy_line(e, uw))?;
        }
        Ok(())
    }

    fn finish(&mut self, res: &StatResult, out: &mut dyn Write) -> io::Result<()> {
        if self.verbose {
            for (name, attr) in &res.attrs {
                writeln!(out, "{name}: {attr}")?;
            }
            if let Some(last) = res.runs.last() {
                for c in &last.counters {
                    writeln!(
                        out,
                        "{}: {} {} {}",
                        c.name, c.raw.value, c.raw.enabled, c.raw.running
                    )?;
                    if let Some(r) = &c.reason {
                        writeln!(out, "{}: {r}", c.name)?;
                    }
                }
            }
        }
        let notes = energy_notes(res);
        if self.header_done || res.runs.is_empty() {
            // Interval mode prints its rows as they come and no totals, as perf does.
            for n in &notes {
                writeln!(out, "  {n}")?;
            }
            return Ok(());
        }
        let n = res.runs.len();
        let runs = if n > 1 {
            format!(" ({n} runs)")
        } else {
            String::new()
        };
        writeln!(out)?;
        writeln!(out, " Performance counter stats for {}{runs}:", res.target)?;
        writeln!(out)?;
        let first = &res.runs[0];
        let m = means(res);
        let el = m.elapsed;
        let energy = energy_means(res);
        let uw = unit_width(&m.rows, &energy);
        let ctx = Context::new(&m.rows, el.mean);
        for (row, &noise) in m.rows.iter().zip(&m.noise) {
            writeln!(out, "{}", line(row, row.count, &ctx, noise, uw))?;
        }
        for e in &energy {
            writeln!(out, "{}", energy_line(e, uw))?;
        }
        writeln!(out)?;
        if !notes.is_empty() {
            for n in &notes {
                writeln!(out, "  {n}")?;
            }
            writeln!(out)?;
        }
        if n > 1 {
            let p = precision(el.stderr);
            writeln!(
                out,
                "{:>18.p$} +- {:.p$} seconds time elapsed  ( +- {:>5.2}% )",
                el.mean, el.stderr, el.pct
            )?;
        } else {
            writeln!(out, "{:>18.9} seconds time elapsed", el.mean)?;
            if let Some(t) = first.times {
                writeln!(out)?;
                writeln!(out, "{:>18.9} seconds user", t.user)?;
                writeln!(out, "{:>18.9} seconds sys", t.sys)?;
            }
        }
        writeln!(out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::stat::RunResult;
    use crate::counters::event::EventClass;
    use crate::os::launcher::ChildTimes;

    fn row(name: &str, count: f64, clock: bool, status: Status) -> CounterRow {
        let class = if name == "cycles" {
            EventClass::Hardware
        } else {
            EventClass::Software
        };
        CounterRow {
            status,
            ..CounterRow::counted(name, class, count, clock)
        }
    }

    #[test]
    fn elapsed_precision_follows_the_spread() {
        // perf: ceil(-log10(stderr)) + 2 decimals, never fewer than 2, at most 9 here.
        let cases = [
            (5.0, 2),
            (1.0, 2),
            (0.5, 3),
            (0.1, 3),
            (0.05, 4),
            (0.001, 5),
            (0.000_42, 6),
            (1e-12, 9),
            (0.0, 9),
        ];
        for (stderr, want) in cases {
            assert_eq!(precision(stderr), want, "stderr {stderr}");
        }
    }

    #[test]
    fn layout_matches_perf_columns() {
        let res = StatResult {
            target: "'true'".into(),
            runs: vec![RunResult {
                counters: vec![
                    row("task-clock", 790_000.0, true, Status::Counted),
                    row("page-faults", 48.0, false, Status::Counted),
                    row("cycles", 0.0, false, Status::NotSupported),
                ],
                elapsed: 0.001224,
                times: Some(ChildTimes {
                    user: 0.001,
                    sys: 0.0,
                }),
                exit: None,
                energy: None,
            }],
            interrupted_by: None,
            attrs: vec![],
            energy_warnings: vec![],
        };
        let mut buf = Vec::new();
        Table::new(false).finish(&res, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], " Performance counter stats for 'true':");
        assert_eq!(lines[3].find('#'), Some(57), "{}", lines[3]);
        assert!(
            lines[3].starts_with("              0.79 msec task-clock"),
            "{}",
            lines[3]
        );
        assert!(
            lines[3].ends_with("#    0.645 CPUs utilized"),
            "{}",
            lines[3]
        );
        assert!(
            lines[4].starts_with("                48      page-faults"),
            "{}",
            lines[4]
        );
        assert!(lines[4].contains("#   60.759 K/sec"), "{}", lines[4]);
        assert_eq!(lines[5], "   <not supported>      cycles");
        assert_eq!(lines[7], "       0.001224000 seconds time elapsed");
        assert_eq!(lines[9], "       0.001000000 seconds user");
    }

    #[test]
    fn energy_rows_show_joules_watts_and_the_scope_note() {
        use crate::energy::{DomainKind, EnergyReport, EnergyRow};
        let e = |name: &str, j: f64| EnergyRow {
            name: name.into(),
            kind: DomainKind::Package,
            index: 0,
            die: None,
            counted: !j.is_nan(),
            joules: j,
            seconds: 2.0,
            watts: j / 2.0,
            source: "powercap",
            estimate: false,
            warnings: vec![],
        };
        let res = StatResult {
            target: "'x'".into(),
            runs: vec![RunResult {
                counters: vec![row("task-clock", 2e9, true, Status::Counted)],
                elapsed: 2.0,
                times: None,
                exit: None,
                energy: Some(EnergyReport {
                    rows: vec![e("rapl/pkg:0", 30.5), e("rapl/pkg:1", f64::NAN)],
                    totals: vec![],
                    warnings: vec!["window under 1 s".into()],
                    poll: None,
                }),
            }],
            interrupted_by: None,
            attrs: vec![],
            energy_warnings: vec![],
        };
        let mut buf = Vec::new();
        Table::new(false).finish(&res, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let line = text.lines().find(|l| l.contains("rapl/pkg:0")).unwrap();
        assert_eq!(
            line, "             30.50 Joules rapl/pkg:0                       #   15.250 W",
            "{text}"
        );
        let tc = text.lines().find(|l| l.contains("task-clock")).unwrap();
        assert!(
            tc.starts_with("           2000.00 msec   task-clock"),
            "unit column widens for Joules: {tc}"
        );
        assert!(
            text.contains("note: RAPL and GPU energy is whole-package"),
            "{text}"
        );
        assert!(text.contains("warning: window under 1 s"), "{text}");
        // A failed reading is not a measured zero.
        let lost = text.lines().find(|l| l.contains("rapl/pkg:1")).unwrap();
        assert_eq!(lost, "     <not counted> Joules rapl/pkg:1", "{text}");
    }

    #[test]
    fn repeat_shows_noise() {
        let run = |c: f64, e: f64| RunResult {
            counters: vec![row("page-faults", c, false, Status::Counted)],
            elapsed: e,
            times: None,
            exit: None,
            energy: None,
        };
        let res = StatResult {
            target: "'true'".into(),
            runs: vec![run(10.0, 0.001), run(12.0, 0.0012), run(14.0, 0.0014)],
            interrupted_by: None,
            attrs: vec![],
            energy_warnings: vec![],
        };
        let mut buf = Vec::new();
        Table::new(false).finish(&res, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("(3 runs)"), "{text}");
        assert!(
            text.contains("                12      page-faults"),
            "{text}"
        );
        assert!(text.contains("( +-  9.62% )"), "{text}");
        assert!(text.contains("seconds time elapsed  ( +-"), "{text}");
    }
}
