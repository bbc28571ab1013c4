"""The drill's REST access to one cluster: JSON objects in and out, every request counted and retried.

Drills address objects by (apiVersion, kind) like a manifest does, so the URL of each kind comes from the server's
own discovery (cached here) rather than a table that would have to know every kind a VM's plan may create. Retries
are ``auditor.kubehttp.send``'s, the same as the live reader's. Watches stamp each event the moment its line is read:
RTO is measured from those stamps, so nothing may sit between the socket and the clock.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes.client import ApiClient

from auditor.kubehttp import Reply, RequestStats, RetriesExhausted, RetryPolicy, send

LIST_PAGE = 500


class DrillApiError(Exception):
    """A request to ``cluster`` that did not succeed."""

    def __init__(self, cluster: str, message: str) -> None:
        super().__init__(f"{cluster}: {message}")
        self.cluster = cluster


class ClusterUnreachable(DrillApiError):
    """No attempt got an answer (connection refused, reset, timed out), after every retry."""


class ApiError(DrillApiError):
    """The server refused: a final 4xx, or a 429/5xx still there after every retry."""

    def __init__(self, cluster: str, status: int, reason: str, message: str) -> None:
        super().__init__(cluster, f"HTTP {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Expired(ApiError):
    """A watch's resourceVersion is older than the server keeps (410 Gone): list again, then watch from there."""


class WatchInterrupted(DrillApiError):
    """An open watch stream broke mid-way (reset, read timeout); watching again from the last version may work."""


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: dict
    wall: datetime  # UTC, when the event's line was read
    mono: float  # time.monotonic() at the same moment


@dataclass(frozen=True)
class _Resource:
    plural: str
    namespaced: bool


