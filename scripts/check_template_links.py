#!/usr/bin/env python3
"""Checks Tests/CedarTests/Fixtures/templates/cases.json against the reference engine (cedarpy).

templates.cedar holds templates (`?principal`, `?resource`) and a static policy; cases.json links
the templates (the Cedar CLI's links format: template_id, link_id, args), lists requests with
the decision and the reasons (a link by its link id, a static policy by its policyN), and links
the reference refuses. This script links with cedarpy (PolicySet.with_linked_batch, templates
named by their @id), decides every request, and checks that every bad link is refused. It also
validates the templates against schema.cedarschema (they must validate).

    python3 scripts/check_template_links.py

Needs `pip install cedarpy` (4.12). The Swift tests read the files and never need cedarpy.
"""
import json, os, sys
import cedarpy

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "CedarTests", "Fixtures", "templates")


def main():
    doc = json.load(open(os.path.join(here, "cases.json")))
    text = open(os.path.join(here, doc["policies"])).read()
    schema = open(os.path.join(here, "schema.cedarschema")).read()
    v = cedarpy.validate_policies(text, schema)
    if not v.validation_passed:
        sys.exit("the templates do not validate: %s" % [str(e) for e in v.errors])
    base = cedarpy.PolicySet.from_str(text)
    links = [{"template_id": l["template_id"], "new_id": l["link_id"], "values": l["args"]} for l in doc["links"]]
    linked = base.with_linked_batch(links)
    entities = json.dumps(doc["entities"])
    bad = 0
    for case in doc["requests"]:
        r = cedarpy.is_authorized(case["request"], linked, entities, schema=schema)
        decision = "allow" if r.allowed else "deny"
        reasons = sorted(r.diagnostics.reasons)
        if r.diagnostics.errors or decision != case["decision"] or reasons != sorted(case["reasons"]):
            bad += 1
            print("DISAGREE %s: reference says %s %s %s" % (case["name"], decision, reasons, r.diagnostics.errors))
    for case in doc["bad_links"]:
        l = case["link"]
        try:
            base.with_linked(l["template_id"], l["link_id"], l["args"])
            bad += 1
            print("DISAGREE %s: the reference links it" % case["name"])
        except ValueError:
            pass
    n = len(doc["requests"]) + len(doc["bad_links"])
    print("%d cases, %d agree, %d disagree" % (n, n - bad, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
