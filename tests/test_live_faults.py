"""The live reader under apiserver faults: a fault proxy (tests/fault_proxy.py) in front of the REAL prod-east
apiserver of a lab loaded with the healthy sample estate injects one fault per test; hub and prod-west are read
directly. Each test proves a clear outcome and that nothing read before the fault is lost, by comparing every
cluster's objects with a fault-free read (each object exactly once).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy, Rule, has_continue
from helpers import SAMPLES
from lab.launcher import Lab, missing_binaries
from lab.loader import load

from auditor.config import AuditConfig
from auditor.engine import audit, build_context
from auditor.evidence_io import import_json
from auditor.inventory import Estate, name_of, namespace_of
from auditor.live import LiveOptions, RequestStats, load_live
from auditor.model import Status
from auditor.snapshot import load_ceph

pytestmark = pytest.mark.skipif(
    bool(missing_binaries()), reason="no Kubernetes lab binaries on this machine; scripts/test builds them"
)
PROXIED = "prod-east"
CLUSTERS = {"prod-east": "prod-east", "prod-west": "prod-west"}
VMS = "/apis/kubevirt.io/v1/virtualmachines"
PVCS = "/api/v1/persistentvolumeclaims"
# The message a v1.20 apiserver gives with 410 Expired (storage/etcd3: errors.go, "The provided continue ...").
EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter."
)


@pytest.fixture(scope="module")
def estate_lab() -> Iterator[Lab]:
    with Lab() as lab:
        load(lab, SAMPLES / "healthy")
        yield lab


@pytest.fixture(scope="module")
def proxy(estate_lab: Lab) -> Iterator[FaultProxy]:
    with FaultProxy.from_kubeconfig(estate_lab.kubeconfig, PROXIED) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_proxy(proxy: FaultProxy) -> None:
    proxy.reset()


@pytest.fixture(scope="module")
def kubeconfig(estate_lab: Lab, proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The admin kubeconfig with prod-east behind the proxy."""
    return proxy.kubeconfig(estate_lab.kubeconfig, PROXIED, tmp_path_factory.mktemp("proxied") / "kubeconfig")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("evidence") / "evidence.db"
    import_json(path, SAMPLES / "healthy" / "drills.json")
    return path


def read(kubeconfig: Path, stats: RequestStats | None = None, **options) -> Estate:
    """A live read with a fast backoff unless a test says otherwise."""
    options = {"attempts": 3, "backoff_seconds": 0.01, **options}
    return load_live(
        "hub",
        CLUSTERS,
        LiveOptions(kubeconfig=kubeconfig, **options),
        stats=stats,
        ceph=load_ceph(SAMPLES / "healthy" / "ceph", SAMPLES / "healthy", {}),
    )


@pytest.fixture(scope="module")
def baseline(estate_lab: Lab) -> Estate:
    """A fault-free read straight from the apiservers, no proxy."""
    estate = read(estate_lab.kubeconfig)
    assert estate.unavailable() == []
    return estate


def contents(estate: Estate) -> dict[tuple[str, str], list[tuple[str | None, str]]]:
    """(cluster, kind) -> every object's (namespace, name), duplicates kept: equal contents means exactly once."""
    return {
        (inventory.name, kind): sorted((namespace_of(obj), name_of(obj)) for obj in inventory.list(kind))
        for inventory in estate.inventories()
        for kind in inventory.kinds()
    }


def judged(estate: Estate, store: Path) -> tuple[str, list[tuple]]:
    """The verdict and every finding as (check, status, cluster, resource, message); test ages (which depend on
    the moment of the read) without their message."""
    report = audit(build_context(estate, AuditConfig(), store))
    rows = [
        (
            f.check_id,
            f.status.value,
            f.cluster,
            f.resource.display() if f.resource else None,
            "" if f.check_id == "last_test_failover" else f.message,
        )
        for f in report.findings
    ]
    return report.verdict, sorted(rows)


def test_the_proxy_is_transparent_without_rules(kubeconfig: Path, proxy: FaultProxy, baseline: Estate) -> None:
    stats = RequestStats()
    estate = read(kubeconfig, stats)
    seen = proxy.seen()
    assert len(seen) == stats.by_cluster[PROXIED]  # every prod-east request went through it
    assert {(s.status, s.fault, s.delivered) for s in seen} == {(200, None, True)}
    assert VMS in {s.path for s in seen} and PVCS in {s.path for s in seen}
    assert contents(estate) == contents(baseline)
    assert f"{PROXIED}={proxy.url}" in estate.origin


def test_a_one_shot_500_is_retried_and_the_estate_is_complete(
    kubeconfig: Path, proxy: FaultProxy, baseline: Estate
) -> None:
    proxy.add(Rule(VMS, status=500))
    stats = RequestStats()
    estate = read(kubeconfig, stats)
    assert [s.status for s in proxy.seen(VMS)] == [500, 200]
    assert stats.retries == 1
    assert estate.unavailable() == []
    assert contents(estate) == contents(baseline)


