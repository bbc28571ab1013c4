"""Ramen hub objects read the way Ramen itself reads them, across ODF 4.16, 4.18, 4.20 and main.

Only fields present in every one of those CRD versions are required here; newer ones
(status.sync/async peer classes, dryRun) are optional extras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditor.inventory import Inventory, Obj, conditions, labels_of, name_of, namespace_of

PLACEMENT_LABEL = "cluster.open-cluster-management.io/placement"


@dataclass(frozen=True)
class Application:
    """One protected application: a DRPC and what it implies on the managed clusters."""

    drpc: Obj
    namespace: str
    name: str
    # Namespaces on the managed clusters whose PVCs and VMs the app owns: the DRPC's own namespace, or
    # spec.protectedNamespaces for discovered applications (DRPC and VRG then live in the Ramen ops namespace).
    workload_namespaces: tuple[str, ...]
    pvc_selector: dict[str, Any] | None
    policy_name: str | None
    placement_cluster: str | None
    placement_source: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def vrg_namespace(self) -> str:
        """Ramen names the VRG after the DRPC and puts it in the DRPC's namespace, discovered apps included."""
        return self.namespace


def applications(hub: Inventory) -> list[Application]:
    apps = []
    for drpc in hub.list("DRPlacementControl"):
        spec = drpc.get("spec") or {}
        namespace = namespace_of(drpc) or ""
        protected = spec.get("protectedNamespaces")
        cluster, source = placement_cluster(hub, drpc)
        apps.append(
            Application(
                drpc=drpc,
                namespace=namespace,
                name=name_of(drpc),
                workload_namespaces=tuple(protected) if protected else (namespace,),
                pvc_selector=spec.get("pvcSelector"),
                policy_name=(spec.get("drPolicyRef") or {}).get("name"),
                placement_cluster=cluster,
                placement_source=source,
            )
        )
    return sorted(apps, key=lambda a: a.key)


def placement_cluster(hub: Inventory, drpc: Obj) -> tuple[str | None, str]:
    """Where the application runs now, and which object said so."""
    ref = (drpc.get("spec") or {}).get("placementRef") or {}
    ref_namespace = ref.get("namespace") or namespace_of(drpc)
    ref_name = ref.get("name")
    if ref.get("kind") == "PlacementRule":
        rule = hub.get("PlacementRule", ref_name or "", ref_namespace)
        decisions = ((rule or {}).get("status") or {}).get("decisions") or []
    else:
        decisions = [
            decision
            for pd in hub.in_namespace("PlacementDecision", ref_namespace)
            if labels_of(pd).get(PLACEMENT_LABEL) == ref_name
            for decision in ((pd.get("status") or {}).get("decisions") or [])
        ]
    clusters = sorted({d.get("clusterName") for d in decisions if d.get("clusterName")})
    if len(clusters) == 1:
        return clusters[0], f"{ref.get('kind') or 'Placement'} {ref_namespace}/{ref_name} decision"
    preferred = ((drpc.get("status") or {}).get("preferredDecision") or {}).get("clusterName")
    if preferred:
        return preferred, "DRPC status.preferredDecision"
    return None, "no placement decision"


def unhealthy_conditions(obj: Obj, required: tuple[str, ...]) -> dict[str, str]:
    """For each required condition that is not True: why, in the controller's own words."""
    found = conditions(obj)
    problems = {}
    for condition_type in required:
        condition = found.get(condition_type)
        if condition is None:
            problems[condition_type] = "not reported"
        elif condition.get("status") != "True":
            detail = condition.get("message") or condition.get("reason") or ""
            problems[condition_type] = f"{condition.get('status')}" + (f" ({detail})" if detail else "")
    return problems


def protected_pvcs(vrg: Obj) -> dict[tuple[str | None, str], Obj]:
    """VRG status.protectedPVCs keyed by (namespace, name); older VRGs omit the namespace (the VRG's own)."""
    entries = ((vrg.get("status") or {}).get("protectedPVCs")) or []
    return {(entry.get("namespace") or namespace_of(vrg), entry.get("name", "")): entry for entry in entries}


# Per-PVC conditions judged as ramenctl does: DataProtected tracks async replication progress and is not a
# protection failure; conditions a controller marks "Unused" do not apply to this replication mode.
_PVC_CONDITIONS_NOT_JUDGED = {"DataProtected"}


def unhealthy_pvc_conditions(entry: Obj) -> dict[str, str]:
    found = entry.get("conditions") or []
    if not found:
        return {"conditions": "none reported yet"}
    return {
        c.get("type", "?"): f"{c.get('status')} ({c.get('message') or c.get('reason') or 'no reason given'})"
        for c in found
        if c.get("type") not in _PVC_CONDITIONS_NOT_JUDGED and c.get("reason") != "Unused" and c.get("status") != "True"
    }
