//! `report --energy`: each sample weighted by the energy measured while it was taken.
//!
//! The method (an estimate, and said so wherever it is shown): the recording holds energy
//! readings every few milliseconds ([`crate::perfdata::energy`]). For each interval between two
//! readings, the joules of each CPU-package domain (RAPL `pkg` and `dram` of package P) are
//! split evenly among the samples of the first event taken in that interval on a CPU of
//! package P; GPU joules (NVML) are split among all of that interval's samples, since a GPU's
//! work cannot be tied to CPU samples more closely. Nested domains (`cores`, `uncore`, `psys`)
//! are not attributed: they are parts of, or contain, the package. Energy of an interval with
//! no sample on its package (the machine was busy with other work, or idle) stays unattributed
//! and is reported as such. The weights then go through the usual aggregation, so Children/Self,
//! call graphs, `--json`, folded stacks and flame graphs all show joules.

use serde::Serialize;

use crate::energy::DomainKind;
use crate::perfdata::energy::EnergyTrace;
use crate::perfdata::reader::Sample;

/// Weights are nanojoules, so that the aggregation's integer periods keep sub-µJ shares.
pub const NJ_PER_J: f64 = 1e9;

/// What was measured and how much of it the samples carry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnergySummary {
    /// The attributed domains.
    pub domains: Vec<String>,
    /// Joules those domains measured over the recording.
    pub measured_joules: f64,
    /// Joules given to samples.
    pub attributed_joules: f64,
    /// Joules of intervals with no sample to carry them.
    pub unattributed_joules: f64,
    /// Readings that failed (their interval's energy is unknown, not zero).
    pub failed_readings: u64,
    /// Median time between readings, ms.
    pub interval_ms: f64,
    /// Always true: the split among samples is an estimate.
    pub estimate: bool,
}

/// The attribution of one recording's energy to its samples.
pub struct Attribution {
    trace: EnergyTrace,
    /// Domain index → package slot (CPU domains) or None (GPU: every sample).
    targets: Vec<Option<Target>>,
    packages: Vec<u32>,
    /// Samples per (interval, package slot); the last slot counts every sample.
    counts: Vec<Vec<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Package(usize),
    AllSamples,
}

impl Attribution {
    /// Prepares the attribution of `trace`'s domains.
    pub fn new(trace: EnergyTrace) -> Attribution {
        let mut packages: Vec<u32> = trace
            .domains
            .iter()
            .filter(|d| matches!(d.kind, DomainKind::Package | DomainKind::Dram))
            .map(|d| d.index)
            .collect();
        packages.sort_unstable();
        packages.dedup();
        let targets = trace
            .domains
            .iter()
            .map(|d| match d.kind {
                DomainKind::Package | DomainKind::Dram => packages
                    .iter()
                    .position(|&p| p == d.index)
                    .map(Target::Package),
                DomainKind::Gpu => Some(Target::AllSamples),
                _ => None,
            })
            .collect();
        let intervals = trace.times.len().saturating_sub(1);
        let slots = packages.len() + 1;
        Attribution {
            counts: vec![vec![0; slots]; intervals],
            trace,
            targets,
            packages,
        }
    }

    /// The interval a sample time falls in: (times[k], times[k+1]].
    fn interval(&self, time: u64) -> Option<usize> {
        let t = &self.trace.times;
        if t.len() < 2 || time <= t[0] || time > t[t.len() - 1] {
            return None;
        }
        Some(t.partition_point(|&x| x < time) - 1)
    }

    fn package_slot(&self, cpu: Option<u32>) -> Option<usize> {
        let pkg = match cpu.and_then(|c| self.trace.cpu_package.get(c as usize).copied()) {
            Some(Some(p)) => p,
            // One package: every sample is on it.
            _ if self.packages.len() == 1 => self.packages[0],
            _ => return None,
        };
        self.packages.iter().position(|&p| p == pkg)
    }

    /// First pass: counts a sample.
    pub fn count(&mut self, s: &Sample<'_>) {
        if s.event != 0 {
            return;
        }
        let Some(k) = self.interval(s.time) else {
            return;
        };
        let all = self.packages.len();
        if let Some(slot) = self.package_slot(s.cpu) {
            self.counts[k][slot] += 1;
        }
        self.counts[k][all] += 1;
    }

    /// Second pass: a sample's share of the energy, in nanojoules.
    pub fn weight(&self, s: &Sample<'_>) -> u64 {
        if s.event != 0 {
            return 0;
        }
        let Some(k) = self.interval(s.time) else {
            return 0;
        };
        let slot = self.package_slot(s.cpu);
        let all = self.packages.len();
        let row = &self.trace.joules[k + 1];
        let mut nj = 0.0;
        for (d, target) in self.targets.iter().enumerate() {
            let j = row.get(d).copied().unwrap_or(f64::NAN);
            if !j.is_finite() {
                continue;
            }
            let n = match target {
                Some(Target::Package(p)) if slot == Some(*p) => self.counts[k][*p],
                Some(Target::AllSamples) => self.counts[k][all],
                _ => 0,
            };
            if n > 0 {
                nj += j * NJ_PER_J / f64::from(n);
            }
        }
        nj.round() as u64
    }

