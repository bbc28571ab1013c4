"""Is every VirtualMachine covered by Ramen, disk by disk?

A VM survives a site loss only if every disk's PVC is selected by its DRPC, listed as protected in the
primary VRG with healthy per-PVC conditions, and the DRPC and DRPolicy around it are healthy. A green
DRPC says nothing about a VM whose new disk carries the wrong label.
"""

from __future__ import annotations

from auditor.context import AuditContext
from auditor.inventory import Inventory, Obj, condition_true, labels_of, name_of, namespace_of
from auditor.kubevirt import out_of_scope, volumes
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ramen import (
    Application,
    applications,
    applications_by_namespace,
    choose_application,
    protected_pvcs,
    unhealthy_conditions,
    unhealthy_pvc_conditions,
)
from auditor.selectors import matches, mismatches

META = CheckMeta(
    id="vm_dr_coverage",
    title="Every VM disk is replicated by Ramen",
    severity=Severity.CRITICAL,
    description=(
        "For every VirtualMachine on every managed cluster: finds the DRPlacementControl that protects it, the "
        "VolumeReplicationGroup on the cluster that runs it, and checks that every disk's PVC (PVC volumes, "
        "DataVolumes, dataVolumeTemplates) is listed in the VRG's status.protectedPVCs with healthy per-PVC "
        "conditions, that the DRPC is Available, PeerReady and Protected, and that its DRPolicy is validated."
    ),
    rationale=(
        "Ramen protects PVCs by label selector, not VMs. A VM added later, a disk whose PVC misses the label, or a "
        "DRPC that lost its peer leaves a VM that will not come back after a site loss, while the application as "
        "a whole still looks protected."
    ),
    remediation=(
        "Label the VM's PVCs (and dataVolumeTemplates) so the DRPC spec.pvcSelector selects them, or create a "
        "DRPlacementControl for the namespace; wait until the VRG lists the PVC in status.protectedPVCs; for an "
        "unhealthy DRPC or DRPolicy follow the condition message on the hub."
    ),
    kinds_read=(
        "VirtualMachine",
        "PersistentVolumeClaim",
        "VolumeReplicationGroup",
        "DRPlacementControl",
        "DRPolicy",
        "Placement",
        "PlacementDecision",
    ),
)

DRPC_CONDITIONS = ("Available", "PeerReady", "Protected")


def run(ctx: AuditContext) -> list[Finding]:
    hub = ctx.estate.hub
    apps = applications(hub)
    apps_by_namespace = applications_by_namespace(apps)
    app_problems = {app.key: _application_problems(hub, app) for app in apps}

    findings = []
    for cluster, inventory in sorted(ctx.estate.clusters.items()):
        for vm in inventory.list("VirtualMachine"):
            namespace = namespace_of(vm) or ""
            if ctx.config.scope.excludes(namespace):
                findings.append(out_of_scope(META, cluster, vm))
                continue
            try:
                findings.append(_vm_finding(cluster, inventory, vm, apps_by_namespace.get(namespace, []), app_problems))
            except Exception as exc:  # one malformed VM must not hide the verdict on every other VM
                summary = f"{type(exc).__name__}: {exc}"
                findings.append(
                    META.finding(
                        Status.ERROR,
                        f"VM {namespace}/{name_of(vm)} on {cluster} could not be evaluated: {summary}",
                        cluster=cluster,
                        resource=ResourceRef.of(vm),
                        evidence={"exception": summary},
                    )
                )
    if not findings:
        clusters = ", ".join(sorted(ctx.estate.clusters))
        findings.append(META.finding(Status.SKIP, f"No VirtualMachine found on the managed clusters ({clusters})."))
    return findings


def _application_problems(hub: Inventory, app: Application) -> list[str]:
    """What is wrong with the DRPC and its DRPolicy, independent of any one VM."""
    problems = [
        f"DRPC {app.key} condition {name} is {detail}"
        for name, detail in unhealthy_conditions(app.drpc, DRPC_CONDITIONS).items()
    ]
    if not app.policy_name:
        problems.append(f"DRPC {app.key} names no DRPolicy (spec.drPolicyRef)")
    else:
        policy = hub.get("DRPolicy", app.policy_name)
        if policy is None:
            problems.append(f"DRPolicy {app.policy_name} named by DRPC {app.key} does not exist on the hub")
        elif not condition_true(policy, "Validated"):
            detail = unhealthy_conditions(policy, ("Validated",))["Validated"]
            problems.append(f"DRPolicy {app.policy_name} is not validated: Validated is {detail}")
    return problems


