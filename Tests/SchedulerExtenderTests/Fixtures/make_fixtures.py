#!/usr/bin/env python3
"""Writes the recorded Kubernetes documents the extender and node-sync tests read.

The shapes are what the API server and kube-scheduler put on the wire: `kubectl get nodes -o
json` (a v1.NodeList, indented as kubectl prints it) and ExtenderArgs as json.Marshal writes them
(compact, Go field names for the extender types, lowerCamel for the embedded Pod and Node,
`<`, `>` and `&` escaped as \\u003c, \\u003e, \\u0026). Run from this folder; the files are
committed, so the tests need no Python.
"""
import json

def go(v):
    s = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

def node(name, labels, uid, created="2026-03-02T08:14:55Z"):
    base = {
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "gpu-8x",
    }
    base.update(labels)
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            "creationTimestamp": created, "labels": dict(sorted(base.items())), "name": name,
            "resourceVersion": str(100000 + sum(map(ord, name))), "uid": uid,
        },
        "spec": {"podCIDR": "10.244.3.0/24", "podCIDRs": ["10.244.3.0/24"]},
        "status": {
            "addresses": [{"address": "10.0.3.17", "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
            "allocatable": {"cpu": "94", "ephemeral-storage": "1699748101286", "memory": "1055754232Ki", "nvidia.com/gpu": "8", "pods": "110"},
            "capacity": {"cpu": "96", "ephemeral-storage": "1844336560Ki", "memory": "1056266232Ki", "nvidia.com/gpu": "8", "pods": "110"},
            "conditions": [{"lastHeartbeatTime": "2026-06-01T11:58:02Z", "lastTransitionTime": created,
                            "message": "kubelet is posting ready status", "reason": "KubeletReady", "status": "True", "type": "Ready"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"architecture": "amd64", "bootID": "2b8e0c1a-4f6d-4f37-9a0e-3c1b7d9e5f21", "containerRuntimeVersion": "containerd://1.7.24",
                         "kernelVersion": "6.1.0-31-amd64", "kubeProxyVersion": "v1.31.4", "kubeletVersion": "v1.31.4",
                         "machineID": "8a1f3c5e7b9d4e2f8a6c0b1d3e5f7a9c", "operatingSystem": "linux",
                         "osImage": "Debian GNU/Linux 12 (bookworm)", "systemUUID": "4c4c4544-0051-3510-8052-b4c04f583732"},
        },
    }

H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/cuda.driver-version.full": "550.90.07",
        "nvidia.com/gpu.count": "8", "nvidia.com/gpu.memory": "81559", "nvidia.com/gfd.timestamp": "1780300800"}
R = "node-restriction.kubernetes.io/"
cluster = [
    node("fra-gpu-01", {**H100, R + "region": "eu-central-1", "topology.kubernetes.io/region": "eu-central-1", "custos.io/study": "ONC-301"},
         "0f6b1a2c-3d4e-4f50-8a61-7b8c9d0e1f21"),
    node("fra-gpu-02", {**H100, R + "region": "eu-central-1", "topology.kubernetes.io/region": "eu-central-1"},
         "1a2b3c4d-5e6f-4a70-8b81-9c0d1e2f3a42"),
    node("fra-gpu-03", {**H100, R + "region": "eu-central-1", "topology.kubernetes.io/region": "eu-central-1",
                        "custos.io/maintenance": "PSU swap OPS-2231"},
         "2b3c4d5e-6f70-4b81-9c92-0d1e2f3a4b53"),
    node("par-gpu-01", {**H100, R + "region": "eu-west-3", "topology.kubernetes.io/region": "eu-west-3"},
         "3c4d5e6f-7081-4c92-8da3-1e2f3a4b5c64"),
    node("iad-gpu-01", {**H100, R + "region": "us-east-1", R + "study": "CARD-201", "topology.kubernetes.io/region": "us-east-1"},
         "4d5e6f70-8192-4da3-9eb4-2f3a4b5c6d75"),
    node("pdx-gpu-01", {**H100, R + "region": "us-west-2", "topology.kubernetes.io/region": "us-west-2"},
         "5e6f7081-92a3-4eb4-8fc5-3a4b5c6d7e86"),
    node("hyd-gpu-01", {**H100, R + "region": "in-hyderabad", "topology.kubernetes.io/region": "in-hyderabad"},
         "6f708192-a3b4-4fc5-9ad6-4b5c6d7e8f97"),
    # Only the region label a kubelet may set on itself: Custos does not take it.
    node("rogue-gpu-01", {**H100, "topology.kubernetes.io/region": "eu-central-1"},
         "708192a3-b4c5-4ad6-8be7-5c6d7e8f9fa8"),
]
nodelist = {"apiVersion": "v1", "items": cluster, "kind": "List", "metadata": {"resourceVersion": ""}}
with open("nodes-kubectl.json", "w") as f:
    f.write(json.dumps(nodelist, indent=4, ensure_ascii=False) + "\n")

def pod(ns, name, uid, labels, annotations, sa="default", image="registry.helix.example/onc/tumour-seg:2.4.1", extra_containers=()):
    containers = [{"name": "main", "image": image,
                   "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"}},
                   "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}]
    containers += list(extra_containers)
    meta = {"name": name, "namespace": ns, "uid": uid, "resourceVersion": "4711833", "creationTimestamp": "2026-06-01T11:59:40Z"}
    if labels: meta["labels"] = labels
    if annotations: meta["annotations"] = annotations
    meta["managedFields"] = [{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-06-01T11:59:40Z",
                              "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:containers": {}}}}]
    return {"metadata": meta,
            "spec": {"volumes": [{"name": "kube-api-access-x7k2p", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}], "defaultMode": 420}}],
                     "containers": containers, "restartPolicy": "Never", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                     "serviceAccountName": sa, "serviceAccount": sa, "securityContext": {}, "schedulerName": "default-scheduler",
                     "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                     "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority"},
            "status": {"phase": "Pending", "qosClass": "Burstable"}}

