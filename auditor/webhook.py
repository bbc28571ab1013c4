"""The optional notification of a scheduled run: one POST of its summary JSON (docs/contract.md section 5).

Nothing about it may stop the schedule or leak what authenticates it: a failure is an exception the scheduler
records, and logs and provenance only ever show the URL's scheme, host and port, never its path or query (a chat
webhook's path is its secret) nor a header value.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor import __version__
from auditor.timeutil import rfc3339

SCHEMA = "drauditor.run-summary/v1"
HIDDEN = "[redacted]"  # the marker auditor.provenance uses, for the parts of a URL that may be its secret


class WebhookError(Exception):
    """The POST did not reach the receiver or was not accepted; the message holds no secret."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not an instruction: following it would send the headers to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def public_url(url: str) -> str:
    """``url`` with any path or query hidden, for logs and provenance."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return origin if parts.path in ("", "/") and not parts.query else f"{origin}/{HIDDEN}"


def check_url(url: str) -> str:
    """``url`` when it is an absolute http(s) URL with a host; ValueError otherwise (a config error)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{public_url(url)} is not an http:// or https:// URL with a host")
    return url


def summary(
    *,
    job: str,
    report_folder: Path,
    generated_at: datetime,
    verdict: str | None = None,
    counts: dict[str, int] | None = None,
    hub: str | None = None,
    error: str | None = None,
    drill: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON a run posts: a completed run's verdict and counts, or a failed run's error; a drill run's also
    carries ``drill`` (what it measured), which an audit run's payload does not have."""
    payload = {
        "schema": SCHEMA,
        "job": job,
        "run": "failed" if error is not None else "completed",
        "verdict": verdict,
        "summary": counts,
        "hub": hub,
        "error": error,
        "report_folder": str(report_folder),
        "generated_at": rfc3339(generated_at),
        "tool": {"name": "drauditor", "version": __version__},
    }
    return payload if drill is None else {**payload, "drill": drill}


def post(url: str, payload: dict[str, Any], headers: Mapping[str, str], timeout: float) -> int:
    """POSTs ``payload`` as JSON and returns the HTTP status; WebhookError unless the receiver answers 2xx."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, sort_keys=True).encode("utf-8"),
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    where = public_url(url)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"POST {where} was answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:  # refused, unresolvable, timed out
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise WebhookError(f"POST {where} failed: {reason}") from None
