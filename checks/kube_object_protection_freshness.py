"""Is every protected VM in the kube-object capture a failover would restore?

Ramen replicates a VM's disks continuously, but its VirtualMachine object only through kube-object protection:
a Velero capture to the S3 stores every spec.kubeObjectProtection.captureInterval (default 5m). A failover
restores the capture the VRG last recorded, so a VM created after it comes back without its VirtualMachine (only
its PVCs), and a VM changed after it comes back as it was (RamenDR/ramen#2825), while the DRPC is green.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from auditor.context import AuditContext
from auditor.inventory import Inventory, Obj, meta, name_of, namespace_of
from auditor.kubevirt import out_of_scope
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ramen import Application, applications, applications_by_namespace, protecting_application
from auditor.timeutil import human_age, parse_go_duration, parse_time, rfc3339

META = CheckMeta(
    id="kube_object_protection_freshness",
    title="Kube-object captures include every protected VM",
    severity=Severity.HIGH,
    description=(
        "For every protected VirtualMachine: its creation time, and when its generation shows a spec change its "
        "newest managedFields time, against the last kube-object capture of its DRPC (the older of DRPC "
        "status.lastKubeObjectProtectionTime and the primary VRG's status.kubeObjectProtection.captureToRecoverFrom"
        ".endTime). For every DRPC with spec.kubeObjectProtection: the age of that capture against 3x its "
        "captureInterval (default 5m). DRPCs without kube-object protection are judged by Ramen's rule: a GitOps "
        "application is redeployed from its source, a discovered application loses its VMs."
    ),
    rationale=(
        "A failover restores VirtualMachine objects only from the last completed capture. VMs added or changed "
        "after it come back missing or stale while PVC replication and the DRPC look healthy (RamenDR/ramen#2825); "
        "a capture that stopped advancing makes every later change unrecoverable."
    ),
    remediation=(
        "Wait for the next capture (DRPC status.lastKubeObjectProtectionTime newer than the VM) before relying on a "
        "failover, or shorten spec.kubeObjectProtection.captureInterval. If captures stopped, check the primary "
        "VRG's ClusterDataProtected and KubeObjectsReady conditions, the Velero/OADP pods and the S3 profiles. Give "
        "discovered applications a spec.kubeObjectProtection (recipe or kubeObjectSelector)."
    ),
    kinds_read=(
        "VirtualMachine",
        "PersistentVolumeClaim",
        "VolumeReplicationGroup",
        "DRPlacementControl",
        "Placement",
        "PlacementDecision",
    ),
)

# Ramen's default capture interval (api/v1alpha1 KubeObjectProtectionCaptureIntervalDefault).
DEFAULT_CAPTURE_INTERVAL = timedelta(minutes=5)
# Ramen starts a capture one interval after the previous one started, so a healthy capture is at most about one
# interval (plus its own duration) old; three intervals means at least two captures in a row did not complete.
STALLED_AFTER_INTERVALS = 3


class _Capture:
    """The last capture a failover of one application would restore, as both the hub and the primary record it."""

    def __init__(self, app: Application, vrg: Obj | None) -> None:
        self.kube_object_protection = (app.drpc.get("spec") or {}).get("kubeObjectProtection")
        given = (self.kube_object_protection or {}).get("captureInterval")
        parsed = parse_go_duration(given)
        self.interval = parsed if parsed and parsed > timedelta(0) else DEFAULT_CAPTURE_INTERVAL
        self.interval_label = given if self.interval == parsed else "5m (Ramen's default)"
        self.drpc_time = parse_time((app.drpc.get("status") or {}).get("lastKubeObjectProtectionTime"))
        capture = (((vrg or {}).get("status") or {}).get("kubeObjectProtection") or {}).get("captureToRecoverFrom")
        self.vrg_start = parse_time((capture or {}).get("startTime"))
        self.vrg_end = parse_time((capture or {}).get("endTime"))
        # Ramen copies the VRG's endTime into the DRPC, but the hub sees the VRG only through a ManagedClusterView
        # and a failover restores the capture named by the VRG copy in the S3 store, uploaded throttled. Either
        # record may be behind the other; the older one is the newest capture both are sure of.
        times = [t for t in (self.drpc_time, self.vrg_end) if t is not None]
        self.time: datetime | None = min(times) if times else None
        # The capture window: a VM written while Velero was listing objects may or may not be in it.
        self.start = self.vrg_start if self.vrg_start and self.time == self.vrg_end else None

    def to_evidence(self) -> dict:
        return {
            "drpc_last_kube_object_protection_time": _iso(self.drpc_time),
            "vrg_capture_start_time": _iso(self.vrg_start),
            "vrg_capture_end_time": _iso(self.vrg_end),
            "capture_used": _iso(self.time),
            "capture_interval": self.interval_label,
            "capture_interval_seconds": int(self.interval.total_seconds()),
        }


def _iso(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment else None


def run(ctx: AuditContext) -> list[Finding]:
    apps = applications(ctx.estate.hub)
    captures = {app.key: _Capture(app, _primary_vrg(ctx, app)) for app in apps}
    candidates_by_namespace = applications_by_namespace(apps)
    findings = []
    for cluster, inventory in sorted(ctx.estate.clusters.items()):
        for vm in inventory.list("VirtualMachine"):
            namespace = namespace_of(vm) or ""
            app = protecting_application(inventory, vm, candidates_by_namespace.get(namespace, []))
            if app is None:
                continue  # not protected at all: vm_dr_coverage reports it
            if ctx.config.scope.excludes(namespace):
                findings.append(out_of_scope(META, cluster, vm))
                continue
            findings.append(_vm_finding(cluster, vm, app, captures[app.key]))
    if not findings:
        findings.append(
            META.finding(
                Status.SKIP, "No VirtualMachine protected by a DRPC on the managed clusters read: no VM to judge."
            )
        )
    findings += [_drpc_finding(ctx, app, captures[app.key]) for app in apps]
    return findings


def _primary_vrg(ctx: AuditContext, app: Application) -> Obj | None:
    inventory: Inventory | None = ctx.estate.clusters.get(app.placement_cluster or "")
    return inventory.get("VolumeReplicationGroup", app.name, app.vrg_namespace) if inventory else None


def _last_change(vm: Obj) -> tuple[datetime | None, datetime | None, str, bool]:
    """When the VM was created and last changed, how the change time was known, and whether every change is dated.

    A generation above 1 means the spec changed after creation. The apiserver stamps every writer's last write in
    metadata.managedFields; writes to the status subresource (virt-controller, constantly) do not change what a
    capture restores and are left out. Without managedFields (kubectl get hides them) only the creation is known.
    """
    metadata = meta(vm)
    created = parse_time(metadata.get("creationTimestamp"))
    generation = metadata.get("generation") or 1
    if generation <= 1:
        return created, created, "creationTimestamp (generation 1: the spec never changed)", True
    writes = [
        moment
        for entry in metadata.get("managedFields") or []
        if entry.get("subresource") != "status" and (moment := parse_time(entry.get("time"))) is not None
    ]
    if not writes:
        return (
            created,
            created,
            (
                f"creationTimestamp only: generation {generation} shows later spec changes, but the snapshot holds no "
                "managedFields to date them"
            ),
            False,
        )
    newest = max([*writes, *([created] if created else [])])
    return created, newest, f"newest metadata.managedFields time (generation {generation})", True


def _vm_finding(cluster: str, vm: Obj, app: Application, capture: _Capture) -> Finding:
    namespace, name = namespace_of(vm) or "", name_of(vm)
    vm_label = f"VM {namespace}/{name} on {cluster}"
    created, changed, change_source, dated = _last_change(vm)
    evidence = {
        "vm": {"cluster": cluster, "namespace": namespace, "name": name},
        "drpc": app.key,
        "discovered_application": app.discovered,
        "created": _iso(created),
        "last_change": _iso(changed),
        "last_change_source": change_source,
        **capture.to_evidence(),
    }

    def finding(status: Status, message: str) -> Finding:
        return META.finding(status, message, cluster=cluster, resource=ResourceRef.of(vm), evidence=evidence)

    if app.placement_cluster != cluster:
        return finding(
            Status.SKIP,
            f"{vm_label} is not where DRPC {app.key} places its application ({app.placement_cluster or 'nowhere'}), "
            "so no capture of that DRPC covers it; vm_dr_coverage reports the mismatch.",
        )
    if capture.kube_object_protection is None:
        if app.discovered:
            return finding(
                Status.FAIL,
                f"{vm_label} would be missing after a failover: DRPC {app.key} protects it as a discovered "
                "application without spec.kubeObjectProtection, so Ramen captures no VirtualMachine objects and only "
                "its PVCs are replicated.",
            )
        return finding(
            Status.SKIP,
            f"{vm_label}: DRPC {app.key} has no spec.kubeObjectProtection; Ramen captures no kube objects and the "
            "application's GitOps source (its Placement) recreates the VM on the failover cluster.",
        )
    if capture.time is None:
        return finding(
            Status.FAIL,
            f"{vm_label} would be missing after a failover: DRPC {app.key} has no completed kube-object capture "
            "(no DRPC status.lastKubeObjectProtectionTime, no VRG captureToRecoverFrom).",
        )
    if changed is None:
        return finding(Status.WARN, f"{vm_label} has no readable creationTimestamp; its capture cannot be dated.")

    when = f"the last kube-object capture of DRPC {app.key} at {rfc3339(capture.time)}"
    gitops = "" if app.discovered else " unless the application's GitOps source also defines it"
    if created is not None and created > capture.time:
        return finding(
            Status.FAIL,
            f"{vm_label} was created at {rfc3339(created)}, after {when}: its VirtualMachine would be missing after "
            f"a failover{gitops}.",
        )
    if changed > capture.time:
        return finding(
            Status.FAIL,
            f"{vm_label} was changed at {rfc3339(changed)}, after {when}: it would come back stale after a "
            f"failover{gitops}.",
        )
    if capture.start is not None and changed >= capture.start:
        return finding(
            Status.WARN,
            f"{vm_label} was written at {rfc3339(changed)}, while {when} was running (started "
            f"{rfc3339(capture.start)}): the capture may hold it as it was before.",
        )
    if not dated:
        return finding(
            Status.PASS,
            f"{vm_label}, created at {rfc3339(changed)}, is in {when}; its later spec changes cannot be dated (the "
            "snapshot holds no managedFields).",
        )
    return finding(Status.PASS, f"{vm_label}, last changed at {rfc3339(changed)}, is in {when}.")


def _drpc_finding(ctx: AuditContext, app: Application, capture: _Capture) -> Finding:
    evidence = {"drpc": app.key, "discovered_application": app.discovered, "capture_age": None, **capture.to_evidence()}

    def finding(status: Status, message: str) -> Finding:
        return META.finding(status, message, cluster="hub", resource=ResourceRef.of(app.drpc), evidence=evidence)

    if capture.kube_object_protection is None:
        if app.discovered:
            return finding(
                Status.FAIL,
                f"DRPC {app.key} protects a discovered application without spec.kubeObjectProtection: no GitOps "
                "source redeploys it and Ramen captures none of its objects, so a failover brings back only PVCs.",
            )
        return finding(
            Status.SKIP,
            f"DRPC {app.key} has no spec.kubeObjectProtection: its objects come back from the application's GitOps "
            "source, not from Ramen captures.",
        )
    if capture.time is None:
        return finding(
            Status.FAIL,
            f"DRPC {app.key} has kube-object protection but no completed capture: a failover would restore none of "
            "its VirtualMachine objects.",
        )
    age = ctx.now - capture.time
    limit = capture.interval * STALLED_AFTER_INTERVALS
    evidence.update(capture_age=human_age(age), capture_age_seconds=int(age.total_seconds()))
    evidence["stalled_after"] = human_age(limit)
    if age > limit:
        return finding(
            Status.WARN,
            f"The last kube-object capture of DRPC {app.key} is {human_age(age)} old (at {rfc3339(capture.time)}), "
            f"more than {STALLED_AFTER_INTERVALS}x its {capture.interval_label} interval: captures have "
            "stalled, and every VM change since would be lost in a failover.",
        )
    return finding(
        Status.PASS,
        f"The last kube-object capture of DRPC {app.key} is {human_age(age)} old (at {rfc3339(capture.time)}), "
        f"within {STALLED_AFTER_INTERVALS}x its {capture.interval_label} interval.",
    )
