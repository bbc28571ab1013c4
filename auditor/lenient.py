"""Reading untyped JSON leniently: a value of the wrong type counts as absent instead of breaking a report.

Evidence records and report.json files outlive the code that wrote them (older versions, hand-made imports), and an
auditor must still get a report from them; the report says what is unknown rather than failing.
"""

from __future__ import annotations

from typing import Any


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list | tuple) else []
