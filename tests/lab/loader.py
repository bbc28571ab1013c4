"""Replays a snapshot directory (docs/contract.md section 1) into a running lab.

``hub/`` goes to the lab's ``hub`` cluster and ``clusters/<name>/`` to the cluster of that name. Objects are
created as captured, minus the metadata only a server may set; ``status`` is then written through the ``/status``
subresource where the kind has one (a create there ignores it). The server assigns new UIDs, so ownerReferences
are re-pointed to the owners' new UIDs; owners are created first for that reason.

``generation`` and ``creationTimestamp`` are the server's to set: through the API every replayed object would be
brand new, and a captured ``status.observedGeneration`` of 12 over a ``generation`` of 1 is a state no real cluster
shows. Custom resources are stored in etcd as JSON, so the loader writes the captured values there directly;
built-in kinds (stored as protobuf) keep the lab's values and are listed in ``ClusterLoad.server_metadata_reset``.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

from kubernetes.client.exceptions import ApiException

from auditor.inventory import Inventory
from auditor.kinds import group_of
from auditor.snapshot import load_snapshot

from .launcher import Lab, etcd_request
from .rest import Obj, Resource

# Set by the server on every write; a create that carries them is refused or has them overwritten.
SERVER_MANAGED = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
RESTORED = ("generation", "creationTimestamp")  # written into etcd afterwards, for custom resources


@dataclass
class ClusterLoad:
    """What one cluster received."""

    created: int = 0
    replaced: int = 0  # already there (e.g. the 'default' namespace) and overwritten with the captured object
    status_written: int = 0
    namespaces_added: list[str] = field(default_factory=list)  # needed by objects, absent from the snapshot
    dropped_owner_refs: list[str] = field(default_factory=list)  # owners not in the snapshot: GC would delete
    server_metadata_restored: int = 0  # custom resources given their captured generation / creationTimestamp
    server_metadata_reset: list[str] = field(default_factory=list)  # built-in objects that keep the lab's


def objects_of(inventory: Inventory) -> list[Obj]:
    return [obj for kind in inventory.kinds() for obj in inventory.list(kind)]


def describe(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else meta.get("name")
    return f"{obj.get('kind')} {where}"


def path_of(resource: Resource, obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{resource.collection(meta.get('namespace'))}/{meta['name']}"


def load(lab: Lab, snapshot: Path, workers: int = 8) -> dict[str, ClusterLoad]:
    """Loads every object of ``snapshot`` into ``lab``; returns what each cluster received."""
    estate = load_snapshot(snapshot)
    inventories = {"hub": estate.hub, **estate.clusters}
    unknown = sorted(set(inventories) - set(lab.clusters))
    if unknown:
        raise ValueError(f"{snapshot}: the lab has no cluster named {', '.join(unknown)} (it has {lab.clusters})")
    with ThreadPoolExecutor(len(inventories)) as pool:
        loads = pool.map(lambda item: _ClusterLoader(lab, item[0], workers).run(item[1]), inventories.items())
        return dict(zip(inventories, loads, strict=True))


class _ClusterLoader:
    def __init__(self, lab: Lab, cluster: str, workers: int) -> None:
        self.rest = lab.rest(cluster)
        self.etcd_url = lab.etcd_url
        self.etcd_prefix = lab.etcd_prefix(cluster)
        self.workers = workers
        self.result = ClusterLoad()
        self.new_uids: dict[tuple[str, str, str | None, str], str] = {}  # identity -> uid the lab assigned
        self.lock = Lock()
        self.resources = self.rest.discover()
        crds = self.rest.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
        self.custom = {(crd["spec"]["group"], crd["spec"]["names"]["plural"]) for crd in crds}

    def run(self, inventory: Inventory) -> ClusterLoad:
        objects = objects_of(inventory)
        missing = sorted({f"{o['apiVersion']} {o['kind']}" for o in objects if self._resource(o) is None})
        if missing:
            raise ValueError(f"{inventory.name}: the lab serves no resource for {'; '.join(missing)} (CRD missing?)")
        namespaces = [o for o in objects if _is_namespace(o)]
        needed = {o["metadata"]["namespace"] for o in objects if o["metadata"].get("namespace")}
        self._each(namespaces)
        for name in sorted(needed - {o["metadata"]["name"] for o in namespaces}):
            self._ensure_namespace(name)
        for wave in _owner_waves([o for o in objects if not _is_namespace(o)]):
            self._each(wave)
        self._each([o for o in objects if any(key in o["metadata"] for key in RESTORED)], self._restore_metadata)
        return self.result

    def _resource(self, obj: Obj) -> Resource | None:
        return self.resources.get((obj.get("apiVersion", ""), obj.get("kind", "")))

    def _each(self, objects: list[Obj], action: Callable[[Obj], None] | None = None) -> None:
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(action or self._load_one, objects))

    def _ensure_namespace(self, name: str) -> None:
        try:
            self.rest.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
            self.result.namespaces_added.append(name)
        except ApiException as exc:
            if exc.status != 409:  # 409: a namespace every cluster has, e.g. 'default'
                raise

    def _load_one(self, obj: Obj) -> None:
        resource = self._resource(obj)
        assert resource is not None
        body = self._body(obj)
        try:
            try:
                stored = self.rest.request("POST", resource.collection(obj["metadata"].get("namespace")), body=body)
                counter = "created"
            except ApiException as exc:
                if exc.status != 409:
                    raise
                current = self.rest.get(path_of(resource, obj))
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                stored = self.rest.request("PUT", path_of(resource, obj), body=body)
                counter = "replaced"
            if resource.has_status and "status" in obj:
                stored["status"] = copy.deepcopy(obj["status"])
                stored = self.rest.request("PUT", path_of(resource, obj) + "/status", body=stored)
                with self.lock:
                    self.result.status_written += 1
        except ApiException as exc:
            raise RuntimeError(f"lab refused {describe(obj)}: HTTP {exc.status}: {exc.body}") from exc
        with self.lock:
            setattr(self.result, counter, getattr(self.result, counter) + 1)
            self.new_uids[_identity(obj)] = stored["metadata"]["uid"]

    def _restore_metadata(self, obj: Obj) -> None:
        resource = self._resource(obj)
        assert resource is not None
        group = group_of(obj["apiVersion"])
        if (group, resource.plural) not in self.custom:
            with self.lock:
                self.result.server_metadata_reset.append(describe(obj))
            return
        meta = obj["metadata"]
        key = "/".join([self.etcd_prefix, group, resource.plural, *filter(None, [meta.get("namespace")]), meta["name"]])
        kvs = etcd_request(self.etcd_url, "range", key).get("kvs") or []
        stored = json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None
        if not isinstance(stored, dict):
            raise RuntimeError(f"lab: etcd holds no JSON for {describe(obj)} under {key}")
        stored["metadata"].update({k: meta[k] for k in RESTORED if k in meta})
        etcd_request(self.etcd_url, "put", key, base64.b64encode(json.dumps(stored).encode()).decode())
        with self.lock:
            self.result.server_metadata_restored += 1

    def _body(self, obj: Obj) -> Obj:
        body = copy.deepcopy(obj)
        meta = body["metadata"]
        for key in SERVER_MANAGED:
            meta.pop(key, None)
        refs = []
        for ref in meta.pop("ownerReferences", None) or []:
            owner = next((self.new_uids[k] for k in _owner_identities(obj, ref) if k in self.new_uids), None)
            if owner is None:
                with self.lock:
                    self.result.dropped_owner_refs.append(f"{describe(obj)} -> {ref.get('kind')} {ref.get('name')}")
            else:
                refs.append({**ref, "uid": owner})
        if refs:
            meta["ownerReferences"] = refs
        return body


def _is_namespace(obj: Obj) -> bool:
    return obj["kind"] == "Namespace" and obj["apiVersion"] == "v1"


def _identity(obj: Obj) -> tuple[str, str, str | None, str]:
    meta = obj["metadata"]
    return group_of(obj["apiVersion"]), obj["kind"], meta.get("namespace"), meta["name"]


def _owner_identities(obj: Obj, ref: Obj) -> list[tuple[str, str, str | None, str]]:
    """Where an owner may live: beside its dependent, or cluster-scoped (references carry no namespace)."""
    group, kind, name = group_of(ref.get("apiVersion", "")), ref.get("kind", ""), ref.get("name", "")
    return [(group, kind, obj["metadata"].get("namespace"), name), (group, kind, None, name)]


def _owner_waves(objects: list[Obj]) -> list[list[Obj]]:
    """Objects in creation rounds: every object comes in a later round than its owners held in ``objects``."""
    by_identity = {_identity(o): o for o in objects}
    depth: dict[int, int] = {}

    def depth_of(obj: Obj, seen: frozenset[int] = frozenset()) -> int:
        if id(obj) in seen:
            raise ValueError(f"ownerReferences form a cycle through {describe(obj)}")
        if id(obj) not in depth:
            owners = [
                by_identity[key]
                for ref in obj["metadata"].get("ownerReferences") or []
                for key in _owner_identities(obj, ref)
                if key in by_identity
            ]
            depth[id(obj)] = 1 + max((depth_of(o, seen | {id(obj)}) for o in owners), default=-1)
        return depth[id(obj)]

    waves: dict[int, list[Obj]] = {}
    for obj in objects:
        waves.setdefault(depth_of(obj), []).append(obj)
    return [waves[d] for d in sorted(waves)]
