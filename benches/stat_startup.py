#!/usr/bin/env python3
"""Start-up cost of `stat`: ruperf against Debian's perf, measured in the same run.

Runs `ruperf stat -e task-clock -x, -o /dev/null true` and the same perf command alternately
(default 30 runs each), and prints median wall time, median CPU time and median peak RSS of
each, with the ratios ruperf/perf. Targets: wall <= 0.25x perf, peak RSS <= 0.5x perf.
Two references run in the same rotation: `bare` is `true` alone, and `floor` is
benches/support/stat_floor.c, a C program that counts `true` the way ruperf does with nothing
else (no option parsing, event names or messages), the least such a run can cost here.

Usage: benches/stat_startup.py [RUNS]   (builds the release binary first)
"""
import os
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


LAUNCH = os.path.join(ROOT, "target", "bench-launch")
FLOOR = os.path.join(ROOT, "target", "bench-stat-floor")


def build_launcher():
    support = os.path.join(ROOT, "benches", "support")
    subprocess.run(["cc", "-O2", "-o", LAUNCH, os.path.join(support, "launch.c")], check=True)
    subprocess.run(["cc", "-O2", "-o", FLOOR, os.path.join(support, "stat_floor.c")], check=True)


def measure(argv):
    """Wall seconds, CPU seconds and peak RSS (KiB) of one run, through the small launcher."""
    out = subprocess.run([LAUNCH] + argv, capture_output=True, text=True, check=True).stdout.split()
    ns, cpu_us, rss, code = (int(x) for x in out)
    if code != 0:
        sys.exit(f"{argv} failed with status {code}")
    return ns / 1e9, cpu_us / 1e6, rss


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    build_launcher()
    ruperf = os.path.join(ROOT, "target", "release", "ruperf")
    perf = shutil.which("perf")
    if perf is None:
        sys.exit("Debian's perf is not installed: apt-get install linux-perf")
    tail = ["stat", "-e", "task-clock", "-x,", "-o", "/dev/null", "true"]
    cmds = {
        "ruperf": [ruperf] + tail,
        "perf": [perf] + tail,
        "bare": ["/bin/true"],
        "floor": [FLOOR],
    }
    results = {k: [] for k in cmds}
    for name in cmds:  # warm caches once
        measure(cmds[name])
    for _ in range(runs):
        for name, argv in cmds.items():
            results[name].append(measure(argv))
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in results.items()}
    print(f"{'':8} {'wall ms':>9} {'cpu ms':>9} {'peak RSS MiB':>13}   ({runs} runs each, medians)")
    for k, (w, c, r) in med.items():
        print(f"{k:8} {w*1e3:9.2f} {c*1e3:9.2f} {r/1024:13.2f}")
    rw = med["ruperf"][0] / med["perf"][0]
    rr = med["ruperf"][2] / med["perf"][2]
    rc = med["ruperf"][1] / med["perf"][1] if med["perf"][1] else float("nan")
    print(f"ratio ruperf/perf: wall {rw:.3f} (target <= 0.25), cpu {rc:.3f}, peak RSS {rr:.3f} (target <= 0.5)")
    print(f"ratio floor/perf: wall {med['floor'][0] / med['perf'][0]:.3f}")


if __name__ == "__main__":
    main()
