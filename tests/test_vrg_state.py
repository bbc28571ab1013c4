"""vrg_state against the healthy sample estate (real-schema VRGs and PVCs), broken one Ramen state at a time."""

from __future__ import annotations

import pytest
from helpers import context_for, run, sample

from auditor.inventory import Inventory, name_of, namespace_of
from auditor.model import Status

CHECK = "vrg_state"


@pytest.fixture
def estate():
    return sample("healthy")


def findings_for(estate, **kwargs):
    return run(CHECK, context_for(estate, **kwargs))


def finding_of(findings, kind, namespace, name, cluster):
    (found,) = [
        f
        for f in findings
        if f.resource
        and (f.resource.kind, f.resource.namespace, f.resource.name, f.cluster) == (kind, namespace, name, cluster)
    ]
    return found


def vrg(estate, cluster, name="billing-drpc", namespace="billing"):
    return estate.clusters[cluster].get("VolumeReplicationGroup", name, namespace)


def remove(estate, cluster, kind, namespace, name) -> None:
    """Replaces the cluster's inventory by one without that object, as if it had never been read."""
    inventory = estate.clusters[cluster]
    kept = [
        obj
        for k in inventory.kinds()
        for obj in inventory.list(k)
        if (k, namespace_of(obj), name_of(obj)) != (kind, namespace, name)
    ]
    estate.clusters[cluster] = Inventory(cluster, kept)


def condition(obj, condition_type):
    return next(c for c in obj["status"]["conditions"] if c["type"] == condition_type)


def test_healthy_estate_primary_secondary_and_every_protected_pvc_pass(estate) -> None:
    findings = findings_for(estate)
    assert {f.status for f in findings} == {Status.PASS}, [f.message for f in findings if f.status is not Status.PASS]
    vrgs = [f for f in findings if f.resource.kind == "VolumeReplicationGroup"]
    pvcs = [f for f in findings if f.resource.kind == "PersistentVolumeClaim"]
    assert (
        sorted((f.cluster, f.evidence["role"]) for f in vrgs)
        == [("prod-east", "primary")] * 3 + [("prod-west", "secondary")] * 3
    )
    assert len(pvcs) == 5 and {f.cluster for f in pvcs} == {"prod-east"}
    discovered = finding_of(findings, "VolumeReplicationGroup", "openshift-dr-ops", "erp-drpc", "prod-west")
    assert discovered.evidence["chosen_by"] == "DRPolicy odr-metro-policy drClusters ['prod-east', 'prod-west']"
    assert finding_of(findings, "PersistentVolumeClaim", "erp", "erp-ledger-rootdisk", "prod-east")


def test_metro_primary_data_protected_replicating_is_not_a_fault(estate) -> None:
    primary = vrg(estate, "prod-east")
    assert condition(primary, "DataProtected")["status"] == "False"
    assert condition(primary, "DataProtected")["reason"] == "Replicating"
    finding = finding_of(findings_for(estate), "VolumeReplicationGroup", "billing", "billing-drpc", "prod-east")
    assert finding.status is Status.PASS


def test_missing_secondary_fails_naming_the_peer(estate) -> None:
    remove(estate, "prod-west", "VolumeReplicationGroup", "billing", "billing-drpc")
    finding = finding_of(findings_for(estate), "VolumeReplicationGroup", "billing", "billing-drpc", "prod-west")
    assert finding.status is Status.FAIL
    assert finding.message == (
        "No VolumeReplicationGroup billing/billing-drpc on prod-west, the secondary cluster of DRPC "
        "billing/billing-drpc (DRPolicy odr-metro-policy drClusters ['prod-east', 'prod-west']): there is nothing on "
        "prod-west to fail the application over to."
    )


def test_primary_in_the_wrong_state_fails(estate) -> None:
    primary = vrg(estate, "prod-east")
    primary["spec"]["replicationState"] = "secondary"
    primary["status"]["state"] = "Secondary"
    finding = finding_of(findings_for(estate), "VolumeReplicationGroup", "billing", "billing-drpc", "prod-east")
    assert finding.status is Status.FAIL
    assert "spec.replicationState is secondary, not primary; status.state is Secondary, not Primary" in finding.message


