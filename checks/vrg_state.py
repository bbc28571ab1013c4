"""Do the VolumeReplicationGroups of every application stand as a failover needs them?

Ramen replicates an application through one VRG per cluster, named like its DRPC: Primary where the application
runs, Secondary on the peer that would take it over. A failover needs both, the primary's data and cluster data
(PV/PVC metadata in S3, kube objects) protected, and every PVC it protects present and Bound. The DRPC on the hub
summarises this only as Protected; this check reads the VRGs themselves, as ramenctl `validate application` does.
"""

from __future__ import annotations

from auditor.context import AuditContext
from auditor.inventory import Inventory, Obj, conditions, meta
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ramen import (
    Application,
    applications,
    peer_cluster,
    protected_pvcs,
    quote_condition,
    unhealthy_pvc_conditions,
    unmet_conditions,
)

META = CheckMeta(
    id="vrg_state",
    title="Each application has its primary and secondary VolumeReplicationGroup in good state",
    severity=Severity.CRITICAL,
    description=(
        "For every DRPlacementControl: the VolumeReplicationGroup named like it is Primary (spec.replicationState "
        "primary, status.state Primary) on the cluster the application is placed on and Secondary on the other "
        "cluster of its DRPolicy; conditions DataReady, ClusterDataReady, ClusterDataProtected, KubeObjectsReady and "
        "NoClusterDataConflict are True unless Ramen marks them Unused (as it does on a secondary); its status is "
        "current (observedGeneration); every PVC in the primary's status.protectedPVCs exists, is Bound and has "
        "healthy per-PVC conditions."
    ),
    rationale=(
        "Without a secondary VRG there is nothing on the peer to promote; without a healthy primary the data, the "
        "PV/PVC cluster data in S3 or the kube objects a failover restores are not protected; a protected PVC that "
        "is gone or Pending leaves a disk that will not come back."
    ),
    remediation=(
        "On the named cluster inspect the VRG (`oc get vrg -n NAMESPACE NAME -o yaml`) and act on the condition "
        "reason: UploadError means the S3 profile is unreachable or misconfigured (check the s3 secret and bucket "
        "named in the Ramen config), ClusterDataConflict means PVCs matching the selector exist on both clusters. "
        "A missing VRG is recreated by the Ramen hub operator through its ManifestWork: check the DRPC and the "
        "ManifestWork on the hub. Bind or restore a missing or Pending PVC before relying on a failover."
    ),
    kinds_read=(
        "VolumeReplicationGroup",
        "PersistentVolumeClaim",
        "DRPlacementControl",
        "DRPolicy",
        "Placement",
        "PlacementDecision",
        "PlacementRule",
    ),
)

CONDITIONS = ("DataReady", "ClusterDataReady", "ClusterDataProtected", "KubeObjectsReady", "NoClusterDataConflict")
# Added in Ramen 2025 (ODF 4.18): a VRG of an older Ramen never reports them, which is version skew, not a fault.
# A Ramen that knows them sets every one at its first reconcile (setVRGInitialCondition), so absence means old.
LATER_CONDITIONS = frozenset({"KubeObjectsReady", "NoClusterDataConflict"})
# Ramen's reason for a condition that does not apply to this VRG (most of them on a secondary); ramenctl skips them.
UNUSED = "Unused"
VRG_API_VERSION = "ramendr.openshift.io/v1alpha1"


def run(ctx: AuditContext) -> list[Finding]:
    apps = applications(ctx.estate.hub)
    if not apps:
        return [META.finding(Status.SKIP, "No DRPlacementControl on the hub: no VRG to judge.", cluster="hub")]
    return [finding for app in apps for finding in _app_findings(ctx, app)]


def _app_findings(ctx: AuditContext, app: Application) -> list[Finding]:
    if app.placement_cluster is None:
        return [
            META.finding(
                Status.FAIL,
                f"DRPC {app.key} has no placement decision: the cluster that must hold the primary VRG "
                f"{app.vrg_namespace}/{app.name} is unknown.",
                cluster="hub",
                resource=ResourceRef.of(app.drpc),
                evidence={"drpc": app.key, "placement_source": app.placement_source},
            )
        ]
    findings = _side(ctx, app, app.placement_cluster, "primary", app.placement_source)
    peer, peer_source = peer_cluster(ctx.estate.hub, app)
    if peer is None:
        findings.append(
            META.finding(
                Status.FAIL,
                f"DRPC {app.key} has no peer cluster to fail over to ({peer_source}): its secondary VRG "
                f"{app.vrg_namespace}/{app.name} cannot be located.",
                cluster="hub",
                resource=ResourceRef.of(app.drpc),
                evidence={"drpc": app.key, "drpolicy": app.policy_name, "peer_source": peer_source},
            )
        )
    else:
        findings.extend(_side(ctx, app, peer, "secondary", peer_source))
    return findings


