"""What one drill of one application will do, decided before anything is written: the drill planner.

``build_plan`` reads the estate the way the audit checks do (auditor.ramen for the application, its placement and
its peer; auditor.kubevirt for the VMs' disks and classes) and fixes every name and manifest up front, so ``--plan``
shows exactly what a run would create, and the guard knows which source PVCs a run may snapshot. It judges nothing:
whether the drill may run is ``preflight``'s business.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from auditor.ceph import stretch_degraded
from auditor.config import DrillSettings, DrillTarget
from auditor.drill import objects
from auditor.drill.names import CANARY, content_name, drill_namespace, source_snapshot_name
from auditor.errors import InputError
from auditor.inventory import Estate, Inventory, Obj, meta, name_of, namespace_of
from auditor.kubevirt import claim_storage_class, volumes
from auditor.ramen import (
    Application,
    applications,
    applications_by_namespace,
    is_metro,
    peer_cluster,
    protecting_application,
)

# The annotation external-snapshotter reads to pick a VolumeSnapshotClass for a driver when none is named.
DEFAULT_SNAPSHOT_CLASS = "snapshot.storage.kubernetes.io/is-default-class"
# Disk volume sources: the ones whose data lives on a PVC of the VM's namespace (DataVolume name == PVC name).
DISK_SOURCES = ("dataVolume", "persistentVolumeClaim")
SNAPSHOT_HANDLE_AT_RUN_TIME = "<from VolumeSnapshot {namespace}/{name} at run time>"


class PlanError(InputError):
    """The drill cannot be planned as asked: the message names the application, VM or name at fault."""


@dataclass(frozen=True)
class DiskPlan:
    """One protected disk: its PVC on the primary and what the drill makes of it on both clusters."""

    volume: str  # the VM volume's name
    source: str  # dataVolume or persistentVolumeClaim
    namespace: str
    pvc: str  # also the name of the restored VolumeSnapshot and PVC in the drill namespace
    pvc_uid: str
    storage_class: str | None
    provisioner: str | None  # the StorageClass's provisioner on the primary = the CSI driver; None: class unknown
    snapshot_class: str | None  # the primary's VolumeSnapshotClass for that driver
    secondary_snapshot_class: str | None
    size: str  # the source PVC's storage request
    volume_mode: str | None
    access_modes: tuple[str, ...]
    phase: str | None  # the source PVC's status.phase
    source_snapshot: str  # the VolumeSnapshot in ``namespace`` on the primary
    content: str  # the VolumeSnapshotContent on the secondary

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.pvc}"


@dataclass(frozen=True)
class VmPlan:
    namespace: str
    name: str
    uid: str
    disks: tuple[DiskPlan, ...]
    copy: dict[str, Any]  # the VirtualMachine manifest created on the secondary
    removed: tuple[str, ...]  # what the copy leaves out of the source VM, in words
    readiness_probe: dict[str, Any] | None  # the copy's readinessProbe: the drill waits for Ready only with one

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class CanaryPlan:
    """The RPO canary: a PVC of the first disk's class, written on the primary, snapshotted and read on the
    secondary."""

    storage_class: str | None
    provisioner: str | None
    snapshot_class: str | None
    secondary_snapshot_class: str | None
    size: str
    image: str
    interval_seconds: float
    content: str


@dataclass(frozen=True)
class DrillPlan:
    drill_id: str
    app_namespace: str
    app_name: str
    primary: str
    secondary: str | None  # None: the DRPolicy names no peer (preflight refuses)
    secondary_source: str  # what named the secondary, or why there is none
    policy: str | None
    replication: str | None  # "sync" (Metro-DR), "async" (Regional-DR), None when the DRPolicy is missing
    vms: tuple[VmPlan, ...]
    canary: CanaryPlan
    targets: DrillTarget
    notes: tuple[str, ...]  # facts a reader of the plan should know that are not refusals

    @property
    def namespace(self) -> str:
        return drill_namespace(self.drill_id)

    @property
    def app(self) -> str:
        return f"{self.app_namespace}/{self.app_name}"

    @property
    def disks(self) -> tuple[DiskPlan, ...]:
        """Every protected disk once, in VM order (a disk shared by two VMs is restored once)."""
        seen: dict[str, DiskPlan] = {}
        for vm in self.vms:
            for disk in vm.disks:
                seen.setdefault(disk.key, disk)
        return tuple(seen.values())

    @property
    def allowed_source_pvcs(self) -> frozenset[tuple[str, str]]:
        """The (namespace, PVC) pairs the guard lets this drill snapshot outside its namespace."""
        return frozenset((disk.namespace, disk.pvc) for disk in self.disks)

    def preview(self) -> list[dict[str, Any]]:
        """Every object the drill would create, in creation order, each with its cluster and full manifest.

        A restored content's snapshotHandle exists only once the primary's snapshot is ready, so it is shown as
        where it will come from. The runner creates exactly these manifests, through the same methods.
        """
        created = list(self.preparation())
        disks, canary = self.snapshots()
        created += [(self.primary, manifest) for manifest in (*disks, canary)]
        restored: set[str] = set()
        for vm in self.vms:
            for disk in vm.disks:
                if disk.key not in restored:
                    restored.add(disk.key)
                    handle = SNAPSHOT_HANDLE_AT_RUN_TIME.format(namespace=disk.namespace, name=disk.source_snapshot)
                    created += [(self.secondary, obj) for obj in self.restore(disk, handle)]
            created.append((self.secondary, vm.copy))
        handle = SNAPSHOT_HANDLE_AT_RUN_TIME.format(namespace=self.namespace, name=CANARY)
        created += [(self.secondary, obj) for obj in self.canary_restore(handle)]
        return [{"cluster": cluster, "manifest": manifest} for cluster, manifest in created]

    def preparation(self) -> list[tuple[str | None, Obj]]:
        """Before T0: the drill namespace and its deny-all policy on both clusters, the canary and its writer."""
        d, canary = self.drill_id, self.canary
        created: list[tuple[str | None, Obj]] = []
        for cluster in (self.primary, self.secondary):
            created += [(cluster, objects.namespace(d)), (cluster, objects.deny_all_policy(d))]
        created += [
            (self.primary, objects.canary_pvc(d, canary.storage_class, canary.size)),
            (self.primary, objects.canary_writer(d, canary.image, canary.interval_seconds)),
        ]
        return created

    def snapshots(self) -> tuple[list[Obj], Obj]:
        """At T0, on the primary: a snapshot of every protected disk, then the canary's."""
        d = self.drill_id
        disks = [
            objects.volume_snapshot(d, disk.namespace, disk.source_snapshot, disk.pvc, disk.snapshot_class)
            for disk in self.disks
        ]
        return disks, objects.volume_snapshot(d, self.namespace, CANARY, CANARY, self.canary.snapshot_class)

    def restore(self, disk: DiskPlan, handle: str) -> list[Obj]:
        """On the secondary: the disk's snapshot under its primary ``handle``, bound, and a PVC restored from it."""
        d = self.drill_id
        return [
            self._content(disk.content, disk.provisioner, handle, disk.volume_mode, disk, disk.pvc),
            objects.restored_snapshot(d, disk.pvc, disk.content, disk.secondary_snapshot_class),
            objects.restored_pvc(
                d,
                disk.pvc,
                storage_class=disk.storage_class,
                access_modes=list(disk.access_modes),
                volume_mode=disk.volume_mode,
                size=disk.size,
                snapshot=disk.pvc,
            ),
        ]

    def canary_restore(self, handle: str) -> list[Obj]:
        """On the secondary: the canary's snapshot, its restored PVC and the pod that reads it back."""
        d, canary = self.drill_id, self.canary
        return [
            self._content(canary.content, canary.provisioner, handle, "Filesystem", canary, CANARY),
            objects.restored_snapshot(d, CANARY, canary.content, canary.secondary_snapshot_class),
            objects.canary_pvc(d, canary.storage_class, canary.size, snapshot=CANARY),
            objects.canary_reader(d, canary.image),
        ]

    def _content(
        self, name: str, driver: str | None, handle: str, mode: str | None, of: DiskPlan | CanaryPlan, snapshot: str
    ) -> Obj:
        return objects.snapshot_content(
            self.drill_id,
            name,
            driver=driver or "<unknown: no StorageClass on the primary>",
            snapshot_handle=handle,
            volume_mode=mode,
            snapshot_class=of.secondary_snapshot_class,
            snapshot_name=snapshot,
        )