def test_secondary_still_primary_fails(estate) -> None:
    secondary = vrg(estate, "prod-west")
    secondary["status"]["state"] = "Unknown"
    finding = finding_of(findings_for(estate), "VolumeReplicationGroup", "billing", "billing-drpc", "prod-west")
    assert finding.status is Status.FAIL and "status.state is Unknown, not Secondary" in finding.message


def test_cluster_data_upload_error_fails_the_vrg_and_the_pvc(estate) -> None:
    primary = vrg(estate, "prod-east")
    condition(primary, "ClusterDataProtected").update(
        status="False", reason="UploadError", message="Cluster data of one or more PVs are unprotected"
    )
    entry = next(p for p in primary["status"]["protectedPVCs"] if p["name"] == "billing-db-data")
    next(c for c in entry["conditions"] if c["type"] == "ClusterDataProtected").update(
        status="False",
        reason="UploadError",
        message="uploaded PV/PVC cluster data to only  1 of 2 S3 profile(s): "
        "[s3profile-prod-east-ocs-external-storagecluster]",
    )
    findings = findings_for(estate)
    vrg_finding = finding_of(findings, "VolumeReplicationGroup", "billing", "billing-drpc", "prod-east")
    assert vrg_finding.status is Status.FAIL
    assert 'ClusterDataProtected is False, reason UploadError: "Cluster data of one or more PVs are unprotected"' in (
        vrg_finding.message
    )
    pvc_finding = finding_of(findings, "PersistentVolumeClaim", "billing", "billing-db-data", "prod-east")
    assert pvc_finding.status is Status.FAIL and "the VRG reports ClusterDataProtected False" in pvc_finding.message
    others = [
        f for f in findings if f.resource.kind == "PersistentVolumeClaim" and f.resource.name != "billing-db-data"
    ]
    assert {f.status for f in others} == {Status.PASS}


def test_secondary_unused_conditions_are_not_judged_but_a_conflict_is(estate) -> None:
    secondary = vrg(estate, "prod-west")
    condition(secondary, "ClusterDataReady").update(status="False")  # Unused: skipped like ramenctl does
    condition(secondary, "NoClusterDataConflict").update(
        status="False",
        reason="ClusterDataConflictSecondary",
        message="No PVC on the secondary should match the label selector",
    )
    finding = finding_of(findings_for(estate), "VolumeReplicationGroup", "billing", "billing-drpc", "prod-west")
    assert finding.status is Status.FAIL
    assert "NoClusterDataConflict is False, reason ClusterDataConflictSecondary" in finding.message
    assert "ClusterDataReady" not in finding.message


def test_conditions_of_older_ramen_are_version_skew(estate) -> None:
    primary = vrg(estate, "prod-east")
    primary["status"]["conditions"] = [
        c for c in primary["status"]["conditions"] if c["type"] not in ("KubeObjectsReady", "NoClusterDataConflict")
    ]
    finding = finding_of(findings_for(estate), "VolumeReplicationGroup", "billing", "billing-drpc", "prod-east")
    assert finding.status is Status.PASS
    assert finding.evidence["conditions_not_reported"] == ["KubeObjectsReady", "NoClusterDataConflict"]


def test_a_condition_every_ramen_reports_missing_fails(estate) -> None:
    primary = vrg(estate, "prod-east")
    primary["status"]["conditions"] = [c for c in primary["status"]["conditions"] if c["type"] != "DataReady"]
    finding = finding_of(findings_for(estate), "VolumeReplicationGroup", "billing", "billing-drpc", "prod-east")
    assert finding.status is Status.FAIL and "DataReady is not reported" in finding.message


def test_stale_observed_generation_warns(estate) -> None:
    vrg(estate, "prod-east")["metadata"]["generation"] = 2
    finding = finding_of(findings_for(estate), "VolumeReplicationGroup", "billing", "billing-drpc", "prod-east")
    assert finding.status is Status.WARN
    assert "status.observedGeneration 1 is behind metadata.generation 2" in finding.message


