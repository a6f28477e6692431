//! Energy measurement: CPU (RAPL) and GPU (NVML) energy as cumulative joules per domain.
//!
//! Every backend implements [`Source`]: it names its [`Domain`]s and hands back raw integer
//! readings, one per [`Channel`]. An [`Accumulator`] turns those readings into cumulative
//! joules with a monotonic timestamp ([`Reading`]), using the one wrap-safe difference routine
//! of this crate, [`counter_delta`], for every counter of every backend.
//!
//! `ruperf stat` uses the layer above: [`parse_selector`] recognises the energy event names
//! (`rapl`, `rapl/pkg:0`, `nvml/1`, `energy`, …) and [`EnergySession`] opens what they select,
//! reads before the child is released and after it exits, polls in the background when a
//! counter could otherwise wrap unseen, and returns serde-serializable [`EnergyReport`]s.
//!
//! RAPL and GPU energy is whole-package / whole-device energy, never one process's share
//! (see [`SCOPE_NOTE`]).

pub mod fake;
pub mod nvml;
pub mod poll;
pub mod rapl;
mod session;

use std::fmt;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};

pub use rapl::RaplSource;
pub use session::{EnergyReport, EnergyRow, EnergySession, KindTotal};

/// What every energy figure measures, for output footers.
pub const SCOPE_NOTE: &str =
    "RAPL and GPU energy is whole-package / whole-device energy, not the command's share";

/// The kind of an energy domain. RAPL domains nest (psys ⊇ package ⊇ {cores, uncore}; DRAM is
/// outside the package), so figures of different kinds must never be added together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainKind {
    /// The whole CPU package (socket or die).
    Package,
    /// The cores of a package (RAPL PP0).
    Cores,
    /// The uncore / integrated GPU of a package (RAPL PP1).
    Uncore,
    /// Memory attached to a package.
    Dram,
    /// The whole platform (SoC plus more), as the platform reports it.
    Psys,
    /// A discrete GPU board (NVML).
    Gpu,
}

impl DomainKind {
    /// Every RAPL kind, in display order.
    pub const RAPL: [DomainKind; 5] = [
        DomainKind::Package,
        DomainKind::Cores,
        DomainKind::Uncore,
        DomainKind::Dram,
        DomainKind::Psys,
    ];

    /// The short name used in event names: `pkg`, `cores`, `uncore`, `dram`, `psys`, `gpu`.
    pub fn short(self) -> &'static str {
        match self {
            DomainKind::Package => "pkg",
            DomainKind::Cores => "cores",
            DomainKind::Uncore => "uncore",
            DomainKind::Dram => "dram",
            DomainKind::Psys => "psys",
            DomainKind::Gpu => "gpu",
        }
    }

    /// The event-name prefix of this kind across all its instances: `rapl/pkg`, `nvml`.
    pub fn family_name(self) -> String {
        match self {
            DomainKind::Gpu => "nvml".to_string(),
            k => format!("rapl/{}", k.short()),
        }
    }

    /// True for the RAPL kinds.
    pub fn is_rapl(self) -> bool {
        self != DomainKind::Gpu
    }
}

/// One energy domain: a kind and the package (RAPL) or device (NVML) index, and for RAPL on a
/// multi-die package (`package-N-die-M` zones, `die_id` in the topology) the die.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Domain {
    /// The kind of domain.
    pub kind: DomainKind,
    /// Package index for RAPL domains, device index for GPUs.
    pub index: u32,
    /// The die within the package, for one die of a multi-die package; `None` for a whole
    /// package (on a multi-die package: the sum of its dies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub die: Option<u32>,
    /// The name as displayed and as accepted by `-e`: `rapl/pkg:0`, `rapl/pkg:0.die1`, `nvml/0`.
    pub name: String,
}

impl Domain {
    /// A RAPL domain of `kind` on package `package`.
    pub fn rapl(kind: DomainKind, package: u32) -> Self {
        Domain {
            kind,
            index: package,
            die: None,
            name: format!("rapl/{}:{package}", kind.short()),
        }
    }

    /// A RAPL domain of `kind` on die `die` of package `package`: `rapl/pkg:0.die1`.
    pub fn rapl_die(kind: DomainKind, package: u32, die: u32) -> Self {
        Domain {
            kind,
            index: package,
            die: Some(die),
            name: format!("rapl/{}:{package}.die{die}", kind.short()),
        }
    }

