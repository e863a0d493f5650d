#!/usr/bin/env python3
"""Checks Tests/CedarTests/Fixtures/evaluation/cases.txt against the reference engine (cedarpy).

Each `EXPR ==> VALUE` line must make `permit(...) when { (EXPR) == (VALUE) };` allow without
errors; each `EXPR ==> error` line must make `permit(...) when { (EXPR) == (EXPR) };` raise an
evaluation error (`==` itself never fails, so only EXPR can; `when { EXPR }` would fail with a
type error for any non-boolean EXPR and prove nothing). Run after editing the table: `python3 scripts/check_eval_cases.py` (needs `pip install cedarpy`).
"""
import json, os, sys
import cedarpy

here = os.path.join(os.path.dirname(__file__), "..", "Tests", "CedarTests", "Fixtures", "evaluation")
entities = json.load(open(os.path.join(here, "entities.json")))
req = json.load(open(os.path.join(here, "request.json")))
uid = lambda u: '%s::"%s"' % (u["type"], u["id"])
request = {"principal": uid(req["principal"]), "action": uid(req["action"]),
           "resource": uid(req["resource"]), "context": req["context"]}

bad = 0
for n, line in enumerate(open(os.path.join(here, "cases.txt")), 1):
    line = line.rstrip("\n")
    if not line.strip() or line.startswith("#"):
        continue
    expr, expected = line.rsplit(" ==> ", 1)
    if expected == "error":
        policy = "permit(principal, action, resource) when { (%s) == (%s) };" % (expr, expr)
    else:
        policy = "permit(principal, action, resource) when { (%s) == (%s) };" % (expr, expected)
    r = cedarpy.is_authorized(request, policy, entities)
    errors = [str(e) for e in r.diagnostics.errors]
    parse_failed = str(r.decision) == "Decision.NoDecision"
    ok = (not parse_failed) and ((bool(errors)) if expected == "error" else (str(r.decision) == "Decision.Allow" and not errors))
    if not ok:
        bad += 1
        print("line %d: %s ==> %s: reference says %s %s" % (n, expr, expected, r.decision, errors[:1]))
print("%d disagreements" % bad)
sys.exit(1 if bad else 0)
