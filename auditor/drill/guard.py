"""The only way a drill writes to a cluster: creates and deletes checked against the drill's rules first.

A drill runs against production. Whatever a bug in the plan or the runner asks for, this wrapper refuses, before a
single byte goes to the server, to create anything unlabelled, anything outside the drill's namespace (bar the
source snapshots beside the protected PVCs), any cluster-scoped object but the drill's Namespace and its
VolumeSnapshotContents, and to delete anything the drill did not make. It cannot change an existing object at all:
there is no patch, update or replace here. Every create is announced in the journal (fsync'd) before it is sent, so
a process killed mid-drill leaves a record of what may exist.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol

from auditor.drill.journal import CreatedObject, Journal, JournalState, ObjectRef
from auditor.drill.names import SNAPSHOT_API, drill_labels, drill_namespace

# The kinds a drill creates, and whether each is namespaced. Known here rather than asked of the server: a refusal
# must not depend on (or cost) a discovery request, and a kind outside this list is refused anyway.
CREATABLE: dict[tuple[str, str], bool] = {
    ("v1", "Namespace"): False,
    ("networking.k8s.io/v1", "NetworkPolicy"): True,
    ("v1", "PersistentVolumeClaim"): True,
    ("v1", "Pod"): True,
    (SNAPSHOT_API, "VolumeSnapshot"): True,
    (SNAPSHOT_API, "VolumeSnapshotContent"): False,
    ("kubevirt.io/v1", "VirtualMachine"): True,
}


class GuardrailViolation(Exception):
    """A write the drill's rules forbid; nothing was sent. ``rule`` names the rule, ``object`` what was asked."""

    def __init__(self, rule: str, obj: str, why: str) -> None:
        super().__init__(f"guardrail {rule!r} refuses {obj}: {why}")
        self.rule = rule
        self.object = obj


class Api(Protocol):
    """What the guard needs of ``auditor.drill.api.KubeApi``."""

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None: ...

    def list(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[dict], str]: ...

    def create(self, manifest: dict) -> dict: ...

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, *, uid: str | None = None
    ) -> bool: ...

    def watch(
        self, api_version: str, kind: str, *, label_selector: str | None, resource_version: str, timeout_seconds: int
    ) -> Iterator[Any]: ...


