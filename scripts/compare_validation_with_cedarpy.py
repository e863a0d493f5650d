#!/usr/bin/env python3
"""Differential test of `custos validate` against the reference validator (cedarpy 4.12).

Generates random policies, mostly well-typed (every operator, extension function, optional
attribute, tag and template slot over Tests/CedarTests/Fixtures/validation/clinic.cedarschema)
with a few type confusions mixed in, validates them with both, and compares per policy the
verdict and the set of error kinds. Prints the first disagreements and a tally; exit 1 on any.

    python3 scripts/compare_validation_with_cedarpy.py [SEED] [N]    # default 1 2000

Needs `pip install cedarpy` and a built `.build/release/custos`. Dev-time only; the Swift tests
run the fixed table in Fixtures/validation/cases.txt instead.
"""
import os
import random, sys, re, subprocess, tempfile, cedarpy, collections
repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1); N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
schema = open(os.path.join(repo, 'Tests/CedarTests/Fixtures/validation/clinic.cedarschema')).read()
# Typed atoms for the read/list environment (principal User, resource Dataset).
atoms = {
 'bool': ['principal.active', 'context.mfa', 'true', 'false', 'resource.hold', 'principal has badge', 'resource has hold',
          'context has reason', 'principal.home has zip', 'resource.hasTag("k")', 'principal has manager'],
 'long': ['principal.level', 'principal.badge', '1', '-2', 'principal.manager.level', 'resource.retention.toHours()'],
 'string': ['principal.name', 'resource.state', '"x"', 'context.reason', 'principal.home.city', 'principal.home.zip', 'resource.getTag("k")'],
 'user': ['principal', 'resource.owner', 'User::"u"', 'principal.manager'],
 'dataset': ['resource', 'Dataset::"d"'],
 'team': ['Team::"t"'],
 'set_string': ['resource.labels', '["a", "b"]'],
 'set_team': ['principal.teams', '[Team::"t"]'],
 'ipaddr': ['context.ip', 'resource.source', 'ip("10.0.0.0/8")'],
 'datetime': ['context.now', 'resource.created', 'datetime("2024-01-01")'],
 'duration': ['resource.retention', 'duration("1h")'],
 'decimal': ['resource.size', 'decimal("1.5")'],
}
def g(t, d):
    if d <= 0 or random.random() < 0.3:
        if random.random() < 0.05:  # type confusion
            t = random.choice(list(atoms))
        return random.choice(atoms[t])
    a = lambda tt: g(tt, d - 1)
    if t == 'bool':
        k = random.randrange(16)
        if k == 0: return '(%s && %s)' % (a('bool'), a('bool'))
        if k == 1: return '(%s || %s)' % (a('bool'), a('bool'))
        if k == 2: return '!%s' % a('bool')
        if k == 3: return '(if %s then %s else %s)' % (a('bool'), a('bool'), a('bool'))
        if k == 4: tt = random.choice(list(atoms)); return '(%s == %s)' % (a(tt), a(tt))
        if k == 5: return '(%s < %s)' % (a('long'), a('long'))
        if k == 6: return '(%s in %s)' % (a('user'), a(random.choice(['team', 'set_team', 'user'])))
        if k == 7: return '%s.contains(%s)' % (a('set_string'), a('string'))
        if k == 8: return '%s.containsAll(%s)' % (a('set_team'), a('set_team'))
        if k == 9: return '(%s like "a*")' % a('string')
        if k == 10: return '%s.isInRange(%s)' % (a('ipaddr'), a('ipaddr'))
        if k == 11: return '(%s has %s)' % (a(random.choice(['user', 'dataset'])), random.choice(['name', 'badge', 'hold', 'state', 'nope']))
        if k == 12: return '(%s <= %s)' % (a('datetime'), a('datetime'))
        if k == 13: return '%s.lessThan(%s)' % (a('decimal'), a('decimal'))
        if k == 14: return '(resource.hasTag(%s) && resource.getTag(%s) == %s)' % ((s := a('string')), s, a('string'))
        return '(%s is %s)' % (a(random.choice(['user', 'dataset'])), random.choice(['User', 'Dataset', 'Team']))
    if t == 'long':
        k = random.randrange(3)
        if k == 0: return '(%s + %s)' % (a('long'), a('long'))
        if k == 1: return '(if %s then %s else %s)' % (a('bool'), a('long'), a('long'))
        return '%s.toDays()' % a('duration')
    if t == 'string':
        return '(if %s then %s else %s)' % (a('bool'), a('string'), a('string'))
    if t == 'datetime':
        return '%s.offset(%s)' % (a('datetime'), a('duration'))
    if t == 'duration':
        return '%s.durationSince(%s)' % (a('datetime'), a('datetime'))
    if t == 'set_string':
        return '[%s]' % ', '.join(a('string') for _ in range(random.randrange(1, 3)))
    return random.choice(atoms[t])

