"""Audit contexts for check tests: from a bundled sample estate, a whole Estate, or a folder of Ceph outputs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.config import AuditConfig
from auditor.context import AuditContext
from auditor.evidence import DrillRecord
from auditor.inventory import CephData, Estate, Inventory
from auditor.model import Finding
from auditor.registry import load_module
from auditor.runner import run_check
from auditor.snapshot import load_ceph, load_snapshot

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# Every bundled estate (a folder with hub/), so a new sample is schema-checked, lab-loaded and audited by default.
ESTATES = tuple(sorted(p.name for p in SAMPLES.iterdir() if (p / "hub").is_dir()))
# A fixed clock for estates without capturedAt, so no test result depends on the day it runs.
TEST_NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


def empty_estate(ceph: CephData | None = None) -> Estate:
    return Estate(
        hub=Inventory("hub"),
        clusters={},
        ceph=ceph or CephData(),
        captured_at=None,
        source="snapshot",
        origin="tests",
    )


def ceph_data(ceph_dir: Path) -> CephData:
    """A folder of Ceph outputs read exactly as a snapshot's ceph/ folder is (same file-stem keys)."""
    folder = Path(ceph_dir)
    return load_ceph(folder, folder, {})


def ceph_fixture(scenario: str) -> dict[str, Any]:
    """The captured Ceph outputs of one scenario in tests/fixtures/ceph, as a fresh dict a test may change."""
    return ceph_data(FIXTURES / "ceph" / scenario).outputs


def ceph_estate(outputs: dict[str, Any], origin: str = "tests") -> Estate:
    """An estate holding only the given Ceph outputs (file stem -> parsed JSON)."""
    return empty_estate(CephData(outputs=outputs, origin=origin))


def context_for(
    estate: Estate | None = None,
    *,
    ceph_dir: Path | None = None,
    config: AuditConfig | None = None,
    drills: tuple[DrillRecord, ...] | list[DrillRecord] = (),
    store: str | None = None,
    now: datetime | None = None,
) -> AuditContext:
    """An AuditContext; ``ceph_dir`` replaces the estate's Ceph outputs (or fills an empty estate)."""
    estate = estate or empty_estate()
    if ceph_dir is not None:
        estate = replace(estate, ceph=ceph_data(ceph_dir))
    if now is not None:
        moment, source = now, "test argument"
    elif estate.captured_at is not None:
        moment, source = estate.captured_at, "snapshot capturedAt"
    else:
        moment, source = TEST_NOW, "fixed test clock"
    return AuditContext(
        estate=estate,
        config=config or AuditConfig(),
        drills=tuple(drills),
        evidence_source=store,
        now=moment,
        now_source=source,
    )


def sample(name: str) -> Estate:
    """A bundled sample estate, freshly loaded so a test may break it at will."""
    return load_snapshot(SAMPLES / name)


def without(inventory: Inventory, kind: str, name: str | None = None) -> Inventory:
    """A copy of ``inventory`` lacking the objects of ``kind`` (only those called ``name`` when given)."""
    kept = [
        obj
        for key in inventory.kinds()
        for obj in inventory.list(key)
        if key != kind or (name is not None and obj["metadata"]["name"] != name)
    ]
    copy = Inventory(inventory.name, kept)
    copy.unavailable.update(inventory.unavailable)
    return copy


def run(check_id: str, ctx: AuditContext) -> list[Finding]:
    """Runs one built-in check exactly as the engine does (through the runner's crash handling)."""
    return run_check(load_module(check_id, f"checks.{check_id}"), ctx)


def by_resource(findings: list[Finding]) -> dict[str, Finding]:
    return {f"{f.resource.namespace}/{f.resource.name}": f for f in findings if f.resource}
