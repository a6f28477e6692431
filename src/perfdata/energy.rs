//! Energy readings stored in a recording (`ruperf record --energy`).
//!
//! perf.data has no standard place for energy time series, so ruperf keeps them in a feature
//! section of its own, bit [`FEATURE`] (perf 6.1 knows bits up to 31; it reads the feature
//! table entry for every set bit but processes only the bits it knows, so perf report, perf
//! script, hotspot and samply read such a file as if the section were absent).
//!
//! Layout, native endianness, every field 8-byte aligned:
//! ```text
//! u64 magic "RUENRG01"
//! u64 domains D, u64 cpus C, u64 readings R
//! D × { u64 kind (0 pkg, 1 cores, 2 uncore, 3 dram, 4 psys, 5 gpu), u64 index, 32-byte name (NUL-padded) }
//! C × u64 package of CPU c (u64::MAX when unknown)
//! R × { u64 time_ns (the samples' clock, CLOCK_MONOTONIC), D × f64 joules since the previous reading (NaN: not read) }
//! ```
//! The first reading opens the window (its joules are 0).

use crate::energy::DomainKind;

/// The feature bit (perf's HEADER_FEAT_BITS is 256; perf itself uses the low 32).
pub const FEATURE: u32 = 250;
const MAGIC: &[u8; 8] = b"RUENRG01";
const NAME_LEN: usize = 32;
/// At most this many domains, CPUs and readings are decoded (a day at 10 ms is 8.6 M).
const MAX_DOMAINS: u64 = 4096;
const MAX_CPUS: u64 = 1 << 16;

/// One measured domain.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceDomain {
    /// Its kind.
    pub kind: DomainKind,
    /// Package (RAPL) or GPU index.
    pub index: u32,
    /// The name ruperf prints (`rapl/pkg:0`, `nvml/0`).
    pub name: String,
}

/// The energy time series of one recording.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnergyTrace {
    /// What was measured.
    pub domains: Vec<TraceDomain>,
    /// The package of each CPU, by CPU number (None: unknown).
    pub cpu_package: Vec<Option<u32>>,
    /// Reading times, ns on the samples' clock, ascending.
    pub times: Vec<u64>,
    /// Joules of each domain since the previous reading, one row per reading (NaN: not read).
    pub joules: Vec<Vec<f64>>,
}

fn kind_code(k: DomainKind) -> u64 {
    match k {
        DomainKind::Package => 0,
        DomainKind::Cores => 1,
        DomainKind::Uncore => 2,
        DomainKind::Dram => 3,
        DomainKind::Psys => 4,
        DomainKind::Gpu => 5,
    }
}

fn kind_of(code: u64) -> Option<DomainKind> {
    Some(match code {
        0 => DomainKind::Package,
        1 => DomainKind::Cores,
        2 => DomainKind::Uncore,
        3 => DomainKind::Dram,
        4 => DomainKind::Psys,
        5 => DomainKind::Gpu,
        _ => return None,
    })
}

