"""peer_storage_classes against the healthy sample estate (real-schema StorageClasses, PVCs, DataVolumes), broken one
peer difference at a time."""

from __future__ import annotations

import pytest
from helpers import by_resource, context_for, run, sample, without

from auditor.model import Status

CHECK = "peer_storage_classes"
RBD = "ocs-external-storagecluster-ceph-rbd"
STORAGE_ID = "ramendr.openshift.io/storageid"


@pytest.fixture
def estate():
    return sample("healthy")


def findings_for(estate):
    return by_resource(run(CHECK, context_for(estate)))


def peer_class(estate, name=RBD):
    return estate.clusters["prod-west"].get("StorageClass", name)


def test_healthy_estate_every_protected_vm_passes_once(estate) -> None:
    findings = run(CHECK, context_for(estate))
    vms = estate.clusters["prod-east"].list("VirtualMachine")
    assert len(findings) == len(vms) == 4
    for finding in findings:
        assert finding.status is Status.PASS, finding.message
        assert finding.resource.kind == "VirtualMachine" and finding.cluster == "prod-east"
        assert finding.evidence["peer_cluster"] == "prod-west"
        assert finding.evidence["storage_classes"][RBD]["prod-west"]["storage_id"] == "8b1f4c2e6d0a4b7e9c3f5a1d2e4b6c8f"
    db = findings_for(estate)["billing/billing-db"]
    assert {d["pvc"] for d in db.evidence["disks"]} == {"billing-db-rootdisk", "billing-db-data"}
    assert "with the same provisioner and storage ID" in db.message


def test_class_missing_on_the_peer_fails_every_vm_using_it(estate) -> None:
    estate.clusters["prod-west"] = without(estate.clusters["prod-west"], "StorageClass", RBD)
    findings = run(CHECK, context_for(estate))
    assert {f.status for f in findings} == {Status.FAIL}
    db = findings_for(estate)["billing/billing-db"]
    assert db.message == (
        f"VM billing/billing-db on prod-east would not get its storage on prod-west: StorageClass {RBD} "
        "(disks rootdisk, data): does not exist on prod-west."
    )
    assert db.evidence["storage_classes"][RBD]["prod-west"] is None


def test_different_storage_id_on_the_peer_fails(estate) -> None:
    peer_class(estate)["metadata"]["labels"][STORAGE_ID] = "f00dfeed0000aaaa1111bbbb2222cccc"
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.FAIL
    values = "prod-east: 8b1f4c2e6d0a4b7e9c3f5a1d2e4b6c8f, prod-west: f00dfeed0000aaaa1111bbbb2222cccc"
    assert f"{STORAGE_ID} differs ({values}): the peer's class is other storage" in finding.message


def test_different_provisioner_on_the_peer_fails(estate) -> None:
    peer_class(estate)["provisioner"] = "openshift-storage.cephfs.csi.ceph.com"
    finding = findings_for(estate)["erp/erp-ledger"]
    assert finding.status is Status.FAIL
    values = "prod-east: openshift-storage.rbd.csi.ceph.com, prod-west: openshift-storage.cephfs.csi.ceph.com"
    assert f"provisioner differs ({values})" in finding.message


def test_class_without_a_storage_id_label_fails(estate) -> None:
    del peer_class(estate)["metadata"]["labels"][STORAGE_ID]
    finding = findings_for(estate)["billing/billing-app"]
    assert finding.status is Status.FAIL
    assert f"has no {STORAGE_ID} label on prod-west, so Ramen cannot pair the classes" in finding.message


def test_storage_id_only_under_the_documented_spelling_warns(estate) -> None:
    labels = peer_class(estate)["metadata"]["labels"]
    labels["ramendr.openshift.io/storageID"] = labels.pop(STORAGE_ID)
    finding = findings_for(estate)["billing/billing-app"]
    assert finding.status is Status.WARN
    assert "carries the storage ID only as ramendr.openshift.io/storageID on prod-west" in finding.message


def test_drifted_parameters_warn(estate) -> None:
    peer_class(estate)["parameters"]["imageFeatures"] = "layering"
    peer_class(estate)["volumeBindingMode"] = "WaitForFirstConsumer"
    finding = findings_for(estate)["billing/billing-app"]
    assert finding.status is Status.WARN
    assert (
        "parameter imageFeatures differs (prod-east: layering,deep-flatten,exclusive-lock,object-map,fast-diff, "
        "prod-west: layering)" in finding.message
    )
    assert "volumeBindingMode differs (prod-east: Immediate, prod-west: WaitForFirstConsumer)" in finding.message


