//! Derived metrics shown after `#` in stat output, computed as perf computes them.

use perf_event_open_sys::bindings as b;

use crate::app::stat::aggr::Aggr;
use crate::app::stat::{CounterRow, Status};
use crate::counters::event::EventClass;

/// A derived figure: a number and what it means.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The value.
    pub value: f64,
    /// Its unit or description, e.g. `CPUs utilized`, `K/sec`, `of all branches`.
    pub unit: String,
    /// How to print it in the table.
    pub style: Style,
}

/// Number style of a metric in the human table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `%8.3f unit`
    Plain,
    /// `%7.2f%% unit`
    Percent,
    /// `%7.2f  unit`
    Ratio,
}

/// What metrics are computed from: the totals of a set of rows, kept separately for each CPU
/// (`-A`) or unit (`--per-*`) when the rows are split, so that a CPU's or unit's metrics use
/// its own counts only.
#[derive(Debug, Default, Clone)]
pub struct Context {
    sets: Vec<(Key, Totals)>,
}

/// Which split a row belongs to.
type Key = (Option<u32>, Option<Aggr>);

fn key_of(r: &CounterRow) -> Key {
    (r.cpu, r.aggr.clone())
}

impl Context {
    /// Collects the totals from `rows`; `elapsed` is the window in seconds.
    pub fn new(rows: &[CounterRow], elapsed: f64) -> Self {
        let mut keys: Vec<Key> = rows.iter().map(key_of).collect();
        keys.sort_unstable();
        keys.dedup();
        let sets = keys
            .into_iter()
            .map(|k| {
                let t = Totals::new(rows.iter().filter(|r| key_of(r) == k), elapsed);
                (k, t)
            })
            .collect();
        Context { sets }
    }

    /// The metric perf shows for `row`, if any.
    pub fn metric(&self, row: &CounterRow) -> Option<Metric> {
        let k = key_of(row);
        let (_, totals) = self.sets.iter().find(|(key, _)| *key == k)?;
        totals.metric(row)
    }
}

/// Totals a row's metric depends on, gathered from one set of rows.
#[derive(Debug, Default, Clone)]
struct Totals {
    task_clock_ns: Option<f64>,
    elapsed_ns: f64,
    cycles: Option<f64>,
    instructions: Option<f64>,
    branches: Option<f64>,
    cache_refs: Option<f64>,
    cache_accesses: [Option<f64>; 7],
}

fn hw(row: &CounterRow, id: u32) -> bool {
    row.class == EventClass::Hardware && hw_config(row) == Some(id as u64)
}

fn hw_config(row: &CounterRow) -> Option<u64> {
    crate::counters::event::HARDWARE
        .iter()
        .find(|(n, _)| row.name.split(':').next() == Some(n))
        .map(|(_, c)| *c as u64)
}

fn cache_parts(row: &CounterRow) -> Option<(usize, bool)> {
    if row.class != EventClass::HwCache {
        return None;
    }
    let base = row.name.split(':').next()?;
    let miss = base.ends_with("-misses") || base.ends_with("-miss");
    let id = crate::counters::event::CACHES
        .iter()
        .position(|(names, _)| {
            names
                .iter()
                .any(|n| base.len() > n.len() && base[..n.len()].eq_ignore_ascii_case(n))
        })?;
    Some((id, miss))
}

