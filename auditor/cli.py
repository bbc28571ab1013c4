"""The drauditor command line. Parsing and presentation only: the work happens in auditor.engine."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import partial
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import click

from auditor import __version__, scheduler, signing
from auditor.baseline import write_baseline as write_baseline_file
from auditor.bundle import MANIFEST, verify
from auditor.capture import write_snapshot
from auditor.config import load_config
from auditor.drill import progress as drill_progress
from auditor.drill.recovery import cleanup_leftovers
from auditor.drill.runner import DrillRequest, run_drill
from auditor.drill.summary import drill_summary_lines
from auditor.errors import InputError
from auditor.evidence import EvidenceStore
from auditor.evidence_io import import_json
from auditor.gating import Gate
from auditor.model import Severity
from auditor.registry import discover
from auditor.report.markdown import write_markdown
from auditor.report.model import Report
from auditor.report.terminal import gate_line, summary_lines
from auditor.run import IncompleteBundle, LiveFlags, load_estate, run_audit
from auditor.snapshot import load_snapshot

EXIT_INPUT_ERROR = 2
_SEVERITIES = click.Choice([s.value for s in Severity])


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_INPUT_ERROR)


def _incomplete(exc: IncompleteBundle) -> None:
    """The verdict still reaches the log when some report formats could not be written."""
    for line in summary_lines(exc.report, colour=False):
        click.echo(line)
    _fail(str(exc))


@click.group()
@click.version_option(__version__, prog_name="drauditor")
def main() -> None:
    """Metro-DR readiness audits and evidence for OpenShift Virtualization VMs."""


def _live_options(command):
    """The flags that point drauditor at live clusters, shared by audit and capture."""
    options = [
        click.option(
            "--kubeconfig",
            type=click.Path(path_type=Path),
            help="Kubeconfig (default: $KUBECONFIG, ~/.kube/config, or the pod's service account).",
        ),
        click.option("--hub-context", help="Kubeconfig context of the RHACM hub (default: the current context)."),
        click.option(
            "--cluster",
            "cluster_specs",
            multiple=True,
            metavar="NAME=CONTEXT",
            help="A managed cluster: its DRCluster name and kubeconfig context (repeat for each).",
        ),
        click.option(
            "--ceph-conf",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Read Ceph live with the `ceph` CLI using this ceph.conf.",
        ),
        click.option(
            "--ceph-keyring", type=click.Path(path_type=Path, dir_okay=False), help="Keyring for --ceph-conf."
        ),
        click.option("--ceph-name", help="Ceph client name for --ceph-conf (e.g. client.drauditor)."),
        click.option(
            "--ceph-tools-context",
            help="Read Ceph by exec in the rook-ceph-tools pod of this context "
            "(ODF internal mode; namespace and selector in the config's ceph section).",
        ),
        click.option(
            "--ceph",
            "ceph_dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Folder of Ceph JSON outputs (the ceph/ files of docs/contract.md).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _gating_options(command):
    """The flags that decide what fails the gate, and the summaries a pipeline posts (docs/contract.md section 6)."""
    file = click.Path(path_type=Path, dir_okay=False)
    options = [
        click.option("--waivers", type=file, help="Waivers file (accepted risks); overrides the config's waivers."),
        click.option("--no-waivers", is_flag=True, help="Apply no waiver (an auditor's view); the report says so."),
        click.option("--baseline", type=file, help="Baseline from --write-baseline: only failures not in it count."),
        click.option("--write-baseline", type=file, help="Write this audit's failures as a baseline (YAML, or .json)."),
        click.option("--summary-md", type=file, help="Write a Markdown summary for a pull-request comment."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _outside(output_dir: Path, **paths: Path | None) -> None:
    """Side files stay out of the report bundle, whose manifest lists (and signs) exactly the reports."""
    for flag, path in paths.items():
        if path is not None and path.resolve().is_relative_to(output_dir.resolve()):
            raise click.UsageError(f"--{flag.replace('_', '-')} {path} must be outside --output-dir {output_dir}")


def _write_side_file(report: Report, path: Path | None, writer: Callable[[Report, Path], None]) -> None:
    if path is None:
        return
    try:
        writer(report, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror})") from exc


@main.command("audit")
@click.option("--snapshot", type=click.Path(path_type=Path), help="Snapshot directory (docs/contract.md).")
@_live_options
@click.option("--output-dir", type=click.Path(path_type=Path), required=True, help="Where the reports go.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Audit configuration YAML.")
@click.option("--fail-on", type=_SEVERITIES, help="Lowest severity of a failure that makes the verdict not-ready.")
@click.option("--evidence", type=click.Path(path_type=Path), help="Evidence store (SQLite) with drill history.")
@click.option(
    "--sign-key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Ed25519 private key (PKCS#8 PEM, e.g. from `drauditor keygen`): sign OUT/manifest.json.",
)
@_gating_options
def audit_command(
    snapshot: Path | None,
    output_dir: Path,
    config_path: Path | None,
    fail_on: str | None,
    evidence: Path | None,
    sign_key: Path | None,
    waivers: Path | None,
    no_waivers: bool,
    baseline: Path | None,
    write_baseline: Path | None,
    summary_md: Path | None,
    **live: Any,
) -> None:
    """Audit a snapshot or live clusters; write report.json, report.junit.xml, report.html, report.pdf and
    manifest.json (the bundle `drauditor verify` checks). The last line of output is the gate's result for a
    pipeline log: `drauditor: verdict=... fail=N error=N new=N baselined=N waived=N exit=N`."""
    _outside(output_dir, write_baseline=write_baseline, summary_md=summary_md)
    try:
        signing_key = signing.load_private_key(sign_key) if sign_key else None  # a bad key fails before the audit
        config = load_config(config_path)
        if fail_on:
            config = config.model_copy(update={"fail_on": Severity(fail_on)})
        # Waivers and baseline are read before the estate: a malformed one stops the run before any live read.
        gate = Gate.load(config, waivers=waivers, no_waivers=no_waivers, baseline=baseline)
        report = run_audit(
            lambda: load_estate(snapshot, config, LiveFlags(**live)),
            config,
            output_dir,
            evidence=evidence,
            config_file=config_path,
            signing_key=signing_key,
            gate=gate,
        )
        _write_side_file(report, write_baseline, write_baseline_file)
        _write_side_file(report, summary_md, write_markdown)
    except IncompleteBundle as exc:
        _incomplete(exc)
    except InputError as exc:
        _fail(str(exc))
    for line in summary_lines(report, colour=sys.stdout.isatty()):
        click.echo(line)
    click.echo(f"Reports: {output_dir}/report.{{json,junit.xml,html,pdf}}")
    signed = f", signed by {signing.fingerprint(signing_key.public_key())}" if signing_key else ""
    click.echo(f"Manifest: {output_dir / MANIFEST}{signed}")
    for path, what in ((write_baseline, "Baseline"), (summary_md, "Summary")):
        if path is not None:
            click.echo(f"{what}: {path}")
    click.echo(gate_line(report))
    sys.exit(report.exit_code)


@main.command()
@_live_options
@click.option("--output", type=click.Path(path_type=Path), required=True, help="New snapshot directory.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Configuration with a live section.")
def capture(output: Path, config_path: Path | None, **live: Any) -> None:
    """Read live clusters once and write a snapshot directory that `audit --snapshot` accepts."""
    try:
        estate = load_estate(None, load_config(config_path), LiveFlags(**live))
        write_snapshot(estate, output)
    except (InputError, FileExistsError) as exc:
        _fail(str(exc))
    for cluster, kind, reason in estate.unavailable():
        click.echo(f"not captured: {kind} on {cluster}: {reason}", err=True)
    counts = ", ".join(f"{inv.name} {len(inv)}" for inv in estate.inventories())
    click.echo(f"captured {counts} objects into {output}")
    sys.exit(3 if estate.unavailable() else 0)


@main.command()
@click.option("--output-dir", type=click.Path(path_type=Path), default=Path("drauditor-demo"), show_default=True)
def demo(output_dir: Path) -> None:
    """Audit the bundled sample estates (one healthy, the rest broken on purpose) and print where the reports are."""
    with as_file(files("drauditor_samples")) as samples:
        estates = sorted(p for p in Path(samples).iterdir() if (p / "hub").is_dir())
        for estate in estates:
            out = output_dir / estate.name
            out.mkdir(parents=True, exist_ok=True)
            store = output_dir / f"{estate.name}.evidence.db"  # an input: kept out of the report bundle
            store.unlink(missing_ok=True)
            try:
                import_json(store, estate / "drills.json")
                report = run_audit(partial(load_snapshot, estate), load_config(None), out, evidence=store, record=False)
            except IncompleteBundle as exc:
                _incomplete(exc)
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


@main.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path), required=False)
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Trusted Ed25519 public key (PEM): the bundle's manifest must be signed with exactly this key.",
)
@click.option(
    "--history",
    "store",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also verify an evidence store's hash-chained history of drills and audits.",
)
def verify_command(bundle: Path | None, public_key: Path | None, store: Path | None) -> None:
    """Check a report bundle (an audit's --output-dir) and/or an evidence store's history.

    For BUNDLE: every file's SHA-256 against manifest.json, no file added or missing, the signature, and the
    report.json embedded in the PDF. One line per problem; exit 0 intact, 1 changed, 2 usage or input error.
    """
    if public_key is not None and bundle is None:
        raise click.UsageError("--public-key verifies a report bundle: give BUNDLE too")
    if bundle is None and store is None:
        raise click.UsageError("give a report bundle folder (BUNDLE), --history STORE, or both")
    problems: list[str] = []
    checked: list[str] = []
    try:
        if bundle is not None:
            result = verify(bundle, signing.load_public_key(public_key) if public_key else None)
            problems += [f"{bundle}/{problem}" for problem in result.problems]
            checked += [f"{bundle}/{line}" for line in result.checked]
        if store is not None:
            from auditor.evidence import verify_history  # only this option reads a store

            found = verify_history(store)
            problems += [p if p.startswith(str(store)) else f"{store}: {p}" for p in found]
            checked += [] if found else [f"{store}: history intact"]
    except InputError as exc:
        _fail(str(exc))
    for problem in problems:
        click.echo(f"FAILED {problem}")
    if problems:
        click.echo(f"{len(problems)} problem(s): not the evidence as it was written", err=True)
        sys.exit(1)
    for line in checked:
        click.echo(f"ok     {line}")


@main.command("keygen")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True)
def keygen(out_dir: Path) -> None:
    """Create an Ed25519 key pair for `audit --sign-key` (private key mode 0600) and `verify --public-key`."""
    try:
        private_path, public_path = signing.generate(out_dir)
    except InputError as exc:
        _fail(str(exc))
    click.echo(f"private key: {private_path} (keep it secret; give it to audit --sign-key)")
    click.echo(f"public key:  {public_path} (give it to verify --public-key)")
    click.echo(f"fingerprint: {signing.fingerprint(signing.load_public_key(public_path))}")


@main.command("schedule")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Configuration with a schedule section (and the live, ceph, drill and evidence sections its jobs use).",
)
@click.option("--once", is_flag=True, help="Run every scheduled audit and drill once, now, and exit (for cron).")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the lock file and, unless the config names one, the evidence store are (default: the config's folder).",
)
def schedule_command(config_path: Path, once: bool, state_dir: Path | None) -> None:
    """Run the config's scheduled audits and drills on their cadence: a dated folder per run, every run in the evidence
    history, one instance per lock, a clean stop on SIGTERM. Exit 0 when stopped (with --once: when no run failed),
    1 when a --once run failed, 2 on a bad config or when another scheduler holds the lock."""
    try:
        code = scheduler.serve(
            load_config(config_path),
            config_path,
            state_dir=state_dir,
            once=once,
            log=scheduler.timestamped(click.echo),
        )
    except InputError as exc:
        _fail(str(exc))
    sys.exit(code)


@main.group("drill", invoke_without_command=True)
@click.option("--app", help="The application to drill: NAMESPACE/DRPC (its DRPlacementControl on the hub).")
@click.option("--vm", "vms", multiple=True, metavar="NAME", help="Drill only this VM of the application (repeat).")
@click.option("--plan", "plan_only", is_flag=True, help="Print every object the drill would create; change nothing.")
@click.option("--timeout", type=click.FloatRange(min=1), help="Seconds until the drill gives up (default: config).")
@click.option("--force", is_flag=True, help="Drill although preflight refuses (an unprotected app, degraded Ceph).")
@click.option("--json", "as_json", is_flag=True, help="Progress and result as JSON lines on stdout.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Configuration (live, drill, evidence).")
@click.option("--evidence", type=click.Path(path_type=Path), help="Evidence store that files the drill.")
@_live_options
@click.pass_context
def drill_group(
    ctx: click.Context,
    app: str | None,
    vms: tuple[str, ...],
    plan_only: bool,
    timeout: float | None,
    force: bool,
    as_json: bool,
    config_path: Path | None,
    evidence: Path | None,
    **live: Any,
) -> None:
    """Prove one application fails over: restore its VMs' disks on the peer cluster in an isolated namespace, boot
    copies there, measure RTO per VM and step and RPO with a canary, file the evidence, and remove every object it
    created. Exit 0 success with targets met, 1 failed, refused or a target missed, 2 bad input, 3 aborted or
    residue left (`drauditor drill cleanup`)."""
    if ctx.invoked_subcommand is not None:
        return
    if not app:
        raise click.UsageError("give --app NAMESPACE/DRPC (or a subcommand: cleanup)")
    progress = drill_progress.json_lines(sys.stdout) if as_json else drill_progress.human_lines(sys.stderr)
    request = DrillRequest(app=app, vms=vms, timeout_seconds=timeout, force=force, plan_only=plan_only)
    try:
        result = run_drill(request, load_config(config_path), LiveFlags(**live), evidence=evidence, progress=progress)
    except InputError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps({"event": "result", **result.to_json()}, sort_keys=True, default=str))
    else:
        for line in drill_summary_lines(result):
            click.echo(line)
    sys.exit(result.exit_code)


@drill_group.command("cleanup")
@click.option("--id", "ids", multiple=True, metavar="DRILL_ID", help="The drill to clean up (repeat).")
@click.option("--all", "every", is_flag=True, help="Every drill with an open journal here or objects on the clusters.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Configuration (live, drill, evidence).")
@click.option("--evidence", type=click.Path(path_type=Path), help="Evidence store that files an unfinished drill.")
@click.option("--json", "as_json", is_flag=True, help="Progress as JSON lines on stdout.")
@_live_options
def drill_cleanup(
    ids: tuple[str, ...], every: bool, config_path: Path | None, evidence: Path | None, as_json: bool, **live: Any
) -> None:
    """Remove what drills left behind (killed, or a cluster lost mid-drill), found by journal and by label, and file
    a drill that never finished as aborted. Exit 0 when nothing is left, 3 when something still is."""
    progress = drill_progress.json_lines(sys.stdout) if as_json else drill_progress.human_lines(sys.stderr)
    try:
        recovered = cleanup_leftovers(
            ids, every, load_config(config_path), LiveFlags(**live), evidence=evidence, progress=progress
        )
    except InputError as exc:
        _fail(str(exc))
    for item in recovered:
        state = "clean" if not item.result.residue else f"LEFT: {'; '.join(item.result.residue)}"
        filed = ", filed as aborted" if item.filed else ""
        click.echo(f"drill {item.drill_id}: {len(item.result.removed)} object(s) removed, {state}{filed}")
    if not recovered:
        click.echo("no drill to clean up")
    sys.exit(3 if any(item.result.residue for item in recovered) else 0)
