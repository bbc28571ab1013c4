"""Loading the bundled sample estates for tests, and finding objects in them to break on purpose."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from auditor.config import AuditConfig
from auditor.context import AuditContext
from auditor.evidence import DrillRecord
from auditor.inventory import Estate
from auditor.model import Finding
from auditor.registry import load_module
from auditor.runner import run_check
from auditor.snapshot import load_snapshot

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sample(name: str) -> Estate:
    return load_snapshot(SAMPLES / name)


def context(
    estate: Estate,
    *,
    config: AuditConfig | None = None,
    drills: Iterable[DrillRecord] = (),
    store: str | None = None,
    now: datetime | None = None,
) -> AuditContext:
    return AuditContext(
        estate=estate,
        config=config or AuditConfig(),
        drills=tuple(drills),
        evidence_source=store,
        now=now or estate.captured_at,
        now_source="test",
    )


def run(check_id: str, ctx: AuditContext) -> list[Finding]:
    """Runs one built-in check exactly as the engine does (through the runner's crash handling)."""
    return run_check(load_module(check_id, f"checks.{check_id}"), ctx)


def by_resource(findings: list[Finding]) -> dict[str, Finding]:
    return {f"{f.resource.namespace}/{f.resource.name}": f for f in findings if f.resource}
