"""Simulated PV controller, external-provisioner (ceph-csi RBD) and pvc-protection controller.

A Pending claim of a known StorageClass gets a dynamically provisioned PersistentVolume ``pvc-<claim uid>`` (an
RBD image in the shared Ceph: empty, or a restore of the VolumeSnapshot its dataSource names once that snapshot is
ready) and is bound to it. A claim of a WaitForFirstConsumer class waits for the scheduler's selected-node
annotation. Claims carry ``kubernetes.io/pvc-protection`` until no pod or VMI uses them; a volume whose claim is
gone is deleted with its image (reclaim policy Delete). Claims with other data sources (CDI populators) are left
alone, as are claims that are already bound.
"""

from __future__ import annotations

import time

from lab.rest import Obj

from auditor.quantity import parse_quantity

from .runtime import ClusterSim, add_finalizers, remove_finalizers
from .scheduling import SELECTED_NODE

PVC_PROTECTION = "kubernetes.io/pvc-protection"
_SNAPSHOT_GROUP = "snapshot.storage.k8s.io"


def claims_of_pod(pod: Obj) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"].get("volumes") or []
        if "persistentVolumeClaim" in v
    ]


def volume_claims(spec: Obj) -> dict[str, str]:
    """The claim each volume of a VMI (or VM template) spec uses, by volume name: PVC volumes, and DataVolume
    volumes (a DataVolume's PVC has its name)."""
    claims = {}
    for volume in spec.get("volumes") or []:
        if "persistentVolumeClaim" in volume:
            claims[volume["name"]] = volume["persistentVolumeClaim"]["claimName"]
        elif "dataVolume" in volume:
            claims[volume["name"]] = volume["dataVolume"]["name"]
    return claims


def claims_of_vmi_spec(spec: Obj) -> list[str]:
    return list(volume_claims(spec).values())


