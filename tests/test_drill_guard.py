"""The drill's only write path refuses every write its rules forbid without a request reaching the server, journals
each create before sending it, and deletes only its own objects, by UID.

The refusals run against the session lab's real prod-east apiserver through a real KubeApi: its request counter
proves nothing was sent, and the production-like objects around the drill keep their resourceVersions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lab.launcher import Lab
from lab.rest import Rest

from auditor.drill import objects
from auditor.drill.api import KubeApi
from auditor.drill.guard import CREATABLE, GuardedApi, GuardrailViolation
from auditor.drill.journal import Journal, ObjectRef, read_journal
from auditor.drill.names import drill_labels, drill_namespace, new_drill_id, source_snapshot_name
from auditor.kubehttp import RequestStats
from auditor.live import api_client

CLUSTER = "prod-east"
VS_API = "snapshot.storage.k8s.io/v1"


def start_journal(state_dir: Path, drill_id: str) -> Journal:
    return Journal.start(
        state_dir,
        drill_id=drill_id,
        app="billing/billing-drpc",
        primary="prod-east",
        secondary="prod-west",
        contexts={},
        kubeconfig=None,
        started_at=datetime.now(UTC),
        run_by="tests",
        tool_version="0",
    )


def pod(drill_id: str, name: str, namespace: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": drill_labels(drill_id) if labels is None else labels,
        },
        "spec": {"containers": [{"name": "c", "image": "registry.example/idle:1"}]},
    }


# ---- without a server: the order of journal and request -----------------------------------------------------------


class RecordingApi:
    """Stands in for KubeApi where only the order of events matters: it records what it is asked."""

    def __init__(self, journal_path: Path, fail: bool = False) -> None:
        self.journal_path = journal_path
        self.fail = fail
        self.calls: list[tuple[str, Any]] = []

    def create(self, manifest: dict) -> dict:
        events = [json.loads(line)["event"] for line in self.journal_path.read_text().splitlines()]
        self.calls.append(("create", events))
        if self.fail:
            raise TimeoutError("no answer")
        return {**manifest, "metadata": {**manifest["metadata"], "uid": "uid-1"}}

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *, uid=None) -> bool:
        self.calls.append(("delete", (kind, name, namespace, uid)))
        return True


def test_the_intent_is_on_disk_before_the_create_is_sent(tmp_path: Path) -> None:
    drill_id = new_drill_id(datetime.now(UTC))
    journal = start_journal(tmp_path, drill_id)
    api = RecordingApi(journal.path)
    guard = GuardedApi(api, journal, drill_id, CLUSTER)
    created = guard.create(objects.namespace(drill_id))

    assert api.calls == [("create", ["start", "intent"])]
    ref = ObjectRef(CLUSTER, "v1", "Namespace", None, drill_namespace(drill_id))
    state = read_journal(journal.path)
    assert state.intended == [ref] and state.created == {ref: "uid-1"}
    assert [c.to_json() for c in guard.created] == [{**ref.to_json(), "uid": "uid-1"}]
    assert created["metadata"]["uid"] == "uid-1"

    assert guard.delete("v1", "Namespace", drill_namespace(drill_id)) is True
    assert api.calls[-1] == ("delete", ("Namespace", drill_namespace(drill_id), None, "uid-1"))
    assert read_journal(journal.path).deleted == {ref}


def test_a_create_that_fails_leaves_its_intent_for_cleanup(tmp_path: Path) -> None:
    drill_id = new_drill_id(datetime.now(UTC))
    journal = start_journal(tmp_path, drill_id)
    guard = GuardedApi(RecordingApi(journal.path, fail=True), journal, drill_id, CLUSTER)
    with pytest.raises(TimeoutError):
        guard.create(objects.deny_all_policy(drill_id))
    state = read_journal(journal.path)
    assert [ref.kind for ref in state.pending()] == ["NetworkPolicy"] and not state.created
    assert guard.created == []


def test_the_guard_cannot_change_an_object() -> None:
    public = {name for name in dir(GuardedApi) if not name.startswith("_")}
    assert public == {"get", "list", "watch", "create", "delete", "adopt", "created"}
    assert {kind for _, kind in CREATABLE} == {
        "Namespace",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "Pod",
        "VolumeSnapshot",
        "VolumeSnapshotContent",
        "VirtualMachine",
    }


# ---- against the lab ----------------------------------------------------------------------------------------------


@dataclass
class World:
    """A drill id and the production-like objects around it on prod-east, made behind the guard's back."""

    drill_id: str
    app: str  # an application namespace holding a protected PVC "disk", a pod and an unprotected PVC "scratch"
    other_drill: str  # another drill's id; its namespace holds a labelled pod
    rest: Rest

    @property
    def namespace(self) -> str:
        return drill_namespace(self.drill_id)

    def watched(self) -> list[str]:
        """Paths of every object a refused write could have touched."""
        app, other = self.app, drill_namespace(self.other_drill)
        return [
            f"/api/v1/namespaces/{app}",
            f"/api/v1/namespaces/{app}/pods/web",
            f"/api/v1/namespaces/{app}/pods/impostor",
            f"/api/v1/namespaces/{app}/persistentvolumeclaims/disk",
            f"/api/v1/namespaces/{app}/persistentvolumeclaims/scratch",
            f"/api/v1/namespaces/{other}",
            f"/api/v1/namespaces/{other}/pods/drauditor-canary-writer",
        ]

    def versions(self) -> dict[str, str]:
        return {path: self.rest.get(path)["metadata"]["resourceVersion"] for path in self.watched()}


