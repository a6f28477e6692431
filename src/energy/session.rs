//! An energy measurement around a run: open the selected sources, read before the command is
//! released and after it ends (and at each `-I` interval), poll in the background when a counter
//! could wrap unseen or power must be integrated, and report joules, seconds and watts per domain.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use std::sync::atomic::{AtomicU64, Ordering};

use super::poll::{self, PollStats, Poller};
use super::rapl::{self, RaplSource};
use super::{Accumulator, Domain, DomainKind, EnergySelector, Reading, Source};
use crate::energy::nvml::NvmlSource;
use crate::error::{Error, Result};
use crate::sysroot::Sysroot;

use super::poll::ASSUMED_MAX_WATTS;
#[cfg(test)]
use super::poll::{MAX_POLL, MIN_POLL};

/// Energy of one domain over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergyRow {
    /// The domain as displayed and as `-e` accepts it: `rapl/pkg:0`, `nvml/1`.
    pub name: String,
    /// Its kind.
    pub kind: DomainKind,
    /// Package (RAPL) or device (GPU) index.
    pub index: u32,
    /// The die, for one die of a multi-die package (`rapl/pkg:0.die1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub die: Option<u32>,
    /// False when a reading that bounds the window failed (a GPU lost mid-run, an unreadable
    /// zone): the energy is unknown, `joules` and `watts` are NaN (`null` in JSON) and the
    /// exporters print perf's `<not counted>`. Never a measured 0.
    pub counted: bool,
    /// Energy in joules (NaN when not counted).
    pub joules: f64,
    /// Length of the window in seconds, between the two readings that bound it.
    pub seconds: f64,
    /// Average power in watts (joules / seconds; 0 for an empty window; NaN when not counted).
    pub watts: f64,
    /// The backend that measured it: `perf`, `powercap`, `msr`, `nvml`.
    pub source: &'static str,
    /// True when integrated from power readings rather than read from an energy counter.
    pub estimate: bool,
    /// Caveats about this figure, one line each.
    pub warnings: Vec<String>,
}

/// The sum of one domain kind across packages or GPUs (never across kinds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindTotal {
    /// The kind.
    pub kind: DomainKind,
    /// Display name for the sum: `rapl/pkg`, `rapl/dram`, `nvml`.
    pub name: String,
    /// Number of domains of this kind (counted or not).
    pub domains: usize,
    /// False when no domain of the kind was counted (`joules` and `watts` are then NaN).
    pub counted: bool,
    /// True when some domains of the kind were not counted: the sum covers only the others.
    pub partial: bool,
    /// The domains left out of a partial sum.
    pub missing: Vec<String>,
    /// Total joules of the counted domains.
    pub joules: f64,
    /// Longest window among them, in seconds.
    pub seconds: f64,
    /// Total average watts of the counted domains.
    pub watts: f64,
    /// True when any part is an estimate.
    pub estimate: bool,
}

/// Energy over one window: per domain, per-kind sums where a kind has several domains, and
/// caveats about the whole measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergyReport {
    /// One row per selected domain, RAPL by package then kind, then GPUs.
    pub rows: Vec<EnergyRow>,
    /// Sums per kind, only for kinds with two or more domains.
    pub totals: Vec<KindTotal>,
    /// Caveats about the measurement as a whole (missing sources, interface disagreements).
    pub warnings: Vec<String>,
    /// What the background poller did during the window, if one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollStats>,
}

/// One reported row: a domain of a source, or a package of a multi-die part as the sum of its
/// die domains (`parts`).
#[derive(Debug, Clone)]
struct RowRef {
    source: usize,
    /// Domain indices in the source whose energy this row adds up (one, or a package's dies).
    parts: Vec<usize>,
    /// Their names, for the notes.
    part_names: Vec<String>,
    /// What the source says this figure covers, shown with every window.
    coverage: Vec<String>,
    info: Domain,
    backend: &'static str,
    estimate: bool,
    /// Seconds for this domain's fastest counter to wrap at [`ASSUMED_MAX_WATTS`].
    wrap_secs: Option<f64>,
}

type Snapshot = Vec<Reading>;

