"""The drill's result for a person at a terminal: the plan as manifests, or what was measured against the targets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import yaml

from auditor.drill.measure import STEPS
from auditor.report.terminal import printable

if TYPE_CHECKING:
    from auditor.drill.runner import DrillResult


def drill_summary_lines(result: DrillResult) -> Iterator[str]:
    if result.plan_only and result.plan is not None:
        yield from _plan_lines(result)
    yield from (f"refused: {printable(reason)}" for reason in result.refusals)
    if result.record is None:
        if result.refusals and not result.plan_only:
            yield "Nothing was created. Fix the above, or drill anyway with --force."
        return
    yield from _measured_lines(result)


def _plan_lines(result: DrillResult) -> Iterator[str]:
    assert result.plan is not None
    preview = result.plan.preview()
    yield f"# drauditor drill plan {result.plan.drill_id}: {len(preview)} object(s) would be created, in this order"
    for item in preview:
        yield "---"
        yield f"# cluster: {item['cluster']}"
        yield from (printable(line) for line in yaml.safe_dump(item["manifest"], sort_keys=False).splitlines())


def _measured_lines(result: DrillResult) -> Iterator[str]:
    record = result.record
    assert record is not None
    details = record.details
    yield f"Drill {record.id} of {record.app_namespace}/{record.app_name}: {record.outcome}"
    yield f"  {details.get('primary')} -> {details.get('secondary')}, namespace {details.get('namespace')}"
    for vm in details.get("vms") or []:
        steps = {s["step"]: s["seconds"] for s in vm.get("steps") or []}
        timeline = "  ".join(f"{step} {steps[step]:.2f}s" for step in STEPS if step in steps)
        yield f"  VM {vm['namespace']}/{vm['name']}: {vm['outcome']}  {timeline}"
        if vm.get("error"):
            yield f"    {printable(vm['error'])}"
    targets = details.get("targets") or {}
    for measure, achieved in (("RTO", record.rto_seconds), ("RPO", record.rpo_seconds)):
        key = measure.lower()
        target = _value(targets.get(f"{key}_seconds"))
        yield f"  {measure} {_value(achieved)} (target {target}{_met(targets.get(f'{key}_met'))})"
    rpo = details.get("rpo") or {}
    if rpo:
        stretch = {True: "degraded", False: "healthy", None: "unknown"}[rpo.get("stretch_degraded")]
        yield (
            f"    canary window {rpo['window_seconds']}s at {rpo['resolution_seconds']}s resolution; "
            f"Ceph stretch {stretch} at the snapshot"
        )
    if details.get("error"):
        yield f"  error: {printable(details['error'])}"
    cleanup = details.get("cleanup") or {}
    if cleanup.get("complete"):
        yield "  cleanup: complete, nothing left on either cluster"
    else:
        yield f"  cleanup: INCOMPLETE, left: {printable('; '.join(cleanup.get('residue') or []))}"
        yield f"  run `drauditor drill cleanup --id {record.id}` once the clusters answer"
    yield f"  evidence: {result.recorded_in or 'not recorded (no evidence store)'}"


def _value(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f}s"


def _met(met: bool | None) -> str:
    return {True: ", met", False: ", MISSED", None: ""}[met]
