//! `ruperf report`: read a perf.data file and print perf-style reports.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::Globals;
use crate::app::report::{self, Config, Format, GraphMode, Order, SortKey};
use crate::error::{Error, Result};
use crate::output::report::{formats, pprof, stdio};

/// Output formats of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// perf report --stdio text (the default)
    Stdio,
    /// JSON document (see docs/report-json.md)
    Json,
    /// Collapsed stacks for flame-graph tools: `comm;caller;…;callee COUNT`
    Folded,
    /// perf script text, one block per sample (imported by the Firefox profiler and speedscope)
    Script,
    /// Google's profile.proto, gzipped (go tool pprof, Pyroscope, Parca); needs -o FILE.pb.gz
    Pprof,
}

/// What `ruperf report` does, in one line: its help's first line and its entry in `ruperf --help`.
pub(crate) const ABOUT: &str =
    "Read a perf.data file (from `ruperf record` or `perf record`) and print a profile";

/// Arguments of `ruperf report`.
#[derive(Debug, Clone, Args)]
#[command(about = ABOUT)]
pub struct ReportArgs {
    /// Input file
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        default_value = "perf.data"
    )]
    pub input: PathBuf,
    /// Text output (the only interactive-free mode; accepted for perf compatibility)
    #[arg(long)]
    pub stdio: bool,
    /// Show Children and Self columns (the default when samples have call chains)
    #[arg(long, overrides_with = "no_children")]
    pub children: bool,
    /// Show only the Self overhead (one Overhead column)
    #[arg(long)]
    pub no_children: bool,
    /// Sort and group by these keys: comm, pid, dso, sym
    #[arg(short = 's', long, value_name = "KEYS", default_value = "comm,dso,sym")]
    pub sort: String,
    /// Call graph: [graph|fractal|folded|none][,MIN_PERCENT][,caller|callee] (perf's -g)
    #[arg(
        short = 'g',
        long = "call-graph",
        value_name = "SPEC",
        num_args = 0..=1,
        default_missing_value = "graph",
        require_equals = false
    )]
    pub call_graph: Option<String>,
    /// Use at most this many frames of each call chain (kernel part and unwound user part
    /// each, as perf)
    #[arg(long, value_name = "N", default_value_t = 127)]
    pub max_stack: usize,
    /// Hide entries below this percentage
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub percent_limit: f64,
    /// Show the number of samples of each entry
    #[arg(short = 'n', long = "show-nr-samples")]
    pub show_nr_samples: bool,
    /// Print the recording's header information (host, kernel, command line, events)
    #[arg(long)]
    pub header: bool,
    /// Only these commands (comma-separated)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub comms: Option<Vec<String>>,
    /// Only these shared objects (comma-separated, short names as shown)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub dsos: Option<Vec<String>>,
    /// Only these symbols (comma-separated)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub symbols: Option<Vec<String>>,
    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,
    /// Same as --format json
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Same as --format script (the output of `perf script`)
    #[arg(long, conflicts_with_all = ["format", "json"])]
    pub script: bool,
    /// Write a flame graph of the samples to this SVG file
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,
    /// Weight each sample by the energy measured while it was taken (an estimate; the
    /// recording needs `ruperf record --energy`): percentages become shares of the joules and
    /// a Joules column is shown
    #[arg(long)]
    pub energy: bool,
    /// Write the --format pprof profile to this file (`-` for stdout)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Parses perf's `-g` value: comma-separated output type, threshold and order, in any order.
fn parse_call_graph(spec: &str) -> Result<(GraphMode, Option<f64>, Option<Order>)> {
    let mut mode = GraphMode::Graph;
    let mut min = None;
    let mut order = None;
    for tok in spec.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match tok {
            "graph" => mode = GraphMode::Graph,
            "fractal" => mode = GraphMode::Fractal,
            "folded" => mode = GraphMode::Folded,
            "none" => mode = GraphMode::None,
            "caller" => order = Some(Order::Caller),
            "callee" => order = Some(Order::Callee),
            // perf's key and value fields: only functions and percentages are supported.
            "function" | "percent" => {}
            t => match t.parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => min = Some(v),
                _ => {
                    return Err(Error::Usage(format!(
                        "invalid --call-graph value `{t}` (use graph, fractal, folded or none, a threshold percentage, and caller or callee)"
                    )))
                }
            },
        }
    }
    Ok((mode, min, order))
}

