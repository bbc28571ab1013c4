"""Crash safety of a drill run as an operator runs it (the `drauditor drill` process): killed at any step, it leaves
nothing behind once `drauditor drill cleanup` ran, and its record is filed exactly once; SIGTERM and Ctrl-C abort
it promptly, clean up and file it as aborted, and a second signal cannot cut that cleanup short.

The kill points are the drill's own progress events: a reference run shows them in order, and each killed run is
read line by line up to its point before SIGKILL. The simulators run in this process, the drills in children,
against one lab for the module. A drill mostly waits on the simulated controllers, so the reference run and the
killed runs go at once, each with its own id, journals and evidence store, and so do the signalled runs (they need
the same slow boot, a knob of the whole lab); each test then judges its own run. Once a batch is over, the lab is
exactly as it was (each pre-existing object at its resourceVersion, nothing labelled with a drill's id, its
namespaces gone).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from drill_helpers import ClusterState, Versions, closed_journal, drauditor, live_args, write_config
from drillsim import fixtures

from auditor.drill.journal import journal_path, read_journal
from auditor.evidence import DrillRecord, EvidenceStore

drill_lab = fixtures.drill_lab

APP = "openshift-dr-ops/erp-drpc"
MANAGED = ("prod-east", "prod-west")
EXIT_ABORTED = 3
# Faster simulated controllers than the defaults keep a drill near 10 s; VMIs take a while to shut down, so that
# cleanup (which waits for them) lasts long enough to be interrupted in.
DELAYS = {"delay_min": 0.05, "delay_max": 0.15}
SHUTDOWN_SECONDS = 1.0
SLOW_BOOT_SECONDS = 60.0  # a VMI that takes this long to run: only an abort ends such a drill soon
BUSY_SECONDS = 20.0  # long enough for `drill cleanup --all` to run while the drill waits for its VMI
SIGNALS = (signal.SIGTERM, signal.SIGINT)


Event = dict[str, Any]


@dataclass(frozen=True)
class KillPoint:
    """The ``nth`` progress event ``matches`` accepts: the moment a drill is killed at."""

    name: str
    matches: Callable[[Event], bool]
    nth: int = 1


def _created(kind: str, name: str | None = None, *, besides: str | None = None) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        if event.get("event") != "created" or event.get("kind") != kind:
            return False
        return (name is None or event.get("name") == name) and (besides is None or event.get("name") != besides)

    return matches


def _step(step: str) -> Callable[[Event], bool]:
    return lambda event: event.get("event") == "step" and event.get("step") == step


def _event(kind: str, **fields: str) -> Callable[[Event], bool]:
    return lambda event: event.get("event") == kind and all(event.get(k) == v for k, v in fields.items())


VM_COPY = KillPoint("vm_copy", _created("VirtualMachine"))  # the drill then waits for its VMI to run
CLEANUP_PHASE = KillPoint("cleanup", _event("phase", phase="cleanup"))
# In the order a drill passes them (the reference run proves it). "done" comes after the run filed its record.
KILL_POINTS = (
    KillPoint("namespaces", _created("Namespace"), nth=2),
    KillPoint("canary_writer", _created("Pod", "drauditor-canary-writer")),
    KillPoint("snapshots_t0", _created("VolumeSnapshot", "drauditor-canary")),  # the last of the T0 requests
    KillPoint("snapshot_ready", _step("snapshot_ready")),
    KillPoint("restored_pvc", _created("PersistentVolumeClaim", besides="drauditor-canary")),  # after its content
    VM_COPY,
    KillPoint("pvc_bound", _step("pvc_bound")),
    KillPoint("vmi_running", _step("vmi_running")),
    KillPoint("agent_connected", _step("agent_connected")),
    CLEANUP_PHASE,
    KillPoint("done", _event("done")),
)


@dataclass
class Site:
    """One test's view of the module's lab: its config, journals and evidence store, and the state to return to."""

    kubeconfig: Path
    clusters: ClusterState
    before: Versions
    state_dir: Path
    config: Path
    evidence: Path

    def drill_args(self) -> list[str]:
        args = ["drill", "--app", APP, "--json", "--config", str(self.config), "--evidence", str(self.evidence)]
        return [drauditor(), *args, *live_args(self.kubeconfig)]

    def cleanup(self, *which: str) -> subprocess.CompletedProcess[str]:
        args = ["drill", "cleanup", *which, "--config", str(self.config), "--evidence", str(self.evidence)]
        return subprocess.run(
            [drauditor(), *args, *live_args(self.kubeconfig, ceph=None)], capture_output=True, text=True, timeout=120
        )

    def records(self, drill_id: str) -> list[DrillRecord]:
        if not self.evidence.exists():
            return []
        with EvidenceStore(self.evidence) as store:
            return [record for record in store.drills() if record.id == drill_id]

    def assert_gone(self, drill_id: str) -> None:
        """Nothing labelled with the drill's id on either cluster, and its namespaces gone."""
        assert self.clusters.drill_residue(drill_id) == []
        assert not any(self.clusters.namespace_exists(cluster, drill_id) for cluster in MANAGED)

    def assert_untouched(self) -> None:
        """Every pre-existing object as it was and nothing new (such as a snapshot content the snapshot controller
        made for a drill's snapshot), once the clusters settled."""
        self.clusters.assert_untouched(self.before)


