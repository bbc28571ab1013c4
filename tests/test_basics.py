"""Label selectors and Kubernetes/Go time formats, as Ramen and the apiserver define them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from auditor.selectors import matches, mismatches
from auditor.timeutil import parse_go_duration, parse_time


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        (None, {"a": "b"}, False),
        ({"matchLabels": {"app": "vm"}}, {"app": "vm", "x": "y"}, True),
        ({"matchLabels": {"app": "vm"}}, {"app": "other"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "web"]}]}, {"tier": "db"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "x"}, False),
    ],
)
def test_selector_semantics(selector, labels, expected) -> None:
    assert matches(selector, labels) is expected
    assert (mismatches(selector, labels) == []) is expected


def test_mismatch_reasons_name_the_label() -> None:
    assert mismatches({"matchLabels": {"appname": "billing"}}, {"appname": "scratch"}) == [
        "label appname=billing expected, found appname=scratch"
    ]


def test_unknown_operator_is_an_error() -> None:
    with pytest.raises(ValueError, match="Sometimes"):
        matches({"matchExpressions": [{"key": "a", "operator": "Sometimes"}]}, {})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("4m12s", 252),
        ("1h0m0.5s", 3600.5),
        ("250ms", 0.25),
        ("0", 0),
        ("-1m", -60),
        ("bogus", None),
        ("", None),
        ("5m3", None),
    ],
)
def test_go_durations(text, seconds) -> None:
    parsed = parse_go_duration(text)
    assert (parsed.total_seconds() if parsed is not None else None) == seconds


def test_times() -> None:
    assert parse_time("2026-10-30T14:02:11Z").utcoffset() == timedelta(0)
    assert parse_time("not a time") is None
    assert parse_time(None) is None
