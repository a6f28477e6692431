//! `stat --baseline FILE.json`: a regression gate for CI.
//!
//! The baseline is what `ruperf stat -r N -j -o FILE.json` wrote: one JSON line per event with
//! its mean and, since this gate exists, its per-run values (`run-values`), plus one
//! `run-info` line saying which ruperf, machine and target produced it. The current run's
//! repeated values are compared with the baseline's, event by event, with Welch's t-test
//! (two samples of unequal variances and small sizes; see README), and an event regresses
//! when the confidence interval of its change lies wholly above `--fail-above PCT`: it grew
//! by more than the threshold, with significance. This module only computes; `output::stat::baseline` renders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{Error, Result};
use crate::sysroot::Sysroot;

/// One event's values over the runs, in the unit its `counter-value` is written in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Event name, with ` (cpu N)` for per-CPU rows.
    pub event: String,
    /// Unit as written (`msec`, `Joules`, `""`).
    pub unit: String,
    /// One value per run (empty when the file holds only the mean).
    pub values: Vec<f64>,
    /// The mean as written.
    pub mean: f64,
}

/// Where a set of figures came from: checked so that a baseline from another machine,
/// ruperf or target is said to be one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// ruperf's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Machine architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// CPU model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Online CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<usize>,
    /// What was measured (perf's header text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Number of runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<usize>,
}

impl RunInfo {
    /// This machine and ruperf, for a measurement of `target` over `runs` runs.
    pub fn current(sysroot: &Sysroot, target: &str, runs: usize) -> RunInfo {
        let uts = nix::sys::utsname::uname().ok();
        let s = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref().map(|u| f(u).to_string_lossy().into_owned())
        };
        let cpu = std::fs::read_to_string(sysroot.path("/proc/cpuinfo"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            });
        RunInfo {
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            host: s(|u| u.nodename()),
            kernel: s(|u| u.release()),
            arch: s(|u| u.machine()),
            cpu,
            cpus: Some(crate::counters::pmu::online_cpus(sysroot).len()),
            target: Some(target.to_owned()),
            runs: Some(runs),
        }
    }

    /// The fields that differ, as `name: baseline → current`.
    pub fn differences(&self, now: &RunInfo) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |name: &str, a: Option<String>, b: Option<String>| {
            if let (Some(a), Some(b)) = (a, b) {
                if a != b {
                    out.push(format!("{name}: {a} → {b}"));
                }
            }
        };
        cmp("ruperf", self.version.clone(), now.version.clone());
        cmp("host", self.host.clone(), now.host.clone());
        cmp("kernel", self.kernel.clone(), now.kernel.clone());
        cmp("arch", self.arch.clone(), now.arch.clone());
        cmp("cpu", self.cpu.clone(), now.cpu.clone());
        cmp(
            "cpus",
            self.cpus.map(|c| c.to_string()),
            now.cpus.map(|c| c.to_string()),
        );
        cmp("target", self.target.clone(), now.target.clone());
        out
    }
}

/// A parsed baseline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The file.
    pub path: PathBuf,
    /// Its `run-info` line, when it has one.
    pub info: Option<RunInfo>,
    /// Its counted events.
    pub series: Vec<Series>,
    /// Events it lists as not counted or not supported.
    pub not_counted: Vec<String>,
}

fn data_err(path: &Path, line: usize, what: &str) -> Error {
    Error::Data(format!(
        "{} line {line}: {what} (a baseline is the output of `ruperf stat -r N -j -o FILE.json`)",
        path.display()
    ))
}

/// An event's key: its name, and its CPU for `-A` rows.
fn key_of(o: &serde_json::Map<String, Value>) -> Option<String> {
    let event = o.get("event")?.as_str()?;
    Some(match o.get("cpu").and_then(Value::as_str) {
        Some(cpu) => format!("{event} (cpu {cpu})"),
        None => event.to_owned(),
    })
}

