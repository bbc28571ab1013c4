"""Which VMs the peer-dependency checks judge, and against which cluster.

A VM fails over only if everything it needs to start is already on the cluster it would come back on: the other
drCluster of its DRPC's DRPolicy. The four peer checks share this walk so they agree on which VMs are judged, where
each one's peer is, and why a VM was left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auditor.context import AuditContext
from auditor.inventory import Inventory, Obj, name_of, namespace_of
from auditor.model import CheckMeta, Finding, ResourceRef, Status
from auditor.ramen import Application, applications, applications_by_namespace, peer_cluster, protecting_application

# What it takes to find a VM's DRPC and its peer (protecting_application reads the labels of the VM's PVCs); every
# peer check lists these in its kinds_read besides the kinds it compares.
PROTECTION_KINDS = (
    "VirtualMachine",
    "PersistentVolumeClaim",
    "DRPlacementControl",
    "DRPolicy",
    "Placement",
    "PlacementDecision",
    "PlacementRule",
)


@dataclass(frozen=True)
class ProtectedVM:
    """A VM with the DRPC protecting it, on the cluster its application is placed on, and that DRPC's peer."""

    vm: Obj
    cluster: str
    primary: Inventory
    app: Application
    peer: str
    peer_inventory: Inventory
    peer_source: str  # the DRPolicy that names the peer

    @property
    def namespace(self) -> str:
        return namespace_of(self.vm) or ""

    @property
    def label(self) -> str:
        return f"VM {self.namespace}/{name_of(self.vm)} on {self.cluster}"

    def _facts(self, evidence: dict) -> dict:
        """The facts every peer finding starts from, then the check's own evidence."""
        facts = {
            "vm": {"cluster": self.cluster, "namespace": self.namespace, "name": name_of(self.vm)},
            "drpc": self.app.key,
            "peer_cluster": self.peer,
            "peer_source": self.peer_source,
        }
        return {**facts, **evidence}

    def finding(self, meta: CheckMeta, status: Status, message: str, evidence: dict) -> Finding:
        """A finding about this VM, on the cluster it runs on."""
        return meta.finding(
            status, message, cluster=self.cluster, resource=ResourceRef.of(self.vm), evidence=self._facts(evidence)
        )

    def graded(
        self,
        meta: CheckMeta,
        failures: list[str],
        warnings: list[str],
        *,
        fail: str,
        warn: str,
        ok: str,
        evidence: dict,
    ) -> Finding:
        """This VM graded on the check's criteria (CheckMeta.graded), on the cluster it runs on."""
        return meta.graded(
            failures,
            warnings,
            fail=fail,
            warn=warn,
            ok=ok,
            cluster=self.cluster,
            resource=ResourceRef.of(self.vm),
            evidence=self._facts(evidence),
        )


def judge_protected_vms(ctx: AuditContext, meta: CheckMeta, judge: Callable[[ProtectedVM], Finding]) -> list[Finding]:
    """``judge``'s finding for every VM a DRPC protects; VMs no DRPC protects are vm_dr_coverage's to report.

    A protected VM whose peer cannot be judged (no peer in the DRPolicy, the VM away from its placement, the peer not
    read) gets a SKIP finding saying why, so the report never silently drops it.
    """
    hub = ctx.estate.hub
    apps_by_namespace = applications_by_namespace(applications(hub))
    findings = []
    for cluster, inventory in sorted(ctx.estate.clusters.items()):
        for vm in inventory.list("VirtualMachine"):
            namespace = namespace_of(vm) or ""
            candidates = apps_by_namespace.get(namespace)
            app = protecting_application(inventory, vm, candidates) if candidates else None
            if app is None:
                continue
            peer, source = peer_cluster(hub, app)
            reason = _not_judged(ctx, namespace, cluster, app, peer, source)
            if reason is None and peer is not None:
                protected = ProtectedVM(vm, cluster, inventory, app, peer, ctx.estate.clusters[peer], source)
                findings.append(judge(protected))
            else:
                message = f"VM {namespace}/{name_of(vm)} on {cluster} is not judged: {reason}."
                findings.append(meta.finding(Status.SKIP, message, cluster=cluster, resource=ResourceRef.of(vm)))
    if not findings:
        clusters = ", ".join(sorted(ctx.estate.clusters))
        findings.append(
            meta.finding(Status.SKIP, f"No VirtualMachine on the managed clusters ({clusters}) is protected by a DRPC.")
        )
    return findings


def _not_judged(
    ctx: AuditContext, namespace: str, cluster: str, app: Application, peer: str | None, source: str
) -> str | None:
    """Why a protected VM cannot be judged against its peer; None when it can."""
    if ctx.config.scope.excludes(namespace):
        return "it is outside the audit scope (scope.exclude_namespaces)"
    if peer is None:
        return f"DRPC {app.key} names no failover cluster: {source}"
    if cluster != app.placement_cluster:
        return (
            f"DRPC {app.key} places the application on {app.placement_cluster}, so its dependencies are judged there "
            "(vm_dr_coverage reports the VM running elsewhere)"
        )
    if peer not in ctx.estate.clusters:
        return f"its peer cluster {peer} ({source}) was not read, or not every kind this check needs was"
    return None