def pvc(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


@pytest.fixture(scope="module")
def world(lab: Lab) -> Iterator[World]:
    rest = lab.rest(CLUSTER)
    drill_id = new_drill_id(datetime.now(UTC))
    other = new_drill_id(datetime.now(UTC))
    app = f"guard-app-{uuid.uuid4().hex[:8]}"
    rest.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app}})
    rest.request("POST", "/api/v1/namespaces", objects.namespace(other))
    for name in ("disk", "scratch"):
        rest.request("POST", f"/api/v1/namespaces/{app}/persistentvolumeclaims", pvc(app, name))
    rest.request("POST", f"/api/v1/namespaces/{app}/pods", pod(drill_id, "web", app, labels={"app": "web"}))
    rest.request("POST", f"/api/v1/namespaces/{app}/pods", pod(drill_id, "impostor", app))  # our labels, not ours
    other_pod = pod(other, "drauditor-canary-writer", drill_namespace(other))
    rest.request("POST", f"/api/v1/namespaces/{drill_namespace(other)}/pods", other_pod)
    yield World(drill_id, app, other, rest)
    for namespace in (app, drill_namespace(other)):
        rest.request("DELETE", f"/api/v1/namespaces/{namespace}")


@pytest.fixture
def guarded(lab: Lab, world: World, tmp_path: Path) -> tuple[GuardedApi, RequestStats]:
    stats = RequestStats()
    api = KubeApi(CLUSTER, api_client(lab.kubeconfig, CLUSTER), stats)
    journal = start_journal(tmp_path, world.drill_id)
    return GuardedApi(api, journal, world.drill_id, CLUSTER, frozenset({(world.app, "disk")})), stats


Case = Callable[[GuardedApi, World], object]


def _snapshot(w: World, namespace: str, pvc_name: str) -> dict[str, Any]:
    return objects.volume_snapshot(w.drill_id, namespace, source_snapshot_name(w.drill_id, pvc_name), pvc_name, None)


