"""Synthetic Report objects for the HTML/PDF renderer tests.

Findings follow the evidence shapes the built-in checks document (vm_dr_coverage, intersite_rtt,
last_test_failover); the metadata is written here, not imported, so these tests do not depend on the
checks' wording.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.report.model import Report, Scope

CAPTURED = datetime(2026, 8, 21, 9, 30, tzinfo=UTC)
GENERATED = datetime(2026, 8, 21, 10, 0, tzinfo=UTC)

VM_META = CheckMeta(
    "vm_dr_coverage",
    "Every VirtualMachine is protected by a DRPC",
    Severity.CRITICAL,
    "Each VM's disks are selected by a DRPC whose VolumeReplicationGroup protects them.",
    "An unprotected VM is lost with its site.",
    "Label the VM and its PVCs so a DRPC's PVC selector matches them, or add the namespace to a DRPC.",
    ("VirtualMachine", "PersistentVolumeClaim", "DRPlacementControl"),
)
CEPH_META = CheckMeta(
    "ceph_stretch_health",
    "Ceph stretch mode is healthy",
    Severity.HIGH,
    "Stretch mode is enabled, not degraded, with a tiebreaker monitor.",
    "A degraded stretch cluster cannot survive the loss of a second failure domain.",
    "Restore the missing monitors or OSDs before relying on a failover.",
    (),
)
RTT_META = CheckMeta(
    "intersite_rtt",
    "Inter-site round-trip time is within the Metro-DR limit",
    Severity.HIGH,
    "OSD heartbeat ping times between the data sites stay below the threshold.",
    "Synchronous replication adds the RTT to every write.",
    "Fix the inter-site network or move to Regional-DR.",
    (),
)
DRILL_META = CheckMeta(
    "last_test_failover",
    "Each application had a recent successful test failover",
    Severity.MEDIUM,
    "The newest successful drill per DRPC is younger than the configured maximum age.",
    "An untested failover is a hope, not a plan.",
    "Run `drauditor drill run` for the application.",
    (),
)
CHECKS = [VM_META, CEPH_META, RTT_META, DRILL_META]


def vm_finding(
    cluster: str,
    namespace: str,
    name: str,
    *,
    status: Status = Status.PASS,
    drpc: str | None = "apps/app-drpc",
    disks: int = 2,
    protected: int | None = None,
    problems: tuple[str, ...] = (),
    message: str | None = None,
) -> Finding:
    protected = disks if protected is None else protected
    evidence: dict[str, Any] = {
        "vm": {"cluster": cluster, "namespace": namespace, "name": name},
        "drpc": drpc,
        "drpolicy": "metro-5m" if drpc else None,
        "vrg": drpc,
        "placement_cluster": cluster if drpc else None,
        "disks": [
            {
                "volume": f"disk{i}",
                "source": "dataVolume",
                "pvc": f"{name}-disk{i}",
                "protected": i < protected,
                "problem": None if i < protected else "PVC not selected by any DRPC",
            }
            for i in range(disks)
        ],
        "problems": list(problems),
    }
    return VM_META.finding(
        status,
        message or f"VirtualMachine {namespace}/{name} on {cluster}: {status.value}.",
        cluster=cluster,
        resource=ResourceRef("kubevirt.io/v1", "VirtualMachine", name, namespace),
        evidence=evidence,
    )


def rtt_finding(sites: tuple[str, str] = ("dc1", "dc2"), *, max_ms: float = 4.2, threshold_ms: float = 10.0) -> Finding:
    status = Status.PASS if max_ms <= threshold_ms else Status.FAIL
    return RTT_META.finding(
        status,
        f"Heartbeat RTT between {sites[0]} and {sites[1]}: max {max_ms} ms (threshold {threshold_ms} ms).",
        evidence={
            "sites": list(sites),
            "avg_1min_ms": 1.8,
            "avg_5min_ms": 1.7,
            "avg_15min_ms": 1.65,
            "max_ms": max_ms,
            "osd_pairs": 24,
            "threshold_ms": threshold_ms,
            "threshold_source": "OpenShift Virtualization Metro-DR documentation: at most 10 ms RTT",
            "sources": ["osd_network.osd.0", "osd_network.osd.4"],
            "same_site": {
                site: {"avg_1min_ms": 0.2, "avg_5min_ms": 0.21, "avg_15min_ms": 0.2, "max_ms": 0.9, "osd_pairs": 6}
                for site in sites
            },
        },
    )


def drill_finding(drpc: str, *, age_days: float | None = 12.5, max_age_days: int = 90) -> Finding:
    if age_days is None:
        status, message = Status.FAIL, f"DRPC {drpc} has never had a successful test failover."
    elif age_days > max_age_days:
        status, message = Status.FAIL, f"DRPC {drpc} was last tested {age_days:.0f} days ago."
    else:
        status, message = Status.PASS, f"DRPC {drpc} was tested {age_days:.0f} days ago."
    namespace, name = drpc.split("/", 1)
    return DRILL_META.finding(
        status,
        message,
        cluster="hub",
        resource=ResourceRef("ramendr.openshift.io/v1alpha1", "DRPlacementControl", name, namespace),
        evidence={
            "drpc": drpc,
            "last_success": None if age_days is None else "2026-08-08T21:30:00Z",
            "source": None if age_days is None else "evidence store",
            "age_days": age_days,
            "max_age_days": max_age_days,
            "rto_seconds": None if age_days is None else 184.0,
            "drills": []
            if age_days is None
            else [{"id": "d-1", "finished_at": "2026-08-08T21:30:00Z", "outcome": "success", "rto_seconds": 184.0}],
        },
    )


def ceph_finding(status: Status = Status.PASS) -> Finding:
    return CEPH_META.finding(
        status,
        "Ceph stretch mode is enabled with tiebreaker monitor e in the arbiter zone.",
        cluster="ceph",
        evidence={"stretch_mode_enabled": True, "tiebreaker_mon": "e", "degraded_stretch_mode": 0},
    )


def make_report(
    findings: list[Finding],
    *,
    checks: list[CheckMeta] | None = None,
    fail_on: Severity = Severity.HIGH,
    input_digests: dict[str, str] | None = None,
) -> Report:
    return Report(
        generated_at=GENERATED,
        tool_version="0.1.0",
        scope=Scope(hub="hub-east", clusters=("ocp-dc1", "ocp-dc2"), source="snapshot", origin="/snapshots/estate"),
        now=CAPTURED,
        now_source="snapshot.yaml capturedAt",
        captured_at=CAPTURED,
        fail_on=fail_on,
        checks=CHECKS if checks is None else checks,
        findings=findings,
        thresholds={"rtt_ms_max": 10.0, "failover_test_max_age_days": 90},
        evidence_source="/var/lib/drauditor/evidence.sqlite",
        input_digests={"hub/drpc.yaml": "ab" * 32} if input_digests is None else input_digests,
    )


def estate_findings(vm_count: int, *, drpcs: int = 4, unprotected_every: int = 7) -> list[Finding]:
    """A plausible estate: VMs spread over DRPCs and two clusters, every n-th VM outside any DRPC."""
    findings: list[Finding] = []
    for i in range(vm_count):
        cluster = "ocp-dc1" if i % 2 == 0 else "ocp-dc2"
        namespace = f"team-{i % drpcs}"
        if i % unprotected_every == unprotected_every - 1:
            findings.append(
                vm_finding(
                    cluster,
                    namespace,
                    f"vm-{i:05d}",
                    status=Status.FAIL,
                    drpc=None,
                    protected=0,
                    problems=("no DRPC selects this VM's PVCs",),
                    message=f"VirtualMachine {namespace}/vm-{i:05d} on {cluster} is not protected by any DRPC.",
                )
            )
        else:
            findings.append(vm_finding(cluster, namespace, f"vm-{i:05d}", drpc=f"{namespace}/{namespace}-drpc"))
    findings.append(ceph_finding())
    findings.append(rtt_finding())
    findings.extend(drill_finding(f"team-{d}/team-{d}-drpc", age_days=10.0 + 40 * d) for d in range(drpcs))
    return findings
