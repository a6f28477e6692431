#!/usr/bin/env bash
# The Prometheus exporter's cost: `ruperf stat -a -I 1000` on every CPU with perf's default
# events, bare and with `--serve` scraped once a second (a busier scraper than Prometheus's
# usual 15 s), run alternately; prints ruperf's CPU time for both and the difference as a
# share of one core. Target: ≤ 1% of one core.
#
# Usage: benches/openmetrics_overhead.sh [SECONDS] [ROUNDS]   (default 20 s, 3 rounds; medians)
# Needs: cargo, curl, /usr/bin/time.
set -euo pipefail

secs=${1:-20}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${TMPDIR:-/tmp}/ruperf-om-bench
mkdir -p "$work"
cd "$root"
cargo build --release --quiet
ruperf="${CARGO_TARGET_DIR:-$root/target}/release/ruperf"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cpu_of() { # CMD... -> user+sys seconds of one run
    /usr/bin/time -f "%U %S" -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || {
        echo "failed: $*" >&2
        cat "$work/stderr.txt" >&2
        exit 1
    }
    awk '{print $1 + $2}' "$work/time.txt"
}
. "$(dirname "$0")/support/timing.sh"

bare=() served=() scrapes=()
for _ in $(seq "$rounds"); do
    bare+=("$(cpu_of "$ruperf" stat -a -I 1000 --interval-count "$secs" -o /dev/null)")
    (
        n=0
        while sleep 1; do
            curl -sf -H 'Accept: application/openmetrics-text;version=1.0.0' \
                "http://127.0.0.1:$port/metrics" -o /dev/null && n=$((n + 1))
            echo "$n" >"$work/scrapes"
        done
    ) &
    scraper=$!
    served+=("$(cpu_of "$ruperf" stat -a -I 1000 --interval-count "$secs" -o /dev/null --serve "127.0.0.1:$port")")
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
    scrapes+=("$(cat "$work/scrapes" 2>/dev/null || echo 0)")
done
b=$(printf '%s\n' "${bare[@]}" | median)
s=$(printf '%s\n' "${served[@]}" | median)
n=$(printf '%s\n' "${scrapes[@]}" | median)
over=$(echo "($s - $b) / $secs * 100" | bc -l)
printf 'stat -a -I 1000, %s s, %s rounds (medians): bare %.3f s CPU | --serve %.3f s CPU (%s scrapes answered) | overhead %.3f%% of one core\n' \
    "$secs" "$rounds" "$b" "$s" "$n" "$over"
awk -v o="$over" 'BEGIN { if (o > 1.0) { print "over the 1% target"; exit 1 } else print "within the 1% target" }'
