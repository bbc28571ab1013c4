"""One audit, start to finish: source -> context -> checks -> report -> renderers."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor import __version__, provenance
from auditor.config import AuditConfig
from auditor.context import AuditContext
from auditor.errors import InputError
from auditor.evidence import AuditRecord, EvidenceStore
from auditor.gating import Gate
from auditor.history import History, history_of
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


def audit_released(
    load_estate: Callable[[], Estate],
    config: AuditConfig,
    evidence_path: Path | None,
    config_file: Path | None = None,
    gate: Gate | None = None,
) -> Report:
    """Audits what ``load_estate`` reads and returns the report rebuilt from its JSON form, the estate released.

    Findings hold small strings taken from the estate, and those alone keep hundreds of MB of freed allocator arenas
    resident on a large estate. Only the JSON text survives the audit here, so rendering starts from a compact
    heap: peak memory is the larger of reading and rendering, not their sum (benchmarks/bench_audit.py). It also
    means every format is rendered from exactly what report.json holds.
    """
    started_at = datetime.now(UTC)
    gate = gate or Gate.load(config)  # before the estate: a malformed waivers file costs no live read
    ctx = build_context(load_estate(), config, evidence_path)
    report = audit(ctx, started_at=started_at, config_file=config_file, gate=gate)
    canonical = json.dumps(report.to_json(), default=str)
    return Report.from_json(json.loads(canonical))


def audit(
    ctx: AuditContext,
    *,
    started_at: datetime | None = None,
    config_file: Path | None = None,
    gate: Gate | None = None,
) -> Report:
    """Runs every check on ``ctx`` and applies the ``gate`` (default: the config's waivers) to the findings;
    ``started_at`` is when reading the estate began (default: now), for provenance."""
    started_at = started_at or datetime.now(UTC)
    gate = gate or Gate.load(ctx.config)
    checks, failures = discover()
    findings = gate.apply(run_checks(ctx, checks, failures), ctx.now)
    estate = ctx.estate
    finished_at = datetime.now(UTC)
    return Report(
        generated_at=finished_at,
        tool_version=__version__,
        scope=Scope(
            hub=estate.hub.name, clusters=tuple(sorted(estate.clusters)), source=estate.source, origin=estate.origin
        ),
        now=ctx.now,
        now_source=ctx.now_source,
        captured_at=estate.captured_at,
        fail_on=ctx.config.fail_on,
        checks=sorted([*(c.meta for c in checks), *gate.checks()], key=lambda m: m.id),
        findings=findings,
        thresholds=ctx.config.thresholds.model_dump(),
        evidence_source=ctx.evidence_source,
        input_digests=estate.input_digests,
        provenance=_with_inputs(
            provenance.collect(
                tool_version=__version__,
                checks=checks,
                config=ctx.config.model_dump(mode="json"),
                config_file=config_file,
                estate=estate,
                evidence_store=Path(ctx.evidence_source) if ctx.evidence_source else None,
                started_at=started_at,
                finished_at=finished_at,
            ),
            gate.input_digests(),
        ),
        gating=gate.record(),
        history=read_history(ctx),
    )


def read_history(ctx: AuditContext) -> History | None:
    """The store's earlier audits and every application's measured RTOs, when the audit was given an evidence store.

    Read here, not by a check: the trend is context for the reader and decides no finding.
    """
    if ctx.evidence_source is None:
        return None
    with EvidenceStore(Path(ctx.evidence_source)) as store:
        audits = store.audits()
    return history_of(audits, ctx.drills)


def _with_inputs(record: provenance.Provenance, digests: dict[str, str]) -> provenance.Provenance:
    """``record`` listing the waivers and baseline files among its inputs: they decide the verdict as well."""
    return replace(record, inputs={**record.inputs, **digests})


def record_audit(store_path: Path | None, report: Report, report_json: bytes) -> AuditRecord | None:
    """Files the audit in the evidence store's hash-chained ledger (when there is a store), so the verdicts given
    over time are as tamper-evident as the drills they judged; ``report_json`` is report.json as written."""
    if store_path is None:
        return None
    record = AuditRecord(
        id=str(uuid.uuid4()),
        started_at=report.provenance.started_at if report.provenance else report.generated_at,
        finished_at=datetime.now(UTC),
        verdict=report.verdict,
        summary=report.summary,
        report_sha256=hashlib.sha256(report_json).hexdigest(),
        tool_version=report.tool_version,
        source=report.scope.source,
        origin=report.scope.origin,
        hub=report.scope.hub,
        run_by=provenance.os_user(),
    )
    with EvidenceStore(store_path) as store:
        store.record_audit(record)
    return record


class ReportWriteError(Exception):
    """Some report formats could not be written; the ones that were written are kept."""


def write_reports(report: Report, out_dir: Path, signing_key: Ed25519PrivateKey | None = None) -> dict[str, Path]:
    """Writes every format, then the bundle manifest over them (signed with ``signing_key`` when given).

    The cheap, machine-readable formats go first, and a failing one never stops the rest: the manifest lists what
    was written, so even a partial bundle stays verifiable.
    """
    from auditor.bundle import write_manifest
    from auditor.report.html import write_html
    from auditor.report.json_report import write_json
    from auditor.report.junit import write_junit
    from auditor.report.pdf import write_pdf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    written: dict[str, Path] = {}
    writers = {
        "json": (json_path, write_json),
        "junit": (out_dir / "report.junit.xml", write_junit),
        "html": (out_dir / "report.html", write_html),
        # Only this run's report.json is embedded, never one left in the folder by an earlier run.
        "pdf": (out_dir / "report.pdf", lambda r, p: write_pdf(r, p, attachment=written.get("json"))),
    }
    failures = []
    for name, (path, writer) in writers.items():
        try:
            writer(report, path)
        except Exception as exc:  # keep going: every format written is evidence kept
            failures.append(f"{path}: {type(exc).__name__}: {exc}")
        else:
            written[name] = path
    written["manifest"] = write_manifest(out_dir, list(written.values()), report, signing_key)
    if failures:
        raise ReportWriteError("; ".join(failures))
    return written
