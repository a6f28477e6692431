//! `-j/--json`: one JSON object per counter line, with perf's keys.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::app::stat::{CounterRow, IntervalRow, StatResult, Status};
use crate::output::metrics::Context;
use crate::output::{
    counter_value, energy_lines, energy_means, energy_notes, means, EnergyLine, StatExporter,
};

/// JSON lines.
#[derive(Debug, Default)]
pub struct Json {
    interval_mode: bool,
}

impl Json {
    /// A JSON-lines exporter.
    pub fn new() -> Self {
        Json::default()
    }
}

/// The object for one counter line.
pub fn object(interval: Option<f64>, row: &CounterRow, ctx: &Context, noise: Option<f64>) -> Value {
    let mut o = Map::new();
    if let Some(t) = interval {
        o.insert("interval".into(), json!(t));
    }
    if let Some(cpu) = row.cpu {
        o.insert("cpu".into(), json!(cpu.to_string()));
    }
    let (value, unit) = counter_value(row, row.count, false);
    let value = match row.status {
        Status::Counted => format!("{:.6}", crate::output::shown_value(row, row.count)),
        _ => value,
    };
    o.insert("counter-value".into(), json!(value));
    o.insert("unit".into(), json!(unit));
    o.insert("event".into(), json!(row.name));
    if let Some(n) = noise {
        o.insert("variance".into(), json!(n));
    }
    o.insert("event-runtime".into(), json!(row.raw.running));
    o.insert("pcnt-running".into(), json!(row.running_pct));
    let (mv, mu) = ctx
        .metric(row)
        .map_or((0.0, String::new()), |m| (m.value, m.unit));
    o.insert("metric-value".into(), json!(mv));
    o.insert("metric-unit".into(), json!(mu));
    Value::Object(o)
}

/// The object for one energy line: perf's keys, plus the backend and whether it is estimated.
pub fn energy_object(interval: Option<f64>, e: &EnergyLine) -> Value {
    let mut o = Map::new();
    if let Some(t) = interval {
        o.insert("interval".into(), json!(t));
    }
    if !e.counted {
        o.insert("counter-value".into(), json!("<not counted>"));
        o.insert("unit".into(), json!("Joules"));
        o.insert("event".into(), json!(e.name));
        o.insert("event-runtime".into(), json!(0));
        o.insert("pcnt-running".into(), json!(0.0));
        o.insert("metric-value".into(), json!(0.0));
        o.insert("metric-unit".into(), json!(""));
        o.insert("energy-source".into(), json!(e.source));
        o.insert("estimate".into(), json!(e.estimate));
        return Value::Object(o);
    }
    o.insert("counter-value".into(), json!(format!("{:.6}", e.joules)));
    o.insert("unit".into(), json!("Joules"));
    o.insert("event".into(), json!(e.name));
    if let Some(n) = e.noise {
        o.insert("variance".into(), json!(n));
    }
    o.insert(
        "event-runtime".into(),
        json!((e.seconds * 1e9).round() as u64),
    );
    o.insert("pcnt-running".into(), json!(100.0));
    o.insert("metric-value".into(), json!(e.watts));
    o.insert("metric-unit".into(), json!("W"));
    o.insert("energy-source".into(), json!(e.source));
    o.insert("estimate".into(), json!(e.estimate));
    if e.partial {
        o.insert("partial".into(), json!(true));
    }
    Value::Object(o)
}

impl StatExporter for Json {
    fn interval(&mut self, row: &IntervalRow, out: &mut dyn Write) -> io::Result<()> {
        self.interval_mode = true;
        let ctx = Context::new(&row.counters, row.length);
        for c in &row.counters {
            writeln!(out, "{}", object(Some(row.time), c, &ctx, None))?;
        }
        for e in energy_lines(row.energy.as_ref()) {
            writeln!(out, "{}", energy_object(Some(row.time), &e))?;
        }
        Ok(())
    }

    fn finish(&mut self, res: &StatResult, out: &mut dyn Write) -> io::Result<()> {
        let notes = energy_notes(res);
        let emit_notes = |out: &mut dyn Write| -> io::Result<()> {
            for note in &notes {
                let (key, text) = note.split_once(": ").unwrap_or(("note", note));
                writeln!(out, "{}", json!({ key: text }))?;
            }
            Ok(())
        };
        if self.interval_mode || res.runs.is_empty() {
            return emit_notes(out);
        }
        let m = means(res);
        let ctx = Context::new(&m.rows, m.elapsed.mean);
        for (i, (row, &noise)) in m.rows.iter().zip(&m.noise).enumerate() {
            let mut o = object(None, row, &ctx, noise);
            super::baseline::add_counter_runs(&mut o, res, i);
            writeln!(out, "{o}")?;
        }
        for (i, e) in energy_means(res).iter().enumerate() {
            let mut o = energy_object(None, e);
            super::baseline::add_energy_runs(&mut o, res, i);
            writeln!(out, "{o}")?;
        }
        emit_notes(out)
    }
}
