#!/usr/bin/env bash
# Times `ruperf report --stdio --sort srcline --inline` against Debian's `perf report` with the
# same flags, on the same recording, side by side in one run, and prints the ratio
# (target <= 0.1: perf runs binutils' addr2line per address, ruperf reads each DSO's DWARF
# once). Also times the call-graph report with inline frames (`--inline`, perf's default).
#
#   recording: report_hot built -O2 -g (inlining on), perf record -g at 10 kHz, ~3 s of work
#
# Usage: benches/report_srcline.sh [RUNS]   (default 3; medians are reported)
# Needs: perf (Debian's linux-perf), cc, binutils, /usr/bin/time, bc, cargo.
set -euo pipefail

runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${TMPDIR:-/tmp}/ruperf-srcline-bench
. "$(dirname "$0")/support/timing.sh"
mkdir -p "$work"
cd "$root"

cargo build --release --quiet
ruperf="$root/target/release/ruperf"
cc -O2 -g -fno-omit-frame-pointer -o "$work/report_hot_inl" tests/workloads/report_hot.c

data="$work/srcline.data"
if [[ ! -s $data ]]; then
    perf record -q -F 10000 -g -o "$data" "$work/report_hot_inl" 300 >/dev/null 2>&1
fi

measure() { # CMD... -> "wall_seconds max_rss_kib"
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >"$work/out.txt" 2>"$work/stderr.txt" || {
        echo "failed: $*" >&2
        cat "$work/stderr.txt" >&2
        exit 1
    }
    cat "$work/time.txt"
}

bench() { # name args...
    local name=$1
    shift
    local pw=() pm=() rw=() rm=()
    for _ in $(seq "$runs"); do
        read -r w m < <(measure perf report --stdio -i "$data" "$@")
        pw+=("$w"); pm+=("$m")
        cp "$work/out.txt" "$work/perf.txt"
        read -r w m < <(measure "$ruperf" report --stdio -i "$data" "$@")
        rw+=("$w"); rm+=("$m")
        cp "$work/out.txt" "$work/ruperf.txt"
    done
    local pwm pmm rwm rmm
    pwm=$(printf '%s\n' "${pw[@]}" | median)
    pmm=$(printf '%s\n' "${pm[@]}" | median)
    rwm=$(printf '%s\n' "${rw[@]}" | median)
    rmm=$(printf '%s\n' "${rm[@]}" | median)
    printf '%-44s perf %7.3f s %7.1f MiB | ruperf %7.3f s %7.1f MiB | time x%.3f  memory x%.2f\n' \
        "$name ($*)" "$pwm" "$(echo "$pmm/1024" | bc -l)" "$rwm" "$(echo "$rmm/1024" | bc -l)" \
        "$(echo "$rwm/$pwm" | bc -l)" "$(echo "$rmm/$pmm" | bc -l)"
}

samples=$("$ruperf" report --json -g none -i "$data" 2>/dev/null | awk -F': ' '/"samples"/{gsub(",", "", $2); print $2; exit}')
echo "recording: $samples samples, $(du -h "$data" | cut -f1); $runs runs, medians"
bench "srcline, flat" --no-children --sort srcline --inline -g none
# The top source lines must be the same (perf's addr2line and ruperf's agree on the hot ones).
echo "top lines   perf: $(grep -v '^#' "$work/perf.txt" | awk 'NF{print $2}' | head -3 | tr '\n' ' ')"
echo "top lines ruperf: $(grep -v '^#' "$work/ruperf.txt" | awk 'NF{print $2}' | head -3 | tr '\n' ' ')"
bench "srcline, children + call graph" --sort srcline --inline
bench "call graph with inline frames" --inline
