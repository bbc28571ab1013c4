"""Would a protected VM's disks find their StorageClass on the cluster it fails over to?

After a failover Ramen recreates each PVC on the peer with the StorageClass name it had on the primary, and pairs
the classes of the two clusters by that name and by their storage ID label. A class that is missing on the peer,
has another provisioner or another storage ID leaves the VM's volumes unbound or bound to storage that does not
hold its data, while the DRPC stays green until the failover.
"""

from __future__ import annotations

from auditor.context import AuditContext
from auditor.inventory import Obj, labels_of
from auditor.kubevirt import claim_storage_class, volumes
from auditor.model import CheckMeta, Finding, Severity
from auditor.peer import PROTECTION_KINDS, ProtectedVM, judge_protected_vms

META = CheckMeta(
    id="peer_storage_classes",
    title="The peer cluster has every StorageClass a protected VM's disks use",
    severity=Severity.CRITICAL,
    description=(
        "For every VirtualMachine protected by a DRPC: resolves the StorageClass of each disk's PVC (PVC "
        "spec.storageClassName, else the DataVolume or dataVolumeTemplate spec.storage / spec.pvc storageClassName, "
        "else the primary's default class) and checks that a class of that name exists on the peer cluster (the "
        "other drCluster of the DRPC's DRPolicy) with the same provisioner and the same "
        "ramendr.openshift.io/storageid label. Warns when the classes differ in parameters, reclaimPolicy or "
        "volumeBindingMode, or carry the storage ID only under the documented spelling storageID."
    ),
    rationale=(
        "Ramen restores a PVC on the failover cluster under its original StorageClass name and treats two clusters' "
        "classes as the same synchronously replicated storage only when their storage IDs are equal. A missing or "
        "different class on the peer is invisible on the primary and breaks the failover of every VM that uses it."
    ),
    remediation=(
        "Create the StorageClass on the peer cluster with the same name, provisioner and parameters as on the "
        "primary, and label both with the same ramendr.openshift.io/storageid (for ODF: the value the ODF operator "
        "sets for the stretched Ceph cluster); then let the DRPolicy re-validate its peer classes."
    ),
    kinds_read=(*PROTECTION_KINDS, "DataVolume", "StorageClass"),
)

# Ramen's controllers read the lowercase label (volumereplicationgroup_controller.go StorageIDLabel); Ramen's own
# docs (docs/configure.md) spell it storageID. Both are accepted here; a class that has only the documented
# spelling is a warning, because Ramen does not see it.
STORAGE_ID = "ramendr.openshift.io/storageid"
STORAGE_ID_DOCUMENTED = "ramendr.openshift.io/storageID"
# Fields of a StorageClass besides the name, provisioner, labels and parameters that shape the volumes it provisions.
_COMPARED_FIELDS = ("reclaimPolicy", "volumeBindingMode")


def run(ctx: AuditContext) -> list[Finding]:
    return judge_protected_vms(ctx, META, _judge)


