"""One cached, indexed view of everything read from one cluster.

Sources fill it once; checks only read it, so a check can never trigger I/O or an N+1 fetch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditor.kinds import kind_key

Obj = dict[str, Any]


def meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def name_of(obj: Obj) -> str:
    return meta(obj).get("name", "")


def namespace_of(obj: Obj) -> str | None:
    return meta(obj).get("namespace")


def labels_of(obj: Obj) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def conditions(obj: Obj) -> dict[str, dict[str, Any]]:
    """status.conditions by type (the last entry wins, as controllers overwrite in place)."""
    return {c.get("type", ""): c for c in ((obj.get("status") or {}).get("conditions") or []) if isinstance(c, dict)}


def condition_true(obj: Obj, condition_type: str) -> bool:
    return (conditions(obj).get(condition_type) or {}).get("status") == "True"


# Source-level redaction: Inventory.add passes every object of every source through ``redacted`` before anything
# keeps it, so values no check needs (secrets, cloud-init user data) never reach a check, a capture, a report or a
# log. Checks read names, labels, conditions and disks; none of them reads what is removed here.

# Annotations that carry an object's full content: kubectl apply's copy of the last applied manifest holds whatever
# the manifest held, Secret values and cloud-init user data included. Dropped from every object.
_CONTENT_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _cloud_init_paths(volumes: str) -> tuple[str, ...]:
    """The inline user and network data of KubeVirt's two cloud-init volume sources in a volume list."""
    return tuple(
        f"{volumes}.*.{source}.{field}"
        for source in ("cloudInitNoCloud", "cloudInitConfigDrive")
        for field in ("userData", "userDataBase64", "networkData", "networkDataBase64")
    )


# Values replaced by a marker, by inventory kind: dotted paths, "*" for every item of a list (fields as in the
# KubeVirt CRDs of tests/fixtures/crds/kubevirt). Cloud-init data routinely holds passwords, SSH keys and
# registration tokens; its secretRef alternatives are only names and stay.
REDACTED_FIELDS: dict[str, tuple[str, ...]] = {
    "VirtualMachine": _cloud_init_paths("spec.template.spec.volumes"),
    "VirtualMachineInstance": _cloud_init_paths("spec.volumes"),
}


def redaction_marker(value: object) -> str:
    """What stands in for a removed value: its size at most, never a digest (a short secret's hash is guessable)."""
    size = f"{len(value.encode())} bytes" if isinstance(value, str) else f"a {type(value).__name__}"
    return f"<redacted by drauditor: {size}>"


def _redact_path(node: Any, path: tuple[str, ...]) -> Any:
    """``node`` with the values at ``path`` replaced by markers; containers are copied only where a value is
    replaced, so the caller's object never changes. A path that does not fit the data (a malformed snapshot) is
    left alone: the checks report such objects, this only has to hide values."""
    if not path:
        return node if node is None else redaction_marker(node)
    step, rest = path[0], path[1:]
    if step == "*":
        if not isinstance(node, list):
            return node
        items = [_redact_path(item, rest) for item in node]
        return node if all(new is old for new, old in zip(items, node, strict=True)) else items
    if not isinstance(node, dict) or step not in node:
        return node
    value = _redact_path(node[step], rest)
    return node if value is node[step] else {**node, step: value}


def _without_content_annotations(obj: Obj) -> Obj:
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict) or not any(name in annotations for name in _CONTENT_ANNOTATIONS):
        return obj
    kept = {k: v for k, v in annotations.items() if k not in _CONTENT_ANNOTATIONS}
    trimmed = {k: v for k, v in metadata.items() if k != "annotations"}
    return {**obj, "metadata": {**trimmed, "annotations": kept} if kept else trimmed}


def metadata_only(obj: Obj) -> Obj:
    """A Secret reduced to what checks may know of it: whether it exists, and its labels.

    Unlike other kinds, a Secret keeps nothing but its metadata (an allowlist): whatever field a Secret-like object
    carries (data, stringData, a type's extra fields), no value can reach a check, a capture or a report.
    """
    metadata = {k: v for k, v in meta(_without_content_annotations(obj)).items() if k != "managedFields"}
    # The same shape a live metadata-only list gives, whichever source the Secret came from.
    return {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""), "metadata": metadata}