/// The energy measurement `ruperf stat` runs around the command.
///
/// ```no_run
/// use ruperf::energy::{parse_selector, EnergySession};
/// use ruperf::sysroot::Sysroot;
///
/// let sel = parse_selector("rapl").unwrap()?;
/// let mut session = EnergySession::open(&[sel], &Sysroot::default(), None, None)?;
/// session.start()?;            // just before the child is released
/// // ... the command runs; for -I, call session.interval() at each tick ...
/// let report = session.finish()?; // just after it exits
/// for row in &report.rows {
///     println!("{} {:.2} J {:.2} W", row.name, row.joules, row.watts);
/// }
/// # Ok::<(), ruperf::Error>(())
/// ```
pub struct EnergySession {
    shared: Arc<Mutex<Vec<Accumulator>>>,
    rows: Vec<RowRef>,
    warnings: Vec<String>,
    period: Option<Duration>,
    poller: Option<Poller>,
    polls: Arc<AtomicU64>,
    start: Option<Snapshot>,
    mark: Option<Snapshot>,
}

impl std::fmt::Debug for EnergySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnergySession")
            .field("domains", &self.domains())
            .field("warnings", &self.warnings)
            .field("poll_period", &self.period)
            .finish()
    }
}

fn lock(m: &Mutex<Vec<Accumulator>>) -> MutexGuard<'_, Vec<Accumulator>> {
    // A panic while reading cannot leave an accumulator half-updated in a way that matters
    // more than losing the whole measurement: keep going with what is there.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EnergySession {
    /// Opens every source the selectors need: RAPL (the `rapl_source` interface, or
    /// perf → powercap → msr with a cross-check) and NVML (from `nvml_lib`, or the system's).
    ///
    /// Fails with [`Error::Unavailable`] (one line: each interface tried, why it failed and the
    /// fix) when none of the selected energy can be measured. When some can, what is missing
    /// becomes a warning in the final report.
    pub fn open(
        selectors: &[EnergySelector],
        sysroot: &Sysroot,
        nvml_lib: Option<&Path>,
        rapl_source: Option<RaplSource>,
    ) -> Result<EnergySession> {
        if selectors.is_empty() {
            return Err(Error::Internal("energy session without selectors".into()));
        }
        let mut accs: Vec<Accumulator> = Vec::new();
        let mut excluded: Vec<Domain> = Vec::new();
        let mut warnings = Vec::new();
        let mut failures = Vec::new();
        let mut rapl_failed = false;
        let mut nvml_failed = false;
        if selectors.iter().any(EnergySelector::wants_rapl) {
            match rapl::open(sysroot, rapl_source) {
                Ok(o) => {
                    warnings.extend(o.warnings);
                    warnings.extend(o.source.warnings());
                    excluded = o.excluded;
                    accs.push(Accumulator::new(o.source));
                }
                Err(reasons) => {
                    rapl_failed = true;
                    failures.push(format!("rapl: {}", reasons.join("; ")));
                }
            }
        }
        if selectors.iter().any(EnergySelector::wants_nvml) {
            match NvmlSource::open(nvml_lib) {
                Ok(s) => {
                    warnings.extend(s.warnings());
                    accs.push(Accumulator::new(Box::new(s)));
                }
                Err(reason) => {
                    nvml_failed = true;
                    failures.push(reason);
                }
            }
        }

        let mut rows = Vec::new();
        for (si, acc) in accs.iter().enumerate() {
            rows.extend(rows_of(si, acc, &excluded, selectors));
        }

        // Selectors that matched nothing although their family opened.
        let mut unmatched = Vec::new();
        for sel in selectors {
            let family_failed = match sel {
                EnergySelector::Rapl { .. } => rapl_failed,
                EnergySelector::Nvml { .. } => nvml_failed,
                EnergySelector::All => rapl_failed && nvml_failed,
            };
            if family_failed || rows.iter().any(|r| sel.matches(&r.info)) {
                continue;
            }
            let available: Vec<String> = accs
                .iter()
                .flat_map(|a| super::selectable_domains(a.source().domains()))
                .filter(|d| !excluded.contains(d))
                .map(|d| d.name)
                .collect();
            unmatched.push(format!(
                "{sel}: not measured on this machine (available: {})",
                available.join(", ")
            ));
        }

        if rows.is_empty() {
            let mut parts = unmatched;
            parts.extend(failures);
            return Err(Error::Unavailable(format!(
                "no energy source available: {}",
                parts.join("; ")
            )));
        }
        warnings.extend(unmatched);
        warnings.extend(failures);

        let period = poll::period_for(&accs);

        Ok(EnergySession {
            shared: Arc::new(Mutex::new(accs)),
            rows,
            warnings,
            period,
            poller: None,
            polls: Arc::new(AtomicU64::new(0)),
            start: None,
            mark: None,
        })
    }

    /// The domains that will be reported, in row order.
    pub fn domains(&self) -> Vec<&Domain> {
        self.rows.iter().map(|r| &r.info).collect()
    }

    /// Caveats known since opening (sources missing, domains left out by the cross-check).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The background poll period, if the sources need one ([`poll::period_for`]): a quarter
    /// of the shortest wrap period at [`ASSUMED_MAX_WATTS`] (clamped to 1 ms – 60 s),
    /// [`poll::POWER_POLL`] when power must be integrated, [`poll::RESET_POLL`] for NVML's counter (a
    /// driver reload followed by a climb past the old value is seen only between the ends).
    /// A poll only reads once a period has passed, so a run shorter than the period is read
    /// just at its start and end.
    pub fn poll_period(&self) -> Option<Duration> {
        self.period
    }

    /// Background polls completed since the session opened.
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Acquire)
    }

    /// Overrides the poll period (`None`: no background polling). Takes effect at the next
    /// [`EnergySession::start`].
    pub fn set_poll_period(&mut self, period: Option<Duration>) {
        self.period = period;
    }

    fn snapshot(&self) -> Snapshot {
        lock(&self.shared)
            .iter_mut()
            .map(Accumulator::read)
            .collect()
    }

    /// Takes the opening reading (call it just before the command is released) and starts the
    /// background poller if one is needed. May be called again after [`EnergySession::finish`]
    /// for the next run of `-r`.
    pub fn start(&mut self) -> Result<()> {
        if let Some(p) = self.poller.take() {
            p.stop();
        }
        let snap = self.snapshot();
        self.mark = Some(snap.clone());
        self.start = Some(snap);
        if let Some(period) = self.period {
            let shared = Arc::clone(&self.shared);
            let polls = Arc::clone(&self.polls);
            self.poller = Some(Poller::start(period, move || {
                for acc in lock(&shared).iter_mut() {
                    acc.update();
                }
                polls.fetch_add(1, Ordering::Release);
            })?);
        }
        Ok(())
    }

    /// Reads now and returns the energy since the previous interval (or the start): one `-I`
    /// row set. Does not stop the measurement.
    pub fn interval(&mut self) -> Result<EnergyReport> {
        let now = self.snapshot();
        let prev = self
            .mark
            .take()
            .ok_or_else(|| Error::Internal("energy interval before start".into()))?;
        let report = self.report(&prev, &now, Vec::new(), None);
        self.mark = Some(now);
        Ok(report)
    }

    /// Takes the closing reading (call it just after the command exits), stops the poller and
    /// returns the energy since [`EnergySession::start`], with every caveat.
    pub fn finish(&mut self) -> Result<EnergyReport> {
        let end = self.snapshot();
        let poll = self.poller.take().map(Poller::stop);
        let start = self
            .start
            .take()
            .ok_or_else(|| Error::Internal("energy finish before start".into()))?;
        self.mark = None;
        let mut warnings = self.warnings.clone();
        if let Some(p) = poll.filter(|p| p.missed > 0) {
            warnings.push(format!(
                "energy poller missed {} of {} deadlines (the system was busy)",
                p.missed, p.deadlines
            ));
        }
        Ok(self.report(&start, &end, warnings, poll))
    }

    fn report(
        &self,
        from: &Snapshot,
        to: &Snapshot,
        mut warnings: Vec<String>,
        poll: Option<PollStats>,
    ) -> EnergyReport {
        let window: Vec<Vec<f64>> = from
            .iter()
            .zip(to)
            .map(|(a, b)| b.joules_since(a))
            .collect();
        let rows: Vec<EnergyRow> = self
            .rows
            .iter()
            .map(|r| row_report(r, &from[r.source], &to[r.source], &window[r.source]))
            .collect();
        let totals = kind_totals(&rows);
        for t in totals.iter().filter(|t| t.partial) {
            warnings.push(format!(
                "{}: partial sum: {} not counted, left out of it",
                t.name,
                t.missing.join(", ")
            ));
        }
        EnergyReport {
            rows,
            totals,
            warnings,
            poll,
        }
    }
}

