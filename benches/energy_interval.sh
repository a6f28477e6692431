#!/usr/bin/env bash
# `ruperf stat -I 1` with RAPL energy from a fake powercap tree: achieved rows per second and
# ruperf's own CPU time as a share of one core. Targets: >= 990 rows/s, < 2% of a core.
# Then the machine's floor for the same loop: benches/support/tick_floor.c, a C program that
# wakes every 1 ms and reads the same three files, run for the same time.
#
# Usage: benches/energy_interval.sh [SECONDS]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
cargo build --release --quiet
cc -O2 -o target/bench-launch benches/support/launch.c
cc -O2 -o target/bench-tick-floor benches/support/tick_floor.c
bin=target/release/ruperf
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# One package with a core and a dram zone, as the intel_rapl driver lays them out.
mkdir -p "$root/sys/devices/system/cpu/cpu0/topology"
echo 0 > "$root/sys/devices/system/cpu/online"
echo 0 > "$root/sys/devices/system/cpu/cpu0/topology/physical_package_id"
echo 0 > "$root/sys/devices/system/cpu/cpu0/topology/die_id"
for z in "intel-rapl:0 package-0" "intel-rapl:0:0 core" "intel-rapl:0:1 dram"; do
    set -- $z
    d="$root/sys/class/powercap/$1"
    mkdir -p "$d"
    echo "$2" > "$d/name"
    echo 1000000 > "$d/energy_uj"
    echo 262143328850 > "$d/max_energy_range_uj"
done
out=$(mktemp)
# The launcher prints wall ns, CPU us (ruperf + the idle sleep), peak RSS KiB, exit status.
read -r ns cpu_us rss code < <(target/bench-launch "$bin" --sysroot "$root" stat -I 1 -x, -o "$out" \
    -e rapl -- sleep "$secs")
rows=$(grep -c ',rapl/pkg:0,' "$out" || true)
rm -f "$out"
awk -v ns="$ns" -v cpu="$cpu_us" -v rows="$rows" -v rss="$rss" 'BEGIN {
    wall = ns / 1e9
    printf "ruperf stat -I 1 -e rapl (fake powercap): %d rows in %.3f s = %.1f rows/s (target >= 990)\n", rows, wall, rows / wall
    printf "ruperf CPU: %.3f s = %.2f%% of one core (target < 2%%), peak RSS %.1f MiB\n", cpu / 1e6, 100 * cpu / 1e6 / wall, rss / 1024
}'
printf 'floor, a C loop doing the same wake-ups and reads: '
target/bench-tick-floor "$secs" "$root"/sys/class/powercap/*/energy_uj
