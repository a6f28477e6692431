#!/usr/bin/env bash
# Times `ruperf report --format pprof` on a recording of more than 1M samples (target: ≤ 2 s),
# beside `ruperf report --stdio --no-children` and `perf report --stdio --no-children` of the
# same file, in one run. The recording is the one benches/report_speed.sh makes.
#
# Usage: benches/pprof_export.sh [RUNS]   (default 5; medians are reported)
# Needs: perf (Debian's linux-perf), cc, /usr/bin/time, cargo; go (golang-go) to check the file.
set -euo pipefail

runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${TMPDIR:-/tmp}/ruperf-report-bench
. "$(dirname "$0")/support/timing.sh"
mkdir -p "$work"
cd "$root"

cargo build --release --quiet
ruperf="${CARGO_TARGET_DIR:-$root/target}/release/ruperf"
cc -O1 -g -fno-omit-frame-pointer -fno-inline -o "$work/report_hot" tests/workloads/report_hot.c
large="$work/large.data"
if [[ ! -s $large ]]; then
    # Two copies, one per core, at 20 kHz: ~30 s of work gives >1M samples.
    perf record -q -F 20000 -g -o "$large" -- \
        sh -c "'$work/report_hot' 1400 & '$work/report_hot' 1400 & wait" >/dev/null 2>&1
fi
samples=$("$ruperf" report --json -g none -i "$large" 2>/dev/null |
    awk -F': ' '/"samples"/{gsub(",", "", $2); print $2; exit}')

out="$work/large.pb.gz"
"$ruperf" report --format pprof -o "$out" -i "$large" >/dev/null 2>&1 # warm the caches
pw=() sw=() fw=() pm=()
for _ in $(seq "$runs"); do
    read -r w m < <(measure "$ruperf" report --format pprof -o "$out" -i "$large")
    pw+=("$w"); pm+=("$m")
    read -r w _ < <(measure "$ruperf" report --stdio --no-children -i "$large")
    sw+=("$w")
    read -r w _ < <(measure perf report --stdio --no-children -i "$large")
    fw+=("$w")
done
p=$(printf '%s\n' "${pw[@]}" | median)
s=$(printf '%s\n' "${sw[@]}" | median)
f=$(printf '%s\n' "${fw[@]}" | median)
m=$(printf '%s\n' "${pm[@]}" | median)
printf '%s samples, %s; %s runs, medians\n' "$samples" "$(du -h "$large" | cut -f1)" "$runs"
printf 'pprof export %.3f s (%.1f MiB peak, %s written) | report --stdio %.3f s | perf report %.3f s | export/perf x%.2f\n' \
    "$p" "$(echo "$m/1024" | bc -l)" "$(du -h "$out" | cut -f1)" "$s" "$f" "$(echo "$p/$f" | bc -l)"
if command -v go >/dev/null; then
    go tool pprof -top -symbolize=none "$out" 2>/dev/null | sed -n '1,12p'
fi
awk -v p="$p" 'BEGIN { if (p > 2.0) { print "over the 2 s target"; exit 1 } else print "within the 2 s target" }'
