"""peer_instancetypes against the healthy sample estate (real-schema common-instancetypes u1.large and rhel.9 on both
clusters), broken one instancetype or preference at a time."""

from __future__ import annotations

import copy

import pytest
from crd_schemas import validate
from helpers import by_resource, context_for, run, sample, without

from auditor.kubevirt import InstancetypeRef, instancetype_ref, preference_ref
from auditor.model import Status

CHECK = "peer_instancetypes"
CLUSTER_IT = "VirtualMachineClusterInstancetype"
CLUSTER_PREF = "VirtualMachineClusterPreference"


@pytest.fixture
def estate():
    return sample("healthy")


def findings_for(estate):
    return by_resource(run(CHECK, context_for(estate)))


def crm_web(estate):
    return estate.clusters["prod-east"].get("VirtualMachine", "crm-web", "crm")


def namespaced_copy(estate, cluster, kind, name, namespace, new_kind):
    """A namespaced instancetype or preference with the spec of a cluster-wide one, as a team would copy it."""
    source = estate.clusters[cluster].get(kind, name)
    obj = {
        "apiVersion": source["apiVersion"],
        "kind": new_kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": namespace}},
        "spec": copy.deepcopy(source["spec"]),
    }
    assert validate(obj) == []
    return obj


def test_healthy_estate_every_protected_vm_passes_once(estate) -> None:
    findings = run(CHECK, context_for(estate))
    assert len(findings) == 4 and {f.status for f in findings} == {Status.PASS}
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.message == (
        "VM crm/crm-web on prod-east: VirtualMachineClusterInstancetype u1.large and VirtualMachineClusterPreference "
        "rhel.9 exist on prod-west."
    )
    assert [(r["kind"], r["name"], r["on_peer"]) for r in finding.evidence["references"]] == [
        (CLUSTER_IT, "u1.large", True),
        (CLUSTER_PREF, "rhel.9", True),
    ]
    assert findings_for(estate)["billing/billing-db"].message.endswith(
        "names no instancetype or preference: nothing to provide on prod-west."
    )


def test_cluster_instancetype_missing_on_the_peer_fails(estate) -> None:
    estate.clusters["prod-west"] = without(estate.clusters["prod-west"], CLUSTER_IT, "u1.large")
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.FAIL
    assert finding.message == (
        "VM crm/crm-web on prod-east would not start on prod-west: VirtualMachineClusterInstancetype u1.large does "
        "not exist on prod-west."
    )


def test_cluster_preference_missing_on_the_peer_fails(estate) -> None:
    estate.clusters["prod-west"] = without(estate.clusters["prod-west"], CLUSTER_PREF, "rhel.9")
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.FAIL
    assert "VirtualMachineClusterPreference rhel.9 does not exist on prod-west" in finding.message


def test_missing_on_both_clusters_fails(estate) -> None:
    crm_web(estate)["spec"]["instancetype"]["name"] = "u1.2xlarge"
    assert "u1.2xlarge exists on neither prod-east nor prod-west" in findings_for(estate)["crm/crm-web"].message


def test_a_different_spec_on_the_peer_warns(estate) -> None:
    estate.clusters["prod-west"].get(CLUSTER_IT, "u1.large")["spec"]["memory"]["guest"] = "16Gi"
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.WARN
    assert "VirtualMachineClusterInstancetype u1.large has a different spec on prod-west than on prod-east" in (
        finding.message
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", CLUSTER_IT),
        ("virtualmachineclusterinstancetype", CLUSTER_IT),
        ("VirtualMachineClusterInstancetypes", CLUSTER_IT),
        ("VirtualMachineInstancetype", "VirtualMachineInstancetype"),
        ("virtualmachineinstancetypes", "VirtualMachineInstancetype"),
    ],
)
def test_instancetype_kind_is_read_as_kubevirt_reads_it(estate, given, expected) -> None:
    vm = crm_web(estate)
    vm["spec"]["instancetype"]["kind"] = given
    namespace = "crm" if expected == "VirtualMachineInstancetype" else None
    assert instancetype_ref(vm) == InstancetypeRef(expected, "u1.large", namespace)


def test_preference_kind_defaults_to_the_cluster_wide_one(estate) -> None:
    vm = crm_web(estate)
    del vm["spec"]["preference"]["kind"]
    assert validate(vm) == []
    assert preference_ref(vm) == InstancetypeRef(CLUSTER_PREF, "rhel.9", None)
    vm["spec"]["preference"]["kind"] = "VirtualMachinePreference"
    assert preference_ref(vm) == InstancetypeRef("VirtualMachinePreference", "rhel.9", "crm")


def test_namespaced_instancetype_captured_by_kube_object_protection_passes(estate) -> None:
    own = namespaced_copy(estate, "prod-east", CLUSTER_IT, "u1.large", "crm", "VirtualMachineInstancetype")
    estate.clusters["prod-east"].add(own)
    crm_web(estate)["spec"]["instancetype"]["kind"] = "VirtualMachineInstancetype"
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.PASS
    entry = finding.evidence["references"][0]
    assert (entry["kind"], entry["namespace"], entry["on_peer"], entry["captured"]) == (
        "VirtualMachineInstancetype",
        "crm",
        False,
        True,
    )


def test_namespaced_preference_outside_the_kube_object_selector_fails(estate) -> None:
    """erp's discovered-application DRPC captures only objects labelled appname=erp."""
    erp_vm = estate.clusters["prod-east"].get("VirtualMachine", "erp-ledger", "erp")
    erp_vm["spec"]["preference"] = {"kind": "VirtualMachinePreference", "name": "rhel.9"}
    assert validate(erp_vm) == []
    own = namespaced_copy(estate, "prod-east", CLUSTER_PREF, "rhel.9", "erp", "VirtualMachinePreference")
    estate.clusters["prod-east"].add(own)
    finding = findings_for(estate)["erp/erp-ledger"]
    assert finding.status is Status.FAIL
    assert (
        "VirtualMachinePreference erp/rhel.9 is not on prod-west and kube-object protection does not capture it: its "
        "labels do not match the kubeObjectSelector of DRPC openshift-dr-ops/erp-drpc (label appname=erp missing)"
    ) in finding.message
    own["metadata"]["labels"]["appname"] = "erp"
    assert findings_for(estate)["erp/erp-ledger"].status is Status.PASS


def test_instancetypes_unreadable_on_the_peer_is_an_error_and_no_verdict(estate) -> None:
    estate.clusters["prod-west"].unavailable[CLUSTER_IT] = "list refused (HTTP 403: forbidden)"
    findings = run(CHECK, context_for(estate))
    (error,) = [f for f in findings if f.status is Status.ERROR]
    assert error.cluster == "prod-west" and f"{CLUSTER_IT} could not be read on prod-west" in error.message
    assert {f.status for f in findings if f is not error} == {Status.SKIP}


def test_broken_peer_sample_fails_the_vm_whose_instancetype_is_missing() -> None:
    findings = findings_for(sample("broken-peer"))
    assert findings["crm/crm-web"].status is Status.FAIL
    assert f"{CLUSTER_IT} u1.large does not exist on prod-west" in findings["crm/crm-web"].message
    assert {f.status for key, f in findings.items() if key != "crm/crm-web"} == {Status.PASS}