def redacted(obj: Obj, kind: str) -> Obj:
    """What the inventory keeps of ``obj`` (of inventory kind ``kind``); ``obj`` itself is never changed."""
    if kind == "Secret":
        return metadata_only(obj)
    obj = _without_content_annotations(obj)
    for path in REDACTED_FIELDS.get(kind, ()):
        obj = _redact_path(obj, tuple(path.split(".")))
    return obj


class Inventory:
    """Objects of one cluster, indexed by kind, namespace/name and namespace."""

    def __init__(self, name: str, objects: Iterable[Obj] = ()) -> None:
        self.name = name
        # Kinds that could not be read, with why (not served, forbidden, unreachable): checks that need them
        # become error findings instead of judging an inventory that silently lacks them.
        self.unavailable: dict[str, str] = {}
        self._by_kind: dict[str, list[Obj]] = defaultdict(list)
        self._by_key: dict[tuple[str, str | None, str], Obj] = {}
        self._by_namespace: dict[tuple[str, str | None], list[Obj]] = defaultdict(list)
        for obj in objects:
            self.add(obj)

    def add(self, obj: Obj) -> Obj | None:
        """Index ``obj``; returns the object already held under the same kind/namespace/name, if any."""
        key = kind_key(obj.get("apiVersion", ""), obj.get("kind", ""))
        obj = redacted(obj, key)
        identity = (key, namespace_of(obj), name_of(obj))
        previous = self._by_key.get(identity)
        if previous is not None:
            return previous
        self._by_key[identity] = obj
        self._by_kind[key].append(obj)
        self._by_namespace[(key, namespace_of(obj))].append(obj)
        return None

    def kinds(self) -> list[str]:
        return sorted(self._by_kind)

    def list(self, kind: str) -> list[Obj]:
        return self._by_kind.get(kind, [])

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        return self._by_key.get((kind, namespace, name))

    def in_namespace(self, kind: str, namespace: str | None) -> list[Obj]:
        return self._by_namespace.get((kind, namespace), [])

    def named(self, kind: str, name: str) -> list[Obj]:
        """Objects of ``kind`` called ``name`` in any namespace, for operators whose namespace depends on how they
        were installed."""
        return [obj for obj in self.list(kind) if name_of(obj) == name]

    def __len__(self) -> int:
        return len(self._by_key)


@dataclass
class CephData:
    """Parsed Ceph command outputs by file stem (``status``, ``mon_dump``, ...), as the snapshot holds them."""

    outputs: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    # Outputs a live source could not get ("ceph:<stem>" -> why), named like the kinds_read of the Ceph checks.
    unavailable: dict[str, str] = field(default_factory=dict)
    name: str = "ceph"

    def get(self, stem: str) -> Any:
        return self.outputs.get(stem)


@dataclass(frozen=True)
class ClusterAccess:
    """How a live source reached one cluster, for the report's provenance: names only, never a credential."""

    cluster: str  # "hub" or the managed cluster name
    endpoint: str  # the API server URL
    context: str | None  # the kubeconfig context; None in a pod using its service account
    user: str | None  # the kubeconfig user entry's name, or system:serviceaccount:<namespace>:<name> in a pod


@dataclass
class Estate:
    """Everything one audit looks at: the hub, the managed clusters and the Ceph cluster under them."""

    hub: Inventory
    clusters: dict[str, Inventory]
    ceph: CephData
    captured_at: datetime | None
    source: str
    origin: str
    input_digests: dict[str, str] = field(default_factory=dict)
    access: tuple[ClusterAccess, ...] = ()  # live sources only: one per cluster read

    def inventories(self) -> list[Inventory]:
        return [self.hub, *(self.clusters[name] for name in sorted(self.clusters))]

    def unavailable(self) -> list[tuple[str, str, str]]:
        """(cluster, kind, reason) for everything the source could not read."""
        return [(src.name, kind, reason) for src in self.sources() for kind, reason in sorted(src.unavailable.items())]

    def sources(self) -> list[Inventory | CephData]:
        """Everything read, each with a name and what it could not read."""
        return [*self.inventories(), self.ceph]
