"""Runs checks over one audit context and turns every outcome, crashes included, into findings."""

from __future__ import annotations

from dataclasses import replace

from auditor.context import AuditContext
from auditor.model import Finding, Severity, Status
from auditor.registry import Check, LoadFailure


def _error(
    check_id: str, title: str, severity: Severity, message: str, evidence: dict, cluster: str | None = None
) -> Finding:
    return Finding(check_id, title, Status.ERROR, severity, message, cluster=cluster, evidence=evidence)


def unreadable_inputs(check: Check, ctx: AuditContext) -> list[Finding]:
    """Error findings for every kind the check reads that the source could not read, on any cluster."""
    meta = check.meta
    return [
        _error(
            meta.id,
            meta.title,
            meta.severity,
            f"Cannot evaluate: {kind} could not be read on {cluster}: {reason}.",
            {"kind": kind, "cluster": cluster, "reason": reason},
            cluster=cluster,
        )
        for cluster, kind, reason in ctx.estate.unavailable()
        if kind in meta.kinds_read
    ]


def run_check(check: Check, ctx: AuditContext) -> list[Finding]:
    """The check's findings; never judged on an inventory that silently lacks a kind it reads.

    An input missing on the hub or from Ceph stops the check. A kind missing on some managed clusters leaves those
    clusters out of the check's view, so what was read elsewhere is still judged.
    """
    unreadable = unreadable_inputs(check, ctx)
    affected = {f.cluster for f in unreadable}
    if not affected:
        return _run(check, ctx)
    if affected - set(ctx.estate.clusters) or not set(ctx.estate.clusters) - affected:
        return unreadable  # the hub or Ceph lacks an input, or no managed cluster is left to judge
    view = replace(ctx.estate, clusters={n: inv for n, inv in ctx.estate.clusters.items() if n not in affected})
    return unreadable + _run(check, replace(ctx, estate=view))


def _run(check: Check, ctx: AuditContext) -> list[Finding]:
    meta = check.meta
    try:
        findings = list(check.run(ctx))
    except Exception as exc:
        summary = f"{type(exc).__name__}: {exc}"
        return [_error(meta.id, meta.title, meta.severity, f"The check crashed: {summary}", {"exception": summary})]
    if not findings:
        return [_error(meta.id, meta.title, meta.severity, "The check returned no findings.", {})]
    foreign = [f for f in findings if f.check_id != meta.id]
    if foreign:
        return [
            _error(
                meta.id,
                meta.title,
                meta.severity,
                f"The check returned findings for other check ids: {sorted({f.check_id for f in foreign})}.",
                {},
            )
        ]
    return findings


def run_checks(ctx: AuditContext, checks: list[Check], failures: list[LoadFailure]) -> list[Finding]:
    findings = [
        _error(
            failure.check_id,
            failure.check_id,
            Severity.HIGH,
            f"The check could not be loaded from {failure.module}: {failure.reason}",
            {"module": failure.module},
        )
        for failure in failures
    ]
    for check in sorted(checks, key=lambda c: c.meta.id):
        findings.extend(run_check(check, ctx))
    return findings
