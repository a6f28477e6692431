//! Rendering of `ruperf stat` results: perf's table, `-x` CSV and `-j` JSON.

pub mod baseline;
pub mod csv;
pub mod json;
pub mod table;
