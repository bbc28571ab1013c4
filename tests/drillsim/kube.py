"""One lab apiserver as the simulators see it: JSON reads and writes by (apiVersion, kind), and informers.

The simulators stand in for controllers, so they talk to the apiserver the way controllers do: an initial list,
then one streaming watch per kind (re-listed on ``410 Gone``), a local cache the reconcilers read, and writes
that go through ``/status`` wherever the kind has that subresource.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from lab.rest import Obj, Resource, Rest

Key = tuple[str | None, str]  # (namespace or None, name)
WATCH_SECONDS = 120  # a server-side watch timeout: the stream ends cleanly and is resumed from the last version


def key_of(obj: Obj) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace"), meta["name"]


class ClusterApi:
    """Requests against one apiserver; errors surface as the client's ``ApiException``."""

    def __init__(self, name: str, client: ApiClient) -> None:
        self.name = name
        self.client = client
        self.rest = Rest(client, timeout=30)
        self.resources: dict[tuple[str, str], Resource] = self.rest.discover()
        self._sent = threading.local()

    def last_write_sent(self) -> float | None:
        """When this thread's latest write was sent (monotonic): a watcher may see the write before its answer
        arrives here, never before this instant."""
        return getattr(self._sent, "at", None)

    def _write(self, method: str, path: str, body: Obj) -> Obj:
        self._sent.at = time.monotonic()
        return self.rest.request(method, path, body=body)

    def resource(self, api_version: str, kind: str) -> Resource:
        return self.resources[(api_version, kind)]

    def path(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> str:
        return f"{self.resource(api_version, kind).collection(namespace)}/{name}"

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self.rest.get(self.path(api_version, kind, name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, obj: Obj) -> Obj:
        resource = self.resource(obj["apiVersion"], obj["kind"])
        return self._write("POST", resource.collection(obj["metadata"].get("namespace")), body=obj)

    def patch(self, obj: Obj, body: Obj) -> Obj:
        """A JSON merge patch of ``obj``'s main resource (metadata, spec)."""
        meta = obj["metadata"]
        return self._write(
            "PATCH", self.path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")), body=body
        )

    def patch_status(self, obj: Obj, status: Obj) -> Obj:
        """Merges ``status`` through the ``/status`` subresource, or the main resource for a kind without one
        (KubeVirt's VirtualMachineInstance: virt-controller and virt-handler update it as a whole)."""
        meta = obj["metadata"]
        path = self.path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        if self.resource(obj["apiVersion"], obj["kind"]).has_status:
            path += "/status"
        return self._write("PATCH", path, body={"status": status})

    def delete(self, obj: Obj, grace_seconds: int | None = None) -> bool:
        """Deletes this incarnation of ``obj`` (uid precondition); False when it is already gone."""
        meta = obj["metadata"]
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": meta["uid"]}}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        try:
            self._write(
                "DELETE", self.path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")), body=body
            )
        except ApiException as exc:
            if exc.status in (404, 409):  # gone, or a newer object of that name (not ours to delete)
                return False
            raise
        return True

    def post(self, path: str, body: Obj) -> Obj:
        return self._write("POST", path, body=body)

    def everywhere(self, api_version: str, kind: str) -> str:
        """The collection across all namespaces (``Resource.collection`` names one namespace)."""
        resource = self.resource(api_version, kind)
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        return f"{base}/{resource.plural}"

    def list(self, api_version: str, kind: str) -> tuple[list[Obj], str]:
        listed = self.rest.get(self.everywhere(api_version, kind))
        for item in listed.get("items") or []:  # a list omits each item's apiVersion and kind
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return listed.get("items") or [], listed["metadata"]["resourceVersion"]

    def watch(
        self, api_version: str, kind: str, resource_version: str, on_open: Callable[[Any], None]
    ) -> Iterator[Obj]:
        """The raw watch events (``{"type", "object"}``) of one stream, as they arrive; ends when the server
        closes it. ``on_open`` receives the streaming response, so another thread can shut it down."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        params = self.client.param_serialize(
            method="GET",
            resource_path=self.everywhere(api_version, kind),
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.client.call_api(*params, _request_timeout=(10, WATCH_SECONDS + 30))
        if response.status != 200:
            raise ApiException.from_response(http_resp=response, body=response.read().decode(), data=None)
        on_open(response.response)
        try:
            for line in iter_resp_lines(response.response):
                yield json.loads(line)
        finally:
            response.response.release_conn()


class Informer:
    """A cache of one kind on one cluster, kept current by list + watch in its own thread.

    Every change is passed to ``on_change(kind, type, object)`` (ADDED / MODIFIED / DELETED, including those a
    re-list finds) after the cache holds it, from the informer's thread.
    """

    def __init__(self, api: ClusterApi, api_version: str, kind: str, on_change: Callable[[str, str, Obj], None]):
        self.api = api
        self.api_version = api_version
        self.kind = kind
        self.on_change = on_change
        self.synced = threading.Event()
        self.error: BaseException | None = None
        self._objects: dict[Key, Obj] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, name=f"drillsim-{api.name}-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.shutdown()  # unblocks the read the watch thread sits in
        if self._thread.ident is not None:
            self._thread.join(timeout=10)

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._objects.values())

    def get(self, namespace: str | None, name: str) -> Obj | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def _run(self) -> None:
        resource_version = ""
        while not self._stopping.is_set():
            try:
                if not resource_version:
                    resource_version = self._relist()
                resource_version = self._follow(resource_version)
            except ApiException as exc:
                if self._stopping.is_set():
                    return
                if exc.status != 410:
                    self.error = exc
                    self._stopping.wait(1)
                resource_version = ""  # expired or failed: list again
            except Exception as exc:  # a dropped stream: resume from the last version seen
                if self._stopping.is_set():
                    return
                self.error = exc
                self._stopping.wait(0.5)

    def _relist(self) -> str:
        items, resource_version = self.api.list(self.api_version, self.kind)
        fresh = {key_of(o): o for o in items}
        with self._lock:
            gone = [o for k, o in self._objects.items() if k not in fresh]
            old = self._objects
            self._objects = fresh
        for obj in gone:
            self.on_change(self.kind, "DELETED", obj)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None or before["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                self.on_change(self.kind, "MODIFIED" if before else "ADDED", obj)
        self.synced.set()
        return resource_version

    def _follow(self, resource_version: str) -> str:
        for event in self.api.watch(self.api_version, self.kind, resource_version, self._opened):
            kind, obj = event["type"], event["object"]
            if kind == "ERROR":
                raise ApiException(status=obj.get("code") or 500, reason=obj.get("message"))
            resource_version = obj["metadata"]["resourceVersion"]
            if kind == "BOOKMARK":
                continue
            with self._lock:
                if kind == "DELETED":
                    self._objects.pop(key_of(obj), None)
                else:
                    self._objects[key_of(obj)] = obj
            self.on_change(self.kind, kind, obj)
        return resource_version

    def _opened(self, stream: Any) -> None:
        self._stream = stream
        if self._stopping.is_set():
            with contextlib.suppress(Exception):
                stream.shutdown()
