"""The evidence store: a versioned SQLite history of failover drills and of the audits that judged them.

Drills write it; the last-successful-test check reads it (through the audit context, so checks stay free of I/O);
every `drauditor audit` given a store files its verdict in it, and `drauditor schedule` its runs that failed.
Auditors rely on that history, so it cannot be rewritten quietly: every record is also appended to a hash-chained
ledger (auditor.hashchain) that ``verify_history`` recomputes. SQLite in WAL mode, and every append inside BEGIN
IMMEDIATE, because a scheduled audit and a manual drill may write at once and two writers must never chain onto the
same previous entry.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from auditor.errors import InputError
from auditor.hashchain import (
    Entry,
    Head,
    anchor_path,
    anchor_problems,
    canonical,
    chain_problems,
    extend,
    read_anchor,
    write_anchor,
)
from auditor.timeutil import parse_time, rfc3339

OUTCOMES = ("success", "failure", "aborted")
# The verdicts of contract section 3, as the audit_runs CHECK constraint fixes them (the report model imports, via
# provenance, the check registry and the audit context, which imports this module: the list cannot be imported).
VERDICTS = ("ready", "not-ready", "incomplete")
# Where a scheduled run failed: the audit itself (it raised, its input was bad, its bundle incomplete), a scheduled
# drill (refused, failed, a target missed, residue left, or it raised), or the webhook.
FAILURE_PHASES = ("audit", "webhook", "drill")
BUSY_TIMEOUT_SECONDS = 30  # how long a writer waits for another one's append before giving up

_LEDGER_SQL = """
    CREATE TABLE audit_runs (
        id            TEXT PRIMARY KEY,
        started_at    TEXT NOT NULL,
        finished_at   TEXT NOT NULL,
        verdict       TEXT NOT NULL CHECK (verdict IN ('ready', 'not-ready', 'incomplete')),
        summary       TEXT NOT NULL,
        report_sha256 TEXT NOT NULL,
        tool_version  TEXT NOT NULL,
        source        TEXT NOT NULL,
        origin        TEXT NOT NULL,
        hub           TEXT NOT NULL,
        run_by        TEXT NOT NULL
    );
    CREATE INDEX audit_runs_finished ON audit_runs (finished_at);
    CREATE TABLE ledger (
        seq       INTEGER PRIMARY KEY,
        record    TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    );
    CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    CREATE TRIGGER drill_runs_no_update BEFORE UPDATE ON drill_runs BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    CREATE TRIGGER drill_runs_no_delete BEFORE DELETE ON drill_runs BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    CREATE TRIGGER audit_runs_no_update BEFORE UPDATE ON audit_runs BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    CREATE TRIGGER audit_runs_no_delete BEFORE DELETE ON audit_runs BEGIN SELECT RAISE(ABORT, 'append-only'); END;
"""


def _chain_existing_drills(db: sqlite3.Connection) -> None:
    """Schema v2: audit runs and the ledger; drills recorded before it are chained in (finished_at, id) order."""
    _run_script(db, _LEDGER_SQL)
    rows = _rows(db, DRILLS, order="finished_at, id")
    _append_entries(db, [_entry_json(DRILLS, row) for row in rows])


# Entry N migrates the schema from version N to N+1 (PRAGMA user_version records N): SQL, or a function for a
# step SQL cannot do alone. Stores in the field upgrade through every step, so a released step never changes.
_MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
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
    _chain_existing_drills,
    # v3: scheduled runs that failed, kept beside the audits so the history shows the gaps as well as the verdicts.
    """
    CREATE TABLE run_failures (
        id            TEXT PRIMARY KEY,
        job           TEXT NOT NULL,
        phase         TEXT NOT NULL CHECK (phase IN ('audit', 'webhook')),
        started_at    TEXT NOT NULL,
        finished_at   TEXT NOT NULL,
        error         TEXT NOT NULL,
        output        TEXT NOT NULL,
        tool_version  TEXT NOT NULL,
        run_by        TEXT NOT NULL
    );
    CREATE INDEX run_failures_finished ON run_failures (finished_at);
    CREATE TRIGGER run_failures_no_update BEFORE UPDATE ON run_failures BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    CREATE TRIGGER run_failures_no_delete BEFORE DELETE ON run_failures BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    """,
    # v4: scheduled drills fail too (phase drill). SQLite cannot alter a CHECK constraint: the table is rebuilt with
    # its rows as they are (DROP TABLE fires no DELETE trigger; the ledger, untouched, still matches every row).
    """
    CREATE TABLE run_failures_v4 (
        id            TEXT PRIMARY KEY,
        job           TEXT NOT NULL,
        phase         TEXT NOT NULL CHECK (phase IN ('audit', 'webhook', 'drill')),
        started_at    TEXT NOT NULL,
        finished_at   TEXT NOT NULL,
        error         TEXT NOT NULL,
        output        TEXT NOT NULL,
        tool_version  TEXT NOT NULL,
        run_by        TEXT NOT NULL
    );
    INSERT INTO run_failures_v4 SELECT * FROM run_failures;
    DROP TABLE run_failures;
    ALTER TABLE run_failures_v4 RENAME TO run_failures;
    CREATE INDEX run_failures_finished ON run_failures (finished_at);
    CREATE TRIGGER run_failures_no_update BEFORE UPDATE ON run_failures BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    CREATE TRIGGER run_failures_no_delete BEFORE DELETE ON run_failures BEGIN SELECT RAISE(ABORT, 'append-only'); END;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
