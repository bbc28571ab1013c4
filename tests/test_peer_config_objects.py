"""peer_config_objects against the healthy sample estate (real-schema Secrets, VMs and DRPCs), broken one reference
at a time. Secrets reach the check as metadata only; no value may show up in a finding."""

from __future__ import annotations

import copy
import json

import pytest
from crd_schemas import validate
from helpers import by_resource, context_for, run, sample, without

from auditor.kubevirt import ConfigRef, config_references
from auditor.model import Status

CHECK = "peer_config_objects"


@pytest.fixture
def estate():
    return sample("healthy")


def findings_for(estate):
    return by_resource(run(CHECK, context_for(estate)))


def vm(estate, namespace, name):
    return estate.clusters["prod-east"].get("VirtualMachine", name, namespace)


def drpc(estate, namespace, name):
    return estate.hub.get("DRPlacementControl", name, namespace)


def secret(estate, cluster, namespace, name):
    return estate.clusters[cluster].get("Secret", name, namespace)


def test_healthy_estate_every_reference_reaches_the_peer(estate) -> None:
    findings = run(CHECK, context_for(estate))
    assert len(findings) == 4 and {f.status for f in findings} == {Status.PASS}
    by_vm = findings_for(estate)
    (db,) = by_vm["billing/billing-db"].evidence["references"]
    assert db["field"] == "accessCredentials[0].sshPublicKey.source.secret.secretName"
    assert (db["on_peer"], db["captured"]) == (False, True)
    assert (
        db["capture"]
        == "kube-object protection of DRPC billing/billing-drpc captures it (every object of the namespace)"
    )
    (crm,) = by_vm["crm/crm-web"].evidence["references"]
    assert crm["field"] == "volumes[cloudinitdisk].cloudInitConfigDrive.secretRef.name" and crm["on_peer"] is True
    (erp,) = by_vm["erp/erp-ledger"].evidence["references"]
    assert erp["captured"] is True and "matching its kubeObjectSelector" in erp["capture"]
    assert by_vm["crm/crm-web"].message == (
        "VM crm/crm-web on prod-east: every Secret and ConfigMap it references reaches prod-west "
        "(Secret crm-web-cloudinit exists there)."
    )


def test_secret_values_never_reach_the_check_or_its_findings(estate) -> None:
    stored = secret(estate, "prod-east", "crm", "crm-web-cloudinit")
    assert set(stored) == {"apiVersion", "kind", "metadata"}  # the sample file holds data; the inventory does not
    rendered = json.dumps([f.to_dict() for f in run(CHECK, context_for(estate))])
    assert "I2Nsb3VkLWNvbmZpZw" not in rendered and "#cloud-config" not in rendered


def test_secret_outside_the_kube_object_selector_and_absent_on_the_peer_fails(estate) -> None:
    del secret(estate, "prod-east", "erp", "erp-ledger-ssh")["metadata"]["labels"]["appname"]
    finding = findings_for(estate)["erp/erp-ledger"]
    assert finding.status is Status.FAIL
    assert finding.message == (
        "VM erp/erp-ledger on prod-east would not start on prod-west: Secret erp/erp-ledger-ssh "
        "(accessCredentials[0].sshPublicKey.source.secret.secretName) is not on prod-west and kube-object protection "
        "does not capture it: its labels do not match the kubeObjectSelector of DRPC openshift-dr-ops/erp-drpc "
        "(label appname=erp missing)."
    )


def test_secret_present_on_the_peer_needs_no_capture(estate) -> None:
    del secret(estate, "prod-east", "erp", "erp-ledger-ssh")["metadata"]["labels"]["appname"]
    staged = copy.deepcopy(secret(estate, "prod-east", "erp", "erp-ledger-ssh"))
    estate.clusters["prod-west"].add(staged)
    (entry,) = findings_for(estate)["erp/erp-ledger"].evidence["references"]
    assert findings_for(estate)["erp/erp-ledger"].status is Status.PASS
    assert (entry["on_peer"], entry["captured"]) == (True, False)


