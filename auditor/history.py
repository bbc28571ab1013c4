"""Readiness over time: the earlier audits in the evidence store, each application's drill RTOs and its drills.

The report carries this as its optional `history` (docs/contract.md section 2) so the trend an auditor reads in the
HTML and PDF is exactly what report.json holds. It is taken from the store's records as they are before the audit
files its own, and capped, so a schedule running for years keeps report.json small.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditor import drill_details
from auditor.drill_details import DrillDetails
from auditor.evidence import AuditRecord, DrillRecord
from auditor.timeutil import parse_time, rfc3339

MAX_RUNS = 100  # newest audits listed; older ones are counted only
MAX_DRILLS = 20  # newest measured drills, and newest drills of any outcome, per application


@dataclass(frozen=True)
class PastRun:
    """One earlier audit, as the evidence store filed it."""

    id: str
    started_at: datetime
    finished_at: datetime
    verdict: str
    summary: dict[str, int]  # findings per status
    source: str
    tool_version: str
    report_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
            "verdict": self.verdict,
            "summary": dict(self.summary),
            "source": self.source,
            "tool_version": self.tool_version,
            "report_sha256": self.report_sha256,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PastRun:
        return cls(
            id=data["id"],
            started_at=parse_time(data["started_at"]),
            finished_at=parse_time(data["finished_at"]),
            verdict=data["verdict"],
            summary=dict(data["summary"]),
            source=data["source"],
            tool_version=data["tool_version"],
            report_sha256=data["report_sha256"],
        )


@dataclass(frozen=True)
class Measurement:
    """The RTO one successful drill measured."""

    drill_id: str
    finished_at: datetime
    rto_seconds: float
    mode: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.drill_id,
            "finished_at": rfc3339(self.finished_at),
            "rto_seconds": self.rto_seconds,
            "mode": self.mode,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        return cls(data["id"], parse_time(data["finished_at"]), float(data["rto_seconds"]), data["mode"])


@dataclass(frozen=True)
class AppRto:
    """An application's measured RTOs, oldest first; the last one is its current figure."""

    namespace: str
    name: str
    drills: tuple[Measurement, ...]
    total: int  # measured drills on record, of which the newest MAX_DRILLS are listed

    @property
    def application(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def last(self) -> Measurement:
        return self.drills[-1]

    @property
    def previous(self) -> Measurement | None:
        return self.drills[-2] if len(self.drills) > 1 else None

    @property
    def change_seconds(self) -> float | None:
        """How much longer (positive) or shorter the last recovery took than the one before it."""
        return self.last.rto_seconds - self.previous.rto_seconds if self.previous else None

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "drills_total": self.total,
            "drills": [m.to_json() for m in self.drills],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppRto:
        drills = tuple(Measurement.from_json(m) for m in data["drills"])
        return cls(data["namespace"], data["name"], drills, int(data["drills_total"]))


@dataclass(frozen=True)
class PastDrill:
    """One drill of an application as the store filed it, whatever its outcome."""

    id: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    mode: str
    run_by: str
    tool_version: str
    rto_seconds: float | None
    rpo_seconds: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
            "outcome": self.outcome,
            "mode": self.mode,
            "run_by": self.run_by,
            "tool_version": self.tool_version,
            "rto_seconds": self.rto_seconds,
            "rpo_seconds": self.rpo_seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PastDrill:
        return cls(
            id=data["id"],
            started_at=parse_time(data["started_at"]),
            finished_at=parse_time(data["finished_at"]),
            outcome=data["outcome"],
            mode=data["mode"],
            run_by=data["run_by"],
            tool_version=data["tool_version"],
            rto_seconds=data["rto_seconds"],
            rpo_seconds=data["rpo_seconds"],
        )


@dataclass(frozen=True)
class AppDrills:
    """An application's drills of every outcome, oldest first, and what the newest one recorded in detail."""

    namespace: str
    name: str
    drills: tuple[PastDrill, ...]
    total: int  # drills on record, of which the newest MAX_DRILLS are listed
    latest_details: DrillDetails | None  # of drills[-1]; None when it has no schema-1 details (older, imported)

    @property
    def application(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def latest(self) -> PastDrill:
        return self.drills[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "drills_total": self.total,
            "drills": [d.to_json() for d in self.drills],
            "latest_details": self.latest_details.to_json() if self.latest_details else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppDrills:
        return cls(
            namespace=data["namespace"],
            name=data["name"],
            drills=tuple(PastDrill.from_json(d) for d in data["drills"]),
            total=int(data["drills_total"]),
            latest_details=drill_details.parse(data.get("latest_details")),
        )


@dataclass(frozen=True)
class History:
    runs: tuple[PastRun, ...]  # oldest first, the newest MAX_RUNS
    runs_total: int
    applications: tuple[AppRto, ...]  # by namespace/name; only applications with a measured RTO
    drills: tuple[AppDrills, ...] = ()  # by namespace/name; every application with a drill on record

    def to_json(self) -> dict[str, Any]:
        return {
            "audits_total": self.runs_total,
            "audits": [run.to_json() for run in self.runs],
            "rto": [app.to_json() for app in self.applications],
            "drills": [app.to_json() for app in self.drills],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        return cls(
            runs=tuple(PastRun.from_json(run) for run in data["audits"]),
            runs_total=int(data["audits_total"]),
            applications=tuple(AppRto.from_json(app) for app in data["rto"]),
            # Absent from a report.json written before the drill chapter existed.
            drills=tuple(AppDrills.from_json(app) for app in data.get("drills", ())),
        )


def history_of(audits: list[AuditRecord], drills: tuple[DrillRecord, ...] | list[DrillRecord]) -> History:
    """The store's audits (in its oldest-first order), every successful drill's RTO per application, and each
    application's drills of any outcome with the newest one's details.

    A store is kept per estate (as the schedule keeps one): its audits are this estate's earlier runs.
    """
    runs = tuple(
        PastRun(a.id, a.started_at, a.finished_at, a.verdict, a.summary, a.source, a.tool_version, a.report_sha256)
        for a in audits[-MAX_RUNS:]
    )
    measured: dict[tuple[str, str], list[Measurement]] = {}
    ordered = sorted(drills, key=lambda d: (d.finished_at, d.id))
    for drill in ordered:
        # Only a successful failover measured how long recovery takes; an aborted one's duration means nothing.
        if drill.outcome == "success" and drill.rto_seconds is not None:
            point = Measurement(drill.id, drill.finished_at, drill.rto_seconds, drill.mode)
            measured.setdefault((drill.app_namespace, drill.app_name), []).append(point)
    applications = tuple(
        AppRto(namespace, name, tuple(points[-MAX_DRILLS:]), len(points))
        for (namespace, name), points in sorted(measured.items())
    )
    return History(runs=runs, runs_total=len(audits), applications=applications, drills=_drills_per_app(ordered))


def _drills_per_app(ordered: list[DrillRecord]) -> tuple[AppDrills, ...]:
    """Drills (oldest first) grouped by application, the newest MAX_DRILLS of each kept."""
    grouped: dict[tuple[str, str], list[DrillRecord]] = {}
    for drill in ordered:
        grouped.setdefault((drill.app_namespace, drill.app_name), []).append(drill)
    return tuple(
        AppDrills(
            namespace,
            name,
            tuple(_past(d) for d in records[-MAX_DRILLS:]),
            len(records),
            drill_details.parse(records[-1].details),
        )
        for (namespace, name), records in sorted(grouped.items())
    )


def _past(drill: DrillRecord) -> PastDrill:
    return PastDrill(
        drill.id,
        drill.started_at,
        drill.finished_at,
        drill.outcome,
        drill.mode,
        drill.run_by,
        drill.tool_version,
        drill.rto_seconds,
        drill.rpo_seconds,
    )
