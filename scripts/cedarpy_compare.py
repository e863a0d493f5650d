#!/usr/bin/env python3
"""Dev-time check of the Swift Cedar parser against cedarpy (the reference Rust engine).

Not run by the test suite. Needs Python 3 with cedarpy 4.12 and a Swift toolchain.

1. Corpus: every *.cedar in the integration corpus must be accepted by both, with the same
   number of policies and the same effect, scope, annotations and condition kinds.
2. Mutants: corpus policies with a token deleted, duplicated, swapped or replaced must be
   accepted or rejected by both alike.

The Swift side is a small `parsecheck` program built against this repository's `Cedar` library
in a temporary package (or pass --tool PATH to reuse one). It reads NUL-separated texts on
stdin and prints one line per text: `OK <count> <summary>` or `ERR <message>`.

    python3 scripts/cedarpy_compare.py [--mutants 4000] [--seed 1] [--tool PATH] [--show 40]
"""

import argparse
import glob
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile

import cedarpy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("CEDAR_SHARED") or os.path.join(os.path.dirname(REPO), "shared", "cedar-integration-tests")

PARSECHECK = r'''
import Cedar
import Foundation

func quoted(_ s: String) -> String {
    "\"" + s.unicodeScalars.map { u -> String in
        switch u {
        case "\"": return "\\\""
        case "\\": return "\\\\"
        default: return u.value >= 0x20 && u.value < 0x7F ? String(u) : "\\u{\(String(u.value, radix: 16))}"
        }
    }.joined() + "\""
}
func uid(_ u: EntityUID) -> String { "\(u.type)::" + quoted(u.id.value) }
func so(_ e: EntityOrSlot) -> String {
    switch e { case .entity(let u): uid(u); case .slot(let s): s.rawValue }
}
func sc(_ c: ScopeConstraint) -> String {
    switch c {
    case .any: "All"
    case .eq(let e): "== \(so(e))"
    case .in(let e): "in \(so(e))"
    case .is(let t): "is \(t)"
    case .isIn(let t, let e): "is \(t) in \(so(e))"
    }
}
func summary(_ p: PolicyAST) -> String {
    let a: String
    switch p.action {
    case .any: a = "All"
    case .eq(let u): a = "== \(uid(u))"
    case .in(let u): a = "in \(uid(u))"
    case .inSet(let us) where us.count == 1: a = "in \(uid(us[0]))"
    case .inSet(let us): a = "in [" + us.map(uid).joined(separator: ", ") + "]"
    }
    let ann = p.annotations.map { "@\($0.key)=" + quoted($0.value) }.sorted().joined(separator: ",")
    return "\(p.effect.rawValue)|\(sc(p.principal))|\(a)|\(sc(p.resource))|"
        + p.conditions.map(\.kind.rawValue).joined(separator: ",") + "|" + ann
}

func json(_ s: String) -> String {
    var o = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": o += "\\\""
        case "\\": o += "\\\\"
        default:
            if u.value < 0x20 { o += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16) }
            else { o.unicodeScalars.append(u) }
        }
    }
    return o + "\""
}
func est(_ e: Expr) -> String {
    func bin(_ op: String, _ l: Expr, _ r: Expr) -> String { "{\(json(op)):{\"left\":\(est(l)),\"right\":\(est(r))}}" }
    switch e.kind {
    case .bool(let b): return "{\"Value\":\(b)}"
    case .long(let n): return "{\"Value\":\(n)}"
    case .string(let s): return "{\"Value\":\(json(s))}"
    case .entity(let u): return "{\"Value\":{\"__entity\":{\"type\":\(json(u.type.description)),\"id\":\(json(u.id.value))}}}"
    case .variable(let v): return "{\"Var\":\"\(v.rawValue)\"}"
    case .slot(let s): return "{\"Slot\":\"\(s.rawValue)\"}"
    case .ifThenElse(let c, let t, let f): return "{\"if-then-else\":{\"if\":\(est(c)),\"then\":\(est(t)),\"else\":\(est(f))}}"
    case .and(let l, let r): return bin("&&", l, r)
    case .or(let l, let r): return bin("||", l, r)
    case .not(let a): return "{\"!\":{\"arg\":\(est(a))}}"
    case .negate(let a): return "{\"neg\":{\"arg\":\(est(a))}}"
    case .binary(let op, let l, let r): return bin(op.rawValue, l, r)
    case .isEmpty(let a): return "{\"isEmpty\":{\"arg\":\(est(a))}}"
    case .getAttr(let l, let a): return "{\".\":{\"left\":\(est(l)),\"attr\":\(json(a))}}"
    case .hasAttr(let l, let a): return "{\"has\":{\"left\":\(est(l)),\"attr\":\(json(a))}}"
    case .like(let l, let p):
        let items = p.map { el -> String in
            switch el {
            case .wildcard: return "\"Wildcard\""
            case .literal(let s): var t = ""; t.unicodeScalars.append(contentsOf: s); return "{\"Literal\":\(json(t))}"
            }
        }
        return "{\"like\":{\"left\":\(est(l)),\"pattern\":[\(items.joined(separator: ","))]}}"
    case .isType(let l, let t): return "{\"is\":{\"left\":\(est(l)),\"entity_type\":\(json(t.description))}}"
    case .isTypeIn(let l, let t, let r): return "{\"is\":{\"left\":\(est(l)),\"entity_type\":\(json(t.description)),\"in\":\(est(r))}}"
    case .set(let xs): return "{\"Set\":[\(xs.map(est).joined(separator: ","))]}"
    case .record(let es): return "{\"Record\":{\(es.map { json($0.key) + ":" + est($0.value) }.joined(separator: ","))}}"
    case .call(let n, let xs): return "{\(json(n)):[\(xs.map(est).joined(separator: ","))]}"
    }
}

let data = FileHandle.standardInput.readDataToEndOfFile()
var out = ""
for chunk in data.split(separator: 0, omittingEmptySubsequences: false) {
    let text = String(decoding: chunk, as: UTF8.self)
    do {
        let ps = try CedarParser.parsePolicies(text, file: "in")
        let bodies = "[" + ps.map { "[" + $0.conditions.map { est($0.body) }.joined(separator: ",") + "]" }.joined(separator: ",") + "]"
        out += "OK \(ps.count) " + ps.map(summary).joined(separator: " ;; ") + "\t" + bodies + "\n"
    } catch {
        out += "ERR " + error.description.replacingOccurrences(of: "\n", with: " ") + "\n"
    }
}
FileHandle.standardOutput.write(out.data(using: .utf8)!)
'''


