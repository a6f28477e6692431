//! `ruperf list`: which events exist here, and with `--available`, which really work.

use std::io::Write;

use clap::Args;

use super::Globals;
use crate::app::list::{self, ListClass, Listed, Listing};
use crate::error::Result;
use crate::output::Sink;

/// What `ruperf list` does, in one line: its help's first line and its entry in `ruperf --help`.
pub(crate) const ABOUT: &str =
    "List events and energy domains; with --available, test which really work here";

/// Arguments of `ruperf list`.
#[derive(Debug, Args)]
#[command(
    about = ABOUT,
    after_help = "Filters: hw, sw, cache, raw, pmu, tracepoint, rapl, nvml, energy, or a glob ('sched:*') or substring.\nExamples:\n  ruperf list sw\n  ruperf list --available hw sw\n  ruperf list 'syscalls:sys_enter_*' --json"
)]
pub struct ListArgs {
    /// Event classes or name patterns to show (all when none)
    #[arg(value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Open each event briefly and say whether it works here, and why not
    #[arg(long)]
    pub available: bool,
    /// One JSON object per event and line
    #[arg(long)]
    pub json: bool,
}

/// Plain config for a listing.
#[derive(Debug, Clone)]
pub struct ListConfig {
    /// Filters as given.
    pub filters: Vec<String>,
    /// Probe each event.
    pub available: bool,
}

/// Builds the listing for `cfg` (shared with `ruperf test`'s summary).
pub fn build(cfg: &ListConfig, g: &Globals) -> Result<Listing> {
    let mut classes: Vec<ListClass> = Vec::new();
    let mut patterns: Vec<&str> = Vec::new();
    for f in &cfg.filters {
        match list::classes_for(f) {
            Some(c) => classes.extend(c),
            None => patterns.push(f),
        }
    }
    // A pattern may name events of any class.
    let scan: Vec<ListClass> = if patterns.is_empty() {
        classes.clone()
    } else {
        Vec::new()
    };
    let mut listing = list::discover(&g.sysroot, &scan);
    let energy = list::discover_energy(&g.sysroot, g.nvml_lib.as_deref(), &scan);
    listing.events.extend(energy.events);
    listing.notes.extend(energy.notes);
    let mut kept: Vec<Listed> = Vec::new();
    if cfg.filters.is_empty() {
        kept = std::mem::take(&mut listing.events);
    } else {
        for f in &cfg.filters {
            let mut part: Vec<Listed> = match list::classes_for(f) {
                Some(c) => listing
                    .events
                    .iter()
                    .filter(|e| c.contains(&e.class))
                    .cloned()
                    .collect(),
                None => {
                    let mut v = listing.events.clone();
                    list::filter(&mut v, f);
                    v
                }
            };
            if part.is_empty() {
                // Nothing found because a source could not be read (tracefs, RAPL, NVML): say
                // why and how to fix it.
                // A pattern with a ':' names tracepoints (`sched:*`).
                let classes = list::classes_for(f)
                    .or_else(|| f.contains(':').then(|| vec![ListClass::Tracepoint]));
                let why: Vec<&list::Note> = match classes {
                    Some(c) => listing
                        .notes
                        .iter()
                        .filter(|n| c.contains(&n.class))
                        .collect(),
                    None => Vec::new(),
                };
                if !why.is_empty() {
                    let text: Vec<&str> = why.iter().map(|n| n.text.as_str()).collect();
                    let text = text.join("; ");
                    return Err(if why.iter().any(|n| n.denied) {
                        crate::error::Error::Permission(text)
                    } else {
                        crate::error::Error::Unavailable(text)
                    });
                }
                return Err(list::no_match(f));
            }
            part.retain(|e| !kept.iter().any(|k| k.name == e.name && k.desc == e.desc));
            kept.extend(part);
        }
    }
    if cfg.available {
        list::probe(&mut kept, &g.sysroot);
    }
    listing.events = kept;
    Ok(listing)
}

/// Runs `ruperf list`.
pub fn run(args: ListArgs, g: &Globals) -> Result<i32> {
    let cfg = ListConfig {
        filters: args.filters,
        available: args.available,
    };
    let listing = build(&cfg, g)?;
    let mut out = Sink::stdout();
    out.write_with(|w| {
        if args.json {
            for e in &listing.events {
                writeln!(w, "{}", serde_json::to_string(e).unwrap_or_default())?;
            }
            return Ok(());
        }
        let mut last: Option<ListClass> = None;
        for e in &listing.events {
            if last.is_some() && last != Some(e.class) {
                writeln!(w)?;
            }
            last = Some(e.class);
            let mut name = e.name.clone();
            for a in &e.aliases {
                name.push_str(" OR ");
                name.push_str(a);
            }
            let mut line = format!("  {name:<50} [{}", e.class.label());
            if let Some(u) = &e.unit {
                line.push_str(&format!(", unit {u}"));
            }
            line.push(']');
            if let Some(av) = &e.available {
                match (av.supported, &av.reason) {
                    (true, None) => line.push_str("  supported"),
                    (true, Some(r)) => line.push_str(&format!("  supported ({r})")),
                    (false, Some(r)) => line.push_str(&format!("  not supported: {r}")),
                    (false, None) => line.push_str("  not supported"),
                }
            }
            writeln!(w, "{line}")?;
            if let Some(d) = &e.desc {
                writeln!(w, "       {d}")?;
            }
        }
        Ok(())
    })?;
    let mut err = std::io::stderr().lock();
    for n in &listing.notes {
        let _ = writeln!(err, "ruperf: note: {}", n.text);
    }
    Ok(0)
}
