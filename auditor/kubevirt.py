"""What a KubeVirt VirtualMachine refers to: the PVCs its disks live on and their StorageClasses, its Multus networks,
the Secrets and ConfigMaps it reads, the instancetype and preference that shape it."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.inventory import Inventory, Obj, meta, name_of, namespace_of
from auditor.model import CheckMeta, Finding, ResourceRef, Status


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


# spec.instancetype.kind and spec.preference.kind as KubeVirt's finders accept them (case-insensitive, singular or
# plural); an empty kind means the cluster-wide VirtualMachineClusterInstancetype / VirtualMachineClusterPreference.
_INSTANCETYPE_KINDS = {
    "virtualmachineinstancetype": "VirtualMachineInstancetype",
    "virtualmachineinstancetypes": "VirtualMachineInstancetype",
    "virtualmachineclusterinstancetype": "VirtualMachineClusterInstancetype",
    "virtualmachineclusterinstancetypes": "VirtualMachineClusterInstancetype",
    "": "VirtualMachineClusterInstancetype",
}
_PREFERENCE_KINDS = {
    "virtualmachinepreference": "VirtualMachinePreference",
    "virtualmachinepreferences": "VirtualMachinePreference",
    "virtualmachineclusterpreference": "VirtualMachineClusterPreference",
    "virtualmachineclusterpreferences": "VirtualMachineClusterPreference",
    "": "VirtualMachineClusterPreference",
}
_NAMESPACED_KINDS = {"VirtualMachineInstancetype", "VirtualMachinePreference"}


@dataclass(frozen=True)
class InstancetypeRef:
    """An instancetype (spec.instancetype) or preference (spec.preference) a VM names."""

    kind: str  # one of the four instancetype.kubevirt.io kinds; the VM's own spelling if unknown
    name: str
    namespace: str | None  # the VM's namespace for a namespaced kind, None for a cluster-wide one

    def display(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


def instancetype_ref(vm: Obj) -> InstancetypeRef | None:
    """The instancetype ``vm`` names in spec.instancetype, None when its template sizes it directly."""
    return _matcher_ref(vm, "instancetype", _INSTANCETYPE_KINDS)


def preference_ref(vm: Obj) -> InstancetypeRef | None:
    """The preference ``vm`` names in spec.preference, None when it names none."""
    return _matcher_ref(vm, "preference", _PREFERENCE_KINDS)


def _matcher_ref(vm: Obj, field: str, kinds: dict[str, str]) -> InstancetypeRef | None:
    matcher = (vm.get("spec") or {}).get(field) or {}
    if not matcher.get("name"):
        return None
    given = matcher.get("kind") or ""
    kind = kinds.get(given.lower(), given)
    namespace = namespace_of(vm) if kind in _NAMESPACED_KINDS else None
    return InstancetypeRef(kind, matcher["name"], namespace)


def resolve_instancetype(inventory: Inventory, ref: InstancetypeRef) -> Obj | None:
    """The instancetype object ``ref`` names in ``inventory``, None when the cluster holds none of that name.

    KubeVirt sizes a VM from a ControllerRevision copy of the instancetype taken when the VM first used it; drauditor
    does not read ControllerRevisions, and the instancetype gives the same size unless it was edited since.
    """
    return inventory.get(ref.kind, ref.name, ref.namespace)


@dataclass(frozen=True)
class ClaimClass:
    """The StorageClass a disk's PVC uses, and where that was read."""

    storage_class: str | None  # None: the PVC wants no class, or none could be resolved
    source: str
    classless: bool = False  # the PVC asks for no class (storageClassName ""): it binds a pre-created PV


# The annotations that make a StorageClass the default: Kubernetes' for PVCs, and KubeVirt's virt default, which CDI
# prefers for DataVolumes that use the spec.storage API.
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
DEFAULT_VIRT_CLASS = "storageclass.kubevirt.io/is-default-virt-class"


def claim_storage_class(inventory: Inventory, vm: Obj, claim: str) -> ClaimClass:
    """The StorageClass of one disk PVC of ``vm``: the PVC's own spec, else the DataVolume (or dataVolumeTemplate)
    that creates it, else the default class the cluster would have given it."""
    namespace = namespace_of(vm)
    where = f"{namespace}/{claim}"
    pvc = inventory.get("PersistentVolumeClaim", claim, namespace)
    if pvc is not None:
        name = (pvc.get("spec") or {}).get("storageClassName")
        if name:
            return ClaimClass(name, f"PVC {where} spec.storageClassName")
        if name == "":
            return ClaimClass(None, f'PVC {where} requests no StorageClass (storageClassName "")', classless=True)
        return _default_class(inventory, (DEFAULT_CLASS,), f"PVC {where} names no StorageClass")
    dv_spec, dv_source = _data_volume_spec(inventory, vm, claim)
    if dv_spec is None:
        return ClaimClass(None, f"neither PVC {where} nor a DataVolume of that name exists")
    uses_storage_api = "storage" in dv_spec
    name = (dv_spec.get("storage") or dv_spec.get("pvc") or {}).get("storageClassName")
    if name:
        return ClaimClass(name, f"{dv_source} storageClassName")
    defaults = (DEFAULT_VIRT_CLASS, DEFAULT_CLASS) if uses_storage_api else (DEFAULT_CLASS,)
    return _default_class(inventory, defaults, f"{dv_source} names no StorageClass")