class Drill:
    """A `drauditor drill --json` child process, read one progress event at a time (a child that outlives
    ``TIMEOUT`` seconds is killed, so a hung drill fails the test instead of hanging it)."""

    TIMEOUT = 120.0

    def __init__(self, site: Site) -> None:
        self.events: list[Event] = []
        self._stderr = site.config.with_name("drill.stderr")
        with self._stderr.open("w") as stderr:
            self.process = subprocess.Popen(site.drill_args(), stdout=subprocess.PIPE, stderr=stderr, text=True)
        self._hung = False
        self._watchdog = threading.Timer(self.TIMEOUT, self._kill_hung)
        self._watchdog.start()

    @property
    def drill_id(self) -> str:
        return next(e["drill_id"] for e in self.events if "drill_id" in e)

    def until(self, point: KillPoint) -> Event:
        """Reads events until ``point``; fails if the drill ends first."""
        seen = 0
        for event in self._read():
            if point.matches(event):
                seen += 1
                if seen == point.nth:
                    return event
        raise AssertionError(f"the drill ended (exit {self.wait()}) before {point.name}: {self.stderr()}")

    def finish(self) -> int:
        """Reads the rest of the events; the exit code."""
        for _ in self._read():
            pass
        return self.wait()

    def wait(self) -> int:
        code = self.process.wait(timeout=self.TIMEOUT)
        self._watchdog.cancel()
        assert not self._hung, f"the drill hung and was killed after {self.TIMEOUT:g} s: {self.stderr()}"
        return code

    def stderr(self) -> str:
        return self._stderr.read_text()

    def _kill_hung(self) -> None:
        self._hung = True
        self.process.kill()

    def _read(self) -> Iterator[Event]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            self.events.append(event)
            yield event


@dataclass
class Run:
    """One drill of a batch, over: where it ran, its progress events, its exit code."""

    site: Site
    drill: Drill
    code: int


@dataclass
class Killed(Run):
    """A drill killed at its point: what it had filed and whether its journal was closed when it died, and what
    `drill cleanup --id` said after."""

    filed_by_run: list[DrillRecord]
    journal_closed: bool
    cleaned: subprocess.CompletedProcess[str]


@dataclass
class Signalled(Run):
    seconds: float  # from the (first) signal to the drill's exit


@dataclass
class KillBatch:
    reference: Future[Run]
    killed: dict[str, Future[Killed]]  # by kill point


def _finish(site: Site) -> Run:
    drill = Drill(site)
    return Run(site, drill, drill.finish())


def _kill_and_clean(site: Site, point: KillPoint) -> Killed:
    drill = Drill(site)
    drill.until(point)
    drill.process.kill()
    code = drill.wait()
    drill_id = drill.drill_id
    filed_by_run = site.records(drill_id)
    journal_closed = read_journal(journal_path(site.state_dir, drill_id)).closed
    return Killed(site, drill, code, filed_by_run, journal_closed, site.cleanup("--id", drill_id))


def _signal(site: Site, sig: signal.Signals, *, again_at: KillPoint | None = None) -> Signalled:
    """``sig`` once the VM copy exists (the drill then waits for a slow VMI), and ``sig`` again at ``again_at``."""
    drill = Drill(site)
    drill.until(VM_COPY)
    signalled = time.monotonic()
    drill.process.send_signal(sig)
    if again_at is not None:
        drill.until(again_at)
        drill.process.send_signal(sig)
    code = drill.finish()
    return Signalled(site, drill, code, time.monotonic() - signalled)


@pytest.fixture(scope="module")
def lab_state(drill_lab: fixtures.DrillLab) -> Iterator[tuple[ClusterState, Versions]]:
    for cluster in MANAGED:
        knobs = drill_lab.knobs(cluster)
        knobs.delay_min, knobs.delay_max = DELAYS["delay_min"], DELAYS["delay_max"]
        knobs.extra_delay["shutdown"] = SHUTDOWN_SECONDS
    clusters = ClusterState(drill_lab.lab)
    try:
        yield clusters, clusters.settled()
    finally:
        drill_lab.sims.reset_knobs()


