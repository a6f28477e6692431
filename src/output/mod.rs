//! Output layer (in progress).
