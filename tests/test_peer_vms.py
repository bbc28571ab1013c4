"""Which VMs the four peer-dependency checks judge, and against which cluster (auditor/peer.py)."""

from __future__ import annotations

import copy

import pytest
from helpers import by_resource, context_for, run, sample, without

from auditor.config import AuditConfig, Scope
from auditor.model import Status

PEER_CHECKS = ("peer_storage_classes", "peer_networks", "peer_config_objects", "peer_instancetypes")


@pytest.fixture
def estate():
    return sample("healthy")


def place(estate, namespace, placement, cluster):
    """Moves an application, as OCM does: the PlacementDecision of its Placement names the new cluster."""
    decision = next(
        pd
        for pd in estate.hub.in_namespace("PlacementDecision", namespace)
        if pd["metadata"]["labels"]["cluster.open-cluster-management.io/placement"] == placement
    )
    decision["status"]["decisions"] = [{"clusterName": cluster, "reason": cluster}]


@pytest.mark.parametrize("check", PEER_CHECKS)
def test_vms_no_drpc_protects_are_left_to_vm_dr_coverage(estate, check) -> None:
    stray = copy.deepcopy(estate.clusters["prod-east"].get("VirtualMachine", "billing-app", "billing"))
    stray["metadata"].update(namespace="sandbox", name="forgotten-vm")
    estate.clusters["prod-east"].add(stray)
    findings = by_resource(run(check, context_for(estate)))
    assert "sandbox/forgotten-vm" not in findings and len(findings) == 4


@pytest.mark.parametrize("check", PEER_CHECKS)
def test_no_protected_vm_at_all_is_one_skip(estate, check) -> None:
    estate.hub = without(estate.hub, "DRPlacementControl")
    (finding,) = run(check, context_for(estate))
    assert finding.status is Status.SKIP
    assert finding.message == "No VirtualMachine on the managed clusters (prod-east, prod-west) is protected by a DRPC."


@pytest.mark.parametrize("check", PEER_CHECKS)
def test_a_vm_away_from_its_placement_is_skipped_with_the_reason(estate, check) -> None:
    estate.clusters["prod-west"].add(
        copy.deepcopy(estate.clusters["prod-east"].get("VirtualMachine", "crm-web", "crm"))
    )
    (west,) = [f for f in run(check, context_for(estate)) if f.cluster == "prod-west"]
    assert west.status is Status.SKIP and west.resource.name == "crm-web"
    assert west.message == (
        "VM crm/crm-web on prod-west is not judged: DRPC crm/crm-drpc places the application on prod-east, so its "
        "dependencies are judged there (vm_dr_coverage reports the VM running elsewhere)."
    )


@pytest.mark.parametrize("check", PEER_CHECKS)
def test_excluded_namespace_is_skipped_not_hidden(estate, check) -> None:
    config = AuditConfig(scope=Scope(exclude_namespaces=("bill*",)))
    findings = by_resource(run(check, context_for(estate, config=config)))
    assert findings["billing/billing-db"].status is Status.SKIP
    assert "outside the audit scope" in findings["billing/billing-db"].message
    assert findings["crm/crm-web"].status is not Status.SKIP


@pytest.mark.parametrize("check", PEER_CHECKS)
def test_a_drpc_whose_policy_is_gone_names_no_peer(estate, check) -> None:
    estate.hub = without(estate.hub, "DRPolicy")
    finding = by_resource(run(check, context_for(estate)))["erp/erp-ledger"]
    assert finding.status is Status.SKIP
    assert finding.message == (
        "VM erp/erp-ledger on prod-east is not judged: DRPC openshift-dr-ops/erp-drpc names no failover cluster: "
        "DRPolicy odr-metro-policy does not exist on the hub."
    )


@pytest.mark.parametrize("check", PEER_CHECKS)
def test_a_hub_kind_that_cannot_be_read_stops_the_check(estate, check) -> None:
    estate.hub.unavailable["DRPolicy"] = "list drpolicies.ramendr.openshift.io refused (HTTP 403: forbidden)"
    (finding,) = run(check, context_for(estate))
    assert finding.status is Status.ERROR and finding.cluster == "hub"


def test_after_a_failover_the_peer_is_the_cluster_the_application_left(estate) -> None:
    """crm failed over to prod-west: its VM is judged there, against prod-east."""
    place(estate, "crm", "crm-placement", "prod-west")
    estate.clusters["prod-west"].add(
        copy.deepcopy(estate.clusters["prod-east"].get("VirtualMachine", "crm-web", "crm"))
    )
    estate.clusters["prod-east"] = without(
        estate.clusters["prod-east"], "VirtualMachineClusterInstancetype", "u1.large"
    )
    findings = run("peer_instancetypes", context_for(estate))
    (west,) = [f for f in findings if f.cluster == "prod-west"]
    assert west.status is Status.FAIL and west.evidence["peer_cluster"] == "prod-east"
    assert "VirtualMachineClusterInstancetype u1.large does not exist on prod-east" in west.message
    (east,) = [f for f in findings if f.cluster == "prod-east" and f.resource.name == "crm-web"]
    assert east.status is Status.SKIP and "places the application on prod-west" in east.message
