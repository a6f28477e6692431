//! Rendering of `ruperf stat` results: perf's table, `-x` CSV and `-j` JSON.

pub mod aggr;
pub mod baseline;
pub mod csv;
pub mod json;
pub mod metric_only;
pub mod openmetrics;
pub mod table;
