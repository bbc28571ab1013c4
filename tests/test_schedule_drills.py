"""Scheduled drills: the `drills:` entries of the schedule section, and the real scheduler running them on their
cadence into dated folders, filing their failures, notifying and pruning as it does for audits.

The drill itself is `auditor.drill.runner.run_drill`, replaced here (as test_schedule replaces run_audit) by a stand-in
that reports progress, files its record the way the real one does, and returns a real DrillResult; the real runner
against the lab is proven by the drill tests. One test calls the real run_drill, on a config whose clusters cannot be
read, to show a scheduled drill that cannot start is filed as a failed run.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from loopback import recording_server
from test_schedule import STAMP, FakeTime, invoke, job, loop_for, write_config

from auditor import __version__, scheduler
from auditor.config import ScheduledDrill, load_config
from auditor.drill.runner import DrillRequest, DrillResult
from auditor.evidence import _MIGRATIONS, DrillRecord, EvidenceStore, RunFailure, verify_history
from auditor.run import LiveFlags
from auditor.scheduler import DRILL_JSON, DRILL_LOG, ScheduleLoop

APP = "billing/billing-drpc"


def drill_job(name: str = "weekly-drill", every: str = "monday at 06:00", **values: Any) -> dict[str, Any]:
    return {"name": name, "every": every, "app": APP, "output": "drills", **values}


# The drills entries of the schedule section


def test_a_schedule_of_drills_only_is_valid_and_its_output_is_relative_to_the_config(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {"drills": [drill_job(vms=["billing-db", "billing-web"])]}))
    assert config.schedule is not None and config.schedule.audits == ()
    (drill,) = config.schedule.jobs
    assert drill == ScheduledDrill(
        name="weekly-drill",
        every="monday at 06:00",
        app=APP,
        vms=("billing-db", "billing-web"),
        output=tmp_path / "drills",
    )
    assert drill.cadence.day == "monday" and drill.cadence.time == "06:00"


def test_audits_run_before_drills_each_in_config_order(tmp_path: Path) -> None:
    section = {"audits": [job("b"), job("a")], "drills": [drill_job("d2"), drill_job("d1", "1d")]}
    config = load_config(write_config(tmp_path, section))
    assert [j.name for j in config.schedule.jobs] == ["b", "a", "d2", "d1"]


@pytest.mark.parametrize(
    ("drill", "expected"),
    [
        ({**drill_job(), "force": True},
         "schedule.drills.0: Value error, force is not available in a schedule: a refused drill is forced by hand"),
        ({**drill_job(), "force": False}, "schedule.drills.0: Value error, force is not available in a schedule"),
        (drill_job(app="billing"), "schedule.drills.0.app: Value error, 'billing' is not NAMESPACE/DRPC"),
        (drill_job(app="billing/"), "schedule.drills.0.app: Value error, 'billing/' is not NAMESPACE/DRPC"),
        (drill_job(app="a/b/c"), "schedule.drills.0.app: Value error, 'a/b/c' is not NAMESPACE/DRPC"),
        (drill_job(vms=["db", "db"]), "schedule.drills.0.vms: Value error, VMs listed twice: db"),
        (drill_job(vms=[""]), "schedule.drills.0.vms: Value error, a VM name is empty"),
        (drill_job(vms="db"), "schedule.drills.0.vms: Input should be a valid tuple"),
        (drill_job(every="weekly"), "schedule.drills.0.every: Value error, 'weekly' is not a schedule"),
        (drill_job(name="../x"), "schedule.drills.0.name: String should match pattern"),
        ({**drill_job(), "timeout": 60}, "schedule.drills.0.timeout: Extra inputs are not permitted"),
        ({k: v for k, v in drill_job().items() if k != "app"}, "schedule.drills.0.app: Field required"),
        ({k: v for k, v in drill_job().items() if k != "output"}, "schedule.drills.0.output: Field required"),
    ],
)  # fmt: skip
def test_a_malformed_drill_entry_is_exit_2_naming_the_key(tmp_path: Path, drill: dict, expected: str) -> None:
    result = invoke("schedule", "--config", str(write_config(tmp_path, {"drills": [drill]})), "--once")
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert not (tmp_path / "drauditor-schedule.lock").exists()  # refused before anything was started


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"audits": [job("prod")], "drills": [drill_job("prod")]},
         "schedule: Value error, audit and drill names must be unique (their runs share a folder): prod"),
        ({"drills": [drill_job("x"), drill_job("x", app="crm/crm-drpc")]}, "must be unique (their runs share"),
        ({"audits": [], "drills": []}, "schedule: Value error, list at least one audit or drill to run"),
        ({"retention": {"keep_runs": 3}}, "schedule: Value error, list at least one audit or drill to run"),
    ],
)  # fmt: skip
def test_jobs_are_required_and_their_names_unique_across_audits_and_drills(
    tmp_path: Path, section: dict, expected: str
) -> None:
    result = invoke("schedule", "--config", str(write_config(tmp_path, section)), "--once")
    assert result.exit_code == 2, result.output
    assert expected in result.output


# Running scheduled drills


def record(
    drill_id: str = "20261102t060000-a1b2c3",
    outcome: str = "success",
    rto: float | None = 41.2,
    *,
    rto_target: float | None = 600.0,
    error: str | None = None,
    residue: tuple[str, ...] = (),
    finished: datetime = datetime(2026, 11, 2, 6, 1, 30, tzinfo=UTC),
) -> DrillRecord:
    """A drill record shaped as the runner files it (docs: drill-spec "The record")."""
    rpo = 0.0 if outcome == "success" else None
    details = {
        "schema": 1,
        "primary": "prod-east",
        "secondary": "prod-west",
        "namespace": f"drauditor-drill-{drill_id}",
        "policy": "metro-policy",
        "replication": "sync",
        "targets": {
            "rto_seconds": rto_target,
            "rpo_seconds": 0.0,
            "rto_met": None if rto_target is None or rto is None else rto <= rto_target,
            "rpo_met": None if rpo is None else rpo <= 0.0,
        },
        "vms": [{"namespace": "billing", "name": "billing-db", "outcome": "ready" if rto else "failed"}],
        "cleanup": {"complete": not residue, "residue": list(residue)},
        "error": error,
        "preflight": {"forced": False, "refusals": []},
    }
    return DrillRecord(
        id=drill_id,
        app_namespace="billing",
        app_name="billing-drpc",
        started_at=finished - timedelta(seconds=90),
        finished_at=finished,
        outcome=outcome,
        mode="snapshot-restore",
        run_by="scheduler",
        tool_version=__version__,
        rto_seconds=rto if outcome == "success" else None,
        rpo_seconds=rpo,
        details=details,
    )


@dataclass
class StandInDrill:
    """run_drill as the scheduler calls it: reports progress, files the record in ``evidence`` as the real one does
    (or raises what it is given), and returns the queued result."""

    results: list[DrillResult | Exception]
    calls: list[tuple[DrillRequest, LiveFlags, Path | None]] = field(default_factory=list)

    def __call__(self, request, config, flags, *, evidence, progress) -> DrillResult:
        self.calls.append((request, flags, evidence))
        outcome = self.results.pop(0)
        progress({"event": "phase", "phase": "prepare", "detail": "namespace on both clusters"})
        if isinstance(outcome, Exception):
            raise outcome
        if outcome.record is not None:
            progress({"event": "vm_done", "vm": "billing/billing-db", "outcome": "ready", "rto_seconds": 41.2,
                      "seconds": 41.2})  # fmt: skip
            with EvidenceStore(evidence) as store:
                store.record_drill(outcome.record)
        return DrillResult(outcome.record, None, outcome.refusals, outcome.exit_code, evidence)


def test_once_runs_a_drill_into_a_dated_folder_and_posts_what_it_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drilled = record()
    stand_in = StandInDrill([DrillResult(drilled, None, (), 0)])
    monkeypatch.setattr(scheduler, "run_drill", stand_in)
    with recording_server(status=204) as server:
        section = {"drills": [drill_job(vms=["billing-db"])], "webhook": {"url": f"{server.base}/hook"}}
        result = invoke("schedule", "--config", str(write_config(tmp_path, section)), "--once")
    assert result.exit_code == 0, result.output

    store = tmp_path / "evidence.db"
    ((request, flags, evidence),) = stand_in.calls
    assert request == DrillRequest(app=APP, vms=("billing-db",))  # never forced, the config's timeout
    assert flags == LiveFlags() and evidence == store  # the config's live section; filed in the schedule's store
    (folder,) = (tmp_path / "drills" / "weekly-drill").iterdir()
    assert STAMP.fullmatch(folder.name)
    assert sorted(p.name for p in folder.iterdir()) == [DRILL_JSON, DRILL_LOG]
    filed = json.loads((folder / DRILL_JSON).read_text())
    assert filed == DrillResult(drilled, None, (), 0, store).to_json()
    assert filed["drill"]["details"]["targets"]["rto_met"] is True
    assert (folder / DRILL_LOG).read_text().splitlines() == [
        " " * 11 + " == prepare: namespace on both clusters",
        "[   41.20s] billing/billing-db: ready, RTO 41.20s",
    ]
    with EvidenceStore(store) as opened:
        assert opened.drills() == [drilled] and opened.run_failures() == []
    assert verify_history(store) == []
    assert f"weekly-drill: drill {drilled.id} of {APP}: success, RTO 41.20s, RPO 0.00s, exit 0" in result.output

    (body,) = server.bodies
    posted = json.loads(body)
    assert posted["run"] == "completed" and posted["error"] is None and posted["verdict"] is None
    assert posted["report_folder"] == str(folder) and posted["generated_at"] == "2026-11-02T06:01:30Z"
    assert posted["drill"] == {
        "app": APP,
        "id": drilled.id,
        "outcome": "success",
        "rto_seconds": 41.2,
        "rpo_seconds": 0.0,
        "exit_code": 0,
        "refusals": [],
    }


def test_failed_and_refused_drills_are_recorded_and_the_loop_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "drills" / "nightly-drill"
    (runs / "20200101T000000Z").mkdir(parents=True)  # a run of long ago: retention deletes it
    slow = record("20261102t060000-000001", rto=700.0)
    failed = record("20261103t060000-000002", "failure", None, error="VM billing/billing-db: VMI phase Failed")
    residue = record("20261104t060000-000003", residue=("prod-west Namespace drauditor-drill-x",))
    outcomes: list[DrillResult | Exception] = [
        DrillResult(None, None, ("DRPC billing/billing-drpc is not protected (Regional-DR)",), 1),
        DrillResult(slow, None, (), 1),
        DrillResult(failed, None, (), 1),
        DrillResult(residue, None, (), 3),
        RuntimeError("the kubeconfig vanished"),
        DrillResult(record("20261106t060000-000004"), None, (), 0),
    ]
    monkeypatch.setattr(scheduler, "run_drill", StandInDrill(outcomes))
    config = write_config(
        tmp_path, {"drills": [drill_job("nightly-drill", "1d")], "retention": {"keep_runs": 6, "keep_days": 30}}
    )
    fake = FakeTime(until_runs=6)
    log: list[str] = []
    loop, store = loop_for(config, fake, log)
    loop.forever()

    assert [r.error is None for r in loop.results] == [False] * 5 + [True]
    assert fake.waits == [pytest.approx(86400, abs=30)] * 7  # a day before each run, asked of the sleep
    expected = [
        "refused: DRPC billing/billing-drpc is not protected (Regional-DR)",
        f"drill {slow.id} success; RTO 700.00s missed its target 600.00s",
        f"drill {failed.id} failure: VM billing/billing-db: VMI phase Failed",
        f"drill {residue.id} success; left behind: prod-west Namespace drauditor-drill-x "
        f"(drauditor drill cleanup --id {residue.id})",
        "RuntimeError: the kubeconfig vanished",
    ]
    with EvidenceStore(store) as opened:
        assert [(f.job, f.phase, f.error) for f in opened.run_failures()] == [
            ("nightly-drill", "drill", error) for error in expected
        ]
        assert [d.id for d in opened.drills()] == [slow.id, failed.id, residue.id, "20261106t060000-000004"]
        assert [f.output for f in opened.run_failures()] == [str(r.folder) for r in loop.results[:5]]
    assert verify_history(store) == []
    assert [line for line in log if "drill failed: " in line] == [f"nightly-drill: drill failed: {e}" for e in expected]
    assert "nightly-drill: drill of billing/billing-drpc refused, nothing created" in log
    # the refused run's folder says why; the one that raised has the log of how far it got, and no result
    refused, *_, raised, _ = loop.results
    assert json.loads((refused.folder / DRILL_JSON).read_text())["refusals"] == [expected[0].removeprefix("refused: ")]
    assert sorted(p.name for p in raised.folder.iterdir()) == [DRILL_LOG]
    # retention: the newest 6 runs, the run of 2020 is gone
    assert sorted(p.name for p in runs.iterdir()) == sorted(r.folder.name for r in loop.results)
    assert f"nightly-drill: retention deleted {runs / '20200101T000000Z'}" in log


def test_a_drill_aborted_by_a_signal_is_recorded_and_stops_the_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drill installs its own SIGTERM/SIGINT handlers while it runs (so it can clean up at once): the scheduler
    learns of the signal from the aborted outcome, and starts nothing after it."""
    aborted = record("20261102t060000-0000ab", "aborted", None, error="aborted by SIGTERM")
    stand_in = StandInDrill([DrillResult(aborted, None, (), 3)])
    monkeypatch.setattr(scheduler, "run_drill", stand_in)
    config = load_config(write_config(tmp_path, {"drills": [drill_job("first"), drill_job("second")]}))
    log: list[str] = []
    store = tmp_path / "evidence.db"
    loop = ScheduleLoop(config.schedule.jobs, scheduler.Runner(config, tmp_path / "c.yaml", store, log.append))
    assert loop.once() == [] and loop.stopping and loop.stop_reason == "SIGTERM"
    assert len(stand_in.calls) == 1, "the second drill did not start"
    with EvidenceStore(store) as opened:
        ((name, phase, error),) = [(f.job, f.phase, f.error) for f in opened.run_failures()]
        assert [d.outcome for d in opened.drills()] == ["aborted"]
    assert (name, phase) == ("first", "drill") and error == f"drill {aborted.id} aborted: aborted by SIGTERM"


