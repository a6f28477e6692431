//! Event grammar (in progress).
