#!/usr/bin/env python3
"""`custos bench cedar` of two builds in alternating rounds: the medians and spreads of the
mean, p50 and p99 microseconds per decision each prints, and the ratio of the medians.

usage: bench/inprocess_rounds.py ROUNDS NEW_BINARY BASELINE_BINARY -- BENCH_CEDAR_ARGS...
"""
import re, statistics, subprocess, sys

rounds, new, base = int(sys.argv[1]), sys.argv[2], sys.argv[3]
args = sys.argv[sys.argv.index("--") + 1:]
figures = {new: [], base: []}
for _ in range(rounds):
    for b in (new, base):
        out = subprocess.run([b, "bench", "cedar"] + args, check=True, capture_output=True, text=True).stdout
        m = re.search(r"mean ([\d.]+) us\s+p50 ([\d.]+) us\s+p99 ([\d.]+) us", out)
        figures[b].append(tuple(float(x) for x in m.groups()))
print("bench cedar %s: %d alternating rounds" % (" ".join(args), rounds))
meds = {}
for name, b in (("new", new), ("baseline", base)):
    cols = list(zip(*figures[b]))
    meds[b] = [statistics.median(c) for c in cols]
    print("  %-8s " % name + "  ".join("%s median %.2f us (%.2f-%.2f)" % (k, statistics.median(c), min(c), max(c))
                                     for k, c in zip(("mean", "p50", "p99"), cols)))
print("  new/baseline: mean %.2f, p50 %.2f, p99 %.2f" % tuple(a / b for a, b in zip(meds[new], meds[base])))