    /// Totals for the report's header.
    pub fn summary(&self) -> EnergySummary {
        let mut s = EnergySummary {
            estimate: true,
            ..EnergySummary::default()
        };
        let all = self.packages.len();
        for (d, target) in self.targets.iter().enumerate() {
            let Some(target) = target else { continue };
            s.domains.push(self.trace.domains[d].name.clone());
            for k in 0..self.counts.len() {
                let j = self.trace.joules[k + 1].get(d).copied().unwrap_or(f64::NAN);
                if !j.is_finite() {
                    s.failed_readings += 1;
                    continue;
                }
                s.measured_joules += j;
                let n = match target {
                    Target::Package(p) => self.counts[k][*p],
                    Target::AllSamples => self.counts[k][all],
                };
                if n > 0 {
                    s.attributed_joules += j;
                }
            }
        }
        s.unattributed_joules = s.measured_joules - s.attributed_joules;
        let mut gaps: Vec<u64> = self.trace.times.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_unstable();
        s.interval_ms = gaps.get(gaps.len() / 2).map_or(0.0, |&g| g as f64 / 1e6);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perfdata::energy::TraceDomain;
    use crate::perfdata::user_stack::UserTail;

    fn sample(time: u64, cpu: u32) -> Sample<'static> {
        Sample {
            event: 0,
            pid: 1,
            tid: 1,
            time,
            cpu: Some(cpu),
            period: 1,
            ip: 0x1000,
            kernel: false,
            callchain: &[],
            user_regs: &[],
            regs_mask: 0,
            user_stack: UserTail::default(),
            addr: 0,
            raw: &[],
        }
    }

    fn two_packages() -> EnergyTrace {
        let dom = |kind, index, name: &str| TraceDomain {
            kind,
            index,
            name: name.into(),
        };
        EnergyTrace {
            domains: vec![
                dom(DomainKind::Package, 0, "rapl/pkg:0"),
                dom(DomainKind::Package, 1, "rapl/pkg:1"),
                dom(DomainKind::Cores, 0, "rapl/cores:0"),
                dom(DomainKind::Gpu, 0, "nvml/0"),
            ],
            cpu_package: vec![Some(0), Some(1)],
            times: vec![0, 10, 20],
            joules: vec![
                vec![0.0; 4],
                vec![3.0, 1.0, 2.0, 4.0],
                vec![6.0, f64::NAN, 5.0, 0.0],
            ],
        }
    }

    #[test]
    fn each_interval_is_split_among_its_samples_by_package() {
        let mut a = Attribution::new(two_packages());
        let samples = [
            sample(5, 0),
            sample(6, 0),
            sample(7, 1),
            sample(15, 0),
            sample(25, 0),
        ];
        for s in &samples {
            a.count(s);
        }
        let w: Vec<u64> = samples.iter().map(|s| a.weight(s)).collect();
        // Interval 1: pkg0's 3 J over 2 samples, pkg1's 1 J to its 1, the GPU's 4 J over 3.
        let third = (4.0 * NJ_PER_J / 3.0).round() as u64;
        assert_eq!(w[0], 1_500_000_000 + third);
        assert_eq!(w[1], w[0]);
        assert_eq!(w[2], 1_000_000_000 + third);
        // Interval 2: pkg0's 6 J to its one sample; pkg1 failed; GPU 0 J.
        assert_eq!(w[3], 6_000_000_000);
        // After the last reading: nothing.
        assert_eq!(w[4], 0);
        let s = a.summary();
        assert_eq!(s.domains, ["rapl/pkg:0", "rapl/pkg:1", "nvml/0"]);
        assert_eq!(s.measured_joules, 3.0 + 1.0 + 4.0 + 6.0);
        assert_eq!(s.attributed_joules, s.measured_joules);
        assert_eq!(s.failed_readings, 1);
        assert_eq!(s.interval_ms, 10.0 / 1e6);
    }

    #[test]
    fn energy_without_samples_stays_unattributed() {
        let mut a = Attribution::new(two_packages());
        let s = sample(15, 1);
        a.count(&s);
        // Interval 2: pkg1 failed, so the sample on package 1 carries no CPU energy.
        assert_eq!(a.weight(&s), 0);
        let sum = a.summary();
        assert_eq!(sum.attributed_joules, 0.0);
        assert_eq!(sum.unattributed_joules, sum.measured_joules);
    }
}
