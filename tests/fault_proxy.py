"""A fault-injecting reverse proxy for the tests: a test double in front of a REAL kube-apiserver (the lab's).

Everything it does not fault is forwarded unchanged to the real apiserver over HTTPS, verified with the CA the
kubeconfig names, and the caller's Authorization header goes through as is: RBAC, paging and continue tokens are
the real server's. Only the faults are made up, so a test can produce on demand what a loaded production
apiserver does now and then (a 500, a 429 with Retry-After, an expired continue token, a slow answer, a dropped
connection) and see how the live reader copes with it against otherwise real answers.

Watches (``?watch=1``) are relayed chunk by chunk as the apiserver sends them, so a client's watch through the
proxy sees events when they happen. ``sever()`` cuts the cluster off as a network partition would: open streams
are reset and every new request too, until ``heal()``.

The proxy listens on plain HTTP on 127.0.0.1 (the official client accepts an ``http://`` server with a bearer
token), so ``kubeconfig()`` just points one cluster of a kubeconfig at it. Standard library only.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import re
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

Query = dict[str, list[str]]
# Headers that belong to one connection, not to the request or response, so they are not passed on.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


def has_continue(query: Query) -> bool:
    """A query predicate: the request carries a ``continue`` token (a page after the first of a list)."""
    return bool(query.get("continue"))


@dataclass
class Rule:
    """A fault for the requests whose method and whole path match, and whose query satisfies ``query``.

    Actions, applied in this order: wait ``delay`` seconds; then close the connection without an answer
    (``reset``), or answer ``status`` with a Kubernetes Status body and ``headers``, or (neither) forward.
    """

    path: str  # a regular expression the whole request path must match
    method: str = "GET"
    query: Callable[[Query], bool] = lambda _query: True
    times: int | None = 1  # how many matching requests it hits; None: every one
    status: int | None = None
    message: str = "injected by the test fault proxy"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    hits: int = 0

    def __post_init__(self) -> None:
        if self.reset and self.status is not None:
            raise ValueError("a rule either resets the connection or answers a status, not both")

    def matches(self, method: str, path: str, query: Query) -> bool:
        return (
            (self.times is None or self.hits < self.times)
            and method == self.method
            and re.fullmatch(self.path, path) is not None
            and self.query(query)
        )

    def describe(self) -> str:
        action = "reset" if self.reset else f"status {self.status}" if self.status is not None else "forward"
        return f"delay {self.delay:g} s, {action}" if self.delay else action


@dataclass(frozen=True)
class Seen:
    """One request the proxy received and what it did with it."""

    method: str
    path: str
    query: Query
    status: int | None  # the status answered or forwarded; None when the connection was reset
    fault: str | None  # the rule applied (Rule.describe()), None when forwarded untouched
    delivered: bool  # False: no answer reached the client (reset, or it hung up while the proxy waited)
    at: float  # time.monotonic() when the request arrived


# metav1.StatusReason the apiserver gives with these codes (k8s.io/apimachinery/pkg/apis/meta/v1/types.go).
_REASONS = {410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def status_body(code: int, message: str) -> bytes:
    """A Kubernetes ``Status`` failure, as an apiserver sends it with any error."""
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    return json.dumps({**status, "reason": _REASONS.get(code, ""), "code": code}).encode()


class FaultProxy:
    """``with FaultProxy.from_kubeconfig(path, "prod-east") as proxy: proxy.add(Rule(...))``."""

    def __init__(self, upstream: str, ca_pem: str) -> None:
        target = urlsplit(upstream)
        if target.scheme != "https" or not target.hostname:
            raise ValueError(f"the upstream must be an https:// apiserver URL, not {upstream!r}")
        self.upstream_host, self.upstream_port = target.hostname, target.port or 443
        self.tls = ssl.create_default_context(cadata=ca_pem)
        self.rules: list[Rule] = []
        self._seen: list[Seen] = []
        self._in_flight = 0
        self._severed = False
        # The watches being relayed: (client connection, upstream connection), both cut by sever().
        self._streams: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True  # keep-alive connections and delayed answers must not block stop()
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path, cluster: str) -> FaultProxy:
        """A proxy in front of ``cluster`` (a kubeconfig cluster entry) that trusts that entry's CA."""
        entry = _cluster_entry(yaml.safe_load(kubeconfig.read_text()), cluster)
        ca = base64.b64decode(entry["certificate-authority-data"]).decode()
        return cls(entry["server"], ca)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def sever(self) -> None:
        """The cluster becomes unreachable: open watch streams are reset, and every request until ``heal()``."""
        with self._lock:
            self._severed = True
            streams = list(self._streams)
        for client, upstream in streams:
            _reset_socket(client)
            _reset_socket(upstream)

    def heal(self) -> None:
        with self._lock:
            self._severed = False

    def reset(self) -> None:
        """Forgets every rule and every request seen (between tests sharing one proxy)."""
        with self._lock:
            self.rules.clear()
            self._seen.clear()

    def seen(self, path: str | None = None) -> list[Seen]:
        """The requests received, by arrival; only those whose path fully matches ``path`` if given.

        Waits (up to 30 s) for the requests still being handled: a delayed answer is recorded only once it is
        given, which may be long after the client gave up on it.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: self._in_flight == 0, timeout=30):
                raise TimeoutError(f"the fault proxy still handles {self._in_flight} request(s) after 30 s")
            matching = [s for s in self._seen if path is None or re.fullmatch(path, s.path)]
        return sorted(matching, key=lambda s: s.at)

    def kubeconfig(self, source: Path, cluster: str, path: Path) -> Path:
        """A copy of ``source`` whose ``cluster`` entry points at this proxy (plain HTTP, so no CA)."""
        config = yaml.safe_load(source.read_text())
        entry = _cluster_entry(config, cluster)
        entry.pop("certificate-authority-data", None)
        entry.pop("certificate-authority", None)
        entry["server"] = self.url
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def _take(self, method: str, path: str, query: Query) -> Rule | None:
        with self._lock:
            self._in_flight += 1
            if self._severed:
                return Rule(path=".*", method=method, reset=True, hits=1)
            rule = next((r for r in self.rules if r.matches(method, path, query)), None)
            if rule is not None:
                rule.hits += 1
            return rule

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)
            self._in_flight -= 1
            self._lock.notify_all()


def _reset_socket(connection: socket.socket) -> None:
    """Closes with a TCP RST (linger 0), as a crashing server or a dropping load balancer does."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()


