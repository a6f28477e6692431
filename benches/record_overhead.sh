#!/usr/bin/env bash
# Overhead of `ruperf record` next to Debian's perf, measured side by side in one run.
#
#   benches/record_overhead.sh [ROUNDS]      (default 7 rounds)
#
# 1. A CPU-bound C program doing a fixed amount of work (~1 s) is run bare, under
#    `ruperf record -F 10000 -g` and under `perf record -F 10000 -g`, alternating, ROUNDS
#    times. Prints the median wall time of each, the ratio to the bare run, and the samples
#    and lost records of each recorder's file (counted by `perf report --stats` for both).
# 2. The machine's floor for 10 kHz sampling: benches/support/sample_floor.c times a loop bare
#    and while a cpu-clock event samples it every 100 us with no recorder at all (median ratio
#    over ROUNDS). On a virtual machine each sample's timer interrupt can cost tens of
#    microseconds, which no recorder can avoid.
# 3. `ruperf record true` against `perf record true`: median wall times and their ratio.
#
# Targets: ruperf <= 1.10x the bare run with 0 lost; ruperf record true <= 0.05x perf's.
set -euo pipefail

ROUNDS=${1:-7}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)"; exit 1; }
(cd "$HERE" && cargo build --release --quiet)
RUPERF="$HERE/target/release/ruperf"
HOT="$WORK/hot"
cc -O1 -g -fno-omit-frame-pointer -fno-inline -o "$HOT" "$HERE/tests/workloads/hot.c"

# Calibrate a fixed amount of work that takes about 1 s of CPU.
CALLS=$("$HOT" 1.0 | sed -n 's/.*calls=\([0-9]*\).*/\1/p')

now() { echo "${EPOCHREALTIME/,/.}"; }
# wall SECONDS of a command, its output discarded
wall() {
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>&1
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.4f", m}'; }
stat_of() { # FILE KIND -> count of KIND events in the file (0 if none)
  perf report --stats -i "$1" 2>/dev/null | awk -v k="$2" '$1==k && $2=="events:" {print $3; exit}' | grep . || echo 0
}

: >"$WORK/bare" ; : >"$WORK/ruperf" ; : >"$WORK/perf"
RLOST=0; PLOST=0; RSAMP=0; PSAMP=0
for i in $(seq "$ROUNDS"); do
  wall "$HOT" -n "$CALLS" >>"$WORK/bare"
  wall "$RUPERF" record -F 10000 -g -o "$WORK/r.data" "$HOT" -n "$CALLS" >>"$WORK/ruperf"
  RLOST=$((RLOST + $(stat_of "$WORK/r.data" LOST))); RSAMP=$((RSAMP + $(stat_of "$WORK/r.data" SAMPLE)))
  wall perf record -F 10000 -g -o "$WORK/p.data" "$HOT" -n "$CALLS" >>"$WORK/perf"
  PLOST=$((PLOST + $(stat_of "$WORK/p.data" LOST))); PSAMP=$((PSAMP + $(stat_of "$WORK/p.data" SAMPLE)))
done
B=$(median <"$WORK/bare"); R=$(median <"$WORK/ruperf"); P=$(median <"$WORK/perf")
printf 'CPU-bound workload (%s calls, %s rounds, medians)\n' "$CALLS" "$ROUNDS"
printf '  bare                          %8.3f s\n' "$B"
printf '  ruperf record -F 10000 -g     %8.3f s  x%.3f of bare  %6d samples/run  %d lost in total\n' \
  "$R" "$(echo "$R / $B" | bc -l)" $((RSAMP / ROUNDS)) "$RLOST"
printf '  perf record -F 10000 -g       %8.3f s  x%.3f of bare  %6d samples/run  %d lost in total\n' \
  "$P" "$(echo "$P / $B" | bc -l)" $((PSAMP / ROUNDS)) "$PLOST"

: >"$WORK/floor"
cc -O2 -o "$WORK/sample_floor" "$HERE/benches/support/sample_floor.c"
for i in $(seq "$ROUNDS"); do
  "$WORK/sample_floor" 800000000 | sed -n 's/.*ratio \([0-9.]*\).*/\1/p' >>"$WORK/floor"
done
printf '  floor: self-sampling at 10 kHz, no recorder      x%.3f of bare (median of %s)\n' \
  "$(median <"$WORK/floor")" "$ROUNDS"

: >"$WORK/rt" ; : >"$WORK/pt"
for i in $(seq "$ROUNDS"); do
  wall "$RUPERF" record -o "$WORK/rt.data" true >>"$WORK/rt"
  wall perf record -o "$WORK/pt.data" true >>"$WORK/pt"
done
RT=$(median <"$WORK/rt"); PT=$(median <"$WORK/pt")
printf 'record true (%s rounds, medians)\n' "$ROUNDS"
printf '  ruperf record true            %8.4f s\n' "$RT"
printf '  perf record true              %8.4f s\n' "$PT"
printf '  ratio ruperf/perf             %8.4f  (target <= 0.05)\n' "$(echo "$RT / $PT" | bc -l)"
