"""Simulated snapshot-controller and csi-snapshotter sidecar (external-snapshotter), driver ceph-csi RBD.

Dynamic provisioning: a VolumeSnapshot of a bound claim gets a VolumeSnapshotContent ``snapcontent-<snapshot uid>``
(driver and deletionPolicy from its VolumeSnapshotClass, or the driver's default class); the sidecar snapshots the
image in the shared Ceph at that instant and writes the content's status; the controller then marks the snapshot
bound and ready. Pre-provisioned: a content with ``source.snapshotHandle`` becomes ready when Ceph has that
snapshot, and a VolumeSnapshot naming it is bound to it (the content's ``volumeSnapshotRef.uid`` is filled in).
Finalizers are those of external-snapshotter; a Delete-policy content whose snapshot is gone is deleted, and its
Ceph snapshot with it. Status shapes follow the v1 CRDs: content times and sizes as integers, snapshot times as
RFC 3339 and sizes as quantities.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from lab.rest import Obj

from .runtime import ClusterSim, add_finalizers, now_wall, quantity, remove_finalizers, rfc3339

GROUP_VERSION = "snapshot.storage.k8s.io/v1"
SNAPSHOT_BOUND = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
SNAPSHOT_AS_SOURCE = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
CONTENT_BOUND = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
DEFAULT_CLASS = "snapshot.storage.kubernetes.io/is-default-class"


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


class SnapshotController:
    def __init__(self, sim: ClusterSim) -> None:
        self.sim = sim

    def reconcile(self) -> None:
        for snapshot in self.sim.objects("VolumeSnapshot"):
            self._reconcile_snapshot(snapshot)
        for content in self.sim.objects("VolumeSnapshotContent"):
            self._reconcile_content(content)

    # ---- VolumeSnapshot --------------------------------------------------------------------------------------

    def _reconcile_snapshot(self, snapshot: Obj) -> None:
        step = self.sim.step
        if snapshot["metadata"].get("deletionTimestamp"):
            if not self._restoring_from(snapshot):
                step(
                    snapshot, "release", lambda s: remove_finalizers(self.sim, s, [SNAPSHOT_AS_SOURCE, SNAPSHOT_BOUND])
                )
            return
        if not {SNAPSHOT_AS_SOURCE, SNAPSHOT_BOUND} <= set(snapshot["metadata"].get("finalizers") or []):
            step(snapshot, "protect", lambda s: add_finalizers(self.sim, s, [SNAPSHOT_AS_SOURCE, SNAPSHOT_BOUND]))
        if _status(snapshot).get("readyToUse"):
            return
        source = snapshot["spec"]["source"]
        if source.get("persistentVolumeClaimName"):
            content = self.sim.cached("VolumeSnapshotContent", None, _dynamic_name(snapshot))
            if content is None:
                step(snapshot, "content", self._create_content)
            elif _status(content).get("readyToUse"):
                step(snapshot, "ready", self._mark_ready)
        elif source.get("volumeSnapshotContentName"):
            content = self.sim.cached("VolumeSnapshotContent", None, source["volumeSnapshotContentName"])
            if content is None or not _refers_to(content, snapshot):
                step(snapshot, "error", self._content_missing)
            elif _status(content).get("readyToUse"):
                step(snapshot, "ready", self._mark_ready)

    def _create_content(self, snapshot: Obj) -> bool:
        meta = snapshot["metadata"]
        pvc = self.sim.cached(
            "PersistentVolumeClaim", meta["namespace"], snapshot["spec"]["source"]["persistentVolumeClaimName"]
        )
        volume = self.sim.cached("PersistentVolume", None, (pvc or {}).get("spec", {}).get("volumeName") or "")
        if pvc is None or volume is None or _status(pvc).get("phase") != "Bound":
            claim = snapshot["spec"]["source"]["persistentVolumeClaimName"]
            self._error(snapshot, f"the PVC {claim} is not yet bound to a PV, will not attempt to take a snapshot")
            return False
        driver = volume["spec"]["csi"]["driver"]
        snapshot_class = self._class_for(snapshot, driver)
        if snapshot_class is None:
            wanted = snapshot["spec"].get("volumeSnapshotClassName")
            reason = (
                f'volumesnapshotclass.snapshot.storage.k8s.io "{wanted}" not found'
                if wanted
                else (f"cannot find default snapshot class for driver {driver}")
            )
            self._error(snapshot, f"Failed to get snapshot class with error {reason}")
            return False
        content = {
            "apiVersion": GROUP_VERSION,
            "kind": "VolumeSnapshotContent",
            "metadata": {"name": _dynamic_name(snapshot)},
            "spec": {
                "deletionPolicy": snapshot_class["deletionPolicy"],
                "driver": snapshot_class["driver"],
                "source": {"volumeHandle": volume["spec"]["csi"]["volumeHandle"]},
                "sourceVolumeMode": volume["spec"].get("volumeMode") or "Filesystem",
                "volumeSnapshotClassName": snapshot_class["metadata"]["name"],
                "volumeSnapshotRef": {
                    "apiVersion": GROUP_VERSION,
                    "kind": "VolumeSnapshot",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "resourceVersion": meta["resourceVersion"],
                    "uid": meta["uid"],
                },
            },
        }
        self.sim.api.create(content)
        return True

    def _class_for(self, snapshot: Obj, driver: str) -> Obj | None:
        name = snapshot["spec"].get("volumeSnapshotClassName")
        if name:
            found = self.sim.static("VolumeSnapshotClass", name)
            return found if found is not None and found.get("driver") == driver else None
        defaults = [
            c
            for c in self.sim.static_list("VolumeSnapshotClass")
            if c.get("driver") == driver and (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"
        ]
        return defaults[0] if len(defaults) == 1 else None

    def _mark_ready(self, snapshot: Obj) -> bool:
        source = snapshot["spec"]["source"]
        name = source.get("volumeSnapshotContentName") or _dynamic_name(snapshot)
        content = self.sim.cached("VolumeSnapshotContent", None, name)
        if content is None or not _status(content).get("readyToUse") or not _refers_to(content, snapshot):
            return False
        if not content["spec"]["volumeSnapshotRef"].get("uid"):  # binding a pre-provisioned content
            self.sim.api.patch(content, {"spec": {"volumeSnapshotRef": {"uid": snapshot["metadata"]["uid"]}}})
        created = datetime.fromtimestamp(_status(content)["creationTime"] / 1e9, UTC)
        status = {
            "boundVolumeSnapshotContentName": name,
            "creationTime": rfc3339(created),
            "readyToUse": True,
            "restoreSize": quantity(_status(content)["restoreSize"]),
        }
        self.sim.record(self.sim.api.patch_status(snapshot, status), "ready")
        return True

    def _content_missing(self, snapshot: Obj) -> bool:
        name = snapshot["spec"]["source"]["volumeSnapshotContentName"]
        content = self.sim.cached("VolumeSnapshotContent", None, name)
        if content is not None and _refers_to(content, snapshot):
            return False
        message = (
            f"VolumeSnapshotContent {name} is missing"
            if content is None
            else f"VolumeSnapshotContent {name} is bound to a different snapshot"
        )
        self._error(snapshot, message)
        return False  # asked again on the next pass: the content may still come

    def _error(self, obj: Obj, message: str) -> None:
        """Reports a failed attempt on the object's status, once per distinct message (retries are silent)."""
        if (_status(obj).get("error") or {}).get("message") == message:
            return
        status = {"readyToUse": False, "error": {"message": message, "time": rfc3339(now_wall())}}
        self.sim.record(self.sim.api.patch_status(obj, status), "error")

    def _restoring_from(self, snapshot: Obj) -> bool:
        """A claim is still being restored from this snapshot (the as-source finalizer holds it)."""
        meta = snapshot["metadata"]
        for pvc in self.sim.objects("PersistentVolumeClaim", meta["namespace"]):
            source = pvc["spec"].get("dataSourceRef") or pvc["spec"].get("dataSource") or {}
            restoring = _status(pvc).get("phase") != "Bound" and not pvc["metadata"].get("deletionTimestamp")
            if source.get("kind") == "VolumeSnapshot" and source.get("name") == meta["name"] and restoring:
                return True
        return False

    # ---- VolumeSnapshotContent -------------------------------------------------------------------------------

    def _reconcile_content(self, content: Obj) -> None:
        step = self.sim.step
        bound = self._snapshot_of(content) is not None
        if content["metadata"].get("deletionTimestamp"):
            if not bound:
                step(content, "release", self._release_content)
            return
        if bound and CONTENT_BOUND not in (content["metadata"].get("finalizers") or []):
            step(content, "protect", lambda c: add_finalizers(self.sim, c, [CONTENT_BOUND]))
        source = content["spec"]["source"]
        if not bound and source.get("volumeHandle") and content["spec"]["deletionPolicy"] == "Delete":
            step(content, "delete", self._delete_orphan)
        elif not _status(content).get("readyToUse") and not _status(content).get("error"):
            step(content, "ready", self._take if source.get("volumeHandle") else self._import)

    def _snapshot_of(self, content: Obj) -> Obj | None:
        ref = content["spec"]["volumeSnapshotRef"]
        snapshot = self.sim.cached("VolumeSnapshot", ref.get("namespace"), ref.get("name", ""))
        if snapshot is None or (ref.get("uid") and snapshot["metadata"]["uid"] != ref["uid"]):
            return None
        return snapshot

    def _take(self, content: Obj) -> bool:
        """csi-snapshotter: CreateSnapshot on the content's volume, now."""
        ref = content["spec"]["volumeSnapshotRef"]
        try:
            taken = self.sim.ceph.snapshot(
                content["spec"]["source"]["volumeHandle"],
                ref.get("uid") or content["metadata"]["uid"],
                time.time_ns(),
                round(self.sim.knobs.canary_lag_seconds * 1e9),
            )
        except LookupError as exc:
            self._error(
                content, f"Failed to check and update snapshot content: rpc error: code = NotFound desc = {exc}"
            )
            return True
        status = {
            "snapshotHandle": taken.handle,
            "creationTime": taken.created_ns,
            "readyToUse": True,
            "restoreSize": taken.size,
        }
        self.sim.record(self.sim.api.patch_status(content, status), "ready")
        return True

    def _import(self, content: Obj) -> bool:
        """csi-snapshotter on a pre-provisioned content: the driver reports the snapshot's state."""
        handle = content["spec"]["source"]["snapshotHandle"]
        found = self.sim.ceph.find_snapshot(handle)
        if found is None:
            message = f"snapshot {handle} not found"
            self._error(
                content, f"Failed to check and update snapshot content: rpc error: code = NotFound desc = {message}"
            )
            return True
        status = {
            "snapshotHandle": handle,
            "creationTime": found.created_ns,
            "readyToUse": True,
            "restoreSize": found.size,
        }
        self.sim.record(self.sim.api.patch_status(content, status), "ready")
        return True

    def _delete_orphan(self, content: Obj) -> bool:
        return self._snapshot_of(content) is None and self.sim.api.delete(content)

    def _release_content(self, content: Obj) -> bool:
        if self._snapshot_of(content) is not None:
            return False
        handle = _status(content).get("snapshotHandle")
        if handle and content["spec"]["deletionPolicy"] == "Delete":
            self.sim.ceph.delete_snapshot(handle)
        return remove_finalizers(self.sim, content, [CONTENT_BOUND])


def _dynamic_name(snapshot: Obj) -> str:
    return f"snapcontent-{snapshot['metadata']['uid']}"


def _refers_to(content: Obj, snapshot: Obj) -> bool:
    ref, meta = content["spec"]["volumeSnapshotRef"], snapshot["metadata"]
    return (
        ref.get("name") == meta["name"]
        and ref.get("namespace") == meta["namespace"]
        and ref.get("uid") in (None, "", meta["uid"])
    )