pols = []
for i in range(N):
    sc = random.choice(['principal, action == Action::"read", resource', 'principal, action in [Action::"read", Action::"list"], resource',
                        'principal is User, action, resource is Dataset', 'principal, action, resource', 'principal == ?principal, action == Action::"read", resource in ?resource', 'principal in ?principal, action, resource', 'principal is User in ?principal, action in [Action::"read", Action::"audit"], resource == ?resource'])
    pols.append('@id("p%d")\npermit(%s) when { %s };' % (i, sc, g('bool', random.randrange(1, 5))))
def parses(p):
    r = cedarpy.validate_policies(p, schema)
    return not any('parse error' in str(e) for e in r.errors)
pols = [p for p in pols if parses(p)]
pols = ['@id("p%d")\n' % i + p.split('\n', 1)[1] for i, p in enumerate(pols)]
N = len(pols)
text = '\n'.join(pols)
policy_file = os.path.join(tempfile.mkdtemp(), 'random.cedar')
open(policy_file, 'w').write(text)
KINDS = [("unrecognized entity type", "unrecognizedEntityType"), ("unrecognized action", "unrecognizedActionId"),
    ("unable to find an applicable action", "invalidActionApplication"), ("enumerated entity type", "invalidEnumEntity"),
    ("unable to guarantee safety of access to optional attribute", "unsafeOptionalAttributeAccess"),
    ("unable to guarantee safety of access to tag", "unsafeTagAccess"), ("is not allowed on entities of", "noTagsAllowed"),
    ("not found", "unsafeAttributeAccess"), ("unexpected type", "unexpectedType"), ("are not compatible", "incompatibleTypes"),
    ("wrong number of arguments", "wrongNumberArguments"), ("extension function argument validation", "functionArgumentValidation"),
    ("empty set literals are forbidden", "emptySetForbidden"), ("extension constructors may not be called with non-literal", "nonLitExtConstructor")]
def kind(m):
    for n, k in KINDS:
        if n in m: return k
    return 'UNKNOWN:' + m
ref = collections.defaultdict(set)
for i, p in enumerate(pols):
    r = cedarpy.validate_policies(p, schema)
    for e in r.errors: ref[i].add(kind(str(e)))
OURS = [("is not declared in the schema", None), ("is not one of the ids enumerated", "invalidEnumEntity"),
    ("no action in the scope applies", "invalidActionApplication"), ("is optional and may be absent", "unsafeOptionalAttributeAccess"),
    ("cannot tell that the tag exists", "unsafeTagAccess"), ("has no tags in the schema", "noTagsAllowed"), ("not found on", "unsafeAttributeAccess"),
    ("but found", "unexpectedType"), ("are not compatible", "incompatibleTypes"), ("argument", "wrongNumberArguments"),
    ("does not parse as", "functionArgumentValidation"), ("empty set literals", "emptySetForbidden"), ("must be applied to a string literal", "nonLitExtConstructor")]
res = subprocess.run([os.path.join(repo, '.build/release/custos'), 'validate', '--schema', os.path.join(repo, 'Tests/CedarTests/Fixtures/validation/clinic.cedarschema'), '--policies', policy_file], capture_output=True, text=True)
ours = collections.defaultdict(set)
for line in res.stderr.splitlines():
    m = re.search(r'\(policy(\d+)\): (.*)', line) or re.search(r'policy policy(\d+): (.*)', line)
    if not m or not line.startswith('error'): continue
    msg = m.group(2)
    for n, k in OURS:
        if n in msg:
            if k is None: k = 'unrecognizedActionId' if 'action ' in msg.split(' is not')[0] else 'unrecognizedEntityType'
            ours[int(m.group(1))].add(k); break
    else: ours[int(m.group(1))].add('UNKNOWN:' + msg)
bad = 0; verdict_bad = 0; valid = 0
for i in range(N):
    if not ref[i]: valid += 1
    if bool(ref[i]) != bool(ours[i]): verdict_bad += 1
    if ref[i] != ours[i]:
        bad += 1
        if bad <= 15: print('p%d ref=%s ours=%s\n   %s' % (i, sorted(ref[i]), sorted(ours[i]), pols[i].split('\n')[1]))
print('cases %d, reference-valid %d, verdict disagreements %d, kind-set disagreements %d' % (N, valid, verdict_bad, bad))
sys.exit(1 if bad else 0)
