//! The integration test binary: drives the real `ruperf` executable.
//!
//! Tests that need a tool or privilege this machine may lack call [`require!`]: locally they
//! print `SKIP: <reason>` and return; with `RUPERF_STRICT_TESTS=1` (set by .ci/run) the same
//! condition fails the test, so nothing silently stops being tested in CI.

#[macro_use]
mod common;

mod cli;
mod docs;
mod dwarf;
mod energy;
mod energy_profile;
mod fuzz_seeds;
mod gate;
mod groups;
mod list;
mod pipe;
mod pprof;
mod record;
mod report;
mod roundtrip;
mod script;
mod security;
mod selftest;
mod serve;
mod stat;
mod stat_depth;
mod stat_energy;
mod symbols;
mod tracepoints;
