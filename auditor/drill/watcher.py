"""The event cache a drill's RTO comes from: one watch stream per (cluster, apiVersion, kind), every event kept.

A step of the drill is done at the moment the first event showing it arrives, not when someone asks: many VM threads
wait on steps at their own pace, and a step that completed while its thread was busy elsewhere must still be dated
by its event. So the streams run from before the first create, keep every event per object in order, and
``wait_for`` searches that history before it waits for more. A stream that ends or expires is re-listed and
re-watched; one that cannot be re-established makes every waiter on its cluster fail at once instead of at its
deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from auditor.drill.api import ApiError, DrillApiError, Expired, KubeApi, WatchEvent, WatchStream

Key = tuple[str, str, str | None, str]  # cluster, kind, namespace (None: cluster-scoped), name


@dataclass(frozen=True)
class Stamp:
    wall: datetime  # UTC, when the event was read
    mono: float  # time.monotonic() at that moment
    object: dict  # the object as that event showed it


class WaitFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WaitTimeout(Exception):
    def __init__(self, last: dict | None) -> None:
        super().__init__("deadline reached" + ("" if last is not None else "; the object was never seen"))
        self.last = last  # the object as last seen, None if never


class StreamLost(Exception):
    def __init__(self, cluster: str, cause: str) -> None:
        super().__init__(f"watching {cluster} failed: {cause}")
        self.cluster = cluster
        self.cause = cause


class Watcher:
    """``with Watcher(apis, [(cluster, apiVersion, kind), ...], selector) as watcher: watcher.wait_for(...)``.

    ``reconnects``: consecutive failed attempts to re-establish one stream before its cluster counts as lost (each
    attempt already retried by the KubeApi); ``watch_seconds``: how long the server keeps one stream open.
    """

    def __init__(
        self,
        apis: Mapping[str, KubeApi],
        watches: Iterable[tuple[str, str, str]],
        label_selector: str,
        *,
        reconnects: int = 3,
        watch_seconds: int = 60,
        pause_seconds: float = 0.5,
    ) -> None:
        self.label_selector = label_selector
        self.reconnects = reconnects
        self.watch_seconds = watch_seconds
        self.pause_seconds = pause_seconds
        self._stopping = threading.Event()
        # Retries inside a request pause on the stop event too, so stop() never waits out a backoff.
        self._apis = {cluster: api.with_sleep(self._stopping.wait) for cluster, api in apis.items()}
        self._watches = list(dict.fromkeys(watches))
        self._changed = threading.Condition()
        self._events: dict[Key, list[WatchEvent]] = {}
        self._lost: dict[str, str] = {}
        self._open: set[WatchStream] = set()
        self._established: set[tuple[str, str, str]] = set()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Starts every stream and returns once each has listed and is watching; StreamLost (after stopping the
        rest) when one cannot start, or is not watching within ``timeout`` seconds."""
        for cluster, api_version, kind in self._watches:
            thread = threading.Thread(
                target=self._follow,
                args=(cluster, api_version, kind),
                name=f"drill-watch {cluster} {api_version} {kind}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        deadline = time.monotonic() + timeout
        with self._changed:
            self._changed.wait_for(
                lambda: self._lost or len(self._established) == len(self._watches),
                timeout=max(0.0, deadline - time.monotonic()),
            )
            lost = next(iter(self._lost.items()), None)
            missing = [w for w in self._watches if w not in self._established]
        if lost is None and missing:
            lost = (missing[0][0], f"{missing[0][2]} not watching after {timeout:g} s")
        if lost is not None:
            self.stop()
            raise StreamLost(*lost)

    def stop(self) -> None:
        """Ends every stream (closing the open responses) and waits at most a second for the threads to finish."""
        self._stopping.set()
        with self._changed:
            streams = list(self._open)
            self._changed.notify_all()
        for stream in streams:
            stream.close()
        deadline = time.monotonic() + 1.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # ---- queries ---------------------------------------------------------------------------------------------

    def events(self, cluster: str, kind: str, namespace: str | None, name: str) -> list[WatchEvent]:
        """Every event of one object so far, in order (listed objects appear as ADDED)."""
        with self._changed:
            return list(self._events.get((cluster, kind, namespace, name), ()))

    def wait_for(
        self,
        cluster: str,
        kind: str,
        namespace: str | None,
        name: str,
        ready: Callable[[dict], bool],
        *,
        deadline: float,
        failed: Callable[[dict], str | None] | None = None,
    ) -> Stamp:
        """The stamp of the first event (past or future) whose object is ``ready``.

        WaitFailed when an earlier event's object made ``failed`` give a reason; WaitTimeout at ``deadline``
        (monotonic); StreamLost at once when the cluster's streams are lost or the watcher stopped.
        """
        key = (cluster, kind, namespace, name)
        checked = 0
        with self._changed:
            while True:
                history = self._events.get(key, [])
                for event in history[checked:]:
                    if ready(event.object):
                        return Stamp(event.wall, event.mono, event.object)
                    reason = failed(event.object) if failed is not None else None
                    if reason:
                        raise WaitFailed(reason)
                checked = len(history)
                if cluster in self._lost:
                    raise StreamLost(cluster, self._lost[cluster])
                if self._stopping.is_set():
                    raise StreamLost(cluster, "the watcher was stopped")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(history[-1].object if history else None)
                self._changed.wait(remaining)

    # ---- the stream threads ----------------------------------------------------------------------------------

    def _follow(self, cluster: str, api_version: str, kind: str) -> None:
        """List, then watch from the list's version, for as long as the watcher runs; see the class docstring."""
        api = self._apis[cluster]
        version: str | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                if version is None:
                    items, version = api.list(api_version, kind, label_selector=self.label_selector)
                    wall, mono = datetime.now(UTC), time.monotonic()
                    for item in items:
                        self._record(cluster, kind, WatchEvent("ADDED", item, wall, mono))
                stream = api.watch(
                    api_version,
                    kind,
                    label_selector=self.label_selector,
                    resource_version=version,
                    timeout_seconds=self.watch_seconds,
                )
                with self._changed:
                    self._open.add(stream)
                    self._established.add((cluster, api_version, kind))
                    self._changed.notify_all()
                if self._stopping.is_set():  # stop() ran before the stream was registered
                    stream.close()
                try:
                    for event in stream:
                        version = event.object.get("metadata", {}).get("resourceVersion") or version
                        if event.type != "BOOKMARK":
                            self._record(cluster, kind, event)
                        failures = 0
                finally:
                    with self._changed:
                        self._open.discard(stream)
                failures = 0  # the server ended the stream as asked: watch on from the last version
            except DrillApiError as exc:
                if self._stopping.is_set():
                    return
                if isinstance(exc, Expired):
                    version = None  # the history is gone: list again
                elif isinstance(exc, ApiError) and exc.status != 429 and exc.status < 500:
                    self._lose(cluster, str(exc))  # refused (RBAC, kind not served): retrying cannot help
                    return
                failures += 1
                if failures > self.reconnects:
                    self._lose(cluster, f"{kind} stream not re-established after {failures} attempts: {exc}")
                    return
                self._stopping.wait(self.pause_seconds)

    def _record(self, cluster: str, kind: str, event: WatchEvent) -> None:
        metadata = event.object.get("metadata") or {}
        key = (cluster, kind, metadata.get("namespace"), metadata.get("name", ""))
        with self._changed:
            self._events.setdefault(key, []).append(event)
            self._changed.notify_all()

    def _lose(self, cluster: str, cause: str) -> None:
        with self._changed:
            self._lost.setdefault(cluster, cause)
            self._changed.notify_all()
