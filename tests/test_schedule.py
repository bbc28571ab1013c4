"""`drauditor schedule`: the cadence grammar, dated run folders filed in the evidence history, failed runs recorded
while the loop goes on, retention, the webhook summary, the single-instance lock and a clean stop on a signal."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import pytest
import schedule
import yaml
from click.testing import CliRunner
from helpers import SAMPLES
from loopback import recording_server
from test_evidence_chain import T0, audit_record, ledger, tamper

from auditor import __version__, scheduler
from auditor.bundle import verify
from auditor.cadence import parse_every
from auditor.cli import main
from auditor.config import load_config
from auditor.evidence import _MIGRATIONS, SCHEMA_VERSION, EvidenceStore, RunFailure, verify_history
from auditor.evidence_io import import_json
from auditor.retention import expired, new_run_folder, prune, run_folders
from auditor.runlock import instance_lock
from auditor.scheduler import RunAborted, Runner, RunResult, ScheduleLoop
from auditor.timeutil import rfc3339

DRAUDITOR = Path(sys.executable).with_name("drauditor")
HEALTHY = SAMPLES / "healthy"
STAMP = re.compile(r"\d{8}T\d{6}Z")


def write_config(folder: Path, schedule_section: dict[str, Any], **sections: Any) -> Path:
    path = folder / "drauditor.yaml"
    path.write_text(yaml.safe_dump({**sections, "schedule": schedule_section}), encoding="utf-8")
    return path


def job(name: str = "nightly", every: str = "1d", **source: Any) -> dict[str, Any]:
    return {"name": name, "every": every, "output": "reports", **(source or {"snapshot": str(HEALTHY)})}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# The `every:` grammar


@pytest.mark.parametrize(
    ("every", "unit", "interval", "delta"),
    [
        ("30m", "minutes", 30, timedelta(minutes=30)),
        ("6h", "hours", 6, timedelta(hours=6)),
        ("1d", "days", 1, timedelta(days=1)),
        ("14d", "days", 14, timedelta(days=14)),
    ],
)
def test_an_interval_maps_onto_the_schedule_library(every: str, unit: str, interval: int, delta: timedelta) -> None:
    before = datetime.now()
    scheduled = parse_every(every).job(schedule.Scheduler()).do(print)
    assert (scheduled.unit, scheduled.interval, scheduled.at_time, scheduled.start_day) == (unit, interval, None, None)
    assert before + delta <= scheduled.next_run <= datetime.now() + delta


@pytest.mark.parametrize(
    ("every", "unit", "start_day", "weekday"),
    [
        ("day at 06:00", "days", None, None),
        ("monday at 23:59", "weeks", "monday", 0),
        ("sunday at 00:00", "weeks", "sunday", 6),
    ],
)
def test_a_time_of_day_maps_onto_the_schedule_library(
    every: str, unit: str, start_day: str | None, weekday: int | None
) -> None:
    scheduled = parse_every(every).job(schedule.Scheduler()).do(print)
    at = clock.fromisoformat(every.rpartition(" ")[2])
    assert (scheduled.unit, scheduled.start_day, scheduled.at_time) == (unit, start_day, at)
    assert scheduled.next_run.time() == at and scheduled.next_run > datetime.now()
    assert weekday is None or scheduled.next_run.weekday() == weekday


@pytest.mark.parametrize(
    "every",
    ["6 hours", "6 h", "0h", "06h", "6w", "30s", "1.5h", "-1d", "Monday at 06:00", "day at 24:00", "day at 6:00",
     "day at 06:00:00", "weekday at 06:00", "every 6h", " 6h", ""],
)  # fmt: skip
def test_anything_else_is_exit_2_naming_the_key_and_the_grammar(tmp_path: Path, every: str) -> None:
    config = write_config(tmp_path, {"audits": [job(every=every)]})
    result = invoke("schedule", "--config", str(config), "--once")
    assert result.exit_code == 2, result.output
    assert f"schedule.audits.0.every: Value error, {every!r} is not a schedule" in result.output
    assert "'day at HH:MM', or '<weekday> at HH:MM'" in result.output
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"audits": [job(live=True, snapshot="x")]}, "schedule.audits.0: Value error, give exactly one source"),
        ({"audits": [job(live=False)]}, "schedule.audits.0: Value error, give exactly one source"),
        ({"audits": [{**job(), "evry": "1d"}]}, "schedule.audits.0.evry: Extra inputs are not permitted"),
        ({"audits": [job("a/b")]}, "schedule.audits.0.name: String should match pattern"),
        ({"audits": [job(), job()]}, "audit and drill names must be unique (their runs share a folder): nightly"),
        ({"audits": []}, "schedule: Value error, list at least one audit or drill to run"),
        ({"audits": [job()], "retention": {"keep_runs": 0}}, "schedule.retention.keep_runs: Input should be greater"),
        ({"audits": [job()], "webhook": {"url": "ftp://example.com/x"}},
         "schedule.webhook.url: Value error, ftp://example.com/[redacted] is not an http:// or https:// URL"),
        ({"audits": [job()], "webhook": {"url": "http://127.0.0.1/", "timeout_seconds": 0}},
         "schedule.webhook.timeout_seconds: Input should be greater than 0"),
        ({"audits": [job()], "lockfile": "x.lock"}, "schedule.lockfile: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_a_malformed_schedule_section_is_exit_2_naming_the_key(tmp_path: Path, section: dict, expected: str) -> None:
    result = invoke("schedule", "--config", str(write_config(tmp_path, section)), "--once")
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert not (tmp_path / "drauditor-schedule.lock").exists()  # refused before anything was started


def test_a_config_without_a_schedule_section_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "drauditor.yaml"
    config.write_text("fail_on: high\n", encoding="utf-8")
    result = invoke("schedule", "--config", str(config))
    assert result.exit_code == 2
    assert f"{config}: no schedule section: nothing to schedule" in result.output


# --once: the full path of `drauditor audit`, the evidence history and the webhook


def test_once_runs_every_audit_into_a_dated_folder_files_it_and_posts_each_summary(tmp_path: Path) -> None:
    store = tmp_path / "evidence.db"
    import_json(store, HEALTHY / "drills.json")  # the sample's drills: its audit is ready
    audits = [job("healthy", "1d"), job("gone", "6h", snapshot="no-such-snapshot")]
    with recording_server(status=204) as server:
        hook = {"url": f"{server.base}/hooks/T0/secret-path", "headers": {"Authorization": "Bearer s3cr3t-token"}}
        config = write_config(tmp_path, {"audits": audits, "webhook": hook}, evidence={"path": "evidence.db"})
        result = invoke("schedule", "--config", str(config), "--once")
    assert result.exit_code == 1, result.output  # one run failed
    (folder,) = (tmp_path / "reports" / "healthy").iterdir()
    assert STAMP.fullmatch(folder.name)
    assert verify(folder).problems == []  # the whole evidence bundle, manifest last
    report_bytes = (folder / "report.json").read_bytes()
    report = json.loads(report_bytes)
    assert report["verdict"] == "ready" and report["evidence_source"] == str(store)
    assert not (tmp_path / "reports" / "gone").exists()

    with EvidenceStore(store) as opened:
        (audit,), (failure,) = opened.audits(), opened.run_failures()
    assert (audit.verdict, audit.summary, audit.report_sha256) == (
        "ready",
        report["summary"],
        hashlib.sha256(report_bytes).hexdigest(),
    )
    assert (failure.job, failure.phase) == ("gone", "audit")
    assert failure.error == f"{tmp_path / 'no-such-snapshot'}: snapshot directory not found"
    assert Path(failure.output).parent == tmp_path / "reports" / "gone" and STAMP.fullmatch(Path(failure.output).name)
    assert verify_history(store) == []  # the failed run is chained like the audits

    assert server.requests == [("POST", "/hooks/T0/secret-path")] * 2
    assert server.authorizations == ["Bearer s3cr3t-token"] * 2
    assert [headers["Content-Type"] for headers in server.headers] == ["application/json"] * 2
    common = {"schema": "drauditor.run-summary/v1", "tool": {"name": "drauditor", "version": __version__}}
    completed = {
        **common,
        "job": "healthy",
        "run": "completed",
        "verdict": "ready",
        "summary": report["summary"],
        "hub": "hub",
        "error": None,
        "report_folder": str(folder),
        "generated_at": report["generated_at"],
    }
    failed = {
        **common,
        "job": "gone",
        "run": "failed",
        "verdict": None,
        "summary": None,
        "hub": None,
        "error": failure.error,
        "report_folder": failure.output,
        "generated_at": rfc3339(failure.finished_at),
    }
    assert server.bodies == [json.dumps(body, sort_keys=True).encode() for body in (completed, failed)]

    # What authenticates the webhook reaches neither the log nor the report.
    assert "s3cr3t" not in result.output and "secret-path" not in result.output
    assert "s3cr3t" not in report_bytes.decode() and "secret-path" not in report_bytes.decode()
    assert report["provenance"]["config"]["values"]["schedule"]["webhook"] == {
        "url": f"{server.base}/[redacted]",
        "timeout_seconds": 10.0,
        "headers": {"Authorization": "[redacted]"},
    }


def test_the_state_dir_holds_the_lock_and_the_default_evidence_store(tmp_path: Path) -> None:
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    config = write_config(etc, {"audits": [job(snapshot="x")]})
    result = invoke("schedule", "--config", str(config), "--once", "--state-dir", str(state))
    assert result.exit_code == 1, result.output  # the snapshot is not there: the run failed, and was recorded
    assert f"lock {state / 'drauditor-schedule.lock'} held by PID" in result.output
    assert sorted(p.name for p in state.iterdir()) == ["drauditor-schedule.lock", "evidence.db", "evidence.db.head"]
    with EvidenceStore(state / "evidence.db") as opened:
        (recorded,) = opened.run_failures()
    assert (recorded.job, recorded.error) == ("nightly", f"{etc / 'x'}: snapshot directory not found")
    assert sorted(p.name for p in etc.iterdir()) == ["drauditor.yaml"]  # nothing beside the config


# The loop, without waiting in real time


class FakeTime:
    """The injected sleep: instead of waiting, moves every job's next run that much closer, as time passing would."""

    def __init__(self, until_runs: int, before_run: dict[int, Any] | None = None) -> None:
        self.until_runs = until_runs
        self.before_run = before_run or {}  # runs done -> what happens in the world before the next one
        self.waits: list[float] = []
        self.loop: ScheduleLoop | None = None

    def __call__(self, seconds: float) -> None:
        assert self.loop is not None
        self.waits.append(seconds)
        done = len(self.loop.results)
        if done >= self.until_runs:
            self.loop.stop("test")
            return
        if action := self.before_run.pop(done, None):
            action()
        for scheduled in self.loop.scheduler.jobs:
            scheduled.next_run -= timedelta(seconds=seconds)


