"""Writes a large, realistic Metro-DR snapshot (contract section 1) for benchmarks.

The object shapes follow the bundled healthy sample estate (itself validated against the real CRDs);
only the counts grow. Every VM is fully protected, so the audit walks its whole happy path.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
CAPTURED_AT = "2026-11-20T09:00:00Z"
STORAGE_CLASS = "ocs-external-storagecluster-ceph-rbd"
PRIMARY, SECONDARY = "prod-east", "prod-west"
TRUE = "True"


def _condition(kind: str, reason: str = "Succeeded") -> dict[str, Any]:
    return {
        "type": kind,
        "status": TRUE,
        "reason": reason,
        "message": f"{kind} is true",
        "lastTransitionTime": "2026-11-19T08:00:00Z",
        "observedGeneration": 1,
    }


def _hub_objects(apps: int) -> dict[str, list[dict]]:
    policy = {
        "apiVersion": "ramendr.openshift.io/v1alpha1",
        "kind": "DRPolicy",
        "metadata": {"name": "odr-metro"},
        "spec": {
            "drClusters": [PRIMARY, SECONDARY],
            "schedulingInterval": "",
            "replicationClassSelector": {},
            "volumeSnapshotClassSelector": {},
        },
        "status": {"conditions": [_condition("Validated")]},
    }
    drpcs, placements, decisions = [], [], []
    for index in range(apps):
        ns, name = f"app-{index:04d}", f"app-{index:04d}-drpc"
        drpcs.append(
            {
                "apiVersion": "ramendr.openshift.io/v1alpha1",
                "kind": "DRPlacementControl",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "drPolicyRef": {"name": "odr-metro"},
                    "placementRef": {"kind": "Placement", "name": f"{ns}-pl"},
                    "preferredCluster": PRIMARY,
                    "pvcSelector": {"matchLabels": {"appname": ns}},
                },
                "status": {
                    "phase": "Deployed",
                    "progression": "Completed",
                    "conditions": [_condition(c) for c in ("Available", "PeerReady", "Protected")],
                    "preferredDecision": {"clusterName": PRIMARY, "clusterNamespace": PRIMARY},
                    "lastUpdateTime": CAPTURED_AT,
                },
            }
        )
        placements.append(
            {
                "apiVersion": "cluster.open-cluster-management.io/v1beta1",
                "kind": "Placement",
                "metadata": {"name": f"{ns}-pl", "namespace": ns},
                "spec": {"clusterSets": ["metro"]},
            }
        )
        decisions.append(
            {
                "apiVersion": "cluster.open-cluster-management.io/v1beta1",
                "kind": "PlacementDecision",
                "metadata": {
                    "name": f"{ns}-pl-decision-1",
                    "namespace": ns,
                    "labels": {"cluster.open-cluster-management.io/placement": f"{ns}-pl"},
                },
                "status": {"decisions": [{"clusterName": PRIMARY, "reason": "DRPC"}]},
            }
        )
    return {"drpolicies": [policy], "drpcs": drpcs, "placements": placements, "placementdecisions": decisions}


def _vm(ns: str, name: str, disks: list[str]) -> dict[str, Any]:
    root, *data = disks
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "runStrategy": "Always",
            "dataVolumeTemplates": [
                {
                    "metadata": {"name": root, "labels": {"appname": ns}},
                    "spec": {
                        "storage": {"storageClassName": STORAGE_CLASS, "resources": {"requests": {"storage": "20Gi"}}},
                        "source": {"blank": {}},
                    },
                }
            ],
            "template": {
                "spec": {
                    "domain": {
                        "devices": {"disks": [{"name": d, "disk": {"bus": "virtio"}} for d in disks]},
                        "resources": {"requests": {"memory": "2Gi"}},
                    },
                    "volumes": [{"name": root, "dataVolume": {"name": root}}]
                    + [{"name": d, "persistentVolumeClaim": {"claimName": d}} for d in data],
                }
            },
        },
    }


def _pvc(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "labels": {"appname": ns}},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "volumeMode": "Block",
            "storageClassName": STORAGE_CLASS,
            "resources": {"requests": {"storage": "20Gi"}},
        },
        "status": {"phase": "Bound", "accessModes": ["ReadWriteMany"], "capacity": {"storage": "20Gi"}},
    }


def _vrg(ns: str, name: str, state: str, pvcs: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "ramendr.openshift.io/v1alpha1",
        "kind": "VolumeReplicationGroup",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicationState": state.lower(),
            "pvcSelector": {"matchLabels": {"appname": ns}},
            "s3Profiles": ["s3-east", "s3-west"],
            "sync": {},
        },
        "status": {
            "state": state,
            "conditions": [_condition(c) for c in ("DataReady", "ClusterDataReady", "ClusterDataProtected")],
            "protectedPVCs": [
                {
                    "namespace": ns,
                    "name": p,
                    "storageClassName": STORAGE_CLASS,
                    "conditions": [_condition("DataReady"), _condition("ClusterDataProtected")],
                }
                for p in pvcs
            ]
            if state == "Primary"
            else [],
        },
    }


def write_estate(
    root: Path, *, apps: int = 1000, vms_per_app: int = 5, disks_per_vm: int = 2, ceph_from: Path | None = None
) -> dict[str, int]:
    """Writes the snapshot under ``root``; returns the object counts."""
    if root.exists():
        shutil.rmtree(root)
    hub = _hub_objects(apps)
    primary: dict[str, list[dict]] = {"vms": [], "pvcs": [], "vrgs": []}
    secondary: dict[str, list[dict]] = {"vrgs": []}
    for index in range(apps):
        ns = f"app-{index:04d}"
        app_pvcs = []
        for vm_index in range(vms_per_app):
            vm_name = f"{ns}-vm-{vm_index}"
            disks = [f"{vm_name}-disk-{d}" for d in range(disks_per_vm)]
            primary["vms"].append(_vm(ns, vm_name, disks))
            primary["pvcs"].extend(_pvc(ns, d) for d in disks)
            app_pvcs.extend(disks)
        primary["vrgs"].append(_vrg(ns, f"{ns}-drpc", "Primary", app_pvcs))
        secondary["vrgs"].append(_vrg(ns, f"{ns}-drpc", "Secondary", []))
    for folder, groups in (("hub", hub), (f"clusters/{PRIMARY}", primary), (f"clusters/{SECONDARY}", secondary)):
        (root / folder).mkdir(parents=True)
        for name, items in groups.items():
            with open(root / folder / f"{name}.yaml", "w") as out:
                yaml.dump({"apiVersion": "v1", "kind": "List", "items": items}, out, Dumper=_Dumper)
    (root / "snapshot.yaml").write_text(f"capturedAt: {CAPTURED_AT}\n")
    if ceph_from is not None:
        shutil.copytree(ceph_from, root / "ceph")
    return {"drpcs": apps, "vms": len(primary["vms"]), "pvcs": len(primary["pvcs"])}
