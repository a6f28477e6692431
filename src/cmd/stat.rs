//! `ruperf stat`: count events while a command runs.

use std::ffi::OsString;

use clap::Args;

use super::Globals;
use crate::error::{Error, Result};

/// Arguments of `ruperf stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    /// Command to run and count
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

/// Runs `ruperf stat`.
pub fn run(_args: StatArgs, _g: &Globals) -> Result<i32> {
    Err(Error::Unavailable("stat is being built".into()))
}