impl Baseline {
    /// Reads and parses a baseline file.
    pub fn load(path: &Path) -> Result<Baseline> {
        let mut f = crate::sysroot::open_regular(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::NoInput {
                path: path.to_path_buf(),
                reason: "no such baseline (write one with `ruperf stat -r 5 -j -o FILE.json`)"
                    .into(),
            },
            _ => Error::io(format!("reading the baseline {}", path.display()), source),
        })?;
        let mut text = String::new();
        // A baseline is a few KiB; refuse anything absurd rather than read it all.
        std::io::Read::read_to_string(&mut std::io::Read::take(&mut f, 16 << 20), &mut text)
            .map_err(|e| Error::io(format!("reading the baseline {}", path.display()), e))?;
        Baseline::parse(path, &text)
    }

    /// Parses the JSON lines of a baseline.
    pub fn parse(path: &Path, text: &str) -> Result<Baseline> {
        let mut b = Baseline {
            path: path.to_path_buf(),
            info: None,
            series: Vec::new(),
            not_counted: Vec::new(),
        };
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(line).map_err(|_| data_err(path, n, "not a JSON object"))?;
            let Some(o) = v.as_object() else {
                return Err(data_err(path, n, "not a JSON object"));
            };
            if let Some(info) = o.get("run-info") {
                b.info = serde_json::from_value(info.clone()).ok();
                continue;
            }
            if o.contains_key("interval") {
                return Err(data_err(path, n, "an -I interval row, not a summary"));
            }
            let (Some(key), Some(value)) = (key_of(o), o.get("counter-value")) else {
                continue; // notes, warnings, verdicts
            };
            let Some(mean) = value.as_str().and_then(|s| s.parse::<f64>().ok()) else {
                b.not_counted.push(key);
                continue;
            };
            let values = match o.get("run-values") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_f64()
                            .ok_or_else(|| data_err(path, n, "run-values must be numbers"))
                    })
                    .collect::<Result<Vec<f64>>>()?,
                Some(_) => return Err(data_err(path, n, "run-values must be a list")),
                None => Vec::new(),
            };
            let unit = o
                .get("unit")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            b.series.push(Series {
                event: key,
                unit,
                values,
                mean,
            });
        }
        if b.series.is_empty() && b.not_counted.is_empty() {
            return Err(Error::Data(format!(
                "{}: no event lines (a baseline is the output of `ruperf stat -r N -j -o FILE.json`)",
                path.display()
            )));
        }
        Ok(b)
    }
}

/// What the gate checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// Fail when a gated event's mean grows by more than this percentage, significantly.
    pub fail_above: Option<f64>,
    /// Only these events are gated (all compared events when None).
    pub events: Option<Vec<String>>,
    /// Confidence level, e.g. 0.95.
    pub confidence: f64,
}

/// The outcome of Welch's t-test on two samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Welch {
    /// Difference of the means (current − baseline).
    pub diff: f64,
    /// Half-width of the confidence interval of the difference.
    pub half_width: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Welch–Satterthwaite degrees of freedom (infinite when both variances are 0).
    pub df: f64,
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0);
    (m, v)
}

/// Welch's t-test of `b` (current) against `a` (baseline); None with fewer than two values
/// on either side.
pub fn welch(a: &[f64], b: &[f64], confidence: f64) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let se2 = sa + sb;
    let diff = mb - ma;
    if se2 <= 0.0 || !se2.is_finite() {
        // Both sides constant: any difference is certain, none is none.
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        return Some(Welch {
            diff,
            half_width: 0.0,
            p,
            df: f64::INFINITY,
        });
    }
    let df = se2 * se2 / (sa * sa / (a.len() as f64 - 1.0) + sb * sb / (b.len() as f64 - 1.0));
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let se = se2.sqrt();
    let p = 2.0 * (1.0 - t.cdf((diff / se).abs()));
    let q = t.inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    Some(Welch {
        diff,
        half_width: q * se,
        p: p.clamp(0.0, 1.0),
        df,
    })
}

