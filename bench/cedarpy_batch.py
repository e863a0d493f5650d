#!/usr/bin/env python3
"""Runs a workload written by `custos bench cedar --write DIR` through cedarpy's
is_authorized_batch (the reference Rust engine behind a Python batch call) and prints the
same figures as `custos bench cedar`: decisions/s and mean microseconds per decision.
cedarpy answers a batch at once, so per-request percentiles are not available from it.

usage: bench/cedarpy_batch.py DIR [--chunk N]   (default: one batch of all requests)
"""
import json, sys, time

try:
    import cedarpy
except ImportError:
    print("cedarpy is not installed (pip install cedarpy): reference figures skipped")
    sys.exit(0)

d = sys.argv[1]
chunk = int(sys.argv[sys.argv.index("--chunk") + 1]) if "--chunk" in sys.argv else 0
policies = open(d + "/policies.cedar").read()
entities = json.load(open(d + "/entities.json"))
uid = lambda u: '%s::"%s"' % (u["type"], u["id"])
reqs = []
for line in open(d + "/requests.jsonl"):
    r = json.loads(line)
    reqs.append({"principal": uid(r["principal"]), "action": uid(r["action"]),
                 "resource": uid(r["resource"]), "context": r["context"]})
# By default all requests go in one batch call, cedarpy's best case: its batch API takes the
# entities with every call, so smaller chunks would pay for parsing them again each time.
chunk = chunk or len(reqs)
cedarpy.is_authorized_batch(reqs[:100], policies, entities)
allow = 0
t0 = time.perf_counter()
for i in range(0, len(reqs), chunk):
    for res in cedarpy.is_authorized_batch(reqs[i:i + chunk], policies, entities):
        allow += str(res.decision) == "Decision.Allow"
dt = time.perf_counter() - t0
n = len(reqs)
print("cedarpy %s is_authorized_batch: policies=%d requests=%d chunk=%d allow=%d"
      % (cedarpy.__version__ if hasattr(cedarpy, "__version__") else "", policies.count(";"), n, chunk, allow))
print("  %.0f decisions/s  mean %.2f us" % (n / dt, dt / n * 1e6))
