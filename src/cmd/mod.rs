//! Command-line interface: the clap definition and one module per subcommand.
//!
//! clap types stay in this folder: each subcommand turns its `Args` into a plain config
//! before calling into the library.

pub mod completions;
pub mod list;
pub mod record;
pub mod record_opts;
pub mod report;
pub mod script;
pub mod stat;
pub mod test;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::Result;
use crate::sysroot::Sysroot;

/// ruperf: count, sample and report like perf, with CPU and GPU energy in the same table.
#[derive(Debug, Parser)]
#[command(
    name = "ruperf",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options that apply to every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Global options, accepted before or after the subcommand name.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Read /sys, /proc and /dev under DIR instead of / (for fake trees and captured machines)
    #[arg(long, global = true, value_name = "DIR", display_order = 900)]
    pub sysroot: Option<PathBuf>,
    /// Load this libnvidia-ml instead of the system's libnvidia-ml.so.1
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "RUPERF_NVML_LIB",
        display_order = 901
    )]
    pub nvml_lib: Option<PathBuf>,
}

/// Settings every subcommand receives, free of clap types.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// Root for kernel interfaces.
    pub sysroot: Sysroot,
    /// NVML library to load, if not the default.
    pub nvml_lib: Option<PathBuf>,
}

impl From<&GlobalArgs> for Globals {
    fn from(a: &GlobalArgs) -> Self {
        Globals {
            sysroot: a.sysroot.clone().map(Sysroot::new).unwrap_or_default(),
            nvml_lib: a.nvml_lib.clone(),
        }
    }
}

/// Parses `-p`/`-t` lists such as `12,34`: positive ids separated by commas.
pub(crate) fn parse_ids(flag: &str, text: &str) -> Result<Vec<i32>> {
    text.split(',')
        .map(str::trim)
        .map(|part| match part.parse::<i32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(crate::error::Error::Usage(format!(
                "{flag} '{text}': '{part}' is not a process/thread id (give positive numbers separated by commas)"
            ))),
        })
        .collect()
}

/// The command after a subcommand's options starts at its first non-option word, so a word
/// starting with `-` there is an option the subcommand does not have.
pub(crate) fn reject_unknown_option(sub: &str, command: &[std::ffi::OsString]) -> Result<()> {
    if let Some(first) = command.first() {
        let s = first.to_string_lossy();
        if s.starts_with('-') && s.len() > 1 {
            return Err(crate::error::Error::Usage(format!(
                "unknown option '{s}' for {sub} (see `ruperf {sub} --help`; put `--` before a command that starts with '-')"
            )));
        }
    }
    Ok(())
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// `ruperf stat`.
    #[command(about = stat::ABOUT)]
    Stat {
        /// Its arguments.
        #[command(flatten)]
        args: stat::StatArgs,
    },
    /// `ruperf record`.
    #[command(about = record::ABOUT)]
    Record {
        /// Its arguments.
        #[command(flatten)]
        args: record::RecordArgs,
    },
    /// `ruperf report`.
    #[command(about = report::ABOUT)]
    Report {
        /// Its arguments.
        #[command(flatten)]
        args: report::ReportArgs,
    },
    /// `ruperf script`.
    #[command(about = script::ABOUT)]
    Script {
        /// Its arguments.
        #[command(flatten)]
        args: script::ScriptArgs,
    },
    /// `ruperf list`.
    #[command(about = list::ABOUT)]
    List {
        /// Its arguments.
        #[command(flatten)]
        args: list::ListArgs,
    },
    /// `ruperf test`.
    #[command(about = test::ABOUT)]
    Test {
        /// Its arguments.
        #[command(flatten)]
        args: test::TestArgs,
    },
    /// `ruperf completions`.
    #[command(about = completions::ABOUT)]
    Completions {
        /// Its arguments.
        #[command(flatten)]
        args: completions::CompletionsArgs,
    },
}

/// Runs the parsed command line; returns the process exit status.
pub fn run(cli: Cli) -> Result<i32> {
    let globals = Globals::from(&cli.global);
    match cli.command {
        Command::Stat { args } => stat::run(args, &globals),
        Command::Record { args } => record::run(args, &globals),
        Command::Report { args } => report::run(args, &globals),
        Command::Script { args } => script::run(args, &globals),
        Command::List { args } => list::run(args, &globals),
        Command::Test { args } => test::run(args, &globals),
        Command::Completions { args } => completions::run(args, &globals),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_before_or_after_subcommand() {
        let a = Cli::try_parse_from(["ruperf", "--sysroot", "/x", "stat", "true"]).unwrap();
        let b = Cli::try_parse_from(["ruperf", "stat", "--sysroot", "/x", "true"]).unwrap();
        assert_eq!(a.global.sysroot, b.global.sysroot);
        assert_eq!(a.global.sysroot, Some(PathBuf::from("/x")));
    }
}
