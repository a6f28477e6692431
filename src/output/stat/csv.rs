//! `-x SEP`: perf's CSV field order.
//!
//! Per counter: `[interval,][CPUn,]value,unit,event,[noise%,]runtime,pcnt-running,metric-value,metric-unit`
//! (`CPUn` with `-A`).

use std::io::{self, Write};

use crate::app::stat::{CounterRow, IntervalRow, StatResult};
use crate::output::metrics::Context;
use crate::output::{
    counter_value, energy_lines, energy_means, energy_notes, means, EnergyLine, StatExporter,
};

/// CSV with a chosen separator.
#[derive(Debug)]
pub struct Csv {
    /// Field separator.
    pub sep: String,
    interval_mode: bool,
}

impl Csv {
    /// A CSV exporter with `sep` between fields.
    pub fn new(sep: &str) -> Self {
        Csv {
            sep: sep.to_string(),
            interval_mode: false,
        }
    }

    /// Writes one counter line (with its newline).
    fn record(
        &self,
        out: &mut dyn Write,
        prefix: Option<f64>,
        row: &CounterRow,
        ctx: &Context,
        noise: Option<f64>,
    ) -> io::Result<()> {
        let (value, unit) = counter_value(row, row.count, false);
        let mut f = Fields::new(out, &self.sep);
        if let Some(t) = prefix {
            f.field(format_args!("{t:.9}"))?;
        }
        if let Some(cpu) = row.cpu {
            f.field(format_args!("CPU{cpu}"))?;
        }
        f.field(format_args!("{value}"))?;
        f.field(format_args!("{unit}"))?;
        f.field(format_args!("{}", row.name))?;
        if let Some(n) = noise {
            f.field(format_args!("{n:.2}%"))?;
        }
        f.field(format_args!("{}", row.raw.running))?;
        f.field(format_args!("{:.2}", row.running_pct))?;
        match ctx.metric(row) {
            Some(m) => {
                f.field(format_args!("{:.3}", m.value))?;
                f.field(format_args!("{}", m.unit))?;
            }
            None => {
                f.field(format_args!(""))?;
                f.field(format_args!(""))?;
            }
        }
        f.end()
    }

    /// Writes one energy line (with its newline).
    fn energy_record(
        &self,
        out: &mut dyn Write,
        prefix: Option<f64>,
        e: &EnergyLine,
    ) -> io::Result<()> {
        let mut f = Fields::new(out, &self.sep);
        if let Some(t) = prefix {
            f.field(format_args!("{t:.9}"))?;
        }
        if !e.counted {
            // perf's shape for a count that failed: no run time, no metric.
            f.field(format_args!("<not counted>"))?;
            f.field(format_args!("Joules"))?;
            f.field(format_args!("{}", e.name))?;
            f.field(format_args!("0"))?;
            f.field(format_args!("0.00"))?;
            f.field(format_args!(""))?;
            f.field(format_args!(""))?;
            return f.end();
        }
        f.field(format_args!("{:.2}", e.joules))?;
        f.field(format_args!("Joules"))?;
        f.field(format_args!("{}", e.name))?;
        if let Some(n) = e.noise {
            f.field(format_args!("{n:.2}%"))?;
        }
        f.field(format_args!("{}", (e.seconds * 1e9).round() as u64))?;
        f.field(format_args!("100.00"))?;
        f.field(format_args!("{:.3}", e.watts))?;
        f.field(format_args!("{}", e.watt_unit()))?;
        f.end()
    }
}

/// Writes separator-joined fields straight to the output (no string per field: `-I 1` writes a
/// thousand lines a second).
struct Fields<'a> {
    out: &'a mut dyn Write,
    sep: &'a str,
    first: bool,
}

impl<'a> Fields<'a> {
    fn new(out: &'a mut dyn Write, sep: &'a str) -> Self {
        Fields {
            out,
            sep,
            first: true,
        }
    }

    fn field(&mut self, value: std::fmt::Arguments<'_>) -> io::Result<()> {
        if !self.first {
            self.out.write_all(self.sep.as_bytes())?;
        }
        self.first = false;
        self.out.write_fmt(value)
    }

    fn end(self) -> io::Result<()> {
        self.out.write_all(b"\n")
    }
}

impl StatExporter for Csv {
    fn interval(&mut self, row: &IntervalRow, out: &mut dyn Write) -> io::Result<()> {
        self.interval_mode = true;
        let ctx = Context::new(&row.counters, row.length);
        for c in &row.counters {
            self.record(out, Some(row.time), c, &ctx, None)?;
        }
        for e in energy_lines(row.energy.as_ref()) {
            self.energy_record(out, Some(row.time), &e)?;
        }
        Ok(())
    }

    fn finish(&mut self, res: &StatResult, out: &mut dyn Write) -> io::Result<()> {
        for note in energy_notes(res) {
            writeln!(out, "# {note}")?;
        }
        if self.interval_mode || res.runs.is_empty() {
            return Ok(());
        }
        let m = means(res);
        let ctx = Context::new(&m.rows, m.elapsed.mean);
        for (row, &noise) in m.rows.iter().zip(&m.noise) {
            self.record(out, None, row, &ctx, noise)?;
        }
        for e in energy_means(res) {
            self.energy_record(out, None, &e)?;
        }
        Ok(())
    }
}