    /// A RAPL domain on `die` of `package` when the package has several dies, else the
    /// whole-package domain.
    pub fn rapl_at(kind: DomainKind, package: u32, die: Option<u32>) -> Self {
        match die {
            Some(d) => Domain::rapl_die(kind, package, d),
            None => Domain::rapl(kind, package),
        }
    }

    /// The whole-package domain this domain belongs to (itself when it is one).
    pub fn package_domain(&self) -> Domain {
        match self.kind {
            DomainKind::Gpu => self.clone(),
            k => Domain::rapl(k, self.index),
        }
    }

    /// GPU number `index`.
    pub fn gpu(index: u32) -> Self {
        Domain {
            kind: DomainKind::Gpu,
            index,
            die: None,
            name: format!("nvml/{index}"),
        }
    }
}

/// The domains a user can select from a source's: its own, plus, for each multi-die package
/// it lists only die by die, the whole package (`rapl/pkg:0`, the sum of its dies), placed
/// after that package's dies.
pub fn selectable_domains(domains: &[Domain]) -> Vec<Domain> {
    let mut out: Vec<Domain> = domains.to_vec();
    for d in domains.iter().filter(|d| d.die.is_some()) {
        let pkg = d.package_domain();
        if !out.contains(&pkg) {
            out.push(pkg);
        }
    }
    if out.iter().all(|d| d.kind.is_rapl()) {
        out.sort_by_key(|d| (d.index, d.die.is_none(), d.die, d.kind));
    }
    out
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// How a raw energy counter wraps around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    /// Only the low `n` bits count (MSR: 32; perf: 64): the difference is taken modulo 2^n.
    Bits(u32),
    /// The counter reads `0..=max` and then starts again at 0; the step from `max` back to 0
    /// is `last_step` raw units (powercap: `max_energy_range_uj` and one hardware unit).
    Range {
        /// The largest value the counter shows.
        max: u64,
        /// The size of the step from `max` to 0.
        last_step: u64,
    },
    /// The counter never wraps; a lower value means it was reset (NVML: a driver reload).
    Never,
}

impl Wrap {
    /// The `Range` of a powercap zone with this `max_energy_range_uj`.
    ///
    /// The kernel computes the range as (2^32 − 1) raw steps times the energy unit, so the
    /// hidden step from `max` to 0 is one unit: `max / (2^32 − 1)`, rounded, and at least 1 µJ.
    pub fn powercap(max_energy_range_uj: u64) -> Self {
        let raw_max = u64::from(u32::MAX);
        let step = (max_energy_range_uj + raw_max / 2) / raw_max;
        Wrap::Range {
            max: max_energy_range_uj,
            last_step: step.max(1),
        }
    }

    /// How many raw units the counter can advance before its value repeats, if it wraps.
    pub fn period(self) -> Option<u128> {
        match self {
            Wrap::Bits(n) => Some(1u128 << n.min(64)),
            Wrap::Range { max, last_step } => Some(u128::from(max) + u128::from(last_step)),
            Wrap::Never => None,
        }
    }
}

/// The outcome of comparing two readings of one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The counter advanced by this many raw units (wrap-arounds included).
    Advanced(u64),
    /// The counter went down on a counter that never wraps: it was reset (a driver reload).
    /// It holds the value read after the reset, the energy counted since the reset.
    Reset(u64),
}

impl Step {
    /// Raw units to count for this step.
    pub fn units(self) -> u64 {
        match self {
            Step::Advanced(n) | Step::Reset(n) => n,
        }
    }
}

/// The one wrap-safe difference routine: how far a counter moved from `prev` to `cur`.
///
/// - `Bits(n)`: `(cur − prev) mod 2^n` on the low `n` bits (a zero delta is no movement, not a wrap).
/// - `Range { max, last_step }`: `cur − prev` when `cur ≥ prev`, else
///   `(max − prev) + last_step + cur`.
/// - `Never`: `cur − prev`, or [`Step::Reset`] when `cur < prev`.
pub fn counter_delta(prev: u64, cur: u64, wrap: Wrap) -> Step {
    match wrap {
        Wrap::Bits(n) => {
            let mask = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
            Step::Advanced(cur.wrapping_sub(prev) & mask)
        }
        Wrap::Range { max, last_step } => {
            if cur >= prev {
                Step::Advanced(cur - prev)
            } else {
                let to_top = max.saturating_sub(prev);
                Step::Advanced(to_top.saturating_add(last_step).saturating_add(cur))
            }
        }
        Wrap::Never => {
            if cur >= prev {
                Step::Advanced(cur - prev)
            } else {
                Step::Reset(cur)
            }
        }
    }
}

