//! perf.data files: the reader (`reader`) turns a recording into typed records, whoever
//! wrote it (Debian's `perf record` or `ruperf record`).

pub mod reader;