def _site(drill_lab: fixtures.DrillLab, lab_state: tuple[ClusterState, Versions], directory: Path) -> Site:
    """A site of its own in ``directory``: drills there never share a journal or an evidence store."""
    clusters, before = lab_state
    state_dir = directory / "state"
    config = write_config(directory / "drauditor.yaml", state_dir)
    return Site(drill_lab.kubeconfig, clusters, before, state_dir, config, directory / "evidence.db")


@pytest.fixture(autouse=True)
def simulators_sound(drill_lab: fixtures.DrillLab) -> Iterator[None]:
    yield
    assert drill_lab.sims.errors() == []


@pytest.fixture
def site(drill_lab: fixtures.DrillLab, lab_state: tuple[ClusterState, Versions], tmp_path: Path) -> Site:
    return _site(drill_lab, lab_state, tmp_path)


@contextlib.contextmanager
def slow_boot(drill_lab: fixtures.DrillLab, seconds: float) -> Iterator[None]:
    """VMIs on the secondary take ``seconds`` longer to run: the drill is still going when the test acts."""
    knobs = drill_lab.knobs("prod-west")
    knobs.extra_delay["Running"] = seconds
    try:
        yield
    finally:
        del knobs.extra_delay["Running"]


def _assert_untouched(lab_state: tuple[ClusterState, Versions]) -> None:
    """A batch's drills ran at once, so the lab is back as it was for all of them or for none: checked once, after
    the last, and a change fails every test of the batch (the differences name the objects, hence the drill)."""
    clusters, before = lab_state
    clusters.assert_untouched(before)


@pytest.fixture(scope="module")
def kill_batch(
    drill_lab: fixtures.DrillLab, lab_state: tuple[ClusterState, Versions], tmp_path_factory: pytest.TempPathFactory
) -> KillBatch:
    """The reference drill and one drill per kill point, all at once; each killed drill is cleaned up as soon as it
    died. Returns once every drill and cleanup is over; a run that went wrong fails only its own test."""

    def site(name: str) -> Site:
        return _site(drill_lab, lab_state, tmp_path_factory.mktemp(name))

    with ThreadPoolExecutor(len(KILL_POINTS) + 1) as pool:  # leaving waits for every thread
        reference = pool.submit(_finish, site("reference"))
        killed = {point.name: pool.submit(_kill_and_clean, site(point.name), point) for point in KILL_POINTS}
    _assert_untouched(lab_state)
    return KillBatch(reference, killed)


@pytest.fixture(scope="module")
def reference(kill_batch: KillBatch) -> list[Event]:
    """The progress events of one whole drill, which succeeds (the kill points are taken from them)."""
    run = kill_batch.reference.result()
    assert run.code == 0, run.drill.stderr()
    run.site.assert_gone(run.drill.drill_id)
    return run.drill.events


@pytest.fixture(scope="module")
def signalled(
    drill_lab: fixtures.DrillLab, lab_state: tuple[ClusterState, Versions], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Future[Signalled]]:
    """Drills aborted by each signal, and one signalled twice, all at once (they need the same slow boot), by
    signal name; the twice-signalled one is ``"second SIGTERM"``."""

    def site(name: str) -> Site:
        return _site(drill_lab, lab_state, tmp_path_factory.mktemp(name))

    with slow_boot(drill_lab, SLOW_BOOT_SECONDS), ThreadPoolExecutor(len(SIGNALS) + 1) as pool:
        runs = {sig.name: pool.submit(_signal, site(sig.name), sig) for sig in SIGNALS}
        runs["second SIGTERM"] = pool.submit(_signal, site("twice"), signal.SIGTERM, again_at=CLEANUP_PHASE)
    _assert_untouched(lab_state)
    return runs


def test_the_reference_drill_passes_every_kill_point_in_order_and_names_itself_in_every_event(
    reference: list[Event],
) -> None:
    *progress, result = reference
    assert result["event"] == "result" and result["drill"]["outcome"] == "success"
    drill_id = result["drill"]["id"]
    assert all(event.get("drill_id") == drill_id for event in progress), [e for e in progress if "drill_id" not in e]
    positions = [_position(reference, point) for point in KILL_POINTS]
    assert positions == sorted(positions) and len(set(positions)) == len(positions), positions


def _position(events: list[Event], point: KillPoint) -> int:
    found = [index for index, event in enumerate(events) if point.matches(event)]
    assert len(found) >= point.nth, f"{point.name}: not in the reference run"
    return found[point.nth - 1]