class GuardedApi:
    """One cluster's API as a drill may use it. Reads pass through; creates and deletes are checked, journaled and
    remembered. ``journal`` None: a cleanup without a journal, which may delete but never create. Thread-safe."""

    def __init__(
        self,
        api: Api,
        journal: Journal | None,
        drill_id: str,
        cluster: str,
        allowed_source_pvcs: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.api = api
        self.journal = journal
        self.drill_id = drill_id
        self.cluster = cluster
        self.allowed_source_pvcs = allowed_source_pvcs
        self.namespace = drill_namespace(drill_id)
        self._labels = drill_labels(drill_id)
        self._lock = threading.Lock()
        self._created: list[CreatedObject] = []
        self._deletable: dict[ObjectRef, str] = {}  # -> the uid a delete must carry as its precondition

    @property
    def created(self) -> list[CreatedObject]:
        """What this guard created, in order (the drill's record lists them)."""
        with self._lock:
            return list(self._created)

    # ---- reads -----------------------------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        obj = self.api.get(api_version, kind, name, namespace)
        if obj is not None:
            self._note(api_version, kind, obj)
        return obj

    def list(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[dict], str]:
        items, version = self.api.list(api_version, kind, namespace=namespace, label_selector=label_selector)
        for obj in items:
            self._note(api_version, kind, obj)
        return items, version

    def watch(
        self,
        api_version: str,
        kind: str,
        *,
        label_selector: str | None,
        resource_version: str,
        timeout_seconds: int = 60,
    ) -> Iterator[Any]:
        return self.api.watch(
            api_version,
            kind,
            label_selector=label_selector,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
        )

    def adopt(self, state: JournalState) -> None:
        """Objects a previous process of this drill journaled as created on this cluster become deletable (by
        their journaled UID, so a same-named object made since is never touched)."""
        if state.drill_id != self.drill_id:
            raise ValueError(f"{state.path} is the journal of drill {state.drill_id}, not {self.drill_id}")
        with self._lock:
            for ref, uid in state.created.items():
                if ref.cluster == self.cluster:
                    self._deletable.setdefault(ref, uid)

    # ---- writes ----------------------------------------------------------------------------------------------

    def create(self, manifest: dict) -> dict:
        ref = self._check_create(manifest)
        assert self.journal is not None  # _check_create refuses without one
        self.journal.intent(ref)
        obj = self.api.create(manifest)
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        created = CreatedObject(ref, uid)
        self.journal.created(created)
        with self._lock:
            self._created.append(created)
            self._deletable[ref] = uid
        return obj

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Deletes an object this drill created, or one read from the server carrying its labels, with that
        object's UID as precondition. False when it was already gone (or the name now holds another object)."""
        ref = ObjectRef(self.cluster, api_version, kind, namespace, name)
        with self._lock:
            uid = self._deletable.get(ref)
        if uid is None:
            raise GuardrailViolation(
                "delete",
                ref.describe(),
                f"neither created by drill {self.drill_id} nor read from the server with its labels "
                "(in its namespace, or a VolumeSnapshot)",
            )
        requested = self.api.delete(api_version, kind, name, namespace, uid=uid)
        if self.journal is not None:  # asked for, or gone already: either way this drill's object is on its way
            self.journal.deleted(ref, uid)
        return requested

    # ---- rules -----------------------------------------------------------------------------------------------

    def _check_create(self, manifest: dict) -> ObjectRef:
        api_version, kind = str(manifest.get("apiVersion") or ""), str(manifest.get("kind") or "")
        meta = manifest.get("metadata") or {}
        ref = ObjectRef.of(self.cluster, api_version, kind, manifest)
        what = ref.describe()
        if self.journal is None:
            raise GuardrailViolation("journal", what, "a create must be journaled first and this guard has no journal")
        if not ref.name:
            raise GuardrailViolation("name", what, "no metadata.name: cleanup finds objects by name and label")
        namespaced = CREATABLE.get((api_version, kind))
        if namespaced is None:
            raise GuardrailViolation("kind", what, f"a drill creates only {_kinds()}")
        labels = meta.get("labels") or {}
        if not self._labels.items() <= labels.items():
            raise GuardrailViolation("labels", what, f"metadata.labels lack {self._labels}")
        if namespaced:
            self._check_namespace(manifest, ref, what)
        elif ref.namespace is not None:
            raise GuardrailViolation("cluster-scoped", what, f"{kind} is cluster-scoped: it names no namespace")
        elif kind == "Namespace" and ref.name != self.namespace:
            raise GuardrailViolation("cluster-scoped", what, f"the only Namespace a drill creates is {self.namespace}")
        return ref

    def _check_namespace(self, manifest: dict, ref: ObjectRef, what: str) -> None:
        if ref.namespace == self.namespace:
            return
        if ref.kind == "VolumeSnapshot":
            pvc = ((manifest.get("spec") or {}).get("source") or {}).get("persistentVolumeClaimName")
            if (ref.namespace, pvc) in self.allowed_source_pvcs:
                return
            raise GuardrailViolation(
                "namespace", what, f"a VolumeSnapshot outside {self.namespace} must snapshot a protected PVC, not {pvc}"
            )
        raise GuardrailViolation("namespace", what, f"outside the drill namespace {self.namespace}")

    def _note(self, api_version: str, kind: str, obj: dict) -> None:
        """Remembers an object read from the server as deletable when it is the drill's by label and place."""
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        namespaced = CREATABLE.get((api_version, kind))
        if not uid or namespaced is None or not self._labels.items() <= (meta.get("labels") or {}).items():
            return
        ref = ObjectRef.of(self.cluster, api_version, kind, obj)
        if namespaced:
            placed = ref.namespace == self.namespace or (kind == "VolumeSnapshot" and ref.namespace is not None)
        else:
            placed = kind == "VolumeSnapshotContent" or ref.name == self.namespace
        if placed:
            with self._lock:
                self._deletable[ref] = str(uid)


def _kinds() -> str:
    return ", ".join(kind for _, kind in CREATABLE)
