"""Cleanup leaves nothing of a drill behind, whatever killed it, and touches nothing else.

A drill's objects are made through the guard on the session lab's prod-east (primary) and prod-west (secondary);
then the process "dies" (its objects are dropped, its journal stays open, a line torn) and a fresh cleanup, from the
journal alone or from the labels alone, removes everything. The lab runs the namespace controller, so namespaces
really finish deleting; the test plays the snapshot controller where one is needed.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import FaultProxy
from helpers import sample
from kubernetes.client.exceptions import ApiException
from lab.launcher import Lab
from lab.rest import Rest

from auditor.drill import objects
from auditor.drill.api import KubeApi
from auditor.drill.cleanup import SURVEYED, cleanup_drill, find_drills
from auditor.drill.guard import GuardedApi
from auditor.drill.journal import Journal, ObjectRef, read_journal
from auditor.drill.names import (
    CANARY,
    content_name,
    drill_namespace,
    drill_selector,
    new_drill_id,
    source_snapshot_name,
)
from auditor.kubehttp import RequestStats
from auditor.live import api_client

PRIMARY, SECONDARY = "prod-east", "prod-west"
VS_API = "snapshot.storage.k8s.io/v1"
SNAPSHOTS = f"/apis/{VS_API}"
IMAGE = "registry.example/ubi-minimal:9"


def kube_api(kubeconfig: Path, cluster: str, **options: Any) -> KubeApi:
    return KubeApi(cluster, api_client(kubeconfig, cluster), RequestStats(), **options)


def start_journal(state_dir: Path, drill_id: str) -> Journal:
    return Journal.start(
        state_dir,
        drill_id=drill_id,
        app="erp/erp-drpc",
        primary=PRIMARY,
        secondary=SECONDARY,
        contexts={PRIMARY: PRIMARY, SECONDARY: SECONDARY},
        kubeconfig=None,
        started_at=datetime.now(UTC),
        run_by="tests",
        tool_version="0",
    )


def guards(lab: Lab, drill_id: str, journal: Journal | None, app: str) -> dict[str, GuardedApi]:
    return {
        cluster: GuardedApi(kube_api(lab.kubeconfig, cluster), journal, drill_id, cluster, frozenset({(app, "disk")}))
        for cluster in (PRIMARY, SECONDARY)
    }


def versions(rest: Rest, paths: list[str]) -> dict[str, str]:
    return {path: rest.get(path)["metadata"]["resourceVersion"] for path in paths}


def gone(rest: Rest, path: str) -> bool:
    try:
        rest.get(path)
    except ApiException as exc:
        return exc.status == 404
    return False


def left_on_server(lab: Lab, drill_id: str) -> list[str]:
    """Every object labelled with the drill id on either cluster, and its namespaces, read behind cleanup's back."""
    found = []
    for cluster in (PRIMARY, SECONDARY):
        api = kube_api(lab.kubeconfig, cluster)
        for api_version, kind in SURVEYED:
            items, _ = api.list(api_version, kind, label_selector=drill_selector(drill_id))
            found += [f"{cluster}: {kind} {item['metadata']['name']}" for item in items]
        if not gone(lab.rest(cluster), f"/api/v1/namespaces/{drill_namespace(drill_id)}"):
            found.append(f"{cluster}: namespace {drill_namespace(drill_id)}")
    return found


@dataclass
class App:
    """A production-like application on the primary (namespace, protected PVC "disk", a pod) and an unrelated
    snapshot content on the secondary: what cleanup must never touch."""

    namespace: str
    east: Rest
    west: Rest
    foreign_content: str

    def versions(self) -> dict[str, str]:
        ns = f"/api/v1/namespaces/{self.namespace}"
        east = versions(self.east, [ns, f"{ns}/persistentvolumeclaims/disk", f"{ns}/pods/web"])
        west = versions(self.west, [f"{SNAPSHOTS}/volumesnapshotcontents/{self.foreign_content}"])
        return {**{f"{PRIMARY}{p}": v for p, v in east.items()}, **{f"{SECONDARY}{p}": v for p, v in west.items()}}