/// How the raw values of one channel become energy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Meter {
    /// A cumulative counter: joules = [`counter_delta`] × `joules_per_unit`.
    Counter {
        /// How it wraps.
        wrap: Wrap,
        /// Joules per raw unit.
        joules_per_unit: f64,
    },
    /// An instantaneous power reading, integrated over time by the trapezoid rule (an estimate).
    Power {
        /// Watts per raw unit.
        watts_per_unit: f64,
    },
}

impl Meter {
    /// Seconds until this counter could wrap at `watts`, if it wraps.
    pub fn wrap_seconds(&self, watts: f64) -> Option<f64> {
        match self {
            Meter::Counter {
                wrap,
                joules_per_unit,
            } => wrap
                .period()
                .map(|p| p as f64 * joules_per_unit / watts.max(f64::MIN_POSITIVE)),
            Meter::Power { .. } => None,
        }
    }
}

/// One raw value a source reads, and the domain it adds to. A domain may be the sum of several
/// channels (e.g. AMD's per-core energy counters of one package).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Channel {
    /// Index into [`Source::domains`].
    pub domain: usize,
    /// How its raw values become energy.
    pub meter: Meter,
}

/// An energy source: a backend that reads raw integer values for its channels.
///
/// Sources never print and keep no history; an [`Accumulator`] turns their readings into
/// cumulative joules per domain.
pub trait Source: Send {
    /// The backend's name: `perf`, `powercap`, `msr`, `nvml`.
    fn backend(&self) -> &'static str;
    /// The domains this source measures.
    fn domains(&self) -> &[Domain];
    /// The channels, in the order [`Source::read`] fills them.
    fn channels(&self) -> &[Channel];
    /// Reads every channel now; `None` for a channel that could not be read this time.
    fn read(&mut self, out: &mut [Option<u64>]);
    /// Problems met while opening that did not stop the source (e.g. a zone left out).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// What a figure of domain `domain` does and does not cover, when that needs saying (e.g.
    /// AMD cores through powercap: one core, not every core).
    fn domain_notes(&self, _domain: usize) -> Vec<String> {
        Vec::new()
    }
    /// Why channel `channel` could not be read in the last [`Source::read`], when it could not
    /// (e.g. `GPU is lost (NVML_ERROR_GPU_IS_LOST)`, an I/O error).
    fn failure(&self, _channel: usize) -> Option<String> {
        None
    }
}

/// Cumulative energy of one source's domains at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// When the reading was taken (monotonic clock).
    pub at: Instant,
    /// Joules per domain since the accumulator's first reading.
    pub joules: Vec<f64>,
    /// Per domain: counter resets seen so far (NVML driver reloads).
    pub resets: Vec<u32>,
    /// Per domain: readings that failed so far.
    pub failures: Vec<u32>,
    /// Per domain: the longest gap in seconds between two readings of a wrapping counter.
    pub max_gap: Vec<f64>,
    /// Per domain: true when every channel of the domain was read at this reading. A domain
    /// whose reading failed at either end of a window was not counted over that window.
    pub ok: Vec<bool>,
    /// Per domain: why its last failed reading failed, if one did.
    pub cause: Vec<Option<String>>,
    /// Per channel: exact totals, so that differences between readings stay exact.
    channels: Vec<ChannelTotal>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct ChannelTotal {
    domain: usize,
    units: u128,
    joules_per_unit: f64,
    power_joules: f64,
}

impl Reading {
    /// Joules per domain between `earlier` (a reading of the same accumulator) and this one,
    /// computed from the integer counter totals so that no rounding accumulates.
    pub fn joules_since(&self, earlier: &Reading) -> Vec<f64> {
        let mut out = vec![0.0; self.joules.len()];
        for (b, a) in self.channels.iter().zip(&earlier.channels) {
            let units = b.units.saturating_sub(a.units);
            out[b.domain] += units as f64 * b.joules_per_unit + (b.power_joules - a.power_joules);
        }
        out
    }
}

#[derive(Debug, Clone, Default)]
struct ChannelState {
    last: Option<u64>,
    last_at: Option<Instant>,
    units: u128,
    power_joules: f64,
}

