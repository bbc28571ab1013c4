"""Check discovery through the ``drauditor.checks`` entry-point group.

Built-in checks use exactly the path a third-party pack uses, so a pack is a first-class citizen.
The entry-point name is the check id; the value is a module exposing ``META`` and ``run``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points

from auditor.context import AuditContext
from auditor.model import CheckMeta, Finding

GROUP = "drauditor.checks"


@dataclass(frozen=True)
class Check:
    meta: CheckMeta
    run: Callable[[AuditContext], Iterable[Finding]]
    module: str


@dataclass(frozen=True)
class LoadFailure:
    """A check that could not be loaded; the runner reports it as an error finding."""

    check_id: str
    module: str
    reason: str


def load_module(check_id: str, module_name: str) -> Check:
    module = import_module(module_name)
    meta = getattr(module, "META", None)
    run = getattr(module, "run", None)
    if not isinstance(meta, CheckMeta):
        raise TypeError(f"{module_name} has no META of type CheckMeta")
    if not callable(run):
        raise TypeError(f"{module_name} has no run(context) function")
    if meta.id != check_id:
        raise ValueError(f"{module_name}: META.id {meta.id!r} differs from its entry-point name {check_id!r}")
    for name in ("title", "description", "rationale", "remediation"):
        if not getattr(meta, name).strip():
            raise ValueError(f"{module_name}: META.{name} is empty")
    return Check(meta=meta, run=run, module=module_name)


def discover() -> tuple[list[Check], list[LoadFailure]]:
    checks: dict[str, Check] = {}
    failures: list[LoadFailure] = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in checks:
            failures.append(
                LoadFailure(ep.name, ep.value, f"duplicate check id (already from {checks[ep.name].module})")
            )
            continue
        try:
            checks[ep.name] = load_module(ep.name, ep.value)
        except Exception as exc:  # a broken pack must surface as a finding, never abort the audit
            failures.append(LoadFailure(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
    return list(checks.values()), failures