/// The rows one source contributes: its selected domains, and for each multi-die package whose
/// whole-package domain the source lacks, that package as the sum of its dies. Die rows come
/// before their package's sum.
fn rows_of(
    si: usize,
    acc: &Accumulator,
    excluded: &[Domain],
    selectors: &[EnergySelector],
) -> Vec<RowRef> {
    let src = acc.source();
    let domains = src.domains();
    let wanted = |d: &Domain| !excluded.contains(d) && selectors.iter().any(|s| s.matches(d));
    let mut groups: Vec<(Domain, Vec<usize>)> = Vec::new();
    for (di, d) in domains.iter().enumerate() {
        if excluded.contains(d) || d.die.is_none() {
            continue;
        }
        let pkg = d.package_domain();
        match groups.iter_mut().find(|(p, _)| *p == pkg) {
            Some((_, parts)) => parts.push(di),
            None => groups.push((pkg, vec![di])),
        }
    }
    let mut picked: Vec<(Domain, Vec<usize>)> = domains
        .iter()
        .enumerate()
        .filter(|(_, d)| wanted(d))
        .map(|(di, d)| (d.clone(), vec![di]))
        .collect();
    picked.extend(
        groups
            .into_iter()
            .filter(|(p, _)| !domains.contains(p) && wanted(p)),
    );
    if src.domains().iter().all(|d| d.kind.is_rapl()) {
        picked.sort_by_key(|(d, _)| (d.index, d.die.is_none(), d.die, d.kind));
    }
    picked
        .into_iter()
        .map(|(info, parts)| {
            let wrap_secs = src
                .channels()
                .iter()
                .filter(|c| parts.contains(&c.domain))
                .filter_map(|c| c.meter.wrap_seconds(ASSUMED_MAX_WATTS))
                .min_by(f64::total_cmp);
            let mut coverage: Vec<String> =
                parts.iter().flat_map(|&d| src.domain_notes(d)).collect();
            coverage.dedup();
            RowRef {
                source: si,
                coverage,
                part_names: parts.iter().map(|&d| domains[d].name.clone()).collect(),
                estimate: parts.iter().any(|&d| acc.is_estimate(d)),
                backend: src.backend(),
                info,
                parts,
                wrap_secs,
            }
        })
        .collect()
}