def test_a_disk_whose_pvc_does_not_exist_yet_takes_the_class_of_its_data_volume_template(estate) -> None:
    east = estate.clusters["prod-east"]
    estate.clusters["prod-east"] = without(east, "PersistentVolumeClaim", "billing-db-rootdisk")
    estate.clusters["prod-east"] = without(estate.clusters["prod-east"], "DataVolume", "billing-db-rootdisk")
    disk = next(d for d in findings_for(estate)["billing/billing-db"].evidence["disks"] if d["volume"] == "rootdisk")
    assert disk == {
        "volume": "rootdisk",
        "pvc": "billing-db-rootdisk",
        "storage_class": RBD,
        "source": "dataVolumeTemplate billing-db-rootdisk spec storageClassName",
    }


def test_a_disk_without_a_class_name_resolves_to_the_primary_default_class(estate) -> None:
    """A DataVolume on the spec.storage API gets the virt default class, which the peer must have too."""
    east = estate.clusters["prod-east"]
    estate.clusters["prod-east"] = without(east, "PersistentVolumeClaim", "billing-app-rootdisk")
    dv = estate.clusters["prod-east"].get("DataVolume", "billing-app-rootdisk", "billing")
    del dv["spec"]["storage"]["storageClassName"]
    virt_default = east.get("StorageClass", RBD)["metadata"]["annotations"]
    assert virt_default["storageclass.kubevirt.io/is-default-virt-class"] == "true"
    finding = findings_for(estate)["billing/billing-app"]
    assert finding.status is Status.PASS
    (disk,) = finding.evidence["disks"]
    assert disk["storage_class"] == RBD
    assert disk["source"] == (
        "DataVolume billing/billing-app-rootdisk spec names no StorageClass: the default class on prod-east "
        "(storageclass.kubevirt.io/is-default-virt-class)"
    )
    estate.clusters["prod-west"] = without(estate.clusters["prod-west"], "StorageClass", RBD)
    assert findings_for(estate)["billing/billing-app"].status is Status.FAIL


def test_a_disk_whose_class_cannot_be_resolved_warns(estate) -> None:
    east = estate.clusters["prod-east"]
    estate.clusters["prod-east"] = without(east, "PersistentVolumeClaim", "crm-web-rootdisk")
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.WARN
    assert (
        "disk rootdisk: its StorageClass is unknown (neither PVC crm/crm-web-rootdisk nor a DataVolume of that name "
        "exists)" in finding.message
    )


def test_a_statically_bound_pvc_needs_no_class(estate) -> None:
    pvc = estate.clusters["prod-east"].get("PersistentVolumeClaim", "crm-web-rootdisk", "crm")
    pvc["spec"]["storageClassName"] = ""
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.PASS
    assert finding.message.endswith("has no disk on a StorageClass: nothing to provide on prod-west.")


def test_class_deleted_on_the_primary_fails(estate) -> None:
    estate.clusters["prod-east"] = without(estate.clusters["prod-east"], "StorageClass", RBD)
    finding = findings_for(estate)["crm/crm-web"]
    assert finding.status is Status.FAIL
    assert "does not exist on prod-east, so Ramen cannot pair it with the class on prod-west" in finding.message


def test_storage_classes_unreadable_on_the_peer_is_an_error_and_no_verdict(estate) -> None:
    estate.clusters["prod-west"].unavailable["StorageClass"] = "list storageclasses refused (HTTP 403: forbidden)"
    findings = run(CHECK, context_for(estate))
    errors = [f for f in findings if f.status is Status.ERROR]
    assert [f.cluster for f in errors] == ["prod-west"]
    assert "StorageClass could not be read on prod-west" in errors[0].message
    skipped = [f for f in findings if f.status is Status.SKIP]
    assert len(skipped) == 4 and all("its peer cluster prod-west" in f.message for f in skipped)


def test_broken_peer_sample_fails_every_vm_on_the_relabelled_class() -> None:
    findings = run(CHECK, context_for(sample("broken-peer")))
    assert {f.status for f in findings} == {Status.FAIL}
    assert all(f"{STORAGE_ID} differs (prod-east: 8b1f4c2e6d0a4b7e9c3f5a1d2e4b6c8f" in f.message for f in findings)