class _Discovery:
    """(apiVersion, kind) -> resource, one discovery request per group/version, shared by derived KubeApis."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_group_version: dict[str, dict[str, _Resource]] = {}


class KubeApi:
    """One cluster's API for the drill. The client should not retry on its own (``auditor.live.api_client``
    turns urllib3's retries off), or each counted request may hide several."""

    def __init__(
        self,
        cluster: str,
        client: ApiClient,
        stats: RequestStats,
        *,
        attempts: int = 5,
        backoff_seconds: float = 0.2,
        request_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cluster = cluster
        self.client = client
        self.stats = stats
        self.request_timeout = request_timeout
        self.policy = RetryPolicy(attempts, backoff_seconds, sleep=sleep)
        self._discovery = _Discovery()

    def with_sleep(self, sleep: Callable[[float], None]) -> KubeApi:
        """The same API (client, counts, discovery) pausing between retries with ``sleep``: a watcher passes one
        that returns early when it is stopped, so no thread of it lingers in a backoff."""
        derived = copy.copy(self)
        derived.policy = dataclasses.replace(self.policy, sleep=sleep)
        return derived

    # ---- objects ---------------------------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """The object, or None when it does not exist (404)."""
        reply = self._send("GET", self._path(api_version, kind, namespace, name))
        if reply.status == 404:
            return None
        return self._ok(reply)

    def list(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[list[dict], str]:
        """Every matching object (all namespaces unless ``namespace``) and the list's resourceVersion to watch from.

        Paged; the resourceVersion is the first page's, the consistent snapshot the later pages continue.
        """
        path = self._path(api_version, kind, namespace)
        items: list[dict] = []
        version, token = "", ""
        while True:
            query: list[tuple[str, Any]] = [("limit", LIST_PAGE)]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            page = self._ok(self._send("GET", path, query=query))
            for item in page.get("items") or []:  # list items come without their type
                items.append({"apiVersion": api_version, "kind": kind, **item})
            metadata = page.get("metadata") or {}
            version = version or str(metadata.get("resourceVersion") or "")
            token = metadata.get("continue") or ""
            if not token:
                return items, version

    def create(self, manifest: dict) -> dict:
        """Creates the object; returns it as stored (uid, resourceVersion).

        A create retried after an attempt whose outcome is unknown (no answer, a 5xx) may meet the object that
        attempt made (409): that object, recognised by carrying every label of the manifest, is the result.
        """
        metadata = manifest.get("metadata") or {}
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        path = self._path(api_version, kind, metadata.get("namespace"))
        reply = self._send("POST", path, body=manifest)
        if reply.status == 409 and reply.maybe_applied_before:
            existing = self.get(api_version, kind, metadata["name"], metadata.get("namespace"))
            labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
            if existing is not None and (metadata.get("labels") or {}).items() <= labels.items():
                return existing
        return self._ok(reply)

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, *, uid: str | None = None
    ) -> bool:
        """Asks for the deletion; False when the object is already gone (404) or is another object of that name
        (409: the ``uid`` precondition failed)."""
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid:
            options["preconditions"] = {"uid": uid}
        reply = self._send("DELETE", self._path(api_version, kind, namespace, name), body=options)
        if reply.status in (404, 409):
            return False
        self._ok(reply)
        return True

    def watch(
        self,
        api_version: str,
        kind: str,
        *,
        label_selector: str | None,
        resource_version: str,
        timeout_seconds: int = 60,
    ) -> WatchStream:
        """Events after ``resource_version`` across all namespaces, until the server ends the stream after
        ``timeout_seconds``; iterating raises Expired (410: list again) or WatchInterrupted (the stream broke)."""
        query: list[tuple[str, Any]] = [
            ("watch", 1),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", timeout_seconds),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        # The server ends the stream itself; the client only gives up on a connection silent for longer than that.
        read_timeout = timeout_seconds + self.request_timeout
        reply = self._send("GET", self._path(api_version, kind, None), query=query, stream=True, read=read_timeout)
        if reply.status == 410:
            raise self._error(reply, Expired)
        self._ok(reply)
        return WatchStream(self.cluster, reply.response.response)

    # ---- internals -------------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        stream: bool = False,
        read: float | None = None,
    ) -> Reply:
        try:
            return send(
                self.client,
                self.cluster,
                self.stats,
                self.policy,
                method,
                path,
                query=query,
                headers={"Content-Type": "application/json"} if body is not None else None,
                body=body,
                stream=stream,
                timeout=(self.request_timeout, read or self.request_timeout),
            )
        except RetriesExhausted as exc:
            if exc.last is None:
                raise ClusterUnreachable(self.cluster, f"{method} {path}: {exc}") from exc
            raise self._error(exc.last) from exc

    def _ok(self, reply: Reply) -> dict:
        if not reply.ok:
            raise self._error(reply)
        return reply.json()

    def _error(self, reply: Reply, kind: type[ApiError] = ApiError) -> ApiError:
        return kind(self.cluster, reply.status, reply.reason, reply.message)

    def _path(self, api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
        resource = self._resource(api_version, kind)
        base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        if resource.namespaced and namespace:
            base = f"{base}/namespaces/{namespace}"
        elif resource.namespaced and name:
            raise ValueError(f"{kind} {name!r} is namespaced: name its namespace")
        path = f"{base}/{resource.plural}"
        return f"{path}/{name}" if name else path

    def _resource(self, api_version: str, kind: str) -> _Resource:
        discovery = self._discovery
        with discovery.lock:
            known = discovery.by_group_version.get(api_version)
        if known is None:
            base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            listed = self._send("GET", base)
            served = self._ok(listed).get("resources", []) if listed.status != 404 else []
            known = {r["kind"]: _Resource(r["name"], r["namespaced"]) for r in served if "/" not in r["name"]}
            with discovery.lock:
                discovery.by_group_version[api_version] = known
        if kind not in known:
            raise ApiError(self.cluster, 404, "NotFound", f"the server does not serve {kind} in {api_version}")
        return known[kind]


class WatchStream(Iterator[WatchEvent]):
    """An open watch: iterate for events; ``close()`` (from any thread) ends a read that is waiting for one."""

    def __init__(self, cluster: str, response: urllib3.BaseHTTPResponse) -> None:
        self.cluster = cluster
        self._response = response
        self._closed = False
        self._events = self._read()

    def __next__(self) -> WatchEvent:
        return next(self._events)

    def _read(self) -> Iterator[WatchEvent]:
        pending = b""
        try:
            while True:
                try:
                    chunk = self._response.read1(65536)
                except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                    if self._closed:
                        return
                    raise WatchInterrupted(self.cluster, f"the watch stream broke: {exc}") from exc
                if not chunk:
                    return  # the server ended the stream (timeoutSeconds), or close() did
                wall, mono = datetime.now(UTC), time.monotonic()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._event(json.loads(line), wall, mono)
        finally:
            self._response.close()

    def close(self) -> None:
        """Thread-safe: shuts the socket's read side, so a read blocked in ``__iter__`` returns at once."""
        self._closed = True
        with contextlib.suppress(ValueError, RuntimeError, OSError):
            self._response.shutdown()

    def _event(self, raw: dict, wall: datetime, mono: float) -> WatchEvent:
        kind, obj = raw.get("type", ""), raw.get("object") or {}
        if kind == "ERROR":  # a Status: 410 when the resourceVersion is too old for the server's history
            status, reason, message = obj.get("code") or 0, obj.get("reason") or "", obj.get("message") or ""
            error = Expired if status == 410 else ApiError
            raise error(self.cluster, status, reason, message)
        return WatchEvent(kind, obj, wall, mono)
