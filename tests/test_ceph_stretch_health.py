"""ceph_stretch_health on real Ceph 16.2.15 stretch-mode captures (tests/fixtures/ceph/SOURCES.md).

Cases that need another state (stretch mode off, a moved monitor, a wrong type, a missing file) change the
captured outputs in memory; each test says what it changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import FIXTURES, ceph_estate, ceph_fixture, context_for

from auditor.model import Finding, Status
from auditor.registry import load_module
from auditor.runner import run_check

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CHECK = load_module("ceph_stretch_health", "checks.ceph_stretch_health")  # proves META is valid


def run(outputs: dict[str, Any]) -> list[Finding]:
    findings = run_check(CHECK, context_for(ceph_estate(outputs)))
    assert all(f.check_id == "ceph_stretch_health" and f.cluster == "ceph" for f in findings)
    return findings


def scenario(name: str) -> list[Finding]:
    return run(ceph_fixture(name))


def by_resource(findings: list[Finding]) -> dict[str, Finding]:
    return {f.resource.display(): f for f in findings if f.resource}


def statuses(findings: list[Finding]) -> dict[str, str]:
    return {name: f.status.value for name, f in by_resource(findings).items()}


def not_passing(findings: list[Finding]) -> dict[str, str]:
    return {name: status for name, status in statuses(findings).items() if status != "pass"}


HEALTHY_CLUSTER = "CephCluster ffbc25fa-5bad-4433-990a-11c9f489f705"


def test_meta_loads_through_the_registry() -> None:
    assert CHECK.meta.severity.value == "critical"
    assert "ceph:mon_dump" in CHECK.meta.kinds_read and "ceph:crush_rule_dump" in CHECK.meta.kinds_read


def test_healthy_stretch_cluster_passes_everything() -> None:
    findings = scenario("healthy")
    assert {f.status for f in findings} == {Status.PASS}
    assert sorted(statuses(findings)) == sorted(
        [
            HEALTHY_CLUSTER,
            "MonMap ffbc25fa-5bad-4433-990a-11c9f489f705",
            "Monitor dc1a",
            "Monitor dc1b",
            "Monitor dc2a",
            "Monitor dc2b",
            "Monitor arb",
            "Pool device_health_metrics",
            "Pool rbdpool",
            "HealthCheck HEALTH_OK",
        ]
    )
    cluster = by_resource(findings)[HEALTHY_CLUSTER]
    assert cluster.evidence["election_strategy"] == 3 and cluster.evidence["tiebreaker_mon"] == "arb"
    assert cluster.evidence["osdmap_stretch_mode"]["stretch_mode_enabled"] is True


def test_recovered_cluster_passes_again() -> None:
    assert {f.status for f in scenario("recovered")} == {Status.PASS}


def test_degraded_fails_and_names_the_lost_datacenter() -> None:
    findings = scenario("degraded")
    cluster = by_resource(findings)[HEALTHY_CLUSTER]
    assert cluster.status is Status.FAIL
    assert "stretch mode is degraded: datacenter dc2 is lost" in cluster.message
    assert cluster.evidence["lost_sites"] == ["dc2"]
    assert "mandatory_member [-4]" in cluster.evidence["lost_site_basis"]
    assert not_passing(findings) == {
        HEALTHY_CLUSTER: "fail",
        "Monitor dc2a": "warn",
        "Monitor dc2b": "warn",
        # Ceph itself lowers min_size to 1 while degraded: reported, but the pool is not misconfigured
        "Pool device_health_metrics": "warn",
        "Pool rbdpool": "warn",
        "HealthCheck DEGRADED_STRETCH_MODE": "fail",
        "HealthCheck MON_DOWN": "warn",
        "HealthCheck OSD_DATACENTER_DOWN": "fail",
        "HealthCheck OSD_DOWN": "warn",
        "HealthCheck OSD_HOST_DOWN": "warn",
        "HealthCheck PG_DEGRADED": "warn",
    }
    mon_down = by_resource(findings)["HealthCheck MON_DOWN"]
    assert "2/5 mons down, quorum dc1a,dc1b,arb" in mon_down.message
    assert len(mon_down.evidence["detail"]) == 2


@pytest.mark.parametrize(
    ("change", "basis"),
    [
        ("no_mandatory_member", "all OSDs of the datacenter are down in osd_tree"),
        ("no_mandatory_member_osds_up", "all monitors of the datacenter are out of quorum"),
    ],
)
def test_lost_datacenter_is_derived_without_the_pool_marker(change: str, basis: str) -> None:
    outputs = ceph_fixture("degraded")
    for pool in outputs["osd_dump"]["pools"]:  # in memory: as if Ceph had not recorded the surviving bucket
        pool["peering_crush_bucket_mandatory_member"] = 2147483647
    if change == "no_mandatory_member_osds_up":
        for node in outputs["osd_tree"]["nodes"]:
            if node["type"] == "osd":
                node["status"] = "up"
    cluster = by_resource(run(outputs))[HEALTHY_CLUSTER]
    assert "datacenter dc2 is lost" in cluster.message
    assert cluster.evidence["lost_site_basis"] == basis


def test_recovering_fails_as_recovering() -> None:
    findings = scenario("recovering")
    cluster = by_resource(findings)[HEALTHY_CLUSTER]
    assert cluster.status is Status.FAIL
    assert "stretch mode is recovering: datacenter dc2 is rejoining" in cluster.message
    assert not_passing(findings) == {
        HEALTHY_CLUSTER: "fail",
        "Pool device_health_metrics": "warn",
        "Pool rbdpool": "warn",
        "HealthCheck PG_DEGRADED": "warn",
        "HealthCheck RECOVERING_STRETCH_MODE": "fail",
    }


def test_tiebreaker_down_only_warns() -> None:
    findings = scenario("scenarioC_tiebreaker_down")
    assert not_passing(findings) == {"Monitor arb": "warn", "HealthCheck MON_DOWN": "warn"}
    arb = by_resource(findings)["Monitor arb"]
    assert arb.message.startswith("Tiebreaker mon arb in datacenter arbiter is out of quorum")
    assert arb.evidence["in_quorum"] is False and arb.evidence["tiebreaker"] is True


def test_site_osds_down_with_mons_up_fails_on_blocked_io() -> None:
    findings = scenario("scenarioB_dc2_osds_down_mons_up")
    found = by_resource(findings)
    cluster = found["CephCluster 99748b46-2ae7-4df4-aa39-0e5ba9ffbc7e"]
    assert cluster.status is Status.FAIL
    assert "all OSDs of datacenter dc2 are down but stretch mode did not degrade" in cluster.message
    assert "monitors dc2a, dc2b are still in quorum" in cluster.message
    assert "client I/O is blocked" in cluster.message
    availability = found["HealthCheck PG_AVAILABILITY"]
    assert availability.status is Status.FAIL
    assert "Reduced data availability: 17 pgs inactive" in availability.message
    assert "block client I/O" in availability.message
    assert found["HealthCheck OSD_DATACENTER_DOWN"].status is Status.FAIL


def test_misconfigured_pools_fail_although_ceph_says_health_ok() -> None:
    findings = scenario("misconfigured_pools_health_ok")
    found = by_resource(findings)
    assert found["HealthCheck HEALTH_OK"].status is Status.PASS
    assert not_passing(findings) == {"Pool latepool": "fail", "Pool latepool2": "fail"}
    assert found["Pool latepool"].message == (
        "Pool latepool is not set up for stretch mode: size 3 instead of 4; min_size 1 instead of 2."
    )
    assert found["Pool latepool2"].message == (
        "Pool latepool2 is not set up for stretch mode: min_size 1 instead of 2; CRUSH rule replicated_rule "
        "(id 0) does not direct copies to datacenter dc1, dc2."
    )
    assert found["Pool latepool2"].evidence["crush_rule_name"] == "replicated_rule"
    assert found["Pool rbdpool"].evidence["rule_sites"] == ["dc1", "dc2"]


def test_stretch_mode_off_fails() -> None:
    outputs = ceph_fixture("healthy")
    outputs["mon_dump"]["stretch_mode"] = False  # in memory: as before enable_stretch_mode
    outputs["mon_dump"]["tiebreaker_mon"] = ""
    outputs["osd_dump"]["stretch_mode"]["stretch_mode_enabled"] = False
    found = by_resource(run(outputs))
    assert found[HEALTHY_CLUSTER].status is Status.FAIL
    assert found[HEALTHY_CLUSTER].message.endswith(": stretch mode is not enabled.")
    assert "there is no tiebreaker mon" in found["MonMap ffbc25fa-5bad-4433-990a-11c9f489f705"].message


def test_classic_elections_fail() -> None:
    outputs = ceph_fixture("healthy")
    outputs["mon_dump"]["election_strategy"] = 1  # in memory
    cluster = by_resource(run(outputs))[HEALTHY_CLUSTER]
    assert cluster.status is Status.FAIL
    assert "the monitor election strategy is classic, not connectivity" in cluster.message


def test_monitor_layout_that_loses_quorum_with_a_site_fails() -> None:
    outputs = ceph_fixture("healthy")
    outputs["mon_dump"]["mons"][3]["crush_location"] = "{datacenter=dc1}"  # in memory: dc2b moved to dc1
    outputs["mon_dump"]["mons"][4]["crush_location"] = "{datacenter=dc1}"  # and the tiebreaker too
    layout = by_resource(run(outputs))["MonMap ffbc25fa-5bad-4433-990a-11c9f489f705"]
    assert layout.status is Status.FAIL
    assert "tiebreaker mon arb is in dc1, not in a third location" in layout.message
    assert "losing datacenter dc1 leaves 1 of 5 monitors, no majority" in layout.message
    assert "datacenter dc2 holds 1 data-site monitor(s) instead of 2" in layout.message


def test_monitor_without_location_fails() -> None:
    outputs = ceph_fixture("healthy")
    outputs["mon_dump"]["mons"][0]["crush_location"] = "{}"  # in memory: location never set
    found = by_resource(run(outputs))
    assert found["Monitor dc1a"].status is Status.FAIL
    assert "has no datacenter in its CRUSH location" in found["Monitor dc1a"].message


def test_missing_ceph_data_is_one_error_naming_every_file() -> None:
    findings = run({})
    assert len(findings) == 1 and findings[0].status is Status.ERROR
    message = findings[0].message
    for name in ("mon_dump.json", "osd_dump.json", "osd_tree.json", "quorum_status.json", "health_detail.json"):
        assert name in message
    assert findings[0].evidence["missing"]["osd_dump.json"] == "ceph osd dump -f json"


def test_missing_quorum_status_is_an_error_while_the_rest_is_judged() -> None:
    outputs = ceph_fixture("healthy")
    del outputs["quorum_status"]
    findings = run(outputs)
    errors = [f for f in findings if f.status is Status.ERROR]
    assert len(errors) == 1 and "quorum_status.json" in errors[0].message
    assert errors[0].evidence["not_evaluated"] == ["monitors and their layout"]
    assert not any(f.resource and f.resource.kind == "Monitor" for f in findings)
    assert by_resource(findings)["Pool rbdpool"].status is Status.PASS


def test_without_crush_rules_pool_rules_are_unverified_not_passed() -> None:
    outputs = ceph_fixture("healthy")
    del outputs["crush_rule_dump"]  # optional file: no missing-file error, but no pool can pass
    found = by_resource(run(outputs))
    assert found["Pool rbdpool"].status is Status.ERROR
    assert "cannot be checked: crush_rule_dump.json is missing" in found["Pool rbdpool"].message
    assert found[HEALTHY_CLUSTER].status is Status.PASS


def test_health_falls_back_to_ceph_status() -> None:
    outputs = ceph_fixture("degraded")
    del outputs["health_detail"]
    findings = run(outputs)
    assert not any(f.status is Status.ERROR for f in findings)
    assert by_resource(findings)["HealthCheck DEGRADED_STRETCH_MODE"].evidence["source"] == "status.json"


@pytest.mark.parametrize(
    ("stem", "change", "field", "skipped"),
    [
        ("mon_dump", lambda d: d["mons"][0].__setitem__("crush_location", 5), "mons[0].crush_location", "Monitor"),
        (
            "osd_dump",
            lambda d: d["stretch_mode"].__setitem__("degraded_stretch_mode", "1"),
            "stretch_mode.degraded_stretch_mode",
            "Pool",
        ),
        ("health_detail", lambda d: d.__setitem__("checks", []), "checks", "HealthCheck"),
        ("osd_tree", lambda d: d["nodes"][0].__setitem__("children", "-4,-10"), "nodes[0].children", "CephCluster"),
    ],
)
def test_wrong_types_become_an_error_finding(stem, change, field, skipped) -> None:
    outputs = ceph_fixture("healthy")
    change(outputs[stem])
    findings = run(outputs)
    errors = [f for f in findings if f.status is Status.ERROR]
    assert len(errors) == 1
    assert errors[0].message.startswith(f"Ceph output {stem}.json is malformed: {field} is ")
    assert errors[0].evidence["field"] == field and errors[0].evidence["not_evaluated"]
    assert not any(f.resource and f.resource.kind == skipped for f in findings)


@pytest.mark.parametrize("estate", ["healthy", "broken-protection"])
def test_samples_with_the_healthy_capture_pass(estate: str) -> None:
    for name in ("mon_dump", "osd_dump", "osd_tree", "health_detail", "quorum_status", "crush_rule_dump"):
        assert (SAMPLES / estate / "ceph" / f"{name}.json").read_bytes() == (
            FIXTURES / "ceph" / "healthy" / f"{name}.json"
        ).read_bytes()
    findings = run_check(CHECK, context_for(ceph_dir=SAMPLES / estate / "ceph"))
    assert {f.status for f in findings} == {Status.PASS}


def test_broken_site_sample_fails_naming_dc2() -> None:
    findings = run_check(CHECK, context_for(ceph_dir=SAMPLES / "broken-site" / "ceph"))
    cluster = by_resource(findings)[HEALTHY_CLUSTER]
    assert cluster.status is Status.FAIL and "datacenter dc2 is lost" in cluster.message
    assert not any(f.status is Status.ERROR for f in findings)
