//! stat measurement (in progress).
