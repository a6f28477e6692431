//! The regression gate's bytes: the per-run values `-r N -j` adds to each line (what a later
//! `--baseline` compares against), the `run-info` line, and the comparison as text or as one
//! JSON `verdict` line.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::app::stat::baseline::{Comparison, Outcome, RunInfo, Series, Verdict};
use crate::app::stat::{StatResult, Status};
use crate::output::{energy_lines, means, shown_value};

/// Each run's value of counter `i`, in the unit `counter-value` is written in.
fn counter_values(res: &StatResult, i: usize) -> Vec<f64> {
    res.runs
        .iter()
        .filter_map(|r| r.counters.get(i))
        .filter(|c| c.status == Status::Counted)
        .map(|c| shown_value(c, c.count))
        .collect()
}

/// Each run's joules of energy line `i`.
fn energy_values(res: &StatResult, i: usize) -> Vec<f64> {
    res.runs
        .iter()
        .filter_map(|r| energy_lines(r.energy.as_ref()).get(i).map(|e| e.joules))
        .collect()
}

fn add(o: &mut Value, values: Vec<f64>) {
    if let Value::Object(m) = o {
        m.insert("runs".into(), json!(values.len()));
        m.insert("run-values".into(), json!(values));
    }
}

/// With `-r N` (N > 1): adds `runs` and `run-values` to counter line `i`.
pub fn add_counter_runs(o: &mut Value, res: &StatResult, i: usize) {
    if res.runs.len() > 1 {
        add(o, counter_values(res, i));
    }
}

/// With `-r N` (N > 1): adds `runs` and `run-values` (joules) to energy line `i`.
pub fn add_energy_runs(o: &mut Value, res: &StatResult, i: usize) {
    if res.runs.len() > 1 {
        add(o, energy_values(res, i));
    }
}

/// The `{"run-info": …}` line written after a repeated summary.
pub fn write_run_info(info: &RunInfo, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", json!({ "run-info": info }))
}

/// This measurement's series, keyed and valued as the JSON lines write them.
pub fn series(res: &StatResult) -> Vec<Series> {
    if res.runs.is_empty() {
        return Vec::new();
    }
    let m = means(res);
    let mut out = Vec::new();
    for (i, row) in m.rows.iter().enumerate() {
        if row.status != Status::Counted {
            continue;
        }
        let event = match row.cpu {
            Some(cpu) => format!("{} (cpu {cpu})", row.name),
            None => row.name.clone(),
        };
        let (_, unit) = crate::output::counter_value(row, row.count, false);
        out.push(Series {
            event,
            unit: unit.to_string(),
            values: counter_values(res, i),
            mean: shown_value(row, row.count),
        });
    }
    for (i, e) in crate::output::energy_means(res).iter().enumerate() {
        out.push(Series {
            event: e.name.clone(),
            unit: "Joules".into(),
            values: energy_values(res, i),
            mean: e.joules,
        });
    }
    out
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:+.1}%"),
        _ => "n/a".into(),
    }
}

fn status(c: &Comparison, v: &Verdict) -> &'static str {
    if c.regressed {
        "REGRESSED"
    } else if c.p_value.is_none() {
        "untested"
    } else if !c.significant {
        "no change"
    } else if c.change_pct.is_some_and(|p| p > 0.0) {
        if c.gated && v.fail_above.is_some() {
            "higher (within threshold)"
        } else {
            "higher"
        }
    } else {
        "lower"
    }
}

/// The comparison as text, after perf's table.
pub fn write_text(v: &Verdict, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        " Compared with baseline {} (Welch's t-test, {:.0}% confidence):",
        v.baseline, v.confidence
    )?;
    writeln!(out)?;
    let w = v
        .compared
        .iter()
        .map(|c| c.event.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "   {:<w$}  {:>16}  {:>16}  {:>9}  {:>20}  {:>7}  verdict",
        "event", "baseline", "current", "change", "confidence interval", "p"
    )?;
    for c in &v.compared {
        let ci = c.ci_pct.map_or_else(
            || "n/a".to_owned(),
            |(lo, hi)| format!("[{}, {}]", pct(Some(lo)), pct(Some(hi))),
        );
        let p = c
            .p_value
            .map_or_else(|| "n/a".to_owned(), |p| format!("{p:.4}"));
        writeln!(
            out,
            "   {:<w$}  {:>16.3}  {:>16.3}  {:>9}  {:>20}  {:>7}  {}{}",
            c.event,
            c.baseline,
            c.current,
            pct(c.change_pct),
            ci,
            p,
            status(c, v),
            c.note
                .as_deref()
                .map_or(String::new(), |n| format!(" ({n})"))
        )?;
    }
    if !v.missing_in_baseline.is_empty() {
        writeln!(
            out,
            "   not in the baseline: {}",
            v.missing_in_baseline.join(", ")
        )?;
    }
    if !v.missing_in_run.is_empty() {
        writeln!(
            out,
            "   not counted in this run: {}",
            v.missing_in_run.join(", ")
        )?;
    }
    for d in &v.differences {
        writeln!(out, "   note: the baseline differs: {d}")?;
    }
    writeln!(out)?;
    match (v.result, v.fail_above) {
        (Outcome::Fail, Some(t)) => writeln!(
            out,
            " Verdict: FAIL: {} regressed by more than {t}% (significant at {:.0}%)",
            v.regressed.join(", "),
            v.confidence
        )?,
        (Outcome::Pass, Some(t)) => writeln!(
            out,
            " Verdict: pass: no gated event grew by more than {t}% with significance"
        )?,
        _ => writeln!(out, " Verdict: report only (give --fail-above PCT to gate)")?,
    }
    writeln!(out)
}

/// The comparison as one JSON line, `{"verdict": …}`.
pub fn write_json(v: &Verdict, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", json!({ "verdict": v }))
}
