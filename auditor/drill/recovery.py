"""`drauditor drill cleanup`: what a drill whose process died (SIGKILL, a lost host, a cluster gone mid-drill) left.

The drill is found by its journal on this machine and by its labels on the clusters, so leftovers are removed even
when the journal is elsewhere; a journal that never closed also means the drill was never filed, so it is filed
now, as aborted, with what the journal says it did. Which clusters to ask: the flags or the config's live section,
else the contexts the journal recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auditor import __version__, provenance
from auditor.config import AuditConfig
from auditor.drill.api import DrillApiError, KubeApi
from auditor.drill.cleanup import CleanupResult, cleanup_drill, find_drills
from auditor.drill.guard import GuardedApi
from auditor.drill.journal import (
    Journal,
    JournalState,
    default_state_dir,
    is_running,
    journal_path,
    open_journals,
    read_journal,
)
from auditor.drill.names import drill_started, is_drill_id
from auditor.drill.progress import Progress
from auditor.drill.runner import MODE
from auditor.errors import InputError
from auditor.evidence import DrillRecord, EvidenceStore
from auditor.live import RequestStats, api_client
from auditor.run import LiveFlags, parse_clusters
from auditor.timeutil import parse_time

CLEANUP_SECONDS = 300.0


@dataclass(frozen=True)
class Recovered:
    drill_id: str
    result: CleanupResult
    filed: bool  # an aborted record was added to the evidence store


def cleanup_leftovers(
    ids: tuple[str, ...],
    every: bool,
    config: AuditConfig,
    flags: LiveFlags,
    *,
    evidence: Path | None,
    progress: Progress = lambda event: None,
) -> list[Recovered]:
    """Cleans the drills named by ``ids``, or (``every``) every drill with an open journal or labelled objects."""
    if bool(ids) == every:
        raise InputError("give --id DRILL_ID (repeatable) or --all")
    if bad := [i for i in ids if not is_drill_id(i)]:
        raise InputError(f"--id: {', '.join(bad)} is not a drill id (like 20261126t004512-a1b2c3)")
    state_dir = config.drill.state_dir or default_state_dir()
    journals = {state.drill_id: state for state in open_journals(state_dir)}
    contexts = parse_clusters(flags.cluster_specs) or dict(config.live.clusters)
    kubeconfig = flags.kubeconfig or config.live.kubeconfig
    stats = RequestStats()
    targets = list(ids)
    if every:
        found = set(journals)
        for cluster, context in contexts.items():  # clusters named on the command line or in the config
            try:
                found |= find_drills({cluster: KubeApi(cluster, api_client(kubeconfig, context), stats)})
            except DrillApiError as exc:
                progress({"event": "warning", "message": f"{cluster}: cannot look for drills ({exc})"})
        targets = [drill_id for drill_id in sorted(found) if not _maybe_running(drill_id, journals, config, progress)]
    store_path = evidence or config.evidence.path
    recovered = []
    for drill_id in targets:
        state = journals.get(drill_id) or _closed_journal(state_dir, drill_id)
        where = _clusters(drill_id, state, contexts, kubeconfig)
        clients = {cluster: KubeApi(cluster, api_client(path, context), stats) for cluster, (context, path) in where}
        journal = Journal.reopen(state.path) if state and not state.closed else None
        apis = {cluster: GuardedApi(api, journal, drill_id, cluster) for cluster, api in clients.items()}
        if state is not None:
            for api in apis.values():
                api.adopt(state)
        progress({"event": "cleanup", "message": f"drill {drill_id} on {', '.join(apis)}"})
        result = cleanup_drill(apis, drill_id, state, deadline=time.monotonic() + CLEANUP_SECONDS, progress=progress)
        filed = False
        if journal is not None and state is not None and not state.closed:
            if store_path is not None:  # filed before the journal closes, as the drill itself does
                with EvidenceStore(store_path) as store:
                    if not any(record.id == drill_id for record in store.drills()):  # its run filed it, then died
                        store.record_drill(_aborted_record(state, result))
                        filed = True
            journal.close("aborted", result.residue)
        left = "nothing left" if not result.residue else f"left: {'; '.join(result.residue)}"
        progress({"event": "cleanup", "message": f"drill {drill_id}: {len(result.removed)} removed, {left}"})
        recovered.append(Recovered(drill_id, result, filed))
    return recovered


def _maybe_running(drill_id: str, journals: dict[str, JournalState], config: AuditConfig, progress: Progress) -> bool:
    """`--all` must not pull a running drill's objects from under it: one whose journal here is locked by its
    process, or, found only by label (its journal is on another machine), one started too recently to be over."""
    state = journals.get(drill_id)
    if state is not None:
        running = is_running(state.path)
    else:
        started = drill_started(drill_id)
        running = datetime.now(UTC) - started < timedelta(seconds=config.drill.timeout_seconds + 2 * CLEANUP_SECONDS)
    if running:
        progress({"event": "warning", "message": f"drill {drill_id} may still be running: left alone"})
    return running


def _closed_journal(state_dir: Path, drill_id: str) -> JournalState | None:
    """A finished drill's journal still says where its clusters are (it left residue, or is cleaned twice)."""
    path = journal_path(state_dir, drill_id)
    return read_journal(path) if path.is_file() else None


def _clusters(
    drill_id: str, state: JournalState | None, contexts: dict[str, str | None], kubeconfig: Path | None
) -> list[tuple[str, tuple[str | None, Path | None]]]:
    """(cluster, (context, kubeconfig)) to clean: the journal's clusters, reached as the flags say or as the drill
    did; without a journal, every cluster the flags or config name."""
    if state is None:
        if not contexts:
            raise InputError(f"drill {drill_id}: no journal here; name the clusters (--cluster NAME=CONTEXT)")
        return [(cluster, (context, kubeconfig)) for cluster, context in contexts.items()]
    recorded = state.header.get("contexts") or {}
    journal_kubeconfig = state.header.get("kubeconfig")
    fallback = kubeconfig or (Path(journal_kubeconfig) if journal_kubeconfig else None)
    return [
        (cluster, (contexts[cluster] if cluster in contexts else recorded.get(cluster), fallback))
        for cluster in state.clusters
    ]


def _aborted_record(state: JournalState, result: CleanupResult) -> DrillRecord:
    header = state.header
    namespace, _, name = str(header.get("app") or "/").partition("/")
    details: dict[str, Any] = {
        "schema": 1,
        "primary": header.get("primary"),
        "secondary": header.get("secondary"),
        "error": "the drill's process ended without finishing (killed, or its host lost); filed by drill cleanup",
        "objects": [{**ref.to_json(), "uid": uid} for ref, uid in state.created.items()],
        "cleanup": {"complete": not result.residue, "residue": list(result.residue)},
        "vms": [],
        "cleaned_by": {"run_by": provenance.os_user(), "tool_version": __version__},
    }
    return DrillRecord(
        id=state.drill_id,
        app_namespace=namespace,
        app_name=name,
        started_at=parse_time(header.get("started_at")) or datetime.now(UTC),
        finished_at=datetime.now(UTC),
        outcome="aborted",
        mode=MODE,
        run_by=str(header.get("run_by") or "unknown"),
        tool_version=str(header.get("tool_version") or "unknown"),
        details=details,
    )