annotated = pod("onc-301", "seg-42-0", "7d3c9f4e-1b2a-4c5d-8e6f-0a1b2c3d4e5f",
                {"app.kubernetes.io/name": "tumour-seg"},
                {"custos.io/principal": "User::\"alice\"", "custos.io/study": "ONC-301", "custos.io/purpose": "primary_research",
                 "custos.io/datasets": "onc301-de-clinical, onc301-fr-genomic",
                 "kubectl.kubernetes.io/last-applied-configuration": "{\"note\":\"a <b> & c\"}"})
plain = pod("ml-sandbox", "notebook-7", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", {"app": "notebook"}, None, sa="trainer",
            image="jupyter/tensorflow-notebook:2026-05-01")
names = [n["metadata"]["name"] for n in cluster] + ["ghost-gpu-01"]

with open("filter-names-args.json", "w") as f:
    f.write(go({"Pod": annotated, "Nodes": None, "NodeNames": names}) + "\n")
with open("filter-plain-args.json", "w") as f:
    f.write(go({"Pod": plain, "Nodes": None, "NodeNames": names[:3]}) + "\n")
with open("filter-nodes-args.json", "w") as f:
    f.write(go({"Pod": annotated, "Nodes": {"metadata": {}, "items": [cluster[1], cluster[5], cluster[7]]}, "NodeNames": None}) + "\n")
with open("prioritize-args.json", "w") as f:
    f.write(go({"Pod": annotated, "Nodes": None, "NodeNames": ["fra-gpu-01", "fra-gpu-02", "par-gpu-01", "pdx-gpu-01"]}) + "\n")

# 1,000 nodes over the example's regions, for the size test and the benchmark: every node is
# in the inventory, names only in the arguments.
regions = ["eu-central-1", "eu-west-3", "eu-west-1", "gr-athens", "ch-zurich", "uk-london",
           "us-east-1", "us-boston-helix", "us-west-2", "sg-cro", "in-hyderabad"]
