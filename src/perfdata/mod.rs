//! perf.data files: the format perf's own tools read.
//!
//! `writer` lays out the header, attributes, data and feature sections; `features` encodes
//! the HEADER_* metadata; `synth` builds the records ruperf writes itself (process state
//! from /proc, the kernel map, round markers); `buildid` reads ELF build-id notes; `energy`
//! is ruperf's own feature section of energy readings; `reader` turns a recording into typed
//! records, whoever wrote it (perf or ruperf).

pub mod buildid;
pub mod buildid_cache;
pub mod energy;
pub mod features;
pub mod pipe;
pub mod reader;
pub mod synth;
pub mod tracefmt;
pub mod tracing;
pub mod user_stack;
pub mod writer;
