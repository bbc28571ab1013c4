"""The one report model every renderer reads: verdict, summary, findings and the views built from them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditor.history import History
from auditor.model import CheckMeta, Finding, Severity, Status
from auditor.provenance import Provenance
from auditor.timeutil import parse_time, rfc3339

SCHEMA = "drauditor.report/v1"

VERDICT_EXIT_CODES = {"ready": 0, "not-ready": 1, "incomplete": 3}


def verdict_of(findings: list[Finding], fail_on: Severity) -> str:
    """Contract section 3: failures at or above ``fail_on`` first, then anything unevaluated; a finding accepted by
    a waiver or the baseline is reported but decides nothing."""
    judged = [f for f in findings if not f.accepted]
    if any(f.status is Status.FAIL and f.severity.rank >= fail_on.rank for f in judged):
        return "not-ready"
    if any(f.status is Status.ERROR for f in judged):
        return "incomplete"
    return "ready"


def acceptance(finding: Finding) -> str:
    """Why an accepted finding does not count, in one line: ``waived by OWNER until DAY: REASON`` or ``baselined``."""
    if finding.waiver is not None:
        w = finding.waiver
        return f"waived by {w.owner} until {w.expires}: {w.reason}"
    return "baselined" if finding.baselined else ""


@dataclass(frozen=True)
class GateCounts:
    """The numbers a pipeline gates on: failures and errors, how many of them are accepted, and how many are new."""

    fail: int
    error: int
    waived: int  # findings an unexpired waiver covers, whatever their status
    baselined: int  # failing or erroring findings already in the baseline
    new: int  # failing or erroring findings neither waived nor baselined: what the verdict judges

    @classmethod
    def of(cls, findings: list[Finding]) -> GateCounts:
        problems = [f for f in findings if f.status in (Status.FAIL, Status.ERROR)]
        return cls(
            fail=sum(f.status is Status.FAIL for f in problems),
            error=sum(f.status is Status.ERROR for f in problems),
            waived=sum(f.waiver is not None for f in findings),
            baselined=sum(f.baselined for f in findings),
            new=sum(not f.accepted for f in problems),
        )


@dataclass(frozen=True)
class WaiverSource:
    """The waivers file an audit applied, or that ``--no-waivers`` told it to ignore."""

    file: str | None  # None: --no-waivers with no file configured
    sha256: str | None  # None when the file was not read (disabled)
    disabled: bool
    count: int  # waivers in the file (0 when disabled)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "disabled": self.disabled, "count": self.count}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WaiverSource:
        return cls(data["file"], data["sha256"], data["disabled"], data["count"])


@dataclass(frozen=True)
class BaselineSource:
    """The baseline an audit compared its failures with (written by an earlier ``--write-baseline``)."""

    file: str
    sha256: str
    generated_at: datetime  # of the report the baseline was written from
    count: int  # finding identities in it

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "generated_at": rfc3339(self.generated_at),
            "count": self.count,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BaselineSource:
        return cls(data["file"], data["sha256"], parse_time(data["generated_at"]), data["count"])


@dataclass(frozen=True)
class Gating:
    """What besides the findings went into the verdict: accepted risks (waivers) and known failures (baseline)."""

    waivers: WaiverSource | None = None
    baseline: BaselineSource | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "waivers": self.waivers.to_json() if self.waivers else None,
            "baseline": self.baseline.to_json() if self.baseline else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Gating:
        waivers, baseline = data.get("waivers"), data.get("baseline")
        return cls(
            waivers=WaiverSource.from_json(waivers) if waivers else None,
            baseline=BaselineSource.from_json(baseline) if baseline else None,
        )


@dataclass(frozen=True)
class Scope:
    hub: str
    clusters: tuple[str, ...]
    source: str  # "snapshot" | "live"
    origin: str  # the snapshot directory or the API endpoints read


@dataclass
class Report:
    generated_at: datetime
    tool_version: str
    scope: Scope
    now: datetime
    now_source: str
    captured_at: datetime | None
    fail_on: Severity
    checks: list[CheckMeta]
    findings: list[Finding]
    thresholds: dict[str, Any]
    evidence_source: str | None
    input_digests: dict[str, str] = field(default_factory=dict)
    provenance: Provenance | None = None  # None only in a report.json written before provenance was recorded
    gating: Gating | None = None  # None only in a report.json written before waivers and baselines existed
    history: History | None = None  # earlier audits and drill RTOs; None when no evidence store was given

    @property
    def verdict(self) -> str:
        return verdict_of(self.findings, self.fail_on)

    @property
    def exit_code(self) -> int:
        return VERDICT_EXIT_CODES[self.verdict]

    @property
    def gate_counts(self) -> GateCounts:
        return GateCounts.of(self.findings)

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(f.status.value for f in self.findings)
        return {status.value: counts.get(status.value, 0) for status in Status}

    def findings_by_check(self) -> list[tuple[CheckMeta, list[Finding]]]:
        """Checks in catalogue order with their findings, worst first; load failures appear as their own group."""
        known = {meta.id for meta in self.checks}
        groups: list[tuple[CheckMeta, list[Finding]]] = []
        for meta in self.checks:
            mine = [f for f in self.findings if f.check_id == meta.id]
            groups.append((meta, sorted(mine, key=_worst_first)))
        for check_id in sorted({f.check_id for f in self.findings} - known):
            mine = [f for f in self.findings if f.check_id == check_id]
            placeholder = CheckMeta(check_id, mine[0].title, mine[0].severity, "", "", "", ())
            groups.append((placeholder, mine))
        return groups

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "generated_at": rfc3339(self.generated_at),
            "tool": {"name": "drauditor", "version": self.tool_version},
            "scope": {
                "hub": self.scope.hub,
                "clusters": list(self.scope.clusters),
                "source": self.scope.source,
                "origin": self.scope.origin,
            },
            "verdict": self.verdict,
            "fail_on": self.fail_on.value,
            "now": rfc3339(self.now),
            "now_source": self.now_source,
            "captured_at": rfc3339(self.captured_at) if self.captured_at else None,
            "thresholds": self.thresholds,
            "evidence_source": self.evidence_source,
            "summary": self.summary,
            "checks": [
                {
                    "id": m.id,
                    "title": m.title,
                    "severity": m.severity.value,
                    "description": m.description,
                    "rationale": m.rationale,
                    "remediation": m.remediation,
                    "kinds_read": list(m.kinds_read),
                }
                for m in self.checks
            ],
            "findings": [f.to_dict() for f in self.findings],
            "inputs": self.input_digests,
            **({"provenance": self.provenance.to_json()} if self.provenance else {}),
            **({"gating": self.gating.to_json()} if self.gating else {}),
            **({"history": self.history.to_json()} if self.history else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        """The report as report.json holds it: what every other format is rendered from."""
        scope = data["scope"]
        captured_at = data.get("captured_at")
        return cls(
            generated_at=parse_time(data["generated_at"]),
            tool_version=data["tool"]["version"],
            scope=Scope(scope["hub"], tuple(scope["clusters"]), scope["source"], scope.get("origin", "")),
            now=parse_time(data["now"]),
            now_source=data["now_source"],
            captured_at=parse_time(captured_at) if captured_at else None,
            fail_on=Severity(data["fail_on"]),
            checks=[
                CheckMeta(
                    c["id"],
                    c["title"],
                    Severity(c["severity"]),
                    c["description"],
                    c["rationale"],
                    c["remediation"],
                    tuple(c["kinds_read"]),
                )
                for c in data["checks"]
            ],
            findings=[Finding.from_dict(f) for f in data["findings"]],
            thresholds=data["thresholds"],
            evidence_source=data.get("evidence_source"),
            input_digests=data.get("inputs") or {},
            provenance=Provenance.from_json(data["provenance"]) if data.get("provenance") else None,
            gating=Gating.from_json(data["gating"]) if data.get("gating") else None,
            history=History.from_json(data["history"]) if data.get("history") else None,
        )


_STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.SKIP: 3, Status.PASS: 4}


def _worst_first(finding: Finding) -> tuple[int, int, str, str]:
    resource = finding.resource.display() if finding.resource else ""
    return (_STATUS_ORDER[finding.status], -finding.severity.rank, finding.cluster or "", resource)