/// Turns a [`Source`]'s raw readings into cumulative joules per domain.
pub struct Accumulator {
    source: Box<dyn Source>,
    state: Vec<ChannelState>,
    scratch: Vec<Option<u64>>,
    resets: Vec<u32>,
    failures: Vec<u32>,
    max_gap: Vec<f64>,
    ok: Vec<bool>,
    cause: Vec<Option<String>>,
    last: Option<Instant>,
}

impl fmt::Debug for Accumulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accumulator")
            .field("backend", &self.source.backend())
            .field("domains", &self.source.domains())
            .finish()
    }
}

impl Accumulator {
    /// Wraps a source; nothing is read yet.
    pub fn new(source: Box<dyn Source>) -> Self {
        let channels = source.channels().len();
        let domains = source.domains().len();
        Accumulator {
            source,
            state: vec![ChannelState::default(); channels],
            scratch: vec![None; channels],
            resets: vec![0; domains],
            failures: vec![0; domains],
            max_gap: vec![0.0; domains],
            ok: vec![false; domains],
            cause: vec![None; domains],
            last: None,
        }
    }

    /// The wrapped source.
    pub fn source(&self) -> &dyn Source {
        self.source.as_ref()
    }

    /// True when some channel integrates power readings (its figures are estimates).
    pub fn is_estimate(&self, domain: usize) -> bool {
        self.source
            .channels()
            .iter()
            .any(|c| c.domain == domain && matches!(c.meter, Meter::Power { .. }))
    }

    /// Seconds the fastest-wrapping counter of this source needs to wrap at `watts` per domain.
    pub fn shortest_wrap(&self, watts: f64) -> Option<f64> {
        self.source
            .channels()
            .iter()
            .filter_map(|c| c.meter.wrap_seconds(watts))
            .min_by(f64::total_cmp)
    }

    /// True when some counter never wraps but can be reset (NVML's, by a driver reload): only
    /// readings between the two ends can see a reset followed by a climb past the old value.
    pub fn can_reset(&self) -> bool {
        self.source.channels().iter().any(|c| {
            matches!(
                c.meter,
                Meter::Counter {
                    wrap: Wrap::Never,
                    ..
                }
            )
        })
    }

    /// True when the source integrates power and needs frequent readings.
    pub fn integrates_power(&self) -> bool {
        self.source
            .channels()
            .iter()
            .any(|c| matches!(c.meter, Meter::Power { .. }))
    }

    /// Reads the source now and returns the cumulative energy.
    pub fn read(&mut self) -> Reading {
        let at = self.update();
        self.reading(at)
    }

    /// Reads the source now and folds the values in, without building a [`Reading`] (for
    /// background polls); returns when the values were read.
    pub fn update(&mut self) -> Instant {
        self.source.read(&mut self.scratch);
        let at = Instant::now();
        let channels = self.source.channels();
        self.ok.iter_mut().for_each(|o| *o = true);
        for (i, ch) in channels.iter().enumerate() {
            let st = &mut self.state[i];
            let Some(cur) = self.scratch[i] else {
                self.failures[ch.domain] += 1;
                self.ok[ch.domain] = false;
                self.cause[ch.domain] = self.source.failure(i);
                continue;
            };
            match ch.meter {
                Meter::Counter { wrap, .. } => {
                    if let (Some(prev), Some(prev_at)) = (st.last, st.last_at) {
                        match counter_delta(prev, cur, wrap) {
                            Step::Advanced(n) => st.units += u128::from(n),
                            Step::Reset(n) => {
                                st.units += u128::from(n);
                                self.resets[ch.domain] += 1;
                            }
                        }
                        if wrap.period().is_some() {
                            let gap = at.duration_since(prev_at).as_secs_f64();
                            let g = &mut self.max_gap[ch.domain];
                            *g = g.max(gap);
                        }
                    }
                }
                Meter::Power { watts_per_unit } => {
                    if let (Some(prev), Some(prev_at)) = (st.last, st.last_at) {
                        let dt = at.duration_since(prev_at).as_secs_f64();
                        let p0 = prev as f64 * watts_per_unit;
                        let p1 = cur as f64 * watts_per_unit;
                        st.power_joules += (p0 + p1) / 2.0 * dt;
                    }
                }
            }
            st.last = Some(cur);
            st.last_at = Some(at);
        }
        self.last = Some(at);
        at
    }

