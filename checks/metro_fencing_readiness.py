"""Can Ramen fence each Metro-DR cluster, so that a failover away from it can complete?

In Metro-DR both clusters write to one stretched Ceph cluster. Before Ramen fails an application over, the failed
cluster must be fenced: Ramen creates a NetworkFence that blocks the CIDRs listed in its DRCluster's spec.cidrs
from the storage. With no CIDRs the failover stops at WaitForFencing (RamenDR/ramen #618, #619; ocs-ci #7902);
with CIDRs that miss some storage client addresses the "fenced" cluster can still write, which corrupts the data
the survivor is about to use. Since RamenDR/ramen PR #2561 Ramen compares spec.cidrs with the CIDRs the storage
provisioner detected (DRClusterConfig status.storageAccessDetails) and reports the result as CIDRsValidated.
"""

from __future__ import annotations

import ipaddress
import json
import re

from auditor.context import AuditContext
from auditor.inventory import Obj, conditions, name_of
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ramen import is_metro, quote_condition

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

META = CheckMeta(
    id="metro_fencing_readiness",
    title="Each Metro-DR cluster can be fenced",
    severity=Severity.HIGH,
    description=(
        "For every DRCluster in a Metro-DR DRPolicy (empty schedulingInterval): spec.cidrs is set and every entry "
        "is a valid CIDR that does not overlap a CIDR of its Metro peer; condition CIDRsValidated is True (reasons "
        "DetectedCIDRsUnconfigured and InvalidCIDRsFormat fail; UndetectedCIDRsFound, extra CIDRs that Ramen allows, "
        "passes with a note). When Ramen reports no CIDRsValidated condition (releases before RamenDR/ramen PR "
        "#2561), the CIDRs the managed cluster's DRClusterConfig detected (status.storageAccessDetails[].cidrs) must "
        "each lie within spec.cidrs; without that either, the result is a warning."
    ),
    rationale=(
        "A Metro-DR failover first fences the failed cluster from the shared storage by the CIDRs in its DRCluster. "
        "No CIDRs: the failover waits for fencing forever. A detected storage client outside the CIDRs: the fenced "
        "cluster can still write while the peer takes over. A CIDR of the peer: fencing one site cuts off both."
    ),
    remediation=(
        "Set spec.cidrs to the CIDRs of every node of the cluster (the finding gives the command when the detected "
        'CIDRs are known): `oc patch drcluster NAME --type merge -p \'{"spec":{"cidrs":["10.0.0.0/24"]}}\'`, then '
        "wait for CIDRsValidated to turn True (`oc get drcluster NAME -o jsonpath='{.status.conditions}'`). Remove "
        "CIDRs that belong to the peer cluster."
    ),
    kinds_read=("DRPolicy", "DRCluster", "DRClusterConfig"),
)

CIDRS_VALIDATED = "CIDRsValidated"
# Ramen's CIDRsValidated reasons (api/v1alpha1 drcluster_types.go): extra CIDRs keep the condition True.
UNDETECTED_CIDRS_FOUND = "UndetectedCIDRsFound"
# Go's net.ParseCIDR, which Ramen uses, wants an address, a slash and a decimal prefix length.
_CIDR_FORM = re.compile(r"[0-9A-Fa-f.:]+/\d{1,3}")


def run(ctx: AuditContext) -> list[Finding]:
    hub = ctx.estate.hub
    peers: dict[str, set[str]] = {}
    for policy in hub.list("DRPolicy"):
        if is_metro(policy):
            clusters = [str(c) for c in (policy.get("spec") or {}).get("drClusters") or []]
            for cluster in clusters:
                peers.setdefault(cluster, set()).update(c for c in clusters if c != cluster)
    if not peers:
        return [
            META.finding(
                Status.SKIP,
                "No Metro-DR DRPolicy on the hub: fencing by CIDR applies only to Metro-DR clusters.",
                cluster="hub",
            )
        ]
    findings = []
    for drcluster in sorted(hub.list("DRCluster"), key=name_of):
        name = name_of(drcluster)
        if name not in peers:
            findings.append(
                META.finding(
                    Status.SKIP,
                    f"DRCluster {name} is in no Metro-DR DRPolicy: fencing by CIDR does not apply to it.",
                    cluster="hub",
                    resource=ResourceRef.of(drcluster),
                )
            )
            continue
        peer_cidrs = {p: _cidrs(hub.get("DRCluster", p)) for p in sorted(peers[name])}
        findings.append(_finding(drcluster, peer_cidrs, _detected_cidrs(ctx, name)))
    return findings or [META.finding(Status.SKIP, "No DRCluster on the hub to judge.", cluster="hub")]


def _cidrs(drcluster: Obj | None) -> list[str]:
    return [str(c) for c in ((drcluster or {}).get("spec") or {}).get("cidrs") or []]


