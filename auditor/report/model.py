"""The one report model every renderer reads: verdict, summary, findings and the views built from them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditor.model import CheckMeta, Finding, Severity, Status
from auditor.provenance import Provenance
from auditor.timeutil import parse_time, rfc3339

SCHEMA = "drauditor.report/v1"

VERDICT_EXIT_CODES = {"ready": 0, "not-ready": 1, "incomplete": 3}


def verdict_of(findings: list[Finding], fail_on: Severity) -> str:
    """Contract section 3: failures at or above ``fail_on`` first, then anything unevaluated."""
    if any(f.status is Status.FAIL and f.severity.rank >= fail_on.rank for f in findings):
        return "not-ready"
    if any(f.status is Status.ERROR for f in findings):
        return "incomplete"
    return "ready"


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

    @property
    def verdict(self) -> str:
        return verdict_of(self.findings, self.fail_on)

    @property
    def exit_code(self) -> int:
        return VERDICT_EXIT_CODES[self.verdict]

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
        )


_STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.SKIP: 3, Status.PASS: 4}


def _worst_first(finding: Finding) -> tuple[int, int, str, str]:
    resource = finding.resource.display() if finding.resource else ""
    return (_STATUS_ORDER[finding.status], -finding.severity.rank, finding.cluster or "", resource)
