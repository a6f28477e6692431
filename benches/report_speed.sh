#!/usr/bin/env bash
# Times `ruperf report --stdio` against Debian's `perf report --stdio` on the same recordings,
# side by side in one run, and prints the ratios.
#
#   small: report_hot (about 1 s of CPU) recorded at 10 kHz with call chains (~10K samples)
#   large: two copies of report_hot (one per core) at 20 kHz with call chains, long enough
#          for at least 1M samples
#
# Usage: benches/report_speed.sh [RUNS]   (default 5; medians are reported)
# Needs: perf (Debian's linux-perf), cc, /usr/bin/time, cargo.
set -euo pipefail

runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${TMPDIR:-/tmp}/ruperf-report-bench
. "$(dirname "$0")/support/timing.sh"
mkdir -p "$work"
cd "$root"

cargo build --release --quiet
ruperf="$root/target/release/ruperf"
cc -O1 -g -fno-omit-frame-pointer -fno-inline -o "$work/report_hot" tests/workloads/report_hot.c

small="$work/small.data"
large="$work/large.data"
if [[ ! -s $small ]]; then
    perf record -q -F 10000 -g -o "$small" "$work/report_hot" 100 >/dev/null 2>&1
fi
if [[ ! -s $large ]]; then
    # Two copies, one per core, at 20 kHz: up to 40K samples/s; ~30 s of work gives >1M
    # samples. Per-task (not -a), so that other programs on the machine stay out of it.
    perf record -q -F 20000 -g -o "$large" -- \
        sh -c "'$work/report_hot' 1400 & '$work/report_hot' 1400 & wait" >/dev/null 2>&1
fi

samples() { "$ruperf" report --json -g none -i "$1" 2>/dev/null | awk -F': ' '/"samples"/{gsub(",", "", $2); print $2; exit}'; }

bench() { # name file args...
    local name=$1 file=$2
    shift 2
    local pw=() pm=() rw=() rm=()
    # Warm the page cache and perf's own caches.
    perf report --stdio -i "$file" "$@" >/dev/null 2>&1 || true
    "$ruperf" report --stdio -i "$file" "$@" >/dev/null 2>&1 || true
    for _ in $(seq "$runs"); do
        read -r w m < <(measure perf report --stdio -i "$file" "$@")
        pw+=("$w"); pm+=("$m")
        read -r w m < <(measure "$ruperf" report --stdio -i "$file" "$@")
        rw+=("$w"); rm+=("$m")
    done
    local pwm pmm rwm rmm
    pwm=$(printf '%s\n' "${pw[@]}" | median)
    pmm=$(printf '%s\n' "${pm[@]}" | median)
    rwm=$(printf '%s\n' "${rw[@]}" | median)
    rmm=$(printf '%s\n' "${rm[@]}" | median)
    printf '%-26s perf %7.3f s %7.1f MiB | ruperf %7.3f s %7.1f MiB | time x%.2f  memory x%.2f\n' \
        "$name $*" "$pwm" "$(echo "$pmm/1024" | bc -l)" "$rwm" "$(echo "$rmm/1024" | bc -l)" \
        "$(echo "$rwm/$pwm" | bc -l)" "$(echo "$rmm/$pmm" | bc -l)"
}

echo "small: $(samples "$small") samples, $(du -h "$small" | cut -f1); large: $(samples "$large") samples, $(du -h "$large" | cut -f1); $runs runs, medians"
bench small "$small" --no-children
bench small "$small"
bench large "$large" --no-children
bench large "$large"
