"""Kubernetes label-selector semantics, as Ramen applies them to pick the PVCs a VRG protects."""

from __future__ import annotations

from typing import Any


def matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """True when ``labels`` satisfy ``selector`` (matchLabels AND every matchExpression).

    An empty selector matches everything, a missing one (None) matches nothing, as in
    metav1.LabelSelectorAsSelector.
    """
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression_holds(expr, labels) for expr in selector.get("matchExpressions") or [])


def _expression_holds(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown label selector operator {operator!r}")


def mismatches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> list[str]:
    """Human-readable reasons why ``labels`` fail ``selector``; empty when they match."""
    if selector is None:
        return ["no selector is set"]
    labels = labels or {}
    reasons = [
        f"label {key}={value} expected, found {key}={labels[key]}" if key in labels else f"label {key}={value} missing"
        for key, value in (selector.get("matchLabels") or {}).items()
        if labels.get(key) != value
    ]
    reasons += [
        f"expression {expr.get('key')} {expr.get('operator')} {expr.get('values') or []} not satisfied"
        for expr in selector.get("matchExpressions") or []
        if not _expression_holds(expr, labels)
    ]
    return reasons
