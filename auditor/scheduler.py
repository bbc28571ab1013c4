"""`drauditor schedule`: the audits and drills of the config's schedule section, run unattended on their cadence.

Each audit goes through exactly the path of `drauditor audit` (auditor.run), each drill through that of `drauditor
drill` (auditor.drill.runner), into a dated folder of its own, and is filed in the evidence store; a run that fails
is filed as a failed run as well, and the loop goes on, because an unattended schedule that stops at the first
unreachable cluster records nothing from then on. One scheduler per lock file; on SIGTERM or SIGINT it lets the
current audit finish (a second signal aborts it, recorded as failed), releases the lock and exits 0. A drill is not
left running to its timeout: it takes the signal itself, cleans up, is filed as aborted, and the scheduler stops.
Time is the `schedule` library's; waiting goes through an injectable ``sleep`` so tests need no clock.
"""

from __future__ import annotations

import json
import os
import signal
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import schedule

from auditor import __version__, provenance, retention, webhook
from auditor.config import AuditConfig, ScheduledAudit, ScheduledDrill
from auditor.drill import progress
from auditor.drill.runner import DrillRequest, DrillResult, run_drill
from auditor.errors import InputError
from auditor.evidence import EvidenceStore, RunFailure
from auditor.report.model import Report
from auditor.run import LiveFlags, load_estate, run_audit
from auditor.runlock import instance_lock
from auditor.timeutil import rfc3339

LOCK_NAME = "drauditor-schedule.lock"
STORE_NAME = "evidence.db"
POLL_SECONDS = 1.0  # longest uninterrupted wait: how soon a stop request is noticed while idle
DRILL_JSON = "drill.json"  # a drill run's result (DrillResult.to_json(): the record as filed, or the refusals)
DRILL_LOG = "drill.log"  # its progress, as `drauditor drill` prints it

Log = Callable[[str], None]
Job = ScheduledAudit | ScheduledDrill


def utc_now() -> datetime:
    return datetime.now(UTC)


class RunAborted(BaseException):
    """A second stop signal arrived during a run: unwinds it (not an Exception, so no run-level handler keeps it)."""


@dataclass(frozen=True)
class RunResult:
    job: str
    folder: Path
    started_at: datetime
    finished_at: datetime
    report: Report | None  # an audit's report; None when the audit failed, and for a drill
    error: str | None = None  # why the run counts as failed
    drill: DrillResult | None = None  # a drill's result, also a failed one's; None when it raised or for an audit


