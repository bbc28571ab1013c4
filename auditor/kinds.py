"""The Kubernetes kinds drauditor reads, named once so every source and check agrees on them.

Checks name kinds by these short names; objects of any other kind are still kept, under
``<Kind>.<group>``, so nothing a snapshot holds is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindInfo:
    group: str
    version: str
    kind: str
    plural: str
    # Listed as PartialObjectMetadata: the apiserver sends names, labels and annotations, never the values.
    metadata_only: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


_RAMEN = "ramendr.openshift.io"
_OCM_CLUSTER = "cluster.open-cluster-management.io"
_INSTANCETYPE = "instancetype.kubevirt.io"
_SNAPSHOT = "snapshot.storage.k8s.io"

KINDS: dict[str, KindInfo] = {
    # hub
    "DRPolicy": KindInfo(_RAMEN, "v1alpha1", "DRPolicy", "drpolicies"),
    "DRCluster": KindInfo(_RAMEN, "v1alpha1", "DRCluster", "drclusters"),
    "DRPlacementControl": KindInfo(_RAMEN, "v1alpha1", "DRPlacementControl", "drplacementcontrols"),
    "ManagedCluster": KindInfo(_OCM_CLUSTER, "v1", "ManagedCluster", "managedclusters"),
    "Placement": KindInfo(_OCM_CLUSTER, "v1beta1", "Placement", "placements"),
    "PlacementDecision": KindInfo(_OCM_CLUSTER, "v1beta1", "PlacementDecision", "placementdecisions"),
    "PlacementRule": KindInfo("apps.open-cluster-management.io", "v1", "PlacementRule", "placementrules"),
    # hub and managed clusters
    "Deployment": KindInfo("apps", "v1", "Deployment", "deployments"),
    "ConfigMap": KindInfo("", "v1", "ConfigMap", "configmaps"),
    # managed clusters
    "DRClusterConfig": KindInfo(_RAMEN, "v1alpha1", "DRClusterConfig", "drclusterconfigs"),
    "VolumeReplicationGroup": KindInfo(_RAMEN, "v1alpha1", "VolumeReplicationGroup", "volumereplicationgroups"),
    "VirtualMachine": KindInfo("kubevirt.io", "v1", "VirtualMachine", "virtualmachines"),
    "VirtualMachineInstance": KindInfo("kubevirt.io", "v1", "VirtualMachineInstance", "virtualmachineinstances"),
    "DataVolume": KindInfo("cdi.kubevirt.io", "v1beta1", "DataVolume", "datavolumes"),
    "PersistentVolumeClaim": KindInfo("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    "StorageClass": KindInfo("storage.k8s.io", "v1", "StorageClass", "storageclasses"),
    "Namespace": KindInfo("", "v1", "Namespace", "namespaces"),
    "VolumeSnapshotClass": KindInfo(_SNAPSHOT, "v1", "VolumeSnapshotClass", "volumesnapshotclasses"),
    "Node": KindInfo("", "v1", "Node", "nodes"),
    "Secret": KindInfo("", "v1", "Secret", "secrets", metadata_only=True),
    "NetworkAttachmentDefinition": KindInfo(
        "k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition", "network-attachment-definitions"
    ),
    "VirtualMachineInstancetype": KindInfo(
        _INSTANCETYPE, "v1beta1", "VirtualMachineInstancetype", "virtualmachineinstancetypes"
    ),
    "VirtualMachineClusterInstancetype": KindInfo(
        _INSTANCETYPE, "v1beta1", "VirtualMachineClusterInstancetype", "virtualmachineclusterinstancetypes"
    ),
    "VirtualMachinePreference": KindInfo(
        _INSTANCETYPE, "v1beta1", "VirtualMachinePreference", "virtualmachinepreferences"
    ),
    "VirtualMachineClusterPreference": KindInfo(
        _INSTANCETYPE, "v1beta1", "VirtualMachineClusterPreference", "virtualmachineclusterpreferences"
    ),
}

_BY_GROUP_KIND = {(info.group, info.kind): name for name, info in KINDS.items()}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def kind_key(api_version: str, kind: str) -> str:
    """The inventory key of an object: its short name when known, else ``Kind.group``."""
    group = group_of(api_version)
    known = _BY_GROUP_KIND.get((group, kind))
    if known:
        return known
    return f"{kind}.{group}" if group else kind


# What a live audit lists on each side. Kinds a check reads must appear here, or a live audit never sees them.
HUB_KINDS = (
    "DRPolicy",
    "DRCluster",
    "DRPlacementControl",
    "ManagedCluster",
    "Placement",
    "PlacementDecision",
    "PlacementRule",
    "Deployment",
    "ConfigMap",
)
MANAGED_KINDS = (
    "VolumeReplicationGroup",
    "VirtualMachine",
    "VirtualMachineInstance",
    "DataVolume",
    "PersistentVolumeClaim",
    "StorageClass",
    "Namespace",
    "Node",
    "Deployment",
    "ConfigMap",
    "Secret",
    "DRClusterConfig",
    "NetworkAttachmentDefinition",
    "VirtualMachineInstancetype",
    "VirtualMachineClusterInstancetype",
    "VirtualMachinePreference",
    "VirtualMachineClusterPreference",
    "VolumeSnapshotClass",
)
# APIs an estate may not serve at all: not served means none exist, not "unreadable". PlacementRule is legacy;
# DRClusterConfig is newer than some Ramen releases; Multus and KubeVirt instancetypes are optional features, and so
# is the CSI snapshot API (external-snapshotter CRDs), which only drills need.
OPTIONAL_KINDS = frozenset(
    {
        "PlacementRule",
        "DRClusterConfig",
        "NetworkAttachmentDefinition",
        "VirtualMachineInstancetype",
        "VirtualMachineClusterInstancetype",
        "VirtualMachinePreference",
        "VirtualMachineClusterPreference",
        "VolumeSnapshotClass",
    }
)
