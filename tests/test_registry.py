"""Check discovery and the runner's promise: every check outcome, crashes included, becomes a finding."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from helpers import context_for

from auditor import registry
from auditor.model import Status
from auditor.runner import run_checks

# Every module in checks/ is a built-in check, so one that is written but never registered fails here.
BUILTIN = {p.stem for p in (Path(__file__).resolve().parent.parent / "checks").glob("*.py") if p.stem != "__init__"}


def with_entry_points(monkeypatch: pytest.MonkeyPatch, points: dict[str, str]) -> None:
    eps = [EntryPoint(name, value, registry.GROUP) for name, value in points.items()]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps if group == registry.GROUP else [])


def test_builtin_checks_load_through_the_public_entry_point_group() -> None:
    checks, failures = registry.discover()
    assert failures == []
    assert {c.meta.id for c in checks} == BUILTIN
    for check in checks:
        assert check.module == f"checks.{check.meta.id}"
        assert check.meta.kinds_read


def test_broken_packs_become_error_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    with_entry_points(
        monkeypatch,
        {
            "crashing": "packs.crashing",
            "silent": "packs.silent",
            "misnamed": "packs.misnamed",
            "missing": "packs.does_not_exist",
        },
    )
    checks, failures = registry.discover()
    assert {c.meta.id for c in checks} == {"crashing", "silent"}
    assert {f.check_id for f in failures} == {"misnamed", "missing"}
    findings = {f.check_id: f for f in run_checks(context_for(), checks, failures)}
    assert all(f.status is Status.ERROR for f in findings.values())
    assert findings["crashing"].message == "The check crashed: KeyError: 'status'"
    assert findings["silent"].message == "The check returned no findings."
    assert "differs from its entry-point name" in findings["misnamed"].message
    assert "ModuleNotFoundError" in findings["missing"].message


def test_builtin_checks_never_crash_on_an_empty_estate() -> None:
    checks, failures = registry.discover()
    findings = run_checks(context_for(), checks, failures)
    assert {f.check_id for f in findings} == BUILTIN
    assert not any("crashed" in f.message for f in findings)
