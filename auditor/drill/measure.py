"""RTO and RPO as a drill measures them: step stamps taken from watch events, and the canary's data-loss window.

Every time is a pair (wall clock for the record, monotonic clock for durations): the wall clock can step during a
drill (NTP), the monotonic one cannot, so every duration is computed on the monotonic clock only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from auditor.timeutil import rfc3339

# The steps of one VM's recovery, in the order they happen (docs/drills.md).
STEPS = (
    "snapshot_ready",  # the primary's VolumeSnapshot of every disk is readyToUse
    "content_ready",  # the pre-provisioned snapshots on the secondary are readyToUse
    "pvc_bound",  # every restored PVC is Bound
    "vmi_scheduled",  # the VM copy's VMI reached phase Scheduled
    "vmi_running",  # ... phase Running
    "agent_connected",  # the guest agent answered (condition AgentConnected)
    "probe_ready",  # the configured readiness probe passed (condition Ready); only with a probe
)
# How a VM's drill ended.
VM_OUTCOMES = ("ready", "failed", "timeout", "aborted")


@dataclass(frozen=True)
class Instant:
    wall: datetime
    mono: float

    @classmethod
    def now(cls) -> Instant:
        return cls(datetime.now(UTC), time.monotonic())

    def to_json(self) -> dict[str, Any]:
        return {"wall": rfc3339(self.wall), "monotonic": self.mono}


@dataclass
class VmTimeline:
    """One VM's steps as seconds after T0, filled in by the thread that drives it."""

    namespace: str
    name: str
    removed: tuple[str, ...] = ()
    steps: dict[str, Instant] = field(default_factory=dict)
    outcome: str | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def reach(self, step: str, at: Instant) -> None:
        """A disk step is reached when its last disk is: keep the latest stamp."""
        if step not in STEPS:
            raise ValueError(f"unknown drill step {step!r}")
        current = self.steps.get(step)
        if current is None or at.mono > current.mono:
            self.steps[step] = at

    def last_step(self) -> str:
        return max(self.steps, key=STEPS.index) if self.steps else "none"

    def rto_seconds(self, start: Instant) -> float | None:
        """Drill start until the VM's final step; None unless the VM got there."""
        if self.outcome != "ready" or not self.steps:
            return None
        return round(max(at.mono for at in self.steps.values()) - start.mono, 3)

    def to_json(self, start: Instant) -> dict[str, Any]:
        ordered = sorted(self.steps.items(), key=lambda item: STEPS.index(item[0]))
        return {
            "namespace": self.namespace,
            "name": self.name,
            "outcome": self.outcome,
            "rto_seconds": self.rto_seconds(start),
            "error": self.error,
            "steps": [
                {"step": step, "seconds": round(at.mono - start.mono, 3), "wall": rfc3339(at.wall)}
                for step, at in ordered
            ],
            "removed": list(self.removed),
        }


def canary_timestamp(message: str) -> datetime:
    """The reader pod's termination message: `date -u +%s.%N` output (seconds since the epoch, nanoseconds)."""
    text = message.strip()
    try:
        seconds = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"canary read back {text[:40]!r}, not a `date +%s.%N` timestamp") from exc
    if not seconds.is_finite() or seconds <= 0:
        raise ValueError(f"canary read back {text[:40]!r}, not a timestamp")
    return datetime.fromtimestamp(float(seconds), UTC)


@dataclass(frozen=True)
class CanaryRpo:
    """What the canary proves: the newest write the snapshot holds against the instant the snapshot was asked for.

    The writer stamps the canary every ``resolution`` seconds, so a window shorter than that shows nothing acknowledged
    was lost (RPO 0 at the canary's resolution); a longer window is data the secondary would not have.
    """

    snapshot_requested: datetime
    canary_timestamp: datetime
    resolution: float
    stretch_degraded: bool | None

    @property
    def window_seconds(self) -> float:
        return round((self.snapshot_requested - self.canary_timestamp).total_seconds(), 3)

    @property
    def seconds(self) -> float:
        window = self.window_seconds
        return 0.0 if window <= self.resolution else window

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "canary",
            "seconds": self.seconds,
            "window_seconds": self.window_seconds,
            "resolution_seconds": self.resolution,
            "snapshot_requested": rfc3339(self.snapshot_requested),
            "canary_timestamp": rfc3339(self.canary_timestamp),
            "stretch_degraded": self.stretch_degraded,
        }