def test_drpc_without_kube_object_protection_fails_what_is_not_on_the_peer(estate) -> None:
    del drpc(estate, "billing", "billing-drpc")["spec"]["kubeObjectProtection"]
    finding = findings_for(estate)["billing/billing-db"]
    assert finding.status is Status.FAIL
    assert "kube-object protection does not capture it: DRPC billing/billing-drpc has no spec.kubeObjectProtection" in (
        finding.message
    )
    assert findings_for(estate)["crm/crm-web"].status is Status.PASS  # its Secret is on the peer


def test_objects_ramen_created_are_left_out_of_the_capture(estate) -> None:
    secret(estate, "prod-east", "billing", "billing-db-ssh")["metadata"]["labels"][
        "ramendr.openshift.io/created-by-ramen"
    ] = "true"
    finding = findings_for(estate)["billing/billing-db"]
    assert finding.status is Status.FAIL
    assert "labelled ramendr.openshift.io/created-by-ramen=true, which Ramen's capture leaves out" in finding.message


def test_a_recipe_decides_the_capture_so_the_verdict_is_a_warning(estate) -> None:
    protection = drpc(estate, "billing", "billing-drpc")["spec"]["kubeObjectProtection"]
    protection["recipeRef"] = {"name": "vm-recipe", "namespace": "openshift-dr-ops"}
    assert validate(drpc(estate, "billing", "billing-drpc")) == []
    finding = findings_for(estate)["billing/billing-db"]
    assert finding.status is Status.WARN
    assert "captures what Recipe openshift-dr-ops/vm-recipe names, which drauditor does not read" in finding.message


def test_missing_everywhere_fails_and_missing_on_the_primary_only_warns(estate) -> None:
    estate.clusters["prod-east"] = without(estate.clusters["prod-east"], "Secret", "billing-db-ssh")
    assert "exists on neither prod-east nor prod-west" in findings_for(estate)["billing/billing-db"].message
    estate.clusters["prod-east"] = without(estate.clusters["prod-east"], "Secret", "crm-web-cloudinit")
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.WARN
    assert "exists on prod-west but not on prod-east, where the VM runs" in finding.message


def add_volumes(vm_obj, volumes, disks=True):
    spec = vm_obj["spec"]["template"]["spec"]
    spec["volumes"] += volumes
    if disks:
        spec["domain"]["devices"]["disks"] += [{"disk": {"bus": "virtio"}, "name": v["name"]} for v in volumes]
    assert validate(vm_obj) == []


def test_an_optional_secret_volume_that_will_be_missing_only_warns(estate) -> None:
    add_volumes(
        vm(estate, "billing", "billing-app"), [{"name": "tls", "secret": {"secretName": "app-tls", "optional": True}}]
    )
    finding = findings_for(estate)["billing/billing-app"]
    assert finding.status is Status.WARN
    assert (
        "Secret billing/app-tls (volumes[tls].secret.secretName) exists on neither prod-east nor prod-west; the VM "
        in (finding.message)
    )
    assert "marks it optional and starts without it" in finding.message


