//! ruperf: a perf-compatible Linux profiler with CPU and GPU energy measurement.
//!
//! The binary is a thin layer over this library: `cmd` parses the command line into plain
//! configs, `counters` wraps perf_event_open, `workload` launches the profiled command, and
//! `output` renders typed results as tables, CSV or JSON.

pub mod cmd;
pub mod counters;
pub mod energy;
pub mod error;
pub mod list;
pub mod output;
pub mod perfdata;
pub mod record;
pub mod report;
pub mod selftest;
pub mod stat;
pub mod sysroot;
pub mod workload;

pub use error::{Error, Result};
