"""Writes a large, realistic Metro-DR snapshot (contract section 1) for benchmarks.

The object shapes follow the bundled healthy sample estate (itself validated against the real CRDs);
only the counts grow. Every VM is fully protected, so the audit walks its whole happy path.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
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


# ---- a drill estate: the healthy sample plus one application with many VMs ----------------------------------------

HEALTHY = Path(__file__).resolve().parent.parent / "samples" / "healthy"
_TEMPLATE_APP, _TEMPLATE_VM = "crm", "crm-web"  # the healthy sample's one-VM, one-disk application


def write_drill_estate(root: Path, *, vms: int = 50, app: str = "scale") -> dict[str, Any]:
    """The healthy sample estate plus application ``app/app-drpc``: ``vms`` protected VMs in namespace ``app``.

    Every object of the sample's crm application (hub DRPC, Placement and PlacementDecision; VM, PVC, VMI and
    Secret; the VRGs and the namespaces) is cloned with its names and UIDs changed: once per VM for the crm-web
    VM's own objects, once for the rest, whose lists naming crm-web (the primary VRG's protectedPVCs, the DRPC's
    protectedpvcs) get one entry per VM. The clones go beside each template file as ``<file>-<app>.yaml``. The
    sample's VolumeSnapshotClasses come along, so the drill finds a class for the disks' driver.
    """
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(HEALTHY, root)
    templates = {
        source: [o for o in _objects_in(source) if _TEMPLATE_APP in (_namespace(o), _name_if_namespace(o))]
        for source in sorted(HEALTHY.rglob("*.yaml"))
    }
    uids = {o["metadata"]["uid"] for objects in templates.values() for o in objects if o["metadata"].get("uid")}
    clone = _Cloner(app, uids)
    vm_names = [f"{app}-vm-{index:02d}" for index in range(vms)]
    for source, objects in templates.items():
        if not objects:
            continue
        clones: list[dict] = []
        for obj in objects:
            if _TEMPLATE_VM in obj["metadata"]["name"]:
                clones.extend(clone(obj, vm) for vm in vm_names)
            else:
                clones.append(clone(clone.expanded(obj, vm_names), None))
        target = root / source.relative_to(HEALTHY).with_name(f"{source.stem}-{app}.yaml")
        with open(target, "w") as out:
            yaml.dump({"apiVersion": "v1", "kind": "List", "items": clones}, out, Dumper=_Dumper)
    return {"app": f"{app}/{app}-drpc", "vms": vms, "pvcs": vms}


def _objects_in(path: Path) -> list[dict]:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    items = [item for d in documents for item in (d["items"] if d.get("kind") == "List" else [d])]
    return [item for item in items if "metadata" in item]  # the ramen operators' config files are not objects


def _namespace(obj: dict) -> str | None:
    return obj["metadata"].get("namespace")


def _name_if_namespace(obj: dict) -> str | None:
    return obj["metadata"]["name"] if obj.get("kind") == "Namespace" else None


class _Cloner:
    """Renames the template application's objects: crm-web -> a VM's name, crm -> the application's, and each UID
    a template object carries -> one derived from it and the clone's name (the same in every file, so an
    ownerReference or a drpc-uid annotation still points at its clone). Other UUIDs (Ceph cluster IDs) stay."""

    def __init__(self, app: str, uids: set[str]) -> None:
        self.app = app
        self.uids = uids
        self.pattern = re.compile(rf"{_TEMPLATE_VM}|\b{_TEMPLATE_APP}\b|{'|'.join(map(re.escape, sorted(uids)))}")

    def __call__(self, obj: Any, vm: str | None) -> Any:
        words = {_TEMPLATE_VM: vm or _TEMPLATE_VM, _TEMPLATE_APP: self.app}
        suffix = vm or self.app

        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            return words[found] if found in words else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{found}/{suffix}"))

        return json.loads(self.pattern.sub(replace, json.dumps(obj)))

    def expanded(self, obj: Any, vms: list[str]) -> Any:
        """``obj`` with every list item that names the template VM replaced by one clone per VM."""
        if isinstance(obj, dict):
            return {key: self.expanded(value, vms) for key, value in obj.items()}
        if isinstance(obj, list):
            items: list[Any] = []
            for item in obj:
                if _TEMPLATE_VM in json.dumps(item):
                    items.extend(self(item, vm) for vm in vms)
                else:
                    items.append(self.expanded(item, vms))
            return items
        return obj
