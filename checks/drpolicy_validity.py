"""Is every DRPolicy validated, and of the DR kind its peer classes say it is?

A DRPolicy decides how every application under it replicates and who fences whom. Ramen marks it Validated as soon
as one of its DRClusters is validated, but a Metro-DR policy without a synchronous peer class leaves new VRGs
without peer classes and Metro fencing without a peer (Ramen's getPeerCluster falls back to spec.region), and a
policy whose interval asks for one kind while its StorageClasses pair for the other replicates in a way nobody
planned. ramenctl reads only the asynchronous peer classes, so it flags every Metro policy; this check reads the
ones that match the kind the policy asks for.
"""

from __future__ import annotations

from auditor.context import AuditContext
from auditor.inventory import Inventory, Obj, name_of, namespace_of
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ramen import is_metro, policy_kind, quote_condition, unmet_conditions

META = CheckMeta(
    id="drpolicy_validity",
    title="Each DRPolicy is validated and shaped for its DR kind",
    severity=Severity.CRITICAL,
    description=(
        "For every DRPolicy on the hub: condition Validated is True; spec.drClusters names exactly two clusters, "
        "each with a DRCluster on the hub; the DR kind it asks for (Metro-DR: empty schedulingInterval; Regional-DR: "
        "an interval) matches the peer classes Ramen found (status.sync.peerClasses for Metro, "
        "status.async.peerClasses for Regional), and every Metro peer class has the same storageID on both "
        "clusters. Every DRPlacementControl must name a DRPolicy that exists. A hub whose Ramen reports no peer "
        "classes at all (ODF 4.16 CRD) gets a warning, not a failure."
    ),
    rationale=(
        "Every failover of every application under a policy goes through it. Without synchronous peer classes a "
        "Metro-DR policy gives new VolumeReplicationGroups no peer class and Ramen's fencing no peer cluster; a "
        "shape mismatch means the storage replicates in a mode the policy did not ask for; a DRPC whose DRPolicy is "
        "missing cannot fail over at all."
    ),
    remediation=(
        "For Validated False, act on its reason and message (`oc get drpolicy NAME -o yaml` on the hub). For missing "
        "or mismatched peer classes, give the StorageClass the same `ramendr.openshift.io/storageid` label on both "
        "clusters for Metro-DR (one stretched Ceph), or matching VolumeReplicationClasses for Regional-DR, and check "
        "that each cluster's DRClusterConfig lists it; a policy of the wrong kind must be recreated "
        "(schedulingInterval is immutable) with an empty interval for Metro-DR or an interval for Regional-DR. "
        "Create the DRCluster a policy names, or point the DRPC's spec.drPolicyRef at an existing DRPolicy."
    ),
    kinds_read=("DRPolicy", "DRCluster", "DRPlacementControl"),
)

# Ramen's DRPolicy validation condition (api/v1alpha1 DRPolicyValidated).
VALIDATED = "Validated"


def run(ctx: AuditContext) -> list[Finding]:
    hub = ctx.estate.hub
    policies = sorted(hub.list("DRPolicy"), key=name_of)
    drpcs = sorted(hub.list("DRPlacementControl"), key=lambda d: (namespace_of(d) or "", name_of(d)))
    if not policies and not drpcs:
        return [META.finding(Status.SKIP, "No DRPolicy and no DRPlacementControl on the hub.", cluster="hub")]
    users: dict[str, list[str]] = {}
    findings = []
    for drpc in drpcs:
        policy_name = _policy_name(drpc)
        if policy_name and hub.get("DRPolicy", policy_name) is not None:
            users.setdefault(policy_name, []).append(f"{namespace_of(drpc)}/{name_of(drpc)}")
        else:
            findings.append(_dangling_drpc(drpc, policy_name, bool(policies)))
    return [_policy_finding(hub, policy, users.get(name_of(policy), [])) for policy in policies] + findings


def _policy_name(drpc: Obj) -> str:
    return ((drpc.get("spec") or {}).get("drPolicyRef") or {}).get("name") or ""


def _dangling_drpc(drpc: Obj, policy_name: str, any_policy: bool) -> Finding:
    key = f"{namespace_of(drpc)}/{name_of(drpc)}"
    if not policy_name:
        why = "names no DRPolicy (spec.drPolicyRef.name is empty)"
    elif any_policy:
        why = f"names DRPolicy {policy_name}, which does not exist on the hub"
    else:
        why = f"names DRPolicy {policy_name}, but the hub has no DRPolicy at all"
    return META.finding(
        Status.FAIL,
        f"DRPC {key} {why}: its application cannot fail over.",
        cluster="hub",
        resource=ResourceRef.of(drpc),
        evidence={"drpc": key, "drpolicy": policy_name or None},
    )