def _judge(pvm: ProtectedVM) -> Finding:
    disks = []
    warnings: list[str] = []
    for ref in volumes(pvm.vm):
        if ref.pvc:
            resolved = claim_storage_class(pvm.primary, pvm.vm, ref.pvc)
            disk = {"volume": ref.volume, "pvc": ref.pvc, "storage_class": resolved.storage_class}
            disks.append({**disk, "source": resolved.source})
            if resolved.storage_class is None and not resolved.classless:
                warnings.append(f"disk {ref.volume}: its StorageClass is unknown ({resolved.source})")
    failures: list[str] = []
    classes = {}
    for name in sorted({d["storage_class"] for d in disks if d["storage_class"]}):
        primary, peer = pvm.primary.get("StorageClass", name), pvm.peer_inventory.get("StorageClass", name)
        classes[name] = {pvm.cluster: _summary(primary), pvm.peer: _summary(peer)}
        users = [d["volume"] for d in disks if d["storage_class"] == name]
        used_by = f"StorageClass {name} (disk{'s' if len(users) > 1 else ''} {', '.join(users)})"
        problem, drift = _compare(pvm, primary, peer)
        failures += [f"{used_by}: {p}" for p in problem]
        warnings += [f"{used_by}: {w}" for w in drift]

    evidence = {"disks": disks, "storage_classes": classes, "problems": failures, "warnings": warnings}
    if not classes:
        ok = f"{pvm.label} has no disk on a StorageClass: nothing to provide on {pvm.peer}."
    else:
        ok = (
            f"{pvm.label}: the StorageClass(es) of its {len(disks)} PVC disk(s) ({', '.join(classes)}) exist on "
            f"{pvm.peer} with the same provisioner and storage ID."
        )
    return pvm.graded(
        META,
        failures,
        warnings,
        fail=f"{pvm.label} would not get its storage on {pvm.peer}: {'; '.join(failures)}.",
        warn=f"{pvm.label} has StorageClasses on {pvm.peer} that may not serve it alike: {'; '.join(warnings)}.",
        ok=ok,
        evidence=evidence,
    )


def _compare(pvm: ProtectedVM, primary: Obj | None, peer: Obj | None) -> tuple[list[str], list[str]]:
    """What breaks a failover onto ``peer`` (failures) and what makes the two classes differ (warnings)."""
    if peer is None:
        return [f"does not exist on {pvm.peer}"], []
    if primary is None:
        return [f"does not exist on {pvm.cluster}, so Ramen cannot pair it with the class on {pvm.peer}"], []
    failures, warnings = [], []
    if primary.get("provisioner") != peer.get("provisioner"):
        failures.append(
            f"provisioner differs ({pvm.cluster}: {primary.get('provisioner')}, {pvm.peer}: {peer.get('provisioner')})"
        )
    (primary_id, primary_key), (peer_id, peer_key) = _storage_id(primary), _storage_id(peer)
    unlabelled = [cluster for cluster, value in ((pvm.cluster, primary_id), (pvm.peer, peer_id)) if value is None]
    if unlabelled:
        failures.append(f"has no {STORAGE_ID} label on {' and '.join(unlabelled)}, so Ramen cannot pair the classes")
    elif primary_id != peer_id:
        failures.append(
            f"{STORAGE_ID} differs ({pvm.cluster}: {primary_id}, {pvm.peer}: {peer_id}): the peer's class is other "
            "storage, which does not hold the VM's replicated volumes"
        )
    warnings += [
        f"carries the storage ID only as {STORAGE_ID_DOCUMENTED} on {cluster}, a label Ramen does not read"
        for cluster, key in ((pvm.cluster, primary_key), (pvm.peer, peer_key))
        if key == STORAGE_ID_DOCUMENTED
    ]
    ours, theirs = primary.get("parameters") or {}, peer.get("parameters") or {}
    warnings += [
        f"parameter {key} differs ({pvm.cluster}: {ours.get(key)}, {pvm.peer}: {theirs.get(key)})"
        for key in sorted(set(ours) | set(theirs))
        if ours.get(key) != theirs.get(key)
    ]
    warnings += [
        f"{field} differs ({pvm.cluster}: {primary.get(field)}, {pvm.peer}: {peer.get(field)})"
        for field in _COMPARED_FIELDS
        if primary.get(field) != peer.get(field)
    ]
    return failures, warnings


def _storage_id(storage_class: Obj) -> tuple[str | None, str | None]:
    """The storage ID label value and the key it was found under."""
    labels = labels_of(storage_class)
    for key in (STORAGE_ID, STORAGE_ID_DOCUMENTED):
        if labels.get(key):
            return labels[key], key
    return None, None


def _summary(storage_class: Obj | None) -> dict | None:
    if storage_class is None:
        return None
    return {"provisioner": storage_class.get("provisioner"), "storage_id": _storage_id(storage_class)[0]}
