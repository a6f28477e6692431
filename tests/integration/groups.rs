//! Counter groups on processes whose threads come and go.

use crate::common::{ruperf, Background};

/// Every member of a `{…}` group is opened on the same thread as its leader, even when the
/// thread list changes while the group is being opened (a member paired with another
/// thread's leader is refused by the kernel).
#[test]
fn group_members_follow_their_leaders_threads() {
    let churn = Background::start("thread_churn", &[], 100);
    for _ in 0..20 {
        let out = ruperf()
            .args(["stat", "-x,", "-I", "50", "--interval-count", "2"])
            .args([
                "-e",
                "{task-clock,context-switches,page-faults}",
                "-p",
                &churn.pid(),
            ])
            .output()
            .expect("run ruperf");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        let rows: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(",context-switches,") || l.contains(",page-faults,"))
            .collect();
        assert_eq!(rows.len(), 4, "{err}");
        for row in rows {
            let value = row.split(',').nth(1).unwrap_or_default();
            assert!(value.parse::<u64>().is_ok(), "a counted value: {row}");
        }
    }
}
