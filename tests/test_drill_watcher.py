"""The drill's Watcher against the session lab's real prod-east apiserver: labelled ConfigMaps in a namespace of each
test's own, changed through lab.rest, drive the events; the fault proxy (tests/fault_proxy.py) takes the cluster
away. Assertions are on the order and values of stamps, never on how long something took.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy, Rule
from lab.launcher import Lab, missing_binaries
from lab.rest import Rest

from auditor.drill.api import KubeApi
from auditor.drill.watcher import StreamLost, WaitFailed, WaitTimeout, Watcher
from auditor.kubehttp import RequestStats
from auditor.live import api_client

pytestmark = pytest.mark.skipif(
    bool(missing_binaries()), reason="no Kubernetes lab binaries on this machine; scripts/test builds them"
)
CLUSTER = "prod-east"
DRILL_LABEL = "drauditor.io/drill-id"
FAR = 60.0  # a deadline no passing test reaches


@pytest.fixture
def namespace(lab: Lab) -> Iterator[str]:
    name = f"drill-watch-{uuid.uuid4().hex[:8]}"
    rest = lab.rest(CLUSTER)
    rest.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    rest.request("DELETE", f"/api/v1/namespaces/{name}")


class ConfigMaps:
    """Labelled ConfigMaps of one test, written straight to the apiserver (not through the API under test)."""

    def __init__(self, rest: Rest, namespace: str) -> None:
        self.rest, self.namespace = rest, namespace
        self.drill = uuid.uuid4().hex[:8]  # each test watches only its own objects
        self.selector = f"{DRILL_LABEL}={self.drill}"

    def create(self, name: str, step: str) -> None:
        metadata = {"name": name, "namespace": self.namespace, "labels": {DRILL_LABEL: self.drill}}
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"step": step}}
        self.rest.request("POST", f"/api/v1/namespaces/{self.namespace}/configmaps", body)

    def set(self, name: str, step: str) -> None:
        self.rest.request("PATCH", f"/api/v1/namespaces/{self.namespace}/configmaps/{name}", {"data": {"step": step}})


@pytest.fixture
def maps(lab: Lab, namespace: str) -> ConfigMaps:
    return ConfigMaps(lab.rest(CLUSTER), namespace)


def kube_api(kubeconfig: Path, stats: RequestStats | None = None) -> KubeApi:
    return KubeApi(CLUSTER, api_client(kubeconfig, CLUSTER), stats or RequestStats(), attempts=2, backoff_seconds=0.01)


def watcher(api: KubeApi, selector: str, **options) -> Watcher:
    options = {"reconnects": 2, "pause_seconds": 0.05, **options}
    return Watcher({CLUSTER: api}, [(CLUSTER, "v1", "ConfigMap")], selector, **options)


def step(value: str) -> Callable[[dict], bool]:
    return lambda obj: (obj.get("data") or {}).get("step") == value


def test_an_event_before_the_wait_keeps_its_own_stamp(lab: Lab, namespace: str, maps: ConfigMaps) -> None:
    maps.create("listed", "0")  # before the watcher starts: known from its list
    with watcher(kube_api(lab.kubeconfig), maps.selector) as watching:
        maps.create("vm", "0")
        maps.set("vm", "1")
        maps.set("vm", "2")
        last = watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("2"), deadline=time.monotonic() + FAR)
        # Asked after both events arrived: the stamps are the events', in their order, not the time of asking.
        first = watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("1"), deadline=time.monotonic() + FAR)
        again = watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("2"), deadline=time.monotonic() + FAR)
        listed = watching.wait_for(CLUSTER, "ConfigMap", namespace, "listed", step("0"), deadline=0.0)
        history = watching.events(CLUSTER, "ConfigMap", namespace, "vm")
    assert [(e.type, e.object["data"]["step"]) for e in history] == [
        ("ADDED", "0"),
        ("MODIFIED", "1"),
        ("MODIFIED", "2"),
    ]
    assert (first.mono, first.wall, first.object) == (history[1].mono, history[1].wall, history[1].object)
    assert again == last and last.mono == history[2].mono and first.mono <= last.mono and first.wall <= last.wall
    assert listed.object["metadata"]["name"] == "listed" and listed.mono < history[0].mono  # listed at start()


def test_a_waiter_is_woken_by_an_event_after_the_wait(lab: Lab, namespace: str, maps: ConfigMaps) -> None:
    maps.create("vm", "0")
    results: list = []
    with watcher(kube_api(lab.kubeconfig), maps.selector) as watching:
        waiting = threading.Thread(
            target=lambda: results.append(
                watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("1"), deadline=time.monotonic() + FAR)
            )
        )
        waiting.start()
        changed = time.monotonic()
        maps.set("vm", "1")
        waiting.join()
        modified = watching.events(CLUSTER, "ConfigMap", namespace, "vm")[-1]
    [stamp] = results
    assert stamp.object["data"]["step"] == "1"
    assert stamp.mono == modified.mono and stamp.mono > changed  # the event's stamp: after the change was made


def test_failed_ends_the_wait_with_its_reason_and_a_deadline_with_the_last_object(
    lab: Lab, namespace: str, maps: ConfigMaps
) -> None:
    def broken(obj: dict) -> str | None:
        return f"step {obj['data']['step']} means failed" if obj["data"]["step"] == "bad" else None

    maps.create("vm", "0")
    with watcher(kube_api(lab.kubeconfig), maps.selector) as watching:
        maps.set("vm", "bad")
        with pytest.raises(WaitFailed) as failed:
            watching.wait_for(
                CLUSTER, "ConfigMap", namespace, "vm", step("done"), deadline=time.monotonic() + FAR, failed=broken
            )
        assert failed.value.reason == "step bad means failed"
        with pytest.raises(WaitTimeout) as late:
            watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("done"), deadline=time.monotonic() + 0.3)
        assert late.value.last["data"]["step"] == "bad"
        with pytest.raises(WaitTimeout) as never:
            watching.wait_for(CLUSTER, "ConfigMap", namespace, "absent", step("0"), deadline=time.monotonic() + 0.1)
        assert never.value.last is None


def test_streams_the_server_ends_are_re_established_without_losing_events(
    lab: Lab, namespace: str, maps: ConfigMaps
) -> None:
    stats = RequestStats()
    maps.create("vm", "0")
    with watcher(kube_api(lab.kubeconfig, stats), maps.selector, watch_seconds=1) as watching:
        opened = stats.requests
        for change in ("1", "2", "3"):
            # Each change waits until the server has ended a stream and the watcher has opened another.
            until = time.monotonic() + FAR
            while stats.requests < opened + 1 and time.monotonic() < until:
                time.sleep(0.1)
            opened = stats.requests
            maps.set("vm", change)
        watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("3"), deadline=time.monotonic() + FAR)
        history = watching.events(CLUSTER, "ConfigMap", namespace, "vm")
    assert stats.requests >= 6  # discovery, list, the first watch, and a new watch before each change
    assert [e.object["data"]["step"] for e in history] == ["0", "1", "2", "3"]  # each once, in order
    versions = [int(e.object["metadata"]["resourceVersion"]) for e in history]
    assert versions == sorted(versions)


def test_a_cluster_the_proxy_resets_is_lost_for_every_waiter(
    lab: Lab, namespace: str, maps: ConfigMaps, tmp_path: Path
) -> None:
    maps.create("vm", "0")
    with FaultProxy.from_kubeconfig(lab.kubeconfig, CLUSTER) as proxy:
        proxied = proxy.kubeconfig(lab.kubeconfig, CLUSTER, tmp_path / "kubeconfig")
        with watcher(kube_api(proxied), maps.selector, watch_seconds=1) as watching:
            # The proxy answers a watch when it ends (after 1 s): the start-up list is in the history already.
            assert watching.events(CLUSTER, "ConfigMap", namespace, "vm")[0].type == "ADDED"
            errors: list[Exception] = []

            def wait() -> None:
                try:
                    watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("1"), deadline=time.monotonic() + FAR)
                except StreamLost as exc:
                    errors.append(exc)

            waiting = threading.Thread(target=wait)
            waiting.start()
            proxy.add(Rule(".*", reset=True, times=None))
            waiting.join()
            [lost] = errors
            assert lost.cluster == CLUSTER and "not re-established after 3 attempts" in lost.cause
            with pytest.raises(StreamLost):  # a later waiter is told at once, long before its deadline
                watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("1"), deadline=time.monotonic() + FAR)
            # what was seen before the loss is still an answer
            seen = watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("0"), deadline=time.monotonic() + FAR)
            assert seen.object["data"]["step"] == "0"
        assert {s.fault for s in proxy.seen()[-3:]} == {"reset"}


def test_stop_ends_every_stream_thread_and_later_waits(lab: Lab, namespace: str, maps: ConfigMaps) -> None:
    api = kube_api(lab.kubeconfig)
    watching = Watcher(
        {CLUSTER: api},
        [(CLUSTER, "v1", "ConfigMap"), (CLUSTER, "v1", "Secret"), (CLUSTER, "v1", "PersistentVolumeClaim")],
        maps.selector,
    )
    watching.start()
    mine = lambda: [t for t in threading.enumerate() if t.name.startswith(f"drill-watch {CLUSTER}")]  # noqa: E731
    assert len(mine()) == 3  # each blocked in a 60 s watch
    watching.stop()
    assert mine() == []
    with pytest.raises(StreamLost) as stopped:
        watching.wait_for(CLUSTER, "ConfigMap", namespace, "vm", step("0"), deadline=time.monotonic() + FAR)
    assert stopped.value.cause == "the watcher was stopped"


def test_a_stream_the_server_refuses_fails_start(lab: Lab, maps: ConfigMaps) -> None:
    watching = Watcher({CLUSTER: kube_api(lab.kubeconfig)}, [(CLUSTER, "v1", "NoSuchKind")], maps.selector)
    with pytest.raises(StreamLost) as refused:
        watching.start()
    assert refused.value.cluster == CLUSTER and "does not serve NoSuchKind" in refused.value.cause
