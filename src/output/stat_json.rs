//! `-j/--json`: one JSON object per counter line, with perf's keys.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use super::metrics::Context;
use super::stat_csv::{mean_rows, noise_of};
use super::{counter_value, StatExporter};
use crate::stat::{spread, CounterRow, IntervalRow, StatResult, Status};

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
    let (value, unit) = counter_value(row, row.count, false);
    let value = match row.status {
        Status::Counted => format!("{:.6}", super::shown_value(row, row.count)),
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

impl StatExporter for Json {
    fn interval(&mut self, row: &IntervalRow, out: &mut dyn Write) -> io::Result<()> {
        self.interval_mode = true;
        let ctx = Context::new(&row.counters, row.length);
        for c in &row.counters {
            writeln!(out, "{}", object(Some(row.time), c, &ctx, None))?;
        }
        Ok(())
    }

    fn finish(&mut self, res: &StatResult, out: &mut dyn Write) -> io::Result<()> {
        if self.interval_mode || res.runs.is_empty() {
            return Ok(());
        }
        let n = res.runs.len();
        let rows = mean_rows(res);
        let el = spread(&res.runs.iter().map(|r| r.elapsed).collect::<Vec<_>>()).mean;
        let ctx = Context::new(&rows, el);
        for (i, row) in rows.iter().enumerate() {
            let noise = (n > 1).then(|| noise_of(res, i));
            writeln!(out, "{}", object(None, row, &ctx, noise))?;
        }
        Ok(())
    }
}