def build_tool():
    work = os.path.join(tempfile.gettempdir(), "custos-parsecheck")
    os.makedirs(os.path.join(work, "Sources", "parsecheck"), exist_ok=True)
    with open(os.path.join(work, "Package.swift"), "w") as f:
        f.write(f'''// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "parsecheck",
    dependencies: [.package(path: "{REPO}")],
    targets: [.executableTarget(name: "parsecheck",
        dependencies: [.product(name: "Cedar", package: "{os.path.basename(REPO)}")])]
)
''')
    with open(os.path.join(work, "Sources", "parsecheck", "main.swift"), "w") as f:
        f.write(PARSECHECK)
    subprocess.run(["swift", "build", "-c", "release", "--package-path", work], check=True)
    return os.path.join(work, ".build", "release", "parsecheck")


def run_swift(tool, texts):
    data = b"\0".join(t.encode("utf-8") for t in texts)
    out = subprocess.run([tool], input=data, capture_output=True, check=True).stdout.decode()
    lines = out.split("\n")[:-1]
    assert len(lines) == len(texts), (len(lines), len(texts))
    return lines


def quoted(s):
    out = '"'
    for ch in s:
        if ch == '"':
            out += '\\"'
        elif ch == "\\":
            out += "\\\\"
        elif 0x20 <= ord(ch) < 0x7F:
            out += ch
        else:
            out += "\\u{%x}" % ord(ch)
    return out + '"'


def uid(e):
    return e["type"] + "::" + quoted(e["id"])


