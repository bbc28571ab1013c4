"""Requests to a Kubernetes apiserver with retries: the one implementation the live reader and the drill API share.

A loaded apiserver answers 429 or 5xx now and then, and connections drop or time out; each is worth another attempt
after a pause that doubles per attempt, or after the pause the server asks for (Retry-After). Any other answer (2xx,
a final 4xx) is returned as it is. Every attempt is counted, so a run can say how many requests it made.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse


@dataclass
class RequestStats:
    """Requests made, shared by the reader threads (hence the lock)."""

    requests: int = 0
    retries: int = 0
    by_cluster: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, cluster: str, *, retry: bool = False) -> None:
        with self._lock:
            if retry:
                self.retries += 1
            else:
                self.requests += 1
                self.by_cluster[cluster] = self.by_cluster.get(cluster, 0) + 1


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # per request, for 429, 5xx and connection failures
    backoff_seconds: float = 0.5  # first retry delay; doubles per attempt
    max_backoff_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep  # between retries; tests inject a recorder


@dataclass(frozen=True)
class Reply:
    """The answer that ended the retries: a 2xx or a final 4xx (or, in RetriesExhausted, the last 429/5xx)."""

    status: int
    body: bytes  # empty for an open stream: read it from ``response.response``
    response: RESTResponse
    # An earlier attempt got no answer or a 5xx (etcd timing out after the commit): a write it carried may have been
    # applied, so a retried create can meet its own object (409).
    maybe_applied_before: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        """The Status reason (``NotFound``, ``AlreadyExists``, ...) or the HTTP reason phrase."""
        return str(_status_field(self.body, "reason") or self.response.reason or "")

    @property
    def message(self) -> str:
        """What the server said: the Status message, else the start of the body, else the HTTP reason phrase."""
        return str(_status_field(self.body, "message") or self.response.reason or "")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}


class RetriesExhausted(Exception):
    """Every attempt failed; ``last`` is the final 429/5xx answer, or None when the last attempt got no answer."""

    def __init__(self, attempts: int, description: str, last: Reply | None) -> None:
        super().__init__(f"{attempts} attempts failed, the last with {description}")
        self.last = last


def send(
    api: ApiClient,
    cluster: str,
    stats: RequestStats,
    policy: RetryPolicy,
    method: str,
    path: str,
    *,
    timeout: tuple[float, float],
    query: list[tuple[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
    stream: bool = False,
) -> Reply:
    """One request, retried on 429, 5xx and connection failures; raises RetriesExhausted when no attempt succeeds.

    ``stream``: a 2xx body is left unread for the caller to consume as it arrives (a watch); otherwise reading the
    body is part of the attempt, so a connection dropped mid-body is retried like one dropped before the answer.
    """
    description = ""
    last: Reply | None = None
    maybe_applied = False
    for attempt in range(policy.attempts):
        params = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json", **(headers or {})},
            body=body,
            auth_settings=["BearerToken"],
        )
        stats.count(cluster)
        delay = policy.backoff_seconds * 2**attempt
        try:
            response = api.call_api(*params, _request_timeout=timeout)
            opened = stream and 200 <= response.status < 300
            reply = Reply(response.status, b"" if opened else response.read(), response, maybe_applied)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            description, last, maybe_applied = f"{type(exc).__name__}: {exc}", None, True
        except ApiException as exc:
            if exc.status != 0:  # the client wraps only TLS failures (status 0); anything else is not ours
                raise
            description, last, maybe_applied = f"TLS failure: {exc.reason}", None, True
        else:
            if reply.status != 429 and reply.status < 500:
                return reply
            description, last = f"HTTP {reply.status}: {reply.message}", reply
            maybe_applied = maybe_applied or reply.status >= 500
            delay = _retry_after(response.getheader("Retry-After")) or delay
        if attempt + 1 < policy.attempts:
            stats.count(cluster, retry=True)
            policy.sleep(min(delay, policy.max_backoff_seconds))
    raise RetriesExhausted(policy.attempts, description, last)


def _status_field(body: bytes, name: str) -> Any:
    """A field of the Kubernetes Status an error answer carries; for ``message``, the raw body if it is not one."""
    try:
        return json.loads(body).get(name)
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace") if name == "message" else None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff
