"""The evidence store's history cannot be rewritten quietly: a hash chain over every record, a head anchor beside the
store, and writers in separate processes that never break either."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SAMPLES
from test_evidence import drill

from auditor.cli import main
from auditor.errors import InputError
from auditor.evidence import _MIGRATIONS, SCHEMA_VERSION, VERDICTS, AuditRecord, EvidenceStore, verify_history
from auditor.hashchain import GENESIS, anchor_path
from auditor.report.model import VERDICT_EXIT_CODES

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def audit_record(**overrides) -> AuditRecord:
    values = dict(
        id="a1",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=40),
        verdict="not-ready",
        summary={"pass": 5, "fail": 1, "error": 0, "skip": 0},
        report_sha256="ab" * 32,
        tool_version="0.1.0",
        source="snapshot",
        origin="/snapshots/prod",
        hub="hub",
        run_by="cron",
    )
    values.update(overrides)
    return AuditRecord(**values)


def store_with_history(tmp_path: Path) -> Path:
    """Drills d1..d4 and one audit, recorded in this order (ledger seq 1-5)."""
    path = tmp_path / "evidence.db"
    with EvidenceStore(path) as store:
        for n in range(1, 5):
            store.record_drill(drill(id=f"d{n}", finished_at=T0 + timedelta(days=n)))
        store.record_audit(audit_record())
    return path


def tamper(path: Path, *statements: str) -> None:
    """What someone with write access to the file can do: drop the append-only triggers, then change anything."""
    with sqlite3.connect(path) as db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f"DROP TRIGGER {name}")
        for statement in statements:
            db.execute(statement)


def ledger(path: Path) -> list[tuple[int, str, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT seq, record, prev_hash, hash FROM ledger ORDER BY seq").fetchall()


def test_every_record_is_chained_onto_the_previous_one(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    rows = ledger(path)
    assert [seq for seq, *_ in rows] == [1, 2, 3, 4, 5]
    prev = GENESIS
    for _seq, record, prev_hash, digest in rows:
        assert prev_hash == prev
        assert digest == hashlib.sha256((prev_hash + record).encode()).hexdigest()
        assert record == json.dumps(json.loads(record), sort_keys=True, separators=(",", ":"))
        prev = digest
    assert [json.loads(r[1])["type"] for r in rows] == ["drill"] * 4 + ["audit"]
    assert json.loads(rows[0][1])["details"] == {"vms": ["billing-db"]}
    assert json.loads(anchor_path(path).read_text()) == {"seq": 5, "hash": rows[-1][3]}
    assert verify_history(path) == []
    with EvidenceStore(path) as store:
        assert store.audits() == [audit_record()]
        assert [d.id for d in store.drills()] == ["d1", "d2", "d3", "d4"]


def test_the_store_refuses_updates_and_deletes(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    with sqlite3.connect(path) as db:
        for statement in (
            "UPDATE drill_runs SET outcome = 'success' WHERE id = 'd1'",
            "DELETE FROM audit_runs",
            "DELETE FROM ledger WHERE seq = 5",
            "UPDATE ledger SET record = '{}' WHERE seq = 1",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)


def test_an_edited_drill_row_is_named(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    tamper(path, "UPDATE drill_runs SET outcome = 'success', rto_seconds = 60 WHERE id = 'd2'")
    assert verify_history(path) == ["drill d2 (seq 2 (drill d2)): drill_runs row differs from the ledger"]


def test_an_edited_ledger_entry_is_named(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    forged = ledger(path)[2][1].replace('"rto_seconds":341.0', '"rto_seconds":60.0')
    tamper(path, f"UPDATE ledger SET record = '{forged}' WHERE seq = 3")
    problems = verify_history(path)
    assert "seq 3 (drill d3): record does not match its hash: edited" in problems
    assert any(p.startswith("drill d3 (seq 3 (drill d3)): drill_runs row differs") for p in problems)


def test_an_edit_that_recomputes_its_own_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    _seq, record, prev_hash, _digest = ledger(path)[1]
    forged = record.replace('"outcome":"success"', '"outcome":"failure"')
    rehashed = hashlib.sha256((prev_hash + forged).encode()).hexdigest()
    tamper(
        path,
        f"UPDATE ledger SET record = '{forged}', hash = '{rehashed}' WHERE seq = 2",
        "UPDATE drill_runs SET outcome = 'failure' WHERE id = 'd2'",
    )
    assert verify_history(path) == [
        "seq 3 (drill d3): prev_hash does not link to the entry before it: an entry was deleted, inserted or reordered"
    ]


def test_a_deleted_middle_record_is_detected(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    tamper(path, "DELETE FROM ledger WHERE seq = 2", "DELETE FROM drill_runs WHERE id = 'd2'")
    problems = verify_history(path)
    assert "seq 2 missing: deleted from the ledger" in problems
    assert any(p.startswith("seq 3 (drill d3): prev_hash does not link") for p in problems)


def test_a_row_deleted_from_its_table_only_is_detected(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    tamper(path, "DELETE FROM audit_runs WHERE id = 'a1'")
    assert verify_history(path) == ["seq 5 (audit a1): in the ledger but missing from its table: deleted"]


def test_a_deleted_last_record_is_caught_by_the_anchor_alone(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    tamper(path, "DELETE FROM ledger WHERE seq = 5", "DELETE FROM audit_runs WHERE id = 'a1'")
    anchor = anchor_path(path)
    assert verify_history(path) == [
        f"the ledger ends at seq 4 but {anchor} records seq 5: the newest entries were deleted"
    ]
    anchor.unlink()  # the chain itself is intact: without the anchor the truncation is invisible
    assert verify_history(path) == []


def test_reordered_records_are_detected(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    tamper(
        path,
        "UPDATE ledger SET seq = 100 WHERE seq = 2",
        "UPDATE ledger SET seq = 2 WHERE seq = 3",
        "UPDATE ledger SET seq = 3 WHERE seq = 100",
    )
    problems = verify_history(path)
    assert any(p.startswith("seq 2 (drill d3): prev_hash does not link") for p in problems)
    assert any(p.startswith("seq 3 (drill d2): prev_hash does not link") for p in problems)


def test_records_added_behind_the_ledger_are_detected(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    row = drill(id="forged").to_dict()
    row["details"] = json.dumps(row["details"])
    placeholders = ", ".join("?" * len(row))
    with sqlite3.connect(path) as db:
        db.execute(f"INSERT INTO drill_runs ({', '.join(row)}) VALUES ({placeholders})", tuple(row.values()))
    assert verify_history(path) == ["drill forged: in drill_runs but not in the ledger: added behind it"]


def test_a_correctly_chained_forgery_still_disagrees_with_the_anchor(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    *_, head_hash = ledger(path)[-1]
    forged = json.dumps({**drill(id="forged").to_dict(), "type": "drill"}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256((head_hash + forged).encode()).hexdigest()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO ledger VALUES (6, ?, ?, ?)", (forged, head_hash, digest))
    problems = verify_history(path)
    assert len(problems) == 2
    assert "seq 6 (drill forged): in the ledger but missing from its table: deleted" in problems
    assert any("continues past seq 5" in p for p in problems)


def test_a_replaced_anchor_or_history_is_reported(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    anchor = anchor_path(path)
    anchor.write_text(json.dumps({"seq": 5, "hash": "0" * 64}))
    assert verify_history(path) == [f"seq 5: hash differs from the one {anchor} records: the history was rewritten"]
    anchor.write_text("not json")
    assert len(verify_history(path)) == 1 and "unreadable anchor" in verify_history(path)[0]


def version_1_store(path: Path) -> None:
    """A store as drauditor wrote it before the ledger existed: the v1 schema and its rows, nothing else."""
    with sqlite3.connect(path) as db:
        db.executescript(_MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        for record in (
            drill(id="late", finished_at=T0 + timedelta(days=9)),
            drill(id="b", finished_at=T0),
            drill(id="a", finished_at=T0, rto_seconds=None),
        ):
            row = record.to_dict()
            row["details"] = json.dumps(row["details"], sort_keys=True)
            row["rto_seconds"] = 300 if record.id == "late" else row["rto_seconds"]  # an integer in a REAL column
            db.execute(
                f"INSERT INTO drill_runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
            )


def test_a_version_1_store_is_upgraded_and_chained(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    version_1_store(path)
    assert "predates the hash-chained ledger" in verify_history(path)[0]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (1,)  # verifying upgraded nothing
    with EvidenceStore(path) as store:
        assert [d.id for d in store.drills()] == ["a", "b", "late"]
        store.record_audit(audit_record())
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert [json.loads(record)["id"] for _, record, *_ in ledger(path)] == ["a", "b", "late", "a1"]
    assert verify_history(path) == []


def test_an_upgraded_store_that_is_truncated_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    version_1_store(path)
    EvidenceStore(path).close()  # the upgrade anchors the chained drills
    tamper(path, "DELETE FROM ledger WHERE seq = 3", "DELETE FROM drill_runs WHERE id = 'late'")
    assert "the newest entries were deleted" in verify_history(path)[0]


def test_an_import_is_still_all_or_nothing(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    anchor_before, ledger_before = anchor_path(path).read_text(), ledger(path)
    batch = [drill(id="new1").to_dict(), drill(id="d2").to_dict()]  # d2 is already on record
    with EvidenceStore(path) as store, pytest.raises(InputError, match="UNIQUE"):
        store.import_records(batch, "batch.json")
    assert ledger(path) == ledger_before and anchor_path(path).read_text() == anchor_before
    with EvidenceStore(path) as store:
        assert store.import_records([drill(id="new1").to_dict(), drill(id="new2").to_dict()], "ok.json") == 2
    assert len(ledger(path)) == 7
    assert verify_history(path) == []


def test_an_anchor_that_cannot_be_written_records_nothing(tmp_path: Path) -> None:
    path = store_with_history(tmp_path)
    ledger_before = ledger(path)
    anchor = anchor_path(path)
    anchor.unlink()
    anchor.mkdir()
    with EvidenceStore(path) as store, pytest.raises(InputError, match="cannot write the anchor"):
        store.record_drill(drill(id="d5"))
    assert ledger(path) == ledger_before
    with EvidenceStore(path) as store:
        assert "d5" not in [d.id for d in store.drills()]


def test_verify_needs_a_store(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="evidence store not found"):
        verify_history(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_text("not SQLite" * 200)
    with pytest.raises(InputError, match="not a drauditor evidence store"):
        verify_history(tmp_path / "junk.db")


def test_audit_verdicts_are_the_reports() -> None:
    assert set(VERDICTS) == set(VERDICT_EXIT_CODES)
    with pytest.raises(ValueError, match="verdict 'maybe'"):
        audit_record(verdict="maybe")


def test_parallel_processes_append_one_unbroken_chain(tmp_path: Path) -> None:
    """A schedule and manual runs write at once: each append chains onto the newest entry, never a stale one."""
    path = tmp_path / "e.db"
    workers, each = 4, 12
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.starmap(_append_many, [(str(path), worker, each) for worker in range(workers)])
    assert verify_history(path) == []
    assert [seq for seq, *_ in ledger(path)] == list(range(1, workers * each + 1))
    with EvidenceStore(path) as store:
        assert len(store.drills()) == workers * each * 2 // 3
        assert len(store.audits()) == workers * each // 3


def _append_many(path: str, worker: int, count: int) -> None:
    with EvidenceStore(Path(path)) as store:
        for n in range(count):
            if n % 3 == 2:
                store.record_audit(audit_record(id=f"a{worker}-{n}"))
            else:
                store.record_drill(drill(id=f"d{worker}-{n}"))


def test_parallel_imports_into_a_new_store_never_corrupt_it(tmp_path: Path) -> None:
    """All processes find no store and create, migrate and fill it at once; of two overlapping imports, the one that
    comes second fails whole, whichever it is."""
    path = tmp_path / "new.db"
    batches = {"a": range(0, 30), "b": range(30, 60), "c": range(55, 65)}
    files = []
    for name, ids in batches.items():
        records = tmp_path / f"{name}.json"
        records.write_text(json.dumps([drill(id=f"r{i}").to_dict() for i in ids]))
        files.append(str(records))
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        outcomes = dict(zip(batches, pool.starmap(_import, [(str(path), records) for records in files]), strict=True))
    assert outcomes["a"] == 30
    assert sorted((outcomes["b"], outcomes["c"]), key=str) in ([10, "UNIQUE"], [30, "UNIQUE"])
    expected = {f"r{i}" for name, ids in batches.items() if outcomes[name] != "UNIQUE" for i in ids}
    with EvidenceStore(path) as store:
        assert {d.id for d in store.drills()} == expected
    assert len(ledger(path)) == len(expected)
    assert verify_history(path) == []


def _import(path: str, records: str) -> int | str:
    from auditor.evidence_io import import_json

    try:
        return import_json(Path(path), Path(records))
    except InputError as exc:
        return "UNIQUE" if "UNIQUE" in str(exc) else str(exc)


def test_an_audit_with_an_evidence_store_is_recorded(tmp_path: Path) -> None:
    store = tmp_path / "evidence.db"
    runner = CliRunner()
    imported = runner.invoke(
        main, ["evidence", "import", "--store", str(store), str(SAMPLES / "healthy" / "drills.json")]
    )
    assert imported.exit_code == 0, imported.output
    out = tmp_path / "out"
    args = ["audit", "--snapshot", str(SAMPLES / "healthy"), "--output-dir", str(out), "--evidence", str(store)]
    result = runner.invoke(main, args, catch_exceptions=False)
    report_bytes = (out / "report.json").read_bytes()
    report = json.loads(report_bytes)
    assert result.exit_code == VERDICT_EXIT_CODES[report["verdict"]], result.output
    with EvidenceStore(store) as opened:
        (recorded,) = opened.audits()
        drills = opened.drills()
    assert recorded.verdict == report["verdict"]
    assert recorded.summary == report["summary"]
    assert recorded.report_sha256 == hashlib.sha256(report_bytes).hexdigest()
    assert (recorded.source, recorded.origin, recorded.hub) == (
        report["scope"]["source"],
        report["scope"]["origin"],
        report["scope"]["hub"],
    )
    assert recorded.started_at <= recorded.finished_at
    assert json.loads(ledger(store)[-1][1])["id"] == recorded.id
    assert len(ledger(store)) == len(drills) + 1
    assert verify_history(store) == []
