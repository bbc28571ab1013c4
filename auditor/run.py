"""One audit run as `drauditor audit` and `drauditor schedule` both perform it: read, judge, write the bundle, file it.

The two commands must produce the same evidence for the same input, so neither has its own copy of these steps:
where the estate comes from (a snapshot, or live clusters from flags and the config's live and ceph sections),
the audit itself, the report bundle, and the audit record in the evidence store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.ceph_exec import ToolsPod
from auditor.ceph_source import CephCli, collect
from auditor.config import AuditConfig
from auditor.engine import ReportWriteError, audit_released, record_audit, write_reports
from auditor.errors import InputError
from auditor.gating import Gate
from auditor.inventory import CephData, Estate
from auditor.live import LiveOptions, api_client, load_live
from auditor.report.model import Report
from auditor.snapshot import load_ceph, load_snapshot


@dataclass(frozen=True)
class LiveFlags:
    """The live-source flags of `audit` and `capture`, as click passes them; empty for a scheduled live audit."""

    kubeconfig: Path | None = None
    hub_context: str | None = None
    cluster_specs: tuple[str, ...] = ()
    ceph_dir: Path | None = None
    ceph_conf: Path | None = None
    ceph_keyring: Path | None = None
    ceph_name: str | None = None
    ceph_tools_context: str | None = None

    def any_given(self) -> bool:
        return any(value for value in vars(self).values())


def parse_clusters(specs: tuple[str, ...]) -> dict[str, str | None]:
    clusters: dict[str, str | None] = {}
    for spec in specs:
        name, sep, context = spec.partition("=")
        if not sep or not name:
            raise InputError(f"--cluster: {spec!r} is not NAME=CONTEXT")
        clusters[name] = context or None
    return clusters


def load_ceph_source(flags: LiveFlags, config: AuditConfig, digests: dict[str, str]) -> CephData | None:
    """Ceph outputs from files (--ceph), the local `ceph` CLI (--ceph-conf) or the rook-ceph-tools pod."""
    if sum(bool(x) for x in (flags.ceph_dir, flags.ceph_conf, flags.ceph_tools_context)) > 1:
        raise InputError("give only one of --ceph DIR, --ceph-conf FILE and --ceph-tools-context CONTEXT")
    if flags.ceph_dir:
        return load_ceph(flags.ceph_dir, flags.ceph_dir.parent, digests)
    settings = config.ceph
    tools_context = flags.ceph_tools_context or settings.tools_context
    if tools_context:
        api = api_client(flags.kubeconfig or config.live.kubeconfig, tools_context)
        pod = ToolsPod(api, tools_context, settings.tools_namespace, settings.tools_selector)
        return collect(CephCli(transport=pod, timeout=settings.timeout_seconds))
    conf = flags.ceph_conf or settings.conf
    if conf is None:
        return None
    cli = CephCli.from_options(
        conf,
        flags.ceph_keyring or settings.keyring,
        flags.ceph_name or settings.name,
        settings.cluster,
        settings.timeout_seconds,
    )
    return collect(cli)


def load_estate(snapshot: Path | None, config: AuditConfig, flags: LiveFlags) -> Estate:
    """The audit's input: a snapshot directory, or live clusters (flags first, then the config's live section)."""
    if snapshot is not None:
        if flags.any_given():
            raise InputError("give either --snapshot or the live flags (--kubeconfig/--hub-context/--cluster)")
        return load_snapshot(snapshot)
    clusters = parse_clusters(flags.cluster_specs) or dict(config.live.clusters)
    if not clusters:
        raise InputError("give --snapshot DIR, or --cluster NAME=CONTEXT (or live.clusters in --config)")
    ceph_digests: dict[str, str] = {}
    ceph = load_ceph_source(flags, config, ceph_digests)
    options = LiveOptions(kubeconfig=flags.kubeconfig or config.live.kubeconfig)
    estate = load_live(flags.hub_context or config.live.hub_context, clusters, options, ceph=ceph)
    estate.input_digests.update(ceph_digests)
    return estate


class IncompleteBundle(Exception):
    """The audit ran but some report formats could not be written; ``report`` is the result they would have shown."""

    def __init__(self, report: Report, cause: ReportWriteError) -> None:
        super().__init__(f"could not write every report: {cause}")
        self.report = report


def run_audit(
    load: Callable[[], Estate],
    config: AuditConfig,
    output_dir: Path,
    *,
    evidence: Path | None = None,
    config_file: Path | None = None,
    signing_key: Ed25519PrivateKey | None = None,
    record: bool = True,
    gate: Gate | None = None,
) -> Report:
    """Audits what ``load`` reads, writes the bundle into ``output_dir`` and, when ``record`` and there is an
    evidence store (``evidence``, else the config's), files the run there. ``gate``: the waivers and baseline to
    apply (default: the config's waivers).

    The estate is released before rendering starts (engine.audit_released). A bundle missing some format raises
    IncompleteBundle and is not filed: the history only holds audits whose evidence was written in full.
    """
    report = audit_released(load, config, evidence, config_file, gate)
    try:
        write_reports(report, output_dir, signing_key)
    except ReportWriteError as exc:
        raise IncompleteBundle(report, exc) from exc
    if record:
        record_audit(evidence or config.evidence.path, report, (Path(output_dir) / "report.json").read_bytes())
    return report
