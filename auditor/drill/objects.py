"""The manifests a drill creates, one pure builder each (issue 6 design, steps 1-8).

Builders take plain values and return fresh dicts: the planner decides the values, the runner fills in what only
exists at run time (a snapshot's handle), and the guard checks what is sent. Every manifest carries
``drill_labels(drill_id)``, so cleanup can find it after the process that made it is gone.
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

from auditor.drill.names import (
    CANARY,
    CANARY_FILE,
    CANARY_READER,
    CANARY_WRITER,
    NETWORK_POLICY,
    SNAPSHOT_API,
    SOURCE_ANNOTATION,
    SOURCE_UID_ANNOTATION,
    drill_labels,
    drill_namespace,
)
from auditor.inventory import Obj, meta, name_of, namespace_of

SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
CANARY_MOUNT = posixpath.dirname(CANARY_FILE)


def _metadata(drill_id: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": drill_labels(drill_id)}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def namespace(drill_id: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(drill_id, drill_namespace(drill_id))}


def deny_all_policy(drill_id: str) -> Obj:
    """No traffic in or out of the drill namespace: a VM copy must never talk to production (its database peers,
    its clients) while it believes it is the real one."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(drill_id, NETWORK_POLICY, drill_namespace(drill_id)),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def volume_snapshot(drill_id: str, namespace: str, name: str, pvc: str, snapshot_class: str | None) -> Obj:
    """A CSI snapshot of ``pvc``, which must live beside it (the source disks' snapshots are the only drill objects
    outside a drill namespace)."""
    return _snapshot(drill_id, namespace, name, {"persistentVolumeClaimName": pvc}, snapshot_class)


def _snapshot(drill_id: str, namespace: str, name: str, source: dict[str, str], snapshot_class: str | None) -> Obj:
    spec: dict[str, Any] = {"source": source}
    if snapshot_class:
        spec["volumeSnapshotClassName"] = snapshot_class
    return {
        "apiVersion": SNAPSHOT_API,
        "kind": "VolumeSnapshot",
        "metadata": _metadata(drill_id, name, namespace),
        "spec": spec,
    }


def snapshot_content(
    drill_id: str,
    name: str,
    *,
    driver: str,
    snapshot_handle: str,
    volume_mode: str | None,
    snapshot_class: str | None,
    snapshot_name: str,
) -> Obj:
    """The primary's snapshot made known to the secondary (one stretched Ceph: the same handle is valid on both).

    deletionPolicy Retain: the primary's own content (Delete) removes the Ceph snapshot, exactly once; deleting this
    copy must not remove it a second time under the primary's feet.
    """
    spec: dict[str, Any] = {
        "deletionPolicy": "Retain",
        "driver": driver,
        "source": {"snapshotHandle": snapshot_handle},
        "volumeSnapshotRef": {"namespace": drill_namespace(drill_id), "name": snapshot_name},
    }
    if volume_mode:
        spec["sourceVolumeMode"] = volume_mode
    if snapshot_class:
        spec["volumeSnapshotClassName"] = snapshot_class
    return {
        "apiVersion": SNAPSHOT_API,
        "kind": "VolumeSnapshotContent",
        "metadata": _metadata(drill_id, name),
        "spec": spec,
    }


def restored_snapshot(drill_id: str, name: str, content: str, snapshot_class: str | None) -> Obj:
    """The secondary's VolumeSnapshot bound to the pre-provisioned content ``content``, in the drill namespace."""
    return _snapshot(drill_id, drill_namespace(drill_id), name, {"volumeSnapshotContentName": content}, snapshot_class)


def restored_pvc(
    drill_id: str,
    name: str,
    *,
    storage_class: str | None,
    access_modes: list[str],
    volume_mode: str | None,
    size: str,
    snapshot: str | None = None,
) -> Obj:
    """A PVC in the drill namespace, restored from ``snapshot`` when given (the canary's own PVC has none)."""
    spec: dict[str, Any] = {"accessModes": list(access_modes), "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume_mode:
        spec["volumeMode"] = volume_mode
    if snapshot is not None:
        spec["dataSource"] = {"apiGroup": SNAPSHOT_GROUP, "kind": "VolumeSnapshot", "name": snapshot}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(drill_id, name, drill_namespace(drill_id)),
        "spec": spec,
    }


