"""The drill's KubeApi against the session lab's real prod-east apiserver: objects by (apiVersion, kind), deletes
with a uid precondition, watches stamped at receipt, and the shared retries through the fault proxy
(tests/fault_proxy.py) in front of that same apiserver. Each test works in its own namespace.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from fault_proxy import FaultProxy, Rule
from lab.launcher import Lab, missing_binaries

from auditor.drill.api import ApiError, ClusterUnreachable, Expired, KubeApi
from auditor.kubehttp import RequestStats
from auditor.live import api_client

pytestmark = pytest.mark.skipif(
    bool(missing_binaries()), reason="no Kubernetes lab binaries on this machine; scripts/test builds them"
)
CLUSTER = "prod-east"
LABELS = {"app.kubernetes.io/managed-by": "drauditor", "drauditor.io/drill-id": "test-api"}
SELECTOR = "drauditor.io/drill-id=test-api"


@pytest.fixture(scope="module")
def proxy(lab: Lab) -> Iterator[FaultProxy]:
    with FaultProxy.from_kubeconfig(lab.kubeconfig, CLUSTER) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_proxy(proxy: FaultProxy) -> None:
    proxy.reset()


@pytest.fixture(scope="module")
def proxied(lab: Lab, proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return proxy.kubeconfig(lab.kubeconfig, CLUSTER, tmp_path_factory.mktemp("proxied") / "kubeconfig")


def kube_api(kubeconfig: Path, stats: RequestStats | None = None, **options) -> KubeApi:
    options = {"attempts": 3, "backoff_seconds": 0.01, **options}
    return KubeApi(CLUSTER, api_client(kubeconfig, CLUSTER), stats or RequestStats(), **options)


@pytest.fixture
def namespace(lab: Lab) -> Iterator[str]:
    name = f"drill-api-{uuid.uuid4().hex[:8]}"
    rest = lab.rest(CLUSTER)
    rest.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    rest.request("DELETE", f"/api/v1/namespaces/{name}")


def config_map(namespace: str, name: str, labels: dict[str, str] = LABELS) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"step": "0"},
    }


def test_create_get_list_and_delete_with_a_uid_precondition(lab: Lab, namespace: str) -> None:
    stats = RequestStats()
    api = kube_api(lab.kubeconfig, stats)
    created = api.create(config_map(namespace, "one"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    api.create(config_map(namespace, "unlabelled", {"other": "x"}))

    assert api.get("v1", "ConfigMap", "one", namespace)["metadata"]["uid"] == created["metadata"]["uid"]
    assert api.get("v1", "ConfigMap", "missing", namespace) is None
    items, version = api.list("v1", "ConfigMap", namespace=namespace, label_selector=SELECTOR)
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [("v1", "ConfigMap", "one")]
    assert int(version) >= int(created["metadata"]["resourceVersion"])
    everywhere, _ = api.list("v1", "ConfigMap", label_selector=SELECTOR)  # all namespaces
    assert "one" in {i["metadata"]["name"] for i in everywhere if i["metadata"]["namespace"] == namespace}

    assert api.delete("v1", "ConfigMap", "one", namespace, uid=str(uuid.uuid4())) is False  # another object's uid
    assert api.get("v1", "ConfigMap", "one", namespace) is not None
    assert api.delete("v1", "ConfigMap", "one", namespace, uid=created["metadata"]["uid"]) is True
    assert api.get("v1", "ConfigMap", "one", namespace) is None
    assert api.delete("v1", "ConfigMap", "one", namespace, uid=created["metadata"]["uid"]) is False  # already gone
    # one discovery of v1, then one request per call: 2 creates, 4 gets, 2 lists, 3 deletes
    assert (stats.requests, stats.retries, stats.by_cluster) == (12, 0, {CLUSTER: 12})


def test_cluster_scoped_kinds_and_custom_resources_come_from_discovery(lab: Lab, namespace: str) -> None:
    api = kube_api(lab.kubeconfig)
    content = f"drauditor-test-{namespace}"
    manifest = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotContent",
        "metadata": {"name": content, "labels": LABELS},
        "spec": {
            "deletionPolicy": "Retain",
            "driver": "openshift-storage.rbd.csi.ceph.com",
            "source": {"snapshotHandle": "0001-0011-openshift-storage-0000000000000001-test"},
            "volumeSnapshotRef": {"namespace": namespace, "name": "disk"},
        },
    }
    created = api.create(manifest)
    assert lab.rest(CLUSTER).get(f"/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents/{content}")
    assert api.get("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", content)["spec"]["deletionPolicy"] == "Retain"
    assert api.delete("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", content, uid=created["metadata"]["uid"])
    with pytest.raises(ApiError) as refused:
        api.get("snapshot.storage.k8s.io/v1", "NoSuchKind", "x")
    assert (refused.value.status, refused.value.cluster) == (404, CLUSTER)
    with pytest.raises(ApiError) as taken:  # a name already in use, without any earlier attempt: not ours
        api.create(config_map(namespace, "taken"))
        api.create(config_map(namespace, "taken"))
    assert (taken.value.status, taken.value.reason) == (409, "AlreadyExists")
    with pytest.raises(ApiError) as invalid:  # a final 4xx is not retried: the server's reason comes through
        api.create(config_map(namespace, "Not_A_Valid_Name"))
    assert (invalid.value.status, invalid.value.reason) == (422, "Invalid")


def test_watch_yields_the_changes_after_the_list_stamped_in_order(lab: Lab, namespace: str) -> None:
    api = kube_api(lab.kubeconfig)
    api.create(config_map(namespace, "watched"))
    _, version = api.list("v1", "ConfigMap", namespace=namespace, label_selector=SELECTOR)
    rest = lab.rest(CLUSTER)
    path = f"/api/v1/namespaces/{namespace}/configmaps/watched"
    for step in ("1", "2"):
        rest.request("PATCH", path, {"data": {"step": step}})
    rest.request("DELETE", path)
    opened = time.monotonic()
    stream = api.watch("v1", "ConfigMap", label_selector=SELECTOR, resource_version=version, timeout_seconds=2)
    mine = [e for e in stream if e.object.get("metadata", {}).get("namespace") == namespace]
    ended = time.monotonic()
    assert [(e.type, e.object["data"]["step"]) for e in mine] == [
        ("MODIFIED", "1"),
        ("MODIFIED", "2"),
        ("DELETED", "2"),
    ]
    assert all(e.wall.tzinfo is UTC for e in mine)
    monos = [e.mono for e in mine]
    assert opened <= monos[0] and monos == sorted(monos) and monos[-1] <= ended


def test_a_watch_from_a_version_the_server_no_longer_keeps_raises_expired(lab: Lab) -> None:
    api = kube_api(lab.kubeconfig)
    stream = api.watch("v1", "ConfigMap", label_selector=SELECTOR, resource_version="1", timeout_seconds=5)
    with pytest.raises(Expired) as expired:
        next(stream)
    assert expired.value.status == 410


def test_close_ends_a_watch_waiting_for_events_from_another_thread(lab: Lab) -> None:
    api = kube_api(lab.kubeconfig)
    _, version = api.list("v1", "ConfigMap", label_selector="drauditor.io/drill-id=nothing-matches")
    stream = api.watch(
        "v1", "ConfigMap", label_selector="drauditor.io/drill-id=nothing-matches", resource_version=version
    )
    closer = threading.Timer(0.3, stream.close)
    closer.start()
    assert list(stream) == []  # without close() this waits for the server's 60 s
    closer.join()


def test_a_500_is_retried_and_every_attempt_counted(proxied: Path, proxy: FaultProxy, namespace: str) -> None:
    stats = RequestStats()
    api = kube_api(proxied, stats)
    api.create(config_map(namespace, "flaky"))
    path = f"/api/v1/namespaces/{namespace}/configmaps/flaky"
    proxy.add(Rule(path, status=500))
    assert api.get("v1", "ConfigMap", "flaky", namespace)["metadata"]["name"] == "flaky"
    assert [s.status for s in proxy.seen(path)] == [500, 200]
    assert stats.retries == 1
    assert stats.by_cluster[CLUSTER] == len(proxy.seen())  # discovery, create, the two GETs


def test_retry_after_is_honoured(proxied: Path, proxy: FaultProxy, namespace: str) -> None:
    slept: list[float] = []
    api = kube_api(proxied, sleep=slept.append)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    proxy.add(Rule(path, method="POST", status=429, headers={"Retry-After": "3"}, message="slow down"))
    api.create(config_map(namespace, "patient"))
    assert slept == [3.0]  # the server's 3 s, not the 0.01 s backoff
    assert [s.status for s in proxy.seen(path)] == [429, 201]


def test_a_persistent_500_is_an_api_error_after_every_attempt(proxied: Path, proxy: FaultProxy, namespace: str) -> None:
    stats = RequestStats()
    api = kube_api(proxied, stats)
    path = f"/api/v1/namespaces/{namespace}/configmaps/doomed"
    proxy.add(Rule(path, status=500, times=None, message="etcdserver: request timed out"))
    with pytest.raises(ApiError) as failed:
        api.get("v1", "ConfigMap", "doomed", namespace)
    assert (failed.value.status, failed.value.reason, failed.value.message) == (
        500,
        "InternalError",
        "etcdserver: request timed out",
    )
    assert [s.status for s in proxy.seen(path)] == [500, 500, 500]
    assert stats.retries == 2


def test_resets_on_every_attempt_make_the_cluster_unreachable(proxied: Path, proxy: FaultProxy, namespace: str) -> None:
    api = kube_api(proxied)
    path = f"/api/v1/namespaces/{namespace}/configmaps/gone"
    proxy.add(Rule(path, reset=True, times=None))
    with pytest.raises(ClusterUnreachable) as unreachable:
        api.get("v1", "ConfigMap", "gone", namespace)
    assert unreachable.value.cluster == CLUSTER
    assert [(s.status, s.fault) for s in proxy.seen(path)] == [(None, "reset")] * 3


def test_a_create_whose_unanswered_first_attempt_was_applied_returns_that_object(
    lab: Lab, proxied: Path, proxy: FaultProxy, namespace: str
) -> None:
    api = kube_api(proxied, request_timeout=3)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    # The first POST reaches the server only after the client gave up (3 s); the retry arrives after it: 409.
    proxy.add(Rule(path, method="POST", delay=4))
    proxy.add(Rule(path, method="POST", delay=2))
    created = api.create(config_map(namespace, "twice"))
    first, second = proxy.seen(path)
    assert (first.status, first.delivered, second.status, second.delivered) == (201, False, 409, True)
    stored = lab.rest(CLUSTER).get(f"{path}/twice")
    assert created["metadata"]["uid"] == stored["metadata"]["uid"]