def scope(c):
    def target(c):
        return c["slot"] if "slot" in c else uid(c["entity"])
    op = c["op"]
    if op == "All":
        return "All"
    if op == "is":
        s = "is " + c["entity_type"]
        return s + " in " + target(c["in"]) if "in" in c else s
    if "entities" in c:
        es = c["entities"]
        return "in " + uid(es[0]) if len(es) == 1 else "in [" + ", ".join(uid(e) for e in es) + "]"
    return op + " " + target(c)


def reference(text):
    """cedarpy's verdict in parsecheck's output form (without the error message)."""
    try:
        js = json.loads(cedarpy.policies_to_json_str(text))
    except Exception as e:  # cedarpy raises a plain ValueError on parse errors
        return "ERR", str(e).split("\n")[0]
    ps = {**js["staticPolicies"], **js["templates"]}
    items = []
    for pid in sorted(ps, key=lambda k: int(k[len("policy"):])):
        p = ps[pid]
        ann = sorted("@%s=%s" % (k, quoted(v or "")) for k, v in p.get("annotations", {}).items())
        items.append("|".join([p["effect"], scope(p["principal"]), scope(p["action"]), scope(p["resource"]),
                               ",".join(c["kind"] for c in p["conditions"]), ",".join(ann)]))
    bodies = [[canon(c["body"]) for c in ps[pid]["conditions"]]
              for pid in sorted(ps, key=lambda k: int(k[len("policy"):]))]
    return "OK", ("%d %s" % (len(items), " ;; ".join(items)), bodies)


def canon(e):
    """Merges adjacent pattern literals (cedarpy lists one per character)."""
    if isinstance(e, dict):
        out = {}
        for k, v in e.items():
            if k == "pattern":
                merged = []
                for el in v:
                    if isinstance(el, dict) and merged and isinstance(merged[-1], dict):
                        merged[-1] = {"Literal": merged[-1]["Literal"] + el["Literal"]}
                    else:
                        merged.append(dict(el) if isinstance(el, dict) else el)
                out[k] = merged
            else:
                out[k] = canon(v)
        return out
    if isinstance(e, list):
        return [canon(x) for x in e]
    return e


def same(verdict, detail, line):
    """Whether the Swift output line agrees with cedarpy's verdict (and, if accepted, its form)."""
    kind, _, rest = line.partition(" ")
    if kind != verdict:
        return False
    if verdict == "ERR":
        return True
    summary, _, bodies = rest.partition("\t")
    return summary == detail[0] and canon(json.loads(bodies)) == detail[1]


TOKEN = re.compile(r'''\s+|//[^\n\r]*|"(?:\\.|[^"\\])*"|\?[A-Za-z_]\w*|[A-Za-z_]\w*|\d+|::|==|!=|<=|>=|&&|\|\||.''', re.S)
VOCAB = ["(", ")", "{", "}", "[", "]", ",", ";", ":", "::", ".", "==", "!=", "<", "<=", ">", ">=", "&&", "||",
         "+", "-", "*", "!", "@", "if", "then", "else", "in", "is", "like", "has", "true", "false", "principal",
         "action", "resource", "context", "when", "unless", "permit", "forbid", "?principal", "?resource",
         '"x"', "1", "9223372036854775808", "A", "Action", "__cedar", "ip", "contains", "isEmpty", "lessThan",
         '"\\*"', '"\\q"', "=", "foo"]


def mutate(text, rng):
    toks = [m.group(0) for m in TOKEN.finditer(text)]
    idx = [i for i, t in enumerate(toks) if not t.isspace() and not t.startswith("//")]
    if len(idx) < 2:
        return None
    i = rng.choice(idx)
    kind = rng.randrange(5)
    if kind == 0:
        toks[i] = ""
    elif kind == 1:
        toks[i] = toks[i] + " " + toks[i]
    elif kind == 2:
        j = idx[min(idx.index(i) + 1, len(idx) - 1)]
        toks[i], toks[j] = toks[j], toks[i]
    elif kind == 3:
        toks[i] = rng.choice(VOCAB)
    else:
        toks[i] = toks[i] + " " + rng.choice(VOCAB)
    return "".join(toks)


