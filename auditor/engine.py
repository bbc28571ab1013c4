"""One audit, start to finish: source -> context -> checks -> report -> renderers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from auditor import __version__
from auditor.config import AuditConfig
from auditor.context import AuditContext
from auditor.errors import InputError
from auditor.evidence import EvidenceStore
from auditor.inventory import Estate
from auditor.registry import discover
from auditor.report.model import Report, Scope
from auditor.runner import run_checks


def build_context(estate: Estate, config: AuditConfig, evidence_path: Path | None = None) -> AuditContext:
    path = evidence_path or config.evidence.path
    drills: tuple = ()
    if path is not None:
        if not Path(path).is_file():
            raise InputError(f"{path}: evidence store not found")
        with EvidenceStore(path) as store:
            drills = tuple(store.drills())
    if estate.captured_at is not None:
        now = estate.captured_at
        now_source = "start of the live read" if estate.source == "live" else "snapshot capturedAt"
    else:
        now, now_source = datetime.now(UTC), "current time (the snapshot has no capturedAt)"
    return AuditContext(
        estate=estate,
        config=config,
        drills=drills,
        evidence_source=str(path) if path else None,
        now=now,
        now_source=now_source,
    )


def audit_released(load_estate: Callable[[], Estate], config: AuditConfig, evidence_path: Path | None) -> Report:
    """Audits what ``load_estate`` reads and returns the report rebuilt from its JSON form, the estate released.

    Findings hold small strings taken from the estate, and those alone keep hundreds of MB of freed allocator arenas
    resident on a large estate. Only the JSON text survives the audit here, so rendering starts from a compact
    heap: peak memory is the larger of reading and rendering, not their sum (benchmarks/bench_audit.py). It also
    means every format is rendered from exactly what report.json holds.
    """
    canonical = json.dumps(audit(build_context(load_estate(), config, evidence_path)).to_json(), default=str)
    return Report.from_json(json.loads(canonical))


def audit(ctx: AuditContext) -> Report:
    checks, failures = discover()
    findings = run_checks(ctx, checks, failures)
    estate = ctx.estate
    return Report(
        generated_at=datetime.now(UTC),
        tool_version=__version__,
        scope=Scope(
            hub=estate.hub.name, clusters=tuple(sorted(estate.clusters)), source=estate.source, origin=estate.origin
        ),
        now=ctx.now,
        now_source=ctx.now_source,
        captured_at=estate.captured_at,
        fail_on=ctx.config.fail_on,
        checks=sorted((c.meta for c in checks), key=lambda m: m.id),
        findings=findings,
        thresholds=ctx.config.thresholds.model_dump(),
        evidence_source=ctx.evidence_source,
        input_digests=estate.input_digests,
    )


class ReportWriteError(Exception):
    """Some report formats could not be written; the ones that were written are kept."""


def write_reports(report: Report, out_dir: Path) -> dict[str, Path]:
    """Writes every format; the cheap, machine-readable ones first, and a failing one never stops the rest."""
    from auditor.report.html import write_html
    from auditor.report.json_report import write_json
    from auditor.report.junit import write_junit
    from auditor.report.pdf import write_pdf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    writers = {
        "json": (json_path, write_json),
        "junit": (out_dir / "report.junit.xml", write_junit),
        "html": (out_dir / "report.html", write_html),
        "pdf": (
            out_dir / "report.pdf",
            lambda r, p: write_pdf(r, p, attachment=json_path if json_path.exists() else None),
        ),
    }
    failures = []
    for path, writer in writers.values():
        try:
            writer(report, path)
        except Exception as exc:  # keep going: every format written is evidence kept
            failures.append(f"{path}: {type(exc).__name__}: {exc}")
    if failures:
        raise ReportWriteError("; ".join(failures))
    return {name: path for name, (path, _) in writers.items()}