impl ReportArgs {
    fn config(&self, g: &Globals) -> Result<Config> {
        let mut sort = Vec::new();
        for k in self.sort.split(',').filter(|k| !k.trim().is_empty()) {
            let key = SortKey::parse(k).ok_or_else(|| {
                Error::Usage(format!(
                    "unknown --sort key `{}` (use comm, pid, dso and sym)",
                    k.trim()
                ))
            })?;
            if !sort.contains(&key) {
                sort.push(key);
            }
        }
        if sort.is_empty() {
            return Err(Error::Usage(
                "--sort needs at least one key (comm, pid, dso, sym)".into(),
            ));
        }
        let (graph, min, order) = match &self.call_graph {
            Some(spec) => parse_call_graph(spec)?,
            None => (GraphMode::Graph, None, None),
        };
        if !(0.0..=100.0).contains(&self.percent_limit) {
            return Err(Error::Usage(format!(
                "--percent-limit {} is not a percentage between 0 and 100",
                self.percent_limit
            )));
        }
        let format = if self.json {
            Format::Json
        } else if self.script {
            Format::Script
        } else {
            match self.format {
                Some(FormatArg::Json) => Format::Json,
                Some(FormatArg::Folded) => Format::Folded,
                Some(FormatArg::Script) => Format::Script,
                Some(FormatArg::Pprof) => Format::Pprof,
                Some(FormatArg::Stdio) | None => Format::Stdio,
            }
        };
        if self.energy && format == Format::Script {
            return Err(Error::Usage(
                "--energy weights the aggregated report (stdio, json, folded, pprof, --flamegraph); \
                 per-sample script output has no energy column"
                    .into(),
            ));
        }
        if self.output.is_some() && format != Format::Pprof {
            return Err(Error::Usage(
                "-o FILE is for --format pprof (the text formats go to stdout)".into(),
            ));
        }
        Ok(Config {
            input: self.input.clone(),
            sort,
            children: if self.no_children {
                Some(false)
            } else if self.children {
                Some(true)
            } else {
                None
            },
            graph,
            graph_min_percent: min.unwrap_or(0.5),
            order,
            percent_limit: self.percent_limit,
            max_stack: self.max_stack,
            show_samples: self.show_nr_samples,
            header: self.header,
            comms: self.comms.clone(),
            dsos: self.dsos.clone(),
            symbols: self.symbols.clone(),
            format,
            flamegraph: self.flamegraph.clone(),
            sysroot: g.sysroot.clone(),
            progress: std::io::stderr().is_terminal(),
            energy: self.energy,
        })
    }
}

fn warn_all(warnings: &[String]) {
    let mut e = std::io::stderr().lock();
    for w in warnings {
        let _ = writeln!(e, "ruperf: warning: {w}");
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<()> {
    crate::output::Sink::stdout().write_with(|w| w.write_all(text.as_bytes()))
}

/// Writes the pprof profile to `-o FILE`, or to stdout when it is not a terminal.
fn pprof_to(r: &report::Resolved, cfg: &Config, out: Option<&std::path::Path>) -> Result<()> {
    let path = match out {
        Some(p) => p,
        None if !std::io::stdout().is_terminal() => std::path::Path::new("-"),
        None => {
            return Err(Error::Usage(
                "--format pprof writes a binary file: name it with -o FILE.pb.gz".into(),
            ))
        }
    };
    if r.profile.stacks.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "ruperf: warning: {}: no samples",
            cfg.input.display()
        );
    }
    pprof::export(r, cfg, path)
}

/// Runs `ruperf report`.
pub fn run(args: ReportArgs, g: &Globals) -> Result<i32> {
    let cfg = args.config(g)?;
    if cfg.format == Format::Script {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let warnings = formats::script(&cfg, &mut out)?;
        match out.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(Error::io("writing the script output", e)),
        }
        warn_all(&warnings);
        return Ok(0);
    }
    let resolved = report::load(&cfg)?;
    warn_all(&resolved.warnings);
    if let Some(svg) = &cfg.flamegraph {
        let lines = formats::folded_lines(&resolved, &cfg);
        let title = if cfg.energy {
            format!(
                "ruperf report --energy {} (µJ, estimate)",
                cfg.input.display()
            )
        } else {
            format!("ruperf report {}", cfg.input.display())
        };
        if lines.is_empty() {
            // perf report exits 0 on a recording without samples; so does a flame graph.
            let _ = writeln!(
                std::io::stderr(),
                "ruperf: warning: no samples to draw, so {} was not written (check the filters)",
                svg.display()
            );
        } else {
            formats::flamegraph(&lines, &title, svg)?;
        }
        if args.format.is_none() && !args.json {
            return Ok(0);
        }
    }
    match cfg.format {
        Format::Folded => {
            let mut s = formats::folded_lines(&resolved, &cfg).join("\n");
            if !s.is_empty() {
                s.push('\n');
            }
            emit(&s)?;
        }
        Format::Json => emit(&formats::json(&report::build(&resolved, &cfg)))?,
        Format::Pprof => pprof_to(&resolved, &cfg, args.output.as_deref())?,
        Format::Stdio | Format::Script => {
            let r = report::build(&resolved, &cfg);
            if r.sections.is_empty() {
                emit(&stdio::render(&r))?;
                let _ = writeln!(
                    std::io::stderr(),
                    "ruperf: warning: {}: no samples",
                    cfg.input.display()
                );
            } else {
                emit(&stdio::render(&r))?;
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_graph_specs() {
        assert_eq!(
            parse_call_graph("caller").unwrap(),
            (GraphMode::Graph, None, Some(Order::Caller))
        );
        assert_eq!(
            parse_call_graph("fractal,0.1,callee,function,percent").unwrap(),
            (GraphMode::Fractal, Some(0.1), Some(Order::Callee))
        );
        assert!(parse_call_graph("bogus").is_err());
    }
}