def test_every_reference_field_of_the_kubevirt_schema_is_found(estate) -> None:
    """Each Secret / ConfigMap reference field of the VirtualMachine schema, on a VM the real schema accepts."""
    vm_obj = copy.deepcopy(vm(estate, "billing", "billing-app"))
    spec = vm_obj["spec"]["template"]["spec"]
    add_volumes(
        vm_obj,
        [
            {"name": "tools", "containerDisk": {"image": "registry.example.com/tools:1", "imagePullSecret": "pull"}},
            {"name": "cfg", "configMap": {"name": "app-config"}},
            {"name": "tls", "secret": {"secretName": "app-tls", "optional": True}},
            {"name": "unattend", "sysprep": {"secret": {"name": "sysprep-secret"}}},
            {"name": "answers", "sysprep": {"configMap": {"name": "sysprep-config"}}},
            {"name": "token", "serviceAccount": {"serviceAccountName": "app"}},
        ],
    )
    cloud_init = next(v for v in spec["volumes"] if "cloudInitNoCloud" in v)
    cloud_init["cloudInitNoCloud"] = {"secretRef": {"name": "userdata"}, "networkDataSecretRef": {"name": "netdata"}}
    spec["accessCredentials"] = [
        {"sshPublicKey": {"propagationMethod": {"noCloud": {}}, "source": {"secret": {"secretName": "ssh-keys"}}}},
        {"userPassword": {"propagationMethod": {"qemuGuestAgent": {}}, "source": {"secret": {"secretName": "pw"}}}},
    ]
    spec["domain"]["firmware"]["kernelBoot"] = {
        "container": {"image": "registry.example.com/kernel:1", "imagePullSecret": "kernel-pull"}
    }
    assert validate(vm_obj) == []
    assert sorted(config_references(vm_obj), key=lambda r: r.field) == sorted(
        [
            ConfigRef("Secret", "ssh-keys", "accessCredentials[0].sshPublicKey.source.secret.secretName", False),
            ConfigRef("Secret", "pw", "accessCredentials[1].userPassword.source.secret.secretName", False),
            ConfigRef("Secret", "kernel-pull", "domain.firmware.kernelBoot.container.imagePullSecret", False),
            ConfigRef("Secret", "userdata", "volumes[cloudinitdisk].cloudInitNoCloud.secretRef.name", False),
            ConfigRef("Secret", "netdata", "volumes[cloudinitdisk].cloudInitNoCloud.networkDataSecretRef.name", False),
            ConfigRef("Secret", "pull", "volumes[tools].containerDisk.imagePullSecret", False),
            ConfigRef("ConfigMap", "app-config", "volumes[cfg].configMap.name", False),
            ConfigRef("Secret", "app-tls", "volumes[tls].secret.secretName", True),
            ConfigRef("Secret", "sysprep-secret", "volumes[unattend].sysprep.secret.name", False),
            ConfigRef("ConfigMap", "sysprep-config", "volumes[answers].sysprep.configMap.name", False),
        ],
        key=lambda r: r.field,
    )


def test_a_configmap_reference_is_judged_like_a_secret(estate) -> None:
    add_volumes(vm(estate, "crm", "crm-web"), [{"name": "cfg", "configMap": {"name": "crm-settings"}}])
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.FAIL
    assert "ConfigMap crm/crm-settings (volumes[cfg].configMap.name) exists on neither prod-east nor prod-west" in (
        finding.message
    )


def test_secrets_unreadable_on_the_peer_is_an_error_and_no_verdict(estate) -> None:
    estate.clusters["prod-west"].unavailable["Secret"] = "list secrets refused (HTTP 403: forbidden)"
    findings = run(CHECK, context_for(estate))
    (error,) = [f for f in findings if f.status is Status.ERROR]
    assert error.cluster == "prod-west" and "Secret could not be read on prod-west" in error.message
    assert {f.status for f in findings if f is not error} == {Status.SKIP}


def test_broken_peer_sample_fails_the_vm_whose_key_secret_lost_its_label() -> None:
    findings = findings_for(sample("broken-peer"))
    assert findings["erp/erp-ledger"].status is Status.FAIL
    assert "Secret erp/erp-ledger-ssh" in findings["erp/erp-ledger"].message
    assert {f.status for key, f in findings.items() if key != "erp/erp-ledger"} == {Status.PASS}


def test_the_secret_schema_rejects_what_the_apiserver_would() -> None:
    """The hand-written core Secret schema (tests/fixtures/crds/core/secret_v1.yaml) can say no."""
    good = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k", "namespace": "erp"}, "type": "Opaque"}
    assert validate({**good, "data": {"key1": "c3NoLWVkMjU1MTk="}, "stringData": {"userdata": "#cloud-config"}}) == []
    assert validate({**good, "data": {"key1": "not base64!"}})
    assert validate({**good, "spec": {}}) == ["Secret erp/k: unknown field spec"]
    assert validate({**good, "metadata": {"name": "k"}}) == [
        "Secret k: metadata.namespace is required for a namespaced kind"
    ]
