"""vm_dr_coverage against the healthy sample estate (real-schema objects), broken one fault at a time."""

from __future__ import annotations

import copy

import pytest
from helpers import by_resource, context_for, run, sample

from auditor.config import AuditConfig, Scope
from auditor.inventory import conditions, namespace_of
from auditor.model import Status

CHECK = "vm_dr_coverage"


@pytest.fixture
def estate():
    return sample("healthy")


def findings_for(estate, **kwargs):
    return run(CHECK, context_for(estate, **kwargs))


def vm_with_pvc_disk(estate, cluster="prod-east"):
    """A VM whose disks include a PVC-backed one, with that PVC object."""
    inventory = estate.clusters[cluster]
    for vm in inventory.list("VirtualMachine"):
        for volume in vm["spec"]["template"]["spec"]["volumes"]:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName") or (
                volume.get("dataVolume") or {}
            ).get("name")
            if claim:
                return vm, inventory.get("PersistentVolumeClaim", claim, namespace_of(vm))
    raise AssertionError("no VM with a PVC disk in the sample")


def finding_of(findings, vm):
    return by_resource(findings)[f"{namespace_of(vm)}/{vm['metadata']['name']}"]


def drpc_of(estate, vm):
    finding = finding_of(findings_for(estate), vm)
    namespace, name = finding.evidence["drpc"].split("/")
    return estate.hub.get("DRPlacementControl", name, namespace)


def test_healthy_estate_every_vm_passes_with_one_finding_each(estate) -> None:
    findings = findings_for(estate)
    vms = [vm for inv in estate.clusters.values() for vm in inv.list("VirtualMachine")]
    assert len(findings) == len(vms) >= 4
    for finding in findings:
        assert finding.status is Status.PASS, finding.message
        assert finding.resource.kind == "VirtualMachine"
        assert finding.cluster == "prod-east"
        assert finding.evidence["drpc"] and finding.evidence["vrg"]
        assert finding.evidence["disks"] and all(d["protected"] for d in finding.evidence["disks"])
    sources = {d["source"] for f in findings for d in f.evidence["disks"]}
    assert {"dataVolume", "persistentVolumeClaim"} <= sources


def test_discovered_application_protects_vms_through_protected_namespaces(estate) -> None:
    discovered = [a for a in estate.hub.list("DRPlacementControl") if a["spec"].get("protectedNamespaces")]
    assert discovered, "the sample must include a discovered application"
    protected = set(discovered[0]["spec"]["protectedNamespaces"])
    findings = [f for f in findings_for(estate) if f.resource.namespace in protected]
    assert findings and all(f.status is Status.PASS for f in findings)
    assert all(f.evidence["drpc"].startswith(namespace_of(discovered[0]) + "/") for f in findings)


def test_pvc_label_not_matching_the_selector(estate) -> None:
    vm, pvc = vm_with_pvc_disk(estate)
    pvc["metadata"]["labels"] = {"appname": "something-else"}
    finding = finding_of(findings_for(estate), vm)
    assert finding.status is Status.FAIL
    assert vm["metadata"]["name"] in finding.message
    assert pvc["metadata"]["name"] in finding.message
    assert "do not match the pvcSelector" in finding.message
    assert "found appname=something-else" in finding.message


def test_pvc_selected_but_not_in_protected_pvcs(estate) -> None:
    vm, pvc = vm_with_pvc_disk(estate)
    drpc = drpc_of(estate, vm)
    vrg = estate.clusters["prod-east"].get("VolumeReplicationGroup", drpc["metadata"]["name"], namespace_of(drpc))
    vrg["status"]["protectedPVCs"] = [p for p in vrg["status"]["protectedPVCs"] if p["name"] != pvc["metadata"]["name"]]
    finding = finding_of(findings_for(estate), vm)
    assert finding.status is Status.FAIL
    assert "not listed in the VRG's status.protectedPVCs" in finding.message
    disk = next(d for d in finding.evidence["disks"] if d["pvc"] == pvc["metadata"]["name"])
    assert disk["protected"] is False


