"""Ceph through the rook-ceph-tools pod (ODF internal mode): the same `ceph` commands, run by the Kubernetes exec API.

A Transport for auditor.ceph_source.CephCli. Exec is a `create` on pods/exec, so it needs the separate role in
deploy/rbac/ceph-tools-exec.yaml, not only the read-only auditor role.
"""

from __future__ import annotations

import json

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from websocket import WebSocketException

from auditor.ceph_source import CephCommandError, Completed

DEFAULT_NAMESPACE = "openshift-storage"
DEFAULT_SELECTOR = "app=rook-ceph-tools"


class ToolsPod:
    """Runs each command in the first Running pod matching ``selector`` (looked up once, on first use)."""

    def __init__(
        self, api: ApiClient, cluster: str, namespace: str = DEFAULT_NAMESPACE, selector: str = DEFAULT_SELECTOR
    ) -> None:
        self.core = CoreV1Api(api)
        self.cluster = cluster
        self.namespace = namespace
        self.selector = selector
        self._pod: str | None = None

    def pod(self) -> str:
        if self._pod is None:
            try:
                pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
            except ApiException as exc:
                raise CephCommandError(
                    f"cannot list pods {self.selector} in {self.namespace} on {self.cluster}: HTTP {exc.status} "
                    f"{exc.reason}"
                ) from exc
            running = sorted(p.metadata.name for p in pods if p.status and p.status.phase == "Running")
            if not running:
                raise CephCommandError(
                    f"no Running pod labelled {self.selector} in namespace {self.namespace} on {self.cluster}"
                )
            self._pod = running[0]
        return self._pod

    def __call__(self, argv: list[str], timeout: float) -> Completed:
        pod = self.pod()
        where = f"pod {self.namespace}/{pod} on {self.cluster}"
        try:
            session = stream(
                self.core.connect_get_namespaced_pod_exec,
                pod,
                self.namespace,
                command=argv,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
                _request_timeout=timeout,
            )
            session.run_forever(timeout=timeout)
            if session.is_open():
                session.close()
                raise CephCommandError(f"did not answer within {timeout:g} s in {where}")
            return Completed(session.returncode or 0, session.read_stdout(), session.read_stderr())
        except ApiException as exc:
            raise CephCommandError(f"exec in {where} was refused: {_reason(exc)}") from exc
        except (WebSocketException, OSError) as exc:
            raise CephCommandError(f"exec in {where} failed: {type(exc).__name__}: {exc}") from exc


def _reason(exc: ApiException) -> str:
    """The apiserver's Status message; a refused websocket handshake carries it inside the exception text."""
    text = exc.body if isinstance(exc.body, str) and exc.body else str(exc.reason or "")
    start = text.find('{"kind":"Status"')
    if start >= 0:
        try:
            status, _ = json.JSONDecoder().raw_decode(text[start:])
            return f"HTTP {status.get('code', exc.status)}: {status.get('message', '')}"
        except ValueError:
            pass
    return f"HTTP {exc.status}: {text.strip().splitlines()[-1][:300] if text.strip() else 'no reason given'}"
