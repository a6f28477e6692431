//! Counters and energy as OpenMetrics text (what `stat --serve` exposes on `/metrics`), and
//! as the Prometheus text format node_exporter's textfile collector reads
//! (`stat --format openmetrics -o FILE`). The encoding is the official `prometheus-client`
//! crate's.
//!
//! Families (every one a counter, so Prometheus's `rate()` applies):
//! - `ruperf_events_total{event, [cpu,] target}`: counts of counting events;
//! - `ruperf_clock_seconds_total{event, [cpu,] target}`: the clock events (task-clock,
//!   cpu-clock) in seconds;
//! - `ruperf_energy_joules_total{domain, package|gpu, [die,] source, target}`: energy per
//!   domain;
//! - `ruperf_info{version}`: 1.
//!
//! Events that were not counted have no series (never a 0).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::app::stat::{CounterRow, Status};
use crate::energy::EnergyReport;
use crate::error::{Error, Result};

type Labels = Vec<(String, String)>;
type F64Counter = Counter<f64, AtomicU64>;

/// The exported metrics: cumulative counters fed with per-interval deltas or whole-run totals.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    events: Family<Labels, F64Counter>,
    clocks: Family<Labels, F64Counter>,
    energy: Family<Labels, F64Counter>,
    target: String,
}

/// perf's target text without its quotes: `'./prog a'` → `./prog a`.
fn target_label(target: &str) -> String {
    let t = target.trim();
    t.strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(t)
        .to_owned()
}

impl Metrics {
    /// Empty metrics for a measurement of `target` (perf's header text).
    pub fn new(target: &str) -> Metrics {
        let mut registry = Registry::with_prefix("ruperf");
        let events = Family::<Labels, F64Counter>::default();
        let clocks = Family::<Labels, F64Counter>::default();
        let energy = Family::<Labels, F64Counter>::default();
        registry.register(
            "events",
            "Events counted by perf_event_open (scaled for multiplexing)",
            events.clone(),
        );
        registry.register_with_unit(
            "clock",
            "Time counted by the clock events (task-clock, cpu-clock)",
            Unit::Seconds,
            clocks.clone(),
        );
        registry.register_with_unit(
            "energy",
            "Energy used per domain (RAPL package, dram, core, uncore; GPU)",
            Unit::Other("joules".into()),
            energy.clone(),
        );
        registry.register(
            "build",
            "ruperf's version",
            Info::new(vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )]),
        );
        Metrics {
            registry,
            events,
            clocks,
            energy,
            target: target_label(target),
        }
    }

    /// Adds counts (deltas of an interval, or a whole run's totals).
    pub fn add(&self, counters: &[CounterRow], energy: Option<&EnergyReport>) {
        for c in counters {
            if c.status != Status::Counted || !c.count.is_finite() || c.count < 0.0 {
                continue;
            }
            let mut labels: Labels = vec![("event".into(), c.name.clone())];
            if let Some(cpu) = c.cpu {
                labels.push(("cpu".into(), cpu.to_string()));
            }
            labels.push(("target".into(), self.target.clone()));
            if c.is_clock {
                self.clocks.get_or_create(&labels).inc_by(c.count / 1e9);
            } else if c
                .unit
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case("joules"))
            {
                // perf's power PMU events (power/energy-pkg/): joules once scaled.
                let labels = vec![
                    ("domain".into(), c.name.clone()),
                    ("source".into(), "perf".into()),
                    ("target".into(), self.target.clone()),
                ];
                self.energy.get_or_create(&labels).inc_by(c.count * c.scale);
            } else {
                self.events.get_or_create(&labels).inc_by(c.count);
            }
        }
        for row in energy.map(|e| e.rows.as_slice()).unwrap_or_default() {
            // A failed reading has no series for the interval (never a 0).
            if !row.counted || !row.joules.is_finite() || row.joules < 0.0 {
                continue;
            }
            let gpu = !row.kind.is_rapl();
            let domain = if gpu { "gpu" } else { row.kind.short() };
            let mut labels = vec![
                ("domain".into(), domain.to_owned()),
                (
                    if gpu { "gpu" } else { "package" }.into(),
                    row.index.to_string(),
                ),
            ];
            if let Some(die) = row.die {
                labels.push(("die".into(), die.to_string()));
            }
            labels.push(("source".into(), row.source.to_owned()));
            labels.push(("target".into(), self.target.clone()));
            self.energy.get_or_create(&labels).inc_by(row.joules);
        }
    }

    /// The OpenMetrics text (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        s
    }
}