def test_unhealthy_per_pvc_condition(estate) -> None:
    vm, pvc = vm_with_pvc_disk(estate)
    drpc = drpc_of(estate, vm)
    vrg = estate.clusters["prod-east"].get("VolumeReplicationGroup", drpc["metadata"]["name"], namespace_of(drpc))
    entry = next(p for p in vrg["status"]["protectedPVCs"] if p["name"] == pvc["metadata"]["name"])
    entry["conditions"][0].update(status="False", message="volume replication is degraded")
    finding = finding_of(findings_for(estate), vm)
    assert finding.status is Status.FAIL
    assert "VRG reports it unhealthy" in finding.message and "volume replication is degraded" in finding.message


def test_missing_pvc(estate) -> None:
    vm, pvc = vm_with_pvc_disk(estate)
    claim = pvc["metadata"]["name"]
    inventory = estate.clusters["prod-east"]
    remaining = [o for o in inventory.list("PersistentVolumeClaim") if o is not pvc]
    inventory._by_key.pop(("PersistentVolumeClaim", namespace_of(pvc), claim))
    assert len(remaining) == len(inventory.list("PersistentVolumeClaim")) - 1
    finding = finding_of(findings_for(estate), vm)
    assert finding.status is Status.FAIL
    assert f"PVC {namespace_of(vm)}/{claim} does not exist" in finding.message


def test_vm_in_a_namespace_no_drpc_protects(estate) -> None:
    inventory = estate.clusters["prod-east"]
    vm, _ = vm_with_pvc_disk(estate)
    stray = copy.deepcopy(vm)
    stray["metadata"].update(namespace="sandbox", name="forgotten-vm")
    inventory.add(stray)
    finding = by_resource(findings_for(estate))["sandbox/forgotten-vm"]
    assert finding.status is Status.FAIL
    assert finding.message.startswith("VM sandbox/forgotten-vm on prod-east is not protected")
    assert "no DRPlacementControl protects namespace sandbox" in finding.message
    assert all(not d["protected"] for d in finding.evidence["disks"])


@pytest.mark.parametrize("condition", ["Available", "PeerReady", "Protected"])
def test_unhealthy_drpc_fails_its_vms(estate, condition) -> None:
    vm, _ = vm_with_pvc_disk(estate)
    drpc = drpc_of(estate, vm)
    conditions(drpc)[condition].update(status="False", message="peer cluster is not ready")
    finding = finding_of(findings_for(estate), vm)
    assert finding.status is Status.FAIL
    assert f"condition {condition} is False (peer cluster is not ready)" in finding.message


def test_policy_not_validated(estate) -> None:
    vm, _ = vm_with_pvc_disk(estate)
    policy = estate.hub.get("DRPolicy", drpc_of(estate, vm)["spec"]["drPolicyRef"]["name"])
    conditions(policy)["Validated"].update(status="False", reason="DRClustersUnavailable", message="")
    assert (
        "is not validated: Validated is False (DRClustersUnavailable)" in finding_of(findings_for(estate), vm).message
    )


def test_missing_vrg(estate) -> None:
    vm, _ = vm_with_pvc_disk(estate)
    drpc = drpc_of(estate, vm)
    estate.clusters["prod-east"]._by_key.pop(("VolumeReplicationGroup", namespace_of(drpc), drpc["metadata"]["name"]))
    finding = finding_of(findings_for(estate), vm)
    assert finding.status is Status.FAIL
    assert f"no VolumeReplicationGroup {namespace_of(drpc)}/{drpc['metadata']['name']} on prod-east" in finding.message