ATTRS = ["a", "b", "principal", "if", "in", "__cedar", "contains", "_x1", "then", "permit"]
METHODS = ["contains", "containsAll", "containsAny", "isEmpty", "getTag", "hasTag", "lessThan", "isIpv4",
           "offset", "toDays", "foo", "ip", "if", "__cedar"]
FUNCS = ["ip", "decimal", "datetime", "duration", "foo", "lessThan", "principal", "A::ip", "isEmpty"]
STRINGS = ['"x"', '""', '"a*b"', '"a\\*b"', '"\\n\\t\\0\\\\\\\'\\""', '"\\u{1F600}"', '"\\u{1_F6_00}"',
           '"\\u{D800}"', '"\\x41"', '"\\x80"', '"\\q"', '"\\*"', '"é"', '"\\u{}"', '"\\u{0000041}"']
INTS = ["0", "1", "42", "007", "9223372036854775807", "9223372036854775808", "99999999999999999999"]
TYPES = ["A", "A::B", "Action", "in", "A::if", "__cedar", "principal", "A::__cedar::B"]
BINOPS = ["||", "&&", "==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*"]


def gen(rng, depth=0):
    """A random, often invalid, Cedar expression (text only; no parentheses added)."""
    leaf = depth > 3 or rng.random() < 0.3
    if leaf:
        k = rng.randrange(6)
        if k == 0:
            return rng.choice(INTS)
        if k == 1:
            return rng.choice(STRINGS)
        if k == 2:
            return rng.choice(["true", "false"])
        if k == 3:
            return rng.choice(["principal", "action", "resource", "context", "foo", "?principal"])
        if k == 4:
            return rng.choice(TYPES) + "::" + rng.choice(STRINGS[:3])
        return rng.choice(["[]", "{}", "[1,]", '{a: 1, "a": 2}', '{"if": 1}', "{if: 1}"])
    sub = lambda: gen(rng, depth + 1)
    k = rng.randrange(13)
    if k == 0:
        return "(" + sub() + ")"
    if k == 1:
        return "[" + ", ".join(sub() for _ in range(rng.randrange(3))) + rng.choice(["", ","]) + "]"
    if k == 2:
        keys = [rng.choice(ATTRS + ['"k"', '"a"']) for _ in range(rng.randrange(3))]
        return "{" + ", ".join("%s: %s" % (key, sub()) for key in keys) + rng.choice(["", ","]) + "}"
    if k in (3, 4, 5):
        return "%s %s %s" % (sub(), rng.choice(BINOPS), sub())
    if k == 6:
        rhs = rng.choice([".".join(rng.choice(ATTRS) for _ in range(rng.randrange(1, 4))), '"s"', "1"])
        return "%s has %s" % (sub(), rhs)
    if k == 7:
        return "%s like %s" % (sub(), rng.choice(STRINGS))
    if k == 8:
        return "%s is %s" % (sub(), rng.choice(TYPES)) + (" in " + sub() if rng.random() < 0.4 else "")
    if k == 9:
        return rng.choice(["!", "-"]) * rng.randrange(1, 6) + rng.choice(["", " "]) + sub()
    if k == 10:
        acc = rng.choice(["." + rng.choice(ATTRS), '["x"]', "." + rng.choice(METHODS) + "(" +
                          ", ".join(sub() for _ in range(rng.randrange(3))) + ")"])
        return sub() + acc
    if k == 11:
        return rng.choice(FUNCS) + "(" + ", ".join(sub() for _ in range(rng.randrange(3))) + ")"
    return "if %s then %s else %s" % (sub(), sub(), sub())


ANNOTATIONS = ['@id("a")', "@a", '@a("x")', '@if("y")', '@a("\\q")', "@a(1)", "@a::b", '@id("b")']
PRINCIPALS = ["principal", 'principal == U::"a"', "principal == ?principal", "principal == ?resource",
              'principal in U::"a"', 'principal in (U::"a")', "principal is U", 'principal is N::U in U::"a"',
              "principal is U in ?principal", 'principal in [U::"a"]', 'principal is U == U::"a"', "principal: U",
              "principal in ?principal", "principal == principal", 'principal != U::"a"', "", "action", "?principal"]
