//! `--metric-only`: the derived metrics alone, one column per metric (its unit as the header),
//! in the table, CSV (`-x`) or JSON (`-j`). perf 6.1 prints only the header lines for
//! software metrics; this follows the column layout of later perf versions.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::app::stat::{CounterRow, IntervalRow, StatResult};
use crate::output::metrics::{Context, Style};
use crate::output::{means, StatExporter};

/// Which format the columns are written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Space-aligned columns.
    Table,
    /// Fields joined by this separator.
    Csv(String),
    /// One JSON object per line, metric unit → value.
    Json,
}

/// The metric-only exporter.
#[derive(Debug)]
pub struct MetricOnly {
    format: Format,
    header_done: bool,
    interval_mode: bool,
}

impl MetricOnly {
    /// A metric-only exporter in `format`.
    pub fn new(format: Format) -> Self {
        MetricOnly {
            format,
            header_done: false,
            interval_mode: false,
        }
    }
}

/// (unit, value text) of every row that has a metric, in row order.
pub fn columns(rows: &[CounterRow], elapsed: f64) -> Vec<(String, String)> {
    let ctx = Context::new(rows, elapsed);
    rows.iter()
        .filter_map(|r| ctx.metric(r))
        .map(|m| {
            let v = match m.style {
                Style::Plain => format!("{:.3}", m.value),
                Style::Percent => format!("{:.2}%", m.value),
                Style::Ratio => format!("{:.2}", m.value),
            };
            (m.unit, v)
        })
        .collect()
}

impl MetricOnly {
    fn write(
        &mut self,
        out: &mut dyn Write,
        time: Option<f64>,
        cols: &[(String, String)],
    ) -> io::Result<()> {
        match &self.format {
            Format::Json => {
                let mut o = Map::new();
                if let Some(t) = time {
                    o.insert("interval".into(), json!(t));
                }
                for (u, v) in cols {
                    o.insert(u.clone(), json!(v));
                }
                writeln!(out, "{}", Value::Object(o))
            }
            Format::Csv(sep) => {
                if !self.header_done {
                    let head: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
                    let lead = if time.is_some() {
                        format!("time{sep}")
                    } else {
                        String::new()
                    };
                    writeln!(out, "{lead}{}", head.join(sep))?;
                    self.header_done = true;
                }
                let vals: Vec<&str> = cols.iter().map(|c| c.1.as_str()).collect();
                let lead = time.map_or(String::new(), |t| format!("{t:.9}{sep}"));
                writeln!(out, "{lead}{}", vals.join(sep))
            }
            Format::Table => {
                let w = |u: &str| u.len().max(8);
                if !self.header_done {
                    let lead = if time.is_some() {
                        format!("#{:>15} ", "time")
                    } else {
                        String::new()
                    };
                    let head: Vec<String> = cols
                        .iter()
                        .map(|(u, _)| format!("{u:>w$}", w = w(u)))
                        .collect();
                    writeln!(out, "{lead} {}", head.join(" "))?;
                    self.header_done = true;
                }
                let lead = time.map_or(String::new(), |t| format!("{t:>16.9} "));
                let vals: Vec<String> = cols
                    .iter()
                    .map(|(u, v)| format!("{v:>w$}", w = w(u)))
                    .collect();
                writeln!(out, "{lead} {}", vals.join(" "))
            }
        }
    }
}

impl StatExporter for MetricOnly {
    fn interval(&mut self, row: &IntervalRow, out: &mut dyn Write) -> io::Result<()> {
        self.interval_mode = true;
        let cols = columns(&row.counters, row.length);
        self.write(out, Some(row.time), &cols)
    }

    fn finish(&mut self, res: &StatResult, out: &mut dyn Write) -> io::Result<()> {
        if self.interval_mode || res.runs.is_empty() {
            return Ok(());
        }
        let m = means(res);
        let cols = columns(&m.rows, m.elapsed.mean);
        if self.format == Format::Table {
            writeln!(out)?;
            writeln!(out, " Performance counter stats for {}:", res.target)?;
            writeln!(out)?;
        }
        self.write(out, None, &cols)?;
        if self.format == Format::Table {
            writeln!(out)?;
            writeln!(out, "{:>18.9} seconds time elapsed", m.elapsed.mean)?;
            writeln!(out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::event::EventClass;

    #[test]
    fn columns_are_the_rows_metrics() {
        let rows = vec![
            CounterRow::counted("task-clock", EventClass::Software, 5e8, true),
            CounterRow::counted("page-faults", EventClass::Software, 2000.0, false),
        ];
        let cols = columns(&rows, 1.0);
        assert_eq!(
            cols,
            vec![
                ("CPUs utilized".to_string(), "0.500".to_string()),
                ("K/sec".to_string(), "4.000".to_string())
            ]
        );
        let mut m = MetricOnly::new(Format::Csv(",".into()));
        let mut buf = Vec::new();
        m.write(&mut buf, None, &cols).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "CPUs utilized,K/sec\n0.500,4.000\n"
        );
    }
}
