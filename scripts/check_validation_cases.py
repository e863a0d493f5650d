#!/usr/bin/env python3
"""Checks Tests/CedarTests/Fixtures/validation/cases.txt against the reference validator (cedarpy).

Each line `SCHEMA | EXPECTED | POLICY` is validated with cedarpy.validate_policies against
SCHEMA.cedarschema (and, for "clinic", also against clinic.cedarschema.json, which must give the
same errors). The reference's error messages are classified into Cedar's validation error kinds;
EXPECTED must be `ok` or exactly those kinds, sorted and comma-separated.

    python3 scripts/check_validation_cases.py          # check; exit 1 on any disagreement
    python3 scripts/check_validation_cases.py --write  # rewrite EXPECTED from the reference

Needs `pip install cedarpy` (4.12). The Swift tests read the file and never need cedarpy.
"""
import os, sys
import cedarpy

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "CedarTests", "Fixtures", "validation")

# Substrings of the reference's messages (Cedar 4.12) and the kind each one means; the
# first match wins, so the more specific wordings come first.
KINDS = [
    ("unrecognized entity type", "unrecognizedEntityType"),
    ("unrecognized action", "unrecognizedActionId"),
    ("unable to find an applicable action", "invalidActionApplication"),
    ("enumerated entity type", "invalidEnumEntity"),
    ("unable to guarantee safety of access to optional attribute", "unsafeOptionalAttributeAccess"),
    ("unable to guarantee safety of access to tag", "unsafeTagAccess"),
    ("is not allowed on entities of", "noTagsAllowed"),
    ("not found", "unsafeAttributeAccess"),
    ("unexpected type", "unexpectedType"),
    ("are not compatible", "incompatibleTypes"),
    ("wrong number of arguments", "wrongNumberArguments"),
    ("extension function argument validation", "functionArgumentValidation"),
    ("empty set literals are forbidden", "emptySetForbidden"),
    ("extension constructors may not be called with non-literal", "nonLitExtConstructor"),
]


def kind(message):
    for needle, k in KINDS:
        if needle in message:
            return k
    raise SystemExit("unclassified reference error (add it to KINDS): %s" % message)


def verdict(policy, schema):
    r = cedarpy.validate_policies(policy, schema)
    kinds = sorted({kind(str(e)) for e in r.errors})
    if r.validation_passed != (not kinds):
        raise SystemExit("reference disagrees with itself on: %s" % policy)
    return ",".join(kinds) or "ok"


def main():
    write = "--write" in sys.argv[1:]
    schemas = {}
    def schema(name):
        if name not in schemas:
            schemas[name] = open(os.path.join(here, name + ".cedarschema")).read()
        return schemas[name]
    json_clinic = open(os.path.join(here, "clinic.cedarschema.json")).read()

    path = os.path.join(here, "cases.txt")
    out, bad, count = [], 0, 0
    for n, line in enumerate(open(path), 1):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            out.append(line)
            continue
        name, expected, policy = [p.strip() for p in line.split(" | ", 2)]
        got = verdict(policy, schema(name))
        if name == "clinic":
            other = verdict(policy, json_clinic)
            if other != got:
                bad += 1
                print("line %d: the JSON schema gives %s, the Cedar schema %s: %s" % (n, other, got, policy))
        count += 1
        if got != expected:
            if not write:
                bad += 1
                print("line %d: expected %s, reference says %s: %s" % (n, expected, got, policy))
        out.append("%s | %s | %s" % (name, got, policy))
    if write:
        open(path, "w").write("\n".join(out) + "\n")
        print("%d cases written" % count)
    print("%d cases, %d disagreements" % (count, bad))
    sys.exit(1 if bad else 0)


main()
