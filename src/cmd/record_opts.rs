//! The `record` options beyond the basics, and the event terms `ev/period=N/`, `ev/freq=N/`.

use clap::Args;

use crate::app::record::options::Extra;
use crate::app::record::Period;
use crate::counters::sampler::SampleEvent;
use crate::energy::EnergySelector;
use crate::error::{Error, Result};
use crate::sysroot::Sysroot;

/// More `ruperf record` options.
#[derive(Debug, Clone, Default, Args)]
pub struct MoreRecordArgs {
    /// Tracepoint filter for the preceding -e event (ftrace syntax, e.g. 'prev_pid == 0')
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Record data addresses (PERF_SAMPLE_ADDR)
    #[arg(short = 'd', long = "data")]
    pub data: bool,
    /// Record sample timestamps (always on in ruperf, as perf does for most recordings)
    #[arg(short = 'T', long = "timestamp")]
    pub timestamp: bool,
    /// Record the CPU of each sample (always on in ruperf)
    #[arg(long = "sample-cpu")]
    pub sample_cpu: bool,
    /// Start sampling MSECS milliseconds after the command starts
    #[arg(short = 'D', long = "delay", value_name = "MSECS")]
    pub delay: Option<u64>,
    /// Do not follow child tasks
    #[arg(short = 'i', long = "no-inherit")]
    pub no_inherit: bool,
    /// Sample user space only
    #[arg(long = "all-user", conflicts_with = "all_kernel")]
    pub all_user: bool,
    /// Sample the kernel only
    #[arg(long = "all-kernel")]
    pub all_kernel: bool,
    /// Per-thread counts: the kernel writes each thread's totals when it exits (perf's --stat)
    #[arg(short = 's', long = "stat")]
    pub stat: bool,
    /// Print nothing but errors
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Say more about what is opened
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `-v`: what will be opened, one line per event.
pub fn describe(cfg: &crate::app::record::RecordConfig, w: &mut dyn std::io::Write) {
    for (i, e) in cfg.events.iter().enumerate() {
        let a = &e.attr;
        let period = cfg
            .extra
            .event_periods
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| {
                crate::app::record::options::event_period(
                    cfg,
                    a.type_ == crate::os::sys::bindings::PERF_TYPE_TRACEPOINT,
                )
            });
        let filter = cfg
            .extra
            .filters
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, f)| format!(", filter '{f}'"))
            .unwrap_or_default();
        let _ = writeln!(
            w,
            "ruperf: event {i}: {} (type {}, config {:#x}, {period:?}{filter}, exclude_user {}, exclude_kernel {})",
            e.name,
            a.type_,
            a.config,
            a.exclude_user(),
            a.exclude_kernel()
        );
    }
    let _ = writeln!(w, "ruperf: output {}", cfg.output.display());
}

/// `-F HZ` or `-F max`.
pub fn parse_freq(text: &str, root: &Sysroot) -> Result<u64> {
    let t = text.trim_start_matches('=');
    if t == "max" {
        return root
            .read_trimmed("/proc/sys/kernel/perf_event_max_sample_rate")
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                Error::Usage(
                    "-F max: cannot read /proc/sys/kernel/perf_event_max_sample_rate; give a number".into(),
                )
            });
    }
    t.parse().map_err(|_| {
        Error::Usage(format!(
            "-F '{text}': expected a frequency in Hz (e.g. 99) or `max`"
        ))
    })
}

/// Splits an event list at top-level commas (outside `{}` and `/…/`).
fn split_items(s: &str) -> Vec<&str> {
    let (mut depth, mut in_terms, mut start) = (0i32, false, 0usize);
    let mut out = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' => in_terms = !in_terms,
            ',' if depth == 0 && !in_terms => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Takes `period=N` and `freq=N` out of an item's `/terms/`; returns the rewritten item and
/// the period asked for. A name that is not a PMU (`cpu-clock/period=1000/`) loses its
/// slashes when no other term is left.
fn take_period_terms(item: &str, root: &Sysroot) -> Result<(String, Option<Period>)> {
    let Some(open) = item.find('/') else {
        return Ok((item.to_string(), None));
    };
    let Some(close) = item[open + 1..].find('/').map(|c| c + open + 1) else {
        return Ok((item.to_string(), None));
    };
    let (name, terms, after) = (&item[..open], &item[open + 1..close], &item[close + 1..]);
    let mut period = None;
    let mut kept = Vec::new();
    for term in terms.split(',') {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        let num = || {
            crate::counters::pmu::parse_num(v)
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Error::Event(format!(
                        "bad value '{v}' for term '{k}' in '{item}': give a positive number"
                    ))
                })
        };
        match k {
            "period" => period = Some(Period::Count(num()?)),
            "freq" => period = Some(Period::Frequency(num()?)),
            _ => kept.push(term),
        }
    }
    if period.is_none() {
        return Ok((item.to_string(), None));
    }
    let is_pmu = root.path(crate::counters::pmu::DEVICES).join(name).is_dir();
    let rewritten = if kept.is_empty() && !is_pmu {
        // `ev/terms/u` spells modifiers without the colon.
        match after {
            "" => name.to_string(),
            a if a.starts_with(':') => format!("{name}{a}"),
            a => format!("{name}:{a}"),
        }
    } else {
        format!("{name}/{}/{after}", kept.join(","))
    };
    Ok((rewritten, period))
}

