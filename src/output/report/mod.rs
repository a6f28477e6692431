//! Rendering of `ruperf report`: perf's stdio layout, folded stacks, script text, JSON, SVG.

pub mod formats;
pub mod pprof;
pub mod stdio;
