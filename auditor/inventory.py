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


# Annotations that carry an object's full content (kubectl apply's copy of the last applied manifest).
_CONTENT_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def metadata_only(obj: Obj) -> Obj:
    """A Secret reduced to what checks may know of it: whether it exists, and its labels.

    Every source passes Secrets through here before anything keeps them, so no value (data, stringData, or the copy
    kubectl apply leaves in an annotation) can reach a check, a capture or a report.
    """
    metadata = {k: v for k, v in meta(obj).items() if k != "managedFields"}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k not in _CONTENT_ANNOTATIONS}
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    # The same shape a live metadata-only list gives, whichever source the Secret came from.
    return {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""), "metadata": metadata}


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
        if key == "Secret":
            obj = metadata_only(obj)
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

    def inventories(self) -> list[Inventory]:
        return [self.hub, *(self.clusters[name] for name in sorted(self.clusters))]

    def unavailable(self) -> list[tuple[str, str, str]]:
        """(cluster, kind, reason) for everything the source could not read."""
        return [(src.name, kind, reason) for src in self.sources() for kind, reason in sorted(src.unavailable.items())]

    def sources(self) -> list[Inventory | CephData]:
        """Everything read, each with a name and what it could not read."""
        return [*self.inventories(), self.ceph]