/// Which -e argument each `--filter` follows, from the command line as typed (clap keeps
/// no order between different options).
fn filter_owners(argv: &[String], filters: usize) -> Result<Vec<usize>> {
    let mut events_seen = 0usize;
    let mut owners = Vec::new();
    let mut it = argv.iter().skip(1).peekable();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "-e" || a == "--event" {
            it.next();
            events_seen += 1;
        } else if a.starts_with("--event=") || (a.starts_with("-e") && a.len() > 2) {
            events_seen += 1;
        } else if a == "--filter" || a.starts_with("--filter=") {
            if a == "--filter" {
                it.next();
            }
            if events_seen == 0 {
                return Err(Error::Usage(
                    "--filter must follow the -e tracepoint it applies to, e.g. -e sched:sched_switch --filter 'prev_pid == 0'".into(),
                ));
            }
            owners.push(events_seen - 1);
        }
    }
    owners.resize(filters, events_seen.saturating_sub(1));
    Ok(owners)
}

/// Resolves the -e arguments (taking out period/freq terms) and the options into events and
/// the [`Extra`] settings.
pub fn events_and_extra(
    args: &[String],
    more: &MoreRecordArgs,
    root: &Sysroot,
) -> Result<(Vec<SampleEvent>, Extra, Vec<EnergySelector>)> {
    let mut events = Vec::new();
    let mut energy = Vec::new();
    let mut extra = Extra {
        data_addr: more.data,
        no_inherit: more.no_inherit,
        all_user: more.all_user,
        all_kernel: more.all_kernel,
        delay_ms: more.delay,
        inherit_stat: more.stat,
        ..Extra::default()
    };
    let mut ranges = Vec::new();
    for arg in args {
        let start = events.len();
        for item in split_items(arg) {
            let (item, period) = take_period_terms(item, root)?;
            let (evs, names) = super::record::parse_sample_events(&[item], root)?;
            energy.extend(names);
            if let Some(p) = period {
                for i in 0..evs.len() {
                    extra.event_periods.push((events.len() + i, p));
                }
            }
            events.extend(evs);
        }
        ranges.push(start..events.len());
    }
    if !more.filter.is_empty() {
        let argv: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let owners = filter_owners(&argv, more.filter.len())?;
        for (text, owner) in more.filter.iter().zip(owners) {
            let Some(r) = ranges.get(owner) else {
                return Err(Error::Usage(
                    "--filter must follow the -e tracepoint it applies to".into(),
                ));
            };
            for i in r.clone() {
                if events[i].attr.type_ != crate::os::sys::bindings::PERF_TYPE_TRACEPOINT {
                    return Err(Error::Usage(format!(
                        "--filter '{text}': {} is not a tracepoint (filters apply to tracepoints only)",
                        events[i].name
                    )));
                }
                extra.filters.push((i, text.clone()));
            }
        }
    }
    Ok((events, extra, energy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_terms_come_out() {
        let root = Sysroot::new("/nonexistent-root");
        let (i, p) = take_period_terms("cpu-clock/period=1000/", &root).unwrap();
        assert_eq!((i.as_str(), p), ("cpu-clock", Some(Period::Count(1000))));
        let (i, p) = take_period_terms("cpu-clock/freq=99/:u", &root).unwrap();
        assert_eq!(
            (i.as_str(), p),
            ("cpu-clock:u", Some(Period::Frequency(99)))
        );
        let (i, _) = take_period_terms("cpu-clock/freq=99/k", &root).unwrap();
        assert_eq!(i, "cpu-clock:k");
        let (i, p) = take_period_terms("msr/tsc,period=5/", &root).unwrap();
        assert_eq!((i.as_str(), p), ("msr/tsc/", Some(Period::Count(5))));
        assert!(take_period_terms("cpu-clock/period=x/", &root).is_err());
    }

    #[test]
    fn filters_follow_their_event() {
        let argv: Vec<String> = [
            "ruperf",
            "record",
            "-e",
            "a",
            "--filter",
            "x",
            "-eb",
            "--filter=y",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(filter_owners(&argv, 2).unwrap(), vec![0, 1]);
        let bad: Vec<String> = ["ruperf", "--filter", "x", "-e", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(filter_owners(&bad, 1).is_err());
    }

    #[test]
    fn items_split_at_top_level_commas() {
        assert_eq!(
            split_items("a,cpu/event=1,umask=2/,{b,c}"),
            vec!["a", "cpu/event=1,umask=2/", "{b,c}"]
        );
    }
}