def _peer_class(entry: Obj) -> dict:
    return {
        "storageClassName": entry.get("storageClassName"),
        "storageID": list(entry.get("storageID") or []),
        "clusterIDs": list(entry.get("clusterIDs") or []),
    }


def _describe(classes: list[dict]) -> str:
    return ", ".join(f"{c['storageClassName']} (storageID {'/'.join(c['storageID']) or 'none'})" for c in classes)


def _peer_class_problems(policy: Obj, metro: bool) -> tuple[list[str], list[str], dict]:
    """(failures, warnings, evidence) for the peer classes against the kind the policy asks for."""
    status = policy.get("status") or {}
    sync = [_peer_class(e) for e in (status.get("sync") or {}).get("peerClasses") or []]
    asynchronous = [_peer_class(e) for e in (status.get("async") or {}).get("peerClasses") or []]
    evidence = {"reported": "sync" in status or "async" in status, "sync": sync, "async": asynchronous}
    if not evidence["reported"]:
        return (
            [],
            ["cannot confirm peer classes: this Ramen (ODF 4.16 CRD) reports neither status.sync nor status.async"],
            evidence,
        )
    failures = []
    if metro:
        if asynchronous:
            failures.append(
                "it asks for Metro-DR (empty schedulingInterval) but Ramen paired StorageClasses for asynchronous "
                f"replication in status.async.peerClasses: {_describe(asynchronous)}"
            )
        if not sync:
            failures.append(
                "Ramen reports no synchronous peer class in status.sync.peerClasses: no StorageClass has the same "
                "ramendr.openshift.io/storageid on both clusters, so new VRGs get no peer class and fencing finds "
                "no Metro peer"
            )
        for entry in sync:
            if len(set(entry["storageID"])) != 1:
                failures.append(
                    f"synchronous peer class {entry['storageClassName']} has storageID(s) "
                    f"{entry['storageID'] or 'none'}: Metro-DR needs one storage system, the same storageID on both "
                    "clusters"
                )
    else:
        if sync:
            failures.append(
                f"it asks for Regional-DR (schedulingInterval {(policy.get('spec') or {}).get('schedulingInterval')}) "
                f"but Ramen found StorageClasses shared by both clusters in status.sync.peerClasses: {_describe(sync)}"
            )
        if not asynchronous:
            failures.append(
                "Ramen reports no asynchronous peer class in status.async.peerClasses: no StorageClass is paired "
                "across the clusters by a replication or snapshot class"
            )
    return failures, [], evidence


def _policy_finding(hub: Inventory, policy: Obj, drpcs: list[str]) -> Finding:
    name = name_of(policy)
    metro = is_metro(policy)
    kind = policy_kind(policy)
    clusters = [str(c) for c in (policy.get("spec") or {}).get("drClusters") or []]
    failures = [quote_condition(t, c) for t, c in unmet_conditions(policy, (VALIDATED,)).items()]
    if len(clusters) != 2:
        failures.append(f"spec.drClusters names {len(clusters)} cluster(s) ({', '.join(clusters) or 'none'}), not two")
    missing = [c for c in clusters if hub.get("DRCluster", c) is None]
    if missing:
        failures.append(f"no DRCluster on the hub for {', '.join(missing)}")
    peer_failures, warnings, peer_classes = _peer_class_problems(policy, metro)
    failures += peer_failures
    evidence = {
        "kind": kind,
        "mode": "metro" if metro else "regional",
        "schedulingInterval": (policy.get("spec") or {}).get("schedulingInterval"),
        "drClusters": clusters,
        "missingDRClusters": missing,
        "peerClasses": peer_classes,
        "drpcs": drpcs,
        "failures": failures,
        "warnings": warnings,
    }
    over = " and ".join(clusters) or "no cluster"
    wanted = peer_classes["sync"] if metro else peer_classes["async"]
    return META.graded(
        failures,
        warnings,
        fail=f"DRPolicy {name} ({kind}, over {over}) is not ready: {'; '.join(failures)}.",
        warn=f"DRPolicy {name} is a {kind} policy over {over} and is validated, but {'; '.join(warnings)}.",
        ok=f"DRPolicy {name} is a {kind} policy over {over}: validated, with {len(wanted)} "
        f"{'synchronous' if metro else 'asynchronous'} peer class(es): {_describe(wanted)}.",
        cluster="hub",
        resource=ResourceRef.of(policy),
        evidence=evidence,
    )
