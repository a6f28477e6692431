//! ruperf: a perf-compatible Linux profiler with CPU and GPU energy measurement.
//!
//! The binary is a thin layer over this library, one path per subcommand X:
//! `cmd::X` parses the command line into a plain config, `app::X` does the work and returns
//! typed results, `output::X` renders them. `counters` resolves events and opens groups,
//! `energy` reads RAPL and NVML, `perfdata` reads and writes perf.data, `symbols` turns
//! addresses into names, and `os` is the unsafe edge (perf syscalls, ring buffer, launcher).

#![deny(unsafe_code)]

pub mod app;
pub mod cmd;
pub mod counters;
pub mod energy;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod os;
pub mod output;
pub mod perfdata;
pub mod symbols;
pub mod sysroot;

pub use error::{Error, Result};