def canary_pvc(drill_id: str, storage_class: str | None, size: str, snapshot: str | None = None) -> Obj:
    return restored_pvc(
        drill_id,
        CANARY,
        storage_class=storage_class,
        access_modes=["ReadWriteOnce"],
        volume_mode="Filesystem",
        size=size,
        snapshot=snapshot,
    )


# The restricted Pod Security profile: the canary runs in any namespace policy, and needs no privilege to write a file.
_RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _canary_pod(drill_id: str, name: str, image: str, script: str, restart: str, *, read_only: bool) -> Obj:
    container: dict[str, Any] = {
        "name": "canary",
        "image": image,
        "command": ["/bin/sh", "-c", script],
        "securityContext": copy.deepcopy(_RESTRICTED),
        "volumeMounts": [{"name": "canary", "mountPath": CANARY_MOUNT, "readOnly": read_only}],
    }
    if read_only:
        container["terminationMessagePolicy"] = "File"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(drill_id, name, drill_namespace(drill_id)),
        "spec": {
            "restartPolicy": restart,
            "containers": [container],
            "volumes": [{"name": "canary", "persistentVolumeClaim": {"claimName": CANARY, "readOnly": read_only}}],
        },
    }


def canary_writer(drill_id: str, image: str, interval_seconds: float) -> Obj:
    """Writes the wall clock to the canary file every interval, atomically (rename) and synced, so a snapshot holds
    either the previous or the new timestamp, never half of one."""
    script = (
        f"while :; do date -u +%s.%N > {CANARY_FILE}.tmp && mv -f {CANARY_FILE}.tmp {CANARY_FILE} && sync; "
        f"sleep {interval_seconds:g}; done"
    )
    return _canary_pod(drill_id, CANARY_WRITER, image, script, "Always", read_only=False)


def canary_reader(drill_id: str, image: str) -> Obj:
    """Reports the restored canary's timestamp as its termination message: no exec, no logs permission needed."""
    script = f"cat {CANARY_FILE} > /dev/termination-log"
    return _canary_pod(drill_id, CANARY_READER, image, script, "Never", read_only=True)


# --- the VM copy ---------------------------------------------------------------------------------------------------

# Volume sources whose data is not a disk to restore: cloud-init and the Secret/ConfigMap/ServiceAccount/downward
# projections. The restored disks were initialised long ago, and the objects these read are not in the drill namespace.
DROPPED_VOLUME_SOURCES = (
    "cloudInitNoCloud",
    "cloudInitConfigDrive",
    "secret",
    "configMap",
    "serviceAccount",
    "sysprep",
    "downwardAPI",
)
# Volume sources that point at a PVC, and the field naming the claim.
_CLAIM_SOURCES = {"dataVolume": "name", "persistentVolumeClaim": "claimName"}