big = []
for i in range(1000):
    r = regions[i % len(regions)]
    labels = {R + "region": r, "custos.io/gpu-model": "NVIDIA-H100-80GB-HBM3", "custos.io/gpu-driver": "550.90.07"}
    if i % 9 == 0:
        labels[R + "study"] = "CARD-201"
    if i % 13 == 0:
        labels["custos.io/study"] = "GEN-CH"
    big.append({"name": "gpu-%04d" % i, "region": r, "labels": labels})
with open("sync-1000.json", "w") as f:
    f.write(go({"nodes": big}) + "\n")
with open("filter-names-1000-args.json", "w") as f:
    f.write(go({"Pod": annotated, "Nodes": None, "NodeNames": [n["name"] for n in big]}) + "\n")

# Slurm. slurm-sinfo-22.05.json is recorded: `sinfo --json` of Debian bookworm's slurm-wlm
# 22.05.8 (whose scontrol has no --json), two slurmd on one host. The file below is not
# recorded (no Slurm 24 here): it follows the shape of `scontrol show nodes --json` of Slurm
# 24.05 (data_parser v0.0.41), where features are arrays and numbers are {set, infinite, number}.
def slurm_node(name, features, partitions):
    num = lambda n: {"set": True, "infinite": False, "number": n}
    return {"architecture": "x86_64", "burstbuffer_network_address": "", "boards": 1, "boot_time": num(1780300000),
            "cluster_name": "helix-hpc", "cores": 48, "specialized_cores": 0, "cpu_binding": 0, "cpu_load": 12,
            "free_mem": num(990000), "cpus": 96, "effective_cpus": 96, "specialized_cpus": "", "energy": {},
            "external_sensors": {}, "extra": "", "power": {}, "features": features, "active_features": features,
            "gpu_spec": "", "gres": "gpu:h100:8", "gres_drained": "N/A", "gres_used": "gpu:h100:0(IDX:N/A)",
            "instance_id": "", "instance_type": "", "last_busy": num(1780310000), "mcs_label": "", "specialized_memory": 0,
            "name": name, "next_state_after_reboot": ["INVALID"], "address": name, "hostname": name,
            "state": ["IDLE"], "operating_system": "Linux 6.1.0-31-amd64", "owner": "", "partitions": partitions,
            "port": 6818, "real_memory": 1031000, "res_cores_per_gpu": 0, "comment": "", "reason": "",
            "reason_changed_at": num(0), "reason_set_by_user": "", "resume_after": num(0), "reservation": "",
            "alloc_memory": 0, "alloc_cpus": 0, "alloc_idle_cpus": 96, "tres_used": "", "tres_weighted": 0.0,
            "slurmd_start_time": num(1780300100), "sockets": 2, "threads": 1, "temporary_disk": 0, "weight": 1,
            "tres": "cpu=96,mem=1031000M,billing=96,gres/gpu=8", "version": "24.05.4"}
scontrol = {"nodes": [
    slurm_node("fra-gpu-01", ["region=eu-central-1", "node-restriction.kubernetes.io/study=ONC-301", "gpu"], ["gpu", "onc"]),
    slurm_node("fra-gpu-02", ["region=eu-central-1", "gpu"], ["gpu"]),
    slurm_node("pdx-gpu-01", ["region=us-west-2", "gpu"], ["gpu", "burst"]),
], "last_update": {"set": True, "infinite": False, "number": 1780315100},
    "meta": {"plugin": {"type": "", "name": "", "data_parser": "data_parser/v0.0.41", "accounting_storage": ""},
             "client": {"source": "/dev/pts/1", "user": "root", "group": "root"}, "command": ["show", "nodes"],
             "slurm": {"version": {"major": "24", "micro": "4", "minor": "05"}, "release": "24.05.4", "cluster": "helix-hpc"}},
    "errors": [], "warnings": []}
with open("slurm-scontrol-24.05.json", "w") as f:
    f.write(json.dumps(scontrol, indent=2) + "\n")
