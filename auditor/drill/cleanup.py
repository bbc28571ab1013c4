"""Removes every trace of a drill and says, by name, what could not be removed.

Runs after every drill (whatever its outcome) and from `drauditor drill cleanup` for a drill whose process died.
What to remove comes from two places that cover for each other: the journal (objects created, by UID) and the
clusters themselves (everything labelled with the drill id, found even when the journal is lost or torn). Deletes go
in dependency order, the secondary's copies first, so the restored disks are released before the primary's
snapshots they came from; then cleanup waits, because a delete is only a request: namespaces finish in the namespace
controller and snapshot contents in the snapshot controller. It never patches, so a finalizer nobody removes leaves
its object as reported residue rather than a forced deletion.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from auditor.drill.api import ApiError, DrillApiError
from auditor.drill.guard import GuardedApi, GuardrailViolation
from auditor.drill.journal import JournalState, ObjectRef
from auditor.drill.names import (
    DRILL_LABEL,
    SNAPSHOT_API,
    drill_namespace,
    drill_selector,
    is_drill_id,
    source_snapshot_name,
)
from auditor.drill.progress import Progress

POLL_SECONDS = 0.5
_VM = ("kubevirt.io/v1", "VirtualMachine")
_POD = ("v1", "Pod")
_PVC = ("v1", "PersistentVolumeClaim")
_VS = (SNAPSHOT_API, "VolumeSnapshot")
_VSC = (SNAPSHOT_API, "VolumeSnapshotContent")
_NAMESPACE = ("v1", "Namespace")
# Deletion order (the drill's step 9). The secondary's VMs before the pods and PVCs they use, restored PVCs before
# the snapshots they were restored from, those before their pre-provisioned contents; on the primary the canary
# writer before its PVC's snapshot, the snapshots before their PVC. Namespaces last, on both clusters.
SECONDARY_ORDER = (_VM, _POD, _PVC, _VS, _VSC)
PRIMARY_ORDER = (_POD, _VS, _PVC)
# What is looked for by label. Kinds cleanup does not delete itself (the VM copies' VMIs, the NetworkPolicy) go with
# their namespace, but are still residue while they exist.
SURVEYED = (
    _VM,
    ("kubevirt.io/v1", "VirtualMachineInstance"),
    _POD,
    _PVC,
    _VS,
    _VSC,
    ("networking.k8s.io/v1", "NetworkPolicy"),
    _NAMESPACE,
)


class Lister(Protocol):
    def list(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[dict], str]: ...


@dataclass(frozen=True)
class CleanupResult:
    removed: list[ObjectRef]  # deletes the servers accepted
    residue: list[str]  # what still exists (or could not be checked), each with why
    errors: list[str]  # requests that failed, clusters that could not be reached

    @property
    def complete(self) -> bool:
        return not self.residue


@dataclass
class _Cluster:
    """One cluster during a cleanup: what of the drill was last seen there, what was asked, whether it answers."""

    api: GuardedApi
    order: tuple[tuple[str, str], ...] = PRIMARY_ORDER
    seen: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)  # the drill's own objects
    bound: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)  # snapshot controller contents, awaited
    strays: dict[ObjectRef, str] = field(default_factory=dict)  # journaled objects that lost their labels -> uid
    requested: set[tuple[ObjectRef, str]] = field(default_factory=set)  # (object, uid) already deleted once
    failure: str | None = None
    surveyed: bool = False

    @property
    def left(self) -> int:
        return len(self.seen) + len(self.bound)


def cleanup_drill(
    apis: Mapping[str, GuardedApi],
    drill_id: str,
    state: JournalState | None,
    *,
    deadline: float,
    progress: Progress | None = None,
) -> CleanupResult:
    """Deletes the drill's objects on the managed clusters of ``apis`` and waits for them to be gone until
    ``deadline`` (time.monotonic()); deletes are asked for even when the deadline has already passed. A cluster
    that cannot be reached keeps its objects as residue, named with the cause; the others are still cleaned."""
    emit = progress or (lambda event: None)
    if state is not None:
        for api in apis.values():
            api.adopt(state)
    clusters = {name: _Cluster(api) for name, api in apis.items()}
    removed: list[ObjectRef] = []
    errors: list[str] = []
    order: list[str] | None = None
    waiting = -1
    while True:
        for cluster in clusters.values():
            _survey(cluster, drill_id, state, errors)
        left = sum(c.left for c in clusters.values() if c.failure is None)
        if not left or (order is not None and time.monotonic() >= deadline):
            break
        if order is None:
            order = _secondary_first(clusters, state)
        elif left != waiting:
            emit({"event": "cleanup", "message": f"waiting for {left} object(s) to be gone"})
            waiting = left
        for name in order:
            removed += _delete(clusters[name], clusters[name].order, errors, emit)
        for name in order:
            removed += _delete(clusters[name], (_NAMESPACE,), errors, emit)
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    residue = [line for name, cluster in clusters.items() for line in _residue(name, cluster)]
    residue += _unmanaged(state, clusters)
    return CleanupResult(removed, residue, errors)


def find_drills(apis: Mapping[str, Lister]) -> set[str]:
    """Ids of every drill with a labelled object on these clusters (`drill cleanup --all`, including drills whose
    journal is on another machine). A cluster that cannot be read raises DrillApiError: call per cluster to go on
    without one."""
    found: set[str] = set()
    for api in apis.values():
        for api_version, kind in SURVEYED:
            for obj in _list(api, api_version, kind, drill_selector()):
                value = ((obj.get("metadata") or {}).get("labels") or {}).get(DRILL_LABEL, "")
                if is_drill_id(value):
                    found.add(value)
    return found


def _list(api: Lister, api_version: str, kind: str, selector: str | None) -> list[dict]:
    """Items of one kind; none when the server does not serve the kind at all."""
    try:
        return api.list(api_version, kind, label_selector=selector)[0]
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise


def _survey(cluster: _Cluster, drill_id: str, state: JournalState | None, errors: list[str]) -> None:
    """What of the drill exists on the cluster now: everything labelled with its id, journaled objects that lost
    their labels (looked up by name and UID), and the snapshot contents the snapshot controller made for the
    drill's snapshots (unlabelled: cleanup waits for the controller to delete them)."""
    if cluster.failure is not None:
        return
    api = cluster.api
    seen: dict[ObjectRef, dict[str, Any]] = {}
    bound: dict[ObjectRef, dict[str, Any]] = {}
    try:
        for api_version, kind in SURVEYED:
            for obj in _list(api, api_version, kind, drill_selector(drill_id)):
                seen[ObjectRef.of(api.cluster, api_version, kind, obj)] = obj
        if not cluster.surveyed and state is not None:
            cluster.strays = {r: uid for r, uid in state.created.items() if r.cluster == api.cluster and r not in seen}
        for ref, uid in list(cluster.strays.items()):
            obj = api.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            if obj is None or (obj.get("metadata") or {}).get("uid") != uid:
                del cluster.strays[ref]
            elif ref not in seen:
                seen[ref] = obj
        for obj in _list(api, *_VSC, None):
            ref = ObjectRef.of(api.cluster, *_VSC, obj)
            if ref not in seen and _bound_to_drill(obj, drill_id):
                bound[ref] = obj
    except DrillApiError as exc:
        cluster.failure = str(exc)
        errors.append(f"{api.cluster}: cannot survey the drill's objects: {exc}")
        if not cluster.surveyed and state is not None:  # never surveyed: the journal is all that is known
            cluster.seen = {ref: {} for ref in state.pending() if ref.cluster == api.cluster}
        return
    cluster.seen, cluster.bound, cluster.surveyed = seen, bound, True


