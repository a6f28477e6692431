//! `ruperf completions`: shell completion scripts generated from the clap definition.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Globals};
use crate::error::Result;

/// What `ruperf completions` does, in one line: its help's first line and its entry in `ruperf --help`.
pub(crate) const ABOUT: &str =
    "Print a shell completion script (bash, zsh, fish, elvish, powershell)";

/// Arguments of `ruperf completions`.
#[derive(Debug, Args)]
#[command(
    about = ABOUT,
    after_help = "Install, for example:\n  ruperf completions bash > /etc/bash_completion.d/ruperf\n  ruperf completions zsh > \"${fpath[1]}/_ruperf\"\n  ruperf completions fish > ~/.config/fish/completions/ruperf.fish"
)]
pub struct CompletionsArgs {
    /// The shell to write completions for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the completion script to stdout.
pub fn run(args: CompletionsArgs, _g: &Globals) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ruperf", &mut out);
    crate::output::Sink::stdout().write_with(|w| w.write_all(&out))?;
    Ok(0)
}
