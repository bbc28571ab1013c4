"""Baselines: the failures an estate already had, so a pipeline can block only the ones a change adds.

A finding is known by what it is about — check id, cluster and resource — never by its message, which quotes values
and timestamps that change from run to run. Several findings about one resource share that identity, so a baselined
resource that fails a check for a new reason stays baselined: the baseline answers "is this resource newly failing
this check", and a new resource, cluster or check failing is always new. File format: docs/contract.md section 6.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, field_validator

from auditor import located
from auditor.model import Finding, ResourceRef, Status
from auditor.provenance import file_sha256
from auditor.report.model import Report
from auditor.timeutil import parse_time, rfc3339

SCHEMA = "drauditor.baseline/v1"
# What a baseline holds and marks: the findings that fail the gate, never passing or warning ones.
BASELINED = (Status.FAIL, Status.ERROR)


class Identity(NamedTuple):
    check_id: str
    cluster: str | None
    resource: ResourceRef | None

    def to_json(self) -> dict[str, Any]:
        resource = self.resource.to_dict() if self.resource else None
        return {"check_id": self.check_id, "cluster": self.cluster, "resource": resource}

    def sort_key(self) -> tuple[str, ...]:
        r = self.resource
        return (self.check_id, self.cluster or "", *((r.kind, r.namespace or "", r.name, r.api_version) if r else ()))


def identity(finding: Finding) -> Identity:
    return Identity(finding.check_id, finding.cluster, finding.resource)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Resource(_Strict):
    apiVersion: str  # spelled as in report.json
    kind: str
    namespace: str | None
    name: str


class _Entry(_Strict):
    check_id: Annotated[str, StringConstraints(min_length=1)]
    cluster: str | None
    resource: _Resource | None

    def identity(self) -> Identity:
        return Identity(
            self.check_id, self.cluster, ResourceRef.from_dict(self.resource.model_dump()) if self.resource else None
        )


class _File(_Strict):
    schema_: Literal["drauditor.baseline/v1"] = Field(alias="schema")
    generated_at: datetime
    findings: list[_Entry]

    @field_validator("generated_at", mode="before")
    @classmethod
    def _time(cls, value: Any) -> datetime:
        moment = parse_time(value) if isinstance(value, str) else None
        if moment is None:
            raise ValueError("expected an RFC 3339 timestamp (the generated_at of the report it was written from)")
        return moment


_ADAPTER = TypeAdapter(_File)


@dataclass(frozen=True)
class Baseline:
    path: Path
    sha256: str
    generated_at: datetime
    identities: frozenset[Identity]


def load_baseline(path: Path) -> Baseline:
    """The baseline in ``path`` (YAML or JSON, as --write-baseline wrote it); InputError naming file and line."""
    doc = located.load(Path(path), _ADAPTER, "baseline")
    return Baseline(
        Path(path),
        file_sha256(path),
        doc.value.generated_at,
        frozenset(entry.identity() for entry in doc.value.findings),
    )


def baseline_of(report: Report) -> dict[str, Any]:
    """The baseline document of ``report``: every failing or erroring finding's identity, sorted, once each."""
    identities = sorted({identity(f) for f in report.findings if f.status in BASELINED}, key=Identity.sort_key)
    return {
        "schema": SCHEMA,
        "generated_at": rfc3339(report.generated_at),
        "findings": [i.to_json() for i in identities],
    }


def write_baseline(report: Report, path: Path) -> None:
    """Writes ``report``'s baseline as JSON when ``path`` ends in .json, else as YAML."""
    doc = baseline_of(report)
    text = json.dumps(doc, indent=2) + "\n" if Path(path).suffix == ".json" else yaml.safe_dump(doc, sort_keys=False)
    Path(path).write_text(text, encoding="utf-8")


def mark_baselined(findings: Iterable[Finding], baseline: Baseline) -> list[Finding]:
    """``findings`` with every failing or erroring one whose identity the baseline holds marked ``baselined``."""
    return [
        replace(f, baselined=True) if f.status in BASELINED and identity(f) in baseline.identities else f
        for f in findings
    ]
