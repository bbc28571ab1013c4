"""report.json is the one model: the report rebuilt from it renders every other format."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from helpers import SAMPLES

from auditor.config import AuditConfig
from auditor.engine import audit, audit_released, build_context
from auditor.report.model import Report
from auditor.snapshot import load_snapshot

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "report.schema.json").read_text())


def test_round_trip_through_json_is_lossless() -> None:
    report = audit(build_context(load_snapshot(SAMPLES / "broken-protection"), AuditConfig()))
    rebuilt = audit_released(lambda: load_snapshot(SAMPLES / "broken-protection"), AuditConfig(), None)
    assert _timeless(rebuilt.to_json()) == _timeless(report.to_json())
    assert rebuilt.verdict == report.verdict == "not-ready"
    assert rebuilt.findings == report.findings
    assert rebuilt.checks == report.checks
    jsonschema.validate(rebuilt.to_json(), SCHEMA)


def test_from_json_reads_a_written_report(tmp_path: Path) -> None:
    report = audit(build_context(load_snapshot(SAMPLES / "healthy"), AuditConfig()))
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report.to_json()))
    assert Report.from_json(json.loads(path.read_text())).summary == report.summary


def _timeless(data: dict) -> dict:
    """A report's JSON without the moments the run itself took place (two runs differ in nothing else)."""
    return {**data, "generated_at": None, "provenance": {**data["provenance"], "when": None}}
