//! `-x SEP`: perf's CSV field order.
//!
//! Per counter: `[interval,][CPUn,]value,unit,event,[noise%,]runtime,pcnt-running,metric-value,metric-unit`
//! (`CPUn` with `-A`).

use std::io::{self, Write};

use super::metrics::Context;
use super::{counter_value, energy_lines, energy_means, energy_notes, EnergyLine, StatExporter};
use crate::stat::{spread, CounterRow, IntervalRow, StatResult};

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

    fn record(
        &self,
        prefix: Option<f64>,
        row: &CounterRow,
        ctx: &Context,
        noise: Option<f64>,
    ) -> String {
        let (value, unit) = counter_value(row, row.count, false);
        let mut f: Vec<String> = Vec::with_capacity(9);
        if let Some(t) = prefix {
            f.push(format!("{t:.9}"));
        }
        if let Some(cpu) = row.cpu {
            f.push(format!("CPU{cpu}"));
        }
        f.push(value);
        f.push(unit);
        f.push(row.name.clone());
        if let Some(n) = noise {
            f.push(format!("{n:.2}%"));
        }
        f.push(row.raw.running.to_string());
        f.push(format!("{:.2}", row.running_pct));
        match ctx.metric(row) {
            Some(m) => {
                f.push(format!("{:.3}", m.value));
                f.push(m.unit);
            }
            None => {
                f.push(String::new());
                f.push(String::new());
            }
        }
        f.join(&self.sep)
    }

    fn energy_record(&self, prefix: Option<f64>, e: &EnergyLine) -> String {
        let mut f: Vec<String> = Vec::with_capacity(9);
        if let Some(t) = prefix {
            f.push(format!("{t:.9}"));
        }
        f.extend([format!("{:.2}", e.joules), "Joules".into(), e.name.clone()]);
        if let Some(n) = e.noise {
            f.push(format!("{n:.2}%"));
        }
        f.extend([
            format!("{}", (e.seconds * 1e9).round() as u64),
            "100.00".into(),
            format!("{:.3}", e.watts),
            e.watt_unit().into(),
        ]);
        f.join(&self.sep)
    }
}

impl StatExporter for Csv {
    fn interval(&mut self, row: &IntervalRow, out: &mut dyn Write) -> io::Result<()> {
        self.interval_mode = true;
        let ctx = Context::new(&row.counters, row.length);
        for c in &row.counters {
            writeln!(out, "{}", self.record(Some(row.time), c, &ctx, None))?;
        }
        for e in energy_lines(row.energy.as_ref()) {
            writeln!(out, "{}", self.energy_record(Some(row.time), &e))?;
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
        let n = res.runs.len();
        let rows = mean_rows(res);
        let el = spread(&res.runs.iter().map(|r| r.elapsed).collect::<Vec<_>>()).mean;
        let ctx = Context::new(&rows, el);
        for (i, row) in rows.iter().enumerate() {
            let noise = (n > 1).then(|| noise_of(res, i));
            writeln!(out, "{}", self.record(None, row, &ctx, noise))?;
        }
        for e in energy_means(res) {
            writeln!(out, "{}", self.energy_record(None, &e))?;
        }
        Ok(())
    }
}

/// Each counter's mean over runs (the last run's row otherwise).
pub fn mean_rows(res: &StatResult) -> Vec<CounterRow> {
    let last = &res.runs[res.runs.len() - 1];
    last.counters
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let vals: Vec<f64> = res.runs.iter().map(|r| r.counters[i].count).collect();
            CounterRow {
                count: spread(&vals).mean,
                ..row.clone()
            }
        })
        .collect()
}

/// The `( +- x% )` figure of counter `i`.
pub fn noise_of(res: &StatResult, i: usize) -> f64 {
    let vals: Vec<f64> = res.runs.iter().map(|r| r.counters[i].count).collect();
    spread(&vals).pct
}
