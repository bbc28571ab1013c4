"""The evidence store: a real SQLite file, versioned, shared safely with concurrent writers."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.evidence import SCHEMA_VERSION, DrillRecord, EvidenceStore
from auditor.evidence_io import import_json


def drill(**overrides) -> DrillRecord:
    values = dict(
        id="d1",
        app_namespace="billing",
        app_name="billing-drpc",
        started_at=datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 2, 10, 6, tzinfo=UTC),
        outcome="success",
        mode="clone",
        run_by="alice",
        tool_version="0.1.0",
        rto_seconds=341.0,
        rpo_seconds=0.0,
        details={"vms": ["billing-db"]},
    )
    values.update(overrides)
    return DrillRecord(**values)


def test_round_trip_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "evidence.db"
    with EvidenceStore(path) as store:
        store.record_drill(drill())
        store.record_drill(drill(id="d0", finished_at=datetime(2026, 1, 1, tzinfo=UTC), outcome="failure"))
    with EvidenceStore(path) as store:
        drills = store.drills()
    assert [d.id for d in drills] == ["d0", "d1"]
    assert drills[1] == drill()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evidence.db"
    EvidenceStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match="newer than this drauditor supports"):
        EvidenceStore(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "evidence.db"
    path.write_text("hello, I am not SQLite" * 100)
    with pytest.raises(InputError, match="not a drauditor evidence store"):
        EvidenceStore(path)


def test_import_rejects_bad_records(tmp_path: Path) -> None:
    records = tmp_path / "drills.json"
    good = drill().to_dict()
    records.write_text(f'[{__import__("json").dumps(good)}, {{"id": "x", "outcome": "maybe"}}]')
    with pytest.raises(InputError, match=r"drills.json: record 1"):
        import_json(tmp_path / "e.db", records)
    with EvidenceStore(tmp_path / "e.db") as store:
        assert store.drills() == []  # all or nothing
    records.write_text('[{"id": "x"}]')
    with pytest.raises(InputError, match="record 0"):
        import_json(tmp_path / "f.db", records)


def test_outcome_is_constrained() -> None:
    with pytest.raises(InputError, match="outcome 'maybe'"):
        DrillRecord.from_dict({**drill().to_dict(), "outcome": "maybe"}, "here")


def test_duplicate_drill_id_is_refused(tmp_path: Path) -> None:
    with EvidenceStore(tmp_path / "e.db") as store:
        store.record_drill(drill())
        with pytest.raises(InputError, match="UNIQUE"):
            store.record_drill(drill())


def test_concurrent_writers_do_not_corrupt_the_store(tmp_path: Path) -> None:
    """A scheduled audit and a manual drill may write at once: WAL plus busy timeout serializes them."""
    import multiprocessing

    path = tmp_path / "e.db"
    EvidenceStore(path).close()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.starmap(_write_many, [(str(path), worker) for worker in range(4)])
    with EvidenceStore(path) as store:
        assert len(store.drills()) == 4 * 25


def _write_many(path: str, worker: int) -> None:
    with EvidenceStore(Path(path)) as store:
        for n in range(25):
            store.record_drill(drill(id=f"w{worker}-{n}"))