/// One event compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Comparison {
    /// Event (with its CPU for per-CPU rows).
    pub event: String,
    /// Unit of the means.
    pub unit: String,
    /// Baseline mean.
    pub baseline: f64,
    /// Current mean.
    pub current: f64,
    /// Runs on each side.
    pub baseline_runs: usize,
    /// Runs in this measurement.
    pub current_runs: usize,
    /// Change of the mean in percent of the baseline (None when the baseline is 0).
    pub change_pct: Option<f64>,
    /// Confidence interval of the change, in percent of the baseline.
    pub ci_pct: Option<(f64, f64)>,
    /// Two-sided p-value of Welch's t-test (None without two runs on each side).
    pub p_value: Option<f64>,
    /// The difference is significant at the chosen confidence.
    pub significant: bool,
    /// The event is gated.
    pub gated: bool,
    /// Gated, and its confidence interval lies above the threshold.
    pub regressed: bool,
    /// Why it could not be tested, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The gate's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// No gated event regressed.
    Pass,
    /// At least one gated event regressed.
    Fail,
    /// No threshold was given: changes are reported only.
    ReportOnly,
}

/// Everything the comparison found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Verdict {
    /// Pass, fail, or report-only.
    pub result: Outcome,
    /// The baseline file.
    pub baseline: String,
    /// The threshold in percent.
    pub fail_above: Option<f64>,
    /// Confidence level in percent.
    pub confidence: f64,
    /// The significance test used.
    pub test: &'static str,
    /// Events compared.
    pub compared: Vec<Comparison>,
    /// Events of this run that the baseline lacks.
    pub missing_in_baseline: Vec<String>,
    /// Events of the baseline that this run lacks (or did not count).
    pub missing_in_run: Vec<String>,
    /// Gated events that regressed.
    pub regressed: Vec<String>,
    /// How the baseline's machine, ruperf or target differs from this run's.
    pub differences: Vec<String>,
}

fn compare_one(base: &Series, now: &Series, gate: &Gate, gated: bool) -> Comparison {
    let change = |d: f64| (base.mean != 0.0).then(|| d / base.mean.abs() * 100.0);
    let w = welch(&base.values, &now.values, gate.confidence);
    let note = match (base.values.len(), now.values.len()) {
        (0, _) => Some("the baseline has no per-run values (written by an older ruperf)".into()),
        (1, _) => Some("the baseline has one run: record it with -r 2 or more".into()),
        (_, n) if n < 2 => Some("this measurement has one run: use -r 2 or more".into()),
        _ => None,
    };
    let significant = w.is_some_and(|w| w.p < 1.0 - gate.confidence);
    let change_pct = change(now.mean - base.mean);
    let ci_pct = w.and_then(|w| {
        Some((
            change(w.diff - w.half_width)?,
            change(w.diff + w.half_width)?,
        ))
    });
    // Regressed: the whole confidence interval of the change lies above the threshold, so the
    // growth is beyond the threshold with significance (a one-sided test at (1 − c)/2), not
    // merely a significant change whose estimate happens to cross it.
    let regressed = gated
        && significant
        && match (gate.fail_above, ci_pct) {
            (Some(t), Some((lo, _))) => lo > t,
            (Some(_), None) => now.mean > base.mean,
            (None, _) => false,
        };
    Comparison {
        event: now.event.clone(),
        unit: now.unit.clone(),
        baseline: base.mean,
        current: now.mean,
        baseline_runs: base.values.len(),
        current_runs: now.values.len(),
        change_pct,
        ci_pct,
        p_value: w.map(|w| w.p),
        significant,
        gated,
        regressed,
        note,
    }
}