def test_the_real_drill_runner_that_cannot_reach_the_clusters_is_a_failed_run(tmp_path: Path) -> None:
    section = {"drills": [drill_job()]}
    live = {"kubeconfig": "absent.kubeconfig", "hub_context": "hub", "clusters": {"prod-east": None, "prod-west": None}}
    config = write_config(tmp_path, section, live=live)
    result = invoke("schedule", "--config", str(config), "--once")
    assert result.exit_code == 1, result.output
    with EvidenceStore(tmp_path / "evidence.db") as opened:
        ((failure,),) = [opened.run_failures()]
        assert opened.drills() == []
    assert (failure.job, failure.phase) == ("weekly-drill", "drill") and "absent.kubeconfig" in failure.error
    (folder,) = (tmp_path / "drills" / "weekly-drill").iterdir()
    assert failure.output == str(folder) and not (folder / DRILL_JSON).exists()


# The evidence store: a failed drill run is a run failure of phase drill


def test_a_store_from_before_failed_drill_runs_upgrades_keeps_its_failures_and_accepts_drill_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.db"
    audit_failure = RunFailure(
        id="f1",
        job="nightly",
        phase="audit",
        started_at=datetime(2026, 11, 2, 10, tzinfo=UTC),
        finished_at=datetime(2026, 11, 2, 10, 0, 3, tzinfo=UTC),
        error="/snapshots/prod: snapshot directory not found",
        output="/reports/nightly/20261102T100000Z",
        tool_version="0.1.0",
        run_by="cron",
    )
    with EvidenceStore(path) as store:  # written at v4, then taken back to the v3 run_failures table
        store.record_run_failure(audit_failure)
    with sqlite3.connect(path) as db:
        db.executescript(f"DROP TABLE run_failures; {_MIGRATIONS[2]}")
        db.execute(
            "INSERT INTO run_failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tuple(audit_failure.to_dict().values())
        )
        db.execute("PRAGMA user_version = 3")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            db.execute("INSERT INTO run_failures (id, job, phase, started_at, finished_at, error, output, tool_version,"
                       " run_by) VALUES ('x', 'j', 'drill', 't', 't', 'e', 'o', 'v', 'r')")  # fmt: skip
    assert verify_history(path) == []
    drill_failure = RunFailure(**{**audit_failure.__dict__, "id": "f2", "job": "weekly-drill", "phase": "drill"})
    with EvidenceStore(path) as store:
        store.record_run_failure(drill_failure)
        assert store.run_failures() == [audit_failure, drill_failure]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store._db.execute("DELETE FROM run_failures")
    assert verify_history(path) == []
