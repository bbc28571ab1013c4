"""One drill from start to finish: read, plan, refuse or prepare, snapshot, restore, boot, measure, clean up, file.

The order of the finally-blocks is the point of this module: whatever happens after the first object was created
(a VM that never boots, a cluster that vanishes, Ctrl-C, SIGTERM), cleanup runs and the outcome is filed. Only
SIGKILL skips them, and for that the journal exists (`drauditor drill cleanup`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor import __version__, provenance
from auditor.ceph import stretch_degraded
from auditor.config import AuditConfig
from auditor.drill.api import DrillApiError, KubeApi
from auditor.drill.cleanup import CleanupResult, cleanup_drill
from auditor.drill.guard import GuardedApi
from auditor.drill.journal import Journal, default_state_dir
from auditor.drill.measure import CanaryRpo, Instant, VmTimeline, canary_timestamp
from auditor.drill.names import CANARY, CANARY_READER, CANARY_WRITER, SNAPSHOT_API, drill_selector, new_drill_id
from auditor.drill.plan import DrillPlan, VmPlan, build_plan
from auditor.drill.preflight import preflight
from auditor.drill.progress import Progress
from auditor.drill.watcher import StreamLost, WaitFailed, WaitTimeout, Watcher
from auditor.errors import InputError
from auditor.evidence import DrillRecord, EvidenceStore
from auditor.live import RequestStats, api_client
from auditor.run import LiveFlags, load_ceph_source, load_estate, parse_clusters

MODE = "snapshot-restore"
EXIT_SUCCESS, EXIT_FAILED, EXIT_ABORTED = 0, 1, 3
_CLEANUP_SECONDS = 300.0  # how long cleanup waits for the clusters to finish deleting, after any outcome


@dataclass(frozen=True)
class DrillRequest:
    app: str  # "namespace/drpc"
    vms: tuple[str, ...] = ()  # empty: every protected VM of the application
    timeout_seconds: float | None = None  # None: the config's drill.timeout_seconds
    force: bool = False  # drill although preflight refuses
    plan_only: bool = False


@dataclass(frozen=True)
class DrillResult:
    record: DrillRecord | None  # None for a plan or a refusal
    plan: DrillPlan | None
    refusals: tuple[str, ...]
    exit_code: int
    recorded_in: Path | None = None  # the evidence store that holds the record
    plan_only: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "drill": self.record.to_dict() if self.record else None,
            "plan": self.plan.preview() if self.plan is not None and self.plan_only else None,
            "refusals": list(self.refusals),
            "exit_code": self.exit_code,
            "evidence": str(self.recorded_in) if self.recorded_in else None,
        }


class Aborted(Exception):
    """SIGINT or SIGTERM arrived while the drill ran."""


class _TimedOut(Exception):
    """A step the drill waited for did not happen in time; says which object and the state it was last seen in."""


class _Cancelled(Exception):
    """Raised in a VM thread that notices the drill was aborted before its next write."""


def run_drill(
    request: DrillRequest,
    config: AuditConfig,
    flags: LiveFlags,
    *,
    evidence: Path | None,
    progress: Progress = lambda event: None,
) -> DrillResult:
    """Drills one application on the live clusters of ``flags`` (else the config's live section)."""
    started = Instant.now()
    estate = load_estate(None, config, flags)
    drill_id = new_drill_id(started.wall)
    plan = build_plan(estate, request.app, request.vms, drill_id, config.drill)
    refusals = tuple(preflight(estate, plan))
    if request.plan_only:
        return DrillResult(None, plan, refusals, EXIT_SUCCESS if not refusals else EXIT_FAILED, plan_only=True)
    if refusals and (not request.force or plan.secondary is None):  # no peer: nothing to drill even when forced
        return DrillResult(None, plan, refusals, EXIT_FAILED)
    progress = _tagged(progress, drill_id)
    for refusal in refusals:
        progress({"event": "warning", "message": f"forced past preflight: {refusal}"})
    store_path = evidence or config.evidence.path
    store = EvidenceStore(store_path) if store_path else None  # opened first: a bad store must not cost a drill
    if store is None:
        progress({"event": "warning", "message": "no evidence store (--evidence or evidence.path): not on record"})
    contexts = parse_clusters(flags.cluster_specs) or dict(config.live.clusters)
    kubeconfig = flags.kubeconfig or config.live.kubeconfig
    stats = RequestStats()
    clients = {
        cluster: KubeApi(cluster, api_client(kubeconfig, contexts.get(cluster)), stats)
        for cluster in (plan.primary, plan.secondary)
    }
    journal = Journal.start(
        config.drill.state_dir or default_state_dir(),
        drill_id=drill_id,
        app=request.app,
        primary=plan.primary,
        secondary=plan.secondary,
        contexts={cluster: contexts.get(cluster) for cluster in clients},
        kubeconfig=str(kubeconfig) if kubeconfig else None,
        started_at=started.wall,
        run_by=provenance.os_user(),
        tool_version=__version__,
    )
    apis = {
        cluster: GuardedApi(api, journal, drill_id, cluster, plan.allowed_source_pvcs)
        for cluster, api in clients.items()
    }
    timeout = request.timeout_seconds or config.drill.timeout_seconds
    drill = _Drill(plan, apis, clients, config, flags, progress, deadline=time.monotonic() + timeout)
    outcome, error = "failure", None
    with _Signals() as signals:
        try:
            drill.run()
            outcome = "success" if drill.all_ready() else "failure"
            error = drill.error
        except Aborted as exc:
            outcome, error = "aborted", f"aborted by {exc}"
        except (DrillApiError, StreamLost) as exc:
            error = str(exc)
        except Exception as exc:  # a bug: still cleaned up and filed, with what went wrong, then raised
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            signals.cleaning = True
            drill.cancel()
            cleanup = _clean(apis, drill_id, journal, progress)
            for name in signals.ignored:
                progress({"event": "warning", "message": f"{name} ignored: cleanup was running and had to finish"})
            record = drill.record(started, outcome, error, cleanup, refusals, request.force, contexts, stats)
            try:  # filed before the journal closes: a kill in between leaves an open journal, never a lost record
                if store is not None:
                    with store:
                        store.record_drill(record)
            finally:
                journal.close(outcome, cleanup.residue)
    exit_code = _exit_code(record, cleanup)
    progress({"event": "done", "outcome": outcome, "exit_code": exit_code, "rto_seconds": record.rto_seconds})
    return DrillResult(record, plan, refusals, exit_code, store_path if store is not None else None)


def _tagged(progress: Progress, drill_id: str) -> Progress:
    """Every event of a drill names it, the runner's own (cleanup, done, signals) as well as the drill's steps."""
    return lambda event: progress({"drill_id": drill_id, **event})


def _clean(apis: dict[str, GuardedApi], drill_id: str, journal: Journal, progress: Progress) -> CleanupResult:
    progress({"event": "phase", "phase": "cleanup", "detail": "removing every object the drill created"})
    result = cleanup_drill(apis, drill_id, journal.state(), deadline=time.monotonic() + _CLEANUP_SECONDS)
    detail = "nothing left" if not result.residue else f"left behind: {'; '.join(result.residue)}"
    progress({"event": "cleanup", "message": f"{len(result.removed)} object(s) removed, {detail}"})
    return result


def _exit_code(record: DrillRecord, cleanup: CleanupResult) -> int:
    if record.outcome == "aborted" or cleanup.residue:
        return EXIT_ABORTED
    if record.outcome != "success":
        return EXIT_FAILED
    targets = record.details.get("targets") or {}
    return EXIT_FAILED if False in (targets.get("rto_met"), targets.get("rpo_met")) else EXIT_SUCCESS


class _Signals:
    """SIGINT and SIGTERM abort a running drill; once cleanup has begun they are noted and ignored.

    The handler only notes a signal it ignores, never reports it: it runs in the main thread between any two
    bytecodes, possibly while that thread holds the progress stream's lock, and reporting from there would wait on
    that lock forever. Python delivers signals to the main thread only; a drill run from another thread (a
    scheduler's worker) keeps the process's handlers.
    """

    def __init__(self) -> None:
        self.cleaning = False
        self.ignored: list[str] = []  # signals that arrived during cleanup, reported once it is over
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.cleaning:
            self.ignored.append(name)
            return
        self.cleaning = True
        raise Aborted(name)


def _ready_snapshot(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("readyToUse") is True


def _snapshot_error(obj: dict[str, Any]) -> str | None:
    error = (obj.get("status") or {}).get("error") or {}
    return f"snapshot error: {error.get('message') or 'no message'}" if error else None


def _bound(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") == "Bound"


def _pvc_lost(obj: dict[str, Any]) -> str | None:
    return "PVC lost its volume (phase Lost)" if (obj.get("status") or {}).get("phase") == "Lost" else None


def _vmi_phase(*phases: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: (obj.get("status") or {}).get("phase") in phases


def _vmi_condition(kind: str) -> Callable[[dict[str, Any]], bool]:
    def ready(obj: dict[str, Any]) -> bool:
        conditions = (obj.get("status") or {}).get("conditions") or []
        return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)

    return ready


def _vmi_failed(obj: dict[str, Any]) -> str | None:
    status = obj.get("status") or {}
    if status.get("phase") != "Failed":
        return None
    reasons = [
        f"{c.get('type')}: {c.get('reason') or ''} {c.get('message') or ''}".strip()
        for c in status.get("conditions") or []
        if c.get("status") != "True" or c.get("type") in ("Failure", "Failed")
    ]
    return "VMI phase Failed" + (f" ({'; '.join(reasons)})" if reasons else "")


def _pod_terminated(obj: dict[str, Any]) -> bool:
    return _termination(obj) is not None


def _termination(obj: dict[str, Any]) -> dict[str, Any] | None:
    for status in (obj.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return terminated
    return None


def _pod_failed(obj: dict[str, Any]) -> str | None:
    terminated = _termination(obj)
    if terminated and terminated.get("exitCode") not in (0, None):
        said = terminated.get("message") or terminated.get("reason")
        return f"canary reader exited {terminated.get('exitCode')}: {said}"
    return "canary pod failed" if (obj.get("status") or {}).get("phase") == "Failed" and not terminated else None


def _pod_running(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") == "Running"


def _describe_last(kind: str, namespace: str | None, name: str, last: dict[str, Any] | None) -> str:
    where = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    if last is None:
        return f"{where} never appeared"
    status = last.get("status") or {}
    state = status.get("phase") or ("readyToUse false" if "readyToUse" in status else "no status yet")
    return f"{where} still {state}"


class _Drill:
    """The drill's moving parts: the watcher, one thread per VM and one for the canary, and what they measured."""

    def __init__(
        self,
        plan: DrillPlan,
        apis: dict[str, GuardedApi],
        clients: dict[str, KubeApi],  # the same clusters unguarded, for the watcher's reads
        config: AuditConfig,
        flags: LiveFlags,
        progress: Progress,
        deadline: float,
    ) -> None:
        self.plan = plan
        self.apis = apis
        self.config = config
        self.flags = flags
        self.progress = progress
        self.deadline = deadline
        self.start: Instant | None = None  # T0: just before the first snapshot request
        self.timelines = {vm.key: VmTimeline(vm.namespace, vm.name, tuple(vm.removed)) for vm in plan.vms}
        self.rpo: CanaryRpo | None = None
        self.error: str | None = None
        self._errors: list[str] = []
        self._canary_requested: datetime | None = None
        self._stretch_degraded: bool | None = None
        self._restored: set[str] = set()  # disks (DiskPlan.key) whose restore objects exist
        self._cancelled = threading.Event()
        kinds = [
            (plan.primary, SNAPSHOT_API, "VolumeSnapshot"),
            (plan.primary, "v1", "Pod"),
            (plan.secondary, SNAPSHOT_API, "VolumeSnapshot"),
            (plan.secondary, "v1", "PersistentVolumeClaim"),
            (plan.secondary, "v1", "Pod"),
            (plan.secondary, "kubevirt.io/v1", "VirtualMachineInstance"),
        ]
        self.watcher = Watcher(clients, kinds, drill_selector(plan.drill_id))

    # -- the sequence -------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.watcher.start()
        try:
            try:
                self._prepare()
            except (WaitFailed, _TimedOut) as exc:  # the canary writer never ran: no snapshot is taken
                self._errors.append(f"preparation: {exc}")
                return
            self._stretch_degraded = self._stretch_state()
            self._snapshot()
            self._recover()
        finally:
            self.watcher.stop()
            self.error = "; ".join(self._errors) or None

    def cancel(self) -> None:
        self._cancelled.set()
        self.watcher.stop()

    def all_ready(self) -> bool:
        return all(t.outcome == "ready" for t in self.timelines.values()) and self.rpo is not None

    def _prepare(self) -> None:
        plan = self.plan
        self._emit({"event": "phase", "phase": "prepare", "detail": f"namespace {plan.namespace} on both clusters"})
        for cluster, manifest in plan.preparation():
            self._create(cluster, manifest)
        self._wait(plan.primary, "Pod", plan.namespace, CANARY_WRITER, _pod_running, failed=_pod_failed)
        time.sleep(2 * self.config.drill.canary_interval_seconds)  # at least one stamp written and synced

    def _stretch_state(self) -> bool | None:
        """Whether Ceph stretch mode is degraded right now (the snapshot instant's replication health)."""
        try:
            ceph = load_ceph_source(self.flags, self.config, {})
        except (InputError, OSError) as exc:
            self._emit({"event": "warning", "message": f"Ceph stretch state unknown at the snapshot: {exc}"})
            return None
        if ceph is None:
            return None
        degraded, words = stretch_degraded(ceph)
        self._emit({"event": "phase", "phase": "ceph", "detail": words})
        return degraded

    def _snapshot(self) -> None:
        plan = self.plan
        self.start = Instant.now()
        self._emit({"event": "phase", "phase": "snapshot", "detail": "T0: snapshots of every disk and the canary"})
        disks, canary = plan.snapshots()
        for manifest in disks:
            self._create(plan.primary, manifest)
        self._canary_requested = datetime.now(UTC)
        self._create(plan.primary, canary)

    def _recover(self) -> None:
        self._emit(
            {"event": "phase", "phase": "restore", "detail": f"{len(self.plan.vms)} VM(s) on {self.plan.secondary}"}
        )
        with ThreadPoolExecutor(len(self.plan.vms) + 1, thread_name_prefix="drill") as pool:
            futures = [pool.submit(self._restore_vm, vm) for vm in self.plan.vms]
            futures.append(pool.submit(self._canary))
            pending = set(futures)
            try:
                while pending:  # short waits: the main thread must stay responsive to SIGINT and SIGTERM
                    done, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
                    for future in done:
                        future.result()  # an API failure or lost cluster ends the drill
            except BaseException:
                self.cancel()  # the other threads stop at their next wait or create; else the pool's exit waits
                raise  # for them to run to the drill's deadline

    # -- one VM -------------------------------------------------------------------------------------------------

    def _restore_vm(self, vm: VmPlan) -> None:
        plan, timeline = self.plan, self.timelines[vm.key]
        try:
            for disk in vm.disks:
                ready = self._wait(
                    plan.primary,
                    "VolumeSnapshot",
                    disk.namespace,
                    disk.source_snapshot,
                    _ready_snapshot,
                    _snapshot_error,
                )
                self._reach(timeline, "snapshot_ready", ready.instant)
                if disk.key not in self._restored:  # a disk two VMs share is restored once
                    self._restored.add(disk.key)
                    for manifest in plan.restore(disk, self._snapshot_handle(ready.object)):
                        self._create(plan.secondary, manifest)
            self._create(plan.secondary, vm.copy)
            for disk in vm.disks:
                content = self._wait(
                    plan.secondary, "VolumeSnapshot", plan.namespace, disk.pvc, _ready_snapshot, _snapshot_error
                )
                self._reach(timeline, "content_ready", content.instant)
                bound = self._wait(plan.secondary, "PersistentVolumeClaim", plan.namespace, disk.pvc, _bound, _pvc_lost)
                self._reach(timeline, "pvc_bound", bound.instant)
            steps = [
                ("vmi_scheduled", _vmi_phase("Scheduled", "Running")),
                ("vmi_running", _vmi_phase("Running")),
                ("agent_connected", _vmi_condition("AgentConnected")),
            ]
            if vm.readiness_probe:
                steps.append(("probe_ready", _vmi_condition("Ready")))
            for step, ready_when in steps:
                stamp = self._wait(
                    plan.secondary, "VirtualMachineInstance", plan.namespace, vm.name, ready_when, _vmi_failed
                )
                self._reach(timeline, step, stamp.instant)
            timeline.outcome = "ready"
        except WaitFailed as exc:
            timeline.outcome, timeline.error = "failed", str(exc)
        except _TimedOut as exc:
            timeline.outcome, timeline.error = "timeout", f"not ready within the drill's timeout: {exc}"
        except _Cancelled:
            timeline.outcome, timeline.error = "aborted", "the drill was aborted"
        except (DrillApiError, StreamLost) as exc:
            timeline.outcome, timeline.error = "failed", str(exc)
            raise
        finally:
            if timeline.outcome is None:
                timeline.outcome, timeline.error = "failed", "ended unexpectedly"
            start = self.start or timeline.steps.get("snapshot_ready") or Instant.now()
            self._emit(
                {
                    "event": "vm_done",
                    "vm": timeline.key,
                    "outcome": timeline.outcome,
                    "rto_seconds": timeline.rto_seconds(start),
                    "error": timeline.error,
                }
            )

    def _snapshot_handle(self, snapshot: dict[str, Any]) -> str:
        """The storage's handle of a ready snapshot, from its bound content (the handle the secondary binds)."""
        name = (snapshot.get("status") or {}).get("boundVolumeSnapshotContentName")
        content = self.apis[self.plan.primary].get(SNAPSHOT_API, "VolumeSnapshotContent", name) if name else None
        status = (content or {}).get("status") or {}
        if not status.get("snapshotHandle"):
            where = f"VolumeSnapshot {snapshot['metadata'].get('namespace')}/{snapshot['metadata']['name']}"
            raise WaitFailed(f"{where} is ready but its content {name or '(none)'} shows no snapshotHandle")
        return status["snapshotHandle"]

    # -- the canary -------------------------------------------------------------------------------------------

    def _canary(self) -> None:
        plan = self.plan
        try:
            ready = self._wait(plan.primary, "VolumeSnapshot", plan.namespace, CANARY, _ready_snapshot, _snapshot_error)
            for manifest in plan.canary_restore(self._snapshot_handle(ready.object)):
                self._create(plan.secondary, manifest)
            read = self._wait(plan.secondary, "Pod", plan.namespace, CANARY_READER, _pod_terminated, _pod_failed)
            message = (_termination(read.object) or {}).get("message") or ""
            assert self._canary_requested is not None
            self.rpo = CanaryRpo(
                self._canary_requested,
                canary_timestamp(message),
                self.config.drill.canary_interval_seconds,
                self._stretch_degraded,
            )
            rpo = self.rpo.to_json()
            self._emit({"event": "rpo", "rpo_seconds": rpo["seconds"], "window_seconds": rpo["window_seconds"]})
        except (WaitFailed, _TimedOut, ValueError) as exc:
            self._errors.append(f"canary: {exc}")
            self._emit({"event": "warning", "message": f"RPO not measured: {exc}"})
        except _Cancelled:
            pass

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _create(self, cluster: str, manifest: dict[str, Any]) -> dict[str, Any]:
        if self._cancelled.is_set():
            raise _Cancelled
        try:
            created = self.apis[cluster].create(manifest)
        except DrillApiError as exc:  # say which object: a 500 alone does not tell the operator what failed
            meta = manifest.get("metadata") or {}
            where = "/".join(part for part in (meta.get("namespace"), meta.get("name")) if part)
            cause = str(exc).removeprefix(f"{exc.cluster}: ")
            raise DrillApiError(exc.cluster, f"creating {manifest.get('kind')} {where}: {cause}") from exc
        meta = created.get("metadata") or {}
        self._emit(
            {
                "event": "created",
                "cluster": cluster,
                "kind": created.get("kind") or manifest["kind"],
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "uid": meta.get("uid"),
            }
        )
        return created

    def _wait(
        self,
        cluster: str,
        kind: str,
        namespace: str | None,
        name: str,
        ready: Callable[[dict[str, Any]], bool],
        failed: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> _Stamped:
        if self._cancelled.is_set():
            raise _Cancelled
        try:
            stamp = self.watcher.wait_for(cluster, kind, namespace, name, ready, deadline=self.deadline, failed=failed)
        except WaitTimeout as exc:
            raise _TimedOut(_describe_last(kind, namespace, name, exc.last)) from exc
        except WaitFailed as exc:
            where = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
            raise WaitFailed(f"{where}: {exc}") from exc
        except StreamLost:
            if self._cancelled.is_set():
                raise _Cancelled from None
            raise
        return _Stamped(Instant(stamp.wall, stamp.mono), stamp.object)

    def _reach(self, timeline: VmTimeline, step: str, at: Instant) -> None:
        timeline.reach(step, at)
        self._emit({"event": "step", "vm": timeline.key, "step": step, "at": at.mono})

    def _emit(self, event: dict[str, Any]) -> None:
        reference = self.start.mono if self.start else None
        at = event.pop("at", None)
        if reference is not None:
            event["seconds"] = round((at if at is not None else time.monotonic()) - reference, 3)
        self.progress(event)

    # -- the record -------------------------------------------------------------------------------------------

    def record(
        self,
        started: Instant,
        outcome: str,
        error: str | None,
        cleanup: CleanupResult,
        refusals: tuple[str, ...],
        forced: bool,
        contexts: dict[str, str | None],
        stats: RequestStats,
    ) -> DrillRecord:
        plan = self.plan
        start = self.start or started
        for timeline in self.timelines.values():
            if timeline.outcome is None:  # its thread never ran: the drill ended before the restore began
                timeline.outcome = "aborted" if outcome == "aborted" else "failed"
                timeline.error = f"not restored: {error or 'the drill ended first'}"
        vms = [timeline.to_json(start) for timeline in self.timelines.values()]
        rtos = [vm["rto_seconds"] for vm in vms]
        rto = max(rtos) if rtos and None not in rtos and outcome == "success" else None
        rpo = self.rpo.seconds if self.rpo else None
        targets = plan.targets
        details = {
            "schema": 1,
            "primary": plan.primary,
            "secondary": plan.secondary,
            "namespace": plan.namespace,
            "policy": plan.policy,
            "replication": plan.replication,
            "targets": {
                "rto_seconds": targets.rto_seconds,
                "rpo_seconds": targets.rpo_seconds,
                "rto_met": None if targets.rto_seconds is None or rto is None else rto <= targets.rto_seconds,
                "rpo_met": None if targets.rpo_seconds is None or rpo is None else rpo <= targets.rpo_seconds,
            },
            "started": start.to_json(),
            "vms": vms,
            "rpo": self.rpo.to_json() if self.rpo else None,
            "objects": [ref.to_json() for api in self.apis.values() for ref in api.created],
            "cleanup": {"complete": not cleanup.residue, "residue": list(cleanup.residue)},
            "error": error,
            "preflight": {"forced": forced and bool(refusals), "refusals": list(refusals)},
            "contexts": {cluster: contexts.get(cluster) for cluster in (plan.primary, plan.secondary)},
            "api_requests": stats.requests,
        }
        return DrillRecord(
            id=plan.drill_id,
            app_namespace=plan.app_namespace,
            app_name=plan.app_name,
            started_at=started.wall,
            finished_at=datetime.now(UTC),
            outcome=outcome,
            mode=MODE,
            run_by=provenance.os_user(),
            tool_version=__version__,
            rto_seconds=rto,
            rpo_seconds=rpo,
            details=details,
        )


@dataclass(frozen=True)
class _Stamped:
    instant: Instant
    object: dict[str, Any]
