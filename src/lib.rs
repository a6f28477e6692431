//! ruperf: a perf-compatible Linux profiler with CPU and GPU energy measurement.
//!
//! The binary is a thin layer over this library: `cmd` parses the command line into plain
//! configs, `counters` wraps perf_event_open, `workload` launches the profiled command, and
//! `output` renders typed results as tables, CSV or JSON.

pub mod cmd;
pub mod counters;
pub mod error;
pub mod output;
pub mod perfdata;
pub mod report;
pub mod stat;
pub mod sysroot;
pub mod workload;

pub use error::{Error, Result};
