"""peer_networks against the healthy sample estate (real-schema NADs and Multus VMs), broken one network at a time."""

from __future__ import annotations

import json

import pytest
from crd_schemas import validate
from helpers import by_resource, context_for, run, sample, without

from auditor.model import Status
from checks.peer_networks import cni_types

CHECK = "peer_networks"
NAD = "NetworkAttachmentDefinition"


@pytest.fixture
def estate():
    return sample("healthy")


def findings_for(estate):
    return by_resource(run(CHECK, context_for(estate)))


def nad(estate, cluster, name, namespace):
    return estate.clusters[cluster].get(NAD, name, namespace)


def test_healthy_estate_every_protected_vm_passes_once(estate) -> None:
    findings = run(CHECK, context_for(estate))
    assert len(findings) == len(estate.clusters["prod-east"].list("VirtualMachine")) == 4
    assert {f.status for f in findings} == {Status.PASS}
    by_vm = findings_for(estate)
    assert by_vm["billing/billing-db"].evidence["networks"] == [
        {
            "network": "db-vlan120",
            "nad": "billing/db-vlan120",
            "cni_types": {"prod-east": ["bridge"], "prod-west": ["bridge"]},
        }
    ]
    # "namespace/name" names a NAD in another namespace (OpenShift lets every namespace use the NADs of default)
    assert by_vm["erp/erp-ledger"].evidence["networks"][0]["nad"] == "default/backup-vlan300"
    assert by_vm["billing/billing-app"].message == (
        "VM billing/billing-app on prod-east uses only the pod network: no NetworkAttachmentDefinition needed on "
        "prod-west."
    )


def test_nad_missing_on_the_peer_fails_the_vm(estate) -> None:
    estate.clusters["prod-west"] = without(estate.clusters["prod-west"], NAD, "db-vlan120")
    findings = findings_for(estate)
    assert findings["billing/billing-db"].status is Status.FAIL
    assert findings["billing/billing-db"].message == (
        "VM billing/billing-db on prod-east would not start on prod-west: network db-vlan120 (NAD billing/db-vlan120) "
        "has no NetworkAttachmentDefinition on prod-west."
    )
    assert findings["erp/erp-ledger"].status is Status.PASS


def test_nad_in_another_namespace_is_looked_up_there(estate) -> None:
    estate.clusters["prod-west"] = without(estate.clusters["prod-west"], NAD, "backup-vlan300")
    finding = findings_for(estate)["erp/erp-ledger"]
    assert finding.status is Status.FAIL
    assert (
        "network backup (NAD default/backup-vlan300) has no NetworkAttachmentDefinition on prod-west" in finding.message
    )


def test_a_peer_without_multus_at_all_fails(estate) -> None:
    """NetworkAttachmentDefinition is an optional API: not served means none exist, so the VM cannot start there."""
    estate.clusters["prod-west"] = without(estate.clusters["prod-west"], NAD)
    findings = findings_for(estate)
    assert findings["billing/billing-db"].status is Status.FAIL
    assert findings["erp/erp-ledger"].status is Status.FAIL
    assert findings["crm/crm-web"].status is Status.PASS


def test_a_different_cni_type_on_the_peer_warns(estate) -> None:
    peer = nad(estate, "prod-west", "db-vlan120", "billing")
    config = json.loads(peer["spec"]["config"])
    config.update(type="macvlan", master="ens4", mode="bridge")
    peer["spec"]["config"] = json.dumps(config)
    assert validate(peer) == []
    finding = findings_for(estate)["billing/billing-db"]
    assert finding.status is Status.WARN
    assert "network db-vlan120 (NAD billing/db-vlan120) uses CNI type bridge on prod-east but macvlan on prod-west" in (
        finding.message
    )


def test_nad_only_on_the_peer_warns_that_types_cannot_be_compared(estate) -> None:
    estate.clusters["prod-east"] = without(estate.clusters["prod-east"], NAD, "db-vlan120")
    finding = findings_for(estate)["billing/billing-db"]
    assert finding.status is Status.WARN
    assert "exists on prod-west but not on prod-east, so its CNI type cannot be compared" in finding.message


def test_cni_types_of_single_plugins_conflists_and_file_backed_nads() -> None:
    macvlan_conflist = {
        "cniVersion": "0.3.1",
        "plugins": [{"type": "macvlan", "master": "eth0", "mode": "bridge"}, {"type": "tuning"}],
    }
    assert cni_types({"spec": {"config": json.dumps(macvlan_conflist)}}) == ["macvlan", "tuning"]
    assert cni_types({"spec": {"config": '{"cniVersion": "0.3.0", "type": "foo"}'}}) == ["foo"]
    assert cni_types({"spec": {}}) == ["(node config file)"]
    assert cni_types({"spec": {"config": "{not json"}}) == ["(unparsable)"]
    assert cni_types(None) is None


def test_nads_unreadable_on_the_peer_is_an_error_and_no_verdict(estate) -> None:
    estate.clusters["prod-west"].unavailable[NAD] = "list network-attachment-definitions refused (HTTP 403: forbidden)"
    findings = run(CHECK, context_for(estate))
    (error,) = [f for f in findings if f.status is Status.ERROR]
    assert (
        error.cluster == "prod-west" and "NetworkAttachmentDefinition could not be read on prod-west" in error.message
    )
    assert {f.status for f in findings if f is not error} == {Status.SKIP}


def test_broken_peer_sample_fails_the_vm_on_the_missing_nad() -> None:
    findings = findings_for(sample("broken-peer"))
    assert findings["billing/billing-db"].status is Status.FAIL
    assert (
        "NAD billing/db-vlan120) has no NetworkAttachmentDefinition on prod-west"
        in findings["billing/billing-db"].message
    )
    assert {f.status for key, f in findings.items() if key != "billing/billing-db"} == {Status.PASS}
