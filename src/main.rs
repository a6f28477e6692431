use std::io::Write;

use clap::Parser;

use ruperf::cmd::{self, Cli};
use ruperf::error::exit;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(report_clap_error(e)),
    };
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ruperf: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
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
