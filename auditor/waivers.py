"""Waivers: accepted risks written down with a reason, an owner and an expiry date.

A waived finding keeps its status and stays in every format, marked with the waiver; it only stops deciding the
verdict. Waivers rot, so the file is audited too: each waiver gets a finding under the reserved check id
``waivers`` — PASS while it waives something, WARN once it has expired (it then waives nothing, and the findings
it covered fail the gate again) or when it matches nothing that is not passing (the risk is gone, or its globs are
wrong). The file format is in docs/contract.md section 6.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter, field_validator

from auditor import located
from auditor.model import CheckMeta, Finding, Severity, Status, WaiverMark
from auditor.provenance import file_sha256

RESERVED_ID = "waivers"
# Passing and skipped findings carry no risk to accept; a waiver matching only those is stale.
WAIVABLE = (Status.FAIL, Status.ERROR, Status.WARN)
MAX_LISTED = 50  # findings named in one waiver's evidence

META = CheckMeta(
    RESERVED_ID,
    "Waivers are current and in use",
    Severity.LOW,
    "Each waiver in the waivers file is in date and matches at least one finding that is not passing.",
    "A waiver is an accepted risk with an owner and an end date. An expired waiver no longer hides its findings, and "
    "one that matches nothing hides a risk nobody is looking at any more, or was written for the wrong resource.",
    "Renew an expired waiver only with a new decision from its owner (a new expires date), or fix what it covered. "
    "Remove a waiver that matches nothing, or correct its check, cluster, namespace, name and kind globs.",
    (),
)

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class Waiver(BaseModel):
    """One accepted risk. Globs are fnmatch patterns, matched case-sensitively as Kubernetes names are."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    check: _Text
    cluster: _Text = "*"
    namespace: _Text = "*"
    name: _Text = "*"
    kind: _Text | None = None
    reason: _Text
    owner: _Text
    expires: date = Field(description="the last day (UTC) the waiver holds")

    @field_validator("expires", mode="before")
    @classmethod
    def _day(cls, value: Any) -> date:
        """A calendar day written YYYY-MM-DD, nothing YAML or pydantic would otherwise coerce (numbers, timestamps)."""
        if not isinstance(value, str) or not _DAY.fullmatch(value):
            raise ValueError("expected a date written YYYY-MM-DD")
        return date.fromisoformat(value)

    def matches(self, finding: Finding) -> bool:
        ref = finding.resource
        return (
            fnmatchcase(finding.check_id, self.check)
            and fnmatchcase(finding.cluster or "", self.cluster)
            and fnmatchcase((ref.namespace or "") if ref else "", self.namespace)
            and fnmatchcase(ref.name if ref else "", self.name)
            and (self.kind is None or (ref is not None and fnmatchcase(ref.kind, self.kind)))
        )


_FILE = TypeAdapter(Annotated[list[Waiver], BeforeValidator(lambda value: [] if value is None else value)])


@dataclass(frozen=True)
class Entry:
    waiver: Waiver
    line: int

    def mark(self) -> WaiverMark:
        w = self.waiver
        return WaiverMark(reason=w.reason, owner=w.owner, expires=w.expires.isoformat(), line=self.line)


@dataclass(frozen=True)
class WaiverFile:
    path: Path
    sha256: str
    entries: tuple[Entry, ...]


def load_waivers(path: Path) -> WaiverFile:
    """The waivers in ``path`` (a YAML list; empty is none); InputError naming the file and line otherwise."""
    doc = located.load(Path(path), _FILE, "waiver")
    entries = tuple(Entry(waiver, doc.line((index,)) or 1) for index, waiver in enumerate(doc.value))
    return WaiverFile(Path(path), file_sha256(path), entries)


def expired(waiver: Waiver, now: datetime) -> bool:
    """A waiver holds through its expiry day, judged on the audit's clock (the snapshot's capture day, in UTC)."""
    return now.astimezone(UTC).date() > waiver.expires


def apply_waivers(findings: Iterable[Finding], waivers: WaiverFile, now: datetime) -> list[Finding]:
    """``findings`` with the first unexpired matching waiver (in file order) marked on each waivable one, followed by
    one ``waivers`` finding per waiver saying whether it is in date and in use."""
    matched: list[list[Finding]] = [[] for _ in waivers.entries]
    marked = []
    for finding in findings:
        chosen = None
        if finding.status in WAIVABLE:
            for entry, covered in zip(waivers.entries, matched, strict=True):
                if entry.waiver.matches(finding):
                    covered.append(finding)
                    if chosen is None and not expired(entry.waiver, now):
                        chosen = entry
        marked.append(replace(finding, waiver=chosen.mark()) if chosen else finding)
    review = [
        _review(entry, covered, waivers.path, now) for entry, covered in zip(waivers.entries, matched, strict=True)
    ]
    return marked + review


def _review(entry: Entry, covered: list[Finding], path: Path, now: datetime) -> Finding:
    w = entry.waiver
    where = f"{path}:{entry.line}"
    target = f"{w.check} on cluster {w.cluster}, namespace {w.namespace}, name {w.name}" + (
        f", kind {w.kind}" if w.kind else ""
    )
    count = f"{len(covered):,} {'finding' if len(covered) == 1 else 'findings'}"
    evidence = {
        "file": str(path),
        "line": entry.line,
        **w.model_dump(mode="json"),
        "matched": len(covered),
        "findings": [_describe(f) for f in covered[:MAX_LISTED]],
    }
    if expired(w, now):
        status = Status.WARN
        message = (
            f"Waiver {where} ({target}) expired on {w.expires.isoformat()} and no longer waives anything: it matches "
            f"{count}, judged without it again (owner {w.owner}; reason: {w.reason})."
        )
    elif not covered:
        status = Status.WARN
        message = (
            f"Waiver {where} ({target}) matches no finding that is not passing: the risk it accepts is gone or its "
            f"globs are wrong (owner {w.owner}; reason: {w.reason})."
        )
    else:
        status = Status.PASS
        message = (
            f"Waiver {where} ({target}) covers {count} until {w.expires.isoformat()} (owner {w.owner}): {w.reason}."
        )
    return META.finding(status, message, evidence=evidence)


def _describe(finding: Finding) -> str:
    where = f"{finding.cluster}: " if finding.cluster else ""
    what = finding.resource.display() if finding.resource else finding.title
    return f"{finding.check_id} {finding.status.value}: {where}{what}"
