"""The drauditor command line. Parsing and presentation only: the work happens in auditor.engine."""

from __future__ import annotations

import json
import sys
from importlib.resources import as_file, files
from pathlib import Path

import click

from auditor import __version__
from auditor.config import load_config
from auditor.engine import ReportWriteError, audit, build_context, write_reports
from auditor.errors import InputError
from auditor.evidence import EvidenceStore
from auditor.evidence_io import import_json
from auditor.model import Severity
from auditor.registry import discover
from auditor.report.model import Report
from auditor.report.terminal import summary_lines
from auditor.snapshot import load_snapshot

EXIT_INPUT_ERROR = 2
_SEVERITIES = click.Choice([s.value for s in Severity])


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_INPUT_ERROR)


@click.group()
@click.version_option(__version__, prog_name="drauditor")
def main() -> None:
    """Metro-DR readiness audits and evidence for OpenShift Virtualization VMs."""


def _run_audit(
    snapshot: Path, output_dir: Path, config_path: Path | None, fail_on: str | None, evidence: Path | None
) -> Report:
    config = load_config(config_path)
    if fail_on:
        config = config.model_copy(update={"fail_on": Severity(fail_on)})
    report = audit(build_context(load_snapshot(snapshot), config, evidence))
    try:
        write_reports(report, output_dir)
    except ReportWriteError as exc:
        for line in summary_lines(report, colour=False):
            click.echo(line)
        _fail(f"could not write every report: {exc}")
    return report


@main.command("audit")
@click.option(
    "--snapshot", type=click.Path(path_type=Path), required=True, help="Snapshot directory (docs/contract.md)."
)
@click.option("--output-dir", type=click.Path(path_type=Path), required=True, help="Where the reports go.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Audit configuration YAML.")
@click.option("--fail-on", type=_SEVERITIES, help="Lowest severity of a failure that makes the verdict not-ready.")
@click.option("--evidence", type=click.Path(path_type=Path), help="Evidence store (SQLite) with drill history.")
def audit_command(
    snapshot: Path, output_dir: Path, config_path: Path | None, fail_on: str | None, evidence: Path | None
) -> None:
    """Audit a captured estate and write report.json, report.junit.xml, report.html and report.pdf."""
    try:
        report = _run_audit(snapshot, output_dir, config_path, fail_on, evidence)
    except InputError as exc:
        _fail(str(exc))
    for line in summary_lines(report, colour=sys.stdout.isatty()):
        click.echo(line)
    click.echo(f"Reports: {output_dir}/report.{{json,junit.xml,html,pdf}}")
    sys.exit(report.exit_code)


@main.command()
@click.option("--output-dir", type=click.Path(path_type=Path), default=Path("drauditor-demo"), show_default=True)
def demo(output_dir: Path) -> None:
    """Audit the bundled sample estates (one healthy, two broken) and print where the reports are."""
    with as_file(files("drauditor_samples")) as samples:
        estates = sorted(p for p in Path(samples).iterdir() if (p / "hub").is_dir())
        for estate in estates:
            out = output_dir / estate.name
            out.mkdir(parents=True, exist_ok=True)
            store = out / "evidence.db"
            store.unlink(missing_ok=True)
            try:
                import_json(store, estate / "drills.json")
                report = _run_audit(
                    estate, out, estate / "config.yaml" if (estate / "config.yaml").exists() else None, None, store
                )
            except InputError as exc:
                _fail(f"sample estate {estate.name}: {exc}")
            counts = ", ".join(f"{n} {s}" for s, n in report.summary.items() if n)
            click.echo(f"{estate.name:<20} {report.verdict:<11} ({counts})")
            click.echo(f"{'':<20} {out / 'report.html'}\n{'':<20} {out / 'report.pdf'}")


@main.group("checks")
def checks_group() -> None:
    """The check catalogue."""


@checks_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def checks_list(as_json: bool) -> None:
    """List every check discovered through the drauditor.checks entry points."""
    checks, failures = discover()
    metas = sorted((c.meta for c in checks), key=lambda m: m.id)
    if as_json:
        rows = [
            {"id": m.id, "severity": m.severity.value, "title": m.title, "kinds_read": list(m.kinds_read)}
            for m in metas
        ]
        click.echo(json.dumps({"checks": rows, "load_failures": [f.__dict__ for f in failures]}, indent=2))
    else:
        width = max((len(m.id) for m in metas), default=2)
        for m in metas:
            click.echo(f"{m.id:<{width}}  {m.severity.value:<8}  {m.title}")
        for f in failures:
            click.echo(f"{f.check_id:<{width}}  LOAD FAILED  {f.reason}", err=True)
    if failures:
        sys.exit(EXIT_INPUT_ERROR)


@main.group("evidence")
def evidence_group() -> None:
    """The evidence store of drill history."""


@evidence_group.command("import")
@click.option("--store", type=click.Path(path_type=Path), required=True, help="Evidence store (created if absent).")
@click.argument("records", type=click.Path(path_type=Path))
def evidence_import(store: Path, records: Path) -> None:
    """Import drill records from a JSON list (the format of samples/*/drills.json)."""
    try:
        count = import_json(store, records)
    except InputError as exc:
        _fail(str(exc))
    click.echo(f"imported {count} drill records into {store}")


@evidence_group.command("list")
@click.option("--store", type=click.Path(path_type=Path, exists=True), required=True)
def evidence_list(store: Path) -> None:
    """List drills on record, oldest first."""
    try:
        with EvidenceStore(store) as opened:
            drills = opened.drills()
    except InputError as exc:
        _fail(str(exc))
    for d in drills:
        rto = f"{d.rto_seconds:.0f}s" if d.rto_seconds is not None else "-"
        click.echo(
            f"{d.finished_at.isoformat()}  {d.app_namespace}/{d.app_name:<24} {d.outcome:<8} RTO {rto:>6}  {d.id}"
        )
