"""last_test_failover: drill history from a real SQLite evidence store plus Ramen's own DRPC record."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers import SAMPLES, by_resource, context_for, run, sample

from auditor.config import AuditConfig, Thresholds
from auditor.evidence import EvidenceStore
from auditor.evidence_io import import_json
from auditor.model import Status

CHECK = "last_test_failover"


def store_with(tmp_path: Path, estate_name: str) -> Path:
    path = tmp_path / "evidence.db"
    import_json(path, SAMPLES / estate_name / "drills.json")
    return path


def findings_with_store(estate_name: str, tmp_path: Path, **kwargs):
    store = store_with(tmp_path, estate_name)
    with EvidenceStore(store) as opened:
        drills = opened.drills()
    return run(CHECK, context_for(sample(estate_name), drills=drills, store=str(store), **kwargs)), drills


def test_healthy_every_application_tested_recently(tmp_path: Path) -> None:
    findings, _ = findings_with_store("healthy", tmp_path)
    estate = sample("healthy")
    assert len(findings) == len(estate.hub.list("DRPlacementControl"))
    assert all(f.status is Status.PASS for f in findings), [f.message for f in findings]
    sources = {f.evidence["source"] for f in findings}
    assert sources == {"evidence store", "DRPC status"}
    ramen = next(f for f in findings if f.evidence["source"] == "DRPC status")
    assert ramen.evidence["rto_seconds"] == 252.0  # actionDuration 4m12s
    assert ramen.evidence["last_success"] == "2026-10-30T14:06:23Z"


def test_broken_protection_stale_missing_and_failed(tmp_path: Path) -> None:
    findings, _ = findings_with_store("broken-protection", tmp_path)
    statuses = {f.evidence["drpc"].split("/")[0]: f for f in findings}
    stale = next(f for ns, f in statuses.items() if ns == "billing")
    assert stale.status is Status.FAIL and "older than the 90-day maximum" in stale.message
    none = next(f for ns, f in statuses.items() if ns == "crm")
    assert none.status is Status.FAIL and none.message.startswith("No successful failover test on record")
    erp = next(
        f for f in findings if "erp" in f.evidence["drpc"] or any("erp" in d["id"] for d in f.evidence["drills"])
    )
    assert erp.status is Status.FAIL  # its only drill failed: a failure never counts as a test passed
    assert "drill(s) on record all failed" in erp.message and "ended in failure" in erp.message
    assert all(f.status is Status.FAIL for f in findings)


def test_without_a_store_only_ramen_counts_and_the_message_says_so() -> None:
    findings = run(CHECK, context_for(sample("healthy")))
    by_source = {f.status: f for f in findings}
    assert by_source[Status.PASS].evidence["source"] == "DRPC status"
    assert "no evidence store configured" in by_source[Status.FAIL].message


def test_latest_drill_failed_after_a_success_warns(tmp_path: Path) -> None:
    findings, drills = findings_with_store("healthy", tmp_path)
    success = next(d for d in drills if d.outcome == "success")
    failed = type(success)(
        **{
            **success.__dict__,
            "id": "later-failure",
            "outcome": "failure",
            "started_at": success.started_at + timedelta(days=3),
            "finished_at": success.finished_at + timedelta(days=3),
        }
    )
    findings = run(CHECK, context_for(sample("healthy"), drills=[*drills, failed], store="x"))
    finding = next(f for f in findings if f.evidence["drills"] and f.evidence["drpc"].endswith(success.app_name))
    assert finding.status is Status.WARN
    assert "latest drill later-failure" in finding.message and "ended in failure" in finding.message


@pytest.mark.parametrize(("max_age", "expected"), [(365, Status.PASS), (1, Status.FAIL)])
def test_maximum_age_comes_from_the_config(tmp_path: Path, max_age: int, expected: Status) -> None:
    config = AuditConfig(thresholds=Thresholds(failover_test_max_age_days=max_age))
    findings, _ = findings_with_store("healthy", tmp_path, config=config)
    assert {f.status for f in findings} == {expected}
    assert all(f.evidence["max_age_days"] == max_age for f in findings)


def test_now_comes_from_captured_at_not_the_wall_clock(tmp_path: Path) -> None:
    estate = sample("healthy")
    later = estate.captured_at + timedelta(days=400)
    findings, _ = findings_with_store("healthy", tmp_path, now=later)
    assert {f.status for f in findings} == {Status.FAIL}


def test_no_drpc_is_a_skip() -> None:
    estate = sample("healthy")
    estate.hub._by_kind.pop("DRPlacementControl")
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.SKIP


def test_findings_name_the_drpc() -> None:
    findings = run(CHECK, context_for(sample("healthy")))
    assert all(f.resource.kind == "DRPlacementControl" for f in findings)
    assert len(by_resource(findings)) == len(findings)