@pytest.fixture
def app(lab: Lab) -> Iterator[App]:
    east, west = lab.rest(PRIMARY), lab.rest(SECONDARY)
    name = f"cleanup-app-{uuid.uuid4().hex[:8]}"
    east.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "disk", "namespace": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    east.request("POST", f"/api/v1/namespaces/{name}/persistentvolumeclaims", pvc)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": IMAGE}]},
    }
    east.request("POST", f"/api/v1/namespaces/{name}/pods", pod)
    content = {
        "apiVersion": VS_API,
        "kind": "VolumeSnapshotContent",
        "metadata": {"name": f"snapcontent-{uuid.uuid4()}"},
        "spec": {
            "deletionPolicy": "Delete",
            "driver": "rbd.csi.ceph.com",
            "source": {"snapshotHandle": "0001-other"},
            "volumeSnapshotRef": {"namespace": name, "name": "nightly"},
        },
    }
    west.request("POST", f"{SNAPSHOTS}/volumesnapshotcontents", content)
    yield App(name, east, west, content["metadata"]["name"])
    east.request("DELETE", f"/api/v1/namespaces/{name}")
    west.request("DELETE", f"{SNAPSHOTS}/volumesnapshotcontents/{content['metadata']['name']}")


def stage(apis: dict[str, GuardedApi], drill_id: str, app: str) -> dict[str, Any]:
    """A drill's objects at the point where every VM copy and the canary reader exist; returns the source snapshot."""
    east, west = apis[PRIMARY], apis[SECONDARY]
    for api in (east, west):
        api.create(objects.namespace(drill_id))
        api.create(objects.deny_all_policy(drill_id))
    east.create(objects.canary_pvc(drill_id, "standard", "1Gi"))
    east.create(objects.canary_writer(drill_id, IMAGE, 0.2))
    source = east.create(objects.volume_snapshot(drill_id, app, source_snapshot_name(drill_id, "disk"), "disk", None))
    east.create(objects.volume_snapshot(drill_id, drill_namespace(drill_id), CANARY, CANARY, None))
    for namespace, pvc in ((app, "disk"), (drill_namespace(drill_id), CANARY)):
        west.create(
            objects.snapshot_content(
                drill_id,
                content_name(drill_id, namespace, pvc),
                driver="rbd.csi.ceph.com",
                snapshot_handle=f"0001-{pvc}",
                volume_mode="Filesystem",
                snapshot_class=None,
                snapshot_name=pvc,
            )
        )
        west.create(objects.restored_snapshot(drill_id, pvc, content_name(drill_id, namespace, pvc), None))
        west.create(
            objects.restored_pvc(
                drill_id,
                pvc,
                storage_class="standard",
                access_modes=["ReadWriteOnce"],
                volume_mode="Filesystem",
                size="1Gi",
                snapshot=pvc,
            )
        )
    vm = sample("healthy").clusters[PRIMARY].get("VirtualMachine", "erp-ledger", "erp")
    west.create(objects.vm_copy(vm, drill_id, PRIMARY)[0])
    west.create(objects.canary_reader(drill_id, IMAGE))
    return source


def controller_content(rest: Rest, source: dict[str, Any]) -> str:
    """The primary's content of the snapshot ``source`` as the snapshot controller makes it (unlabelled,
    deletionPolicy Delete); returns its path. Cleanup must wait for the controller to delete it, never delete it."""
    meta = source["metadata"]
    content = {
        "apiVersion": VS_API,
        "kind": "VolumeSnapshotContent",
        "metadata": {"name": f"snapcontent-{meta['uid']}"},
        "spec": {
            "deletionPolicy": "Delete",
            "driver": "rbd.csi.ceph.com",
            "source": {"volumeHandle": "0001-disk-volume"},
            "volumeSnapshotRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
        },
    }
    rest.request("POST", f"{SNAPSHOTS}/volumesnapshotcontents", content)
    return f"{SNAPSHOTS}/volumesnapshotcontents/{content['metadata']['name']}"