LEDGER_VERSION = 2  # the first schema with the hash-chained ledger


class _Record:
    """What drill and audit records share: RFC 3339 times in storage, validation of whatever is read back."""

    NOUN: ClassVar[str]
    TIMES: ClassVar[tuple[str, ...]] = ("started_at", "finished_at")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update({key: rfc3339(getattr(self, key)) for key in self.TIMES})
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Any:
        try:
            times = {key: _time(data, key, where) for key in cls.TIMES}
            return cls(**{**data, **times})
        except TypeError as exc:
            raise InputError(f"{where}: not a {cls.NOUN} record: {exc}") from exc
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from exc


def _time(data: dict[str, Any], key: str, where: str) -> datetime:
    moment = parse_time(data.get(key))
    if moment is None:
        raise InputError(f"{where}: {key} {data.get(key)!r} is not an RFC 3339 timestamp")
    return moment


@dataclass(frozen=True)
class DrillRecord(_Record):
    """One test failover of one application (a DRPC on the hub)."""

    NOUN: ClassVar[str] = "drill"

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

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {', '.join(OUTCOMES)}")
        # SQLite keeps these as REAL: store floats, so the ledger hashes exactly what the table gives back.
        for name in ("rto_seconds", "rpo_seconds"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise TypeError(f"{name} {value!r} is not a number of seconds")
                object.__setattr__(self, name, float(value))


@dataclass(frozen=True)
class AuditRecord(_Record):
    """One `drauditor audit` run: its verdict, counts and a fingerprint of the report.json it wrote."""

    NOUN: ClassVar[str] = "audit"

    id: str
    started_at: datetime
    finished_at: datetime
    verdict: str
    summary: dict[str, int]
    report_sha256: str
    tool_version: str
    source: str
    origin: str
    hub: str
    run_by: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")


@dataclass(frozen=True)
class RunFailure(_Record):
    """One scheduled run that failed: its audit did not complete (``phase`` audit), its drill did not succeed
    (``phase`` drill), or its webhook failed."""

    NOUN: ClassVar[str] = "failed run"

    id: str
    job: str  # the scheduled audit's or drill's name
    phase: str
    started_at: datetime
    finished_at: datetime
    error: str
    output: str  # the run folder (absent or partial when the audit failed)
    tool_version: str
    run_by: str

    def __post_init__(self) -> None:
        if self.phase not in FAILURE_PHASES:
            raise ValueError(f"phase {self.phase!r} is not one of {', '.join(FAILURE_PHASES)}")


@dataclass(frozen=True)
class _Table:
    """Where one record type is kept, which column holds JSON text, and the schema version that added it."""

    kind: str  # the record's "type" in the ledger
    name: str
    json_column: str | None
    record: type[DrillRecord] | type[AuditRecord] | type[RunFailure]
    since: int


DRILLS = _Table("drill", "drill_runs", "details", DrillRecord, since=1)
AUDITS = _Table("audit", "audit_runs", "summary", AuditRecord, since=LEDGER_VERSION)
FAILURES = _Table("run_failure", "run_failures", None, RunFailure, since=3)
TABLES = (DRILLS, AUDITS, FAILURES)


def _entry_json(table: _Table, data: dict[str, Any]) -> str:
    """The ledger text of one record, built the same way from a new record and from its table row."""
    return canonical({"type": table.kind, **data})


def _rows(db: sqlite3.Connection, table: _Table, order: str) -> list[dict[str, Any]]:
    """Table rows as record dicts (JSON column parsed); an unparsable one is kept as text for verify to flag."""
    cursor = db.execute(f"SELECT * FROM {table.name} ORDER BY {order}")
    columns = [c[0] for c in cursor.description]
    rows = []
    for values in cursor.fetchall():
        row = dict(zip(columns, values, strict=True))
        if table.json_column is not None:
            with suppress(TypeError, ValueError):
                row[table.json_column] = json.loads(row[table.json_column])
        rows.append(row)
    return rows


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Statement by statement: executescript() would commit the migration's transaction halfway."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                db.execute(pending)
            pending = ""


def _head(db: sqlite3.Connection) -> Head | None:
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger'").fetchone() is None:
        return None
    row = db.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    return Head(*row) if row else None


def _append_entries(db: sqlite3.Connection, records: list[str]) -> None:
    for entry in extend(_head(db), records):
        db.execute("INSERT INTO ledger VALUES (?, ?, ?, ?)", (entry.seq, entry.record, entry.prev_hash, entry.hash))


def _ledger(db: sqlite3.Connection) -> list[Entry]:
    return [Entry(*row) for row in db.execute("SELECT seq, record, prev_hash, hash FROM ledger ORDER BY seq")]


def _connect(path: Path) -> sqlite3.Connection:
    """Autocommit mode, so every transaction is the explicit one this module opens."""
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)


class EvidenceStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._anchor = anchor_path(self.path)
        try:
            self._db = _connect(self.path)
        except sqlite3.Error as exc:
            raise InputError(f"{self.path}: cannot open the evidence store ({exc})") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise InputError(f"{self.path}: not a drauditor evidence store ({exc})") from exc
        except InputError:
            self._db.close()
            raise

    def _migrate(self) -> None:
        if self._version() == SCHEMA_VERSION:
            return
        with self._appending():  # re-read under the write lock: another process may have just upgraded it
            for target in range(self._version(), SCHEMA_VERSION):
                step = _MIGRATIONS[target]
                if isinstance(step, str):
                    _run_script(self._db, step)
                else:
                    step(self._db)
                self._db.execute(f"PRAGMA user_version = {target + 1}")

    def _version(self) -> int:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise InputError(
                f"{self.path}: evidence store schema v{version} is newer than this drauditor supports "
                f"(v{SCHEMA_VERSION}); upgrade drauditor"
            )
        return version

    @contextmanager
    def _appending(self) -> Iterator[None]:
        """One write transaction; when the ledger grew, the anchor is rewritten before the commit.

        The anchor is written while this process still holds the write lock, so anchors land in ledger order;
        if the commit then fails the previous anchor is put back. A crash between the two leaves the anchor one
        append ahead, which verify reports as a missing tail until the next append rewrites it.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = _head(self._db)
            yield
            after = _head(self._db)
            restore = write_anchor(self._anchor, after) if after is not None and after != before else None
            try:
                self._db.execute("COMMIT")
            except BaseException:
                if restore:
                    restore()
                raise
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_drill(self, record: DrillRecord) -> None:
        self._append(DRILLS, [record])

    def record_audit(self, record: AuditRecord) -> None:
        self._append(AUDITS, [record])

    def record_run_failure(self, record: RunFailure) -> None:
        self._append(FAILURES, [record])

    def import_records(self, records: Iterable[dict[str, Any]], where: str) -> int:
        """All or nothing: a bad record anywhere leaves the store as it was."""
        parsed = []
        for index, data in enumerate(records):
            if not isinstance(data, dict):
                raise InputError(f"{where}: record {index} is not a mapping")
            parsed.append(DrillRecord.from_dict(data, f"{where}: record {index}"))
        self._append(DRILLS, parsed)
        return len(parsed)

    def _append(self, table: _Table, records: list[DrillRecord] | list[AuditRecord] | list[RunFailure]) -> None:
        """Rows and their ledger entries in one transaction: the table and its chain never disagree."""
        try:
            with self._appending():
                entries = []
                for record in records:
                    data = record.to_dict()
                    row = dict(data)
                    if table.json_column is not None:
                        row[table.json_column] = json.dumps(data[table.json_column], sort_keys=True)
                    self._db.execute(
                        f"INSERT INTO {table.name} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()),
                    )
                    entries.append(_entry_json(table, data))
                _append_entries(self._db, entries)
        except sqlite3.IntegrityError as exc:
            raise InputError(f"{self.path}: cannot record {table.kind}: {exc}") from exc
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write the anchor {self._anchor}: {exc}") from exc

    def drills(self) -> list[DrillRecord]:
        return self._read(DRILLS)

    def audits(self) -> list[AuditRecord]:
        """Audit runs, oldest first (the series a readiness trend is drawn from)."""
        return self._read(AUDITS)

    def run_failures(self) -> list[RunFailure]:
        """Scheduled runs that failed, oldest first."""
        return self._read(FAILURES)

    def _read(self, table: _Table) -> list[Any]:
        return [
            table.record.from_dict(row, f"{self.path}: {table.kind} {row['id']}")
            for row in _rows(self._db, table, order="finished_at, id")
        ]


def verify_history(path: Path) -> list[str]:
    """Every sign that the store's history was changed after it was written; empty when it is intact.

    Recomputes the chain (edited, deleted, inserted or reordered entries), checks each drill and audit row against
    its ledger entry (rows edited, deleted or added behind the ledger's back) and the chain's head against the
    ``<store>.head`` anchor when there is one (newest entries removed). Never upgrades or writes the store, so
    verifying changes no evidence; it takes the write lock only to read the anchor and ledger as of one moment.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: evidence store not found")
    try:
        db = _connect(path)
        try:
            return _history_problems(db, path)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: not a drauditor evidence store ({exc})") from exc


def _history_problems(db: sqlite3.Connection, path: Path) -> list[str]:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise InputError(f"{path}: evidence store schema v{version} is newer than this drauditor (v{SCHEMA_VERSION})")
    if version < LEDGER_VERSION:
        return [
            f"{path}: schema v{version} predates the hash-chained ledger, so its history cannot be verified; "
            "opening it with this drauditor (e.g. `drauditor evidence list`) chains the records it holds"
        ]
    db.execute("BEGIN IMMEDIATE")
    try:
        entries = _ledger(db)
        problems = chain_problems(entries)
        problems += _row_problems(db, entries, version)
        anchor_file = anchor_path(path)
        try:
            anchor = read_anchor(anchor_file)
        except (OSError, ValueError) as exc:
            problems.append(f"{anchor_file}: unreadable anchor ({exc})")
        else:
            if anchor is not None:
                problems += anchor_problems(entries, anchor, anchor_file)
        return problems
    finally:
        db.execute("ROLLBACK")


def _row_problems(db: sqlite3.Connection, entries: list[Entry], version: int) -> list[str]:
    """Rows that differ from their ledger entry, rows without one, and ledger entries whose row is gone."""
    by_key: dict[tuple[str, str], Entry] = {}
    for entry in entries:
        try:
            data = json.loads(entry.record)
            by_key[(data["type"], data["id"])] = entry
        except (ValueError, TypeError, KeyError):
            continue  # chain_problems already names an entry whose record was mangled
    problems = []
    for table in (t for t in TABLES if t.since <= version):  # verify never upgrades: older stores lack newer tables
        for row in _rows(db, table, order="rowid"):
            entry = by_key.pop((table.kind, row["id"]), None)
            if entry is None:
                problems.append(f"{table.kind} {row['id']}: in {table.name} but not in the ledger: added behind it")
            elif _entry_json(table, row) != entry.record:
                problems.append(f"{table.kind} {row['id']} ({entry.label}): {table.name} row differs from the ledger")
    problems += [f"{entry.label}: in the ledger but missing from its table: deleted" for entry in by_key.values()]
    return problems
