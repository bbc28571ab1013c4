"""A drill record's ``details`` (schema 1, written by ``drauditor drill``) as the report reads and re-emits them.

The evidence store also holds drills imported from JSON and drills filed before ``details`` had a schema, so this
reading is tolerant: a record whose details are not schema 1 has none, and a field of the wrong type is read as
unknown rather than trusted, so one odd record never stops a report. The report keeps the subset it renders (no
object UIDs, no kubeconfig contexts) in the same shape, so report.json is read back by the same function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditor import lenient
from auditor.drill.measure import STEPS
from auditor.timeutil import parse_time, rfc3339

SCHEMA = 1


@dataclass(frozen=True)
class Step:
    """One recovery step a VM reached: seconds after T0 (monotonic clock) and the wall time it happened."""

    step: str
    seconds: float
    wall: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "seconds": self.seconds, "wall": _time_text(self.wall)}


@dataclass(frozen=True)
class VmRecovery:
    """How one VM's copy came back on the secondary (or did not)."""

    namespace: str
    name: str
    outcome: str  # ready | failed | timeout | aborted
    rto_seconds: float | None
    error: str | None
    steps: tuple[Step, ...]  # in recovery order
    removed: tuple[str, ...]  # what the copy left out of the source VM, as human notes

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def recovered(self) -> bool:
        return self.outcome == "ready"

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "outcome": self.outcome,
            "rto_seconds": self.rto_seconds,
            "error": self.error,
            "steps": [step.to_json() for step in self.steps],
            "removed": list(self.removed),
        }


@dataclass(frozen=True)
class RpoMeasure:
    """What the canary showed: the newest write the snapshot held against the instant the snapshot was asked for."""

    method: str
    seconds: float | None
    window_seconds: float | None
    resolution_seconds: float | None
    snapshot_requested: datetime | None
    canary_timestamp: datetime | None
    stretch_degraded: bool | None  # None: no Ceph source was configured

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "seconds": self.seconds,
            "window_seconds": self.window_seconds,
            "resolution_seconds": self.resolution_seconds,
            "snapshot_requested": _time_text(self.snapshot_requested),
            "canary_timestamp": _time_text(self.canary_timestamp),
            "stretch_degraded": self.stretch_degraded,
        }


@dataclass(frozen=True)
class Cleanup:
    complete: bool | None
    residue: tuple[str, ...]  # what was still there when cleanup gave up, by name

    def to_json(self) -> dict[str, Any]:
        return {"complete": self.complete, "residue": list(self.residue)}


@dataclass(frozen=True)
class DrillDetails:
    primary: str | None
    secondary: str | None
    namespace: str | None  # the drill namespace on both clusters
    policy: str | None
    replication: str | None
    rto_target: float | None
    rpo_target: float | None
    started: datetime | None  # T0: just before the first snapshot request
    vms: tuple[VmRecovery, ...]
    rpo: RpoMeasure | None
    cleanup: Cleanup | None
    error: str | None
    preflight_forced: bool
    refusals: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "primary": self.primary,
            "secondary": self.secondary,
            "namespace": self.namespace,
            "policy": self.policy,
            "replication": self.replication,
            "targets": {"rto_seconds": self.rto_target, "rpo_seconds": self.rpo_target},
            "started": {"wall": _time_text(self.started)},
            "vms": [vm.to_json() for vm in self.vms],
            "rpo": self.rpo.to_json() if self.rpo else None,
            "cleanup": self.cleanup.to_json() if self.cleanup else None,
            "error": self.error,
            "preflight": {"forced": self.preflight_forced, "refusals": list(self.refusals)},
        }


def parse(details: Any) -> DrillDetails | None:
    """The details of a drill record or of report.json's history; None unless they are schema 1."""
    if not isinstance(details, dict) or details.get("schema") != SCHEMA:
        return None
    targets = lenient.mapping(details.get("targets"))
    preflight = lenient.mapping(details.get("preflight"))
    return DrillDetails(
        primary=lenient.text(details.get("primary")),
        secondary=lenient.text(details.get("secondary")),
        namespace=lenient.text(details.get("namespace")),
        policy=lenient.text(details.get("policy")),
        replication=lenient.text(details.get("replication")),
        rto_target=lenient.number(targets.get("rto_seconds")),
        rpo_target=lenient.number(targets.get("rpo_seconds")),
        started=parse_time(lenient.mapping(details.get("started")).get("wall")),
        vms=tuple(vm for item in lenient.items(details.get("vms")) if (vm := _vm(item)) is not None),
        rpo=_rpo(details.get("rpo")),
        cleanup=_cleanup(details.get("cleanup")),
        error=lenient.text(details.get("error")),
        preflight_forced=preflight.get("forced") is True,
        refusals=tuple(_text(item) for item in lenient.items(preflight.get("refusals"))),
    )


def _vm(data: Any) -> VmRecovery | None:
    if not isinstance(data, dict) or not lenient.text(data.get("name")):
        return None
    steps = []
    for item in lenient.items(data.get("steps")):
        step, seconds = (
            (lenient.text(item.get("step")), lenient.number(item.get("seconds")))
            if isinstance(item, dict)
            else (None, None)
        )
        if step in STEPS and seconds is not None:
            steps.append(Step(step, seconds, parse_time(item.get("wall"))))
    return VmRecovery(
        namespace=lenient.text(data.get("namespace")) or "",
        name=data["name"],
        outcome=lenient.text(data.get("outcome")) or "unknown",
        rto_seconds=lenient.number(data.get("rto_seconds")),
        error=lenient.text(data.get("error")),
        steps=tuple(sorted(steps, key=lambda s: STEPS.index(s.step))),
        removed=tuple(_text(note) for note in lenient.items(data.get("removed"))),
    )


def _rpo(data: Any) -> RpoMeasure | None:
    if not isinstance(data, dict):
        return None
    degraded = data.get("stretch_degraded")
    return RpoMeasure(
        method=lenient.text(data.get("method")) or "unknown",
        seconds=lenient.number(data.get("seconds")),
        window_seconds=lenient.number(data.get("window_seconds")),
        resolution_seconds=lenient.number(data.get("resolution_seconds")),
        snapshot_requested=parse_time(data.get("snapshot_requested")),
        canary_timestamp=parse_time(data.get("canary_timestamp")),
        stretch_degraded=degraded if isinstance(degraded, bool) else None,
    )


def _cleanup(data: Any) -> Cleanup | None:
    if not isinstance(data, dict):
        return None
    complete = data.get("complete")
    return Cleanup(
        complete=complete if isinstance(complete, bool) else None,
        residue=tuple(_text(item) for item in lenient.items(data.get("residue"))),
    )


def _text(value: Any) -> str:
    """A note, refusal or residue entry as one line: strings as they are, anything structured as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _time_text(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment else None