def build_plan(
    estate: Estate, app: str, vm_names: tuple[str, ...], drill_id: str, settings: DrillSettings
) -> DrillPlan:
    """The plan for drilling ``app`` ("NAMESPACE/DRPC"), limited to ``vm_names`` when any are given."""
    application = _application(estate, app)
    primary = application.placement_cluster
    if primary is None:
        raise PlanError(f"DRPC {application.key} is placed on no cluster ({application.placement_source})")
    inventory = estate.clusters.get(primary)
    if inventory is None:
        raise PlanError(f"DRPC {application.key} places the application on {primary}, which was not read")
    secondary, secondary_source = peer_cluster(estate.hub, application)
    peer = estate.clusters.get(secondary) if secondary else None
    policy = estate.hub.get("DRPolicy", application.policy_name) if application.policy_name else None
    targets = settings.target_for(application.namespace, application.name)

    source_vms = _chosen_vms(estate, application, inventory, vm_names)
    disks: dict[tuple[str, str], DiskPlan] = {}
    vms = []
    for vm in source_vms:
        planned = []
        for ref in volumes(vm):
            if ref.source not in DISK_SOURCES or not ref.pvc:
                continue
            key = (namespace_of(vm) or "", ref.pvc)
            if key not in disks:
                disks[key] = _disk(inventory, peer, vm, ref.volume, ref.source, ref.pvc, drill_id)
            planned.append(disks[key])
        copy, removed = objects.vm_copy(vm, drill_id, primary, targets.readiness_probe)
        probe = copy["spec"].get("template", {}).get("spec", {}).get("readinessProbe")
        vms.append(
            VmPlan(namespace_of(vm) or "", name_of(vm), meta(vm).get("uid", ""), tuple(planned), copy, removed, probe)
        )

    first = next((disk for vm in vms for disk in vm.disks), None)
    if first is None:
        names = ", ".join(vm.key for vm in vms)
        raise PlanError(
            f"VMs {names} of DRPC {application.key} have no PVC-backed disk: nothing is replicated to drill"
        )
    canary = CanaryPlan(
        storage_class=first.storage_class,
        provisioner=first.provisioner,
        snapshot_class=first.snapshot_class,
        secondary_snapshot_class=first.secondary_snapshot_class,
        size=settings.canary_size,
        image=settings.canary_image,
        interval_seconds=settings.canary_interval_seconds,
        content=content_name(drill_id, drill_namespace(drill_id), CANARY),
    )
    degraded, stretch = stretch_degraded(estate.ceph)
    plan = DrillPlan(
        drill_id=drill_id,
        app_namespace=application.namespace,
        app_name=application.name,
        primary=primary,
        secondary=secondary,
        secondary_source=secondary_source,
        policy=application.policy_name,
        replication=None if policy is None else "sync" if is_metro(policy) else "async",
        vms=tuple(vms),
        canary=canary,
        targets=targets,
        notes=(stretch,) if degraded is None else (),
    )
    _check_names(plan)
    return plan