/// Content type of [`Metrics::encode`].
pub const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of [`to_prometheus_text`].
pub const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text → the Prometheus text format (0.0.4) that node_exporter's textfile
/// collector, `promtool check metrics` and older scrapers read: counter families are named
/// with their `_total` in `# HELP`/`# TYPE`, info families become `_info` gauges, and
/// `# UNIT` and `# EOF` go (0.0.4 has neither).
pub fn to_prometheus_text(om: &str) -> String {
    // Family name → (suffix, 0.0.4 type).
    let renames: Vec<(&str, &str, &str)> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, ty) = l.split_once(' ')?;
            match ty {
                "counter" => Some((name, "_total", "counter")),
                "info" => Some((name, "_info", "gauge")),
                _ => None,
            }
        })
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let &(_, suffix, ty) = renames.iter().find(|r| r.0 == name)?;
            let tail = if *p == "# TYPE " { ty } else { tail };
            Some(format!("{p}{name}{suffix} {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(l.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Checks, before measuring, that the textfile can be written: its temporary file is created
/// and removed again.
pub fn check_textfile(path: &Path) -> Result<()> {
    let tmp = temp_path(path);
    crate::sysroot::create_output(&tmp, 0o666, false).map_err(|source| Error::CantCreate {
        path: path.to_path_buf(),
        source,
    })?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

/// The temporary file beside `path` that becomes it.
fn temp_path(path: &Path) -> std::path::PathBuf {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "metrics.prom".into());
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `text` to `path` atomically (a temporary file in the same directory, then a
/// rename), as node_exporter's textfile collector asks: a scrape never reads half a file.
pub fn write_textfile(path: &Path, text: &str) -> Result<()> {
    let tmp = temp_path(path);
    let cant = |source| Error::CantCreate {
        path: path.to_path_buf(),
        source,
    };
    let mut f = crate::sysroot::create_output(&tmp, 0o666, false).map_err(cant)?;
    // No fsync: the collector reads the page cache, and a rename is atomic without one.
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        cant(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::event::EventClass;
    use crate::counters::group::RawCount;

    fn row(name: &str, count: f64, clock: bool, cpu: Option<u32>) -> CounterRow {
        CounterRow {
            cpu,
            name: name.into(),
            class: EventClass::Software,
            status: Status::Counted,
            count,
            raw: RawCount::default(),
            running_pct: 100.0,
            scale: 1.0,
            unit: None,
            is_clock: clock,
            reason: None,
            aggr: None,
            cgroup: None,
        }
    }

    #[test]
    fn counters_accumulate_and_encode_as_openmetrics() {
        let m = Metrics::new("'./prog a b'");
        let rows = [
            row("task-clock", 2.5e9, true, None),
            row("page-faults", 10.0, false, Some(1)),
        ];
        m.add(&rows, None);
        m.add(&rows, None);
        let mut gone = row("cycles", 0.0, false, None);
        gone.status = Status::NotSupported;
        m.add(&[gone], None);
        let text = m.encode();
        assert!(text.contains("# TYPE ruperf_events counter\n"), "{text}");
        assert!(
            text.contains(
                r#"ruperf_events_total{event="page-faults",cpu="1",target="./prog a b"} 20.0"#
            ),
            "{text}"
        );
        assert!(
            text.contains("# UNIT ruperf_clock_seconds seconds\n"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"ruperf_clock_seconds_total{event="task-clock",target="./prog a b"} 5.0"#
            ),
            "{text}"
        );
        assert!(!text.contains("cycles"), "{text}");
        assert!(text.contains("ruperf_build_info{version="), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        let prom = to_prometheus_text(&text);
        assert!(
            prom.contains("# TYPE ruperf_events_total counter\n"),
            "{prom}"
        );
        assert!(
            prom.contains("# HELP ruperf_clock_seconds_total Time"),
            "{prom}"
        );
        assert!(
            !prom.contains("# EOF") && !prom.contains("# UNIT"),
            "{prom}"
        );
        assert!(prom.contains("# TYPE ruperf_build_info gauge\n"), "{prom}");
        assert!(prom.contains("ruperf_build_info{version="), "{prom}");
    }

    #[test]
    fn textfiles_are_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("ruperf-om-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("ruperf.prom");
        write_textfile(&f, "a 1\n").unwrap();
        write_textfile(&f, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "a 2\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert!(write_textfile(&dir.join("no/such/x.prom"), "a\n").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
