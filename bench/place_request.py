#!/usr/bin/env python3
"""Writes `place` params with N candidate nodes for `custos bench socket --method place`.

Default: the nodes as full objects. `--names`: the same call naming the nodes only, resolved
through the daemon's node inventory; `--sync`: the `nodes.sync` params that fill the inventory
with the same nodes (send them once before a `--names` run).

The nodes mirror `custos bench place`: spread round-robin over every region of the example
guardrails, each with a qualified GPU model and driver, every 7th dedicated to a study.
The job is carol's GxP training job of the EU oncology trial over its DE and FR datasets.

    python3 bench/place_request.py 1000 > /tmp/place-1000.json
    custos bench socket --method place --request /tmp/place-1000.json --clients 1 --echo --echo-process

    python3 bench/place_request.py 1000 --sync > /tmp/sync-1000.json
    python3 bench/place_request.py 1000 --names > /tmp/names-1000.json
    custos call nodes.sync - < /tmp/sync-1000.json
    custos bench socket --method place --request /tmp/names-1000.json --clients 1 --echo --echo-process
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
policies = os.path.join(here, "..", "policies", "guardrails")
args = [a for a in sys.argv[1:] if not a.startswith("--")]
flags = {a for a in sys.argv[1:] if a.startswith("--")}
unknown = flags - {"--names", "--sync"}
if unknown or len(args) > 1 or flags == {"--names", "--sync"}:
    sys.exit("usage: place_request.py [N] [--names | --sync]")
n = int(args[0]) if args else 1000
with open(os.path.join(policies, "regions.json")) as f:
    regions = list(json.load(f)["regions"].keys())
with open(os.path.join(policies, "compute.json")) as f:
    compute = json.load(f)
labels = compute["labels"]
model = compute["gpu_models"][0]
image = compute["images"][0]

nodes = []
for i in range(n):
    node_labels = {
        "kubernetes.io/hostname": f"node-{i}",
        labels["gpu_model"]: model["model"],
        labels["gpu_driver"]: model["drivers"][0],
    }
    if i % 7 == 0:
        node_labels[labels["study"]] = ["ONC-301", "CARD-201", "GEN-CH"][i % 3]
    nodes.append({"name": f"node-{i}", "region": regions[i % len(regions)], "labels": node_labels})

job = {
    "id": "train-onc-1",
    "principal": 'User::"carol"',
    "study": "ONC-301",
    "purpose": "primary_research",
    "datasets": ["onc301-de-clinical", "onc301-fr-genomic"],
    "gxp": True,
    "image": image["name"].split(":")[0] + "@" + image["digest"],
}
if "--sync" in flags:
    params = {"nodes": nodes, "replace": True}
elif "--names" in flags:
    params = {"job": job, "nodes": [node["name"] for node in nodes]}
else:
    params = {"job": job, "nodes": nodes}
json.dump(params, sys.stdout, separators=(",", ":"))
sys.stdout.write("\n")
