//! `ruperf stat`'s fleet and CI flags: the regression gate (`--baseline`), flattened into
//! [`super::stat::StatArgs`], and the glue that runs it around a measurement.

use std::path::PathBuf;

use clap::Args;

use super::Globals;
use crate::app::stat::baseline::{self, Baseline, Gate, Outcome, RunInfo};
use crate::app::stat::StatResult;
use crate::error::{exit, Error, Result};
use crate::output::stat::baseline as render;
use crate::output::Sink;

/// The regression gate's flags.
#[derive(Debug, Clone, Default, Args)]
pub struct FleetArgs {
    /// Compare with a baseline from `stat -r N -j -o FILE.json` (Welch's t-test per event)
    #[arg(long = "baseline", value_name = "FILE.json")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: exit 79 when a gated event grows by more than PCT percent with
    /// significance (the whole confidence interval of its change above PCT)
    #[arg(long = "fail-above", value_name = "PCT", requires = "baseline")]
    pub fail_above: Option<f64>,
    /// With --baseline: gate only these events (comma-separated; default: every event compared)
    #[arg(
        long = "gate-events",
        value_name = "EVENTS",
        value_delimiter = ',',
        requires = "baseline"
    )]
    pub gate_events: Option<Vec<String>>,
    /// With --baseline: confidence level of the test, in percent
    #[arg(
        long = "confidence",
        value_name = "PCT",
        default_value_t = 95.0,
        requires = "baseline"
    )]
    pub confidence: f64,
}

/// What the fleet flags will do once the measurement is done.
#[derive(Debug)]
pub struct FleetPlan {
    gate: Option<(Baseline, Gate)>,
    json: bool,
}

impl FleetArgs {
    /// Checks the flags against the rest of the command line and loads the baseline.
    pub fn plan(&self, repeat: u32, interval: bool, json: bool) -> Result<FleetPlan> {
        let Some(path) = &self.baseline else {
            return Ok(FleetPlan { gate: None, json });
        };
        if interval {
            return Err(Error::Usage(
                "--baseline compares summaries: it cannot be combined with -I".into(),
            ));
        }
        if repeat < 2 {
            return Err(Error::Usage(
                "--baseline needs repeated runs to test significance: add -r 5 (or more)".into(),
            ));
        }
        if let Some(t) = self.fail_above {
            if !t.is_finite() || t < 0.0 {
                return Err(Error::Usage(format!(
                    "--fail-above {t}: give a percentage of at least 0, e.g. --fail-above 5"
                )));
            }
        }
        if !(50.0..100.0).contains(&self.confidence) {
            return Err(Error::Usage(format!(
                "--confidence {}: give a percentage from 50 to below 100, e.g. 95",
                self.confidence
            )));
        }
        let base = Baseline::load(path)?;
        if !base.series.iter().any(|s| s.values.len() >= 2) {
            return Err(Error::Data(format!(
                "{}: no per-run values to test against (write the baseline with `ruperf stat -r 5 -j -o FILE.json`)",
                path.display()
            )));
        }
        let gate = Gate {
            fail_above: self.fail_above,
            events: self.gate_events.clone(),
            confidence: self.confidence / 100.0,
        };
        Ok(FleetPlan {
            gate: Some((base, gate)),
            json,
        })
    }
}

impl FleetPlan {
    /// After the summary: writes the run-info line (`-j -r N`) and the comparison. Returns
    /// the exit code the gate asks for, if any.
    pub fn finish(&self, res: &StatResult, g: &Globals, sink: &mut Sink) -> Result<Option<i32>> {
        let info = RunInfo::current(&g.sysroot, &res.target, res.runs.len());
        if self.json && res.runs.len() > 1 {
            sink.write_with(|w| render::write_run_info(&info, w))?;
        }
        let Some((base, gate)) = &self.gate else {
            return Ok(None);
        };
        let now = render::series(res);
        let verdict = baseline::compare(base, &now, &info, gate);
        if self.json {
            sink.write_with(|w| render::write_json(&verdict, w))?;
        } else {
            sink.write_with(|w| render::write_text(&verdict, w))?;
        }
        if let Some(list) = &gate.events {
            let absent: Vec<&str> = list
                .iter()
                .filter(|e| !verdict.compared.iter().any(|c| c.event == **e))
                .map(String::as_str)
                .collect();
            if !absent.is_empty() {
                return Err(Error::Usage(format!(
                    "--gate-events: {} not compared (not counted in this run, or not in {})",
                    absent.join(", "),
                    base.path.display()
                )));
            }
        }
        // A failing command's own status comes first: its counts are not a fair comparison.
        if res.exit_code() != 0 {
            return Ok(None);
        }
        Ok((verdict.result == Outcome::Fail).then_some(exit::REGRESSED))
    }
}