class PvBinder:
    def __init__(self, sim: ClusterSim) -> None:
        self.sim = sim

    def reconcile(self) -> None:
        for pvc in self.sim.objects("PersistentVolumeClaim"):
            if pvc["metadata"].get("deletionTimestamp"):
                if PVC_PROTECTION in (pvc["metadata"].get("finalizers") or []) and not self._in_use(pvc):
                    self.sim.step(pvc, "unprotect", self._unprotect)
                continue
            if PVC_PROTECTION not in (pvc["metadata"].get("finalizers") or []):
                self.sim.step(pvc, "protect", lambda current: add_finalizers(self.sim, current, [PVC_PROTECTION]))
            if self._bindable(pvc):
                self.sim.step(pvc, "Bound", self._provision)
        for pv in self.sim.objects("PersistentVolume"):
            if self._released(pv):
                self.sim.step(pv, "delete", self._delete_volume)

    # ---- binding ---------------------------------------------------------------------------------------------

    def _bindable(self, pvc: Obj) -> bool:
        meta, spec = pvc["metadata"], pvc["spec"]
        if (pvc.get("status") or {}).get("phase") == "Bound" or spec.get("volumeName"):
            return False
        if self.sim.knobs.never_binds(meta["namespace"], meta["name"]):
            return False
        storage_class = self.sim.static("StorageClass", spec.get("storageClassName") or "")
        if storage_class is None:
            return False
        if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and SELECTED_NODE not in (
            meta.get("annotations") or {}
        ):
            return False
        source = spec.get("dataSourceRef") or spec.get("dataSource")
        if source is None:
            return True
        restore = self._restore_source(pvc)
        return restore is not None and restore.size <= _request(pvc)

    def _restore_source(self, pvc: Obj):
        """The Ceph snapshot a claim restores: its dataSource VolumeSnapshot must be ready and bound."""
        source = pvc["spec"].get("dataSourceRef") or pvc["spec"].get("dataSource") or {}
        if source.get("kind") != "VolumeSnapshot" or source.get("apiGroup") != _SNAPSHOT_GROUP:
            return None
        snapshot = self.sim.cached("VolumeSnapshot", pvc["metadata"]["namespace"], source.get("name", ""))
        status = (snapshot or {}).get("status") or {}
        if not status.get("readyToUse") or not status.get("boundVolumeSnapshotContentName"):
            return None
        content = self.sim.cached("VolumeSnapshotContent", None, status["boundVolumeSnapshotContentName"])
        handle = ((content or {}).get("status") or {}).get("snapshotHandle")
        return self.sim.ceph.find_snapshot(handle) if handle else None

    def _provision(self, pvc: Obj) -> bool:
        if not self._bindable(pvc):
            return False
        spec = pvc["spec"]
        restore = self._restore_source(pvc) if (spec.get("dataSourceRef") or spec.get("dataSource")) else None
        volume_name = f"pvc-{pvc['metadata']['uid']}"
        created = self.sim.api.create(self._volume(pvc, volume_name, restore.canary if restore else None))
        self.sim.record(self.sim.api.patch_status(created, {"phase": "Bound"}), "Bound")
        driver = created["spec"]["csi"]["driver"]
        bound = self.sim.api.patch(
            pvc,
            {
                "metadata": {
                    "annotations": {
                        "pv.kubernetes.io/bind-completed": "yes",
                        "pv.kubernetes.io/bound-by-controller": "yes",
                        "volume.beta.kubernetes.io/storage-provisioner": driver,
                        "volume.kubernetes.io/storage-provisioner": driver,
                    }
                },
                "spec": {"volumeName": volume_name},
            },
        )
        storage = spec["resources"]["requests"]["storage"]
        status = {"phase": "Bound", "accessModes": spec["accessModes"], "capacity": {"storage": storage}}
        self.sim.record(self.sim.api.patch_status(bound, status), "Bound")
        return True

    def backfill(self) -> list[str]:
        """Creates the volumes that bound claims of a loaded estate name (snapshots do not capture
        PersistentVolumes), each an image in the shared Ceph, so those claims can be snapshotted. Set-up, not a
        controller's step: nothing is recorded. Returns the volumes created."""
        created = []
        for pvc in self.sim.objects("PersistentVolumeClaim"):
            name = pvc["spec"].get("volumeName")
            if not name or (pvc.get("status") or {}).get("phase") != "Bound":
                continue
            if (
                self.sim.cached("PersistentVolume", None, name) is not None
                or self.sim.static("StorageClass", pvc["spec"].get("storageClassName") or "") is None
            ):
                continue
            self.sim.api.patch_status(self.sim.api.create(self._volume(pvc, name, None)), {"phase": "Bound"})
            created.append(name)
        return created

    def _volume(self, pvc: Obj, name: str, canary: int | None) -> Obj:
        """A ceph-csi RBD PersistentVolume for ``pvc`` (its image created in the shared Ceph), as
        external-provisioner writes it."""
        meta, spec = pvc["metadata"], pvc["spec"]
        storage_class = self.sim.static("StorageClass", spec["storageClassName"])
        assert storage_class is not None
        params = storage_class.get("parameters") or {}
        driver = storage_class["provisioner"]
        handle = self.sim.ceph.create_image(params.get("clusterID", ""), meta["uid"], _request(pvc), canary=canary)
        volume_mode = spec.get("volumeMode") or "Filesystem"
        csi: Obj = {
            "driver": driver,
            "volumeHandle": handle,
            "volumeAttributes": {
                "clusterID": params.get("clusterID", ""),
                "pool": params.get("pool", ""),
                "imageName": f"csi-vol-{handle[-36:]}",
                "imageFeatures": params.get("imageFeatures", ""),
                "storage.kubernetes.io/csiProvisionerIdentity": f"{int(time.time() * 1000)}-8081-{driver}",
            },
        }
        if volume_mode == "Filesystem" and params.get("csi.storage.k8s.io/fstype"):
            csi["fsType"] = params["csi.storage.k8s.io/fstype"]
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": driver}},
            "spec": {
                "accessModes": spec["accessModes"],
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "resourceVersion": meta["resourceVersion"],
                },
                "csi": csi,
                "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
                "storageClassName": spec["storageClassName"],
                "volumeMode": volume_mode,
            },
        }

    # ---- deletion --------------------------------------------------------------------------------------------

    def _in_use(self, pvc: Obj) -> bool:
        namespace, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        pods = [
            p
            for p in self.sim.objects("Pod", namespace)
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and name in claims_of_pod(p)
        ]
        vmis = [
            v for v in self.sim.objects("VirtualMachineInstance", namespace) if name in claims_of_vmi_spec(v["spec"])
        ]
        return bool(pods or vmis)

    def _unprotect(self, pvc: Obj) -> bool:
        return not self._in_use(pvc) and remove_finalizers(self.sim, pvc, [PVC_PROTECTION])

    def _released(self, pv: Obj) -> bool:
        ref = pv["spec"].get("claimRef")
        if ref is None or pv["metadata"].get("deletionTimestamp"):
            return False
        if pv["spec"].get("persistentVolumeReclaimPolicy", "Delete") != "Delete":
            return False
        claim = self.sim.cached("PersistentVolumeClaim", ref.get("namespace"), ref.get("name", ""))
        return claim is None or claim["metadata"]["uid"] != ref.get("uid")

    def _delete_volume(self, pv: Obj) -> bool:
        if not self._released(pv):
            return False
        handle = (pv["spec"].get("csi") or {}).get("volumeHandle")
        deleted = self.sim.api.delete(pv)
        if handle:
            self.sim.ceph.delete_image(handle)
        return deleted


def _request(pvc: Obj) -> int:
    return int(parse_quantity(pvc["spec"]["resources"]["requests"]["storage"]))
