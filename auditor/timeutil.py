"""Timestamps and durations exactly as Kubernetes and Ramen serialize them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# DRPolicy spec.schedulingInterval: Ramen's CRD pattern ^(|\d+[mhd])$, where empty means synchronous (Metro).
_SCHEDULING_INTERVAL = re.compile(r"(\d+)([mhd])")
_SCHEDULING_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (metav1.Time) as an aware datetime; None when absent or unparsable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_go_duration(value: object) -> timedelta | None:
    """A Go time.Duration string (metav1.Duration, e.g. ``1m30.5s``); None when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    if text == "0":
        return timedelta(0)
    parts = _GO_DURATION_PART.findall(text)
    if not parts or "".join(num + unit for num, unit in parts) != text:
        return None
    return timedelta(seconds=sign * sum(float(num) * _UNIT_SECONDS[unit] for num, unit in parts))


def parse_scheduling_interval(value: object) -> timedelta | None:
    """A Ramen scheduling interval (``5m``, ``1h``, ``1d``); None when empty (Metro), zero or not of that form."""
    match = _SCHEDULING_INTERVAL.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    return int(match.group(1)) * _SCHEDULING_UNIT[match.group(2)] or None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def human_age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in the future"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {rest % 60}s"
