#!/usr/bin/env python3
"""Writes link/startup.order: the functions a typical `ruperf stat` run executes.

build.rs hands the file to the linker (lld's --symbol-ordering-file), which places these
functions next to each other at the start of .text. A short `stat` run then maps a few
contiguous stretches of code instead of touching pages spread over the whole 2.5 MB text,
each of which costs a page fault and the mapping of its 64 KiB neighbourhood.

The file lists mangled symbol names. They stay valid while the compiler and the dependency
versions do; after an upgrade, names that no longer exist are ignored by the linker, the
layout degrades gracefully, and benches/stat_startup.py reports how many still match.
Run this script again then.

Usage: link/startup_order.py   (needs valgrind; builds the release binary first)
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "ruperf")
ORDER = os.path.join(ROOT, "link", "startup.order")

# The runs whose code is laid out together: the benchmarked one first, then the other common
# stat forms (perf's default events in a table, JSON, repeats, intervals, a group).
RUNS = [
    ["stat", "-e", "task-clock", "-x,", "-o", "/dev/null", "true"],
    ["stat", "-o", "/dev/null", "true"],
    ["stat", "-j", "-o", "/dev/null", "-e", "task-clock,page-faults", "true"],
    ["stat", "-r", "3", "-o", "/dev/null", "-e", "task-clock", "true"],
    ["stat", "-I", "20", "--interval-count", "2", "-o", "/dev/null", "-e", "cpu-clock", "sleep", "0.05"],
    ["stat", "-o", "/dev/null", "-e", "{task-clock,context-switches}", "sh", "-c", "true"],
]


def executed_functions(callgrind_out, objname):
    """Mangled names of the functions executed inside `objname`, in first-seen order."""
    objects, names = {}, {}
    current_obj = None
    seen, order = set(), []
    with open(callgrind_out) as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
            if m:
                kind, ident, name = m.groups()
                if name:
                    objects[ident] = name
                if kind == "ob":
                    current_obj = objects.get(ident)
                continue
            m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
            if not m:
                continue
            kind, ident, name = m.groups()
            if name:
                names[ident] = name
            if kind != "fn" or current_obj is None or os.path.basename(current_obj) != objname:
                continue
            sym = names.get(ident, "").split("'")[0]  # callgrind marks recursion as name'2
            if sym and sym not in seen:
                seen.add(sym)
                order.append(sym)
    return order


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    defined = set()
    nm = subprocess.run(["nm", "--defined-only", BINARY], capture_output=True, text=True, check=True)
    for line in nm.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            defined.add(parts[2])
    order, seen = [], set()
    with tempfile.TemporaryDirectory() as tmp:
        for i, argv in enumerate(RUNS):
            out = os.path.join(tmp, f"callgrind.{i}")
            subprocess.run(
                ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}", BINARY]
                + argv,
                cwd=tmp,
                capture_output=True,
                check=False,  # --interval-count ends its command with SIGTERM: status 143
            )
            if not os.path.exists(out):
                sys.exit(f"valgrind did not profile ruperf {' '.join(argv)}")
            for sym in executed_functions(out, os.path.basename(BINARY)):
                if sym in defined and sym not in seen:
                    seen.add(sym)
                    order.append(sym)
    if not order:
        sys.exit("no functions found: is valgrind working?")
    with open(ORDER, "w") as f:
        f.write("\n".join(order) + "\n")
    print(f"{ORDER}: {len(order)} functions")


if __name__ == "__main__":
    main()