def test_protected_pvc_pending_or_missing_each_get_a_finding(estate) -> None:
    estate.clusters["prod-east"].get("PersistentVolumeClaim", "billing-db-data", "billing")["status"] = {
        "phase": "Pending"
    }
    remove(estate, "prod-east", "PersistentVolumeClaim", "billing", "billing-app-rootdisk")
    findings = findings_for(estate)
    pending = finding_of(findings, "PersistentVolumeClaim", "billing", "billing-db-data", "prod-east")
    assert pending.status is Status.FAIL and "it is Pending, not Bound" in pending.message
    missing = finding_of(findings, "PersistentVolumeClaim", "billing", "billing-app-rootdisk", "prod-east")
    assert missing.status is Status.FAIL and "it does not exist on prod-east" in missing.message
    assert missing.resource.api_version == "v1" and missing.evidence["exists"] is False
    assert finding_of(findings, "VolumeReplicationGroup", "billing", "billing-drpc", "prod-east").status is Status.PASS


def test_secondary_protected_pvcs_are_not_judged(estate) -> None:
    # A secondary keeps the list from its last time as primary (RamenDR/ramenctl #286): stale by design.
    secondary = vrg(estate, "prod-west")
    secondary["status"]["protectedPVCs"] = [{"name": "billing-old-disk", "namespace": "billing"}]
    findings = findings_for(estate)
    assert not [f for f in findings if f.resource.name == "billing-old-disk"]


def test_no_placement_decision_fails_on_the_drpc(estate) -> None:
    drpc = estate.hub.get("DRPlacementControl", "billing-drpc", "billing")
    drpc["spec"]["placementRef"]["name"] = "missing-placement"
    del drpc["status"]["preferredDecision"]
    findings = [f for f in findings_for(estate) if f.evidence.get("drpc") == "billing/billing-drpc"]
    (finding,) = findings
    assert finding.status is Status.FAIL and finding.resource.kind == "DRPlacementControl"
    assert "has no placement decision" in finding.message


def test_missing_policy_leaves_the_peer_unknown(estate) -> None:
    estate.hub.get("DRPlacementControl", "crm-drpc", "crm")["spec"]["drPolicyRef"]["name"] = "gone"
    findings = [f for f in findings_for(estate) if f.evidence.get("drpc") == "crm/crm-drpc"]
    peer = [f for f in findings if f.resource.kind == "DRPlacementControl"]
    assert len(peer) == 1 and peer[0].status is Status.FAIL
    assert "no peer cluster to fail over to (DRPolicy gone does not exist on the hub)" in peer[0].message
    assert finding_of(findings, "VolumeReplicationGroup", "crm", "crm-drpc", "prod-east").status is Status.PASS


def test_vrgs_unreadable_on_the_peer_are_an_error_there_and_the_primary_still_judged(estate) -> None:
    estate.clusters["prod-west"].unavailable["VolumeReplicationGroup"] = "list refused (HTTP 403: forbidden)"
    findings = findings_for(estate)
    west = [f for f in findings if f.cluster == "prod-west"]
    errors = [f for f in west if f.status is Status.ERROR]
    assert len(errors) == 1 and "VolumeReplicationGroup could not be read on prod-west" in errors[0].message
    # The runner leaves prod-west out of the view: each secondary is reported as not judged, never as missing.
    assert {f.status for f in west if f not in errors} == {Status.SKIP}
    assert {f.status for f in findings if f.cluster == "prod-east"} == {Status.PASS}


def test_unreadable_drpcs_stop_the_check(estate) -> None:
    estate.hub.unavailable["DRPlacementControl"] = "drplacementcontrols.ramendr.openshift.io is not served"
    (finding,) = findings_for(estate)
    assert finding.status is Status.ERROR and finding.cluster == "hub"


def test_broken_protection_sample_fails_the_missing_primary() -> None:
    findings = findings_for(sample("broken-protection"))
    missing = finding_of(findings, "VolumeReplicationGroup", "openshift-dr-ops", "erp-drpc", "prod-east")
    assert missing.status is Status.FAIL and "the application's data is not protected" in missing.message
    assert finding_of(findings, "VolumeReplicationGroup", "openshift-dr-ops", "erp-drpc", "prod-west").status is (
        Status.PASS
    )
