//! `ruperf test`: self-tests that say what works here and how to fix what does not.

use std::io::Write;

use clap::Args;

use super::Globals;
use crate::app::test::{self, Ctx, Outcome, TestReport};
use crate::error::{Error, Result};
use crate::output::Sink;

/// What `ruperf test` does, in one line: its help's first line and its entry in `ruperf --help`.
pub(crate) const ABOUT: &str =
    "Self-tests: what ruperf can measure on this machine, and how to fix what it cannot";

/// Arguments of `ruperf test`.
#[derive(Debug, Args)]
#[command(
    about = ABOUT,
    after_help = "Examples:\n  ruperf test              run every test\n  ruperf test 4 sampling   tests 4 and every test whose name contains 'sampling'\n  ruperf test --skip 6 -v"
)]
pub struct TestArgs {
    /// Tests to run, by number or by a substring of the name (all when none)
    #[arg(value_name = "TEST")]
    pub tests: Vec<String>,
    /// List the tests without running them
    #[arg(short = 'l', long)]
    pub list: bool,
    /// Skip these tests (numbers, comma-separated)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub skip: Vec<usize>,
    /// Show what each passing test saw
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// One JSON object per test and line, then a summary object
    #[arg(long)]
    pub json: bool,
}

fn select(args: &TestArgs, names: &[&str]) -> Result<Vec<usize>> {
    let mut chosen: Vec<usize> = Vec::new();
    if args.tests.is_empty() {
        chosen = (1..=names.len()).collect();
    }
    for t in &args.tests {
        let hits: Vec<usize> = match t.parse::<usize>() {
            Ok(n) if (1..=names.len()).contains(&n) => vec![n],
            Ok(n) => {
                return Err(Error::Usage(format!(
                    "there is no test {n}: tests are numbered 1 to {} (see `ruperf test --list`)",
                    names.len()
                )))
            }
            Err(_) => names
                .iter()
                .enumerate()
                .filter(|(_, name)| name.to_lowercase().contains(&t.to_lowercase()))
                .map(|(i, _)| i + 1)
                .collect(),
        };
        if hits.is_empty() {
            return Err(Error::Usage(format!(
                "no test name contains '{t}' (see `ruperf test --list`)"
            )));
        }
        chosen.extend(hits);
    }
    for &s in &args.skip {
        if !(1..=names.len()).contains(&s) {
            return Err(Error::Usage(format!(
                "--skip {s}: tests are numbered 1 to {}",
                names.len()
            )));
        }
    }
    chosen.sort_unstable();
    chosen.dedup();
    chosen.retain(|n| !args.skip.contains(n));
    Ok(chosen)
}

/// Runs `ruperf test`.
pub fn run(args: TestArgs, g: &Globals) -> Result<i32> {
    let tests = test::all();
    let names: Vec<&str> = tests.iter().map(|t| t.name).collect();
    let chosen = select(&args, &names)?;
    let mut out = Sink::stdout();
    if args.list {
        out.write_with(|w| {
            for n in &chosen {
                writeln!(w, "{n:2}: {}", names[n - 1])?;
            }
            Ok(())
        })?;
        return Ok(0);
    }
    let scratch = test::scratch::Scratch::create_in(&std::env::temp_dir())?;
    let ctx = Ctx {
        root: g.sysroot.clone(),
        nvml_lib: g.nvml_lib.clone(),
        scratch: scratch.path().to_path_buf(),
    };
    let json = args.json;
    let verbose = args.verbose;
    let mut write_err = None;
    let reports = test::run(&tests, &chosen, &ctx, &mut |r| {
        if let Err(e) = out.write_with(|w| print_one(w, r, json, verbose)) {
            write_err.get_or_insert(e);
        }
    });
    drop(scratch);
    if let Some(e) = write_err {
        return Err(e);
    }
    let failed = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .count();
    out.write_with(|w| print_summary(w, &reports, json))?;
    Ok(if failed > 0 {
        crate::error::exit::FAILED
    } else {
        0
    })
}

fn print_one(w: &mut dyn Write, r: &TestReport, json: bool, verbose: bool) -> std::io::Result<()> {
    if json {
        return writeln!(w, "{}", serde_json::to_string(r).unwrap_or_default());
    }
    let (word, detail) = match &r.outcome {
        Outcome::Ok(d) => ("Ok", verbose.then_some(d)),
        Outcome::Skip(d) => ("Skip", Some(d)),
        Outcome::Fail(d) => ("FAILED!", Some(d)),
    };
    writeln!(w, "{:2}: {:<54}: {word}", r.number, r.name)?;
    if let Some(d) = detail {
        writeln!(w, "      {d}")?;
    }
    Ok(())
}

fn print_summary(w: &mut dyn Write, reports: &[TestReport], json: bool) -> std::io::Result<()> {
    let can: Vec<&str> = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Ok(_)))
        .map(|r| r.capability.as_str())
        .collect();
    let cannot: Vec<(&str, &str)> = reports
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Skip(d) | Outcome::Fail(d) => Some((r.capability.as_str(), d.as_str())),
            Outcome::Ok(_) => None,
        })
        .collect();
    let failed = reports
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .count();
    if json {
        let v = serde_json::json!({
            "summary": {
                "passed": can.len(),
                "failed": failed,
                "skipped": cannot.len() - failed,
                "can-measure": can,
                "cannot-measure": cannot.iter().map(|(c, d)| serde_json::json!({"what": c, "why": d})).collect::<Vec<_>>(),
            }
        });
        return writeln!(w, "{v}");
    }
    writeln!(w)?;
    if can.is_empty() {
        writeln!(w, "ruperf can measure nothing here yet.")?;
    } else {
        writeln!(w, "ruperf can measure here: {}.", can.join(", "))?;
    }
    if !cannot.is_empty() {
        writeln!(w, "Not here, and how to get it:")?;
        for (c, d) in &cannot {
            writeln!(w, "  - {c}: {d}")?;
        }
    }
    Ok(())
}
