"""Which PVCs a KubeVirt VirtualMachine's disks live on."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.inventory import Obj

# Volume sources that hold no data of their own to replicate: recreated from the VM spec or an image.
EPHEMERAL_SOURCES = (
    "containerDisk",
    "cloudInitNoCloud",
    "cloudInitConfigDrive",
    "emptyDisk",
    "sysprep",
    "secret",
    "configMap",
    "serviceAccount",
    "downwardAPI",
    "downwardMetrics",
    "hostDisk",
)


@dataclass(frozen=True)
class VolumeRef:
    volume: str
    source: str  # the volume source key, e.g. "dataVolume", "persistentVolumeClaim", "containerDisk"
    pvc: str | None  # the claim the data lives on, None for sources without one
    from_template: bool = False  # True when a spec.dataVolumeTemplates entry creates it


def volumes(vm: Obj) -> list[VolumeRef]:
    spec = vm.get("spec") or {}
    templates = {(t.get("metadata") or {}).get("name") for t in spec.get("dataVolumeTemplates") or []}
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
        refs.append(VolumeRef(name, source, claim, from_template=claim in templates))
    return refs
