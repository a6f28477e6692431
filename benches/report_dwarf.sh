#!/usr/bin/env bash
# DWARF call stacks, ruperf next to Debian's perf, side by side in one run.
#
#   benches/report_dwarf.sh [RUNS]      (default 3; medians are reported)
#
# 1. `report` of a DWARF recording of at least 50 MB (tests/workloads/dwarf_c.c, built with
#    -O2 -fomit-frame-pointer -g, recorded by `perf record --call-graph dwarf -F 4000`):
#    wall time and peak RSS of `perf report --stdio` and `ruperf report --stdio`, children
#    and --no-children, and their ratios. Targets: time <= 0.2x perf's, RSS <= perf's.
# 2. `record --call-graph dwarf -F 4000` of a fixed amount of work: the time each recorder adds
#    to the bare run, the ratio of ruperf's to perf's (target <= 0.5x), and the samples and
#    lost samples of each file (0 lost at the default buffer size is the target).
#
# Needs: perf (Debian's linux-perf), cc, /usr/bin/time, bc, cargo.
set -euo pipefail

runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${TMPDIR:-/tmp}/ruperf-dwarf-bench
. "$(dirname "$0")/support/timing.sh"
mkdir -p "$work"
cd "$root"

command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)"; exit 1; }
cargo build --release --quiet
ruperf="$root/target/release/ruperf"
prog="$work/dwarf_c"
cc -O2 -fomit-frame-pointer -g -o "$prog" tests/workloads/dwarf_c.c

median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.4f", m}'; }
# measure CMD... -> "wall_seconds max_rss_kib" of one run, output discarded
now() { echo "${EPOCHREALTIME/,/.}"; }
wall() {
    local t0 t1
    t0=$(now)
    "$@" >/dev/null 2>&1
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
lost_of() { # FILE -> "samples lost": perf report's sample count and its Total Lost Samples
    perf report --stdio -g none --sort comm -i "$1" 2>/dev/null | awk '
        /^# Total Lost Samples:/ {l=$5}
        /^# Samples:/ {s=$3}
        END {printf "%s %d\n", s, l}'
}

# 1. report
big="$work/big.data"
if [[ ! -s $big ]] || (( $(stat -c %s "$big") < 50 * 1024 * 1024 )); then
    perf record -q --call-graph dwarf -F 4000 -o "$big" "$prog" 3 >/dev/null 2>&1
fi
size_mb=$(echo "$(stat -c %s "$big") / 1048576" | bc)
(( size_mb >= 50 )) || { echo "recording is only $size_mb MB: run on a less busy machine"; exit 1; }

bench() { # name args...
    local name=$1
    shift
    local pw=() pm=() rw=() rm=()
    perf report --stdio -i "$big" "$@" >/dev/null 2>&1 || true
    "$ruperf" report --stdio -i "$big" "$@" >/dev/null 2>&1 || true
    for _ in $(seq "$runs"); do
        read -r w m < <(measure perf report --stdio -i "$big" "$@")
        pw+=("$w"); pm+=("$m")
        read -r w m < <(measure "$ruperf" report --stdio -i "$big" "$@")
        rw+=("$w"); rm+=("$m")
    done
    local pwm pmm rwm rmm
    pwm=$(printf '%s\n' "${pw[@]}" | median)
    pmm=$(printf '%s\n' "${pm[@]}" | median)
    rwm=$(printf '%s\n' "${rw[@]}" | median)
    rmm=$(printf '%s\n' "${rm[@]}" | median)
    printf '%-28s perf %7.3f s %7.1f MiB | ruperf %7.3f s %7.1f MiB | time x%.3f  peak RSS x%.2f\n' \
        "$name" "$pwm" "$(echo "$pmm/1024" | bc -l)" "$rwm" "$(echo "$rmm/1024" | bc -l)" \
        "$(echo "$rwm/$pwm" | bc -l)" "$(echo "$rmm/$pmm" | bc -l)"
}

read -r s l < <(lost_of "$big")
echo "report of a $size_mb MB DWARF recording ($s samples, $l lost), $runs runs, medians"
bench "report (children)"
bench "report --no-children" --no-children

# 2. record overhead, on a fixed amount of work of about 1 s of CPU
one=$(/usr/bin/time -f %U "$prog" -n 400 2>&1 >/dev/null | tail -1)
rounds=$(echo "400 / ($one + 0.001)" | bc)
: >"$work/bare"; : >"$work/ruperf"; : >"$work/perf"
rs=0; rl=0; ps=0; pl=0
for _ in $(seq "$runs"); do
    wall "$prog" -n "$rounds" >>"$work/bare"
    wall "$ruperf" record --call-graph dwarf -F 4000 -o "$work/r.data" "$prog" -n "$rounds" >>"$work/ruperf"
    read -r s l < <(lost_of "$work/r.data"); rs="$rs+$s"; rl=$((rl + l))
    wall perf record --call-graph dwarf -F 4000 -o "$work/p.data" "$prog" -n "$rounds" >>"$work/perf"
    read -r s l < <(lost_of "$work/p.data"); ps="$ps+$s"; pl=$((pl + l))
done
b=$(median <"$work/bare"); r=$(median <"$work/ruperf"); p=$(median <"$work/perf")
ra=$(echo "$r - $b" | bc -l); pa=$(echo "$p - $b" | bc -l)
echo "record --call-graph dwarf -F 4000 of $rounds rounds of work, $runs runs, medians"
printf '  bare    %7.3f s\n' "$b"
printf '  ruperf  %7.3f s  adds %6.3f s  samples per run %s  %d lost in total\n' "$r" "$ra" "${rs#0+}" "$rl"
printf '  perf    %7.3f s  adds %6.3f s  samples per run %s  %d lost in total\n' "$p" "$pa" "${ps#0+}" "$pl"
printf '  added time: ruperf x%.3f of perf'"'"'s\n' "$(echo "$ra / $pa" | bc -l)"
