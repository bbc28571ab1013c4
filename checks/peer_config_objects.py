"""Would a protected VM find the Secrets and ConfigMaps it boots with on the cluster it fails over to?

A cloud-init user-data Secret, an SSH key Secret or a sysprep ConfigMap is read each time the VM starts. Ramen
replicates the disks; these objects reach the peer only if kube-object protection captures them or someone put them
there. Otherwise the VM stays in a failed start after the failover, with its data intact on the peer.
Secrets are known by name and labels only: drauditor never reads their values.
"""

from __future__ import annotations

from auditor.context import AuditContext
from auditor.kubevirt import ConfigRef, config_references
from auditor.model import CheckMeta, Finding, Severity
from auditor.peer import PROTECTION_KINDS, ProtectedVM, judge_protected_vms
from auditor.ramen import kube_object_capture

META = CheckMeta(
    id="peer_config_objects",
    title="The Secrets and ConfigMaps a protected VM boots with reach the peer cluster",
    severity=Severity.HIGH,
    description=(
        "For every VirtualMachine protected by a DRPC: every Secret and ConfigMap it references (cloudInitNoCloud / "
        "cloudInitConfigDrive secretRef and networkDataSecretRef, accessCredentials sshPublicKey / userPassword "
        "secrets, secret, configMap and sysprep volumes, containerDisk and kernelBoot imagePullSecret) must exist on "
        "the primary and either exist on the peer cluster (the other drCluster of the DRPC's DRPolicy) or be captured "
        "by the DRPC's kube-object protection: spec.kubeObjectProtection set, the object in a protected namespace, "
        "its labels matching spec.kubeObjectProtection.kubeObjectSelector when one is set. ServiceAccount volumes "
        "are not judged. Secrets are compared by name and labels only."
    ),
    rationale=(
        "Ramen replicates PVCs; other objects come back after a failover only through kube-object protection (a "
        "Velero capture of the protected namespaces, filtered by the kubeObjectSelector) or because they already "
        "exist on the peer. A VM whose cloud-init or SSH key Secret is in neither place does not start there."
    ),
    remediation=(
        "Label the object so the DRPC's spec.kubeObjectProtection.kubeObjectSelector selects it (or enable "
        "kube-object protection on the DRPC), or create it on the peer cluster from the same source as on the "
        "primary; then wait for the next capture (DRPC status.lastKubeObjectProtectionTime)."
    ),
    kinds_read=(*PROTECTION_KINDS, "Secret", "ConfigMap"),
)


def run(ctx: AuditContext) -> list[Finding]:
    return judge_protected_vms(ctx, META, _judge)


def _judge(pvm: ProtectedVM) -> Finding:
    references, failures, warnings = [], [], []
    for ref in config_references(pvm.vm):
        entry, failure, warning = _judge_reference(pvm, ref)
        references.append(entry)
        if failure and ref.optional:
            warnings.append(f"{failure}; the VM marks it optional and starts without it")
        elif failure:
            failures.append(failure)
        if warning:
            warnings.append(warning)

    evidence = {"references": references, "problems": failures, "warnings": warnings}
    if not references:
        ok = f"{pvm.label} references no Secret or ConfigMap: nothing to provide on {pvm.peer}."
    else:
        names = "; ".join(
            f"{r['kind']} {r['name']} {'exists there' if r['on_peer'] else 'is captured by kube-object protection'}"
            for r in references
        )
        ok = f"{pvm.label}: every Secret and ConfigMap it references reaches {pvm.peer} ({names})."
    return pvm.graded(
        META,
        failures,
        warnings,
        fail=f"{pvm.label} would not start on {pvm.peer}: {'; '.join(failures)}.",
        warn=f"{pvm.label} may not start alike on {pvm.peer}: {'; '.join(warnings)}.",
        ok=ok,
        evidence=evidence,
    )


def _judge_reference(pvm: ProtectedVM, ref: ConfigRef) -> tuple[dict, str | None, str | None]:
    """The evidence entry of one reference, what breaks the failover (if anything) and what puts it at risk."""
    primary = pvm.primary.get(ref.kind, ref.name, pvm.namespace)
    on_peer = pvm.peer_inventory.get(ref.kind, ref.name, pvm.namespace) is not None
    entry = {
        "kind": ref.kind,
        "name": ref.name,
        "field": ref.field,
        "optional": ref.optional,
        "on_primary": primary is not None,
        "on_peer": on_peer,
        "captured": None,
        "capture": None,
    }
    what = f"{ref.kind} {pvm.namespace}/{ref.name} ({ref.field})"
    if primary is None:
        if on_peer:
            return entry, None, f"{what} exists on {pvm.peer} but not on {pvm.cluster}, where the VM runs"
        return entry, f"{what} exists on neither {pvm.cluster} nor {pvm.peer}", None
    captured, why = kube_object_capture(pvm.app, primary)
    entry.update(captured=captured, capture=why)
    if on_peer or captured:
        return entry, None, None
    if captured is None:
        return entry, None, f"{what} is not on {pvm.peer}, and whether it is captured is unknown: {why}"
    return entry, f"{what} is not on {pvm.peer} and kube-object protection does not capture it: {why}", None