def _bound_to_drill(content: dict[str, Any], drill_id: str) -> bool:
    """A snapshot content whose VolumeSnapshot is one of the drill's: the canary's in its namespace, or a source
    snapshot (named from the drill id) beside a protected PVC."""
    ref = (content.get("spec") or {}).get("volumeSnapshotRef") or {}
    name = ref.get("name") or ""
    return ref.get("namespace") == drill_namespace(drill_id) or name.startswith(source_snapshot_name(drill_id, ""))


def _secondary_first(clusters: dict[str, _Cluster], state: JournalState | None) -> list[str]:
    """The clusters in deletion order, the secondary (which gets the secondary's kind order) first. The journal
    names it; without one it is the cluster holding VM copies or pre-provisioned contents."""
    if state is not None:
        secondary = state.header.get("secondary")
    else:
        holding = [
            name
            for name, cluster in sorted(clusters.items())
            if any(ref.kind in ("VirtualMachine", "VolumeSnapshotContent") for ref in cluster.seen)
        ]
        secondary = holding[0] if holding else None
    if secondary in clusters:
        clusters[secondary].order = SECONDARY_ORDER
    return sorted(clusters, key=lambda name: (name != secondary, name))


def _delete(
    cluster: _Cluster, order: tuple[tuple[str, str], ...], errors: list[str], emit: Progress
) -> list[ObjectRef]:
    """Asks once per object (and UID) for the deletion of what the last survey saw, kind by kind in ``order``."""
    removed = []
    for api_version, kind in order:
        for ref, obj in sorted(cluster.seen.items(), key=lambda item: (item[0].namespace or "", item[0].name)):
            uid = (obj.get("metadata") or {}).get("uid")
            if cluster.failure is not None:
                return removed
            if (ref.api_version, ref.kind) != (api_version, kind) or not uid or (ref, uid) in cluster.requested:
                continue
            cluster.requested.add((ref, uid))
            try:
                if cluster.api.delete(api_version, kind, ref.name, ref.namespace):
                    removed.append(ref)
                    emit({"event": "cleanup", "message": f"deleted {ref.describe()}"})
            except GuardrailViolation as exc:
                errors.append(str(exc))
            except ApiError as exc:
                errors.append(f"{ref.describe()}: delete failed: {exc}")
            except DrillApiError as exc:
                cluster.failure = str(exc)
                errors.append(f"{ref.describe()}: delete failed: {exc}")
    return removed


def _residue(name: str, cluster: _Cluster) -> list[str]:
    if cluster.failure is not None and not cluster.seen:
        return [f"{name}: objects labelled {DRILL_LABEL}={cluster.api.drill_id} not checked ({cluster.failure})"]
    found = [(ref, _why(obj, cluster.failure)) for ref, obj in cluster.seen.items()]
    found += [(ref, "bound to a drill snapshot; the snapshot controller has not removed it") for ref in cluster.bound]
    return [f"{ref.describe()} ({why})" for ref, why in sorted(found, key=lambda item: _sort_key(item[0]))]


def _sort_key(ref: ObjectRef) -> tuple[str, str, str]:
    return ref.kind, ref.namespace or "", ref.name


def _why(obj: dict[str, Any], failure: str | None) -> str:
    if failure is not None:
        return f"may remain: {failure}"
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        finalizers = meta.get("finalizers") or []
        return f"deleting, waits for finalizers {', '.join(finalizers)}" if finalizers else "still deleting"
    return "not deleted"


def _unmanaged(state: JournalState | None, clusters: dict[str, _Cluster]) -> list[str]:
    """Journaled objects on clusters cleanup was given no access to."""
    if state is None:
        return []
    return [
        f"{ref.describe()} (may remain: no access to cluster {ref.cluster} given to cleanup)"
        for ref in state.pending()
        if ref.cluster not in clusters
    ]
