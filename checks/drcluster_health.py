"""Is every DRCluster validated, clean, unfenced, backed by an S3 profile and seen by the hub?

A failover moves an application to a DRCluster and restores its PV metadata from that cluster's S3 profile. A
DRCluster that Ramen could not validate, that is (still) fenced, whose S3 profile the hub operator does not know, or
whose ManagedCluster the hub cannot reach, is not a place an application can fail over to, however green its DRPCs
look.
"""

from __future__ import annotations

from auditor.context import AuditContext
from auditor.inventory import Inventory, Obj, conditions, name_of
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ocm import AVAILABLE, managed_cluster_problems
from auditor.ramen import HUB_OPERATOR_CONFIG, RamenConfigMap, hub_config_maps, quote_condition, unmet_conditions

META = CheckMeta(
    id="drcluster_health",
    title="Each DRCluster is validated, clean, unfenced and reachable",
    severity=Severity.HIGH,
    description=(
        "For every DRCluster on the hub: conditions Validated and Clean are True and Fenced is False; status.phase "
        "is a steady one (Available or Unfenced) and spec.clusterFence is Unfenced (or empty, or ManuallyUnfenced); "
        "spec.s3ProfileName is set and defined in s3StoreProfiles of the Ramen hub operator configuration (ConfigMap "
        f"{HUB_OPERATOR_CONFIG}, any namespace; only profile names are read, never the S3 Secret); the "
        "ManagedCluster of the same name exists and is available (ManagedClusterConditionAvailable True)."
    ),
    rationale=(
        "Ramen refuses or stalls a failover or relocate to a DRCluster it has not validated; a fenced cluster has no "
        "storage access; the S3 profile holds the PV metadata a failover restores (a profile missing from the hub "
        "configuration fails validation with s3ConnectionFailed); an unavailable ManagedCluster cannot receive the "
        "ManifestWorks a failover sends (RamenDR/ramen #337)."
    ),
    remediation=(
        "Read the failing condition on the hub (`oc get drcluster NAME -o yaml`). Add the missing S3 profile to "
        f"s3StoreProfiles in the {HUB_OPERATOR_CONFIG} ConfigMap (in the Ramen hub operator's namespace: "
        "openshift-operators on ODF, ramen-system upstream), with its bucket, endpoint, region and s3SecretRef. "
        "Unfence a recovered cluster with `oc patch drcluster NAME --type merge -p "
        '\'{"spec":{"clusterFence":"Unfenced"}}\'` once its workloads are cleaned up. For an unavailable '
        "ManagedCluster, restore the klusterlet on the managed cluster (open-cluster-management-agent) and its "
        "connection to the hub."
    ),
    kinds_read=("DRCluster", "ManagedCluster", "ConfigMap"),
)

REQUIRED_TRUE = ("Validated", "Clean")
FENCED = "Fenced"
# Ramen's DRCluster phases outside any fencing operation (api/v1alpha1 drcluster_types.go).
STEADY_PHASES = ("Available", "Unfenced")
FENCED_PHASES = ("Fencing", "Fenced")
# spec.clusterFence values that leave the cluster with storage access; empty is a DRCluster never fenced.
UNFENCED = ("", "Unfenced", "ManuallyUnfenced")


def run(ctx: AuditContext) -> list[Finding]:
    hub = ctx.estate.hub
    drclusters = sorted(hub.list("DRCluster"), key=name_of)
    if not drclusters:
        return [META.finding(Status.SKIP, "No DRCluster on the hub.", cluster="hub")]
    configs = hub_config_maps(hub)
    return [_finding(hub, drcluster, configs) for drcluster in drclusters]


