"""async_replication_lag: the Metro samples are skipped; a Regional policy built from them is judged by sync age."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import by_resource, context_for, run, sample

from auditor.config import AuditConfig, Thresholds
from auditor.model import Status
from auditor.timeutil import rfc3339

CHECK = "async_replication_lag"


@pytest.fixture
def estate():
    return sample("healthy")


def make_regional(estate, interval="5m") -> None:
    """The sample's DRPolicy as Ramen reports a Regional-DR (async, RBD mirroring) policy over the same clusters."""
    policy = estate.hub.get("DRPolicy", "odr-metro-policy")
    policy["spec"]["schedulingInterval"] = interval
    (sync_class,) = policy["status"]["sync"]["peerClasses"]
    policy["status"]["async"] = {
        "peerClasses": [
            {
                "clusterIDs": sync_class["clusterIDs"],
                "replicationID": "5d0c6c1b8f6b4f6f0e3a2d7c9b1e4a55",
                "storageClassName": sync_class["storageClassName"],
                "storageID": ["8b1f4c2e6d0a4b7e9c3f5a1d2e4b6c8f", "f3a9d1c7b5e24c0a8d6e1b3f5c7a9e20"],
            }
        ]
    }
    policy["status"]["sync"] = {}


def synced(estate, name, namespace, ago: timedelta | None) -> None:
    """Gives a DRPC the lastGroupSync* status Ramen sets from its primary VRG (or none: never synced)."""
    status = estate.hub.get("DRPlacementControl", name, namespace)["status"]
    if ago is None:
        for key in ("lastGroupSyncTime", "lastGroupSyncDuration", "lastGroupSyncBytes"):
            status.pop(key, None)
        return
    status.update(
        lastGroupSyncTime=rfc3339(estate.captured_at - ago), lastGroupSyncDuration="41s", lastGroupSyncBytes=73400320
    )


def findings_of(estate, **kwargs):
    return by_resource(run(CHECK, context_for(estate, **kwargs)))


def test_metro_drpcs_are_skipped_with_the_reason(estate) -> None:
    findings = run(CHECK, context_for(estate))
    assert len(findings) == len(estate.hub.list("DRPlacementControl")) == 3
    for finding in findings:
        assert finding.status is Status.SKIP
        assert "RPO comes from synchronous replication and the Ceph checks" in finding.message
        assert finding.resource.kind == "DRPlacementControl" and finding.cluster == "hub"


def test_regional_drpcs_are_graded_by_sync_age_over_the_interval(estate) -> None:
    make_regional(estate)
    synced(estate, "billing-drpc", "billing", timedelta(minutes=4))  # 0.8x
    synced(estate, "crm-drpc", "crm", timedelta(minutes=12, seconds=30))  # 2.5x
    synced(estate, "erp-drpc", "openshift-dr-ops", timedelta(minutes=15))  # 3.0x
    findings = findings_of(estate)

    ok, lagging, failing = (
        findings["billing/billing-drpc"],
        findings["crm/crm-drpc"],
        findings["openshift-dr-ops/erp-drpc"],
    )
    assert ok.status is Status.PASS and ok.evidence["ratio"] == 0.8
    assert lagging.status is Status.WARN and lagging.evidence["ratio"] == 2.5
    assert "2.50x its 5m interval, above the 2x warning level" in lagging.message
    assert failing.status is Status.FAIL and failing.evidence["ratio"] == 3.0
    assert "at or above the 3x limit" in failing.message
    assert failing.evidence["interval_seconds"] == 300 and failing.evidence["age_seconds"] == 900
    assert "VolumeSynchronizationDelay" in failing.evidence["rule_source"]
    assert "config/prometheus/alerts.yaml" in failing.evidence["rule_source"]
    assert failing.evidence["last_group_sync_bytes"] == 73400320


def test_exactly_twice_the_interval_still_passes(estate) -> None:
    # The alert warns only above 2 (ramen_rpo_difference > 2 and < 3).
    make_regional(estate)
    synced(estate, "billing-drpc", "billing", timedelta(minutes=10))
    assert findings_of(estate)["billing/billing-drpc"].status is Status.PASS


def test_never_synced_fails(estate) -> None:
    make_regional(estate, "1h")
    synced(estate, "billing-drpc", "billing", None)
    finding = findings_of(estate)["billing/billing-drpc"]
    assert finding.status is Status.FAIL
    assert "has never completed a group sync (no status.lastGroupSyncTime) with a 1h interval" in finding.message


@pytest.mark.parametrize(
    ("interval", "ago", "expected"),
    [("1d", timedelta(hours=47), Status.PASS), ("1h", timedelta(hours=2, minutes=1), Status.WARN)],
)
def test_hours_and_days_intervals(estate, interval, ago, expected) -> None:
    make_regional(estate, interval)
    synced(estate, "crm-drpc", "crm", ago)
    assert findings_of(estate)["crm/crm-drpc"].status is expected


def test_thresholds_come_from_the_configuration(estate) -> None:
    make_regional(estate)
    synced(estate, "billing-drpc", "billing", timedelta(minutes=8))  # 1.6x
    config = AuditConfig(thresholds=Thresholds(async_lag_warn_ratio=1.2, async_lag_fail_ratio=1.5))
    finding = findings_of(estate, config=config)["billing/billing-drpc"]
    assert finding.status is Status.FAIL and finding.evidence["fail_ratio"] == 1.5


def test_interval_ramen_would_reject_fails(estate) -> None:
    make_regional(estate, "5s")
    synced(estate, "billing-drpc", "billing", timedelta(minutes=1))
    finding = findings_of(estate)["billing/billing-drpc"]
    assert finding.status is Status.FAIL and "schedulingInterval '5s'" in finding.message


def test_missing_policy_is_skipped_not_judged(estate) -> None:
    estate.hub.get("DRPlacementControl", "billing-drpc", "billing")["spec"]["drPolicyRef"]["name"] = "gone"
    finding = findings_of(estate)["billing/billing-drpc"]
    assert finding.status is Status.SKIP and "names DRPolicy gone, which is not on the hub" in finding.message


def test_unreadable_drpolicies_are_an_error(estate) -> None:
    estate.hub.unavailable["DRPolicy"] = "list drpolicies.ramendr.openshift.io refused (HTTP 403: forbidden)"
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.ERROR and "DRPolicy could not be read on hub" in finding.message


def test_a_zero_interval_is_metro_here_as_in_drpolicy_validity(estate) -> None:
    from auditor.ramen import is_metro

    (policy,) = estate.hub.list("DRPolicy")
    policy["spec"]["schedulingInterval"] = "0m"
    assert is_metro(policy)
    assert {f.status for f in run(CHECK, context_for(estate))} == {Status.SKIP}
