"""Can the hub drive a failover: are its DR clusters joined and available, and are the Ramen operators running?

A failover is a conversation between the Ramen hub operator and the Ramen DR cluster operator on each managed
cluster, carried by Open Cluster Management (ManifestWorks out, ManagedClusterViews back). If the hub has lost a
cluster, or either operator is not running, no DRPC action makes progress, whatever the DRPCs and VRGs last said.
"""

from __future__ import annotations

from auditor.context import AuditContext
from auditor.inventory import Inventory, Obj, conditions, meta, name_of, namespace_of
from auditor.kinds import KINDS
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ocm import managed_cluster_problems
from auditor.ramen import DR_CLUSTER_OPERATOR, HUB_OPERATOR, quote_condition, unmet_conditions

META = CheckMeta(
    id="hub_health",
    title="The hub sees its DR clusters and the Ramen operators are running",
    severity=Severity.HIGH,
    description=(
        "Every managed cluster named in a DRPolicy's spec.drClusters has a ManagedCluster on the hub that is "
        "accepted (HubAcceptedManagedCluster), joined (ManagedClusterJoined) and available "
        f"(ManagedClusterConditionAvailable). The Ramen hub operator Deployment ({HUB_OPERATOR}) on the hub and the "
        f"Ramen DR cluster operator Deployment ({DR_CLUSTER_OPERATOR}) on every managed cluster exist in some "
        "namespace, are not being deleted or scaled to zero, are Available and have at least one ready replica; a "
        "rollout stuck past its progress deadline (Progressing False) warns."
    ),
    rationale=(
        "Ramen sends VolumeReplicationGroups and NetworkFences to the managed clusters as ManifestWorks and reads "
        "their state back through ManagedClusterViews: a cluster the hub cannot see, or an operator that is not "
        "running, stops every failover and relocate. ramenctl's `validate clusters` checks the same operators."
    ),
    remediation=(
        "For a ManagedCluster that is not available, restore the klusterlet on the managed cluster "
        "(`oc get pods -n open-cluster-management-agent`) and its connection to the hub; accept a cluster the hub "
        'has not accepted (`oc patch managedcluster NAME --type merge -p \'{"spec":{"hubAcceptsClient":true}}\'`). '
        "For an operator that is not available, read its pods' events and logs (`oc describe deployment -n NAMESPACE "
        "NAME`; ODF: openshift-operators on the hub, openshift-dr-system on managed clusters) and fix the cause, "
        "e.g. an image that cannot be pulled or a crash after an upgrade; reinstall the ODF Multicluster "
        "Orchestrator / OpenShift DR operators if the Deployment is missing."
    ),
    kinds_read=("DRPolicy", "ManagedCluster", "Deployment"),
)

# Deployment condition types (k8s.io/api/apps/v1 DeploymentConditionType).
AVAILABLE = "Available"
PROGRESSING = "Progressing"


def run(ctx: AuditContext) -> list[Finding]:
    hub = ctx.estate.hub
    findings = _managed_cluster_findings(hub)
    findings += _operator_findings("hub", hub, HUB_OPERATOR, "Ramen hub operator")
    for cluster, inventory in sorted(ctx.estate.clusters.items()):
        findings += _operator_findings(cluster, inventory, DR_CLUSTER_OPERATOR, "Ramen DR cluster operator")
    return findings


def _missing(kind: str, name: str) -> ResourceRef:
    """A reference to an object that should exist and does not, so the finding still names it."""
    info = KINDS[kind]
    return ResourceRef(info.api_version, info.kind, name)


def _managed_cluster_findings(hub: Inventory) -> list[Finding]:
    named = sorted({str(c) for p in hub.list("DRPolicy") for c in (p.get("spec") or {}).get("drClusters") or []})
    if not named:
        return [META.finding(Status.SKIP, "No DRPolicy names a managed cluster to judge.", cluster="hub")]
    findings = []
    for name in named:
        cluster = hub.get("ManagedCluster", name)
        if cluster is None:
            findings.append(
                META.finding(
                    Status.FAIL,
                    f"ManagedCluster {name}, a cluster of a DRPolicy, does not exist on the hub.",
                    cluster="hub",
                    resource=_missing("ManagedCluster", name),
                    evidence={"managedCluster": name, "exists": False},
                )
            )
            continue
        problems = managed_cluster_problems(cluster)
        evidence = {
            "managedCluster": name,
            "exists": True,
            "hubAcceptsClient": (cluster.get("spec") or {}).get("hubAcceptsClient"),
            "taints": [t.get("key") for t in (cluster.get("spec") or {}).get("taints") or []],
            "problems": problems,
        }
        findings.append(
            META.graded(
                problems,
                [],
                fail=f"ManagedCluster {name} is not usable for DR: {'; '.join(problems)}.",
                warn="",  # nothing here only warns
                ok=f"ManagedCluster {name} is accepted, joined and available.",
                cluster="hub",
                resource=ResourceRef.of(cluster),
                evidence=evidence,
            )
        )
    return findings


def _operator_findings(cluster: str, inventory: Inventory, name: str, role: str) -> list[Finding]:
    deployments = sorted(inventory.named("Deployment", name), key=lambda d: namespace_of(d) or "")
    if not deployments:
        return [
            META.finding(
                Status.FAIL,
                f"The {role} is not installed on {cluster}: no Deployment {name} in any namespace.",
                cluster=cluster,
                resource=_missing("Deployment", name),
                evidence={"deployment": name, "exists": False},
            )
        ]
    return [_operator_finding(cluster, deployment, role) for deployment in deployments]


def _operator_finding(cluster: str, deployment: Obj, role: str) -> Finding:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    key = f"{namespace_of(deployment)}/{name_of(deployment)}"
    replicas = spec.get("replicas", 1)  # the apiserver defaults an unset spec.replicas to 1
    ready = status.get("readyReplicas") or 0
    problems = []
    if meta(deployment).get("deletionTimestamp"):
        problems.append(f"it is being deleted since {meta(deployment)['deletionTimestamp']}")
    if replicas == 0:
        problems.append("it is scaled to 0 replicas")
    problems += [quote_condition(t, c) for t, c in unmet_conditions(deployment, (AVAILABLE,)).items()]
    if ready < 1:
        problems.append(f"{ready} of {replicas} replicas are ready")
    # A rollout past its deadline (e.g. an operator upgrade whose new pod never gets ready) leaves the old pod
    # serving: the operator runs, but on the version the upgrade meant to replace.
    progressing = conditions(deployment).get(PROGRESSING)
    stuck = [quote_condition(PROGRESSING, progressing)] if (progressing or {}).get("status") == "False" else []
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    evidence = {
        "deployment": key,
        "exists": True,
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": status.get("availableReplicas") or 0,
        "images": {c.get("name"): c.get("image") for c in containers},
        "problems": problems,
        "warnings": stuck,
    }
    available = f"The {role} Deployment {key} on {cluster} is available ({ready} of {replicas} replicas ready)"
    return META.graded(
        problems,
        stuck,
        fail=f"The {role} Deployment {key} on {cluster} is not running: {'; '.join(problems)}.",
        warn=f"{available}, but its rollout is stuck: {stuck[0] if stuck else ''}.",
        ok=f"{available}.",
        cluster=cluster,
        resource=ResourceRef.of(deployment),
        evidence=evidence,
    )