def _fencing_problems(drcluster: Obj) -> tuple[list[str], list[str]]:
    """(failures, warnings) about fencing: fenced or fencing fails, a transition in progress warns."""
    fence = str((drcluster.get("spec") or {}).get("clusterFence") or "")
    phase = str((drcluster.get("status") or {}).get("phase") or "")
    failures, warnings = [], []
    fenced = conditions(drcluster).get(FENCED)
    if fenced is None or fenced.get("status") != "False":
        failures.append(quote_condition(FENCED, fenced) + " (expected False)")
    if fence not in UNFENCED:
        failures.append(f"spec.clusterFence is {fence}: the cluster is cut off from its storage")
    if phase in FENCED_PHASES:
        failures.append(f"status.phase is {phase}")
    elif phase not in STEADY_PHASES:
        warnings.append(f"status.phase is {phase or 'not reported'}, not a steady phase ({' or '.join(STEADY_PHASES)})")
    return failures, warnings


def _s3_problems(profile: str, configs: list[RamenConfigMap]) -> tuple[list[str], list[str], dict]:
    """(failures, warnings, evidence) for the DRCluster's S3 profile against the hub operator configuration."""
    evidence: dict = {
        "s3ProfileName": profile or None,
        "hubConfig": [
            {"configMap": c.key, "s3ProfileNames": list(c.s3_profile_names or []), "problem": c.problem}
            for c in configs
        ],
    }
    if not profile:
        return ["spec.s3ProfileName is empty"], [], evidence
    readable = [c for c in configs if c.s3_profile_names is not None]
    if not readable:
        why = "; ".join(f"ConfigMap {c.key}: {c.problem}" for c in configs) or f"no ConfigMap {HUB_OPERATOR_CONFIG}"
        return [], [f"S3 profile {profile} cannot be confirmed ({why} on the hub)"], evidence
    if any(profile in (c.s3_profile_names or ()) for c in readable):
        return [], [], evidence
    defined = sorted({n for c in readable for n in c.s3_profile_names or ()})
    where = ", ".join(f"ConfigMap {c.key}" for c in readable)
    return (
        [f"S3 profile {profile} is not defined in {where} (it defines: {', '.join(defined) or 'none'})"],
        [],
        evidence,
    )


def _managed_cluster_problems(hub: Inventory, name: str) -> list[str]:
    cluster = hub.get("ManagedCluster", name)
    if cluster is None:
        return [f"no ManagedCluster {name} on the hub"]
    return [f"ManagedCluster {name}: {problem}" for problem in managed_cluster_problems(cluster, (AVAILABLE,))]


def _finding(hub: Inventory, drcluster: Obj, configs: list[RamenConfigMap]) -> Finding:
    name = name_of(drcluster)
    spec, status = drcluster.get("spec") or {}, drcluster.get("status") or {}
    failures = [quote_condition(t, c) for t, c in unmet_conditions(drcluster, REQUIRED_TRUE).items()]
    fence_failures, warnings = _fencing_problems(drcluster)
    s3_failures, s3_warnings, s3_evidence = _s3_problems(str(spec.get("s3ProfileName") or ""), configs)
    failures += fence_failures + s3_failures + _managed_cluster_problems(hub, name)
    warnings += s3_warnings
    evidence = {
        "phase": status.get("phase"),
        "clusterFence": spec.get("clusterFence"),
        "conditions": {
            t: {"status": c.get("status"), "reason": c.get("reason")} for t, c in sorted(conditions(drcluster).items())
        },
        **s3_evidence,
        "failures": failures,
        "warnings": warnings,
    }
    return META.graded(
        failures,
        warnings,
        fail=f"DRCluster {name} is not ready to take a failover: {'; '.join(failures)}.",
        warn=f"DRCluster {name} is validated, clean and unfenced, but {'; '.join(warnings)}.",
        ok=f"DRCluster {name} is validated, clean and unfenced (phase {status.get('phase')}), its S3 profile "
        f"{spec.get('s3ProfileName')} is defined on the hub and ManagedCluster {name} is available.",
        cluster="hub",
        resource=ResourceRef.of(drcluster),
        evidence=evidence,
    )