def _cluster_entry(config: dict, cluster: str) -> dict:
    for entry in config.get("clusters") or []:
        if entry["name"] == cluster:
            return entry["cluster"]
    raise KeyError(f"the kubeconfig has no cluster named {cluster!r}")


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the official client expects of an apiserver

        def handle_any(self) -> None:
            arrived = time.monotonic()
            split = urlsplit(self.path)
            query = parse_qs(split.query, keep_blank_values=True)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rule = proxy._take(self.command, split.path, query)
            status: int | None = None
            delivered = False
            try:
                if rule is not None and rule.delay:
                    time.sleep(rule.delay)
                if rule is not None and rule.reset:
                    self._reset()
                elif rule is not None and rule.status is not None:
                    status = rule.status
                    delivered = self._answer(status, rule.headers, status_body(status, rule.message))
                elif query.get("watch", [""])[0] in ("1", "true"):
                    status, delivered = self._relay(body)
                else:
                    status, headers, payload = self._forward(body)
                    delivered = self._answer(status, headers, payload)
            finally:  # recorded even when the client vanished mid-answer, so seen() never waits in vain
                fault = rule.describe() if rule is not None else None
                proxy._record(Seen(self.command, split.path, query, status, fault, delivered, arrived))

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream = http.client.HTTPSConnection(
                proxy.upstream_host, proxy.upstream_port, context=proxy.tls, timeout=60
            )
            try:
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
                return response.status, kept, payload
            except (OSError, http.client.HTTPException) as exc:  # what a real gateway says then
                return 502, {}, status_body(502, f"fault proxy: the upstream apiserver failed: {exc}")
            finally:
                upstream.close()

        def _relay(self, body: bytes) -> tuple[int, bool]:
            """A watch: the upstream's chunks are passed on as they arrive, until either side ends the stream."""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream = http.client.HTTPSConnection(
                proxy.upstream_host, proxy.upstream_port, context=proxy.tls, timeout=3600
            )
            stream: tuple[socket.socket, socket.socket] | None = None
            try:
                upstream.connect()
                stream = (self.connection, upstream.sock)
                with proxy._lock:
                    proxy._streams.add(stream)
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while chunk := response.read1(65536):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                return response.status, True
            except (OSError, http.client.HTTPException):  # severed, or either side hung up
                self.close_connection = True
                return 0, False
            finally:
                if stream is not None:
                    with proxy._lock:
                        proxy._streams.discard(stream)
                upstream.close()

        def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> bool:
            """Sends the answer unless the client has hung up (e.g. after its read timeout); says if it did."""
            if self._client_gone():
                self.close_connection = True
                return False
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if not any(k.lower() == "content-type" for k in headers):
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return True

        def _client_gone(self) -> bool:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            try:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _reset(self) -> None:
            _reset_socket(self.connection)
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            """Silent: the requests are recorded in ``proxy.seen()`` instead."""

    return Handler
