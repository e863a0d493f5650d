#!/usr/bin/env python3
"""Runs a workload written by `custos bench cedar --write DIR` through cedarpy's
is_authorized_batch (the reference Rust engine behind a Python batch call) and prints the
same figures as `custos bench cedar`: decisions/s and mean microseconds per decision.
cedarpy answers a batch at once, so per-request percentiles are not available from it.

usage: bench/cedarpy_batch.py DIR [--chunk N] [--check-with CUSTOS_BINARY]
  --chunk N       requests per batch call (default: one batch of all requests)
  --check-with B  also decide the requests with `B authorize --requests` and require every
                  decision to equal cedarpy's (exit 1 on any difference)
"""
import json, subprocess, sys, time

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
decisions = []
t0 = time.perf_counter()
for i in range(0, len(reqs), chunk):
    for res in cedarpy.is_authorized_batch(reqs[i:i + chunk], policies, entities):
        decisions.append("allow" if str(res.decision) == "Decision.Allow" else "deny")
dt = time.perf_counter() - t0
allow = decisions.count("allow")
n = len(reqs)
print("cedarpy %s is_authorized_batch: policies=%d requests=%d chunk=%d allow=%d"
      % (cedarpy.__version__ if hasattr(cedarpy, "__version__") else "", policies.count(";"), n, chunk, allow))
print("  %.0f decisions/s  mean %.2f us" % (n / dt, dt / n * 1e6))

if "--check-with" in sys.argv:
    binary = sys.argv[sys.argv.index("--check-with") + 1]
    out = subprocess.run([binary, "authorize", "--policies", d + "/policies.cedar", "--entities",
                          d + "/entities.json", "--requests", d + "/requests.jsonl"],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    ours = [json.loads(l)["decision"] for l in out]
    differ = sum(1 for a, b in zip(ours, decisions) if a != b) + abs(len(ours) - len(decisions))
    print("  decisions compared with custos authorize: %d of %d identical" % (len(decisions) - differ, len(decisions)))
    sys.exit(1 if differ else 0)
