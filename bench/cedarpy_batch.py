#!/usr/bin/env python3
"""Runs a workload written by `custos bench cedar --write DIR` through cedarpy's
is_authorized_batch (the reference Rust engine behind a Python batch call) and prints the
same figures as `custos bench cedar`: decisions/s and mean microseconds per decision.
cedarpy answers a batch at once, so per-request percentiles are not available from it.

usage: bench/cedarpy_batch.py DIR [--chunk N] [--check-with CUSTOS_BINARY [--whole-process R [--baseline B0]]]
  --chunk N          requests per batch call (default: one batch of all requests)
  --check-with B     also decide the requests with `B authorize --requests` and require every
                     decision (and, when every policy has an @id, every reason) to equal
                     cedarpy's (exit 1 on any difference)
  --whole-process R  with --check-with: time both engines as whole processes, R alternating
                     rounds: `B authorize --requests` against a fresh Python process that
                     imports cedarpy, reads the same files, decides them in one batch and
                     writes one answer line per request (this script with --decide). Prints
                     each round, then the medians, the spread (min-max) and the speed-up.
  --baseline B0      with --whole-process: also time `B0 authorize --requests` (an earlier
                     build) in the same rounds, its decisions compared too
  --decide           (used by --whole-process) decide and print {"decision","reasons"} lines
"""
import json, os, re, resource, statistics, subprocess, sys, time

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
# cedarpy names policies by position (policy0, policy1, ...); custos by @id. When every
# policy has one, reasons are compared through this map.
ids = re.findall(r'@id\("([^"\\]*)"\)', policies)
by_position = {"policy%d" % i: name for i, name in enumerate(ids)} if len(ids) == policies.count(";") else None

if "--decide" in sys.argv:
    out = []
    for res in cedarpy.is_authorized_batch(reqs, policies, entities):
        out.append(json.dumps({"decision": "allow" if str(res.decision) == "Decision.Allow" else "deny",
                               "reasons": sorted(res.diagnostics.reasons)}))
    sys.stdout.write("\n".join(out) + "\n")
    sys.exit(0)

# By default all requests go in one batch call, cedarpy's best case: its batch API takes the
# entities with every call, so smaller chunks would pay for parsing them again each time.
chunk = chunk or len(reqs)
cedarpy.is_authorized_batch(reqs[:100], policies, entities)
results = []
t0 = time.perf_counter()
for i in range(0, len(reqs), chunk):
    for res in cedarpy.is_authorized_batch(reqs[i:i + chunk], policies, entities):
        results.append(("allow" if str(res.decision) == "Decision.Allow" else "deny", res.diagnostics.reasons))
dt = time.perf_counter() - t0
decisions = [r[0] for r in results]
allow = decisions.count("allow")
n = len(reqs)
print("cedarpy %s is_authorized_batch: policies=%d requests=%d chunk=%d allow=%d"
      % (cedarpy.__version__ if hasattr(cedarpy, "__version__") else "", policies.count(";"), n, chunk, allow))
print("  %.0f decisions/s  mean %.2f us" % (n / dt, dt / n * 1e6))

if "--check-with" not in sys.argv:
    sys.exit(0)
binary = sys.argv[sys.argv.index("--check-with") + 1]
custos_cmd = [binary, "authorize", "--policies", d + "/policies.cedar", "--entities",
              d + "/entities.json", "--requests", d + "/requests.jsonl"]
out = subprocess.run(custos_cmd, check=True, capture_output=True, text=True).stdout.splitlines()
ours = [json.loads(l) for l in out]
differ = abs(len(ours) - len(decisions))
for a, (decision, reasons) in zip(ours, results):
    if a["decision"] != decision or (by_position and sorted(a["reasons"]) != sorted(by_position[r] for r in reasons)):
        differ += 1
what = "decisions and reasons" if by_position else "decisions"
print("  %s compared with custos authorize: %d of %d identical" % (what, len(decisions) - differ, len(decisions)))
if differ:
    sys.exit(1)

if "--whole-process" in sys.argv:
    rounds = int(sys.argv[sys.argv.index("--whole-process") + 1])
    cedarpy_cmd = [sys.executable, os.path.abspath(__file__), d, "--decide"]
    base_cmd = None
    if "--baseline" in sys.argv:
        base_cmd = [sys.argv[sys.argv.index("--baseline") + 1]] + custos_cmd[1:]
    ct, pt, bt, ratios = [], [], [], []
    # CPU seconds (user + system) of each process as well as wall time: on a machine shared
    # with other work the CPU time moves less.
    cc, pc, bc = [], [], []
    def cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime
    def timed(cmd):
        c0, t0 = cpu(), time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True).stdout
        return out, time.perf_counter() - t0, cpu() - c0
    print("  whole processes (read files, decide %d requests, write answers), %d alternating rounds:" % (n, rounds))
    for k in range(rounds):
        a, wa, ca = timed(custos_cmd)
        b, wb, cb = timed(cedarpy_cmd)
        mine = [json.loads(l)["decision"] for l in a.splitlines()]
        theirs = [json.loads(l)["decision"] for l in b.splitlines()]
        base = mine
        if base_cmd:
            c, wc, ccpu = timed(base_cmd)
            bt.append(wc); bc.append(ccpu)
            base = [json.loads(l)["decision"] for l in c.splitlines()]
        if mine != theirs or base != mine or len(mine) != n:
            print("  round %d: decisions differ" % (k + 1))
            sys.exit(1)
        ct.append(wa); pt.append(wb); ratios.append(wb / wa); cc.append(ca); pc.append(cb)
        print("    round %d: custos %.3f s (cpu %.3f s)  cedarpy %.3f s (cpu %.3f s)  %.1fx (cpu %.1fx)%s"
              % (k + 1, wa, ca, wb, cb, wb / wa, cb / ca,
                 "  baseline %.3f s (cpu %.3f s)" % (bt[-1], bc[-1]) if base_cmd else ""))
    med = lambda xs: statistics.median(xs)
    def line(name, wall, cpus):
        print("  %-30s wall median %.3f s (%.2f us/decision), spread %.3f-%.3f s; cpu median %.3f s, spread %.3f-%.3f s"
              % (name, med(wall), med(wall) / n * 1e6, min(wall), max(wall), med(cpus), min(cpus), max(cpus)))
    line("custos authorize --requests:", ct, cc)
    line("cedarpy whole process:", pt, pc)
    if base_cmd:
        line("baseline authorize --requests:", bt, bc)
        print("  custos/baseline: wall %.2f, cpu %.2f" % (med(ct) / med(bt), med(cc) / med(bc)))
    cpu_ratios = [b / a for a, b in zip(cc, pc)]
    print("  speed-up over cedarpy: wall median %.1fx, spread %.1f-%.1fx; cpu median %.1fx, spread %.1f-%.1fx; every round's %d decisions identical"
          % (med(ratios), min(ratios), max(ratios), med(cpu_ratios), min(cpu_ratios), max(cpu_ratios), n))
