#!/usr/bin/env bash
# `ruperf list` against Debian's `perf list`, the whole list (every tracepoint included), side
# by side in one run: median wall time, CPU time and peak RSS, and the ratios.
#
# Usage: benches/list_speed.sh [RUNS]   (default 20; builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
cargo build --release --quiet
cc -O2 -o target/bench-launch benches/support/launch.c
command -v perf >/dev/null || { echo "Debian's perf is not installed: apt-get install linux-perf" >&2; exit 1; }
entries_ruperf=$(target/release/ruperf list 2>/dev/null | grep -c '\[' || true)
entries_perf=$(perf list 2>/dev/null | grep -c '\[' || true)
measure() { # prints "wall_ns cpu_us rss_kib" for one run with output discarded
    target/bench-launch sh -c 'exec "$@" >/dev/null 2>&1' sh "$@" | cut -d' ' -f1-3
}
r=(); p=()
for _ in $(seq "$runs"); do
    r+=("$(measure target/release/ruperf list)")
    p+=("$(measure perf list)")
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
col() { printf '%s\n' "$@" | awk -v c="$COL" '{print $c}' | median; }
COL=1; rw=$(col "${r[@]}"); pw=$(col "${p[@]}")
COL=2; rc=$(col "${r[@]}"); pc=$(col "${p[@]}")
COL=3; rr=$(col "${r[@]}"); pr=$(col "${p[@]}")
awk -v rw="$rw" -v pw="$pw" -v rc="$rc" -v pc="$pc" -v rr="$rr" -v pr="$pr" -v n="$runs" \
    -v er="$entries_ruperf" -v ep="$entries_perf" 'BEGIN {
    printf "%-12s %9s %9s %13s %9s   (%d runs each, medians)\n", "", "wall ms", "cpu ms", "peak RSS MiB", "entries", n
    printf "%-12s %9.2f %9.2f %13.2f %9d\n", "ruperf list", rw / 1e6, rc / 1e3, rr / 1024, er
    printf "%-12s %9.2f %9.2f %13.2f %9d\n", "perf list", pw / 1e6, pc / 1e3, pr / 1024, ep
    printf "ratio ruperf/perf: wall %.3f, cpu %.3f, peak RSS %.3f\n", rw / pw, rc / pc, rr / pr
}'
