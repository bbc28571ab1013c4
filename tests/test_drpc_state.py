"""drpc_state against the healthy sample estate (real-schema DRPCs), broken one Ramen state at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import by_resource, context_for, run, sample

from auditor.evidence import DrillRecord
from auditor.inventory import Inventory
from auditor.model import Status

CHECK = "drpc_state"


@pytest.fixture
def estate():
    return sample("healthy")


def drpc(estate, name="billing-drpc", namespace="billing"):
    return estate.hub.get("DRPlacementControl", name, namespace)


def finding_for(estate, obj, **kwargs):
    findings = run(CHECK, context_for(estate, **kwargs))
    return by_resource(findings)[f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"]


def condition(obj, condition_type):
    return next(c for c in obj["status"]["conditions"] if c["type"] == condition_type)


def start_test_failover(obj) -> None:
    """The DRPC as Ramen leaves it in a dry-run test failover (drplacementcontrol.go: FailedOver, TestingFailover)."""
    obj["metadata"]["annotations"]["drplacementcontrol.ramendr.openshift.io/test-failover-dryrun"] = "true"
    obj["metadata"]["generation"] += 1
    obj["spec"].update(action="Failover", dryRun=True, failoverCluster="prod-west")
    obj["status"].update(
        phase="FailedOver", progression="TestingFailover", observedGeneration=obj["metadata"]["generation"]
    )


def drill(app, started, finished, drill_id="drill-20261120-billing-5c1e"):
    return DrillRecord(
        id=drill_id,
        app_namespace=app["metadata"]["namespace"],
        app_name=app["metadata"]["name"],
        started_at=started,
        finished_at=finished,
        outcome="success",
        mode="dry-run",
        run_by="sre@example.com",
        tool_version="0.1.0",
    )


def test_healthy_estate_every_drpc_passes_once(estate) -> None:
    findings = run(CHECK, context_for(estate))
    drpcs = estate.hub.list("DRPlacementControl")
    assert len(findings) == len(drpcs) == 3
    for finding in findings:
        assert finding.status is Status.PASS, finding.message
        assert finding.resource.kind == "DRPlacementControl" and finding.cluster == "hub"
        assert finding.evidence["progression"] == "Completed"
    relocated = by_resource(findings)["crm/crm-drpc"]
    assert relocated.evidence["action"] == "Relocate" and relocated.evidence["phase"] == "Relocated"
    assert "phase Relocated after action Relocate" in relocated.message


def test_failover_waiting_for_fencing_is_mid_action(estate) -> None:
    obj = drpc(estate)
    obj["spec"].update(action="Failover", failoverCluster="prod-west")
    obj["status"].update(phase="FailingOver", progression="WaitForFencing")
    finding = finding_for(estate, obj)
    assert finding.status is Status.FAIL
    assert "not ready for a failover now" in finding.message
    assert "phase FailingOver is mid-action (with action Failover the stable phase is FailedOver)" in finding.message
    assert "progression WaitForFencing is not Completed" in finding.message
    assert finding.evidence["stable_phase"] == "FailedOver"


@pytest.mark.parametrize("phase", ["Initiating", "Deploying", "WaitForUser", "Relocating", "Deleting"])
def test_every_phase_but_the_stable_one_fails(estate, phase) -> None:
    obj = drpc(estate)
    obj["status"]["phase"] = phase
    finding = finding_for(estate, obj)
    assert finding.status is Status.FAIL
    assert f"phase {phase} is mid-action (with no action the stable phase is Deployed)" in finding.message


def test_progression_cleaning_up_fails_with_its_name(estate) -> None:
    obj = drpc(estate, "crm-drpc", "crm")
    obj["status"]["progression"] = "Cleaning Up"
    finding = finding_for(estate, obj)
    assert finding.status is Status.FAIL
    assert finding.message.endswith("not ready for a failover now: progression Cleaning Up is not Completed.")


def test_condition_not_true_is_quoted_with_reason_and_message(estate) -> None:
    obj = drpc(estate)
    condition(obj, "Protected").update(
        status="False",
        reason="Error",
        message="VolumeReplicationGroup (billing/billing-drpc) on cluster prod-east is "
        "not reporting any status about workload resources readiness",
    )
    finding = finding_for(estate, obj)
    assert finding.status is Status.FAIL
    assert 'Protected is False, reason Error: "VolumeReplicationGroup (billing/billing-drpc)' in finding.message
    protected = next(c for c in finding.evidence["conditions"] if c["type"] == "Protected")
    assert protected["reason"] == "Error"


def test_condition_missing_is_not_reported(estate) -> None:
    obj = drpc(estate)
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] != "PeerReady"]
    finding = finding_for(estate, obj)
    assert finding.status is Status.FAIL and "PeerReady is not reported" in finding.message


def test_test_failover_outside_a_drill_fails(estate) -> None:
    obj = drpc(estate)
    start_test_failover(obj)
    finding = finding_for(estate, obj)
    assert finding.status is Status.FAIL
    assert "a test failover is running (spec.dryRun True, progression TestingFailover): replication is paused" in (
        finding.message
    )
    assert "a drill left running must be ended" in finding.message
    # FailedOver is the stable phase of Failover, and TestingFailover is already explained: one problem only.
    assert finding.evidence["problems"] and len(finding.evidence["problems"]) == 1


def test_dry_run_alone_counts_as_a_test_failover(estate) -> None:
    obj = drpc(estate)
    obj["spec"]["dryRun"] = True
    finding = finding_for(estate, obj)
    assert finding.status is Status.FAIL and "replication is paused" in finding.message


def test_test_failover_during_a_recorded_drill_only_warns(estate) -> None:
    obj = drpc(estate)
    start_test_failover(obj)
    now = estate.captured_at
    running = drill(obj, now - timedelta(minutes=10), now + timedelta(minutes=20))
    finding = finding_for(estate, obj, drills=[running])
    assert finding.status is Status.WARN
    assert "as part of drill drill-20261120-billing-5c1e" in finding.message
    assert finding.evidence["running_drills"][0]["id"] == running.id


def test_drills_that_do_not_span_the_capture_or_belong_elsewhere_do_not_excuse_it(estate) -> None:
    obj = drpc(estate)
    start_test_failover(obj)
    now = estate.captured_at
    earlier = drill(obj, now - timedelta(hours=3), now - timedelta(hours=2))
    other = drill(drpc(estate, "crm-drpc", "crm"), now - timedelta(minutes=5), now + timedelta(minutes=5), "d-crm")
    finding = finding_for(estate, obj, drills=[earlier, other])
    assert finding.status is Status.FAIL and finding.evidence["running_drills"] == []


def test_stale_observed_generation_warns(estate) -> None:
    obj = drpc(estate)
    obj["metadata"]["generation"] = 2
    finding = finding_for(estate, obj)
    assert finding.status is Status.WARN
    assert "status.observedGeneration 1 is behind metadata.generation 2: the status is stale" in finding.message


def test_unknown_action_fails(estate) -> None:
    obj = drpc(estate)
    obj["spec"]["action"] = "Migrate"
    finding = finding_for(estate, obj)
    assert finding.status is Status.FAIL and "spec.action 'Migrate' is not one Ramen knows" in finding.message


def test_no_drpc_is_a_skip(estate) -> None:
    hub = estate.hub
    estate.hub = Inventory("hub", [o for kind in hub.kinds() if kind != "DRPlacementControl" for o in hub.list(kind)])
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.SKIP


def test_unreadable_drpcs_are_an_error(estate) -> None:
    estate.hub.unavailable["DRPlacementControl"] = "list drplacementcontrols.ramendr.openshift.io refused (HTTP 403)"
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.ERROR and finding.cluster == "hub"
    assert "DRPlacementControl could not be read on hub" in finding.message


def test_broken_protection_sample_fails_the_drpc_cleaning_up() -> None:
    findings = by_resource(run(CHECK, context_for(sample("broken-protection"))))
    assert findings["crm/crm-drpc"].status is Status.FAIL
    assert 'PeerReady is False, reason Progressing: "Starting cleanup check"' in findings["crm/crm-drpc"].message
    assert findings["billing/billing-drpc"].status is Status.PASS