/// The caveats about one part of a row over the window `a` → `b`; false when it was not
/// counted (a reading that bounds the window failed).
fn part_notes(
    r: &RowRef,
    name: &str,
    d: usize,
    a: &Reading,
    b: &Reading,
    notes: &mut Vec<String>,
) -> bool {
    let resets = b.resets[d] - a.resets[d];
    if resets > 0 {
        notes.push(format!(
            "{name}: driver reload detected: the counter went down {resets} time(s); energy before each reload is not counted"
        ));
    }
    let cause = |r: &Reading| {
        r.cause[d]
            .as_deref()
            .map_or(String::new(), |c| format!(": {c}"))
    };
    if !a.ok[d] || !b.ok[d] {
        let (end, at) = if b.ok[d] { ("start", a) } else { ("end", b) };
        notes.push(format!(
            "{name}: not counted: the reading at the {end} of the window failed{}",
            cause(at)
        ));
        return false;
    }
    let failures = b.failures[d] - a.failures[d];
    if failures > 0 {
        notes.push(format!(
            "{name}: {failures} reading(s) failed{}; the next good reading counted the energy in between",
            cause(b)
        ));
    }
    if let Some(wrap) = r.wrap_secs {
        let gap = b.max_gap[d];
        if gap > wrap / 2.0 && gap > a.max_gap[d] {
            notes.push(format!(
                "{name}: readings {gap:.1} s apart, over half the shortest wrap period ({wrap:.1} s at {ASSUMED_MAX_WATTS} W): a wrap may have been missed"
            ));
        }
    }
    true
}