@pytest.mark.parametrize("point", KILL_POINTS, ids=[point.name for point in KILL_POINTS])
def test_a_drill_killed_at_any_step_is_cleaned_up_and_filed_once(
    reference: list[Event], kill_batch: KillBatch, point: KillPoint
) -> None:
    _position(reference, point)
    killed = kill_batch.killed[point.name].result()
    site, drill = killed.site, killed.drill
    drill_id = drill.drill_id
    if point.name != "done":
        assert killed.code == -signal.SIGKILL
    if point.name not in ("cleanup", "done"):  # only cleanup, which files before it closes, could have ended it
        assert not killed.filed_by_run
        assert not killed.journal_closed

    cleaned = killed.cleaned

    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert f"drill {drill_id}:" in cleaned.stdout and "clean" in cleaned.stdout
    site.assert_gone(drill_id)
    journal = closed_journal(site.state_dir, drill_id)
    records = site.records(drill_id)
    assert len(records) == 1  # never a duplicate
    if killed.filed_by_run:
        assert records == killed.filed_by_run and "filed as aborted" not in cleaned.stdout
        if point.name == "done":
            assert records[0].outcome == "success" and journal.closing["outcome"] == "success"
    else:
        assert "filed as aborted" in cleaned.stdout
        assert records[0].outcome == "aborted" and journal.closing["outcome"] == "aborted"
        assert records[0].details["cleanup"] == {"complete": True, "residue": []}
        created = {(o["cluster"], o["kind"], o["name"]) for o in records[0].details["objects"]}
        announced = {(e["cluster"], e["kind"], e["name"]) for e in drill.events if e.get("event") == "created"}
        assert announced <= created  # what the drill said it created is what cleanup filed


def test_cleanup_all_with_nothing_left_says_so(site: Site) -> None:
    cleaned = site.cleanup("--all")
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.strip() == "no drill to clean up"


def test_cleanup_all_leaves_a_running_drill_alone(site: Site, drill_lab: fixtures.DrillLab) -> None:
    with slow_boot(drill_lab, BUSY_SECONDS):  # for the whole test: a step's delay is drawn when it is scheduled
        drill = Drill(site)
        drill.until(VM_COPY)
        drill_id = drill.drill_id
        objects = site.clusters.drill_residue(drill_id)

        cleaned = site.cleanup("--all")

        assert drill.process.poll() is None, "the drill ended while cleanup ran: the test proves nothing"
        assert cleaned.returncode == 0, cleaned.stderr
        assert cleaned.stdout.strip() == "no drill to clean up"
        assert f"drill {drill_id} may still be running: left alone" in cleaned.stderr
        journal = read_journal(journal_path(site.state_dir, drill_id))
        assert not journal.deleted and not journal.closed
        assert set(objects) <= set(site.clusters.drill_residue(drill_id))  # nothing of it deleted

        assert drill.finish() == 0, drill.stderr()  # and the drill goes on to succeed
    assert [record.outcome for record in site.records(drill_id)] == ["success"]
    assert closed_journal(site.state_dir, drill_id).closing["outcome"] == "success"
    site.assert_gone(drill_id)
    site.assert_untouched()


@pytest.mark.parametrize("sig", SIGNALS, ids=[sig.name for sig in SIGNALS])
def test_a_signal_mid_drill_aborts_it_promptly_and_cleans_up(
    signalled: dict[str, Future[Signalled]], sig: signal.Signals
) -> None:
    run = signalled[sig.name].result()
    site, drill = run.site, run.drill
    assert run.code == EXIT_ABORTED, drill.stderr()
    assert run.seconds < SLOW_BOOT_SECONDS / 2  # not after the VMI finally ran
    drill_id = drill.drill_id
    [record] = site.records(drill_id)
    assert record.outcome == "aborted" and record.details["error"] == f"aborted by {sig.name}"
    assert [vm["outcome"] for vm in record.details["vms"]] == ["aborted"]
    assert record.details["cleanup"] == {"complete": True, "residue": []}
    closing = closed_journal(site.state_dir, drill_id).closing
    assert closing["outcome"] == "aborted" and closing["residue"] == []
    assert drill.events[-1]["event"] == "result" and drill.events[-1]["exit_code"] == EXIT_ABORTED
    site.assert_gone(drill_id)


def test_a_second_sigterm_during_cleanup_is_ignored(signalled: dict[str, Future[Signalled]]) -> None:
    run = signalled["second SIGTERM"].result()
    site, drill = run.site, run.drill
    assert run.code == EXIT_ABORTED, drill.stderr()
    drill_id = drill.drill_id
    warnings = [e["message"] for e in drill.events if e.get("event") == "warning"]
    assert warnings == ["SIGTERM ignored: cleanup was running and had to finish"]
    [record] = site.records(drill_id)
    assert record.outcome == "aborted" and record.details["cleanup"] == {"complete": True, "residue": []}
    assert closed_journal(site.state_dir, drill_id).closing["outcome"] == "aborted"
    site.assert_gone(drill_id)