def loop_for(config_path: Path, fake: FakeTime, log: list[str]) -> tuple[ScheduleLoop, Path]:
    config = load_config(config_path)
    store = config_path.parent / "evidence.db"
    EvidenceStore(store).close()
    loop = ScheduleLoop(
        config.schedule.jobs, Runner(config, config_path, store, log.append), sleep=fake, poll_seconds=86400
    )
    fake.loop = loop
    return loop, store


def test_a_failed_run_is_recorded_and_the_next_run_still_happens(tmp_path: Path) -> None:
    runs = tmp_path / "reports" / "hourly"
    (runs / "20200101T000000Z").mkdir(parents=True)  # a run of long ago: retention deletes it
    (runs / "notes").mkdir()  # not a run folder: retention leaves it
    config = write_config(
        tmp_path, {"audits": [job("hourly", "1h", snapshot="capture")], "retention": {"keep_days": 30}}
    )
    # The first run finds no snapshot (the capture that writes it has not run yet); then it appears.
    fake = FakeTime(until_runs=2, before_run={1: lambda: shutil.copytree(HEALTHY, tmp_path / "capture")})
    log: list[str] = []
    loop, store = loop_for(config, fake, log)
    loop.forever()

    first, second = loop.results
    assert first.report is None and first.error == f"{tmp_path / 'capture'}: snapshot directory not found"
    assert second.error is None and second.report is not None and second.folder.parent == runs
    assert fake.waits == [pytest.approx(3600, abs=30)] * 3  # an hour before each run, asked of the sleep, not slept
    assert sorted(p.name for p in runs.iterdir()) == sorted(["notes", second.folder.name])
    with EvidenceStore(store) as opened:
        assert [(f.job, f.phase, f.error) for f in opened.run_failures()] == [("hourly", "audit", first.error)]
        assert [a.verdict for a in opened.audits()] == [second.report.verdict]
    assert verify_history(store) == []
    assert any("hourly: audit failed: " in line for line in log)
    assert any(line == f"hourly: retention deleted {runs / '20200101T000000Z'}" for line in log)