/// Compares this run's series with the baseline's.
pub fn compare(base: &Baseline, now: &[Series], info: &RunInfo, gate: &Gate) -> Verdict {
    let by_name: HashMap<&str, &Series> =
        base.series.iter().map(|s| (s.event.as_str(), s)).collect();
    let mut compared = Vec::new();
    let mut missing_in_baseline = Vec::new();
    for s in now {
        match by_name.get(s.event.as_str()) {
            Some(b) => {
                let gated = gate
                    .events
                    .as_ref()
                    .is_none_or(|list| list.contains(&s.event));
                compared.push(compare_one(b, s, gate, gated));
            }
            None => missing_in_baseline.push(s.event.clone()),
        }
    }
    let mut missing_in_run: Vec<String> = base
        .series
        .iter()
        .map(|s| s.event.clone())
        .chain(base.not_counted.iter().cloned())
        .filter(|e| !now.iter().any(|s| s.event == *e))
        .collect();
    missing_in_run.dedup();
    let regressed: Vec<String> = compared
        .iter()
        .filter(|c| c.regressed)
        .map(|c| c.event.clone())
        .collect();
    let result = match gate.fail_above {
        None => Outcome::ReportOnly,
        Some(_) if regressed.is_empty() => Outcome::Pass,
        Some(_) => Outcome::Fail,
    };
    Verdict {
        result,
        baseline: base.path.display().to_string(),
        fail_above: gate.fail_above,
        confidence: gate.confidence * 100.0,
        test: "welch-t",
        compared,
        missing_in_baseline,
        missing_in_run,
        regressed,
        differences: base
            .info
            .as_ref()
            .map(|b| b.differences(info))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(event: &str, values: &[f64]) -> Series {
        Series {
            event: event.into(),
            unit: String::new(),
            values: values.to_vec(),
            mean: values.iter().sum::<f64>() / values.len() as f64,
        }
    }

    #[test]
    fn welch_matches_a_worked_example() {
        // Two samples with unequal variances: diff 5.0833, t = 3.967, Welch–Satterthwaite
        // df = 5.99 (worked by hand), so a two-sided p of about 0.0074.
        let a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9];
        let b = [28.2, 26.6, 20.1, 23.3, 25.2, 22.1];
        let w = welch(&a, &b, 0.95).unwrap();
        assert!((w.diff - 5.0833).abs() < 1e-3, "{w:?}");
        assert!((w.df - 5.9935).abs() < 1e-3, "{w:?}");
        assert!(w.p > 0.006 && w.p < 0.009, "{w:?}");
        assert!(w.half_width > 2.0 && w.half_width < 4.0, "{w:?}");
        // Identical samples: nothing to see.
        let same = welch(&a, &a, 0.95).unwrap();
        assert!(same.diff == 0.0 && (same.p - 1.0).abs() < 1e-9);
        assert!(welch(&a[..1], &b, 0.95).is_none());
    }

    #[test]
    fn constant_samples_are_certain() {
        let w = welch(&[5.0, 5.0], &[6.0, 6.0, 6.0], 0.95).unwrap();
        assert_eq!(w.p, 0.0);
        assert_eq!(welch(&[5.0, 5.0], &[5.0, 5.0], 0.95).unwrap().p, 1.0);
    }

    #[test]
    fn a_fourfold_count_fails_the_gate_and_noise_passes() {
        let base = Baseline {
            path: "b.json".into(),
            info: None,
            series: vec![
                series("page-faults", &[1000.0, 1010.0, 990.0, 1005.0, 995.0]),
                series("task-clock", &[10.0, 11.0, 9.0, 10.5, 9.5]),
                series("gone", &[1.0, 1.0]),
            ],
            not_counted: vec!["cycles".into()],
        };
        let gate = Gate {
            fail_above: Some(10.0),
            events: None,
            confidence: 0.95,
        };
        let info = RunInfo::default();
        let noisy = [
            series("page-faults", &[1003.0, 998.0, 1012.0, 989.0, 1001.0]),
            series("task-clock", &[10.2, 12.0, 9.1, 10.0, 9.9]),
            series("new", &[1.0, 2.0]),
        ];
        let v = compare(&base, &noisy, &info, &gate);
        assert_eq!(v.result, Outcome::Pass, "{v:#?}");
        assert_eq!(v.missing_in_baseline, vec!["new"]);
        assert_eq!(v.missing_in_run, vec!["gone", "cycles"]);
        let four = [series("page-faults", &[4000.0, 4020.0, 3990.0])];
        let v = compare(&base, &four, &info, &gate);
        assert_eq!(v.result, Outcome::Fail);
        assert_eq!(v.regressed, vec!["page-faults"]);
        let c = &v.compared[0];
        assert!((c.change_pct.unwrap() - 300.0).abs() < 2.0, "{c:?}");
        let (lo, hi) = c.ci_pct.unwrap();
        assert!(lo < 300.0 && hi > 300.0 && lo > 280.0, "{c:?}");
        // Not gated: reported, not failed.
        let only = Gate {
            events: Some(vec!["task-clock".into()]),
            ..gate.clone()
        };
        assert_eq!(compare(&base, &four, &info, &only).result, Outcome::Pass);
        // A 4× improvement is not a regression.
        let quarter = [series("page-faults", &[250.0, 251.0, 249.0])];
        assert_eq!(compare(&base, &quarter, &info, &gate).result, Outcome::Pass);
    }

    /// Normal draws from a fixed xorshift stream (Box–Muller), so the test is repeatable.
    struct Noise(u64);
    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn normal(&mut self, mean: f64, sd: f64) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            mean + sd * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
        fn runs(&mut self, n: usize, mean: f64, sd: f64) -> Vec<f64> {
            (0..n).map(|_| self.normal(mean, sd)).collect()
        }
    }

    #[test]
    fn noise_alone_fails_as_rarely_as_the_confidence_says() {
        // 4000 comparisons of 5 runs against 5 runs of the same distribution, with unequal
        // spreads (5% and 10%): with a 0% threshold the gate is a one-sided test at 2.5%, so
        // it fails about 2.5% of them; with a 10% threshold (two standard errors) almost never.
        let mut rng = Noise(0x9e37_79b9_7f4a_7c15);
        let (mut at0, mut at10) = (0, 0);
        let trials = 4000;
        for _ in 0..trials {
            let base = Baseline {
                path: "b".into(),
                info: None,
                series: vec![series("e", &rng.runs(5, 1000.0, 50.0))],
                not_counted: vec![],
            };
            let now = [series("e", &rng.runs(5, 1000.0, 100.0))];
            let gate = |t| Gate {
                fail_above: Some(t),
                events: None,
                confidence: 0.95,
            };
            let info = RunInfo::default();
            at0 += usize::from(compare(&base, &now, &info, &gate(0.0)).result == Outcome::Fail);
            at10 += usize::from(compare(&base, &now, &info, &gate(10.0)).result == Outcome::Fail);
        }
        let rate0 = at0 as f64 / trials as f64;
        assert!(
            (0.012..0.04).contains(&rate0),
            "false alarms at 0%: {rate0}"
        );
        assert!(
            at10 <= trials / 500,
            "false alarms at 10%: {at10} of {trials}"
        );
        // And a real 4x growth under the same noise is caught every time.
        for _ in 0..200 {
            let base = Baseline {
                path: "b".into(),
                info: None,
                series: vec![series("e", &rng.runs(5, 1000.0, 50.0))],
                not_counted: vec![],
            };
            let now = [series("e", &rng.runs(5, 4000.0, 400.0))];
            let gate = Gate {
                fail_above: Some(10.0),
                events: None,
                confidence: 0.95,
            };
            assert_eq!(
                compare(&base, &now, &RunInfo::default(), &gate).result,
                Outcome::Fail
            );
        }
    }

    #[test]
    fn parses_a_baseline_and_refuses_other_files() {
        let text = concat!(
            r#"{"counter-value":"1.500000","unit":"msec","event":"task-clock","variance":1.0,"runs":2,"run-values":[1.0,2.0]}"#,
            "\n",
            r#"{"counter-value":"<not supported>","unit":"","event":"cycles"}"#,
            "\n",
            r#"{"note":"something"}"#,
            "\n",
            r#"{"run-info":{"version":"0.1.0","host":"a","runs":2}}"#,
            "\n"
        );
        let b = Baseline::parse(Path::new("b.json"), text).unwrap();
        assert_eq!(
            b.series,
            vec![Series {
                event: "task-clock".into(),
                unit: "msec".into(),
                values: vec![1.0, 2.0],
                mean: 1.5
            }]
        );
        assert_eq!(b.not_counted, vec!["cycles"]);
        assert_eq!(b.info.as_ref().unwrap().host.as_deref(), Some("a"));
        let now = RunInfo {
            host: Some("b".into()),
            version: Some("0.1.0".into()),
            ..Default::default()
        };
        assert_eq!(b.info.unwrap().differences(&now), vec!["host: a → b"]);
        let e = Baseline::parse(Path::new("x"), "Performance counter stats\n").unwrap_err();
        assert!(e.to_string().contains("x line 1: not a JSON object"), "{e}");
        assert!(Baseline::parse(
            Path::new("x"),
            "{\"interval\":1.0,\"event\":\"a\",\"counter-value\":\"1\"}"
        )
        .is_err());
        assert!(Baseline::parse(Path::new("x"), "{\"note\":\"n\"}").is_err());
    }
}
