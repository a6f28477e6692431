//! The `stat` options beyond the basic target/event/format set, gathered in one struct so
//! that callers which do not use them build it with `Default`.

use std::time::Duration;

use super::aggr::AggrMode;

/// When counting starts after the command is launched (`-D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// Start this long after the command starts.
    After(Duration),
    /// Start disabled; only `--control` enables (`-D -1`).
    Disabled,
}

/// The `--control` channel: commands read from one descriptor or FIFO, acks written to
/// another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlFds {
    /// `fd:CTL[,ACK]`: descriptors inherited from the caller.
    Fd {
        /// Descriptor the `enable`/`disable`/`stop` commands arrive on.
        ctl: i32,
        /// Descriptor `ack\n` is written to after each command.
        ack: Option<i32>,
    },
    /// `fifo:CTL[,ACK]`: named pipes ruperf opens.
    Fifo {
        /// FIFO the commands arrive on.
        ctl: std::path::PathBuf,
        /// FIFO `ack\n` is written to.
        ack: Option<std::path::PathBuf>,
    },
}

/// Timing, aggregation and run-control options.
#[derive(Debug, Clone, Default)]
pub struct Depth {
    /// Sum counts per unit instead of in total (`--per-*`).
    pub aggr: Option<AggrMode>,
    /// `-D/--delay`.
    pub delay: Option<Delay>,
    /// `--timeout`: stop the command and print counts after this long.
    pub timeout: Option<Duration>,
    /// `-r 0`: repeat until interrupted.
    pub forever: bool,
    /// `-n/--null`: open no counters, time the command only.
    pub null: bool,
    /// `-S/--sync`: call sync() before each run.
    pub sync: bool,
    /// `--pre`: shell command run before each run.
    pub pre: Option<String>,
    /// `--post`: shell command run after each run.
    pub post: Option<String>,
    /// `--control fd:CTL[,ACK]`.
    pub control: Option<ControlFds>,
    /// The cgroup of each counter event, in event order (`-G`, `--for-each-cgroup`).
    pub cgroups: Vec<Option<String>>,
    /// `--filter`: a tracepoint filter for the counter at this index (the last event).
    pub filter: Option<(usize, String)>,
    /// Tool events, each with the number of counter events given before it.
    pub tools: Vec<(usize, ToolEvent)>,
}

/// perf's tool events: figures ruperf measures itself rather than through a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolEvent {
    /// Wall-clock nanoseconds of the measured window.
    Duration,
    /// User CPU nanoseconds of the command (its rusage).
    User,
    /// System CPU nanoseconds of the command.
    System,
}

impl ToolEvent {
    /// Recognizes a tool event's name.
    pub fn parse(name: &str) -> Option<ToolEvent> {
        match name {
            "duration_time" => Some(ToolEvent::Duration),
            "user_time" => Some(ToolEvent::User),
            "system_time" => Some(ToolEvent::System),
            _ => None,
        }
    }

    /// The name perf prints.
    pub fn name(self) -> &'static str {
        match self {
            ToolEvent::Duration => "duration_time",
            ToolEvent::User => "user_time",
            ToolEvent::System => "system_time",
        }
    }
}

/// Splits `-e` arguments at top-level commas (not inside `{}` or a PMU's `/terms/`) and takes
/// the tool events out: the rest, in runs of consecutive ordinary events (each run parsed on
/// its own), and each tool event with the index of the run it follows.
pub fn split_tools(args: &[String]) -> (Vec<String>, Vec<(usize, ToolEvent)>) {
    let mut runs: Vec<Vec<String>> = vec![Vec::new()];
    let mut tools = Vec::new();
    for arg in args {
        for tok in top_level(arg) {
            if let Some(t) = ToolEvent::parse(tok.trim()) {
                tools.push((runs.len(), t));
                runs.push(Vec::new());
            } else if !tok.trim().is_empty() {
                if let Some(r) = runs.last_mut() {
                    r.push(tok.to_string());
                }
            }
        }
    }
    let joined = runs.into_iter().map(|r| r.join(",")).collect();
    (joined, tools)
}

/// Splits an event list at commas outside `{}` and `/terms/`.
pub fn top_level(s: &str) -> Vec<&str> {
    let (mut depth, mut slash, mut start) = (0i32, false, 0);
    let mut out = Vec::new();
    for (i, ch) in s.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' => slash = !slash,
            ',' if depth == 0 && !slash => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_events_are_taken_out_in_place() {
        let (runs, tools) = split_tools(&[
            "task-clock,duration_time,cpu/event=1,umask=2/".into(),
            "{a,b},user_time".into(),
        ]);
        assert_eq!(runs, vec!["task-clock", "cpu/event=1,umask=2/,{a,b}", ""]);
        assert_eq!(tools, vec![(1, ToolEvent::Duration), (2, ToolEvent::User)]);
        let (runs, tools) = split_tools(&["page-faults".into()]);
        assert_eq!((runs, tools), (vec!["page-faults".to_string()], vec![]));
    }
}