fn row_report(r: &RowRef, a: &Reading, b: &Reading, window: &[f64]) -> EnergyRow {
    let seconds = b.at.duration_since(a.at).as_secs_f64();
    let mut notes = r.coverage.clone();
    let mut counted = true;
    for (&d, name) in r.parts.iter().zip(&r.part_names) {
        counted &= part_notes(r, name, d, a, b, &mut notes);
    }
    if !counted && r.parts.len() > 1 {
        notes.push(format!(
            "{}: not counted: the sum of its dies misses a die",
            r.info.name
        ));
    }
    if counted && r.info.kind == DomainKind::Gpu && seconds < 1.0 {
        notes.push(format!(
            "{}: window under 1 s: NVML updates every 20-100 ms, so this figure is coarse; repeat the run (-r) to reduce the error",
            r.info.name
        ));
    }
    let joules = if counted {
        r.parts.iter().map(|&d| window[d]).sum::<f64>().max(0.0)
    } else {
        f64::NAN
    };
    let watts = if !counted {
        f64::NAN
    } else if seconds > 0.0 {
        joules / seconds
    } else {
        0.0
    };
    EnergyRow {
        name: r.info.name.clone(),
        kind: r.info.kind,
        index: r.info.index,
        die: r.info.die,
        counted,
        joules,
        seconds,
        watts,
        source: r.backend,
        estimate: r.estimate,
        warnings: notes,
    }
}

/// Sums per kind over whole packages / GPUs (never dies, which their package already holds,
/// and never across kinds), for kinds with two or more domains. A domain that was not counted
/// is left out of the sum, which is then marked partial and names it.
fn kind_totals(rows: &[EnergyRow]) -> Vec<KindTotal> {
    let mut totals: Vec<KindTotal> = Vec::new();
    for row in rows.iter().filter(|r| r.die.is_none()) {
        let t = match totals.iter_mut().find(|t| t.kind == row.kind) {
            Some(t) => t,
            None => {
                totals.push(KindTotal {
                    kind: row.kind,
                    name: row.kind.family_name(),
                    domains: 0,
                    counted: false,
                    partial: false,
                    missing: Vec::new(),
                    joules: 0.0,
                    seconds: 0.0,
                    watts: 0.0,
                    estimate: false,
                });
                totals.last_mut().expect("just pushed")
            }
        };
        t.domains += 1;
        t.seconds = t.seconds.max(row.seconds);
        if row.counted {
            t.counted = true;
            t.joules += row.joules;
            t.watts += row.watts;
            t.estimate |= row.estimate;
        } else {
            t.missing.push(row.name.clone());
        }
    }
    totals.retain(|t| t.domains > 1);
    for t in &mut totals {
        t.partial = t.counted && !t.missing.is_empty();
        if !t.counted {
            t.joules = f64::NAN;
            t.watts = f64::NAN;
        }
    }
    totals
}

