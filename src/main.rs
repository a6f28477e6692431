//! The `ruperf` binary: parse arguments, run, map errors to exit codes.
//!
//! ruperf starts through the C `main` rather than Rust's runtime entry: the runtime's start-up
//! reads /proc/self/maps to place a stack guard, a measurable share of a short `stat` run in a
//! VM. The one thing it does that ruperf needs, ignoring SIGPIPE, is done here; arguments still
//! reach `std::env::args` on glibc.
#![no_main]

use std::io::Write;
use std::mem::ManuallyDrop;

use clap::{CommandFactory, FromArgMatches};

use ruperf::cmd::{self, Cli};
use ruperf::error::exit;

#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    ruperf::os::stdio::reopen_closed_std_fds();
    ruperf::os::launcher::ignore_sigpipe();
    if let Some(v) = ruperf::os::privilege::drop_untrusted_environment() {
        let _ = writeln!(
            std::io::stderr(),
            "ruperf: warning: ignoring {}={} (ruperf runs with elevated privileges; \
             NVML loads from the system library path only)",
            ruperf::os::privilege::NVML_ENV,
            std::path::Path::new(&v).display()
        );
    }
    run()
}

/// `pow` from the pure-Rust `libm` crate, linked into the binary. Its one caller is indicatif's
/// rate estimate (`f64::powf`); without this definition that single symbol makes every run load
/// libm.so.6, which costs several mappings and relocations at each start (about 70 µs in a VM),
/// a measurable share of a short `ruperf stat`. Nothing else in the binary uses libm. Because
/// it stands in for libm's `pow`, it is also the `pow` a library loaded later (NVML) is bound
/// to: the same function, within an ulp of glibc's result.
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
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
        Err(e) => std::process::exit(report_clap_error(e)),
    };
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ruperf: error: {e}");
            e.exit_code()
        }
    };
    // Flush stdout before leaving through libc's exit.
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