def _relabelled(manifest: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {**manifest, "metadata": {**manifest["metadata"], "labels": labels}}


def _with_namespace(manifest: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    meta = {k: v for k, v in manifest["metadata"].items() if k != "namespace"}
    return {**manifest, "metadata": {**meta, **({"namespace": namespace} if namespace else {})}}


REFUSED: dict[str, tuple[str, Case | None, Case]] = {
    # name: (rule, reads made before the counted moment, the refused write)
    "unlabelled pod in the drill namespace": (
        "labels",
        None,
        lambda g, w: g.create(pod(w.drill_id, "p", w.namespace, labels={})),
    ),
    "pod labelled for another drill": (
        "labels",
        None,
        lambda g, w: g.create(pod(w.other_drill, "p", w.namespace)),
    ),
    "only the managed-by label": (
        "labels",
        None,
        lambda g, w: g.create(pod(w.drill_id, "p", w.namespace, labels={"app.kubernetes.io/managed-by": "drauditor"})),
    ),
    "ConfigMap, a kind drills never create": (
        "kind",
        None,
        lambda g, w: g.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": w.namespace, "labels": drill_labels(w.drill_id)},
            }
        ),
    ),
    "ClusterRole": (
        "kind",
        None,
        lambda g, w: g.create(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "drauditor-x", "labels": drill_labels(w.drill_id)},
            }
        ),
    ),
    "a pod in the application namespace": ("namespace", None, lambda g, w: g.create(pod(w.drill_id, "p", w.app))),
    "a pod without a namespace": (
        "namespace",
        None,
        lambda g, w: g.create(_with_namespace(pod(w.drill_id, "p", w.namespace), None)),
    ),
    "a PVC in the application namespace": (
        "namespace",
        None,
        lambda g, w: g.create(_with_namespace(objects.canary_pvc(w.drill_id, None, "1Gi"), w.app)),
    ),
    "a snapshot of an unprotected PVC": ("namespace", None, lambda g, w: g.create(_snapshot(w, w.app, "scratch"))),
    "a snapshot of the protected PVC's name elsewhere": (
        "namespace",
        None,
        lambda g, w: g.create(_snapshot(w, drill_namespace(w.other_drill), "disk")),
    ),
    "a Namespace not the drill's": (
        "cluster-scoped",
        None,
        lambda g, w: g.create(_relabelled(objects.namespace(w.other_drill), drill_labels(w.drill_id))),
    ),
    "the drill Namespace given a namespace": (
        "cluster-scoped",
        None,
        lambda g, w: g.create(_with_namespace(objects.namespace(w.drill_id), w.app)),
    ),
    "a content given a namespace": (
        "cluster-scoped",
        None,
        lambda g, w: g.create(
            _with_namespace(
                objects.snapshot_content(
                    w.drill_id,
                    "c",
                    driver="d",
                    snapshot_handle="h",
                    volume_mode=None,
                    snapshot_class=None,
                    snapshot_name="disk",
                ),
                w.namespace,
            )
        ),
    ),
    "no name": ("name", None, lambda g, w: g.create({**objects.namespace(w.drill_id), "metadata": {"labels": {}}})),
    "a pod never read": ("delete", None, lambda g, w: g.delete("v1", "Pod", "web", w.app)),
    "a pod read, unlabelled": (
        "delete",
        lambda g, w: g.get("v1", "Pod", "web", w.app),
        lambda g, w: g.delete("v1", "Pod", "web", w.app),
    ),
    "a pod read with the drill's labels outside its namespace": (
        "delete",
        lambda g, w: g.list("v1", "Pod", label_selector=f"drauditor.io/drill-id={w.drill_id}"),
        lambda g, w: g.delete("v1", "Pod", "impostor", w.app),
    ),
    "the application namespace": (
        "delete",
        lambda g, w: g.get("v1", "Namespace", w.app),
        lambda g, w: g.delete("v1", "Namespace", w.app),
    ),
    "another drill's pod": (
        "delete",
        lambda g, w: g.list("v1", "Pod", namespace=drill_namespace(w.other_drill)),
        lambda g, w: g.delete("v1", "Pod", "drauditor-canary-writer", drill_namespace(w.other_drill)),
    ),
    "another drill's namespace": (
        "delete",
        lambda g, w: g.list("v1", "Namespace", label_selector="drauditor.io/drill-id"),
        lambda g, w: g.delete("v1", "Namespace", drill_namespace(w.other_drill)),
    ),
    "the protected PVC, read": (
        "delete",
        lambda g, w: g.list("v1", "PersistentVolumeClaim", namespace=w.app),
        lambda g, w: g.delete("v1", "PersistentVolumeClaim", "disk", w.app),
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_write_sends_nothing_and_changes_nothing(
    case: str, guarded: tuple[GuardedApi, RequestStats], world: World
) -> None:
    guard, stats = guarded
    rule, read, write = REFUSED[case]
    if read is not None:
        read(guard, world)
    before = world.versions()
    journal_before = guard.journal.path.read_bytes()
    sent, retried = stats.requests, stats.retries

    with pytest.raises(GuardrailViolation) as refused:
        write(guard, world)

    assert refused.value.rule == rule, str(refused.value)
    assert (stats.requests, stats.retries) == (sent, retried)
    assert world.versions() == before
    assert guard.journal.path.read_bytes() == journal_before
    assert guard.created == []


def test_without_a_journal_nothing_is_created(lab: Lab, world: World) -> None:
    stats = RequestStats()
    guard = GuardedApi(KubeApi(CLUSTER, api_client(lab.kubeconfig, CLUSTER), stats), None, world.drill_id, CLUSTER)
    with pytest.raises(GuardrailViolation) as refused:
        guard.create(objects.namespace(world.drill_id))
    assert refused.value.rule == "journal" and stats.requests == 0


def test_the_drill_creates_its_objects_and_deletes_only_them_by_uid(
    guarded: tuple[GuardedApi, RequestStats], world: World
) -> None:
    guard, _ = guarded
    rest, drill_id, namespace = world.rest, world.drill_id, world.namespace
    before = world.versions()
    manifests = [
        objects.namespace(drill_id),
        objects.deny_all_policy(drill_id),
        objects.canary_pvc(drill_id, "standard", "1Gi"),
        objects.canary_writer(drill_id, "registry.example/ubi-minimal:9", 0.2),
        _snapshot(world, world.app, "disk"),  # beside the protected PVC: the one object outside the namespace
        objects.snapshot_content(
            drill_id,
            f"drauditor-{drill_id}-c",
            driver="rbd.csi.ceph.com",
            snapshot_handle="0001-abc",
            volume_mode="Block",
            snapshot_class=None,
            snapshot_name="disk",
        ),
    ]
    created = [guard.create(manifest) for manifest in manifests]

    state = read_journal(guard.journal.path)
    assert [ref.name for ref in state.intended] == [m["metadata"]["name"] for m in manifests]
    assert [c.uid for c in guard.created] == [obj["metadata"]["uid"] for obj in created]
    assert list(state.created.values()) == [obj["metadata"]["uid"] for obj in created]
    assert world.versions() == before

    # Someone replaces the canary writer with an object of their own under the same name: the guard's delete carries
    # the UID it created, so the server refuses it and the newcomer survives.
    writer = f"/api/v1/namespaces/{namespace}/pods/drauditor-canary-writer"
    rest.request("DELETE", writer)
    newcomer = rest.request(
        "POST", f"/api/v1/namespaces/{namespace}/pods", pod(drill_id, "drauditor-canary-writer", namespace)
    )
    assert guard.delete("v1", "Pod", "drauditor-canary-writer", namespace) is False
    assert rest.get(writer)["metadata"]["resourceVersion"] == newcomer["metadata"]["resourceVersion"]

    # Read back with its labels, the newcomer is the drill's to delete.
    guard.list("v1", "Pod", namespace=namespace, label_selector=f"drauditor.io/drill-id={drill_id}")
    assert guard.delete("v1", "Pod", "drauditor-canary-writer", namespace) is True
    for manifest in reversed(manifests):
        meta = manifest["metadata"]
        if meta["name"] == "drauditor-canary-writer":
            continue
        assert guard.delete(manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace")) is True
    assert len(read_journal(guard.journal.path).deleted) == len(manifests)
    assert not _exists_snapshot(rest, world)
    assert world.versions() == before


def _exists_snapshot(rest: Rest, world: World) -> bool:
    items = rest.get(f"/apis/{VS_API}/namespaces/{world.app}/volumesnapshots")["items"]
    return bool(items)