    fn reading(&self, at: Instant) -> Reading {
        let mut joules = vec![0.0; self.source.domains().len()];
        let mut channels = Vec::with_capacity(self.state.len());
        for (ch, st) in self.source.channels().iter().zip(&self.state) {
            let joules_per_unit = match ch.meter {
                Meter::Counter {
                    joules_per_unit, ..
                } => joules_per_unit,
                Meter::Power { .. } => 0.0,
            };
            joules[ch.domain] += st.units as f64 * joules_per_unit + st.power_joules;
            channels.push(ChannelTotal {
                domain: ch.domain,
                units: st.units,
                joules_per_unit,
                power_joules: st.power_joules,
            });
        }
        Reading {
            at,
            joules,
            resets: self.resets.clone(),
            failures: self.failures.clone(),
            max_gap: self.max_gap.clone(),
            ok: self.ok.clone(),
            cause: self.cause.clone(),
            channels,
        }
    }
}

/// What an energy event name selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnergySelector {
    /// RAPL domains: all kinds (`None`) or one, on every package (`None`) or one, and with
    /// `die` one die of a multi-die package.
    Rapl {
        /// The kind, or every kind.
        kind: Option<DomainKind>,
        /// The package, or every package.
        package: Option<u32>,
        /// One die of the package (`rapl/pkg:0.die1`); `None`: the whole package.
        die: Option<u32>,
    },
    /// NVIDIA GPUs: every one (`None`) or one.
    Nvml {
        /// The device index, or every device.
        gpu: Option<u32>,
    },
    /// Everything available: every RAPL domain and every GPU (`energy`).
    All,
}

impl EnergySelector {
    /// True when this selector picks `d`.
    pub fn matches(&self, d: &Domain) -> bool {
        match *self {
            EnergySelector::All => true,
            EnergySelector::Rapl { kind, package, die } => {
                d.kind.is_rapl()
                    && kind.is_none_or(|k| k == d.kind)
                    && match (package, die) {
                        // Every package: whole packages and their dies.
                        (None, _) => true,
                        // One package: the whole package (the sum of its dies).
                        (Some(p), None) => p == d.index && d.die.is_none(),
                        (Some(p), Some(x)) => p == d.index && d.die == Some(x),
                    }
            }
            EnergySelector::Nvml { gpu } => {
                d.kind == DomainKind::Gpu && gpu.is_none_or(|g| g == d.index)
            }
        }
    }

    /// True when this selector needs a RAPL source.
    pub fn wants_rapl(&self) -> bool {
        matches!(self, EnergySelector::Rapl { .. } | EnergySelector::All)
    }

    /// True when this selector needs NVML.
    pub fn wants_nvml(&self) -> bool {
        matches!(self, EnergySelector::Nvml { .. } | EnergySelector::All)
    }
}

impl fmt::Display for EnergySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EnergySelector::All => f.write_str("energy"),
            EnergySelector::Rapl { kind, package, die } => {
                f.write_str("rapl")?;
                if kind.is_some() || package.is_some() {
                    f.write_str("/")?;
                    f.write_str(kind.map_or("pkg", DomainKind::short))?;
                }
                if let Some(p) = package {
                    write!(f, ":{p}")?;
                }
                if let Some(d) = die {
                    write!(f, ".die{d}")?;
                }
                Ok(())
            }
            EnergySelector::Nvml { gpu: None } => f.write_str("nvml"),
            EnergySelector::Nvml { gpu: Some(g) } => write!(f, "nvml/{g}"),
        }
    }
}

/// The energy event names, for error messages and help.
pub const SPELLINGS: &str = "rapl, rapl/pkg, rapl/cores, rapl/uncore, rapl/dram, rapl/psys \
     (add :N for package N, e.g. rapl/pkg:0, and .dieM for one die of it, e.g. rapl/pkg:0.die1), \
     nvml, nvml/N (GPU N), energy (all of them)";

