"""The simulators of one cluster: informers for the kinds they control, and one worker thread that reconciles.

Controllers are level-triggered like the real ones: any watch event marks the cluster dirty, the worker runs every
controller's ``reconcile()`` over the cache, and a controller asks for the next step of an object with
``step()``. A step runs once per object incarnation (uid), after its delay (``Knobs.delay``), on the worker
thread, which keeps a timer heap so many objects progress in parallel without a thread each. A step re-reads the
object when it runs and does nothing if it no longer applies (deleted, replaced, already done by someone else).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from lab.rest import Obj

from .faults import Knobs
from .kube import ClusterApi, Informer
from .storage import StretchedCeph
from .truth import GroundTruth, Record

WATCHED = {
    "VolumeSnapshot": "snapshot.storage.k8s.io/v1",
    "VolumeSnapshotContent": "snapshot.storage.k8s.io/v1",
    "PersistentVolumeClaim": "v1",
    "PersistentVolume": "v1",
    "Pod": "v1",
    "VirtualMachine": "kubevirt.io/v1",
    "VirtualMachineInstance": "kubevirt.io/v1",
}
# Read once when first needed: what a controller looks up but never changes.
STATIC = {"StorageClass": "storage.k8s.io/v1", "VolumeSnapshotClass": "snapshot.storage.k8s.io/v1", "Node": "v1"}


class Controller(Protocol):
    def reconcile(self) -> None: ...


def now_wall() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """metav1.Time as the apiserver writes it: whole seconds, UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ClusterSim:
    """Informers, the timer heap and the worker thread of one cluster's simulators."""

    def __init__(self, name: str, client: ApiClient, ceph: StretchedCeph, truth: GroundTruth) -> None:
        self.name = name
        self.api = ClusterApi(name, client)
        self.ceph = ceph
        self.truth = truth
        self.knobs = Knobs()
        self.errors: list[str] = []  # step failures other than the races every controller shrugs off
        self.controllers: list[Controller] = []
        self.informers = {kind: Informer(self.api, av, kind, self._changed) for kind, av in WATCHED.items()}
        self._static: dict[tuple[str, str], Obj | None] = {}
        self._heap: list[tuple[float, int, tuple, Callable[[], bool]]] = []
        self._order = itertools.count()
        self._pending: set[tuple] = set()
        self._done: set[tuple] = set()
        self._dirty = False
        self._stopping = False
        self._wake = threading.Condition()
        self._worker = threading.Thread(target=self._work, name=f"drillsim-{name}", daemon=True)

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        for informer in self.informers.values():
            informer.start()
        deadline = time.monotonic() + timeout
        for informer in self.informers.values():
            if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"drillsim {self.name}: {informer.kind} not listed: {informer.error!r}")
        self._worker.start()
        self.touch()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for informer in self.informers.values():
            informer.stop()
        if self._worker.ident is not None:
            self._worker.join(timeout=10)

    # ---- cache -----------------------------------------------------------------------------------------------

    def objects(self, kind: str, namespace: str | None = None) -> list[Obj]:
        items = self.informers[kind].items()
        return items if namespace is None else [o for o in items if o["metadata"].get("namespace") == namespace]

    def cached(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        return self.informers[kind].get(namespace, name)

    def static(self, kind: str, name: str) -> Obj | None:
        """A cluster-scoped object the simulators only read (classes, nodes), fetched once."""
        if (kind, name) not in self._static:
            self._static[(kind, name)] = self.api.get(STATIC[kind], kind, name)
        return self._static[(kind, name)]

    def static_list(self, kind: str) -> list[Obj]:
        return self.api.list(STATIC[kind], kind)[0]

    # ---- steps -----------------------------------------------------------------------------------------------

    def step(self, obj: Obj, step: str, action: Callable[[Obj], bool], *, repeat: bool = False) -> None:
        """Runs ``action(current object)`` after the step's delay, once per object incarnation; ``action``
        returns False when it did not apply (the step may then be asked for again). ``repeat``: a step whose
        action checks for itself whether there is anything to do (a status that may take a value again)."""
        meta = obj["metadata"]
        kind, namespace, name, uid = obj["kind"], meta.get("namespace"), meta["name"], meta["uid"]
        key = (kind, uid, step)
        with self._wake:
            if key in self._pending or key in self._done:
                return
            self._pending.add(key)
            due = time.monotonic() + self.knobs.delay(self.name, kind, namespace, name, step)
            heapq.heappush(
                self._heap, (due, next(self._order), key, lambda: self._run(kind, namespace, name, action, repeat))
            )
            self._wake.notify_all()

    def record(self, obj: Obj, step: str) -> None:
        """Ground truth for a write the apiserver just accepted."""
        meta = obj["metadata"]
        wall, mono, sent = now_wall(), time.monotonic(), self.api.last_write_sent()
        record = Record(self.name, obj["kind"], meta.get("namespace"), meta["name"], step, wall, mono, sent or mono)
        self.truth.add(record)

    def touch(self) -> None:
        """Asks for a reconcile pass (after a write whose watch event others may wait on, or from a test)."""
        with self._wake:
            self._dirty = True
            self._wake.notify_all()

    def _run(self, kind: str, namespace: str | None, name: str, action: Callable[[Obj], bool], repeat: bool) -> bool:
        """Whether the step is done for good (a repeatable step never is)."""
        current = self.cached(kind, namespace, name)
        return current is not None and action(current) and not repeat

    def _changed(self, kind: str, event: str, obj: Obj) -> None:
        self.touch()

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._dirty and not self._due():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if self._stopping:
                    return
                due = []
                while self._due():
                    due.append(heapq.heappop(self._heap))
                dirty, self._dirty = self._dirty, False
            for _, _, key, call in due:
                done = self._guarded(call, key)
                with self._wake:
                    self._pending.discard(key)
                    if done:
                        self._done.add(key)
            if dirty or due:
                for controller in self.controllers:
                    self._guarded(controller.reconcile, (type(controller).__name__, "reconcile"))

    def _due(self) -> bool:
        return bool(self._heap) and self._heap[0][0] <= time.monotonic()

    def _guarded(self, call: Callable[[], object], what: tuple) -> bool:
        try:
            return bool(call())
        except ApiException as exc:
            if exc.status not in (404, 409):  # the object went away or changed meanwhile: the next pass decides
                self.errors.append(f"{self.name} {what}: HTTP {exc.status}: {exc.body}")
            return False
        except Exception:
            self.errors.append(f"{self.name} {what}: {traceback.format_exc()}")
            return False


def quantity(size: int) -> str:
    """Bytes as resource.Quantity prints a binary-SI value: the largest exact binary suffix (``1Gi``)."""
    for power, suffix in ((6, "Ei"), (5, "Pi"), (4, "Ti"), (3, "Gi"), (2, "Mi"), (1, "Ki")):
        if size and size % 1024**power == 0:
            return f"{size // 1024**power}{suffix}"
    return str(size)


def add_finalizers(sim: ClusterSim, obj: Obj, names: list[str]) -> bool:
    """Adds ``names`` to the object's finalizers (resourceVersion-checked: a concurrent change wins, and the
    controller asks again on the next pass)."""
    current = obj["metadata"].get("finalizers") or []
    wanted = current + [n for n in names if n not in current]
    if wanted == current:
        return True
    sim.api.patch(obj, {"metadata": {"finalizers": wanted, "resourceVersion": obj["metadata"]["resourceVersion"]}})
    return True


def remove_finalizers(sim: ClusterSim, obj: Obj, names: list[str]) -> bool:
    current = obj["metadata"].get("finalizers") or []
    kept = [n for n in current if n not in names]
    if kept == current:
        return True
    sim.api.patch(obj, {"metadata": {"finalizers": kept, "resourceVersion": obj["metadata"]["resourceVersion"]}})
    return True
