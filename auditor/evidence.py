"""The evidence store: a versioned SQLite history of failover drills.

Drills write it; the last-successful-test check reads it (through the audit context, so checks stay
free of I/O). SQLite in WAL mode because a scheduled audit and a manual drill may touch it at once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.errors import InputError
from auditor.timeutil import parse_time, rfc3339

OUTCOMES = ("success", "failure", "aborted")

# Each entry migrates the schema from version N to N+1; PRAGMA user_version records N.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE drill_runs (
        id            TEXT PRIMARY KEY,
        app_namespace TEXT NOT NULL,
        app_name      TEXT NOT NULL,
        started_at    TEXT NOT NULL,
        finished_at   TEXT NOT NULL,
        outcome       TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'aborted')),
        mode          TEXT NOT NULL,
        rto_seconds   REAL,
        rpo_seconds   REAL,
        run_by        TEXT NOT NULL,
        tool_version  TEXT NOT NULL,
        details       TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX drill_runs_app ON drill_runs (app_namespace, app_name, finished_at);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass(frozen=True)
class DrillRecord:
    """One test failover of one application (a DRPC on the hub)."""

    id: str
    app_namespace: str
    app_name: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    mode: str
    run_by: str
    tool_version: str
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"], data["finished_at"] = rfc3339(self.started_at), rfc3339(self.finished_at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> DrillRecord:
        try:
            times = {key: _time(data, key, where) for key in ("started_at", "finished_at")}
            record = cls(**{**data, **times})
        except TypeError as exc:
            raise InputError(f"{where}: not a drill record: {exc}") from exc
        if record.outcome not in OUTCOMES:
            raise InputError(f"{where}: outcome {record.outcome!r} is not one of {', '.join(OUTCOMES)}")
        return record


def _time(data: dict[str, Any], key: str, where: str) -> datetime:
    moment = parse_time(data.get(key))
    if moment is None:
        raise InputError(f"{where}: {key} {data.get(key)!r} is not an RFC 3339 timestamp")
    return moment


class EvidenceStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a drauditor evidence store ({exc})") from exc

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise InputError(
                f"{self.path}: evidence store schema v{version} is newer than this drauditor supports "
                f"(v{SCHEMA_VERSION}); upgrade drauditor"
            )
        for target in range(version, SCHEMA_VERSION):
            with self._db:
                self._db.executescript(_MIGRATIONS[target])
                self._db.execute(f"PRAGMA user_version = {target + 1}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_drill(self, record: DrillRecord) -> None:
        self._insert([record])

    def import_records(self, records: Iterable[dict[str, Any]], where: str) -> int:
        """All or nothing: a bad record anywhere leaves the store as it was."""
        parsed = []
        for index, data in enumerate(records):
            if not isinstance(data, dict):
                raise InputError(f"{where}: record {index} is not a mapping")
            parsed.append(DrillRecord.from_dict(data, f"{where}: record {index}"))
        self._insert(parsed)
        return len(parsed)

    def _insert(self, records: list[DrillRecord]) -> None:
        try:
            with self._db:
                for record in records:
                    row = record.to_dict()
                    row["details"] = json.dumps(record.details, sort_keys=True)
                    self._db.execute(
                        f"INSERT INTO drill_runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()),
                    )
        except sqlite3.IntegrityError as exc:
            raise InputError(f"{self.path}: cannot record drill: {exc}") from exc

    def drills(self) -> list[DrillRecord]:
        cursor = self._db.execute("SELECT * FROM drill_runs ORDER BY finished_at")
        columns = [c[0] for c in cursor.description]
        records = []
        for values in cursor.fetchall():
            data = dict(zip(columns, values, strict=True))
            data["details"] = json.loads(data["details"])
            records.append(DrillRecord.from_dict(data, f"{self.path}: drill {data['id']}"))
        return records
