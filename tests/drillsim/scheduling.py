"""What the scheduler decides for a pod or a VMI: a node, and whether its claims let it start.

Shared by the kubelet (canary pods) and KubeVirt (a VMI stands in for its virt-launcher pod): a workload is
placed only once every PersistentVolumeClaim it mounts is Bound, and a claim of a WaitForFirstConsumer class is
bound only after the scheduler has picked a node for its first consumer (the selected-node annotation).
"""

from __future__ import annotations

import hashlib

from lab.rest import Obj

from .runtime import ClusterSim

SELECTED_NODE = "volume.kubernetes.io/selected-node"


def pick_node(sim: ClusterSim, workload: str) -> Obj:
    """A schedulable node (no NoSchedule taint), chosen by the workload's name so that reruns agree."""
    nodes = sorted(
        (
            n
            for n in sim.static_list("Node")
            if not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])
        ),
        key=lambda n: n["metadata"]["name"],
    )
    if not nodes:
        raise RuntimeError(f"{sim.name}: no schedulable node")
    return nodes[int(hashlib.sha256(workload.encode()).hexdigest(), 16) % len(nodes)]


def node_ip(node: Obj) -> str:
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


def claims_bound(sim: ClusterSim, namespace: str, claims: list[str]) -> bool:
    for claim in claims:
        pvc = sim.cached("PersistentVolumeClaim", namespace, claim)
        if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
            return False
    return True


def request_binding(sim: ClusterSim, namespace: str, claims: list[str], node: str) -> None:
    """Asks for the claims of WaitForFirstConsumer classes to be provisioned for ``node``, as the scheduler does."""
    for claim in claims:
        pvc = sim.cached("PersistentVolumeClaim", namespace, claim)
        if pvc is None or (pvc.get("status") or {}).get("phase") == "Bound":
            continue
        if SELECTED_NODE in (pvc["metadata"].get("annotations") or {}):
            continue
        storage_class = sim.static("StorageClass", pvc["spec"].get("storageClassName") or "")
        if storage_class is not None and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer":
            sim.step(pvc, "select-node", lambda current, n=node: _select(sim, current, n))


def _select(sim: ClusterSim, pvc: Obj, node: str) -> bool:
    sim.api.patch(pvc, {"metadata": {"annotations": {SELECTED_NODE: node}}})
    return True
