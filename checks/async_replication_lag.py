"""How far behind is asynchronous (Regional-DR) replication of each application?

With async replication a failover recovers the last group sync; everything written since is lost. Ramen records
the time of that sync on the DRPC and raises its VolumeSynchronizationDelay alert when it is more than two
scheduling intervals old (warning) or three (critical). This check applies the same rule to the captured state,
so an old snapshot is judged as it was. Metro-DR replicates synchronously and has no such figure.
"""

from __future__ import annotations

from datetime import timedelta

from auditor.context import AuditContext
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ramen import Application, applications, is_metro
from auditor.timeutil import human_age, parse_scheduling_interval, parse_time, rfc3339

META = CheckMeta(
    id="async_replication_lag",
    title="Async replication keeps up with its scheduling interval",
    severity=Severity.HIGH,
    description=(
        "For every DRPlacementControl whose DRPolicy has a schedulingInterval (Regional-DR, async): the age of "
        "status.lastGroupSyncTime at capture time as a multiple of the interval; above "
        "thresholds.async_lag_warn_ratio (default 2) warns, at or above thresholds.async_lag_fail_ratio (default 3) "
        "fails, no sync at all fails. Metro-DR (sync) DRPCs are skipped: their RPO comes from synchronous "
        "replication, judged by the Ceph checks."
    ),
    rationale=(
        "The age of the last group sync is the data a failover would lose right now. Ramen's own "
        "VolumeSynchronizationDelay alert (config/prometheus/alerts.yaml, ramen_rpo_difference = sync age / "
        "interval) grades it the same way: above 2 warning, 3 or more critical."
    ),
    remediation=(
        "Check the VolumeReplication (or VolSync ReplicationSource) status of the application's PVCs on the primary "
        "cluster and the replication link to the peer (`oc get volumereplication -n NAMESPACE -o yaml`); for a DRPC "
        "that never synced, check the VRG conditions DataReady and DataProtected on the primary. If the interval is "
        "too short for the change rate, choose a DRPolicy with a longer schedulingInterval."
    ),
    kinds_read=("DRPlacementControl", "DRPolicy"),
)

RULE_SOURCE = (
    "Ramen alert VolumeSynchronizationDelay (RamenDR/ramen config/prometheus/alerts.yaml): "
    "ramen_rpo_difference > 2 warning, >= 3 critical"
)


def run(ctx: AuditContext) -> list[Finding]:
    apps = applications(ctx.estate.hub)
    if not apps:
        return [META.finding(Status.SKIP, "No DRPlacementControl on the hub: no replication to judge.", cluster="hub")]
    return [_finding(ctx, app) for app in apps]


def _finding(ctx: AuditContext, app: Application) -> Finding:
    resource = ResourceRef.of(app.drpc)
    policy = ctx.estate.hub.get("DRPolicy", app.policy_name or "")
    if policy is None:
        return META.finding(
            Status.SKIP,
            f"DRPC {app.key} names DRPolicy {app.policy_name or '(none)'}, which is not on the hub: without its "
            "scheduling interval the replication lag cannot be judged.",
            cluster="hub",
            resource=resource,
            evidence={"drpc": app.key, "drpolicy": app.policy_name},
        )
    raw_interval = (policy.get("spec") or {}).get("schedulingInterval") or ""
    status = app.drpc.get("status") or {}
    thresholds = ctx.config.thresholds
    evidence = {
        "drpc": app.key,
        "drpolicy": app.policy_name,
        "scheduling_interval": raw_interval or None,
        "last_group_sync_time": status.get("lastGroupSyncTime"),
        "last_group_sync_duration": status.get("lastGroupSyncDuration"),
        "last_group_sync_bytes": status.get("lastGroupSyncBytes"),
        "captured_at": rfc3339(ctx.now),
        "age_seconds": None,
        "ratio": None,
        "warn_ratio": thresholds.async_lag_warn_ratio,
        "fail_ratio": thresholds.async_lag_fail_ratio,
        "rule_source": RULE_SOURCE,
    }

    def finding(state: Status, message: str) -> Finding:
        return META.finding(state, message, cluster="hub", resource=resource, evidence=evidence)

    if is_metro(policy):  # the same reading of the interval as drpolicy_validity's
        return finding(
            Status.SKIP,
            f"DRPC {app.key} uses Metro-DR policy {app.policy_name} (no scheduling interval): its RPO comes from "
            "synchronous replication and the Ceph checks, not from a group sync time.",
        )
    interval = parse_scheduling_interval(raw_interval)
    if interval is None:
        return finding(
            Status.FAIL,
            f"DRPolicy {app.policy_name} of DRPC {app.key} has schedulingInterval {raw_interval!r}, which is not a "
            "positive number of minutes, hours or days (Ramen pattern ^(|\\d+[mhd])$): replication is not scheduled.",
        )
    evidence["interval_seconds"] = interval.total_seconds()
    synced = parse_time(status.get("lastGroupSyncTime"))
    if synced is None:
        return finding(
            Status.FAIL,
            f"DRPC {app.key} has never completed a group sync (no status.lastGroupSyncTime) with a "
            f"{raw_interval} interval: a failover now would have no replicated data to recover.",
        )
    age = ctx.now - synced
    ratio = age / interval
    evidence.update(age_seconds=age.total_seconds(), ratio=round(ratio, 2))
    described = (
        f"DRPC {app.key} last synced at {rfc3339(synced)}, {human_age(max(age, timedelta(0)))} before capture: "
        f"{ratio:.2f}x its {raw_interval} interval"
    )
    if ratio >= thresholds.async_lag_fail_ratio:
        return finding(
            Status.FAIL,
            f"{described}, at or above the {thresholds.async_lag_fail_ratio:g}x limit: a failover now would lose "
            "everything written since.",
        )
    if ratio > thresholds.async_lag_warn_ratio:
        return finding(Status.WARN, f"{described}, above the {thresholds.async_lag_warn_ratio:g}x warning level.")
    return finding(Status.PASS, f"{described}, within the {thresholds.async_lag_warn_ratio:g}x warning level.")
