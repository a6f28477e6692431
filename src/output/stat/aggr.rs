//! How perf labels aggregated rows (`--per-*`, `-A`) in the table, CSV and JSON, and the
//! order it prints per-thread rows in.

use crate::app::stat::aggr::{Aggr, AggrId};
use crate::app::stat::{CounterRow, Status};

/// The table's leading columns for a unit: its id, padded as perf pads it, then for CPU
/// units the number of CPUs summed.
pub fn std_prefix(a: &Aggr) -> String {
    let nr = a.nr;
    match &a.id {
        AggrId::Socket { socket } => format!("S{socket:<5} {nr:>4} "),
        AggrId::Die { socket, die } => format!("S{socket}-D{die:<8} {nr:>4} "),
        AggrId::Core { socket, die, core } => format!("S{socket}-D{die}-C{core:<8} {nr:>4} "),
        AggrId::Node { node } => format!("N{node:<5} {nr:>4} "),
        AggrId::Cache {
            socket,
            die,
            level,
            id,
        } => format!("S{socket}-D{die}-L{level}-ID{id:<8} {nr:>4} "),
        AggrId::Thread { tid, comm } => format!("{comm:>16}-{tid:<8} "),
    }
}

/// The unit's id without padding (CSV and JSON).
pub fn label(a: &Aggr) -> String {
    match &a.id {
        AggrId::Socket { socket } => format!("S{socket}"),
        AggrId::Die { socket, die } => format!("S{socket}-D{die}"),
        AggrId::Core { socket, die, core } => format!("S{socket}-D{die}-C{core}"),
        AggrId::Node { node } => format!("N{node}"),
        AggrId::Cache {
            socket,
            die,
            level,
            id,
        } => format!("S{socket}-D{die}-L{level}-ID{id}"),
        AggrId::Thread { tid, comm } => format!("{comm}-{tid}"),
    }
}

/// The CPU count perf prints after the id (None for threads).
pub fn nr(a: &Aggr) -> Option<u32> {
    (!matches!(a.id, AggrId::Thread { .. })).then_some(a.nr)
}

/// The JSON key perf uses for the unit.
pub fn json_key(a: &Aggr) -> &'static str {
    match a.id {
        AggrId::Socket { .. } => "socket",
        AggrId::Die { .. } => "die",
        AggrId::Core { .. } => "core",
        AggrId::Node { .. } => "node",
        AggrId::Cache { .. } => "cache",
        AggrId::Thread { .. } => "thread",
    }
}

/// The `-I` header line for aggregated rows.
pub fn interval_header(a: &Aggr) -> &'static str {
    match a.id {
        AggrId::Socket { .. } => "#           time socket cpus             counts unit events",
        AggrId::Die { .. } => "#           time die          cpus             counts unit events",
        AggrId::Core { .. } => {
            "#           time core            cpus             counts unit events"
        }
        AggrId::Node { .. } => "#           time node   cpus             counts unit events",
        AggrId::Cache { .. } => {
            "#           time cache                cpus             counts unit events"
        }
        AggrId::Thread { .. } => {
            "#           time             comm-pid                  counts unit events"
        }
    }
}

/// Rows in the order perf prints them: per-thread rows of one event by count, largest first
/// (threads that never ran last); everything else as given.
pub fn ordered(rows: &[CounterRow]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    let is_thread = |r: &CounterRow| {
        matches!(
            r.aggr,
            Some(Aggr {
                id: AggrId::Thread { .. },
                ..
            })
        )
    };
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        if is_thread(&rows[i]) {
            while j < rows.len() && is_thread(&rows[j]) && rows[j].name == rows[i].name {
                j += 1;
            }
            let key = |k: &usize| {
                let r = &rows[*k];
                if r.status == Status::Counted {
                    r.count
                } else {
                    -1.0
                }
            };
            idx[i..j].sort_by(|a, b| key(b).total_cmp(&key(a)));
        }
        i = j;
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::event::EventClass;

    fn at(id: AggrId, nr: u32) -> Aggr {
        Aggr { id, nr }
    }

    #[test]
    fn prefixes_match_perf_columns() {
        // From perf 6.1 on this machine: "S0-D0-C0           1             104.00 msec".
        let core = at(
            AggrId::Core {
                socket: 0,
                die: 0,
                core: 0,
            },
            1,
        );
        assert_eq!(std_prefix(&core), "S0-D0-C0           1 ");
        assert_eq!(
            std_prefix(&at(AggrId::Socket { socket: 0 }, 2)),
            "S0        2 "
        );
        assert_eq!(
            std_prefix(&at(AggrId::Die { socket: 0, die: 0 }, 2)),
            "S0-D0           2 "
        );
        assert_eq!(std_prefix(&at(AggrId::Node { node: 0 }, 2)), "N0        2 ");
        let t = at(
            AggrId::Thread {
                tid: 4998,
                comm: "bash".into(),
            },
            0,
        );
        assert_eq!(std_prefix(&t), "            bash-4998     ");
        assert_eq!(label(&t), "bash-4998");
        assert_eq!(nr(&t), None);
        assert_eq!(label(&core), "S0-D0-C0");
        let c = at(
            AggrId::Cache {
                socket: 1,
                die: 0,
                level: 3,
                id: 4,
            },
            8,
        );
        assert_eq!(label(&c), "S1-D0-L3-ID4");
    }

    #[test]
    fn threads_sort_by_count_within_each_event() {
        let t = |tid: i32, name: &str, count: f64, status: Status| CounterRow {
            aggr: Some(at(
                AggrId::Thread {
                    tid,
                    comm: "x".into(),
                },
                0,
            )),
            status,
            ..CounterRow::counted(name, EventClass::Software, count, false)
        };
        let rows = vec![
            t(1, "a", 0.0, Status::NotCounted),
            t(2, "a", 5.0, Status::Counted),
            t(3, "a", 9.0, Status::Counted),
            t(1, "b", 7.0, Status::Counted),
            t(2, "b", 1.0, Status::Counted),
        ];
        assert_eq!(ordered(&rows), vec![2, 1, 0, 3, 4]);
    }
}