/// Recognises an energy event name.
///
/// Returns `None` when `s` is not an energy name at all (so the counter-event grammar can try
/// it), `Some(Ok(_))` for a valid name and `Some(Err(_))` for a name in the `rapl`/`nvml`
/// families that is misspelt, with a message listing the valid spellings.
pub fn parse_selector(s: &str) -> Option<Result<EnergySelector>> {
    let s = s.trim();
    let (family, rest) = match s.find(['/', ':']) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let bad = |why: &str| -> Option<Result<EnergySelector>> {
        Some(Err(Error::Event(format!(
            "{s}: {why}; energy events are {SPELLINGS}"
        ))))
    };
    match (family, rest) {
        ("energy", None) => Some(Ok(EnergySelector::All)),
        ("rapl", None) => Some(Ok(EnergySelector::Rapl {
            kind: None,
            package: None,
            die: None,
        })),
        ("nvml", None) => Some(Ok(EnergySelector::Nvml { gpu: None })),
        ("energy", Some(_)) => bad("`energy` takes no domain or modifier"),
        ("rapl", Some(rest)) => {
            let Some(body) = rest.strip_prefix('/') else {
                return bad("energy events take no modifiers");
            };
            let (name, pkg) = match body.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (body, None),
            };
            let kind = match name {
                "pkg" | "package" => DomainKind::Package,
                "cores" | "core" => DomainKind::Cores,
                "uncore" => DomainKind::Uncore,
                "dram" | "ram" => DomainKind::Dram,
                "psys" => DomainKind::Psys,
                _ => return bad("unknown RAPL domain"),
            };
            let (pkg, die) = match pkg.map(|p| p.split_once(".die")) {
                None => (None, None),
                Some(None) => (pkg, None),
                Some(Some((p, d))) => (Some(p), Some(d)),
            };
            let package = match pkg {
                None => None,
                Some(p) => match p.parse::<u32>() {
                    Ok(n) => Some(n),
                    Err(_) => return bad("the package after `:` must be a number"),
                },
            };
            let die = match die {
                None => None,
                Some(d) => match d.parse::<u32>() {
                    Ok(n) => Some(n),
                    Err(_) => return bad("the die after `.die` must be a number"),
                },
            };
            Some(Ok(EnergySelector::Rapl {
                kind: Some(kind),
                package,
                die,
            }))
        }
        ("nvml", Some(rest)) => {
            let Some(body) = rest.strip_prefix('/') else {
                return bad("energy events take no modifiers");
            };
            match body.parse::<u32>() {
                Ok(g) => Some(Ok(EnergySelector::Nvml { gpu: Some(g) })),
                Err(_) => bad("the GPU after `nvml/` must be a number"),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powercap_range_edges() {
        // A zone with ESU 14: unit 61035 pJ... the kernel gives max = (2^32-1) * 61035 / 1000.
        let max = (u64::from(u32::MAX) * 61035) / 1000;
        let w = Wrap::powercap(max);
        assert_eq!(w, Wrap::Range { max, last_step: 61 });
        // No movement is not a wrap.
        assert_eq!(counter_delta(max, max, w), Step::Advanced(0));
        assert_eq!(counter_delta(0, 0, w), Step::Advanced(0));
        // Exactly the top of the range without wrapping.
        assert_eq!(counter_delta(0, max, w), Step::Advanced(max));
        // From the top to zero: one hidden unit.
        assert_eq!(counter_delta(max, 0, w), Step::Advanced(61));
        // Across the edge.
        assert_eq!(
            counter_delta(max - 100, 50, w),
            Step::Advanced(100 + 61 + 50)
        );
        // Tiny fake ranges still count the step from max to 0 as one µJ.
        let small = Wrap::powercap(1000);
        assert_eq!(
            small,
            Wrap::Range {
                max: 1000,
                last_step: 1
            }
        );
        assert_eq!(counter_delta(900, 100, small), Step::Advanced(201));
        assert_eq!(counter_delta(1000, 0, small), Step::Advanced(1));
        // Sapphire Rapids psys: 1 J unit, so the hidden step is 10^6 µJ.
        let psys = Wrap::powercap(u64::from(u32::MAX) * 1_000_000);
        assert_eq!(
            counter_delta(u64::from(u32::MAX) * 1_000_000, 0, psys).units(),
            1_000_000
        );
    }

    #[test]
    fn msr_32bit_modulo() {
        let w = Wrap::Bits(32);
        assert_eq!(counter_delta(5, 5, w), Step::Advanced(0));
        assert_eq!(counter_delta(0xFFFF_FFFF, 0, w), Step::Advanced(1));
        assert_eq!(counter_delta(0xFFFF_FFF0, 0x10, w), Step::Advanced(0x20));
        assert_eq!(counter_delta(10, 9, w), Step::Advanced(0xFFFF_FFFF));
        // Reserved high bits are ignored.
        assert_eq!(
            counter_delta(0xABCD_0000_0000_0010, 0x1234_0000_0000_0020, w),
            Step::Advanced(0x10)
        );
    }

    #[test]
    fn perf_64bit() {
        let w = Wrap::Bits(64);
        assert_eq!(counter_delta(1, 1 << 40, w), Step::Advanced((1 << 40) - 1));
        assert_eq!(counter_delta(u64::MAX, 4, w), Step::Advanced(5));
        assert_eq!(counter_delta(7, 7, w), Step::Advanced(0));
    }

    #[test]
    fn nvml_decrease_is_a_reset() {
        let w = Wrap::Never;
        assert_eq!(counter_delta(100, 250, w), Step::Advanced(150));
        assert_eq!(counter_delta(100, 100, w), Step::Advanced(0));
        assert_eq!(counter_delta(5000, 30, w), Step::Reset(30));
        assert_eq!(w.period(), None);
    }

    struct Scripted {
        domains: Vec<Domain>,
        channels: Vec<Channel>,
        values: Vec<Vec<Option<u64>>>,
        next: usize,
    }

    impl Source for Scripted {
        fn backend(&self) -> &'static str {
            "scripted"
        }
        fn domains(&self) -> &[Domain] {
            &self.domains
        }
        fn channels(&self) -> &[Channel] {
            &self.channels
        }
        fn read(&mut self, out: &mut [Option<u64>]) {
            out.copy_from_slice(&self.values[self.next]);
            self.next += 1;
        }
    }

    #[test]
    fn accumulator_sums_channels_and_counts_resets() {
        let counter = Meter::Counter {
            wrap: Wrap::Bits(32),
            joules_per_unit: 0.5,
        };
        let src = Scripted {
            domains: vec![
                Domain::rapl(DomainKind::Cores, 0),
                Domain::gpu(0),
                Domain::gpu(1),
            ],
            channels: vec![
                Channel {
                    domain: 0,
                    meter: counter,
                },
                Channel {
                    domain: 0,
                    meter: counter,
                },
                Channel {
                    domain: 1,
                    meter: Meter::Counter {
                        wrap: Wrap::Never,
                        joules_per_unit: 1e-3,
                    },
                },
                Channel {
                    domain: 2,
                    meter: Meter::Power {
                        watts_per_unit: 1e-3,
                    },
                },
            ],
            values: vec![
                vec![Some(0xFFFF_FFFE), Some(10), Some(9000), Some(100_000)],
                vec![Some(2), Some(14), Some(500), Some(300_000)],
                vec![Some(6), None, Some(1500), Some(300_000)],
            ],
            next: 0,
        };
        let mut acc = Accumulator::new(Box::new(src));
        assert!(acc.is_estimate(2) && !acc.is_estimate(1));
        let r0 = acc.read();
        assert_eq!(r0.joules, vec![0.0, 0.0, 0.0]);
        let r1 = acc.read();
        // 4 units (wrap) + 4 units = 8 × 0.5 J.
        assert_eq!(r1.joules[0], 4.0);
        // Driver reload: the 500 mJ since the reload count; one reset.
        assert_eq!(r1.joules[1], 0.5);
        assert_eq!(r1.resets[1], 1);
        // Trapezoid: (100 + 300) / 2 W over the gap between the readings.
        let dt = r1.at.duration_since(r0.at).as_secs_f64();
        assert!((r1.joules[2] - 200.0 * dt).abs() < 1e-9);
        let r2 = acc.read();
        assert_eq!(r2.joules[0], 6.0);
        assert_eq!(r2.failures[0], 1);
        assert_eq!(r2.joules[1], 1.5);
        assert_eq!(r2.resets[1], 1);
    }

    #[test]
    fn selectors() {
        let ok = |s: &str| parse_selector(s).unwrap().unwrap();
        assert_eq!(ok("energy"), EnergySelector::All);
        assert_eq!(
            ok("rapl"),
            EnergySelector::Rapl {
                kind: None,
                package: None,
                die: None
            }
        );
        assert_eq!(
            ok("rapl/pkg"),
            EnergySelector::Rapl {
                kind: Some(DomainKind::Package),
                package: None,
                die: None
            }
        );
        assert_eq!(
            ok("rapl/pkg:1"),
            EnergySelector::Rapl {
                kind: Some(DomainKind::Package),
                package: Some(1),
                die: None
            }
        );
        for (name, kind) in [
            ("cores", DomainKind::Cores),
            ("uncore", DomainKind::Uncore),
            ("dram", DomainKind::Dram),
            ("psys", DomainKind::Psys),
        ] {
            let sel = ok(&format!("rapl/{name}"));
            assert_eq!(
                sel,
                EnergySelector::Rapl {
                    kind: Some(kind),
                    package: None,
                    die: None
                }
            );
            assert_eq!(sel.to_string(), format!("rapl/{name}"));
        }
        assert_eq!(ok("nvml"), EnergySelector::Nvml { gpu: None });
        assert_eq!(ok("nvml/3"), EnergySelector::Nvml { gpu: Some(3) });
        assert_eq!(ok("nvml/3").to_string(), "nvml/3");
        assert_eq!(ok("rapl/dram:2").to_string(), "rapl/dram:2");
        assert_eq!(
            ok("rapl/pkg:0.die1"),
            EnergySelector::Rapl {
                kind: Some(DomainKind::Package),
                package: Some(0),
                die: Some(1)
            }
        );
        assert_eq!(ok("rapl/dram:1.die0").to_string(), "rapl/dram:1.die0");
        // Not energy names: left to the counter grammar.
        for other in [
            "cycles",
            "power/energy-pkg/",
            "raplx",
            "energy-pkg",
            "nvmlfoo",
            "msr/tsc/",
            "",
        ] {
            assert!(parse_selector(other).is_none(), "{other}");
        }
        // Misspelt energy names: errors listing the spellings.
        for bad in [
            "rapl/bogus",
            "rapl/",
            "rapl/pkg:x",
            "rapl:u",
            "nvml/x",
            "nvml:u",
            "energy/pkg",
            "rapl/pkg:0.die",
            "rapl/pkg:0.diex",
            "rapl/pkg:.die1",
        ] {
            let err = parse_selector(bad).unwrap().unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(bad), "{msg}");
            assert!(msg.contains("rapl/psys") && msg.contains("nvml/N"), "{msg}");
            assert!(!msg.contains('\n'));
            assert_eq!(err.exit_code(), crate::error::exit::USAGE);
        }
    }

    #[test]
    fn selector_matching() {
        let pkg1 = Domain::rapl(DomainKind::Package, 1);
        let dram0 = Domain::rapl(DomainKind::Dram, 0);
        let gpu1 = Domain::gpu(1);
        let sel = |s: &str| parse_selector(s).unwrap().unwrap();
        assert!(sel("rapl").matches(&pkg1) && sel("rapl").matches(&dram0));
        assert!(!sel("rapl").matches(&gpu1));
        assert!(sel("rapl/pkg").matches(&pkg1) && !sel("rapl/pkg").matches(&dram0));
        assert!(!sel("rapl/pkg:0").matches(&pkg1) && sel("rapl/pkg:1").matches(&pkg1));
        assert!(sel("nvml").matches(&gpu1) && sel("nvml/1").matches(&gpu1));
        assert!(!sel("nvml/0").matches(&gpu1) && !sel("nvml").matches(&pkg1));
        assert!(sel("energy").matches(&gpu1) && sel("energy").matches(&dram0));
        assert_eq!(pkg1.name, "rapl/pkg:1");
        assert_eq!(gpu1.name, "nvml/1");
        // Dies: `rapl/pkg:0` is the whole package (the sum of its dies), never one die.
        let die1 = Domain::rapl_die(DomainKind::Package, 0, 1);
        assert_eq!(die1.name, "rapl/pkg:0.die1");
        assert_eq!(die1.package_domain(), Domain::rapl(DomainKind::Package, 0));
        assert!(!sel("rapl/pkg:0").matches(&die1));
        assert!(sel("rapl/pkg:0.die1").matches(&die1));
        assert!(!sel("rapl/pkg:0.die0").matches(&die1));
        assert!(!sel("rapl/pkg:0.die1").matches(&Domain::rapl(DomainKind::Package, 0)));
        assert!(sel("rapl").matches(&die1) && sel("rapl/pkg").matches(&die1));
        let all = selectable_domains(&[
            Domain::rapl_die(DomainKind::Package, 0, 0),
            Domain::rapl_die(DomainKind::Dram, 0, 0),
            die1.clone(),
            Domain::rapl(DomainKind::Package, 1),
        ]);
        let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rapl/pkg:0.die0",
                "rapl/dram:0.die0",
                "rapl/pkg:0.die1",
                "rapl/pkg:0",
                "rapl/dram:0",
                "rapl/pkg:1"
            ]
        );
    }
}
