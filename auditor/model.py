"""The result vocabulary every check, renderer and exit policy shares.

One model for all outputs, so the terminal, JSON, JUnit, HTML and PDF can never disagree
(a lesson from scanners whose console and SARIF told different stories).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"  # could not be evaluated: never the same as fail, never silently dropped
    SKIP = "skip"  # not applicable to this estate


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class ResourceRef:
    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ResourceRef:
        meta = obj.get("metadata") or {}
        return cls(obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("name", ""), meta.get("namespace"))

    def display(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResourceRef:
        return cls(data["apiVersion"], data["kind"], data["name"], data.get("namespace"))


@dataclass(frozen=True)
class CheckMeta:
    """What an auditor needs to judge a check without reading its code."""

    id: str
    title: str
    severity: Severity
    description: str
    rationale: str
    remediation: str
    kinds_read: tuple[str, ...]

    def finding(
        self,
        status: Status,
        message: str,
        *,
        cluster: str | None = None,
        resource: ResourceRef | None = None,
        evidence: dict[str, Any] | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        return Finding(
            check_id=self.id,
            title=self.title,
            status=status,
            severity=severity or self.severity,
            message=message,
            cluster=cluster,
            resource=resource,
            evidence=evidence or {},
        )

    def graded(
        self,
        failures: list[str],
        warnings: list[str],
        *,
        fail: str,
        warn: str,
        ok: str,
        cluster: str | None = None,
        resource: ResourceRef | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Finding:
        """The one grading of a resource judged on several criteria: any failure fails it, else any warning warns.

        Each message is the whole sentence for its outcome, so a reader never gets a PASS worded like a FAIL.
        """
        status, message = (Status.FAIL, fail) if failures else (Status.WARN, warn) if warnings else (Status.PASS, ok)
        return self.finding(status, message, cluster=cluster, resource=resource, evidence=evidence)


@dataclass(frozen=True)
class WaiverMark:
    """The accepted risk a finding is waived by: who accepted it, why, until when, and where it is written down."""

    reason: str
    owner: str
    expires: str  # YYYY-MM-DD, the last day the waiver holds
    line: int  # line of the waiver in the waivers file the report names under gating.waivers

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "owner": self.owner, "expires": self.expires, "line": self.line}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WaiverMark:
        return cls(data["reason"], data["owner"], data["expires"], data["line"])


@dataclass(frozen=True)
class Finding:
    check_id: str
    title: str
    status: Status
    severity: Severity
    message: str
    cluster: str | None = None
    resource: ResourceRef | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    # Gating markers (auditor.gating): the finding keeps its status, but an accepted one does not decide the verdict.
    waiver: WaiverMark | None = None
    baselined: bool = False

    @property
    def accepted(self) -> bool:
        """Waived or in the baseline: shown everywhere, but left out of the verdict (contract section 3)."""
        return self.waiver is not None or self.baselined

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "title": self.title,
            "status": self.status.value,
            "severity": self.severity.value,
            "cluster": self.cluster,
            "resource": self.resource.to_dict() if self.resource else None,
            "message": self.message,
            "evidence": self.evidence,
            **({"waiver": self.waiver.to_dict()} if self.waiver else {}),
            **({"baselined": True} if self.baselined else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        resource = data.get("resource")
        return cls(
            check_id=data["check_id"],
            title=data["title"],
            status=Status(data["status"]),
            severity=Severity(data["severity"]),
            message=data["message"],
            cluster=data.get("cluster"),
            resource=ResourceRef.from_dict(resource) if resource else None,
            evidence=data.get("evidence") or {},
            waiver=WaiverMark.from_dict(data["waiver"]) if data.get("waiver") else None,
            baselined=data.get("baselined") is True,
        )