def _side(ctx: AuditContext, app: Application, cluster: str, role: str, why: str) -> list[Finding]:
    """The findings for the VRG that ``cluster`` must hold in ``role``, and for the PVCs a primary protects."""
    ref = ResourceRef(VRG_API_VERSION, "VolumeReplicationGroup", app.name, app.vrg_namespace)
    evidence = {"drpc": app.key, "cluster": cluster, "role": role, "chosen_by": why}
    inventory = ctx.estate.clusters.get(cluster)
    if inventory is None:
        return [
            META.finding(
                Status.SKIP,
                f"Cluster {cluster}, which must hold the {role} VRG of DRPC {app.key}, is not among the audited "
                f"clusters ({', '.join(sorted(ctx.estate.clusters)) or 'none'}): it was not judged.",
                cluster=cluster,
                resource=ref,
                evidence=evidence,
            )
        ]
    vrg = inventory.get("VolumeReplicationGroup", app.name, app.vrg_namespace)
    if vrg is None:
        consequence = (
            "the application's data is not protected"
            if role == "primary"
            else f"there is nothing on {cluster} to fail the application over to"
        )
        return [
            META.finding(
                Status.FAIL,
                f"No VolumeReplicationGroup {app.vrg_namespace}/{app.name} on {cluster}, the {role} cluster of DRPC "
                f"{app.key} ({why}): {consequence}.",
                cluster=cluster,
                resource=ref,
                evidence=evidence,
            )
        ]
    findings = [_vrg_finding(cluster, vrg, role, evidence)]
    # A secondary's status.protectedPVCs is left over from its last time as primary (RamenDR/ramenctl #286).
    if role == "primary":
        findings.extend(_pvc_finding(cluster, inventory, vrg, key, entry) for key, entry in protected_pvcs(vrg).items())
    return findings


def _vrg_finding(cluster: str, vrg: Obj, role: str, evidence: dict) -> Finding:
    name = f"VRG {meta(vrg).get('namespace')}/{meta(vrg).get('name')} on {cluster}"
    spec, status = vrg.get("spec") or {}, vrg.get("status") or {}
    desired, state = spec.get("replicationState"), status.get("state")
    generation, observed = meta(vrg).get("generation"), status.get("observedGeneration")
    pvcs = sorted(f"{ns}/{pvc}" for ns, pvc in protected_pvcs(vrg))
    failures: list[str] = []
    warnings: list[str] = []

    if desired != role:
        failures.append(f"spec.replicationState is {desired or 'unset'}, not {role}")
    if state != role.capitalize():
        failures.append(f"status.state is {state or 'unset'}, not {role.capitalize()}")
    not_reported = []
    for condition_type, condition in unmet_conditions(vrg, CONDITIONS).items():
        if condition is None and condition_type in LATER_CONDITIONS:
            not_reported.append(condition_type)
        elif (condition or {}).get("reason") != UNUSED:
            failures.append(quote_condition(condition_type, condition))
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        warnings.append(
            f"status.observedGeneration {observed} is behind metadata.generation {generation}: the status is stale"
        )
    if role == "primary" and not pvcs:
        warnings.append("status.protectedPVCs is empty: a failover would bring back no volume data")

    found = conditions(vrg)
    evidence = {
        **evidence,
        "replication_state": desired,
        "state": state,
        "conditions": [
            {key: found[t].get(key) for key in ("type", "status", "reason", "message")}
            for t in CONDITIONS
            if t in found
        ],
        "conditions_not_reported": not_reported,
        "generation": generation,
        "observed_generation": observed,
        "protected_pvcs": pvcs if role == "primary" else None,
        "problems": failures + warnings,
    }
    protecting = f", protecting {len(pvcs)} PVC(s)" if role == "primary" else ""
    return META.graded(
        failures,
        warnings,
        fail=f"{name}, the {role} of its application, is not ready: {'; '.join(failures + warnings)}.",
        warn=f"{name}, the {role} of its application, is at risk: {'; '.join(warnings)}.",
        ok=f"{name} is {role.capitalize()}{protecting}, with every applicable condition True.",
        cluster=cluster,
        resource=ResourceRef.of(vrg),
        evidence=evidence,
    )


def _pvc_finding(cluster: str, inventory: Inventory, vrg: Obj, key: tuple[str | None, str], entry: Obj) -> Finding:
    namespace, claim = key
    vrg_name = f"{meta(vrg).get('namespace')}/{meta(vrg).get('name')}"
    pvc = inventory.get("PersistentVolumeClaim", claim, namespace)
    phase = ((pvc or {}).get("status") or {}).get("phase")
    unhealthy = unhealthy_pvc_conditions(entry)
    problems = []
    if pvc is None:
        problems.append(f"it does not exist on {cluster}")
    elif phase != "Bound":
        problems.append(f"it is {phase or 'in no phase'}, not Bound")
    problems.extend(f"the VRG reports {t} {detail}" for t, detail in sorted(unhealthy.items()))
    evidence = {"vrg": vrg_name, "cluster": cluster, "exists": pvc is not None, "phase": phase, "problems": problems}
    resource = ResourceRef.of(pvc) if pvc else ResourceRef("v1", "PersistentVolumeClaim", claim, namespace)
    label = f"PVC {namespace}/{claim} on {cluster}, protected by VRG {vrg_name}"
    if problems:
        return META.finding(
            Status.FAIL,
            f"{label}, will not come back after a failover: {'; '.join(problems)}.",
            cluster=cluster,
            resource=resource,
            evidence=evidence,
        )
    return META.finding(
        Status.PASS,
        f"{label}, is Bound and healthy in the VRG.",
        cluster=cluster,
        resource=resource,
        evidence=evidence,
    )