def _application(estate: Estate, app: str) -> Application:
    namespace, _, name = app.partition("/")
    if not namespace or not name or "/" in name:
        raise PlanError(f"--app must be NAMESPACE/DRPC (the DRPlacementControl on the hub), not {app!r}")
    apps = applications(estate.hub)
    for application in apps:
        if application.key == app:
            return application
    known = ", ".join(a.key for a in apps) or "none"
    raise PlanError(f"no DRPlacementControl {app} on the hub (DRPCs there: {known})")


def _chosen_vms(estate: Estate, app: Application, inventory: Inventory, vm_names: tuple[str, ...]) -> list[Obj]:
    """The application's VMs on its primary, judged as the checks judge them (protecting_application), then those
    asked for. A name may be "NAME" or "NAMESPACE/NAME" (a discovered application may span namespaces)."""
    candidates = applications_by_namespace(applications(estate.hub))
    owned = [
        vm
        for namespace in app.workload_namespaces
        for vm in sorted(inventory.in_namespace("VirtualMachine", namespace), key=name_of)
        if _key_of(protecting_application(inventory, vm, candidates.get(namespace, []))) == app.key
    ]
    if not owned:
        where = ", ".join(app.workload_namespaces)
        raise PlanError(f"DRPC {app.key} protects no VirtualMachine on {inventory.name} (namespaces {where})")
    if not vm_names:
        return owned
    chosen, unknown = [], []
    for wanted in dict.fromkeys(vm_names):
        found = [vm for vm in owned if wanted in (name_of(vm), f"{namespace_of(vm)}/{name_of(vm)}")]
        if len(found) > 1:
            raise PlanError(f"--vm {wanted} is ambiguous in DRPC {app.key}: give it as NAMESPACE/NAME")
        if found:
            chosen.extend(found)
        else:
            unknown.append(wanted)
    if unknown:
        names = ", ".join(f"{namespace_of(vm)}/{name_of(vm)}" for vm in owned)
        raise PlanError(f"--vm {', '.join(unknown)} not in the VMs of DRPC {app.key} on {inventory.name}: {names}")
    return [vm for vm in owned if any(vm is c for c in chosen)]