impl Drop for EnergySession {
    fn drop(&mut self) {
        if let Some(p) = self.poller.take() {
            p.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::fake::FakeTree;
    use crate::energy::parse_selector;

    const MAX: u64 = 262_143_328_850;

    fn sel(s: &str) -> EnergySelector {
        parse_selector(s).unwrap().unwrap()
    }

    fn tree() -> FakeTree {
        let t = FakeTree::new("session");
        t.cpus(&[(0, 0, 0), (1, 1, 0)]);
        t.powercap_zone("intel-rapl:0", "package-0", 10_000_000, MAX);
        t.powercap_zone("intel-rapl:0:0", "core", 1_000, MAX);
        t.powercap_zone("intel-rapl:0:1", "dram", 1_000, MAX);
        t.powercap_zone("intel-rapl:1", "package-1", 20_000_000, MAX);
        t.powercap_zone("intel-rapl:1:0", "dram", 1_000, MAX);
        t.powercap_zone("intel-rapl:2", "psys", 5_000, MAX);
        t
    }

    #[test]
    fn totals_per_kind_never_across_kinds() {
        let t = tree();
        let mut s = EnergySession::open(&[sel("rapl")], &t.sysroot(), None, None).unwrap();
        // Powercap at 262 kJ range: 65 s at 1 kW; poll every 60 s at most.
        assert_eq!(s.poll_period(), Some(MAX_POLL));
        s.set_poll_period(None);
        s.start().unwrap();
        t.set_energy("intel-rapl:0", 10_000_000 + 3_000_000);
        t.set_energy("intel-rapl:1", 20_000_000 + 4_000_000);
        t.set_energy("intel-rapl:0:1", 1_000 + 500_000);
        t.set_energy("intel-rapl:1:0", 1_000 + 250_000);
        t.set_energy("intel-rapl:2", MAX - 1_000_000);
        let r = s.finish().unwrap();
        let get = |n: &str| r.rows.iter().find(|x| x.name == n).unwrap().joules;
        assert_eq!(get("rapl/pkg:0"), 3.0);
        assert_eq!(get("rapl/pkg:1"), 4.0);
        assert_eq!(get("rapl/dram:0"), 0.5);
        assert_eq!(get("rapl/dram:1"), 0.25);
        assert_eq!(get("rapl/cores:0"), 0.0);
        assert_eq!(get("rapl/psys:0"), (MAX - 1_000_000 - 5_000) as f64 * 1e-6);
        let totals: Vec<(&str, usize, f64)> = r
            .totals
            .iter()
            .map(|t| (t.name.as_str(), t.domains, t.joules))
            .collect();
        assert_eq!(totals, [("rapl/pkg", 2, 7.0), ("rapl/dram", 2, 0.75)]);
        assert!(r.rows.iter().all(|x| x.source == "powercap" && !x.estimate));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert!(r.poll.is_none());
    }

    #[test]
    fn intervals_then_total() {
        let t = tree();
        let mut s = EnergySession::open(&[sel("rapl/pkg:1")], &t.sysroot(), None, None).unwrap();
        assert_eq!(s.domains(), [&Domain::rapl(DomainKind::Package, 1)]);
        s.start().unwrap();
        t.set_energy("intel-rapl:1", 21_000_000);
        let i1 = s.interval().unwrap();
        t.set_energy("intel-rapl:1", 23_500_000);
        let i2 = s.interval().unwrap();
        let total = s.finish().unwrap();
        assert_eq!(i1.rows[0].joules, 1.0);
        assert_eq!(i2.rows[0].joules, 2.5);
        assert_eq!(total.rows[0].joules, 3.5);
        assert!(total.totals.is_empty());
        assert!(total.rows[0].seconds >= i1.rows[0].seconds + i2.rows[0].seconds);
        // A second run (-r) starts from a fresh baseline.
        s.start().unwrap();
        t.set_energy("intel-rapl:1", 24_000_000);
        assert_eq!(s.finish().unwrap().rows[0].joules, 0.5);
        assert!(s.interval().is_err());
    }

    #[test]
    fn background_polling_catches_two_wraps() {
        // A tiny range makes the poller run at its fastest; the test waits for polls to
        // happen between each step instead of timing anything.
        let t = FakeTree::new("session-poll");
        t.cpus(&[(0, 0, 0)]);
        t.powercap_zone("intel-rapl:0", "package-0", 0, 1_000_000);
        let mut s = EnergySession::open(&[sel("rapl/pkg")], &t.sysroot(), None, None).unwrap();
        assert_eq!(s.poll_period(), Some(MIN_POLL));
        s.start().unwrap();
        // Waits until the poller (not this thread) has read `v`.
        let wait_for_poll = |s: &EnergySession, v: u64| loop {
            std::thread::sleep(Duration::from_millis(1));
            if lock(&s.shared)[0].state[0].last == Some(v) {
                break;
            }
        };
        // 0 → 600 000 → (wrap) 200 000 → 800 000 → (wrap) 400 000 µJ.
        for v in [600_000, 200_000, 800_000, 400_000] {
            t.set_energy("intel-rapl:0", v);
            wait_for_poll(&s, v);
        }
        let r = s.finish().unwrap();
        let expect = (2 * (1_000_000 + 1) + 400_000) as f64 * 1e-6;
        assert!((r.rows[0].joules - expect).abs() < 1e-9, "{r:?}");
        assert!(r.poll.unwrap().runs >= 4);
    }

    #[test]
    fn nothing_available_is_one_line() {
        let t = FakeTree::new("session-none");
        t.cpus(&[(0, 0, 0)]);
        let e = EnergySession::open(
            &[sel("energy")],
            &t.sysroot(),
            Some(Path::new("/nonexistent/libnvidia-ml.so.1")),
            None,
        )
        .unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.exit_code(), crate::error::exit::UNAVAILABLE);
        assert!(!msg.contains('\n'), "{msg}");
        assert!(
            msg.starts_with("no energy source available: rapl: perf power PMU: not available under --sysroot (perf events would count this machine's counters, not the tree's); powercap: "),
            "{msg}"
        );
        assert!(
            msg.contains("; msr: ") && msg.contains("; nvml: cannot load"),
            "{msg}"
        );
    }

    #[test]
    fn partial_availability_warns() {
        let t = tree();
        let s = EnergySession::open(
            &[sel("rapl/pkg"), sel("nvml"), sel("rapl/uncore")],
            &t.sysroot(),
            Some(Path::new("/nonexistent/libnvidia-ml.so.1")),
            None,
        )
        .unwrap();
        assert_eq!(s.domains().len(), 2);
        let w = s.warnings().join("\n");
        assert!(
            w.contains("rapl/uncore: not measured on this machine (available: rapl/pkg:0"),
            "{w}"
        );
        assert!(w.contains("nvml: cannot load"), "{w}");
        // Asking only for what is missing is an error naming what is there.
        let e = EnergySession::open(&[sel("rapl/pkg:7")], &t.sysroot(), None, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("rapl/pkg:7: not measured on this machine"),
            "{e}"
        );
    }

    fn die_tree(name: &str) -> FakeTree {
        let t = FakeTree::new(name);
        t.cpus_with_dies(&[(0, 0, 0, 0), (1, 0, 1, 0), (2, 1, 0, 0), (3, 1, 1, 0)]);
        t.powercap_zone("intel-rapl:0", "package-0-die-0", 1_000_000, MAX);
        t.powercap_zone("intel-rapl:1", "package-0-die-1", 1_000_000, MAX);
        t.powercap_zone("intel-rapl:2", "package-1-die-0", 1_000_000, MAX);
        t.powercap_zone("intel-rapl:3", "package-1-die-1", 1_000_000, MAX);
        t
    }

    #[test]
    fn multi_die_packages_sum_their_dies() {
        let t = die_tree("session-dies");
        let mut s = EnergySession::open(&[sel("rapl")], &t.sysroot(), None, None).unwrap();
        s.set_poll_period(None);
        s.start().unwrap();
        t.set_energy("intel-rapl:0", 2_000_000); // package 0 die 0: 1 J
        t.set_energy("intel-rapl:1", 3_000_000); // package 0 die 1: 2 J
        t.set_energy("intel-rapl:2", 5_000_000); // package 1 die 0: 4 J
        t.set_energy("intel-rapl:3", 9_000_000); // package 1 die 1: 8 J
        let r = s.finish().unwrap();
        let rows: Vec<(&str, f64)> = r.rows.iter().map(|x| (x.name.as_str(), x.joules)).collect();
        assert_eq!(
            rows,
            [
                ("rapl/pkg:0.die0", 1.0),
                ("rapl/pkg:0.die1", 2.0),
                ("rapl/pkg:0", 3.0),
                ("rapl/pkg:1.die0", 4.0),
                ("rapl/pkg:1.die1", 8.0),
                ("rapl/pkg:1", 12.0)
            ]
        );
        // The per-kind sum adds packages, never their dies on top.
        assert_eq!(r.totals.len(), 1);
        assert_eq!((r.totals[0].domains, r.totals[0].joules), (2, 15.0));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // One package is the sum of its dies; one die is that die.
        let mut s = EnergySession::open(&[sel("rapl/pkg:1")], &t.sysroot(), None, None).unwrap();
        s.start().unwrap();
        t.set_energy("intel-rapl:3", 10_000_000);
        let r = s.finish().unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(
            (r.rows[0].name.as_str(), r.rows[0].joules),
            ("rapl/pkg:1", 1.0)
        );
        let s = EnergySession::open(&[sel("rapl/pkg:0.die1")], &t.sysroot(), None, None).unwrap();
        assert_eq!(s.domains(), [&Domain::rapl_die(DomainKind::Package, 0, 1)]);
        let e = EnergySession::open(&[sel("rapl/pkg:0.die7")], &t.sysroot(), None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rapl/pkg:0.die7: not measured on this machine (available: rapl/pkg:0.die0, rapl/pkg:0.die1, rapl/pkg:0, rapl/pkg:1.die0"),
            "{e}"
        );
    }

    #[test]
    fn a_failed_reading_is_not_counted_and_the_sum_is_partial() {
        let t = die_tree("session-fail");
        let mut s = EnergySession::open(&[sel("rapl")], &t.sysroot(), None, None).unwrap();
        s.set_poll_period(None);
        s.start().unwrap();
        t.set_energy("intel-rapl:0", 2_000_000);
        t.set_energy("intel-rapl:1", 2_000_000);
        t.write("/sys/class/powercap/intel-rapl:3/energy_uj", "garbage\n");
        let r = s.finish().unwrap();
        let get = |n: &str| r.rows.iter().find(|x| x.name == n).unwrap();
        assert_eq!(get("rapl/pkg:0").joules, 2.0);
        for lost in ["rapl/pkg:1.die1", "rapl/pkg:1"] {
            let row = get(lost);
            assert!(
                !row.counted && row.joules.is_nan() && row.watts.is_nan(),
                "{row:?}"
            );
        }
        assert!(get("rapl/pkg:1.die0").counted);
        let w = get("rapl/pkg:1").warnings.join("\n");
        assert!(
            w.contains(
                "rapl/pkg:1.die1: not counted: the reading at the end of the window failed: "
            ) && w.contains("intel-rapl:3/energy_uj: not a decimal number"),
            "{w}"
        );
        assert!(
            w.contains("rapl/pkg:1: not counted: the sum of its dies misses a die"),
            "{w}"
        );
        let total = &r.totals[0];
        assert!(total.counted && total.partial, "{total:?}");
        assert_eq!(total.missing, ["rapl/pkg:1"]);
        assert_eq!(total.joules, 2.0);
        assert!(
            r.warnings
                .contains(&"rapl/pkg: partial sum: rapl/pkg:1 not counted, left out of it".into()),
            "{:?}",
            r.warnings
        );
        // JSON: null, never a measured 0.
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["rows"][5]["joules"].is_null(), "{json}");
        assert_eq!(json["rows"][5]["counted"], false);
    }

    #[test]
    fn intervals_around_a_failed_reading() {
        let t = tree();
        let mut s = EnergySession::open(&[sel("rapl/pkg:1")], &t.sysroot(), None, None).unwrap();
        s.set_poll_period(None);
        s.start().unwrap();
        t.set_energy("intel-rapl:1", 21_000_000);
        let i1 = s.interval().unwrap();
        t.write("/sys/class/powercap/intel-rapl:1/energy_uj", "x\n");
        let i2 = s.interval().unwrap();
        t.set_energy("intel-rapl:1", 24_000_000);
        let i3 = s.interval().unwrap();
        t.set_energy("intel-rapl:1", 24_500_000);
        let i4 = s.interval().unwrap();
        let total = s.finish().unwrap();
        assert_eq!((i1.rows[0].counted, i1.rows[0].joules), (true, 1.0));
        // The interval that ends on the failed reading, and the one that starts on it, are
        // unknown on their own ...
        assert!(!i2.rows[0].counted && !i3.rows[0].counted);
        assert_eq!((i4.rows[0].counted, i4.rows[0].joules), (true, 0.5));
        // ... but the run as a whole is bounded by good readings: exact.
        assert_eq!((total.rows[0].counted, total.rows[0].joules), (true, 4.5));
        assert!(
            total.rows[0].warnings[0].starts_with("rapl/pkg:1: 1 reading(s) failed: "),
            "{:?}",
            total.rows[0].warnings
        );
    }

    #[test]
    fn session_can_move_to_another_thread() {
        fn is_send<T: Send>() {}
        is_send::<EnergySession>();
        is_send::<Box<dyn Source>>();
    }

    #[test]
    fn report_serializes() {
        let t = tree();
        let mut s = EnergySession::open(&[sel("rapl/psys")], &t.sysroot(), None, None).unwrap();
        s.start().unwrap();
        let r = s.finish().unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["rows"][0]["name"], "rapl/psys:0");
        assert_eq!(json["rows"][0]["kind"], "psys");
        assert_eq!(json["rows"][0]["source"], "powercap");
        assert_eq!(json["rows"][0]["estimate"], false);
    }
}
