"""The drill planner: which clusters, VMs and disks, which names, and what --plan shows, from the sample estates."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from helpers import sample, without

from auditor.config import DrillSettings, DrillTarget
from auditor.drill.names import CANARY, content_name, drill_labels, drill_namespace, source_snapshot_name
from auditor.drill.plan import PlanError, build_plan
from auditor.errors import InputError
from auditor.inventory import CephData, Estate

DRILL = "20261126t004512-a1b2c3"
N = drill_namespace(DRILL)
RBD = "openshift-storage.rbd.csi.ceph.com"
RBD_CLASS = "ocs-external-storagecluster-ceph-rbd"
RBD_SNAPCLASS = "ocs-external-storagecluster-rbdplugin-snapclass"


def plan_of(estate: Estate, app: str, vms: tuple[str, ...] = (), settings: DrillSettings | None = None):
    return build_plan(estate, app, vms, DRILL, settings or DrillSettings())


def test_billing_plan_names_clusters_policy_vms_and_disks() -> None:
    plan = plan_of(sample("healthy"), "billing/billing-drpc")
    assert (plan.primary, plan.secondary, plan.policy, plan.replication) == (
        "prod-east",
        "prod-west",
        "odr-metro-policy",
        "sync",
    )
    assert plan.namespace == N and plan.app == "billing/billing-drpc" and plan.notes == ()
    assert [vm.key for vm in plan.vms] == ["billing/billing-app", "billing/billing-db"]
    db = plan.vms[1]
    assert db.uid == "9d9cddcc-f45a-582e-979f-656ddac6c129"
    assert [(d.volume, d.source, d.pvc) for d in db.disks] == [
        ("rootdisk", "dataVolume", "billing-db-rootdisk"),
        ("data", "persistentVolumeClaim", "billing-db-data"),
    ]
    root = db.disks[0]
    assert (root.storage_class, root.provisioner, root.snapshot_class, root.secondary_snapshot_class) == (
        RBD_CLASS,
        RBD,
        RBD_SNAPCLASS,
        RBD_SNAPCLASS,
    )
    assert (root.size, root.volume_mode, root.access_modes, root.phase) == (
        "40Gi",
        "Block",
        ("ReadWriteMany",),
        "Bound",
    )
    assert root.source_snapshot == source_snapshot_name(DRILL, "billing-db-rootdisk")
    assert root.content == content_name(DRILL, "billing", "billing-db-rootdisk")
    assert plan.allowed_source_pvcs == {
        ("billing", "billing-app-rootdisk"),
        ("billing", "billing-db-rootdisk"),
        ("billing", "billing-db-data"),
    }
    assert db.copy["metadata"]["namespace"] == N and db.copy["spec"]["template"]["spec"]["volumes"][1] == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": "billing-db-data"},
    }


def test_discovered_application_finds_its_vms_in_the_protected_namespace() -> None:
    plan = plan_of(sample("healthy"), "openshift-dr-ops/erp-drpc")
    assert [vm.key for vm in plan.vms] == ["erp/erp-ledger"]
    assert plan.allowed_source_pvcs == {("erp", "erp-ledger-rootdisk")}
    assert "interface backup (multus network default/backup-vlan300) detached" in plan.vms[0].removed[-1]


def test_canary_and_targets_come_from_the_settings_and_the_first_disk() -> None:
    target = DrillTarget(rto_seconds=300, readiness_probe={"guestAgentPing": {}})
    settings = DrillSettings(
        canary_size="2Gi",
        canary_image="registry.example.com/ubi9:9.4",
        canary_interval_seconds=0.5,
        defaults=DrillTarget(rto_seconds=600, rpo_seconds=0),
        apps={"crm/crm-drpc": target},
    )
    plan = plan_of(sample("healthy"), "crm/crm-drpc", settings=settings)
    assert plan.targets == DrillTarget(rto_seconds=300, rpo_seconds=0, readiness_probe={"guestAgentPing": {}})
    assert plan.vms[0].readiness_probe == {"guestAgentPing": {}}
    canary = plan.canary
    assert (canary.storage_class, canary.provisioner, canary.snapshot_class, canary.size) == (
        RBD_CLASS,
        RBD,
        RBD_SNAPCLASS,
        "2Gi",
    )
    assert (canary.image, canary.interval_seconds, canary.content) == (
        "registry.example.com/ubi9:9.4",
        0.5,
        content_name(DRILL, N, CANARY),
    )
    assert plan_of(sample("healthy"), "billing/billing-drpc", settings=settings).vms[0].readiness_probe is None


def test_vm_selection_by_name_or_namespace_and_name() -> None:
    estate = sample("healthy")
    assert [vm.key for vm in plan_of(estate, "billing/billing-drpc", ("billing-db",)).vms] == ["billing/billing-db"]
    both = plan_of(estate, "billing/billing-drpc", ("billing/billing-db", "billing-app", "billing-db"))
    assert [vm.key for vm in both.vms] == ["billing/billing-app", "billing/billing-db"]
    assert plan_of(estate, "billing/billing-drpc", ("billing-db",)).allowed_source_pvcs == {
        ("billing", "billing-db-rootdisk"),
        ("billing", "billing-db-data"),
    }


@pytest.mark.parametrize(
    ("app", "vms", "message"),
    [
        ("billing", (), "--app must be NAMESPACE/DRPC (the DRPlacementControl on the hub), not 'billing'"),
        ("/billing-drpc", (), "--app must be NAMESPACE/DRPC"),
        ("billing/billing-drpc/x", (), "--app must be NAMESPACE/DRPC"),
        (
            "billing/nope",
            (),
            "no DRPlacementControl billing/nope on the hub (DRPCs there: billing/billing-drpc, crm/crm-drpc, "
            "openshift-dr-ops/erp-drpc)",
        ),
        (
            "billing/billing-drpc",
            ("crm-web", "billing-db"),
            "--vm crm-web not in the VMs of DRPC billing/billing-drpc on prod-east: billing/billing-app, "
            "billing/billing-db",
        ),
    ],
)
def test_input_errors_name_the_cause(app: str, vms: tuple[str, ...], message: str) -> None:
    with pytest.raises(PlanError) as raised:
        plan_of(sample("healthy"), app, vms)
    assert message in str(raised.value)
    assert isinstance(raised.value, InputError)  # exit 2, like every input error


def test_an_application_without_vms_is_refused() -> None:
    estate = sample("healthy")
    estate.clusters["prod-east"] = without(estate.clusters["prod-east"], "VirtualMachine", "crm-web")
    with pytest.raises(
        PlanError, match=r"DRPC crm/crm-drpc protects no VirtualMachine on prod-east \(namespaces crm\)"
    ):
        plan_of(estate, "crm/crm-drpc")


def test_a_vm_without_pvc_disks_or_without_its_pvc_is_refused() -> None:
    estate = sample("healthy")
    vm = estate.clusters["prod-east"].get("VirtualMachine", "crm-web", "crm")
    volumes = vm["spec"]["template"]["spec"]["volumes"]
    vm["spec"]["template"]["spec"]["volumes"] = volumes[1:]
    with pytest.raises(PlanError, match="VMs crm/crm-web of DRPC crm/crm-drpc have no PVC-backed disk"):
        plan_of(estate, "crm/crm-drpc")
    vm["spec"]["template"]["spec"]["volumes"] = volumes
    estate.clusters["prod-east"] = without(estate.clusters["prod-east"], "PersistentVolumeClaim", "crm-web-rootdisk")
    with pytest.raises(
        PlanError, match=r"PVC crm/crm-web-rootdisk of VM crm/crm-web \(volume rootdisk\) is not on prod-east"
    ):
        plan_of(estate, "crm/crm-drpc")


def test_an_application_placed_nowhere_cannot_be_planned() -> None:
    estate = sample("healthy")
    drpc = estate.hub.get("DRPlacementControl", "crm-drpc", "crm")
    drpc["spec"]["placementRef"]["name"] = "gone"
    del drpc["status"]["preferredDecision"]
    with pytest.raises(PlanError, match="DRPC crm/crm-drpc is placed on no cluster"):
        plan_of(estate, "crm/crm-drpc")


def two_erp_namespaces() -> Estate:
    """The discovered application protecting a second namespace holding a VM and PVC of the same names."""
    estate = sample("healthy")
    drpc = estate.hub.get("DRPlacementControl", "erp-drpc", "openshift-dr-ops")
    drpc["spec"]["protectedNamespaces"] = ["erp", "erp-b"]
    east = estate.clusters["prod-east"]
    for kind, name in (("VirtualMachine", "erp-ledger"), ("PersistentVolumeClaim", "erp-ledger-rootdisk")):
        twin = copy.deepcopy(east.get(kind, name, "erp"))
        twin["metadata"]["namespace"] = "erp-b"
        east.add(twin)
    return estate


def test_name_clashes_inside_the_drill_namespace_are_refused() -> None:
    with pytest.raises(PlanError) as raised:
        plan_of(two_erp_namespaces(), "openshift-dr-ops/erp-drpc")
    message = str(raised.value)
    assert message.startswith(f"name clash in drill namespace {N}: ")
    assert (
        "PVC and VolumeSnapshot erp-ledger-rootdisk would be made for PVC erp/erp-ledger-rootdisk and PVC " in message
    )
    assert "VirtualMachine erp-ledger would be made for VM erp/erp-ledger and VM erp-b/erp-ledger" in message


def test_a_pvc_named_like_the_canary_clashes() -> None:
    estate = sample("healthy")
    east = estate.clusters["prod-east"]
    vm = east.get("VirtualMachine", "crm-web", "crm")
    vm["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = CANARY
    pvc = copy.deepcopy(east.get("PersistentVolumeClaim", "crm-web-rootdisk", "crm"))
    pvc["metadata"]["name"] = CANARY
    east.add(pvc)
    with pytest.raises(PlanError, match=f"{CANARY} would be made for PVC crm/{CANARY} and the RPO canary"):
        plan_of(estate, "crm/crm-drpc")


def test_an_ambiguous_vm_name_must_be_qualified() -> None:
    estate = two_erp_namespaces()
    with pytest.raises(PlanError, match="--vm erp-ledger is ambiguous in DRPC openshift-dr-ops/erp-drpc"):
        plan_of(estate, "openshift-dr-ops/erp-drpc", ("erp-ledger",))
    plan = plan_of(estate, "openshift-dr-ops/erp-drpc", ("erp-b/erp-ledger",))
    assert [vm.key for vm in plan.vms] == ["erp-b/erp-ledger"]


def test_a_disk_shared_by_two_vms_is_restored_once() -> None:
    estate = sample("healthy")
    app = estate.clusters["prod-east"].get("VirtualMachine", "billing-app", "billing")
    body = app["spec"]["template"]["spec"]
    body["volumes"].append({"name": "shared", "persistentVolumeClaim": {"claimName": "billing-db-data"}})
    body["domain"]["devices"]["disks"].append({"name": "shared", "disk": {"bus": "virtio"}})
    plan = plan_of(estate, "billing/billing-drpc")
    assert plan.vms[0].disks[-1] is plan.vms[1].disks[1]
    pvcs = [
        e["manifest"]["metadata"]["name"] for e in plan.preview() if e["manifest"]["kind"] == "PersistentVolumeClaim"
    ]
    assert sorted(pvcs) == sorted([CANARY, CANARY, "billing-app-rootdisk", "billing-db-rootdisk", "billing-db-data"])


def test_the_secondary_may_be_unknown_and_the_stretch_state_noted() -> None:
    estate = replace(sample("healthy"), ceph=CephData())
    estate.hub.get("DRPolicy", "odr-metro-policy")["spec"]["drClusters"] = ["prod-east", "prod-south"]
    plan = plan_of(estate, "crm/crm-drpc")
    assert plan.secondary == "prod-south" and plan.vms[0].disks[0].secondary_snapshot_class is None
    assert plan.notes == ("stretch state unknown: no Ceph osd_dump was read",)
    estate.hub.get("DRPolicy", "odr-metro-policy")["spec"]["drClusters"] = ["prod-east"]
    plan = plan_of(estate, "crm/crm-drpc")
    assert plan.secondary is None
    assert (
        plan.secondary_source
        == "DRPolicy odr-metro-policy drClusters ['prod-east'] do not name exactly one other cluster"
    )


def test_regional_policy_is_planned_as_async() -> None:
    estate = sample("healthy")
    estate.hub.get("DRPolicy", "odr-metro-policy")["spec"]["schedulingInterval"] = "5m"
    assert plan_of(estate, "crm/crm-drpc").replication == "async"


def test_preview_lists_every_object_in_creation_order() -> None:
    plan = plan_of(sample("healthy"), "crm/crm-drpc")
    preview = plan.preview()
    shown = [
        (
            e["cluster"],
            e["manifest"]["kind"],
            e["manifest"]["metadata"].get("namespace"),
            e["manifest"]["metadata"]["name"],
        )
        for e in preview
    ]
    content = content_name(DRILL, "crm", "crm-web-rootdisk")
    assert shown == [
        ("prod-east", "Namespace", None, N),
        ("prod-east", "NetworkPolicy", N, "drauditor-deny-all"),
        ("prod-west", "Namespace", None, N),
        ("prod-west", "NetworkPolicy", N, "drauditor-deny-all"),
        ("prod-east", "PersistentVolumeClaim", N, CANARY),
        ("prod-east", "Pod", N, "drauditor-canary-writer"),
        ("prod-east", "VolumeSnapshot", "crm", source_snapshot_name(DRILL, "crm-web-rootdisk")),
        ("prod-east", "VolumeSnapshot", N, CANARY),
        ("prod-west", "VolumeSnapshotContent", None, content),
        ("prod-west", "VolumeSnapshot", N, "crm-web-rootdisk"),
        ("prod-west", "PersistentVolumeClaim", N, "crm-web-rootdisk"),
        ("prod-west", "VirtualMachine", N, "crm-web"),
        ("prod-west", "VolumeSnapshotContent", None, content_name(DRILL, N, CANARY)),
        ("prod-west", "VolumeSnapshot", N, CANARY),
        ("prod-west", "PersistentVolumeClaim", N, CANARY),
        ("prod-west", "Pod", N, "drauditor-canary-reader"),
    ]
    assert all(e["manifest"]["metadata"]["labels"] == drill_labels(DRILL) for e in preview)
    handle = preview[8]["manifest"]["spec"]["source"]["snapshotHandle"]
    assert handle == f"<from VolumeSnapshot crm/{source_snapshot_name(DRILL, 'crm-web-rootdisk')} at run time>"
    pvc = preview[10]["manifest"]["spec"]
    assert pvc["dataSource"]["name"] == "crm-web-rootdisk" and pvc["resources"]["requests"]["storage"] == "30Gi"
    assert preview[11]["manifest"] == plan.vms[0].copy
