//! The operating-system edge: perf_event_open and its ioctls, the ring buffer, and the child
//! launcher. These are the only modules allowed `unsafe`; every block has a `// SAFETY:` line.

pub mod launcher;
pub mod privilege;
pub mod ring;
pub mod sys;
