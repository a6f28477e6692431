//! The operating-system edge: perf_event_open, its ioctls and the few other C library calls
//! ruperf needs (`sys`), the ring buffer (`ring`) and the child launcher (`launcher`). These
//! three are the only modules allowed `unsafe`; every block has a `// SAFETY:` line.
//! `privilege` (is this process elevated, which paths it may trust) is safe code over `sys`.

#[allow(unsafe_code)]
pub mod launcher;
pub mod privilege;
#[allow(unsafe_code)]
pub mod ring;
#[allow(unsafe_code)]
pub mod sys;