ACTIONS = ["action", 'action == Action::"a"', 'action in [Action::"a", N::Action::"b",]', "action in []",
           'action in Action::"a"', 'action == U::"a"', 'action in [U::"a"]', "action in ?principal",
           "action is Action", 'action in ([Action::"a"])', 'action == [Action::"a"]', "", "resource"]


def gen_policy(rng):
    anns = " ".join(rng.choice(ANNOTATIONS) for _ in range(rng.randrange(3)))
    resource = rng.choice(PRINCIPALS).replace("principal", "resource")
    parts = [rng.choice(PRINCIPALS), rng.choice(ACTIONS), resource]
    if rng.random() < 0.1:
        parts.append(rng.choice(["", "context"]))
    conds = " ".join("%s { %s }" % (rng.choice(["when", "unless", "when", "if"]), gen(rng, 2))
                     for _ in range(rng.randrange(3)))
    effect = rng.choice(["permit", "forbid", "permit", "allow"])
    return "%s %s(%s) %s;" % (anns, effect, ", ".join(parts), conds)


def generated(n, rng):
    out = []
    for i in range(n):
        if i % 2:
            out.append(gen_policy(rng))
        else:
            out.append("permit(principal, action, resource) when { %s };" % gen(rng))
    return out


# Hand-picked corners of the grammar (scope, annotations, trivia); compared like the corpus.
P = "permit(principal, action, resource)"
CASES = [
    "permit(principal,action,resource,);", "permit(principal,action);", "permit(principal,action,resource,context);",
    "permit(action,principal,resource);", "permit();", "permit(principal,action,resource)",
    "permit(principal,action,resource);;", "allow(principal,action,resource);", P + " when {};",
    P + " when { true } unless { false } when { 1 };", P + " whenever { true };", P + " when ( true );",
    "permit(principal == ?principal,action,resource == ?resource);", "permit(principal == ?resource,action,resource);",
    "permit(principal,action,resource in ?principal);", "permit(principal,action == ?principal,resource);",
    "permit(principal is User in ?principal,action,resource);", 'permit(principal is User == A::"x",action,resource);',
    "permit(principal is User,action is Action,resource);", 'permit(principal in [A::"a"],action,resource);',
    "permit(principal,action in [],resource);", 'permit(principal,action in [A::"a",],resource);',
    'permit(principal,action in [Action::"a",],resource);', 'permit(principal,action == [Action::"a"],resource);',
    'permit(principal,action in Action::"a",resource is X::Y in Z::"a");', "permit(principal == principal,action,resource);",
    'permit(principal == (A::"a"),action,resource);', "permit(principal: User,action,resource);",
    'permit(principal in A::"a" || true,action,resource);', 'permit(principal > A::"a",action,resource);',
    "permit(principal is ?principal,action,resource);", 'permit(principal is "User",action,resource);',
    'permit(principal is User::"a",action,resource);', "permit(principal == ?foo,action,resource);",
    P + " when { ?foo };", P + " when { ?principal };", '@id("a") @id2 @if("x") @principal("y") ' + P + ";",
    '@id("a") @id("b") ' + P + ";", '@__cedar("a") ' + P + ";", '@a::b("a") ' + P + ";", "@a(1) " + P + ";",
    '@a("\\u{1F600}\\n") ' + P + ";", '@a("\\q") ' + P + ";", "@a() " + P + ";", '@a("x",) ' + P + ";",
    "@a " + P + ";", "@a", "", "// just a comment", 'permit(principal in ((A::"a")),action,resource);',
    'permit(principal,action in ([Action::"a"]),resource);', 'permit(principal,action in [(Action::"a")],resource);',
    "permit(principal is (User),action,resource);", "permit(principal == (?principal),action,resource);",
    'permit(principal,action in [Action::"a", ?principal],resource);', 'permit(principal,action == A::Action::"x",resource);',
    'permit(principal,action == Action::Foo::"x",resource);', 'permit(principal == A::"a".foo,action,resource);',
    'permit(principal == - A::"a",action,resource);', 'permit(principal is User in A::"a" in A::"b",action,resource);',
    'permit(principal == A::"a" == A::"b",action,resource);', "permit(? principal,action,resource);",
    P + " when { true } // c\n;", P + " when { true // c\r};", P + "\u00a0when { true };", P + "\u2028when { true };",
    P + "\u000bwhen { true };", P + "\u0085when { true };", P + "\u3000when { true };", P + "\u200bwhen { true };",
    P + " when { principal.\u00e9 };", P + ' when { "a\rb" };', P + ' when { "a\nb" };', P + ' when { "a\\\n b" };',
    P + " when { true }; /* x */", P + " when { 'a' };", P + " when { 1 = 1 };", P + " when { true & false };",
    P + ' when { "abc };', P + ' when { A::{a: 1} };', P + " when { principal[1] };", P + " when { -9223372036854775808 };",
    P + " when { - 9223372036854775808 };", P + " when { --9223372036854775808 };", P + " when { -(9223372036854775808) };",
    P + " when { -9223372036854775808.a };", P + ' when { principal like "\\u{2a}\\*\\x2a" };',
]


