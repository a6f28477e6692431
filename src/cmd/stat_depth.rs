//! The `ruperf stat` options beyond targets, events and formats: per-unit aggregation,
//! timing and run control, digit grouping, detailed sets (flattened into `StatArgs`, boxed so
//! that the subcommand enum stays small).

use clap::Args;

use super::PER_FLAGS;

/// More arguments of `ruperf stat`.
#[derive(Debug, Args)]
pub struct DepthArgs {
    /// With -p/-t: one count per thread
    #[arg(long = "per-thread", overrides_with_all = PER_FLAGS)]
    pub per_thread: bool,
    /// With -a/-C: one count per physical core
    #[arg(long = "per-core", overrides_with_all = PER_FLAGS)]
    pub per_core: bool,
    /// With -a/-C: one count per socket
    #[arg(long = "per-socket", overrides_with_all = PER_FLAGS)]
    pub per_socket: bool,
    /// With -a/-C: one count per die
    #[arg(long = "per-die", overrides_with_all = PER_FLAGS)]
    pub per_die: bool,
    /// With -a/-C: one count per NUMA node
    #[arg(long = "per-node", overrides_with_all = PER_FLAGS)]
    pub per_node: bool,
    /// With -a/-C: one count per cache instance of LEVEL (L1..L4; default the last level)
    #[arg(long = "per-cache", value_name = "LEVEL", num_args = 0..=1, default_missing_value = "", overrides_with_all = PER_FLAGS)]
    pub per_cache: Option<String>,
    /// Start counting MS milliseconds after the command starts (-1: start disabled, for --control)
    #[arg(
        short = 'D',
        long = "delay",
        value_name = "MS",
        allow_hyphen_values = true
    )]
    pub delay: Option<i64>,
    /// Stop the command and print the counts after MS milliseconds (at least 10)
    #[arg(long = "timeout", value_name = "MS")]
    pub timeout: Option<u64>,
    /// Null run: open no counters, time the command only
    #[arg(short = 'n', long = "null")]
    pub null: bool,
    /// Call sync() before each run
    #[arg(short = 'S', long = "sync")]
    pub sync: bool,
    /// Shell command to run before each run
    #[arg(long = "pre", value_name = "COMMAND")]
    pub pre: Option<String>,
    /// Shell command to run after each run
    #[arg(long = "post", value_name = "COMMAND")]
    pub post: Option<String>,
    /// Commands (enable, disable, stop) on descriptor or FIFO CTL; `ack` written to ACK
    #[arg(long = "control", value_name = "fd:CTL[,ACK]|fifo:CTL[,ACK]")]
    pub control: Option<String>,
    /// Print nothing (the command's own output stays)
    #[arg(long = "quiet")]
    pub quiet: bool,
    /// Clear the screen before each interval (-I)
    #[arg(long = "interval-clear", requires = "interval")]
    pub interval_clear: bool,
    /// Group digits with the locale's thousands separator (perf's default)
    #[arg(short = 'B', long = "big-num", overrides_with = "no_big_num")]
    pub big_num: bool,
    /// Do not group digits
    #[arg(long = "no-big-num", overrides_with = "big_num")]
    pub no_big_num: bool,
    /// With -I: print the totals after the interval rows too
    #[arg(long = "summary", requires = "interval")]
    pub summary: bool,
    /// Add perf's detailed events: -d L1/LLC data, -dd also icache and TLBs, -ddd prefetches
    #[arg(short = 'd', long = "detailed", action = clap::ArgAction::Count)]
    pub detailed: u8,
    /// Count user space only, for every event
    #[arg(long = "all-user", conflicts_with = "all_kernel")]
    pub all_user: bool,
    /// Count the kernel only, for every event
    #[arg(long = "all-kernel")]
    pub all_kernel: bool,
    /// Metrics or metric groups from perf's per-CPU-model tables (needs a hardware PMU)
    #[arg(short = 'M', long = "metrics", value_name = "METRIC[,GROUP...]")]
    pub metrics: Option<String>,
    /// perf's top-down analysis (needs a hardware PMU and -a)
    #[arg(long = "topdown")]
    pub topdown: bool,
    /// Top-down level for --topdown
    #[arg(long = "td-level", value_name = "N", requires = "topdown")]
    pub td_level: Option<u32>,
    /// With -a/-C: count only in these cgroups, one per event in order (one name: all events)
    #[arg(short = 'G', long = "cgroup", value_name = "NAME[,NAME...]")]
    pub cgroup: Option<String>,
    /// With -a/-C: count every event once in each of these cgroups
    #[arg(long = "for-each-cgroup", value_name = "NAME[,NAME...]")]
    pub for_each_cgroup: Option<String>,
    /// Tracepoint filter for the last event, e.g. 'fd == 1' (the tracepoint's format fields)
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Option<String>,
    /// Print only the derived metrics, one column each
    #[arg(long = "metric-only")]
    pub metric_only: bool,
    /// Write the counts to descriptor N instead of stderr
    #[arg(long = "log-fd", value_name = "N", conflicts_with = "output")]
    pub log_fd: Option<i32>,
}
