"""Why a planned drill must not run: one sentence per refusal, each naming the object at fault.

A drill that starts on an application Ramen does not protect right now, or on storage that cannot restore the
snapshot on the peer, proves nothing and leaves objects behind; so those cases are refused before the first write.
The same facts the audit checks read (DRPC conditions, the primary VRG, StorageClasses, the Ceph stretch state),
read with the same helpers. Whether a refusal may be overridden (``--force``) is the runner's decision.
"""

from __future__ import annotations

from auditor.ceph import stretch_degraded
from auditor.drill.plan import DiskPlan, DrillPlan
from auditor.inventory import Estate, Inventory
from auditor.kubevirt import instancetype_ref, preference_ref
from auditor.ramen import policy_kind, protected_pvcs, quote_condition, unmet_conditions

DRPC_CONDITIONS = ("Available", "PeerReady", "Protected")


def preflight(estate: Estate, plan: DrillPlan) -> list[str]:
    """Every reason ``plan`` must not run; empty when it may."""
    refusals = _application(estate, plan)
    primary = estate.clusters[plan.primary]
    secondary = estate.clusters.get(plan.secondary) if plan.secondary else None
    refusals += _protection(primary, plan)
    refusals += _snapshot_classes(primary, secondary, plan)
    if secondary is not None:
        refusals += _peer_storage_classes(secondary, plan)
    refusals += _namespaced_instancetypes(primary, plan)
    degraded, state = stretch_degraded(estate.ceph)
    if degraded:
        refusals.append(f"The stretched Ceph cluster under both sites is not whole: {state}.")
    return refusals


def _application(estate: Estate, plan: DrillPlan) -> list[str]:
    refusals = []
    drpc = estate.hub.get("DRPlacementControl", plan.app_name, plan.app_namespace)
    for condition_type, condition in unmet_conditions(drpc or {}, DRPC_CONDITIONS).items():
        refusals.append(f"DRPC {plan.app} is not {condition_type}: {quote_condition(condition_type, condition)}.")
    policy = estate.hub.get("DRPolicy", plan.policy) if plan.policy else None
    if plan.replication == "async" and policy is not None:
        refusals.append(
            "Regional-DR drills (restore from the mirrored image) are not implemented; "
            f"DRPolicy {plan.policy} of DRPC {plan.app} is {policy_kind(policy)}."
        )
    if plan.secondary is None:
        refusals.append(f"The peer cluster of DRPC {plan.app} is unknown: {plan.secondary_source}.")
    elif plan.secondary not in estate.clusters:
        refusals.append(
            f"The peer cluster {plan.secondary} of DRPC {plan.app} ({plan.secondary_source}) was not read, so the "
            "drill cannot check or use it."
        )
    return refusals


def _protection(primary: Inventory, plan: DrillPlan) -> list[str]:
    """The VRG on the primary must be Primary and list every disk: a disk Ramen does not protect is not on the
    peer after a real failover, so a drill restoring it would prove the wrong thing."""
    vrg_namespace, vrg_name = plan.app_namespace, plan.app_name
    vrg = primary.get("VolumeReplicationGroup", vrg_name, vrg_namespace)
    where = f"VolumeReplicationGroup {vrg_namespace}/{vrg_name} on {plan.primary}"
    if vrg is None:
        return [f"There is no {where}: Ramen protects nothing of DRPC {plan.app} there."]
    refusals = []
    state = (vrg.get("status") or {}).get("state")
    if state != "Primary":
        refusals.append(f"{where} is {state or 'in no state'}, not Primary.")
    protected = protected_pvcs(vrg)
    for disk in plan.disks:
        if (disk.namespace, disk.pvc) not in protected:
            refusals.append(f"PVC {disk.key} is not listed in the status.protectedPVCs of {where}.")
        if disk.phase != "Bound":
            refusals.append(f"PVC {disk.key} on {plan.primary} is {disk.phase or 'in no phase'}, not Bound.")
    return refusals


def _snapshot_classes(primary: Inventory, secondary: Inventory | None, plan: DrillPlan) -> list[str]:
    """One refusal per (cluster, driver): a disk whose driver has no VolumeSnapshotClass cannot be snapshotted on the
    primary, nor bound as pre-provisioned content with the driver's snapshotter secrets on the secondary."""
    refusals = []
    by_class: dict[str, list[DiskPlan]] = {}
    for disk in plan.disks:
        if disk.provisioner is None:
            what = f"StorageClass {disk.storage_class}" if disk.storage_class else "no StorageClass"
            refusals.append(
                f"PVC {disk.key} uses {what}, which {plan.primary} does not have: its CSI driver is unknown."
            )
        else:
            by_class.setdefault(disk.provisioner, []).append(disk)
    sides = [(primary, "snapshot_class")] + ([(secondary, "secondary_snapshot_class")] if secondary else [])
    for inventory, attribute in sides:
        for driver, disks in by_class.items():
            if any(getattr(disk, attribute) is None for disk in disks):
                pvcs = ", ".join(disk.key for disk in disks)
                why = inventory.unavailable.get("VolumeSnapshotClass")
                read = f" (VolumeSnapshotClasses could not be read: {why})" if why else ""
                refusals.append(
                    f"{inventory.name} has no VolumeSnapshotClass for CSI driver {driver}{read}, which PVC {pvcs} "
                    "needs."
                )
    return refusals


def _peer_storage_classes(secondary: Inventory, plan: DrillPlan) -> list[str]:
    """The restored PVC asks the secondary for the source's StorageClass by name; only the same provisioner can
    create a volume from the shared Ceph snapshot."""
    refusals = []
    seen: set[str] = set()
    for disk in plan.disks:
        if disk.storage_class is None or disk.provisioner is None or disk.storage_class in seen:
            continue
        seen.add(disk.storage_class)
        found = secondary.get("StorageClass", disk.storage_class)
        if found is None:
            refusals.append(f"{secondary.name} has no StorageClass {disk.storage_class}, which PVC {disk.key} uses.")
        elif found.get("provisioner") != disk.provisioner:
            refusals.append(
                f"StorageClass {disk.storage_class} on {secondary.name} is provisioned by {found.get('provisioner')}, "
                f"not {disk.provisioner} as on {plan.primary}."
            )
    return refusals


def _namespaced_instancetypes(primary: Inventory, plan: DrillPlan) -> list[str]:
    """A namespaced instancetype or preference is looked up in the VM's own namespace, and the copy lives in the
    drill namespace, where the drill creates none."""
    refusals = []
    for vm in plan.vms:
        source = primary.get("VirtualMachine", vm.name, vm.namespace) or {}
        for ref in (instancetype_ref(source), preference_ref(source)):
            if ref is not None and ref.namespace is not None:
                refusals.append(
                    f"VM {vm.key} uses the namespaced {ref.display()}, which the drill namespace {plan.namespace} "
                    "does not have."
                )
    return refusals