def _key_of(app: Application | None) -> str | None:
    return app.key if app else None


def _disk(
    inventory: Inventory, peer: Inventory | None, vm: Obj, volume: str, source: str, claim: str, drill_id: str
) -> DiskPlan:
    namespace = namespace_of(vm) or ""
    pvc = inventory.get("PersistentVolumeClaim", claim, namespace)
    if pvc is None:
        raise PlanError(
            f"PVC {namespace}/{claim} of VM {namespace}/{name_of(vm)} (volume {volume}) is not on {inventory.name}: "
            "there is no disk to snapshot"
        )
    spec = pvc.get("spec") or {}
    storage_class = claim_storage_class(inventory, vm, claim).storage_class
    provisioner = _provisioner(inventory, storage_class)
    return DiskPlan(
        volume=volume,
        source=source,
        namespace=namespace,
        pvc=claim,
        pvc_uid=meta(pvc).get("uid", ""),
        storage_class=storage_class,
        provisioner=provisioner,
        snapshot_class=snapshot_class_for(inventory, provisioner),
        secondary_snapshot_class=snapshot_class_for(peer, provisioner),
        size=str(((spec.get("resources") or {}).get("requests") or {}).get("storage", "")),
        volume_mode=spec.get("volumeMode"),
        access_modes=tuple(spec.get("accessModes") or ()),
        phase=(pvc.get("status") or {}).get("phase"),
        source_snapshot=source_snapshot_name(drill_id, claim),
        content=content_name(drill_id, namespace, claim),
    )


def _provisioner(inventory: Inventory, storage_class: str | None) -> str | None:
    found = inventory.get("StorageClass", storage_class) if storage_class else None
    return (found or {}).get("provisioner")


def snapshot_class_for(inventory: Inventory | None, driver: str | None) -> str | None:
    """The VolumeSnapshotClass of ``inventory`` for CSI ``driver``: the one annotated as default when there is one
    (external-snapshotter's own rule), else the first by name."""
    if inventory is None or driver is None:
        return None
    classes = [c for c in inventory.list("VolumeSnapshotClass") if c.get("driver") == driver]
    preferred = sorted(
        classes, key=lambda c: ((meta(c).get("annotations") or {}).get(DEFAULT_SNAPSHOT_CLASS) != "true", name_of(c))
    )
    return name_of(preferred[0]) if preferred else None


def _check_names(plan: DrillPlan) -> None:
    """Objects from several source namespaces meet in one drill namespace: two with one name there cannot both exist.

    Names also shared by kind: a restored PVC and its VolumeSnapshot take the source PVC's name, the canary's PVC and
    snapshot are ``drauditor-canary``; contents are cluster-scoped.
    """
    users: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for disk in plan.disks:
        users["PVC and VolumeSnapshot"][disk.pvc].append(f"PVC {disk.key}")
        users["VolumeSnapshotContent"][disk.content].append(f"PVC {disk.key}")
        users[f"VolumeSnapshot in {disk.namespace}"][disk.source_snapshot].append(f"PVC {disk.key}")
    users["PVC and VolumeSnapshot"][CANARY].append("the RPO canary")
    users["VolumeSnapshotContent"][plan.canary.content].append("the RPO canary")
    for vm in plan.vms:
        users["VirtualMachine"][vm.name].append(f"VM {vm.key}")
    clashes = [
        f"{kind} {name} would be made for {' and '.join(sources)}"
        for kind, names in users.items()
        for name, sources in names.items()
        if len(sources) > 1
    ]
    if clashes:
        raise PlanError(f"name clash in drill namespace {plan.namespace}: {'; '.join(clashes)}")
