#!/usr/bin/env bash
# Times `ruperf script` against Debian's `perf script` on the same recordings (perf's own),
# side by side in one run, and prints the ratios (goal: ruperf <= 0.2x perf's time).
#
#   samples:     report_hot on both cores at 20 kHz with call chains, >= 300K samples
#   tracepoints: syscalls:sys_enter_write of the writes workload, 300K events
#
# Before timing, it checks that both tools print the same number of lines.
#
# Usage: benches/script_speed.sh [RUNS]   (default 5; medians are reported)
# Needs: perf (Debian's linux-perf), tracefs, cc, /usr/bin/time, cargo.
set -euo pipefail

runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${TMPDIR:-/tmp}/ruperf-script-bench
. "$(dirname "$0")/support/timing.sh"
mkdir -p "$work"
cd "$root"

cargo build --release --quiet
ruperf="$root/target/release/ruperf"
cc -O1 -g -fno-omit-frame-pointer -fno-inline -o "$work/report_hot" tests/workloads/report_hot.c
cc -O2 -o "$work/writes" tests/workloads/writes.c

samples="$work/samples.data"
tracepoints="$work/tracepoints.data"
if [[ ! -s $samples ]]; then
    perf record -q -F 20000 -g -o "$samples" -- \
        sh -c "'$work/report_hot' 800 & '$work/report_hot' 800 & wait" >/dev/null 2>&1
fi
if [[ ! -s $tracepoints ]]; then
    perf record -q -e syscalls:sys_enter_write -o "$tracepoints" "$work/writes" 300000 >/dev/null 2>&1
fi

count() { perf script -F ip -G -i "$1" 2>/dev/null | wc -l; }

bench() { # name file args...
    local name=$1 file=$2
    shift 2
    local pl rl
    pl=$(perf script -i "$file" "$@" 2>/dev/null | wc -l)
    rl=$("$ruperf" script -i "$file" "$@" 2>/dev/null | wc -l)
    if [[ $pl != "$rl" ]]; then
        echo "$name: perf prints $pl lines, ruperf $rl: not comparable" >&2
        exit 1
    fi
    local pw=() pm=() rw=() rm=()
    for _ in $(seq "$runs"); do
        read -r w m < <(measure perf script -i "$file" "$@")
        pw+=("$w"); pm+=("$m")
        read -r w m < <(measure "$ruperf" script -i "$file" "$@")
        rw+=("$w"); rm+=("$m")
    done
    local pwm pmm rwm rmm
    pwm=$(printf '%s\n' "${pw[@]}" | median)
    pmm=$(printf '%s\n' "${pm[@]}" | median)
    rwm=$(printf '%s\n' "${rw[@]}" | median)
    rmm=$(printf '%s\n' "${rm[@]}" | median)
    printf '%-22s %8d lines | perf %7.3f s %7.1f MiB | ruperf %7.3f s %7.1f MiB | time x%.3f  memory x%.2f\n' \
        "$name $*" "$pl" "$pwm" "$(echo "$pmm/1024" | bc -l)" "$rwm" "$(echo "$rmm/1024" | bc -l)" \
        "$(echo "$rwm/$pwm" | bc -l)" "$(echo "$rmm/$pmm" | bc -l)"
}

echo "samples: $(count "$samples") samples, $(du -h "$samples" | cut -f1); tracepoints: $(count "$tracepoints") events, $(du -h "$tracepoints" | cut -f1); $runs runs, medians"
bench samples "$samples"
bench samples "$samples" -G
bench tracepoints "$tracepoints"
