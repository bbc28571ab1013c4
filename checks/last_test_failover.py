"""When did each protected application last prove it can fail over?

Configuration can look right for months while the failover path rots; auditors (DORA, ISO 22301,
SOC 2) ask for a recent, successful test. Evidence comes from drauditor's drill history and from Ramen's
own record of a completed Failover or Relocate on the DRPC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from auditor.context import AuditContext
from auditor.evidence import DrillRecord
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ramen import Application, applications
from auditor.timeutil import parse_go_duration, parse_time, rfc3339

META = CheckMeta(
    id="last_test_failover",
    title="Each application had a recent successful failover test",
    severity=Severity.HIGH,
    description=(
        "For every DRPlacementControl: the newest successful failover drill in the evidence store and the newest "
        "Failover or Relocate that Ramen completed (DRPC status.actionStartTime plus actionDuration), against the "
        "maximum age in the configuration (thresholds.failover_test_max_age_days, default 90 days)."
    ),
    rationale=(
        "Only a test shows that the VMs actually boot at the peer site. Resilience-testing controls (DORA "
        "article 24-25, ISO 22301 clause 8.5, NIST SP 800-53 CP-4, SOC 2 A1.3) require tests at a defined cadence."
    ),
    remediation=(
        "Run `drauditor drill --app NAMESPACE/DRPC` (non-disruptive) or a planned Relocate, and keep the evidence "
        "store configured (evidence.path) so the result is on record; investigate failed drills before the next run."
    ),
    kinds_read=("DRPlacementControl", "evidence:drill_runs"),
)

_COMPLETED_PHASES = {"FailedOver", "Relocated"}


def run(ctx: AuditContext) -> list[Finding]:
    apps = applications(ctx.estate.hub)
    if not apps:
        return [META.finding(Status.SKIP, "No DRPlacementControl on the hub: no application to test.", cluster="hub")]
    drills_by_app: dict[tuple[str, str], list[DrillRecord]] = {}
    for drill in ctx.drills:
        drills_by_app.setdefault((drill.app_namespace, drill.app_name), []).append(drill)
    max_age = timedelta(days=ctx.config.thresholds.failover_test_max_age_days)
    return [_finding(ctx, app, drills_by_app.get((app.namespace, app.name), []), max_age) for app in apps]


def _ramen_completed_action(app: Application) -> tuple[datetime, float | None] | None:
    """End time and duration of the last Failover/Relocate Ramen finished, from the DRPC status."""
    status = app.drpc.get("status") or {}
    if status.get("phase") not in _COMPLETED_PHASES or status.get("progression") != "Completed":
        return None
    started = parse_time(status.get("actionStartTime"))
    if started is None:
        return None
    duration = parse_go_duration(status.get("actionDuration"))
    return started + (duration or timedelta(0)), duration.total_seconds() if duration else None


def _finding(ctx: AuditContext, app: Application, drills: list[DrillRecord], max_age: timedelta) -> Finding:
    drills = sorted(drills, key=lambda d: d.finished_at)
    successes = [d for d in drills if d.outcome == "success"]
    candidates: list[tuple[datetime, str, float | None]] = [
        (d.finished_at, "evidence store", d.rto_seconds) for d in successes
    ]
    ramen = _ramen_completed_action(app)
    if ramen:
        candidates.append((ramen[0], "DRPC status", ramen[1]))
    evidence = {
        "drpc": app.key,
        "last_success": None,
        "source": None,
        "age_days": None,
        "max_age_days": max_age.days,
        "rto_seconds": None,
        "evidence_store": ctx.evidence_source,
        "drills": [
            {"id": d.id, "finished_at": rfc3339(d.finished_at), "outcome": d.outcome, "rto_seconds": d.rto_seconds}
            for d in drills
        ],
    }
    resource = ResourceRef.of(app.drpc)
    consulted = f"evidence store {ctx.evidence_source}" if ctx.evidence_source else "no evidence store configured"
    if not candidates:
        unsuccessful = (
            f"; its {len(drills)} drill(s) on record all failed, the latest {drills[-1].id} on "
            f"{drills[-1].finished_at.date().isoformat()} ended in {drills[-1].outcome}"
            if drills
            else ""
        )
        return META.finding(
            Status.FAIL,
            f"No successful failover test on record for DRPC {app.key} ({consulted}; the DRPC shows no completed "
            f"Failover or Relocate{unsuccessful}).",
            cluster="hub",
            resource=resource,
            evidence=evidence,
        )
    last, source, rto = max(candidates, key=lambda c: c[0])
    age = ctx.now - last
    evidence.update(
        last_success=rfc3339(last), source=source, age_days=round(age.total_seconds() / 86400, 1), rto_seconds=rto
    )
    when = f"{last.date().isoformat()} ({evidence['age_days']} days ago, from {source})"
    if age > max_age:
        return META.finding(
            Status.FAIL,
            f"The last successful failover test of DRPC {app.key} was on {when}, older than the {max_age.days}-day "
            "maximum.",
            cluster="hub",
            resource=resource,
            evidence=evidence,
        )
    if drills and drills[-1].outcome != "success" and drills[-1].finished_at > last:
        latest = drills[-1]
        return META.finding(
            Status.WARN,
            f"DRPC {app.key} passed a failover test on {when}, but its latest drill {latest.id} on "
            f"{latest.finished_at.date().isoformat()} ended in {latest.outcome}.",
            cluster="hub",
            resource=resource,
            evidence=evidence,
        )
    return META.finding(
        Status.PASS,
        f"DRPC {app.key} passed a failover test on {when}, within the {max_age.days}-day maximum.",
        cluster="hub",
        resource=resource,
        evidence=evidence,
    )
