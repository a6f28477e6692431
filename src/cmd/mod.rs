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
pub mod stat_fleet;
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

impl Globals {
    /// Resolves the global options. When ruperf runs with privileges its caller lacks (file
    /// capabilities, setuid), `--nvml-lib` and `--sysroot` must name paths only root can
    /// change; they are then used as resolved, so a symlink swapped later changes nothing.
    pub fn resolve(a: &GlobalArgs) -> Result<Self> {
        if crate::os::privilege::setuid_or_setgid() {
            return Err(crate::error::Error::Permission(
                "ruperf is installed setuid or setgid, which would run the profiled command with \
                 those ids; remove the bit (`sudo chmod ug-s`) and grant CAP_PERFMON to a \
                 group-restricted copy instead (see Permissions in ruperf's README)"
                    .into(),
            ));
        }
        Self::resolve_with(a, crate::os::privilege::elevated())
    }

    fn resolve_with(a: &GlobalArgs, elevated: bool) -> Result<Self> {
        let checked = |flag: &str, p: &Option<PathBuf>| -> Result<Option<PathBuf>> {
            match p {
                Some(p) if elevated => crate::os::privilege::trusted_path(p)
                    .map(Some)
                    .map_err(|u| {
                        crate::error::Error::Permission(format!(
                            "refusing {flag} {}: {} {}, and ruperf runs with elevated privileges \
                             (a privileged ruperf only uses paths that root owns and only root can write)",
                            p.display(),
                            u.path.display(),
                            u.rule.trim_start_matches("it ")
                        ))
                    }),
                _ => Ok(p.clone()),
            }
        };
        Ok(Globals {
            sysroot: checked("--sysroot", &a.sysroot)?
                .map(Sysroot::new)
                .unwrap_or_default(),
            nvml_lib: checked("--nvml-lib", &a.nvml_lib)?,
        })
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
    let globals = Globals::resolve(&cli.global)?;
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
    fn elevated_runs_refuse_paths_users_can_change() {
        let args = |sysroot: &str, nvml: Option<&str>| GlobalArgs {
            sysroot: Some(PathBuf::from(sysroot)),
            nvml_lib: nvml.map(PathBuf::from),
        };
        let err = Globals::resolve_with(&args("/tmp", None), true).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::NOPERM);
        assert!(
            err.to_string()
                .starts_with("refusing --sysroot /tmp: /tmp is writable by group or others"),
            "{err}"
        );
        let err = Globals::resolve_with(&args("/usr", Some("/tmp/x.so")), true).unwrap_err();
        assert!(err.to_string().contains("--nvml-lib /tmp/x.so"), "{err}");
        let ok = Globals::resolve_with(&args("/usr/bin/..", None), true).unwrap();
        assert_eq!(ok.sysroot.root(), std::fs::canonicalize("/usr").unwrap());
        // Unprivileged, the paths are the user's business.
        let free = Globals::resolve_with(&args("/tmp", Some("/tmp/x.so")), false).unwrap();
        assert_eq!(free.nvml_lib, Some(PathBuf::from("/tmp/x.so")));
    }

    #[test]
    fn global_options_before_or_after_subcommand() {
        let a = Cli::try_parse_from(["ruperf", "--sysroot", "/x", "stat", "true"]).unwrap();
        let b = Cli::try_parse_from(["ruperf", "stat", "--sysroot", "/x", "true"]).unwrap();
        assert_eq!(a.global.sysroot, b.global.sysroot);
        assert_eq!(a.global.sysroot, Some(PathBuf::from("/x")));
    }
}