def _network(cidr: str) -> Network | None:
    """The network of a CIDR as Go's net.ParseCIDR accepts it (host bits may be set), or None."""
    if not _CIDR_FORM.fullmatch(cidr):
        return None
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _detected_cidrs(ctx: AuditContext, name: str) -> tuple[list[str] | None, str]:
    """The CIDRs the storage provisioner detected on managed cluster ``name``, and where they came from (or why
    they are unknown). Ramen names the cluster's one DRClusterConfig after its DRCluster."""
    inventory = ctx.estate.clusters.get(name)
    if inventory is None:
        return None, f"managed cluster {name} was not read"
    found = inventory.list("DRClusterConfig")
    config = inventory.get("DRClusterConfig", name) or (found[0] if len(found) == 1 else None)
    if config is None:
        return None, f"{name} has {'several DRClusterConfigs' if found else 'no DRClusterConfig'}"
    details = (config.get("status") or {}).get("storageAccessDetails") or []
    source = f"DRClusterConfig {name_of(config)} on {name}"
    if not details:
        return None, f"{source} reports no status.storageAccessDetails"
    return sorted({str(c) for entry in details for c in entry.get("cidrs") or []}), source


def _uncovered(detected: list[str], configured: list[Network]) -> list[str]:
    """Detected CIDRs that no configured CIDR contains: storage clients a fence would leave connected."""
    result = []
    for cidr in detected:
        network = _network(cidr)
        if network is None or not any(network.version == c.version and network.subnet_of(c) for c in configured):
            result.append(cidr)
    return result


def _overlaps(own: list[str], peer_cidrs: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each own CIDR that overlaps a CIDR of a Metro peer, with what it overlaps."""
    peers = [(peer, text, net) for peer, texts in peer_cidrs.items() for text in texts if (net := _network(text))]
    found: dict[str, list[str]] = {}
    for mine in own:
        network = _network(mine)
        for peer, text, theirs in peers:
            if network is not None and network.overlaps(theirs):
                found.setdefault(mine, []).append(f"{text} of peer DRCluster {peer}")
    return found


def _patch(name: str, cidrs: list[str]) -> str:
    body = json.dumps({"spec": {"cidrs": cidrs or ["<CIDR of every node of " + name + ">"]}}, separators=(",", ":"))
    return f"oc patch drcluster {name} --type merge -p '{body}'"


def _finding(drcluster: Obj, peer_cidrs: dict[str, list[str]], detected: tuple[list[str] | None, str]) -> Finding:
    name = name_of(drcluster)
    cidrs = _cidrs(drcluster)
    valid = [n for c in cidrs if (n := _network(c)) is not None]
    invalid = [c for c in cidrs if _network(c) is None]
    detected_cidrs, detected_source = detected
    condition = conditions(drcluster).get(CIDRS_VALIDATED)
    failures: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    overlapping = _overlaps(cidrs, peer_cidrs)
    # The CIDRs a fix should list: the valid ones already there that spare the peer, plus every detected one missed.
    missing = _uncovered(detected_cidrs, valid) if detected_cidrs is not None else []
    kept = [c for c in cidrs if c not in invalid and c not in overlapping]
    suggested = kept + [c for c in missing if c not in kept]

    if not cidrs:
        failures.append(
            "spec.cidrs is empty, so Ramen has nothing to fence and a failover away from it waits at WaitForFencing"
        )
    if invalid:
        failures.append(f"spec.cidrs holds invalid CIDR(s) {', '.join(invalid)}")
    failures += [
        f"{mine} overlaps {', '.join(theirs)}: fencing {name} would cut both sites off the storage"
        for mine, theirs in overlapping.items()
    ]
    if cidrs and condition is not None:
        if condition.get("status") != "True":
            failures.append(quote_condition(CIDRS_VALIDATED, condition))
        elif condition.get("reason") == UNDETECTED_CIDRS_FOUND:
            notes.append(
                f"{quote_condition(CIDRS_VALIDATED, condition)}; Ramen allows CIDRs the storage did not detect "
                "(RamenDR/ramen PR #2561)"
            )
    elif cidrs and detected_cidrs is None:
        warnings.append(
            f"whether spec.cidrs covers every storage client cannot be confirmed: Ramen reports no {CIDRS_VALIDATED} "
            f"condition (a release before RamenDR/ramen PR #2561) and {detected_source}"
        )
    elif cidrs and detected_cidrs is not None:
        if missing:
            failures.append(f"{detected_source} detected storage clients in {', '.join(missing)}, outside spec.cidrs")
        else:
            notes.append(f"every CIDR that {detected_source} detected lies within spec.cidrs")

    fix = _patch(name, suggested) if failures else None
    evidence = {
        "cidrs": cidrs,
        "invalidCidrs": invalid,
        "clusterFence": (drcluster.get("spec") or {}).get("clusterFence"),
        "condition": None
        if condition is None
        else {k: condition.get(k) for k in ("status", "reason", "message", "lastTransitionTime")},
        "detectedCidrs": detected_cidrs,
        "detectedSource": detected_source,
        "metroPeers": peer_cidrs,
        "failures": failures,
        "warnings": warnings,
        "notes": notes,
        "fix": fix,
    }
    how = quote_condition(CIDRS_VALIDATED, condition) if condition and not notes else "; ".join(notes)
    return META.graded(
        failures,
        warnings,
        fail=f"Metro-DR cluster {name} cannot be fenced safely: {'; '.join(failures)}. Fix: {fix}",
        warn=f"Metro-DR cluster {name} has spec.cidrs {', '.join(cidrs)}, but {'; '.join(warnings)}.",
        ok=f"Metro-DR cluster {name} can be fenced: spec.cidrs {', '.join(cidrs)} ({how}).",
        cluster="hub",
        resource=ResourceRef.of(drcluster),
        evidence=evidence,
    )