class Runner:
    """Runs one scheduled audit or drill end to end, then notifies and prunes; raises nothing but RunAborted."""

    def __init__(
        self,
        config: AuditConfig,
        config_file: Path,
        store: Path,
        log: Log,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if config.schedule is None:
            raise InputError(f"{config_file}: no schedule section")
        self.config = config
        self.plan = config.schedule
        self.config_file = config_file
        self.store = store
        self.log = log
        self.now = now

    def __call__(self, job: Job) -> RunResult:
        started = self.now()
        folder = retention.new_run_folder(job.output / job.name, started)
        self.log(f"{job.name}: run started, writing {folder}")
        phase = "drill" if isinstance(job, ScheduledDrill) else "audit"
        try:
            if isinstance(job, ScheduledDrill):
                result = self._drill(job, folder, started)
            else:
                result = self._audit(job, folder, started)
        except RunAborted as exc:
            self._failed(job, phase, RunResult(job.name, folder, started, self.now(), None, f"aborted by {exc}"))
            raise
        except Exception as exc:  # one run's failure, whatever it is, must not end the schedule: it is recorded
            if not isinstance(exc, InputError):
                self.log(traceback.format_exc().rstrip())
            result = RunResult(job.name, folder, started, self.now(), None, _describe(exc))
        if result.error is not None:
            self._failed(job, phase, result)
        self._notify(job, result)
        self._prune(job)
        record = result.drill.record if result.drill else None
        if record is not None and record.outcome == "aborted":  # a stop signal reached the drill's own handlers
            raise RunAborted(str(record.details.get("error") or "a signal").removeprefix("aborted by "))
        return result

    def _audit(self, job: ScheduledAudit, folder: Path, started: datetime) -> RunResult:
        load = partial(load_estate, job.snapshot, self.config, LiveFlags())  # no snapshot: the config's live section
        report = run_audit(load, self.config, folder, evidence=self.store, config_file=self.config_file)
        counts = ", ".join(f"{n} {status}" for status, n in report.summary.items() if n) or "no findings"
        self.log(f"{job.name}: {report.verdict} ({counts})")
        return RunResult(job.name, folder, started, self.now(), report)

    def _drill(self, job: ScheduledDrill, folder: Path, started: datetime) -> RunResult:
        """The drill on the config's live clusters, filed in the store by the drill itself; its progress goes to
        drill.log as it happens (a drill that hangs shows how far it got), its result to drill.json."""
        folder.mkdir(parents=True)
        request = DrillRequest(app=job.app, vms=job.vms)
        with (folder / DRILL_LOG).open("w", encoding="utf-8") as log:
            result = run_drill(
                request, self.config, LiveFlags(), evidence=self.store, progress=progress.human_lines(log)
            )
        (folder / DRILL_JSON).write_text(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n", "utf-8")
        record = result.record
        if record is None:
            self.log(f"{job.name}: drill of {job.app} refused, nothing created")
        else:
            self.log(
                f"{job.name}: drill {record.id} of {job.app}: {record.outcome}, "
                f"RTO {_seconds(record.rto_seconds)}, RPO {_seconds(record.rpo_seconds)}, exit {result.exit_code}"
            )
        return RunResult(job.name, folder, started, self.now(), None, drill_failure(result), result)

    def _failed(self, job: Job, phase: str, failed: RunResult) -> None:
        """Logs and files ``failed`` (its ``error`` and times) as a failed run of ``phase``."""
        error = failed.error or "unknown"
        self.log(f"{job.name}: {phase} failed: {error}")
        record = RunFailure(
            id=str(uuid.uuid4()),
            job=job.name,
            phase=phase,
            started_at=failed.started_at,
            finished_at=failed.finished_at,
            error=error,
            output=str(failed.folder),
            tool_version=__version__,
            run_by=provenance.os_user(),
        )
        try:
            with EvidenceStore(self.store) as store:
                store.record_run_failure(record)
        except InputError as exc:  # e.g. the store's disk is full: say so, and keep the schedule alive
            self.log(f"{job.name}: could not record the failed run: {exc}")

    def _notify(self, job: Job, result: RunResult) -> None:
        hook = self.plan.webhook
        if hook is None:
            return
        report = result.report
        record = result.drill.record if result.drill else None
        payload = webhook.summary(
            job=job.name,
            report_folder=result.folder,
            generated_at=report.generated_at if report else record.finished_at if record else result.finished_at,
            verdict=report.verdict if report else None,
            counts=report.summary if report else None,
            hub=report.scope.hub if report else None,
            error=result.error,
            drill=drill_summary(job.app, result.drill) if isinstance(job, ScheduledDrill) else None,
        )
        headers = {name: value.get_secret_value() for name, value in hook.headers.items()}
        try:
            webhook.post(hook.url, payload, headers, hook.timeout_seconds)
        except webhook.WebhookError as exc:
            self._failed(
                job, "webhook", RunResult(job.name, result.folder, result.started_at, self.now(), None, str(exc))
            )
        else:
            self.log(f"{job.name}: summary posted to {webhook.public_url(hook.url)}")

    def _prune(self, job: Job) -> None:
        keep = self.plan.retention
        if keep.keep_runs is None and keep.keep_days is None:
            return
        try:
            deleted = retention.prune(
                job.output / job.name, keep_runs=keep.keep_runs, keep_days=keep.keep_days, now=self.now()
            )
        except OSError as exc:
            self.log(f"{job.name}: retention could not delete a run folder: {exc}")
            return
        for path in deleted:
            self.log(f"{job.name}: retention deleted {path}")


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}s"


def drill_summary(app: str, result: DrillResult | None) -> dict[str, Any]:
    """The drill part of a drill run's webhook summary (docs/contract.md section 5); ``result`` None: it raised."""
    record = result.record if result else None
    return {
        "app": app,
        "id": record.id if record else None,
        "outcome": record.outcome if record else None,
        "rto_seconds": record.rto_seconds if record else None,
        "rpo_seconds": record.rpo_seconds if record else None,
        "exit_code": result.exit_code if result else None,
        "refusals": list(result.refusals) if result else [],
    }


def drill_failure(result: DrillResult) -> str | None:
    """Why a drill run counts as failed (the reasons behind a nonzero exit code), in one line; None when it did not."""
    if result.exit_code == 0:
        return None
    if result.refusals:
        return "refused: " + "; ".join(result.refusals)
    record = result.record
    if record is None:
        return f"the drill ended with exit code {result.exit_code}"
    details = record.details
    reasons = [f"drill {record.id} {record.outcome}" + (f": {details['error']}" if details.get("error") else "")]
    targets = details.get("targets") or {}
    for measure, achieved in (("rto", record.rto_seconds), ("rpo", record.rpo_seconds)):
        if targets.get(f"{measure}_met") is False:
            reasons.append(
                f"{measure.upper()} {_seconds(achieved)} missed its target {_seconds(targets[f'{measure}_seconds'])}"
            )
    if residue := (details.get("cleanup") or {}).get("residue"):
        reasons.append(f"left behind: {', '.join(residue)} (drauditor drill cleanup --id {record.id})")
    return "; ".join(reasons)


class ScheduleLoop:
    """The scheduled jobs on their cadences; ``stop()`` (a signal handler calls it) ends the loop between runs."""

    def __init__(
        self,
        jobs: tuple[Job, ...],
        run: Callable[[Job], RunResult],
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.jobs = jobs
        self.scheduler = schedule.Scheduler()
        self.results: list[RunResult] = []
        self.stopping = False
        self.stop_reason: str | None = None
        self.running = False
        self._run = run
        self._sleep = sleep
        self._poll = poll_seconds
        for job in jobs:
            job.cadence.job(self.scheduler).do(self._execute, job).tag(job.name)

    def _execute(self, job: Job) -> None:
        self.running = True
        try:
            self.results.append(self._run(job))
        finally:
            self.running = False

    def once(self) -> list[RunResult]:
        """Every job once, now, in config order (a stop request skips the ones not started)."""
        try:
            for job in self.jobs:
                if self.stopping:
                    break
                self._execute(job)
        except RunAborted as exc:
            self._aborted(exc)
        return self.results

    def forever(self) -> None:
        """Runs what is due, waits for the next due run, until stopped; a second stop aborts a run."""
        try:
            while not self.stopping:
                # Job by job rather than run_pending(): a stop during one run must keep the next due one from starting.
                for due in sorted(job for job in self.scheduler.jobs if job.should_run):
                    if self.stopping:
                        return
                    due.run()
                if self.stopping:
                    break
                idle = self.scheduler.idle_seconds or 0.0
                self._sleep(min(max(idle, 0.0), self._poll))
        except RunAborted as exc:
            self._aborted(exc)

    def _aborted(self, exc: RunAborted) -> None:
        """The runner recorded the aborted run; the loop ends, for the signal the run was aborted by."""
        self.stopping = True
        self.stop_reason = self.stop_reason or str(exc)

    def next_runs(self) -> list[tuple[str, datetime]]:
        return [(next(iter(job.tags)), job.next_run) for job in self.scheduler.jobs]

    def stop(self, reason: str) -> None:
        """Ends the loop once the current run is done; during a run that was already asked to stop, aborts it."""
        if self.stopping and self.running:
            raise RunAborted(reason)
        self.stopping, self.stop_reason = True, reason


@contextmanager
def stop_on_signals(loop: ScheduleLoop) -> Iterator[None]:
    """SIGTERM and SIGINT stop ``loop`` (after the current run; a second one aborts it); old handlers come back.

    The handler only flags the loop: writing to the log from it could re-enter a write the loop was in the middle of.
    """

    def handle(signum: int, _frame: FrameType | None) -> None:
        loop.stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    config: AuditConfig,
    config_file: Path,
    *,
    state_dir: Path | None,
    once: bool,
    log: Log,
) -> int:
    """The `drauditor schedule` command: 0 when stopped by a signal or, with ``once``, when no run failed; 1 when a
    ``once`` run failed. InputError (exit 2) for a missing schedule section, a held lock or an unusable store."""
    if config.schedule is None:
        raise InputError(f"{config_file}: no schedule section: nothing to schedule")
    state = Path(state_dir) if state_dir is not None else Path(config_file).resolve().parent
    lock = config.schedule.lock_file or state / LOCK_NAME
    with instance_lock(lock):
        store = config.evidence.path or state / STORE_NAME
        EvidenceStore(store).close()  # created when absent, so the first run has a history to join
        log(f"lock {lock} held by PID {os.getpid()}; evidence store {store}")
        loop = ScheduleLoop(config.schedule.jobs, Runner(config, config_file, store, log))
        with stop_on_signals(loop):
            if once:
                failed = [result.job for result in loop.once() if result.error is not None]
            else:
                for name, moment in loop.next_runs():
                    log(f"{name}: next run at {moment.isoformat(timespec='seconds')} (host time)")
                loop.forever()
                failed = []
    stopped = f"stopped by {loop.stop_reason}; " if loop.stop_reason else ""
    log(f"{stopped}{'runs failed: ' + ', '.join(failed) if failed else 'done'}; lock released")
    return 1 if failed else 0


def timestamped(echo: Callable[[str], None]) -> Log:
    """A log that prefixes each line with the UTC time, as an unattended process's log needs."""
    return lambda line: echo(f"{rfc3339(utc_now())} {line}")
