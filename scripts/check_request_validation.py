#!/usr/bin/env python3
"""Checks Tests/CedarTests/Fixtures/requests/cases.json against the reference engine (cedarpy).

Every case is a request against schema.cedarschema with the verdict Custos must give: valid,
or invalid with the JSON path and a part of the message Custos reports. The reference engine
validates a request when it builds it (cedarpy.is_authorized with a schema answers NoDecision
with "failed to build request: ..." for one that does not conform); this script checks that its
verdict equals "valid" for every case. Paths and messages are Custos's own and are checked by
the Swift tests (RequestValidationTests, DecideValidationTests).

    python3 scripts/check_request_validation.py

Needs `pip install cedarpy` (4.12). The Swift tests read the file and never need cedarpy.
"""
import json, os, sys
import cedarpy

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "CedarTests", "Fixtures", "requests")


def main():
    doc = json.load(open(os.path.join(here, "cases.json")))
    schema = cedarpy.Schema.from_str(open(os.path.join(here, doc["schema"])).read())
    bad = 0
    for case in doc["cases"]:
        r = cedarpy.is_authorized(case["request"], "permit(principal, action, resource);", "[]", schema=schema)
        errors = r.diagnostics.errors
        valid = r.decision != cedarpy.Decision.NoDecision
        if valid and errors:
            sys.exit("reference answered with errors for %s: %s" % (case["name"], errors))
        if valid != case["valid"]:
            bad += 1
            print("DISAGREE %s: reference says %s (%s)" % (case["name"], "valid" if valid else "invalid", errors))
    n = len(doc["cases"])
    print("%d cases, %d agree, %d disagree" % (n, n - bad, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
