#!/usr/bin/env python3
"""Dev-time differential fuzzing of the Cedar engine against cedarpy (the reference Rust engine).

Not run by the test suite (it needs cedarpy from PyPI). Each round writes a random entity
store, a policy set of random `permit`/`forbid` policies whose conditions are random Cedar
expressions (arithmetic at the overflow edges, strings and `like`, sets, records, `has`,
`in`, `is`, tags, the ip, decimal, datetime and duration extensions, and now and then an
operand of the wrong type so that evaluation errors happen), and random requests; then both
engines decide every request, and the decision, the determining policies and the policies that
failed to evaluate must be the same. A difference is printed with everything needed to replay
it, and the files are kept.

    python3 scripts/differential_fuzz.py [--rounds 200] [--seed 1] [--policies 30] [--requests 40]
                                         [--custos .build/release/custos] [--keep DIR]

Policies are named by position (policy0, policy1, ...) on both sides: no @id annotations.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile

import cedarpy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

USERS = ["u%d" % i for i in range(4)]
ROLES = ["r%d" % i for i in range(3)]
DATASETS = ["d%d" % i for i in range(4)]
STRINGS = ["", "a", "ab", "abc", "a*c", "é", "e\u0301", "*", "\\*", "x y", "EU", "eu-central-1", "\u0000"]
LONGS = [0, 1, -1, 2, 7, 100, 9223372036854775807, -9223372036854775807, -9223372036854775808, 4611686018427387904,
         3037000500]
# Valid arguments of the extension constructors, then invalid ones: an invalid literal argument
# refuses the whole policy set at parse time (on both sides, or it should), so they are rare.
IPS = (["10.0.0.1", "10.0.0.0/8", "192.168.1.0/24", "127.0.0.1", "::1", "2001:db8::/32", "0.0.0.0/0", "255.255.255.255",
        "::ffff:10.0.0.1", "::1/128", "0:0:0:0:0:0:0:1", "ff02::1", "224.0.0.1", "::", "1.2.3.4/0"],
       ["10.0.0.1/33", "1.2.3", "010.0.0.1", "10.0.0.1/08"])
DECIMALS = (["0.0", "1.5", "-1.5", "922337203685477.5807", "-922337203685477.5808", "0.0001", "12.34", "-0.0"],
            ["1.23456", "922337203685477.5808", "1.", ".5", "+1.0"])
DATETIMES = (["2024-01-01", "2024-01-01T00:00:00Z", "2024-02-29T12:30:00.123Z", "1970-01-01", "2024-06-01T10:00:00+0200",
              "0000-01-01", "9999-12-31T23:59:59.999Z", "2024-01-01T00:00:00-2359"],
             ["2024-02-30", "2024-13-01", "2024-01-01T23:59:60Z", "2023-02-29", "2024-01-01T00:00:00.1Z", "2024-01-01T24:00:00Z"])
DURATIONS = (["0ms", "1d", "2h30m", "-1d", "1d2h3m4s5ms", "100ms", "24h", "9223372036854775807ms", "-9223372036854775808ms",
              "106751991167d"],
             ["1d1d", "", "1h-1m", "1m1h", "1.5h"])


def cedar_string(s):
    """A Cedar string literal: Cedar's escapes are Rust's (\\u{HHHH}, not JSON's \\uHHHH)."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\u{%x}" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


class Gen:
    def __init__(self, rnd):
        self.r = rnd

    def choice(self, xs):
        return self.r.choice(xs)

    def ext(self, lists):
        valid, invalid = lists
        return self.r.choice(invalid if self.r.random() < 0.005 else valid)

    def lit_string(self):
        return cedar_string(self.choice(STRINGS))

    def long_lit(self):
        v = self.choice(LONGS)
        return "(%d)" % v if v < 0 else str(v)

    def entity_lit(self):
        t = self.choice(["User", "Role", "Dataset"])
        ids = {"User": USERS, "Role": ROLES, "Dataset": DATASETS}[t]
        return '%s::"%s"' % (t, self.choice(ids + ["nobody"]))

    def wrong(self, want, d):
        # Occasionally an operand of another type: an evaluation error, or not, depending on
        # short-circuiting; both engines must agree on which.
        other = self.choice([t for t in ["Long", "Bool", "String", "Set", "Entity"] if t != want])
        return self.expr(other, d)

    def expr(self, ty, d=0):
        r = self.r.random()
        if d > 3:
            return self.leaf(ty)
        if r < 0.04:
            return self.wrong(ty, d + 1)
        if r < 0.12:
            return "(if %s then %s else %s)" % (self.expr("Bool", d + 1), self.expr(ty, d + 1), self.expr(ty, d + 1))
        return getattr(self, "g_" + ty)(d)

    def leaf(self, ty):
        return {"Long": self.long_lit, "Bool": lambda: self.choice(["true", "false"]), "String": self.lit_string,
                "Set": lambda: "[]", "Entity": self.entity_lit, "Record": lambda: "{}"}[ty]()

    def attr(self, ty):
        base = self.choice(["principal", "resource", "context"])
        names = {"Long": ["n", "age", "level"], "Bool": ["flag", "ok"], "String": ["name", "region"],
                 "Set": ["tags", "nums", "owners"], "Entity": ["owner", "boss"], "Record": ["rec"]}[ty]
        a = self.choice(names + ["missing"])
        if self.r.random() < 0.5:
            return "%s.%s" % (base, a)
        return '%s["%s"]' % (base, a)

    def g_Long(self, d):
        k = self.r.randrange(7)
        if k == 0: return self.long_lit()
        if k == 1: return self.attr("Long")
        if k == 2: return "(%s %s %s)" % (self.expr("Long", d + 1), self.choice(["+", "-", "*"]), self.expr("Long", d + 1))
        if k == 3: return "(-%s)" % self.expr("Long", d + 1)
        if k == 4: return "%s.rec.x" % self.choice(["principal", "context"])
        if k == 5: return "%s.getTag(%s)" % (self.choice(["principal", "resource"]), self.choice(['"level"', '"n"', '"zz"']))
        return self.long_lit()

    def g_Bool(self, d):
        k = self.r.randrange(22)
        e = lambda t: self.expr(t, d + 1)
        if k == 0: return self.choice(["true", "false"])
        if k == 1: return "(%s %s %s)" % (e("Long"), self.choice(["<", "<=", ">", ">=", "==", "!="]), e("Long"))
        if k == 2: return "(%s %s %s)" % (e("Bool"), self.choice(["&&", "||"]), e("Bool"))
        if k == 3: return "(!%s)" % e("Bool")
        if k == 4: return "(%s %s %s)" % (e("String"), self.choice(["==", "!="]), e("String"))
        if k == 5: return '(%s like "%s")' % (e("String"), self.choice(["*", "a*", "*c", "a\\*c", "", "é", "**", "a*b*c", "e\u0301*",
                                                                          "\\u{e9}", "*\\**", "x y"]))
        if k == 6: return "(%s has %s)" % (self.choice(["principal", "resource", "context", "principal.rec", "context.rec"]),
                                          self.choice(["n", "name", "rec", "x", "missing", '"tags"']))
        if k == 7: return "(%s in %s)" % (self.choice(["principal", "resource", e("Entity")]),
                                         self.choice([e("Entity"), "[%s, %s]" % (e("Entity"), e("Entity")), e("Set")]))
        if k == 8: return "(%s is %s)" % (self.choice(["principal", "resource", e("Entity")]), self.choice(["User", "Role", "Dataset"]))
        if k == 9: return "%s.contains(%s)" % (e("Set"), self.expr(self.choice(["Long", "String", "Entity"]), d + 1))
        if k == 10: return "%s.%s(%s)" % (e("Set"), self.choice(["containsAll", "containsAny"]), e("Set"))
        if k == 11: return "%s.isEmpty()" % e("Set")
        if k == 12: return "(%s == %s)" % (e("Entity"), e("Entity"))
        if k == 13:
            return 'ip("%s").%s' % (self.ext(IPS), self.choice(["isIpv4()", "isIpv6()", "isLoopback()", "isMulticast()",
                                                                   'isInRange(ip("%s"))' % self.ext(IPS)]))
        if k == 14:
            return 'decimal("%s").%s(decimal("%s"))' % (self.ext(DECIMALS), self.choice(["lessThan", "lessThanOrEqual",
                                                                                             "greaterThan", "greaterThanOrEqual"]), self.ext(DECIMALS))
        if k == 15:
            return '(datetime("%s") %s datetime("%s"))' % (self.ext(DATETIMES), self.choice(["<", "<=", ">", "==", "!="]), self.ext(DATETIMES))
        if k == 16:
            return '(duration("%s") %s duration("%s"))' % (self.ext(DURATIONS), self.choice(["<", ">=", "=="]), self.ext(DURATIONS))
        if k == 17:
            return '(datetime("%s").offset(duration("%s")) %s datetime("%s"))' % (
                self.ext(DATETIMES), self.ext(DURATIONS), self.choice(["<", ">", "=="]), self.ext(DATETIMES))
        if k == 18:
            if self.r.random() < 0.5:
                return '(datetime("%s").toDate() == datetime("%s"))' % (self.ext(DATETIMES), self.ext(DATETIMES))
            return '(datetime("%s").toTime() %s duration("%s"))' % (self.ext(DATETIMES), self.choice(["<", "=="]), self.ext(DURATIONS))
        if k == 19: return "%s.hasTag(%s)" % (self.choice(["principal", "resource"]), self.choice(['"level"', '"n"', '"zz"']))
        if k == 20: return self.attr("Bool")
        return "(%s == %s)" % (e(self.choice(["Set", "Long", "String"])), e(self.choice(["Set", "Long", "String"])))

    def g_String(self, d):
        return self.choice([self.lit_string(), self.attr("String"), self.lit_string()])

    def g_Set(self, d):
        k = self.r.randrange(4)
        if k == 0: return self.attr("Set")
        t = self.choice(["Long", "String", "Entity", "Bool"])
        return "[%s]" % ", ".join(self.expr(t, d + 1) for _ in range(self.r.randrange(4)))

    def g_Entity(self, d):
        return self.choice([self.entity_lit(), "principal", "resource", self.attr("Entity")])

    def g_Record(self, d):
        return "{x: %s, y: %s}" % (self.expr("Long", d + 1), self.expr("String", d + 1))

    def policy(self):
        eff = self.choice(["permit", "permit", "forbid"])
        scope = [self.choice(["principal", "principal", 'principal == User::"%s"' % self.choice(USERS),
                              'principal in Role::"%s"' % self.choice(ROLES), "principal is User"]),
                 self.choice(["action", 'action == Action::"read"', 'action in [Action::"read", Action::"write"]']),
                 self.choice(["resource", "resource", 'resource == Dataset::"%s"' % self.choice(DATASETS), "resource is Dataset"])]
        conds = ""
        for _ in range(self.r.choice([0, 1, 1, 2])):
            conds += " %s { %s }" % (self.choice(["when", "when", "unless"]), self.expr("Bool"))
        return "%s(%s)%s;" % (eff, ", ".join(scope), conds)

    def value(self, depth=0):
        k = self.r.randrange(8 if depth < 2 else 4)
        if k == 0: return self.choice(LONGS)
        if k == 1: return self.choice(STRINGS)
        if k == 2: return self.r.random() < 0.5
        if k == 3: return {"__entity": {"type": "User", "id": self.choice(USERS)}}
        if k == 4: return [self.value(depth + 1) for _ in range(self.r.randrange(4))]
        if k == 5: return {"x": self.choice(LONGS), "y": self.choice(STRINGS)}
        if k == 6: return {"__extn": {"fn": "ip", "arg": self.ext(IPS)}}
        return [self.choice(LONGS) for _ in range(self.r.randrange(3))]

    def attrs(self):
        a = {}
        for name, make in [("n", lambda: self.choice(LONGS)), ("age", lambda: self.choice(LONGS)),
                           ("level", lambda: self.choice(LONGS)), ("flag", lambda: self.r.random() < 0.5),
                           ("ok", lambda: self.value()), ("name", lambda: self.choice(STRINGS)),
                           ("region", lambda: self.choice(STRINGS)), ("tags", lambda: [self.choice(STRINGS) for _ in range(self.r.randrange(3))]),
                           ("nums", lambda: [self.choice(LONGS) for _ in range(self.r.randrange(3))]),
                           ("owners", lambda: [{"__entity": {"type": "User", "id": self.choice(USERS)}} for _ in range(self.r.randrange(3))]),
                           ("owner", lambda: {"__entity": {"type": "User", "id": self.choice(USERS + ["ghost"])}}),
                           ("boss", lambda: {"__entity": {"type": "Role", "id": self.choice(ROLES)}}),
                           ("rec", lambda: {"x": self.choice(LONGS), "y": self.choice(STRINGS)})]:
            if self.r.random() < 0.7:
                a[name] = make()
        return a

    def entities(self):
        out = []
        for r in ROLES:
            parents = [{"type": "Role", "id": p} for p in ROLES if p > r and self.r.random() < 0.4]
            out.append({"uid": {"type": "Role", "id": r}, "attrs": self.attrs(), "parents": parents})
        for u in USERS:
            parents = [{"type": "Role", "id": p} for p in ROLES if self.r.random() < 0.4]
            tags = {k: self.choice(LONGS) for k in ["level", "n"] if self.r.random() < 0.5}
            out.append({"uid": {"type": "User", "id": u}, "attrs": self.attrs(), "parents": parents, "tags": tags})
        for d in DATASETS:
            tags = {k: self.choice(LONGS) for k in ["level"] if self.r.random() < 0.5}
            out.append({"uid": {"type": "Dataset", "id": d}, "attrs": self.attrs(), "parents": [], "tags": tags})
        return out

    def request(self):
        return {"principal": {"type": "User", "id": self.choice(USERS + ["nobody"])},
                "action": {"type": "Action", "id": self.choice(["read", "write"])},
                "resource": {"type": "Dataset", "id": self.choice(DATASETS)},
                "context": self.attrs()}


def cedarpy_side(policies, entities, requests):
    reqs = [{"principal": 'User::"%s"' % q["principal"]["id"], "action": 'Action::"%s"' % q["action"]["id"],
             "resource": 'Dataset::"%s"' % q["resource"]["id"], "context": q["context"]} for q in requests]
    out = []
    for res in cedarpy.is_authorized_batch(reqs, policies, entities):
        diag = res.diagnostics
        if res.decision == cedarpy.Decision.NoDecision:  # the policies or entities do not parse
            raise ValueError("; ".join(str(e) for e in diag.errors or []))
        # "error while evaluating policy `policy3`: ..."
        errors = sorted(set(m.group(1) if (m := re.search(r"policy `([^`]+)`", str(e))) else str(e) for e in (diag.errors or [])))
        out.append({"decision": "allow" if res.allowed else "deny", "reasons": sorted(diag.reasons or []), "errors": errors})
    return out


def custos_side(binary, d):
    p = subprocess.run([binary, "authorize", "--policies", d + "/p.cedar", "--entities", d + "/e.json",
                        "--requests", d + "/r.jsonl"], capture_output=True, text=True)
    if p.returncode not in (0,):
        return None, p.stderr
    out = []
    for line in p.stdout.splitlines():
        v = json.loads(line)
        out.append({"decision": v["decision"], "reasons": sorted(v.get("reasons", [])), "errors": sorted(v.get("errors", []))})
    return out, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--policies", type=int, default=30)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--custos", default=os.path.join(REPO, ".build", "release", "custos"))
    ap.add_argument("--keep", default=None, help="folder for the files of rounds that differ (default: a temporary one)")
    a = ap.parse_args()
    keep = a.keep or tempfile.mkdtemp(prefix="custos-difffuzz-")
    rnd = random.Random(a.seed)
    g = Gen(rnd)
    compared = differing = parse_refusals = allows = with_errors = 0
    for round_no in range(a.rounds):
        policies = "\n".join(g.policy() for _ in range(a.policies)) + "\n"
        entities = g.entities()
        requests = [g.request() for _ in range(a.requests)]
        d = tempfile.mkdtemp(prefix="r%d-" % round_no, dir=keep)
        open(d + "/p.cedar", "w").write(policies)
        json.dump(entities, open(d + "/e.json", "w"), ensure_ascii=False)
        with open(d + "/r.jsonl", "w") as f:
            for q in requests:
                f.write(json.dumps(q, ensure_ascii=False) + "\n")
        try:
            ref = cedarpy_side(policies, json.dumps(entities, ensure_ascii=False), requests)
        except Exception as e:  # the reference refuses the set (a parse error): custos must too
            ours, err = custos_side(a.custos, d)
            if ours is not None:
                print("round %d: cedarpy refused (%s) but custos decided; files in %s" % (round_no, str(e)[:200], d))
                differing += 1
            else:
                parse_refusals += 1
                subprocess.run(["rm", "-rf", d])
            continue
        ours, err = custos_side(a.custos, d)
        if ours is None:
            print("round %d: custos refused what cedarpy decided: %s; files in %s" % (round_no, err.strip()[:300], d))
            differing += 1
            continue
        bad = [i for i, (x, y) in enumerate(zip(ours, ref)) if x != y]
        compared += len(ref)
        allows += sum(1 for x in ref if x["decision"] == "allow")
        with_errors += sum(1 for x in ref if x["errors"])
        if bad or len(ours) != len(ref):
            differing += 1
            i = bad[0] if bad else -1
            print("round %d: %d of %d requests differ; first, line %d: custos %s, cedarpy %s; files in %s"
                  % (round_no, len(bad), len(ref), i + 1, ours[i] if bad else len(ours), ref[i] if bad else len(ref), d))
        else:
            subprocess.run(["rm", "-rf", d])
    print("rounds %d, requests compared %d (%d allowed, %d with policies that failed to evaluate), rounds that differ %d, "
          "policy sets both refused %d (seed %d)" % (a.rounds, compared, allows, with_errors, differing, parse_refusals, a.seed))
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