def test_a_kind_gone_between_discovery_and_its_list_is_not_served(
    kubeconfig: Path, proxy: FaultProxy, baseline: Estate
) -> None:
    """A CRD deleted while the audit reads: discovery still named the kind, its list answers 404."""
    proxy.add(Rule(VMS, status=404, message="the server could not find the requested resource"))
    estate = read(kubeconfig)
    assert [s.status for s in proxy.seen(VMS)] == [404]  # final: not retried
    reasons = {(c, k): r for c, k, r in estate.unavailable()}
    assert set(reasons) == {(PROXIED, "VirtualMachine")}
    assert reasons[(PROXIED, "VirtualMachine")] == (
        "virtualmachines.kubevirt.io is not served (its CRD went away while it was read)"
    )


def test_a_429_waits_the_retry_after_the_server_asks_for(kubeconfig: Path, proxy: FaultProxy, baseline: Estate) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    proxy.add(Rule(VMS, status=429, headers={"Retry-After": "2"}, message="Too many requests, try again later."))
    stats = RequestStats()
    estate = read(kubeconfig, stats, sleep=sleep)
    assert slept == [2.0]  # the server's 2 s, not the 0.01 s backoff
    first, second = proxy.seen(VMS)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 2.0
    assert stats.retries == 1
    assert estate.unavailable() == []
    assert contents(estate) == contents(baseline)


def test_an_answer_slower_than_the_read_timeout_is_abandoned_and_retried(
    kubeconfig: Path, proxy: FaultProxy, baseline: Estate
) -> None:
    proxy.add(Rule(VMS, delay=3))
    stats = RequestStats()
    estate = read(kubeconfig, stats, read_timeout=1)
    first, second = proxy.seen(VMS)
    assert first.fault == "delay 3 s, forward" and not first.delivered  # the reader hung up before the answer
    assert second.at - first.at < 2.5  # it retried after its own 1 s timeout, not after the 3 s answer
    assert (second.status, second.fault, second.delivered) == (200, None, True)
    assert stats.retries == 1
    assert estate.unavailable() == []
    assert contents(estate) == contents(baseline)


def test_a_reset_connection_is_retried(kubeconfig: Path, proxy: FaultProxy, baseline: Estate) -> None:
    proxy.add(Rule(VMS, reset=True))
    stats = RequestStats()
    estate = read(kubeconfig, stats)
    assert [(s.status, s.fault) for s in proxy.seen(VMS)] == [(None, "reset"), (200, None)]
    assert stats.retries == 1
    assert estate.unavailable() == []
    assert contents(estate) == contents(baseline)


def test_a_kind_that_always_fails_is_unavailable_and_everything_else_is_still_audited(
    kubeconfig: Path, proxy: FaultProxy, baseline: Estate, store: Path
) -> None:
    proxy.add(Rule(PVCS, status=500, times=None, message="etcdserver: request timed out"))
    stats = RequestStats()
    estate = read(kubeconfig, stats, attempts=3)
    assert [s.status for s in proxy.seen(PVCS)] == [500, 500, 500]
    assert stats.retries == 2
    [(cluster, kind, reason)] = estate.unavailable()
    assert (cluster, kind) == (PROXIED, "PersistentVolumeClaim")
    assert reason == (
        "list persistentvolumeclaims.core on prod-east failed "
        "(3 attempts failed, the last with HTTP 500: etcdserver: request timed out)"
    )
    lost = (PROXIED, "PersistentVolumeClaim")
    assert contents(baseline)[lost]  # there were PVCs to lose
    assert contents(estate) == {key: objects for key, objects in contents(baseline).items() if key != lost}

    verdict, findings = judged(estate, store)
    clean_verdict, clean_findings = judged(baseline, store)
    assert (clean_verdict, verdict) == ("ready", "incomplete")
    elsewhere = lambda rows: {r for r in rows if r[2] != PROXIED}  # noqa: E731
    # The hub's, prod-west's and Ceph's findings are all still there, but for one that judges prod-west by prod-east's
    # VMs (whether prod-west can take their load): with prod-east left out of its view, it cannot be judged.
    lost_elsewhere = elsewhere(clean_findings) - elsewhere(findings)
    assert {(r[0], r[2]) for r in lost_elsewhere} == {("peer_capacity", "prod-west")}
    # What comes instead are skips that say so: no protected VM on the clusters still in view (prod-west has none).
    new_elsewhere = elsewhere(findings) - elsewhere(clean_findings)
    assert {r[1] for r in new_elsewhere} == {"skip"}
    errors = [r for r in findings if r[1] == Status.ERROR.value]
    assert errors and {r[2] for r in errors} == {PROXIED}
    assert all("PersistentVolumeClaim could not be read on prod-east" in r[4] for r in errors)


def test_an_expired_continue_token_restarts_the_list_and_keeps_every_object_once(
    kubeconfig: Path, proxy: FaultProxy, baseline: Estate
) -> None:
    proxy.add(Rule(VMS, query=has_continue, status=410, message=EXPIRED))
    stats = RequestStats()
    estate = read(kubeconfig, stats, page_size=2)
    pages = [("continue" in s.query, s.status) for s in proxy.seen(VMS)]
    # page 1, page 2 expired; the restart from the beginning: page 1 again, then page 2 (4 VMs, 2 per page)
    assert pages == [(False, 200), (True, 410), (False, 200), (True, 200)]
    assert all(s.query["limit"] == ["2"] for s in proxy.seen(VMS))
    assert stats.retries == 0  # a restart, not a retry of the expired request
    assert estate.unavailable() == []
    assert contents(estate) == contents(baseline)
    assert len(contents(estate)[(PROXIED, "VirtualMachine")]) == 4
