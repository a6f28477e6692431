//! The `ruperf` binary: parse arguments, run, map errors to exit codes.
//!
//! A plain Rust `main`: the standard runtime sanitises fds 0–2, installs the stack-overflow
//! handler, names the main thread and ignores SIGPIPE (a closed output pipe is then an EPIPE
//! error that the output layer treats as "the reader went away"; children get SIGPIPE's default
//! back before exec).

use std::io::Write;
use std::mem::ManuallyDrop;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use ruperf::cmd::{self, Cli};
use ruperf::error::exit;

fn main() -> ExitCode {
    if let Some(v) = ruperf::os::privilege::drop_untrusted_environment() {
        let _ = writeln!(
            std::io::stderr(),
            "ruperf: warning: ignoring {}={} (ruperf runs with elevated privileges; \
             NVML loads from the system library path only)",
            ruperf::os::privilege::NVML_ENV,
            std::path::Path::new(&v).display()
        );
    }
    let code = run();
    ExitCode::from(u8::try_from(code).unwrap_or(exit::SOFTWARE as u8))
}

/// Parses the command line. The parser's command tree and matches are never freed: the process
/// ends soon after, and releasing their few hundred small blocks would only add work to a short
/// run.
fn parse() -> Result<Cli, clap::Error> {
    let mut command = ManuallyDrop::new(Cli::command());
    let mut matches = ManuallyDrop::new(command.try_get_matches_from_mut(std::env::args_os())?);
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
}

fn run() -> i32 {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => return report_clap_error(e),
    };
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ruperf: error: {e}");
            e.exit_code()
        }
    };
    let _ = std::io::stdout().flush();
    code
}

/// Help and version go to stdout with status 0; usage errors become one line on stderr
/// with status 64.
fn report_clap_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                exit::USAGE
            } else {
                exit::OK
            }
        }
        _ => {
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            let _ = writeln!(
                std::io::stderr(),
                "ruperf: error: {first} (see `ruperf --help`)"
            );
            exit::USAGE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clap_error(args: &[&str]) -> clap::Error {
        Cli::command()
            .try_get_matches_from(args)
            .expect_err("these arguments do not parse")
    }

    #[test]
    fn help_and_version_succeed_and_usage_errors_are_64() {
        assert_eq!(
            report_clap_error(clap_error(&["ruperf", "--version"])),
            exit::OK
        );
        assert_eq!(
            report_clap_error(clap_error(&["ruperf", "stat", "--help"])),
            exit::OK
        );
        assert_eq!(
            report_clap_error(clap_error(&["ruperf", "--bogus"])),
            exit::USAGE
        );
        assert_eq!(report_clap_error(clap_error(&["ruperf"])), exit::USAGE);
    }
}
