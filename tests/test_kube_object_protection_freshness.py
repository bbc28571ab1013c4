"""kube_object_protection_freshness: protected VMs against the last kube-object capture (RamenDR/ramen#2825)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import by_resource, context_for, run, sample

from auditor.config import AuditConfig, Scope
from auditor.inventory import Estate, Obj
from auditor.model import Finding, Status
from auditor.timeutil import parse_time

CHECK = "kube_object_protection_freshness"
CAPTURE = "2026-11-20T08:55:31Z"  # DRPC lastKubeObjectProtectionTime and VRG captureToRecoverFrom.endTime in healthy


def audit(estate: Estate, **kwargs) -> dict[str, Finding]:
    return by_resource(run(CHECK, context_for(estate, **kwargs)))


def vm(estate: Estate, namespace: str, name: str) -> Obj:
    found = estate.clusters["prod-east"].get("VirtualMachine", name, namespace)
    assert found is not None
    return found


def drpc(estate: Estate, namespace: str, name: str) -> Obj:
    found = estate.hub.get("DRPlacementControl", name, namespace)
    assert found is not None
    return found


def vrg_capture(estate: Estate, namespace: str, name: str) -> Obj:
    vrg = estate.clusters["prod-east"].get("VolumeReplicationGroup", name, namespace)
    assert vrg is not None
    return vrg["status"]["kubeObjectProtection"]["captureToRecoverFrom"]


def changed_by(vm_obj: Obj, generation: int, *writes: tuple[str, str, str | None]) -> None:
    """Gives the VM managedFields as the apiserver writes them: (manager, time, subresource)."""
    vm_obj["metadata"]["generation"] = generation
    vm_obj["metadata"]["managedFields"] = [
        {"apiVersion": "kubevirt.io/v1", "fieldsType": "FieldsV1", "fieldsV1": {}, "manager": manager,
         "operation": "Update", "time": moment, **({"subresource": sub} if sub else {})}
        for manager, moment, sub in writes
    ]  # fmt: skip


def test_healthy_every_vm_is_in_the_last_capture_and_captures_are_fresh() -> None:
    estate = sample("healthy")
    findings = audit(estate)
    vms = [f for f in findings.values() if f.resource.kind == "VirtualMachine"]
    drpcs = [f for f in findings.values() if f.resource.kind == "DRPlacementControl"]
    assert len(vms) == sum(len(inv.list("VirtualMachine")) for inv in estate.clusters.values())
    assert len(drpcs) == len(estate.hub.list("DRPlacementControl"))
    assert {f.status for f in findings.values()} == {Status.PASS}, [f.message for f in findings.values()]
    db = findings["billing/billing-db"]
    assert db.cluster == "prod-east"
    assert db.evidence["capture_used"] == CAPTURE and db.evidence["drpc"] == "billing/billing-drpc"
    assert db.evidence["last_change_source"].startswith("creationTimestamp (generation 1")
    erp = findings["openshift-dr-ops/erp-drpc"]
    assert erp.cluster == "hub" and erp.evidence["capture_age"] == "4m 29s"
    assert "within 3x its 5m interval" in erp.message


def test_a_vm_created_after_the_capture_would_be_missing() -> None:
    estate = sample("healthy")
    vm(estate, "billing", "billing-app")["metadata"]["creationTimestamp"] = "2026-11-20T08:57:10Z"
    finding = audit(estate)["billing/billing-app"]
    assert finding.status is Status.FAIL
    assert finding.message == (
        "VM billing/billing-app on prod-east was created at 2026-11-20T08:57:10Z, after the last kube-object capture "
        f"of DRPC billing/billing-drpc at {CAPTURE}: its VirtualMachine would be missing after a failover unless the "
        "application's GitOps source also defines it."
    )


def test_a_discovered_applications_vm_has_no_gitops_fallback() -> None:
    estate = sample("healthy")
    vm(estate, "erp", "erp-ledger")["metadata"]["creationTimestamp"] = "2026-11-20T08:59:00Z"
    finding = audit(estate)["erp/erp-ledger"]
    assert finding.status is Status.FAIL and finding.evidence["discovered_application"] is True
    assert finding.message.endswith("its VirtualMachine would be missing after a failover.")


def test_a_spec_change_after_the_capture_would_come_back_stale() -> None:
    estate = sample("healthy")
    changed_by(
        vm(estate, "billing", "billing-db"),
        3,
        ("virt-controller", "2026-11-20T08:59:40Z", "status"),  # status writes never count
        ("kubectl-edit", "2026-11-20T08:58:05Z", None),
        ("virt-api", "2026-09-10T08:31:00Z", None),
    )
    finding = audit(estate)["billing/billing-db"]
    assert finding.status is Status.FAIL
    assert "was changed at 2026-11-20T08:58:05Z, after the last kube-object capture" in finding.message
    assert "it would come back stale after a failover" in finding.message
    assert finding.evidence["last_change_source"] == "newest metadata.managedFields time (generation 3)"


def test_only_status_writes_after_the_capture_pass() -> None:
    estate = sample("healthy")
    changed_by(
        vm(estate, "billing", "billing-db"),
        2,
        ("virt-controller", "2026-11-20T08:59:40Z", "status"),
        ("kubectl-edit", "2026-10-01T10:00:00Z", None),
    )
    finding = audit(estate)["billing/billing-db"]
    assert finding.status is Status.PASS
    assert finding.message.startswith("VM billing/billing-db on prod-east, last changed at 2026-10-01T10:00:00Z")


def test_generation_1_ignores_managed_fields() -> None:
    """Metadata writes (finalizers, annotations by controllers) do not bump the generation; they are not judged."""
    estate = sample("healthy")
    changed_by(vm(estate, "billing", "billing-db"), 1, ("virt-controller", "2026-11-20T08:59:40Z", None))
    assert audit(estate)["billing/billing-db"].status is Status.PASS


def test_spec_changes_without_managed_fields_cannot_be_dated_and_say_so() -> None:
    estate = sample("healthy")
    vm(estate, "billing", "billing-db")["metadata"]["generation"] = 4
    finding = audit(estate)["billing/billing-db"]
    assert finding.status is Status.PASS
    assert "its later spec changes cannot be dated (the snapshot holds no managedFields)" in finding.message
    assert finding.evidence["last_change_source"].startswith("creationTimestamp only: generation 4")


def test_a_write_during_the_capture_window_warns() -> None:
    estate = sample("healthy")
    vm(estate, "billing", "billing-app")["metadata"]["creationTimestamp"] = "2026-11-20T08:55:20Z"  # 08:55:02-08:55:31
    finding = audit(estate)["billing/billing-app"]
    assert finding.status is Status.WARN
    assert "while the last kube-object capture" in finding.message and "started 2026-11-20T08:55:02Z" in finding.message


def test_the_older_of_the_hub_and_primary_records_is_used() -> None:
    estate = sample("healthy")
    drpc(estate, "billing", "billing-drpc")["status"]["lastKubeObjectProtectionTime"] = "2026-11-20T08:50:29Z"
    vm(estate, "billing", "billing-app")["metadata"]["creationTimestamp"] = "2026-11-20T08:52:00Z"
    findings = audit(estate)
    finding = findings["billing/billing-app"]
    assert finding.status is Status.FAIL  # in the VRG's newer capture, but not in the one the hub is sure of
    assert finding.evidence["capture_used"] == "2026-11-20T08:50:29Z"
    assert finding.evidence["vrg_capture_end_time"] == CAPTURE
    assert findings["billing/billing-drpc"].evidence["capture_age"] == "9m 31s"


def test_a_stalled_capture_warns_on_the_drpc() -> None:
    estate = sample("healthy")
    drpc(estate, "crm", "crm-drpc")["status"]["lastKubeObjectProtectionTime"] = "2026-11-20T08:31:47Z"
    vrg_capture(estate, "crm", "crm-drpc").update(startTime="2026-11-20T08:31:15Z", endTime="2026-11-20T08:31:47Z")
    findings = audit(estate)
    finding = findings["crm/crm-drpc"]
    assert finding.status is Status.WARN and finding.cluster == "hub"
    assert finding.message == (
        "The last kube-object capture of DRPC crm/crm-drpc is 28m 13s old (at 2026-11-20T08:31:47Z), more than 3x its "
        "5m interval: captures have stalled, and every VM change since would be lost in a failover."
    )
    assert finding.evidence["capture_age_seconds"] == 1693 and finding.evidence["stalled_after"] == "15m 0s"
    assert findings["crm/crm-web"].status is Status.PASS  # the VM itself is older than the stalled capture


@pytest.mark.parametrize(
    ("interval", "age_minutes", "expected"),
    [("5m", 14, Status.PASS), ("5m", 16, Status.WARN), ("10m", 16, Status.PASS), ("1h", 179, Status.PASS),
     ("1h", 181, Status.WARN), (None, 16, Status.WARN), (None, 14, Status.PASS)],
)  # fmt: skip
def test_the_stall_limit_is_three_capture_intervals(interval: str | None, age_minutes: int, expected: Status) -> None:
    estate = sample("healthy")
    protection = drpc(estate, "billing", "billing-drpc")["spec"]["kubeObjectProtection"]
    protection.pop("captureInterval")
    if interval:
        protection["captureInterval"] = interval
    now = parse_time(CAPTURE) + timedelta(minutes=age_minutes)
    finding = audit(estate, now=now)["billing/billing-drpc"]
    assert finding.status is expected
    assert finding.evidence["capture_interval"] == (interval or "5m (Ramen's default)")


def test_a_gitops_application_without_kube_object_protection_is_not_judged() -> None:
    estate = sample("healthy")
    del drpc(estate, "billing", "billing-drpc")["spec"]["kubeObjectProtection"]
    findings = audit(estate)
    for key in ("billing/billing-db", "billing/billing-app", "billing/billing-drpc"):
        assert findings[key].status is Status.SKIP, key
    assert "the application's GitOps source (its Placement) recreates the VM" in findings["billing/billing-db"].message


def test_a_discovered_application_without_kube_object_protection_loses_its_vms() -> None:
    estate = sample("healthy")
    del drpc(estate, "openshift-dr-ops", "erp-drpc")["spec"]["kubeObjectProtection"]
    findings = audit(estate)
    assert findings["erp/erp-ledger"].status is Status.FAIL
    assert "Ramen captures no VirtualMachine objects and only its PVCs are replicated" in (
        findings["erp/erp-ledger"].message
    )
    assert findings["openshift-dr-ops/erp-drpc"].status is Status.FAIL
    assert "a failover brings back only PVCs" in findings["openshift-dr-ops/erp-drpc"].message


def test_no_completed_capture_fails_the_vms_and_the_drpc() -> None:
    estate = sample("healthy")
    del drpc(estate, "crm", "crm-drpc")["status"]["lastKubeObjectProtectionTime"]
    vrg = estate.clusters["prod-east"].get("VolumeReplicationGroup", "crm-drpc", "crm")
    del vrg["status"]["kubeObjectProtection"]
    findings = audit(estate)
    assert findings["crm/crm-web"].status is Status.FAIL
    assert "has no completed kube-object capture" in findings["crm/crm-web"].message
    assert findings["crm/crm-drpc"].status is Status.FAIL
    assert findings["crm/crm-drpc"].evidence["capture_used"] is None


def test_a_vm_away_from_its_applications_cluster_is_left_to_vm_dr_coverage() -> None:
    estate = sample("healthy")
    decision = estate.hub.get("PlacementDecision", "crm-placement-decision-1", "crm")
    decision["status"]["decisions"][0]["clusterName"] = "prod-west"
    finding = audit(estate)["crm/crm-web"]
    assert finding.status is Status.SKIP
    assert "is not where DRPC crm/crm-drpc places its application (prod-west)" in finding.message


def test_unprotected_vms_get_no_finding_and_no_drpc_is_a_skip() -> None:
    estate = sample("healthy")
    estate.hub._by_kind.pop("DRPlacementControl")
    findings = run(CHECK, context_for(estate))
    assert [f.status for f in findings] == [Status.SKIP]
    assert findings[0].message == "No VirtualMachine protected by a DRPC on the managed clusters read: no VM to judge."


def test_vms_outside_the_scope_are_skipped() -> None:
    config = AuditConfig(scope=Scope(exclude_namespaces=("bill*",)))
    findings = audit(sample("healthy"), config=config)
    assert findings["billing/billing-db"].status is Status.SKIP
    assert findings["crm/crm-web"].status is Status.PASS


def test_an_unreadable_vrg_kind_is_an_error_and_the_rest_is_still_judged() -> None:
    estate = sample("healthy")
    estate.clusters["prod-east"].unavailable["VolumeReplicationGroup"] = "the server is currently unable to handle it"
    findings = run(CHECK, context_for(estate))
    errors = [f for f in findings if f.status is Status.ERROR]
    assert [(f.cluster, f.evidence["kind"]) for f in errors] == [("prod-east", "VolumeReplicationGroup")]
    rest = by_resource([f for f in findings if f.status is not Status.ERROR])
    assert set(rest) == {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in estate.hub.list("DRPlacementControl")
    }  # prod-east is out of view: only the hub's DRPCs are judged, on their own record
    assert rest["billing/billing-drpc"].evidence["vrg_capture_end_time"] is None
