"""Would a protected VM find its instancetype and preference on the cluster it fails over to?

A VM created from an instancetype has no CPU or memory of its own: KubeVirt refuses to start it where the
instancetype or preference it names does not exist. Cluster-wide ones (the common-instancetypes u1.*, rhel.9, ...)
are installed per cluster and never carried by Ramen; namespaced ones come back only through kube-object protection.
"""

from __future__ import annotations

from auditor.context import AuditContext
from auditor.kubevirt import InstancetypeRef, instancetype_ref, preference_ref, resolve_instancetype
from auditor.model import CheckMeta, Finding, Severity
from auditor.peer import PROTECTION_KINDS, ProtectedVM, judge_protected_vms
from auditor.ramen import kube_object_capture

META = CheckMeta(
    id="peer_instancetypes",
    title="The peer cluster has the instancetype and preference of every protected VM",
    severity=Severity.HIGH,
    description=(
        "For every VirtualMachine protected by a DRPC: the instancetype (spec.instancetype) and preference "
        "(spec.preference) it names must exist on the peer cluster (the other drCluster of the DRPC's DRPolicy): "
        "VirtualMachineClusterInstancetype / VirtualMachineClusterPreference (the kinds an empty kind means) by name, "
        "VirtualMachineInstancetype / VirtualMachinePreference in the VM's namespace, or else be captured by the "
        "DRPC's kube-object protection. Warns when the two clusters' objects have different specs."
    ),
    rationale=(
        "KubeVirt expands a VM from its instancetype and preference when it starts; a VM naming one the cluster "
        "does not have is rejected. Cluster-scoped instancetypes are outside every namespace Ramen captures, and a VM "
        "restored without its ControllerRevision is expanded from the peer's copy, so a different spec there changes "
        "the VM's size or devices after a failover."
    ),
    remediation=(
        "Install the same instancetypes and preferences on both clusters (for common-instancetypes: the same "
        "KubeVirt / OpenShift Virtualization version, or apply the same bundle); for namespaced ones, label them so "
        "the DRPC's kubeObjectSelector captures them, or create them on the peer."
    ),
    kinds_read=(
        *PROTECTION_KINDS,
        "VirtualMachineInstancetype",
        "VirtualMachineClusterInstancetype",
        "VirtualMachinePreference",
        "VirtualMachineClusterPreference",
    ),
)


def run(ctx: AuditContext) -> list[Finding]:
    return judge_protected_vms(ctx, META, _judge)


def _judge(pvm: ProtectedVM) -> Finding:
    refs = [ref for ref in (instancetype_ref(pvm.vm), preference_ref(pvm.vm)) if ref is not None]
    entries, failures, warnings = [], [], []
    for ref in refs:
        entry, failure, warning = _judge_ref(pvm, ref)
        entries.append(entry)
        if failure:
            failures.append(failure)
        if warning:
            warnings.append(warning)

    evidence = {"references": entries, "problems": failures, "warnings": warnings}
    if not refs:
        ok = f"{pvm.label} names no instancetype or preference: nothing to provide on {pvm.peer}."
    else:
        ok = f"{pvm.label}: {' and '.join(ref.display() for ref in refs)} exist on {pvm.peer}."
    return pvm.graded(
        META,
        failures,
        warnings,
        fail=f"{pvm.label} would not start on {pvm.peer}: {'; '.join(failures)}.",
        warn=f"{pvm.label} may come back different on {pvm.peer}: {'; '.join(warnings)}.",
        ok=ok,
        evidence=evidence,
    )


def _judge_ref(pvm: ProtectedVM, ref: InstancetypeRef) -> tuple[dict, str | None, str | None]:
    """The evidence entry of one reference, what breaks the failover (if anything) and what puts it at risk."""
    primary, peer = resolve_instancetype(pvm.primary, ref), resolve_instancetype(pvm.peer_inventory, ref)
    entry = {
        "kind": ref.kind,
        "name": ref.name,
        "namespace": ref.namespace,
        "on_primary": primary is not None,
        "on_peer": peer is not None,
        "captured": None,
        "capture": None,
    }
    what = ref.display()
    if peer is not None:
        if primary is not None and primary.get("spec") != peer.get("spec"):
            return entry, None, f"{what} has a different spec on {pvm.peer} than on {pvm.cluster}"
        return entry, None, None
    if primary is None:
        return entry, f"{what} exists on neither {pvm.cluster} nor {pvm.peer}", None
    if ref.namespace is None:
        return entry, f"{what} does not exist on {pvm.peer}", None
    captured, why = kube_object_capture(pvm.app, primary)
    entry.update(captured=captured, capture=why)
    if captured:
        return entry, None, None
    if captured is None:
        return entry, None, f"{what} is not on {pvm.peer}, and whether it is captured is unknown: {why}"
    return entry, f"{what} is not on {pvm.peer} and kube-object protection does not capture it: {why}", None
