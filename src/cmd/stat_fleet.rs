//! `ruperf stat`'s fleet and CI flags, flattened into [`super::stat::StatArgs`]: the
//! regression gate (`--baseline`), the Prometheus exporter (`--serve`) and the textfile
//! output (`--format openmetrics`); and the glue that runs them around a measurement.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::stat::StatArgs;
use super::Globals;
use crate::app::stat::baseline::{self, Baseline, Gate, Outcome, RunInfo};
use crate::app::stat::serve::{ContentTypes, Server, Snapshot};
use crate::app::stat::{describe_target, IntervalRow, StatConfig, StatResult};
use crate::error::{exit, Error, Result};
use crate::output::stat::baseline as render;
use crate::output::stat::openmetrics::{self as om, Metrics};
use crate::output::Sink;

/// Formats of `stat --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatFormat {
    /// node_exporter's textfile-collector format (Prometheus text) to -o FILE, or stdout
    Openmetrics,
}

/// The interval `--serve` samples at when no -I is given.
const SERVE_INTERVAL: Duration = Duration::from_millis(1000);

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
    /// Serve the counters and energy at http://ADDR/metrics (OpenMetrics) while measuring
    #[arg(long = "serve", value_name = "ADDR")]
    pub serve: Option<String>,
    /// Output format: openmetrics (with -o FILE: node_exporter's textfile collector)
    #[arg(long = "format", value_enum, value_name = "FORMAT")]
    pub format: Option<StatFormat>,
}

/// What the fleet flags will do around the measurement.
#[derive(Debug, Default)]
pub struct FleetPlan {
    gate: Option<(Baseline, Gate)>,
    json: bool,
    server: Option<Server>,
    /// `--format openmetrics`: Some(None) for stdout.
    textfile: Option<Option<PathBuf>>,
    /// Cumulative metrics fed by the interval rows (with --serve, or a textfile under -I).
    live: Option<Metrics>,
    /// Whether interval rows are printed (not when --serve chose the interval itself).
    print_rows: bool,
    /// The first error met while exporting an interval.
    error: Option<Error>,
    /// When the last snapshot was taken.
    last_snapshot: Option<Instant>,
}

/// The shortest time between two snapshots: at `-I 1` the counters still add up every
/// millisecond, but the text is encoded (and the textfile replaced) ten times a second.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);

const TYPES: ContentTypes = ContentTypes {
    openmetrics: om::OPENMETRICS_TYPE,
    text: om::PROMETHEUS_TYPE,
};

impl FleetPlan {
    /// Checks the fleet flags against the rest of the command line, loads the baseline and
    /// binds the exporter's port (before anything is measured). Takes `-o` for itself with
    /// `--format openmetrics`.
    pub fn new(args: &mut StatArgs) -> Result<FleetPlan> {
        let f = args.fleet.clone();
        let mut plan = FleetPlan {
            json: args.json,
            print_rows: true,
            ..FleetPlan::default()
        };
        if f.format == Some(StatFormat::Openmetrics) {
            if args.json || args.field_separator.is_some() {
                return Err(Error::Usage(
                    "--format openmetrics cannot be combined with -j or -x: choose one format"
                        .into(),
                ));
            }
            if args.append {
                return Err(Error::Usage(
                    "--format openmetrics replaces its file whole: drop --append".into(),
                ));
            }
            if let Some(path) = &args.output {
                om::check_textfile(path)?;
            }
            plan.textfile = Some(args.output.take());
        }
        if f.serve.is_some() && args.repeat > 1 {
            return Err(Error::Usage(
                "--serve exports one continuous measurement: drop -r".into(),
            ));
        }
        plan.gate = f.gate(args.repeat, args.interval.is_some())?;
        if let Some(addr) = &f.serve {
            plan.server = Some(Server::start(addr, TYPES)?);
            plan.print_rows = args.interval.is_some();
        }
        Ok(plan)
    }

    /// Gives the measurement the interval the exporter needs, and starts the live metrics.
    pub fn adjust(&mut self, cfg: &mut StatConfig) {
        if self.server.is_some() && cfg.interval.is_none() {
            cfg.interval = Some(SERVE_INTERVAL);
        }
        let interval_textfile = self.textfile.is_some() && cfg.interval.is_some();
        if self.server.is_some() || interval_textfile {
            let m = Metrics::new(&describe_target(cfg));
            if let Some(s) = &self.server {
                s.publish(snapshot(&m));
            }
            self.live = Some(m);
        }
    }

    /// Whether interval rows are printed.
    pub fn prints_rows(&self) -> bool {
        self.print_rows
    }

    /// Feeds one interval row to the exporter and the textfile.
    pub fn on_interval(&mut self, row: &IntervalRow) {
        let Some(m) = &self.live else { return };
        m.add(&row.counters, row.energy.as_ref());
        if self
            .last_snapshot
            .is_some_and(|t| t.elapsed() < SNAPSHOT_EVERY)
        {
            return;
        }
        self.last_snapshot = Some(Instant::now());
        let snap = snapshot(m);
        if let Some(Some(path)) = &self.textfile {
            if self.error.is_none() {
                self.error = om::write_textfile(path, &snap.text).err();
            }
        }
        if let Some(s) = &self.server {
            s.publish(snap);
        }
    }
}

/// The metrics in both text formats.
fn snapshot(m: &Metrics) -> Snapshot {
    let openmetrics = m.encode();
    let text = om::to_prometheus_text(&openmetrics);
    Snapshot { openmetrics, text }
}

impl FleetArgs {
    /// Checks the gate's flags and loads the baseline.
    fn gate(&self, repeat: u32, interval: bool) -> Result<Option<(Baseline, Gate)>> {
        let Some(path) = &self.baseline else {
            return Ok(None);
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
        Ok(Some((base, gate)))
    }
}

impl FleetPlan {
    /// After the summary: writes the run-info line (`-j -r N`) and the comparison. Returns
    /// the exit code the gate asks for, if any.
    pub fn finish(
        &mut self,
        res: &StatResult,
        g: &Globals,
        sink: &mut Sink,
    ) -> Result<Option<i32>> {
        if let Some(s) = self.server.take() {
            // The last counts, for the scrapes still queued.
            if let Some(m) = &self.live {
                s.publish(snapshot(m));
            }
            s.shutdown();
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(dest) = &self.textfile {
            self.write_textfile(res, dest.as_deref())?;
        }
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

    /// The final textfile: the interval totals under -I, else every run's counts summed.
    fn write_textfile(&self, res: &StatResult, dest: Option<&std::path::Path>) -> Result<()> {
        let text = match &self.live {
            Some(m) => snapshot(m).text,
            None => {
                let m = Metrics::new(&res.target);
                for run in &res.runs {
                    m.add(&run.counters, run.energy.as_ref());
                }
                snapshot(&m).text
            }
        };
        match dest {
            Some(path) => om::write_textfile(path, &text),
            None => Sink::stdout().write_with(|w| w.write_all(text.as_bytes())),
        }
    }
}
