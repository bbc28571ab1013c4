"""Preflight refuses a drill that would prove nothing or could not restore, one sentence per cause."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import sample, without

from auditor.config import DrillSettings
from auditor.drill.plan import build_plan
from auditor.drill.preflight import preflight
from auditor.inventory import CephData, Estate

DRILL = "20261126t004512-a1b2c3"
RBD = "openshift-storage.rbd.csi.ceph.com"
SNAPCLASS = "ocs-external-storagecluster-rbdplugin-snapclass"


def refusals(estate: Estate, app: str = "crm/crm-drpc") -> list[str]:
    return preflight(estate, build_plan(estate, app, (), DRILL, DrillSettings()))


@pytest.mark.parametrize("app", ["billing/billing-drpc", "crm/crm-drpc", "openshift-dr-ops/erp-drpc"])
def test_the_healthy_estate_may_be_drilled(app: str) -> None:
    assert refusals(sample("healthy"), app) == []


def test_unmet_drpc_conditions_are_quoted() -> None:
    estate = sample("healthy")
    drpc = estate.hub.get("DRPlacementControl", "erp-drpc", "openshift-dr-ops")
    peer_ready = next(c for c in drpc["status"]["conditions"] if c["type"] == "PeerReady")
    peer_ready.update(status="False", reason="Progressing", message="Cleaning up")
    drpc["status"]["conditions"] = [c for c in drpc["status"]["conditions"] if c["type"] != "Protected"]
    assert refusals(estate, "openshift-dr-ops/erp-drpc") == [
        'DRPC openshift-dr-ops/erp-drpc is not PeerReady: PeerReady is False, reason Progressing: "Cleaning up".',
        "DRPC openshift-dr-ops/erp-drpc is not Protected: Protected is not reported.",
    ]


def test_regional_dr_is_not_implemented() -> None:
    estate = sample("healthy")
    estate.hub.get("DRPolicy", "odr-metro-policy")["spec"]["schedulingInterval"] = "5m"
    assert refusals(estate) == [
        "Regional-DR drills (restore from the mirrored image) are not implemented; DRPolicy odr-metro-policy of DRPC "
        "crm/crm-drpc is Regional-DR (asynchronous, every 5m)."
    ]


def test_an_unknown_or_unread_peer_is_refused() -> None:
    estate = sample("healthy")
    policy = estate.hub.get("DRPolicy", "odr-metro-policy")
    policy["spec"]["drClusters"] = ["prod-east"]
    assert refusals(estate) == [
        "The peer cluster of DRPC crm/crm-drpc is unknown: DRPolicy odr-metro-policy drClusters ['prod-east'] do not "
        "name exactly one other cluster."
    ]
    estate = sample("healthy")
    del estate.clusters["prod-west"]
    assert refusals(estate) == [
        "The peer cluster prod-west of DRPC crm/crm-drpc (DRPolicy odr-metro-policy drClusters ['prod-east', "
        "'prod-west']) was not read, so the drill cannot check or use it."
    ]


def test_the_primary_vrg_must_be_primary_and_protect_every_bound_disk() -> None:
    estate = sample("healthy")
    east = estate.clusters["prod-east"]
    vrg = east.get("VolumeReplicationGroup", "billing-drpc", "billing")
    vrg["status"]["state"] = "Secondary"
    vrg["status"]["protectedPVCs"] = [p for p in vrg["status"]["protectedPVCs"] if p["name"] != "billing-db-data"]
    east.get("PersistentVolumeClaim", "billing-app-rootdisk", "billing")["status"]["phase"] = "Pending"
    assert refusals(estate, "billing/billing-drpc") == [
        "VolumeReplicationGroup billing/billing-drpc on prod-east is Secondary, not Primary.",
        "PVC billing/billing-app-rootdisk on prod-east is Pending, not Bound.",
        "PVC billing/billing-db-data is not listed in the status.protectedPVCs of VolumeReplicationGroup "
        "billing/billing-drpc on prod-east.",
    ]
    estate.clusters["prod-east"] = without(east, "VolumeReplicationGroup", "billing-drpc")
    assert (
        "There is no VolumeReplicationGroup billing/billing-drpc on prod-east: Ramen protects nothing of DRPC "
        in (refusals(estate, "billing/billing-drpc")[0])
    )


def test_each_cluster_needs_a_snapshot_class_for_the_driver() -> None:
    estate = sample("healthy")
    estate.clusters["prod-east"] = without(estate.clusters["prod-east"], "VolumeSnapshotClass")
    west = without(estate.clusters["prod-west"], "VolumeSnapshotClass")
    west.unavailable["VolumeSnapshotClass"] = "the server does not serve snapshot.storage.k8s.io/v1"
    estate.clusters["prod-west"] = west
    assert refusals(estate, "billing/billing-drpc") == [
        f"prod-east has no VolumeSnapshotClass for CSI driver {RBD}, which PVC billing/billing-app-rootdisk, "
        "billing/billing-db-rootdisk, billing/billing-db-data needs.",
        f"prod-west has no VolumeSnapshotClass for CSI driver {RBD} (VolumeSnapshotClasses could not be read: the "
        "server does not serve snapshot.storage.k8s.io/v1), which PVC billing/billing-app-rootdisk, "
        "billing/billing-db-rootdisk, billing/billing-db-data needs.",
    ]


def test_a_snapshot_class_of_another_driver_does_not_count() -> None:
    estate = sample("healthy")
    estate.clusters["prod-west"].get("VolumeSnapshotClass", SNAPCLASS)["driver"] = "other.csi"
    assert refusals(estate) == [
        f"prod-west has no VolumeSnapshotClass for CSI driver {RBD}, which PVC crm/crm-web-rootdisk needs."
    ]


def test_the_secondary_needs_the_storage_class_with_the_same_provisioner() -> None:
    estate = sample("healthy")
    name = "ocs-external-storagecluster-ceph-rbd"
    estate.clusters["prod-west"].get("StorageClass", name)["provisioner"] = "rook-ceph.rbd.csi.ceph.com"
    assert refusals(estate) == [
        f"StorageClass {name} on prod-west is provisioned by rook-ceph.rbd.csi.ceph.com, not {RBD} as on prod-east."
    ]
    estate.clusters["prod-west"] = without(estate.clusters["prod-west"], "StorageClass")
    assert refusals(estate) == [f"prod-west has no StorageClass {name}, which PVC crm/crm-web-rootdisk uses."]


def test_a_storage_class_missing_on_the_primary_leaves_the_driver_unknown() -> None:
    estate = sample("healthy")
    estate.clusters["prod-east"] = without(estate.clusters["prod-east"], "StorageClass")
    assert refusals(estate) == [
        "PVC crm/crm-web-rootdisk uses StorageClass ocs-external-storagecluster-ceph-rbd, which prod-east does not "
        "have: its CSI driver is unknown."
    ]


def test_a_degraded_stretch_cluster_is_refused_and_no_ceph_data_is_only_noted() -> None:
    assert refusals(sample("broken-site")) == [
        "The stretched Ceph cluster under both sites is not whole: stretch mode is degraded (pools peer with only 1 "
        "of 2 sites)."
    ]
    estate = replace(sample("healthy"), ceph=CephData())
    plan = build_plan(estate, "crm/crm-drpc", (), DRILL, DrillSettings())
    assert preflight(estate, plan) == [] and plan.notes == ("stretch state unknown: no Ceph osd_dump was read",)


def test_a_namespaced_instancetype_is_not_in_the_drill_namespace() -> None:
    estate = sample("healthy")
    vm = estate.clusters["prod-east"].get("VirtualMachine", "crm-web", "crm")
    vm["spec"]["instancetype"] = {"kind": "VirtualMachineInstancetype", "name": "crm-large"}
    assert refusals(estate) == [
        "VM crm/crm-web uses the namespaced VirtualMachineInstancetype crm/crm-large, which the drill namespace "
        f"drauditor-drill-{DRILL} does not have."
    ]
