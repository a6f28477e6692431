//! `ruperf script`: print every sample of a perf.data file as `perf script` does.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{parse_ids, Globals};
use crate::app::script::{self, fields::Selection, Config};
use crate::error::{Error, Result};
use crate::output::script as out;

/// What `ruperf script` does, in one line.
pub(crate) const ABOUT: &str =
    "Print every sample of a perf.data file (from ruperf or perf) as perf script does";

/// Arguments of `ruperf script`.
#[derive(Debug, Clone, Args)]
#[command(
    about = ABOUT,
    after_help = "Examples:\n  ruperf script\n  ruperf script -F comm,tid,time,event,trace -i sched.data\n  ruperf script -F sw:comm,ip,sym --comm myprog"
)]
pub struct ScriptArgs {
    /// Input file
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        default_value = "perf.data"
    )]
    pub input: PathBuf,
    /// Fields to print: comm,tid,pid,time,cpu,event,trace,ip,sym,symoff,dso,addr,period,
    /// callindent; `TYPE:LIST` for one event type (hw, sw, trace, raw, break); `+f`/`-f` edit
    /// the defaults
    #[arg(short = 'F', long = "fields", value_name = "FIELDS")]
    pub fields: Option<String>,
    /// Print the file's header before the samples
    #[arg(long)]
    pub header: bool,
    /// Print only the file's header
    #[arg(long = "header-only")]
    pub header_only: bool,
    /// Dump every record's raw bytes (perf's -D)
    #[arg(short = 'D', long = "dump-raw-trace")]
    pub dump_raw: bool,
    /// Timestamps with nanoseconds
    #[arg(long = "ns")]
    pub ns: bool,
    /// Only samples in these symbols (comma-separated)
    #[arg(short = 'S', long = "symbols", value_name = "SYMBOLS")]
    pub symbols: Option<String>,
    /// Only these command names (comma-separated)
    #[arg(long = "comm", value_name = "COMMS")]
    pub comm: Option<String>,
    /// Only these process ids (comma-separated)
    #[arg(long = "pid", value_name = "PIDS")]
    pub pid: Option<String>,
    /// Only these thread ids (comma-separated)
    #[arg(long = "tid", value_name = "TIDS")]
    pub tid: Option<String>,
    /// Only these CPUs (e.g. 0-3,6)
    #[arg(short = 'C', long = "cpu", value_name = "CPUS")]
    pub cpu: Option<String>,
    /// Only samples between START,END (seconds, as printed; either may be empty)
    #[arg(long = "time", value_name = "START,END")]
    pub time: Option<String>,
    /// Do not print call chains
    #[arg(short = 'G', long = "hide-call-graph")]
    pub hide_call_graph: bool,
    /// Do not print the functions inlined at call-chain addresses (printed by default where
    /// debug information has them, as perf does)
    #[arg(long = "no-inline")]
    pub no_inline: bool,
}

fn list(s: &Option<String>) -> Option<Vec<String>> {
    s.as_ref()
        .map(|v| v.split(',').map(|x| x.trim().to_string()).collect())
}

impl ScriptArgs {
    fn into_config(self, g: &Globals) -> Result<Config> {
        let cpus = match &self.cpu {
            Some(c) => Some(crate::counters::pmu::parse_cpu_list(c).ok_or_else(|| {
                Error::Usage(format!("-C {c}: expected a CPU list such as 0-3,6"))
            })?),
            None => None,
        };
        Ok(Config {
            input: self.input.clone(),
            sysroot: g.sysroot.clone(),
            fields: match &self.fields {
                Some(f) => Selection::parse(f)?,
                None => Selection::default(),
            },
            hide_call_graph: self.hide_call_graph,
            no_inline: self.no_inline,
            comms: list(&self.comm),
            pids: self
                .pid
                .as_ref()
                .map(|p| parse_ids("--pid", p))
                .transpose()?,
            tids: self
                .tid
                .as_ref()
                .map(|p| parse_ids("--tid", p))
                .transpose()?,
            cpus,
            time: self
                .time
                .as_deref()
                .map(script::parse_time_range)
                .transpose()?,
            symbols: list(&self.symbols),
            ns: self.ns,
        })
    }
}

/// Runs `ruperf script`.
pub fn run(args: ScriptArgs, g: &Globals) -> Result<i32> {
    let (header, header_only, dump) = (args.header, args.header_only, args.dump_raw);
    let cfg = args.into_config(g)?;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let warnings = if header_only {
        let rec = script::open(&cfg)?;
        let mut buf = Vec::new();
        out::header(&mut buf, rec.meta());
        let _ = lock.write_all(&buf);
        rec.warnings().to_vec()
    } else if dump {
        crate::app::script::dump::dump(&cfg.input, &mut lock)?
    } else {
        out::stream(&cfg, header, &mut lock)?
    };
    let mut err = std::io::stderr().lock();
    for w in warnings {
        let _ = writeln!(err, "ruperf: warning: {w}");
    }
    Ok(0)
}