class Silent:
    """A TCP listener that accepts connections and never answers: a webhook receiver that hangs."""

    def __enter__(self) -> str:
        self.sock = socket.create_server(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.mark.parametrize("receiver", ["http-500", "hangs", "refuses"])
def test_a_failing_webhook_is_logged_and_recorded_and_the_loop_goes_on(tmp_path: Path, receiver: str) -> None:
    with recording_server(status=500) as server, Silent() as silent:
        url = {"http-500": f"{server.base}/hook?token=abc", "hangs": silent, "refuses": "http://127.0.0.1:9/hook"}
        hook = {"url": url[receiver], "timeout_seconds": 0.5}
        config = write_config(tmp_path, {"audits": [job("gone", "30m", snapshot="absent")], "webhook": hook})
        fake = FakeTime(until_runs=2)
        log: list[str] = []
        loop, store = loop_for(config, fake, log)
        loop.forever()
    assert len(loop.results) == 2  # the webhook failed after the first run, and the second run still happened
    expected = {
        "http-500": f"POST {server.base}/[redacted] was answered HTTP 500",
        "hangs": f"POST {silent.rpartition('/')[0]}/[redacted] failed: timed out",
        "refuses": "POST http://127.0.0.1:9/[redacted] failed: [Errno 111] Connection refused",
    }[receiver]
    with EvidenceStore(store) as opened:
        phases = [(f.phase, f.error if f.phase == "webhook" else "") for f in opened.run_failures()]
    assert phases == [("audit", ""), ("webhook", expected)] * 2
    assert sum(f"gone: webhook failed: {expected}" == line for line in log) == 2
    assert "token=abc" not in "\n".join(log)


def test_a_stop_during_a_run_lets_it_finish_and_ends_the_loop(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {"audits": [job("a", "1m"), job("b", "1m")]}))
    calls: list[str] = []

    def run(scheduled) -> RunResult:
        calls.append(scheduled.name)
        loop.stop("SIGTERM")  # the signal arrives mid-run
        now = datetime.now(UTC)
        return RunResult(scheduled.name, tmp_path, now, now, None, None)

    loop = ScheduleLoop(config.schedule.jobs, run, sleep=lambda _: None, poll_seconds=0)
    for scheduled in loop.scheduler.jobs:
        scheduled.next_run = datetime.now()  # both due now
    loop.forever()
    assert calls == ["a"]  # finished, and nothing started after the stop
    assert loop.once() == loop.results and calls == ["a"]  # a stopped loop starts nothing more