impl Totals {
    fn new<'a>(rows: impl Iterator<Item = &'a CounterRow>, elapsed: f64) -> Self {
        let mut c = Totals {
            elapsed_ns: elapsed * 1e9,
            ..Default::default()
        };
        for r in rows.filter(|r| r.status == Status::Counted) {
            if r.is_clock && c.task_clock_ns.is_none() {
                c.task_clock_ns = Some(r.count);
            }
            let set = |slot: &mut Option<f64>| {
                slot.get_or_insert(r.count);
            };
            if hw(r, b::PERF_COUNT_HW_CPU_CYCLES) {
                set(&mut c.cycles);
            } else if hw(r, b::PERF_COUNT_HW_INSTRUCTIONS) {
                set(&mut c.instructions);
            } else if hw(r, b::PERF_COUNT_HW_BRANCH_INSTRUCTIONS) {
                set(&mut c.branches);
            } else if hw(r, b::PERF_COUNT_HW_CACHE_REFERENCES) {
                set(&mut c.cache_refs);
            } else if let Some((id, false)) = cache_parts(r) {
                set(&mut c.cache_accesses[id]);
            }
        }
        c
    }

    fn metric(&self, row: &CounterRow) -> Option<Metric> {
        if row.status != Status::Counted {
            return None;
        }
        let m = |value: f64, unit: &str, style| {
            Some(Metric {
                value,
                unit: unit.to_string(),
                style,
            })
        };
        if row.is_clock {
            return (self.elapsed_ns > 0.0).then(|| Metric {
                value: row.count / self.elapsed_ns,
                unit: "CPUs utilized".into(),
                style: Style::Plain,
            });
        }
        let ratio = |num: f64, den: Option<f64>| den.filter(|d| *d > 0.0).map(|d| num / d);
        match row.class {
            EventClass::Hardware => {
                let id = hw_config(row)? as u32;
                match id {
                    b::PERF_COUNT_HW_CPU_CYCLES => {
                        ratio(row.count, self.task_clock_ns).and_then(|v| m(v, "GHz", Style::Plain))
                    }
                    b::PERF_COUNT_HW_INSTRUCTIONS => ratio(row.count, self.cycles)
                        .and_then(|v| m(v, "insn per cycle", Style::Ratio)),
                    b::PERF_COUNT_HW_BRANCH_MISSES => ratio(100.0 * row.count, self.branches)
                        .and_then(|v| m(v, "of all branches", Style::Percent)),
                    b::PERF_COUNT_HW_CACHE_MISSES => ratio(100.0 * row.count, self.cache_refs)
                        .and_then(|v| m(v, "of all cache refs", Style::Percent)),
                    b::PERF_COUNT_HW_STALLED_CYCLES_FRONTEND => {
                        ratio(100.0 * row.count, self.cycles)
                            .and_then(|v| m(v, "frontend cycles idle", Style::Percent))
                    }
                    b::PERF_COUNT_HW_STALLED_CYCLES_BACKEND => {
                        ratio(100.0 * row.count, self.cycles)
                            .and_then(|v| m(v, "backend cycles idle", Style::Percent))
                    }
                    _ => self.rate(row.count),
                }
            }
            EventClass::HwCache => match cache_parts(row) {
                Some((id, true)) => {
                    let what = [
                        "L1-dcache",
                        "L1-icache",
                        "LL-cache",
                        "dTLB cache",
                        "iTLB cache",
                        "branch",
                        "node",
                    ][id];
                    ratio(100.0 * row.count, self.cache_accesses[id])
                        .and_then(|v| m(v, &format!("of all {what} accesses"), Style::Percent))
                }
                _ => self.rate(row.count),
            },
            _ if row.unit.is_some() => None,
            _ => self.rate(row.count),
        }
    }

    /// Events per second of task-clock, with perf's K/M/G prefixes.
    fn rate(&self, count: f64) -> Option<Metric> {
        let secs = self.task_clock_ns? / 1e9;
        if secs <= 0.0 {
            return None;
        }
        let r = count / secs;
        let (value, unit) = if r >= 1e9 {
            (r / 1e9, "G/sec")
        } else if r >= 1e6 {
            (r / 1e6, "M/sec")
        } else if r >= 1e3 {
            (r / 1e3, "K/sec")
        } else {
            (r, "/sec")
        };
        Some(Metric {
            value,
            unit: unit.into(),
            style: Style::Plain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, class: EventClass, count: f64, clock: bool) -> CounterRow {
        CounterRow::counted(name, class, count, clock)
    }

    #[test]
    fn perf_metrics() {
        let rows = vec![
            row("task-clock", EventClass::Software, 2e9, true),
            row("page-faults", EventClass::Software, 4000.0, false),
            row("cycles", EventClass::Hardware, 6e9, false),
            row("instructions", EventClass::Hardware, 12e9, false),
            row("branches", EventClass::Hardware, 1e9, false),
            row("branch-misses", EventClass::Hardware, 1e7, false),
            row("L1-dcache-loads", EventClass::HwCache, 1000.0, false),
            row("L1-dcache-load-misses", EventClass::HwCache, 50.0, false),
        ];
        let c = Context::new(&rows, 1.0);
        let m = |i: usize| c.metric(&rows[i]).unwrap();
        assert_eq!((m(0).value, m(0).unit.as_str()), (2.0, "CPUs utilized"));
        assert_eq!((m(1).value, m(1).unit.as_str()), (2.0, "K/sec"));
        assert_eq!((m(2).value, m(2).unit.as_str()), (3.0, "GHz"));
        assert_eq!((m(3).value, m(3).unit.as_str()), (2.0, "insn per cycle"));
        assert_eq!((m(4).value, m(4).unit.as_str()), (500.0, "M/sec"));
        assert_eq!((m(5).value, m(5).unit.as_str()), (1.0, "of all branches"));
        assert_eq!(
            (m(7).value, m(7).unit.as_str()),
            (5.0, "of all L1-dcache accesses")
        );
    }

    #[test]
    fn per_cpu_rows_use_their_own_cpus_totals() {
        let on = |cpu: u32, r: CounterRow| CounterRow {
            cpu: Some(cpu),
            ..r
        };
        let rows = vec![
            on(0, row("cpu-clock", EventClass::Software, 1e9, true)),
            on(1, row("cpu-clock", EventClass::Software, 5e8, true)),
            on(0, row("cycles", EventClass::Hardware, 3e9, false)),
            on(1, row("cycles", EventClass::Hardware, 1e9, false)),
            on(0, row("instructions", EventClass::Hardware, 3e9, false)),
            on(1, row("instructions", EventClass::Hardware, 4e9, false)),
        ];
        let c = Context::new(&rows, 1.0);
        let v = |i: usize| c.metric(&rows[i]).unwrap().value;
        assert_eq!((v(0), v(1)), (1.0, 0.5));
        assert_eq!((v(2), v(3)), (3.0, 2.0));
        assert_eq!((v(4), v(5)), (1.0, 4.0));
    }

    #[test]
    fn no_rate_without_task_clock() {
        let rows = vec![row("cs", EventClass::Software, 3.0, false)];
        assert!(Context::new(&rows, 1.0).metric(&rows[0]).is_none());
    }
}
