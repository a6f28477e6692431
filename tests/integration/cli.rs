//! Command-line surface: help, version, usage errors.

use crate::common::ruperf;

#[test]
fn help_and_version_exit_zero() {
    ruperf().arg("--help").assert().success();
    ruperf().arg("--version").assert().success();
}

#[test]
fn unknown_flag_is_one_line_usage_error() {
    let out = ruperf().args(["stat", "--no-such-flag"]).assert().code(64);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ruperf: error:"), "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn an_unknown_option_is_not_taken_for_the_command() {
    // (`record -q` is perf's --quiet, so record is tried with an option neither has.)
    for (sub, opt) in [("stat", "-q"), ("record", "-Y")] {
        let out = ruperf().args([sub, opt, "true"]).assert().code(64);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            err.contains(&format!("'{opt}'")) && err.lines().count() == 1,
            "{err}"
        );
    }
}