def test_a_second_stop_aborts_the_run_and_records_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_path = write_config(tmp_path, {"audits": [job("a", "1m")]})
    log: list[str] = []
    fake = FakeTime(until_runs=5)
    loop, store = loop_for(config_path, fake, log)

    def interrupted(*args: Any, **kwargs: Any) -> None:
        loop.stop("SIGTERM")
        loop.stop("SIGTERM")  # raises RunAborted inside the run, as the signal handler would
        raise AssertionError("not reached")

    monkeypatch.setattr(scheduler, "run_audit", interrupted)
    loop.forever()
    assert loop.results == [] and not loop.running
    with EvidenceStore(store) as opened:
        assert [(f.job, f.phase, f.error) for f in opened.run_failures()] == [("a", "audit", "aborted by SIGTERM")]
    with pytest.raises(RunAborted):
        loop.running = True
        loop.stop("again")


# The failed-run record in the evidence history


def failure(**overrides: Any) -> RunFailure:
    values = dict(
        id="f1",
        job="nightly",
        phase="audit",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        error="/snapshots/prod: snapshot directory not found",
        output="/reports/nightly/20261102T100000Z",
        tool_version="0.1.0",
        run_by="cron",
    )
    return RunFailure(**{**values, **overrides})


def test_a_store_from_before_failed_runs_verifies_then_upgrades_and_chains_them(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with sqlite3.connect(path) as db:  # the schema as drauditor wrote it before the run_failures migration
        db.executescript(_MIGRATIONS[0])
        _MIGRATIONS[1](db)
        db.execute("PRAGMA user_version = 2")
    assert verify_history(path) == []  # verifying never upgrades: a v2 store has no failed runs to check
    with EvidenceStore(path) as store:
        store.record_audit(audit_record())
        store.record_run_failure(failure())
        assert store.run_failures() == [failure()]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert [json.loads(record)["type"] for _, record, *_ in ledger(path)] == ["audit", "run_failure"]
    assert verify_history(path) == []


def test_a_failed_run_cannot_be_edited_deleted_or_invented_quietly(tmp_path: Path) -> None:
    path = tmp_path / "evidence.db"
    with EvidenceStore(path) as store:
        store.record_run_failure(failure())
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store._db.execute("UPDATE run_failures SET error = 'nothing happened'")
    tamper(path, "UPDATE run_failures SET error = 'nothing happened'")
    assert verify_history(path) == ["run_failure f1 (seq 1 (run_failure f1)): run_failures row differs from the ledger"]
    tamper(path, "DELETE FROM run_failures")
    assert verify_history(path) == ["seq 1 (run_failure f1): in the ledger but missing from its table: deleted"]
    with pytest.raises(ValueError, match="phase 'capture' is not one of audit, webhook, drill"):
        failure(phase="capture")


# Retention


def at(day: int, second: int = 0) -> datetime:
    return datetime(2026, 11, day, 6, 0, second, tzinfo=UTC)


def test_run_folders_are_named_by_their_utc_start_and_never_reused(tmp_path: Path) -> None:
    first = new_run_folder(tmp_path, datetime(2026, 11, 25, 7, 30, 5, tzinfo=UTC).astimezone())
    assert first.name == "20261125T073005Z"
    first.mkdir()
    second = new_run_folder(tmp_path, at(25, 5).replace(hour=7, minute=30))
    assert second.name == "20261125T073005Z-1"
    second.mkdir()
    assert new_run_folder(tmp_path, at(25, 5).replace(hour=7, minute=30)).name == "20261125T073005Z-2"
    assert [f.path for f in run_folders(tmp_path)] == [first, second]


def test_retention_keeps_the_newest_runs_and_deletes_old_ones_only_among_run_folders(tmp_path: Path) -> None:
    for day in (1, 2, 3, 4, 5):
        (tmp_path / at(day).strftime("%Y%m%dT%H%M%SZ") / "report.json").parent.mkdir()
    (tmp_path / "20261105T060000Z-1").mkdir()  # a second run in the same second
    others = ["notes", "20261101T060000Z.bak", "2026-11-01", "20261101T060000Z-x"]
    for name in others:
        (tmp_path / name).mkdir()
    (tmp_path / "20261102T000000Z").write_text("a file, not a run folder")
    (tmp_path / "20261103T000000Z").symlink_to(tmp_path / "notes")

    folders = run_folders(tmp_path)
    assert [f.path.name for f in expired(folders, keep_runs=4, keep_days=None, now=at(6))] == [
        "20261101T060000Z",
        "20261102T060000Z",
    ]
    assert [f.path.name for f in expired(folders, keep_runs=None, keep_days=2.5, now=at(6))] == [
        "20261101T060000Z",
        "20261102T060000Z",
        "20261103T060000Z",
    ]
    assert expired(folders, keep_runs=None, keep_days=None, now=at(6)) == []
    deleted = prune(tmp_path, keep_runs=2, keep_days=1.5, now=at(6))
    assert [p.name for p in deleted] == [f"2026110{d}T060000Z" for d in (1, 2, 3, 4)]
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == sorted(
        ["20261105T060000Z", "20261105T060000Z-1", *others, "20261102T000000Z", "20261103T000000Z"]
    )


# The single-instance lock and signals, with real processes


def start_scheduler(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """A real `drauditor schedule` with nothing due for a day; returns it once it holds its lock."""
    config = write_config(tmp_path, {"audits": [job("daily", "1d")]})
    log = tmp_path / "scheduler.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(DRAUDITOR), "schedule", "--config", str(config)], stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while "daily: next run at" not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return process, config, log


def test_a_second_scheduler_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    first, config, _ = start_scheduler(tmp_path)
    try:
        lock = tmp_path / "drauditor-schedule.lock"
        assert lock.read_text() == f"{first.pid}\n"
        second = subprocess.run(
            [str(DRAUDITOR), "schedule", "--config", str(config), "--once"], capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 2
        assert f"error: {lock}: another drauditor schedule (PID {first.pid}) holds this lock" in second.stderr
        assert not (tmp_path / "reports").exists()  # the refused one ran nothing
    finally:
        first.terminate()
        first.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_scheduler_with_exit_0_and_releases_the_lock(tmp_path: Path, sig: signal.Signals) -> None:
    process, _, log = start_scheduler(tmp_path)
    sent = time.monotonic()
    process.send_signal(sig)
    assert process.wait(timeout=10) == 0, log.read_text()
    assert time.monotonic() - sent < 5
    assert f"stopped by {sig.name}; done; lock released" in log.read_text()
    lock = tmp_path / "drauditor-schedule.lock"
    assert lock.read_text() == ""
    with instance_lock(lock):  # free: this process takes it at once
        assert lock.read_text() == f"{__import__('os').getpid()}\n"
