"""Is every DRPlacementControl settled, so that a failover could start now?

A failover is refused or goes wrong while Ramen is still busy with the last action (FailingOver, Relocating,
WaitForFencing, Cleaning Up), while the peer is not ready, while the data is not protected, or while a test
failover has paused replication. The DRPC status says all of this; this check reads it as ramenctl's
`validate application` does, and adds what ramenctl does not know: the dry-run test failover.
"""

from __future__ import annotations

from auditor.context import AuditContext
from auditor.evidence import DrillRecord
from auditor.inventory import Obj, meta
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.ramen import Application, applications, quote_condition, unmet_conditions
from auditor.timeutil import rfc3339

META = CheckMeta(
    id="drpc_state",
    title="Each DRPlacementControl is settled and ready for a failover",
    severity=Severity.CRITICAL,
    description=(
        "For every DRPlacementControl: conditions Available, PeerReady and Protected are True; status.phase is the "
        "stable phase of spec.action (none: Deployed, Failover: FailedOver, Relocate: Relocated); status.progression "
        "is Completed; no test failover (spec.dryRun, progression TestingFailover) is running outside a drill on "
        "record; status.observedGeneration has caught up with metadata.generation."
    ),
    rationale=(
        "Ramen runs one action at a time: a DRPC still failing over, relocating, waiting for fencing or cleaning up "
        "cannot take a new failover, and one that is not Protected or PeerReady would fail over stale or missing "
        "data. A dry-run test failover pauses replication until it is ended (RamenDR/ramen #2521)."
    ),
    remediation=(
        "Follow the DRPC on the hub (`oc get drpc -n NAMESPACE NAME -o yaml`) until the action completes; for a "
        "condition that stays False, act on its reason and message (e.g. fence the failed cluster for "
        "WaitForFencing, remove the old workload for WaitOnUserToCleanUp). End a test failover that is not part of "
        "a running drill by setting spec.dryRun to false. A stale observedGeneration means the Ramen hub operator is "
        "not reconciling: check its pod and logs."
    ),
    kinds_read=("DRPlacementControl", "evidence:drill_runs"),
)

CONDITIONS = ("Available", "PeerReady", "Protected")
# The phase each spec.action settles in (ramenctl pkg/ramen StablePhase); any other phase is mid-action.
STABLE_PHASE = {"": "Deployed", "Failover": "FailedOver", "Relocate": "Relocated"}
COMPLETED = "Completed"
TESTING_FAILOVER = "TestingFailover"


def run(ctx: AuditContext) -> list[Finding]:
    apps = applications(ctx.estate.hub)
    if not apps:
        return [META.finding(Status.SKIP, "No DRPlacementControl on the hub: no application to judge.", cluster="hub")]
    return [_finding(app, _running_drills(ctx, app)) for app in apps]


def _running_drills(ctx: AuditContext, app: Application) -> list[DrillRecord]:
    """Drills of this application on record whose run spans the capture time."""
    return [
        d
        for d in ctx.drills
        if (d.app_namespace, d.app_name) == (app.namespace, app.name) and d.started_at <= ctx.now <= d.finished_at
    ]


def _finding(app: Application, drills: list[DrillRecord]) -> Finding:
    drpc = app.drpc
    spec, status = drpc.get("spec") or {}, drpc.get("status") or {}
    action, phase, progression = spec.get("action") or "", status.get("phase"), status.get("progression")
    generation, observed = meta(drpc).get("generation"), status.get("observedGeneration")
    failures: list[str] = []
    warnings: list[str] = []

    testing = bool(spec.get("dryRun")) or progression == TESTING_FAILOVER
    if testing:
        how = f"spec.dryRun {bool(spec.get('dryRun'))}, progression {progression or 'none'}"
        if drills:
            warnings.append(
                f"a test failover is running ({how}) as part of drill {drills[0].id}: replication is paused until "
                "it ends"
            )
        else:
            failures.append(
                f"a test failover is running ({how}): replication is paused, and no drill of this application on "
                "record spans the capture time, so a drill left running must be ended (spec.dryRun: false)"
            )
    failures.extend(_phase_problems(action, phase, progression, testing))
    failures.extend(quote_condition(t, c) for t, c in unmet_conditions(drpc, CONDITIONS).items())
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        warnings.append(
            f"status.observedGeneration {observed} is behind metadata.generation {generation}: the status is stale"
        )

    evidence = {
        "drpc": app.key,
        "action": action or None,
        "phase": phase,
        "stable_phase": STABLE_PHASE.get(action),
        "progression": progression,
        "dry_run": bool(spec.get("dryRun")),
        "running_drills": [
            {"id": d.id, "started_at": rfc3339(d.started_at), "finished_at": rfc3339(d.finished_at)} for d in drills
        ],
        "conditions": _conditions_evidence(drpc),
        "generation": generation,
        "observed_generation": observed,
        "problems": failures + warnings,
    }
    resource = ResourceRef.of(drpc)
    if failures or warnings:
        state = Status.FAIL if failures else Status.WARN
        verdict = "is not ready for a failover now" if failures else "is at risk"
        return META.finding(
            state,
            f"DRPC {app.key} {verdict}: {'; '.join(failures + warnings)}.",
            cluster="hub",
            resource=resource,
            evidence=evidence,
        )
    settled = f"phase {phase}" + (f" after action {action}" if action else "")
    return META.finding(
        Status.PASS,
        f"DRPC {app.key} is settled ({settled}, progression {COMPLETED}) and Available, PeerReady and Protected.",
        cluster="hub",
        resource=resource,
        evidence=evidence,
    )


def _phase_problems(action: str, phase: str | None, progression: str | None, testing: bool) -> list[str]:
    stable = STABLE_PHASE.get(action)
    if stable is None:
        return [f"spec.action {action!r} is not one Ramen knows (Failover, Relocate or none)"]
    problems = []
    if phase != stable:
        doing = f"action {action}" if action else "no action"
        problems.append(f"phase {phase or 'none'} is mid-action (with {doing} the stable phase is {stable})")
    # A test failover already explains its own progression.
    if progression != COMPLETED and not (testing and progression == TESTING_FAILOVER):
        problems.append(f"progression {progression or 'none'} is not {COMPLETED}")
    return problems


def _conditions_evidence(drpc: Obj) -> list[dict]:
    return [
        {key: c.get(key) for key in ("type", "status", "reason", "message")}
        for c in ((drpc.get("status") or {}).get("conditions") or [])
        if c.get("type") in CONDITIONS
    ]