def corpus_files(tmp):
    tests = sorted(glob.glob(os.path.join(SHARED, "tests", "**", "*.cedar"), recursive=True))
    with tarfile.open(os.path.join(SHARED, "corpus-tests.tar.gz")) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(".cedar")]
        tar.extractall(tmp, members=members)
    return sorted(glob.glob(os.path.join(tmp, "**", "*.cedar"), recursive=True)) + tests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mutants", type=int, default=4000, help="mutants and also generated expressions")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tool")
    ap.add_argument("--show", type=int, default=40)
    args = ap.parse_args()
    if not os.path.isdir(SHARED):
        sys.exit("needs %s" % SHARED)
    tool = args.tool or build_tool()

    with tempfile.TemporaryDirectory() as tmp:
        files = corpus_files(tmp)
        texts = [open(f, encoding="utf-8").read() for f in files]
    swift = run_swift(tool, texts)
    mismatches = 0
    for f, t, s in zip(files, texts, swift):
        verdict, detail = reference(t)
        if not same(verdict, detail, s):
            mismatches += 1
            if mismatches <= args.show:
                print("CORPUS %s\n  cedarpy: %s %s\n  swift:   %s" % (f, verdict, str(detail)[:600], s[:600]))
    print("corpus: %d files, %d disagreements" % (len(files), mismatches))

    swift = run_swift(tool, CASES)
    for c, s in zip(CASES, swift):
        verdict, detail = reference(c)
        if not same(verdict, detail, s):
            mismatches += 1
            print("CASE %r\n  cedarpy: %s %s\n  swift:   %s" % (c, verdict, str(detail)[:400], s[:400]))
    print("cases: %d" % len(CASES))

    rng = random.Random(args.seed)
    mutants = []
    while len(mutants) < args.mutants:
        m = mutate(rng.choice(texts), rng)
        if m is not None:
            mutants.append(m)
    swift = run_swift(tool, mutants)
    disagree = 0
    accepted = 0
    for m, s in zip(mutants, swift):
        verdict, detail = reference(m)
        accepted += verdict == "OK"
        if not same(verdict, detail, s):
            disagree += 1
            if disagree <= args.show:
                print("MUTANT %r\n  cedarpy: %s %s\n  swift:   %s" % (m[:400], verdict, str(detail)[:400], s[:400]))
    print("mutants: %d (%d accepted by cedarpy), %d disagreements" % (len(mutants), accepted, disagree))

    exprs = generated(args.mutants, rng)
    swift = run_swift(tool, exprs)
    gdisagree = 0
    accepted = 0
    for m, s in zip(exprs, swift):
        verdict, detail = reference(m)
        accepted += verdict == "OK"
        if not same(verdict, detail, s):
            gdisagree += 1
            if gdisagree <= args.show:
                print("GENERATED %r\n  cedarpy: %s %s\n  swift:   %s" % (m[:400], verdict, str(detail)[:400], s[:400]))
    print("generated: %d (%d accepted by cedarpy), %d disagreements" % (len(exprs), accepted, gdisagree))
    return 1 if mismatches or disagree or gdisagree else 0


if __name__ == "__main__":
    sys.exit(main())
