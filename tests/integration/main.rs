//! The integration test binary: drives the real `ruperf` executable.
//!
//! Tests that need a tool or privilege this machine may lack call [`require!`]: locally they
//! print `SKIP: <reason>` and return; with `RUPERF_STRICT_TESTS=1` (set by .ci/run) the same
//! condition fails the test, so nothing silently stops being tested in CI.

#[macro_use]
mod common;

mod cli;
mod docs;
mod energy;
mod list;
mod pipe;
mod record;
mod report;
mod roundtrip;
mod script;
mod selftest;
mod stat;
mod stat_energy;
mod tracepoints;