def test_vm_running_where_the_drpc_does_not_place_the_app(estate) -> None:
    vm, _ = vm_with_pvc_disk(estate)
    estate.clusters["prod-west"].add(copy.deepcopy(vm))
    west = [f for f in findings_for(estate) if f.cluster == "prod-west"]
    assert len(west) == 1 and west[0].status is Status.FAIL
    assert "runs on prod-west but DRPC" in west[0].message and "on prod-east" in west[0].message


def test_excluded_namespace_is_skipped_not_hidden(estate) -> None:
    vm, _ = vm_with_pvc_disk(estate)
    config = AuditConfig(scope=Scope(exclude_namespaces=(namespace_of(vm)[:2] + "*",)))
    finding = finding_of(findings_for(estate, config=config), vm)
    assert finding.status is Status.SKIP and "outside the audit scope" in finding.message


def test_malformed_vm_is_an_error_for_that_vm_only(estate) -> None:
    vm, _ = vm_with_pvc_disk(estate)
    vm["spec"]["template"]["spec"]["volumes"] = [["not", "a", "mapping"]]
    findings = findings_for(estate)
    assert finding_of(findings, vm).status is Status.ERROR
    assert "could not be evaluated: AttributeError" in finding_of(findings, vm).message
    assert sum(f.status is Status.PASS for f in findings) == len(findings) - 1


def test_no_vms_is_a_skip(estate) -> None:
    for inventory in estate.clusters.values():
        inventory._by_kind.pop("VirtualMachine", None)
    (finding,) = findings_for(estate)
    assert finding.status is Status.SKIP and "No VirtualMachine found" in finding.message


def test_more_than_one_drpc_in_a_namespace_picks_the_selecting_one(estate) -> None:
    vm, _ = vm_with_pvc_disk(estate)
    drpc = drpc_of(estate, vm)
    decoy = copy.deepcopy(drpc)
    decoy["metadata"]["name"] = "decoy-drpc"
    decoy["spec"]["pvcSelector"] = {"matchLabels": {"appname": "nothing-here"}}
    estate.hub.add(decoy)
    finding = finding_of(findings_for(estate), vm)
    assert finding.status is Status.PASS
    assert finding.evidence["drpc"] == f"{namespace_of(drpc)}/{drpc['metadata']['name']}"


def test_broken_protection_sample_fails_exactly_the_intended_vms() -> None:
    findings = run(CHECK, context_for(sample("broken-protection")))
    failing = {f"{f.resource.namespace}/{f.resource.name}" for f in findings if f.status is Status.FAIL}
    passing = {f"{f.resource.namespace}/{f.resource.name}" for f in findings if f.status is Status.PASS}
    assert {"sandbox/sandbox-vm"} <= failing
    assert any(name.endswith("/billing-report") for name in failing)
    assert any(name.endswith("/billing-archive") for name in failing)
    assert any(name.endswith("/crm-web") for name in failing)  # its DRPC is not PeerReady
    assert any(name.endswith("/erp-ledger") for name in failing)  # its VRG is missing
    assert any(name.endswith("/billing-db") for name in passing)


def test_a_kind_unreadable_on_one_cluster_leaves_the_others_judged(estate) -> None:
    estate.clusters["prod-west"].unavailable["VolumeReplicationGroup"] = "list refused (HTTP 403: forbidden)"
    findings = findings_for(estate)
    west = [f for f in findings if f.cluster == "prod-west"]
    assert [f.status for f in west] == [Status.ERROR]
    assert west[0].message == (
        "Cannot evaluate: VolumeReplicationGroup could not be read on prod-west: list refused (HTTP 403: forbidden)."
    )
    assert {f.status for f in findings if f.cluster == "prod-east"} == {Status.PASS}


def test_a_kind_unreadable_on_the_hub_stops_the_check(estate) -> None:
    estate.hub.unavailable["DRPlacementControl"] = "drplacementcontrols.ramendr.openshift.io is not served"
    (finding,) = findings_for(estate)
    assert finding.status is Status.ERROR and finding.cluster == "hub"
    assert "DRPlacementControl could not be read on hub" in finding.message