def _data_volume_spec(inventory: Inventory, vm: Obj, claim: str) -> tuple[Obj | None, str]:
    namespace = namespace_of(vm)
    dv = inventory.get("DataVolume", claim, namespace)
    if dv is not None:
        return dv.get("spec") or {}, f"DataVolume {namespace}/{claim} spec"
    for template in (vm.get("spec") or {}).get("dataVolumeTemplates") or []:
        if ((template.get("metadata") or {}).get("name")) == claim:
            return template.get("spec") or {}, f"dataVolumeTemplate {claim} spec"
    return None, ""


def _default_class(inventory: Inventory, annotations: tuple[str, ...], why: str) -> ClaimClass:
    """The class the cluster defaults to, by the first annotation any class carries; with several defaults,
    the newest, as Kubernetes picks since 1.26."""
    for annotation in annotations:
        defaults = [
            sc for sc in inventory.list("StorageClass") if (meta(sc).get("annotations") or {}).get(annotation) == "true"
        ]
        if defaults:
            newest = max(defaults, key=lambda sc: (meta(sc).get("creationTimestamp") or "", name_of(sc)))
            name = name_of(newest)
            return ClaimClass(name, f"{why}: the default class on {inventory.name} ({annotation})")
    return ClaimClass(None, f"{why}, and {inventory.name} has no default StorageClass")


@dataclass(frozen=True)
class NetworkRef:
    """A Multus network of a VM: the NetworkAttachmentDefinition its virt-launcher pod attaches."""

    network: str  # the name in spec.template.spec.networks
    namespace: str
    name: str

    def display(self) -> str:
        return f"{self.namespace}/{self.name}"


def multus_networks(vm: Obj) -> list[NetworkRef]:
    """The NADs ``vm`` attaches; networkName is "namespace/name", or "name" in the VM's own namespace."""
    template = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
    refs = []
    for network in template.get("networks") or []:
        network_name = (network.get("multus") or {}).get("networkName")
        if not network_name:
            continue  # the pod network, which every cluster has
        namespace, _, name = network_name.rpartition("/")
        refs.append(NetworkRef(network.get("name", ""), namespace or namespace_of(vm) or "", name))
    return refs


@dataclass(frozen=True)
class ConfigRef:
    """A Secret or ConfigMap a VM needs to start: its kind, name (in the VM's namespace) and the field naming it."""

    kind: str  # "Secret" or "ConfigMap"
    name: str
    field: str  # e.g. "volumes[cloudinitdisk].cloudInitNoCloud.secretRef.name"
    optional: bool  # the VM starts without it (a secret/configMap volume marked optional)


# Volume sources and the Secrets / ConfigMaps they read, by field path inside the source (KubeVirt v1 VirtualMachine
# schema). serviceAccount volumes are not judged: they name a ServiceAccount, whose token the cluster running the VM
# mints itself.
_VOLUME_REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "cloudInitNoCloud": (("Secret", "secretRef.name"), ("Secret", "networkDataSecretRef.name")),
    "cloudInitConfigDrive": (("Secret", "secretRef.name"), ("Secret", "networkDataSecretRef.name")),
    "secret": (("Secret", "secretName"),),
    "configMap": (("ConfigMap", "name"),),
    "sysprep": (("Secret", "secret.name"), ("ConfigMap", "configMap.name")),
    "containerDisk": (("Secret", "imagePullSecret"),),
}


def config_references(vm: Obj) -> list[ConfigRef]:
    """Every Secret and ConfigMap ``vm`` reads when it starts.

    Not included: credentials of dataVolumeTemplate sources (registry, http, s3 secretRef / certConfigMap). CDI
    uses them only to import a disk; after a failover Ramen restores the PVC and CDI imports nothing.
    """
    template = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
    refs = []
    for volume in template.get("volumes") or []:
        for source, paths in _VOLUME_REFERENCES.items():
            body = volume.get(source)
            if not isinstance(body, dict):
                continue
            for kind, path in paths:
                name = _dig(body, path)
                if name:
                    field = f"volumes[{volume.get('name', '')}].{source}.{path}"
                    refs.append(ConfigRef(kind, name, field, optional=bool(body.get("optional"))))
    for index, credential in enumerate(template.get("accessCredentials") or []):
        for method in ("sshPublicKey", "userPassword"):
            name = _dig(credential.get(method) or {}, "source.secret.secretName")
            if name:
                field = f"accessCredentials[{index}].{method}.source.secret.secretName"
                refs.append(ConfigRef("Secret", name, field, optional=False))
    kernel_pull_secret = _dig(template, "domain.firmware.kernelBoot.container.imagePullSecret")
    if kernel_pull_secret:
        field = "domain.firmware.kernelBoot.container.imagePullSecret"
        refs.append(ConfigRef("Secret", kernel_pull_secret, field, optional=False))
    return refs


def _dig(body: Obj, path: str) -> str | None:
    value: object = body
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) and value else None


def out_of_scope(check: CheckMeta, cluster: str, vm: Obj) -> Finding:
    """The SKIP finding of a VM whose namespace scope.exclude_namespaces leaves out, worded alike in every check."""
    return check.finding(
        Status.SKIP,
        f"VM {namespace_of(vm) or ''}/{name_of(vm)} on {cluster} is outside the audit scope "
        "(scope.exclude_namespaces).",
        cluster=cluster,
        resource=ResourceRef.of(vm),
    )
