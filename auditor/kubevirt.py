"""Which PVCs a KubeVirt VirtualMachine's disks live on."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.inventory import Obj


@dataclass(frozen=True)
class VolumeRef:
    volume: str
    source: str  # the volume source key, e.g. "dataVolume", "persistentVolumeClaim", "containerDisk"
    pvc: str | None  # the claim the data lives on, None for sources without one (containerDisk, cloud-init, ...)


def volumes(vm: Obj) -> list[VolumeRef]:
    spec = vm.get("spec") or {}
    refs = []
    for volume in ((spec.get("template") or {}).get("spec") or {}).get("volumes") or []:
        name = volume.get("name", "")
        source = next((key for key in volume if key != "name"), "unknown")
        body = volume.get(source) or {}
        if source == "dataVolume":
            claim = body.get("name")
        elif source == "persistentVolumeClaim":
            claim = body.get("claimName")
        elif source == "ephemeral":
            claim = (body.get("persistentVolumeClaim") or {}).get("claimName")
        else:
            claim = None
        refs.append(VolumeRef(name, source, claim))
    return refs