impl EnergyTrace {
    /// The feature section's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let d = self.domains.len();
        let mut out = Vec::with_capacity(32 + d * 48 + self.times.len() * (8 + 8 * d));
        out.extend_from_slice(MAGIC);
        for n in [d, self.cpu_package.len(), self.times.len()] {
            out.extend_from_slice(&(n as u64).to_ne_bytes());
        }
        for dom in &self.domains {
            out.extend_from_slice(&kind_code(dom.kind).to_ne_bytes());
            out.extend_from_slice(&u64::from(dom.index).to_ne_bytes());
            let mut name = [0u8; NAME_LEN];
            let bytes = dom.name.as_bytes();
            let n = bytes.len().min(NAME_LEN - 1);
            name[..n].copy_from_slice(&bytes[..n]);
            out.extend_from_slice(&name);
        }
        for p in &self.cpu_package {
            out.extend_from_slice(&p.map_or(u64::MAX, u64::from).to_ne_bytes());
        }
        for (t, row) in self.times.iter().zip(&self.joules) {
            out.extend_from_slice(&t.to_ne_bytes());
            for j in 0..d {
                let v = row.get(j).copied().unwrap_or(f64::NAN);
                out.extend_from_slice(&v.to_ne_bytes());
            }
        }
        out
    }

    /// Decodes a section written by [`EnergyTrace::encode`] on a machine of the same
    /// endianness (`big_endian` files of the other kind are refused). Every count is checked
    /// against the bytes that remain before anything is allocated.
    pub fn decode(b: &[u8]) -> Result<EnergyTrace, String> {
        let mut r = Cursor { b, at: 0 };
        if r.take(8)? != MAGIC {
            return Err("the energy section has an unknown format".into());
        }
        let (d, c, n) = (r.u64()?, r.u64()?, r.u64()?);
        if d > MAX_DOMAINS || c > MAX_CPUS {
            return Err(format!(
                "the energy section claims {d} domains and {c} CPUs"
            ));
        }
        let need = d
            .checked_mul(16 + NAME_LEN as u64)
            .and_then(|x| x.checked_add(c.checked_mul(8)?))
            .and_then(|x| x.checked_add(n.checked_mul(8 + 8 * d)?));
        if need.is_none_or(|need| need > r.left() as u64) {
            return Err("the energy section is shorter than its counts say".into());
        }
        let mut trace = EnergyTrace::default();
        for _ in 0..d {
            let kind =
                kind_of(r.u64()?).ok_or("the energy section names an unknown domain kind")?;
            let index = u32::try_from(r.u64()?).map_err(|_| "domain index out of range")?;
            let raw = r.take(NAME_LEN)?;
            let end = raw.iter().position(|&x| x == 0).unwrap_or(NAME_LEN);
            let name = String::from_utf8_lossy(&raw[..end]).into_owned();
            trace.domains.push(TraceDomain { kind, index, name });
        }
        for _ in 0..c {
            let p = r.u64()?;
            trace.cpu_package.push(u32::try_from(p).ok());
        }
        for _ in 0..n {
            let t = r.u64()?;
            if trace.times.last().is_some_and(|&last| t < last) {
                return Err("the energy readings are out of time order".into());
            }
            trace.times.push(t);
            let row = (0..d)
                .map(|_| r.u64().map(f64::from_bits))
                .collect::<Result<_, _>>()?;
            trace.joules.push(row);
        }
        Ok(trace)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.b.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.left() < n {
            return Err("the energy section is cut short".into());
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let s = self.take(8)?;
        Ok(u64::from_ne_bytes(s.try_into().expect("8 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EnergyTrace {
        EnergyTrace {
            domains: vec![
                TraceDomain {
                    kind: DomainKind::Package,
                    index: 0,
                    name: "rapl/pkg:0".into(),
                },
                TraceDomain {
                    kind: DomainKind::Gpu,
                    index: 1,
                    name: "nvml/1".into(),
                },
            ],
            cpu_package: vec![Some(0), Some(0), None],
            times: vec![100, 200, 300],
            joules: vec![vec![0.0, 0.0], vec![1.5, f64::NAN], vec![0.25, 2.0]],
        }
    }

    #[test]
    fn round_trips() {
        let t = sample();
        let back = EnergyTrace::decode(&t.encode()).unwrap();
        assert_eq!(back.domains, t.domains);
        assert_eq!(back.cpu_package, t.cpu_package);
        assert_eq!(back.times, t.times);
        assert_eq!(back.joules[1][0], 1.5);
        assert!(back.joules[1][1].is_nan());
        assert_eq!(back.joules[2], vec![0.25, 2.0]);
    }

    #[test]
    fn every_cut_and_lying_count_is_an_error() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(EnergyTrace::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = bytes.clone();
        huge[24..32].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert!(EnergyTrace::decode(&huge).is_err());
        let mut backwards = bytes;
        let first_time = 8 + 24 + 2 * 48 + 3 * 8;
        backwards[first_time..first_time + 8].copy_from_slice(&1000u64.to_ne_bytes());
        assert!(EnergyTrace::decode(&backwards).is_err());
    }
}
