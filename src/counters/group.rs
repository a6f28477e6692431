//! Counter groups (in progress).