def release_late(lab: Lab, content: str, drill_id: str, deleted: list[float]) -> threading.Thread:
    """Plays a slow snapshot controller: deletes ``content`` a second after everything else of the drill is gone,
    noting when, so a cleanup that stopped waiting too early is caught."""

    def controller() -> None:
        deadline = time.monotonic() + 120
        while left_on_server(lab, drill_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        deleted.append(time.monotonic())
        lab.rest(PRIMARY).request("DELETE", content)

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    return thread


def test_a_killed_drill_is_cleaned_from_its_journal_to_the_last_object(lab: Lab, app: App, tmp_path: Path) -> None:
    drill_id = new_drill_id(datetime.now(UTC))
    journal = start_journal(tmp_path, drill_id)
    source = stage(guards(lab, drill_id, journal, app.namespace), drill_id, app.namespace)
    content = controller_content(app.east, source)
    released: list[float] = []
    controller = release_late(lab, content, drill_id, released)
    # The process dies while creating one more pod: the create reached the server, its "created" line never the disk,
    # and the line after it was torn mid-write.
    namespace = drill_namespace(drill_id)
    late = objects.canary_reader(drill_id, IMAGE)
    late["metadata"]["name"] = "late"
    journal.intent(ObjectRef.of(SECONDARY, "v1", "Pod", late))
    app.west.request("POST", f"/api/v1/namespaces/{namespace}/pods", late)
    with journal.path.open("ab") as file:
        file.write(b'{"event": "intent", "cluster": "prod-we')
    os.close(journal._fd)  # the process dies: the kernel closes its descriptor, dropping the journal's lock
    before = app.versions()
    assert drill_id in find_drills({c: kube_api(lab.kubeconfig, c) for c in (PRIMARY, SECONDARY)})

    state = read_journal(tmp_path / f"{drill_id}.journal")
    assert state.torn is not None and not state.closed
    fresh = guards(lab, drill_id, Journal.reopen(state.path), app.namespace)
    events: list[dict[str, Any]] = []
    result = cleanup_drill(fresh, drill_id, state, deadline=time.monotonic() + 120, progress=events.append)
    finished = time.monotonic()
    controller.join()

    assert result.residue == [] and result.errors == [] and result.complete
    assert left_on_server(lab, drill_id) == []
    assert gone(app.east, content) and released[0] < finished  # the controller's content was waited for
    assert app.versions() == before
    assert drill_id not in find_drills({c: kube_api(lab.kubeconfig, c) for c in (PRIMARY, SECONDARY)})
    # Secondary first, in dependency order; then the primary; namespaces last. The primary's content was waited for.
    order = [key for key, _ in groupby((ref.cluster, ref.kind) for ref in result.removed)]
    assert order == [
        (SECONDARY, "VirtualMachine"),
        (SECONDARY, "Pod"),
        (SECONDARY, "PersistentVolumeClaim"),
        (SECONDARY, "VolumeSnapshot"),
        (SECONDARY, "VolumeSnapshotContent"),
        (PRIMARY, "Pod"),
        (PRIMARY, "VolumeSnapshot"),
        (PRIMARY, "PersistentVolumeClaim"),
        (SECONDARY, "Namespace"),
        (PRIMARY, "Namespace"),
    ]
    assert ObjectRef(SECONDARY, "v1", "Pod", namespace, "late") in result.removed
    assert ObjectRef(PRIMARY, VS_API, "VolumeSnapshot", app.namespace, source["metadata"]["name"]) in result.removed
    assert any("waiting for" in e["message"] for e in events)
    after = read_journal(state.path)
    assert after.torn is None and set(result.removed) <= after.deleted


def test_an_unreachable_cluster_keeps_its_objects_as_residue_and_the_other_is_cleaned(
    lab: Lab, app: App, tmp_path: Path
) -> None:
    drill_id = new_drill_id(datetime.now(UTC))
    journal = start_journal(tmp_path, drill_id)
    apis = guards(lab, drill_id, journal, app.namespace)
    for api in apis.values():
        api.create(objects.namespace(drill_id))
        api.create(objects.deny_all_policy(drill_id))
    apis[SECONDARY].create(objects.canary_reader(drill_id, IMAGE))
    with FaultProxy.from_kubeconfig(lab.kubeconfig, SECONDARY) as proxy:
        dead = proxy.kubeconfig(lab.kubeconfig, SECONDARY, tmp_path / "kubeconfig")
    unreachable = KubeApi(SECONDARY, api_client(dead, SECONDARY), RequestStats(), attempts=2, backoff_seconds=0.01)
    cut_off = {PRIMARY: apis[PRIMARY], SECONDARY: GuardedApi(unreachable, journal, drill_id, SECONDARY)}

    result = cleanup_drill(cut_off, drill_id, journal.state(), deadline=time.monotonic() + 120)

    namespace = drill_namespace(drill_id)
    assert gone(app.east, f"/api/v1/namespaces/{namespace}")
    assert len(result.errors) == 1 and result.errors[0].startswith(f"{SECONDARY}: cannot survey")
    assert [line.split(" (")[0] for line in result.residue] == [
        f"{SECONDARY}: Namespace {namespace}",
        f"{SECONDARY}: NetworkPolicy {namespace}/drauditor-deny-all",
        f"{SECONDARY}: Pod {namespace}/drauditor-canary-reader",
    ]
    assert all("may remain" in line and "prod-west" in line.split(" (", 1)[1] for line in result.residue)

    # Later, with the cluster back, the same journal finishes the job.
    again = cleanup_drill(apis, drill_id, journal.state(), deadline=time.monotonic() + 120)
    assert again.residue == [] and left_on_server(lab, drill_id) == []


def test_without_a_journal_labels_suffice_and_a_finalizer_is_waited_for_never_removed(
    lab: Lab, app: App, tmp_path: Path
) -> None:
    drill_id = new_drill_id(datetime.now(UTC))
    apis = guards(lab, drill_id, start_journal(tmp_path, drill_id), app.namespace)
    apis[PRIMARY].create(objects.namespace(drill_id))
    held = objects.canary_pvc(drill_id, "standard", "1Gi")
    held["metadata"]["finalizers"] = ["drauditor.test/hold"]  # some controller's, that it has not released yet
    apis[PRIMARY].create(held)
    source = apis[PRIMARY].create(
        objects.volume_snapshot(drill_id, app.namespace, source_snapshot_name(drill_id, "disk"), "disk", None)
    )
    content = controller_content(app.east, source)
    labels_only = guards(lab, drill_id, None, app.namespace)  # the journal is on another machine

    result = cleanup_drill(labels_only, drill_id, None, deadline=time.monotonic() + 3)

    namespace = drill_namespace(drill_id)
    pvc_path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{CANARY}"
    assert result.residue == [
        f"{PRIMARY}: Namespace {namespace} (still deleting)",
        f"{PRIMARY}: PersistentVolumeClaim {namespace}/{CANARY} (deleting, waits for finalizers drauditor.test/hold)",
        f"{PRIMARY}: VolumeSnapshotContent {content.rsplit('/', 1)[1]} (bound to a drill snapshot; the snapshot "
        "controller has not removed it)",
    ]
    assert gone(
        app.east, f"{SNAPSHOTS}/namespaces/{app.namespace}/volumesnapshots/{source_snapshot_name(drill_id, 'disk')}"
    )
    assert app.east.get(pvc_path)["metadata"]["finalizers"] == ["drauditor.test/hold"]  # never patched away

    assert not gone(app.east, content)  # waited for, never deleted by cleanup
    app.east.request("PATCH", pvc_path, {"metadata": {"finalizers": None}})  # the controllers catch up
    app.east.request("DELETE", content)
    again = cleanup_drill(labels_only, drill_id, None, deadline=time.monotonic() + 120)
    assert again.residue == [] and left_on_server(lab, drill_id) == []