def _vm_finding(
    cluster: str,
    inventory: Inventory,
    vm: Obj,
    candidates: list[Application],
    app_problems: dict[str, list[str]],
) -> Finding:
    namespace, name = namespace_of(vm) or "", name_of(vm)
    vm_label = f"VM {namespace}/{name} on {cluster}"
    refs = volumes(vm)
    pvcs = {ref.pvc: inventory.get("PersistentVolumeClaim", ref.pvc, namespace) for ref in refs if ref.pvc}
    evidence: dict = {
        "vm": {"cluster": cluster, "namespace": namespace, "name": name},
        "drpc": None,
        "drpolicy": None,
        "vrg": None,
        "placement_cluster": None,
        "disks": [],
        "ephemeral_volumes": [{"volume": r.volume, "source": r.source} for r in refs if not r.pvc],
        "problems": [],
    }

    app = choose_application(candidates, [labels_of(pvc) for pvc in pvcs.values() if pvc])
    if app is None:
        if candidates:
            names = ", ".join(a.key for a in candidates)
            reason = f"none of the DRPCs protecting namespace {namespace} ({names}) selects its PVCs"
        else:
            reason = f"no DRPlacementControl protects namespace {namespace}"
        evidence["problems"].append(reason)
        evidence["disks"] = [
            {"volume": r.volume, "source": r.source, "pvc": r.pvc, "protected": False, "problem": reason}
            for r in refs
            if r.pvc
        ]
        return META.finding(
            Status.FAIL,
            f"{vm_label} is not protected: {reason}.",
            cluster=cluster,
            resource=ResourceRef.of(vm),
            evidence=evidence,
        )

    evidence.update(drpc=app.key, drpolicy=app.policy_name, placement_cluster=app.placement_cluster)
    problems = list(app_problems[app.key])
    if app.placement_cluster and app.placement_cluster != cluster:
        problems.append(
            f"the VM runs on {cluster} but DRPC {app.key} places the application on {app.placement_cluster} "
            f"({app.placement_source})"
        )
    vrg = inventory.get("VolumeReplicationGroup", app.name, app.vrg_namespace)
    if vrg is None:
        problems.append(f"no VolumeReplicationGroup {app.vrg_namespace}/{app.name} on {cluster}")
    else:
        evidence["vrg"] = f"{app.vrg_namespace}/{app.name}"
        state = (vrg.get("status") or {}).get("state")
        if state != "Primary":
            problems.append(f"VRG {app.vrg_namespace}/{app.name} on {cluster} is {state or 'in no state'}, not Primary")
    protected = protected_pvcs(vrg) if vrg else {}

    for ref in refs:
        if not ref.pvc:
            continue
        problem = _disk_problem(app, namespace, ref.pvc, pvcs[ref.pvc], vrg, protected)
        evidence["disks"].append(
            {
                "volume": ref.volume,
                "source": ref.source,
                "pvc": ref.pvc,
                "protected": problem is None,
                "problem": problem,
            }
        )
        if problem:
            problems.append(f"disk {ref.volume} (PVC {ref.pvc}): {problem}")

    evidence["problems"] = problems
    resource = ResourceRef.of(vm)
    if problems:
        return META.finding(
            Status.FAIL,
            f"{vm_label} is not fully protected: {'; '.join(problems)}.",
            cluster=cluster,
            resource=resource,
            evidence=evidence,
        )
    disks = [d for d in evidence["disks"]]
    return META.finding(
        Status.PASS,
        f"{vm_label} is protected by DRPC {app.key}: {len(disks)} of {len(disks)} disks replicated by VRG "
        f"{evidence['vrg']}.",
        cluster=cluster,
        resource=resource,
        evidence=evidence,
    )


def _disk_problem(
    app: Application,
    namespace: str,
    claim: str,
    pvc: Obj | None,
    vrg: Obj | None,
    protected: dict[tuple[str | None, str], Obj],
) -> str | None:
    if pvc is None:
        return f"PVC {namespace}/{claim} does not exist on the cluster"
    if not matches(app.pvc_selector, labels_of(pvc)):
        reasons = "; ".join(mismatches(app.pvc_selector, labels_of(pvc)))
        return f"PVC labels do not match the pvcSelector of DRPC {app.key} ({reasons})"
    phase = (pvc.get("status") or {}).get("phase")
    if phase != "Bound":
        return f"PVC is {phase or 'in no phase'}, not Bound"
    if vrg is None:
        return "no VRG protects it"
    entry = protected.get((namespace, claim))
    if entry is None:
        return "selected by the pvcSelector but not listed in the VRG's status.protectedPVCs"
    unhealthy = unhealthy_pvc_conditions(entry)
    if unhealthy:
        return "VRG reports it unhealthy: " + ", ".join(f"{k} {v}" for k, v in sorted(unhealthy.items()))
    return None