def vm_copy(
    vm: Obj,
    drill_id: str,
    primary: str,
    readiness_probe: dict[str, Any] | None = None,
) -> tuple[Obj, tuple[str, ...]]:
    """The VirtualMachine to boot in the drill namespace on the secondary, and what was taken out of it, in words.

    Its disks are the restored PVCs (same names as the source PVCs); everything that would let it reach or pose as
    production is removed: secondary networks, MAC addresses, SMBIOS uuid/serial, credentials injection.
    """
    removed: list[str] = []
    source_spec = vm.get("spec") or {}
    spec = {
        k: copy.deepcopy(v)
        for k, v in source_spec.items()
        if k not in ("running", "runStrategy", "dataVolumeTemplates")
    }
    spec["runStrategy"] = "Always"
    for matcher in ("instancetype", "preference"):
        if isinstance(spec.get(matcher), dict) and spec[matcher].pop("revisionName", None):
            removed.append(f"spec.{matcher}.revisionName (a ControllerRevision in {namespace_of(vm)}) removed")
    template = spec.setdefault("template", {})
    source_meta = template.get("metadata") or {}
    template["metadata"] = {"labels": {**(source_meta.get("labels") or {}), **drill_labels(drill_id)}}
    if source_meta.get("annotations"):
        template["metadata"]["annotations"] = dict(source_meta["annotations"])
    body = template.setdefault("spec", {})
    dropped_volumes = _rewrite_volumes(body, removed)
    _drop_devices(body, dropped_volumes)
    if body.pop("accessCredentials", None):
        removed.append("accessCredentials removed (their Secrets are not in the drill namespace)")
    _detach_secondary_networks(body, removed)
    firmware = (body.get("domain") or {}).get("firmware")
    if isinstance(firmware, dict):
        for field in ("uuid", "serial"):
            if firmware.pop(field, None) is not None:
                removed.append(f"firmware.{field} removed (no SMBIOS twin of production)")
        if not firmware:
            body["domain"].pop("firmware")
    if readiness_probe is not None:
        if body.get("readinessProbe") is not None:
            removed.append("readinessProbe replaced by the drill target's readiness_probe")
        body["readinessProbe"] = copy.deepcopy(readiness_probe)
    metadata = _metadata(drill_id, name_of(vm), drill_namespace(drill_id))
    metadata["annotations"] = {
        SOURCE_ANNOTATION: f"{primary}/{namespace_of(vm)}/{name_of(vm)}",
        SOURCE_UID_ANNOTATION: meta(vm).get("uid", ""),
    }
    manifest = {"apiVersion": vm.get("apiVersion", "kubevirt.io/v1"), "kind": "VirtualMachine", "metadata": metadata}
    return {**manifest, "spec": spec}, tuple(removed)


def _rewrite_volumes(body: dict[str, Any], removed: list[str]) -> set[str]:
    """Point PVC-backed volumes at the restored PVC of the same name; drop the initialisation volumes. Returns the
    names of the dropped volumes."""
    kept, dropped = [], set()
    for volume in body.get("volumes") or []:
        name = volume.get("name", "")
        source = next((key for key in volume if key != "name"), "")
        if source in DROPPED_VOLUME_SOURCES:
            dropped.add(name)
            removed.append(f"volume {name} ({source}) and its disk removed")
            continue
        if source in _CLAIM_SOURCES:
            old = volume[source] or {}
            claim = {"claimName": old.get(_CLAIM_SOURCES[source], "")}
            claim.update({k: old[k] for k in ("readOnly", "hotpluggable") if k in old})
            volume = {"name": name, "persistentVolumeClaim": claim}
        kept.append(volume)
    if "volumes" in body:
        body["volumes"] = kept
    return dropped


def _drop_devices(body: dict[str, Any], volumes: set[str]) -> None:
    """Disks and filesystems are attached by volume name: a dropped volume's device must go too, or KubeVirt rejects
    the VM (a disk naming no volume)."""
    devices = (body.get("domain") or {}).get("devices")
    if not isinstance(devices, dict):
        return
    for key in ("disks", "filesystems"):
        if key in devices:
            devices[key] = [d for d in devices[key] if d.get("name") not in volumes]


def _detach_secondary_networks(body: dict[str, Any], removed: list[str]) -> None:
    """Keep only the pod network (isolated by the drill namespace's deny-all policy) and its interface, without a
    fixed MAC address: a production MAC on the copy's interface would clash wherever the two could meet."""
    networks = body.get("networks") or []
    pod_networks = {n.get("name") for n in networks if "pod" in n}
    multus = {n.get("name"): (n.get("multus") or {}).get("networkName", "?") for n in networks if "pod" not in n}
    devices = (body.get("domain") or {}).get("devices") or {}
    interfaces = []
    for interface in devices.get("interfaces") or []:
        name = interface.get("name")
        if name not in pod_networks:
            where = f"multus network {multus[name]}" if name in multus else "no pod network"
            removed.append(f"interface {name} ({where}) detached: secondary networks are not attached in a drill")
            continue
        interface = dict(interface)
        if interface.pop("macAddress", None):
            removed.append(f"macAddress of interface {name} removed")
        interfaces.append(interface)
    for name in sorted(set(multus) - {i.get("name") for i in devices.get("interfaces") or []}):
        removed.append(f"network {name} (multus network {multus[name]}) detached")
    if "networks" in body:
        body["networks"] = [n for n in networks if n.get("name") in pod_networks]
    if "interfaces" in devices:
        devices["interfaces"] = interfaces
