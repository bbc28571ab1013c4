"""Compliance mapping: what one audit shows for each requirement of DORA, ISO 22301, NIST SP 800-34/800-53 and SOC 2.

Auditors audit against frameworks, not against check ids. The framework files (package ``compliance``, one YAML
file per framework) say which checks give evidence for which requirement and what that evidence is; they are data
reviewed like code, so they are validated strictly and a broken one stops the render instead of silently dropping
a requirement. The status of a requirement is derived here from the report's findings, as a view: verdicts and
findings are never changed, and findings a waiver or the baseline accepted decide nothing, as in the verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from auditor.docload import yaml_error_message
from auditor.model import Finding, Status
from auditor.report.model import Report
from auditor.report.views import STATUS_ORDER, CheckSection, StatusCount

FRAMEWORK_PACKAGE = "compliance"
# Failing findings listed under one requirement; the findings chapter has every one of them.
FAILING_SHOWN = 5

# A requirement is judged by its worst check, a check by its worst finding, in this order. Pass outranks skip:
# a requirement some of whose checks apply and pass is met; only when none applies is it not applicable (skip).
_JUDGEMENT = (Status.FAIL, Status.ERROR, Status.WARN, Status.PASS, Status.SKIP)
_RANK = {status: rank for rank, status in enumerate(_JUDGEMENT)}

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_CheckId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
_Url = Annotated[str, StringConstraints(pattern=r"^https://\S+$")]


class FrameworkError(ValueError):
    """A framework file that cannot be read or does not follow the schema (a defect of the package, not input)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Requirement(_Strict):
    id: _Text  # as the framework numbers it, e.g. "DORA Art. 11(6)", "CP-4(2)", "A1.3"
    title: _Text
    summary: _Text  # the requirement in the mapping's own words, never the framework's text
    checks: list[_CheckId] = Field(min_length=1)
    evidence: _Text  # what the mapped checks show for it, and what they cannot show
    verified_at: list[_Url] = Field(min_length=1)  # public pages the number and title were checked against

    @field_validator("checks")
    @classmethod
    def _distinct_checks(cls, checks: list[str]) -> list[str]:
        repeated = sorted(check for check, count in Counter(checks).items() if count > 1)
        if repeated:
            raise ValueError(f"check listed twice: {', '.join(repeated)}")
        return checks


class Framework(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]  # the file name without .yaml
    title: _Text
    edition: _Text  # the version the requirement numbers belong to
    sources: list[_Url] = Field(min_length=1)  # the authoritative text
    verification: _Text  # how the numbers were verified, and what could only be verified indirectly
    requirements: list[Requirement] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_requirements(self) -> Framework:
        repeated = sorted(rid for rid, count in Counter(r.id for r in self.requirements).items() if count > 1)
        if repeated:
            raise ValueError(f"requirement id listed twice: {', '.join(repeated)}")
        return self

    @property
    def check_ids(self) -> frozenset[str]:
        return frozenset(check for requirement in self.requirements for check in requirement.checks)


def parse(text: str, name: str) -> Framework:
    """One framework file; ``name`` is the file name, which must be ``<id>.yaml``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FrameworkError(yaml_error_message(exc, name)) from exc
    try:
        framework = Framework.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise FrameworkError(f"{name}: invalid framework file: {problems}") from exc
    if f"{framework.id}.yaml" != name.rsplit("/", 1)[-1]:
        raise FrameworkError(f"{name}: id {framework.id!r} differs from the file name")
    return framework


@cache
def frameworks() -> tuple[Framework, ...]:
    """Every packaged framework, in file-name order (the order of the report's sections)."""
    package = files(FRAMEWORK_PACKAGE)
    names = sorted(entry.name for entry in package.iterdir() if entry.name.endswith(".yaml"))
    return tuple(
        parse(package.joinpath(name).read_text(encoding="utf-8"), f"{FRAMEWORK_PACKAGE}/{name}") for name in names
    )


@dataclass(frozen=True)
class CheckEvidence:
    """One mapped check as the audit saw it."""

    check_id: str
    anchor: str | None  # its section in the findings chapter; None when the check is not in this audit's catalogue
    status: str | None  # its worst finding, accepted failures counted as warnings; None: no finding (not evaluated)
    counts: tuple[StatusCount, ...]  # its findings per status, as the findings chapter counts them
    accepted: int  # failing or erroring findings a waiver or the baseline accepted


@dataclass(frozen=True)
class FailingFinding:
    check_id: str
    severity: str
    cluster: str
    resource: str
    message: str


@dataclass(frozen=True)
class RequirementStatus:
    requirement: Requirement
    status: str
    checks: tuple[CheckEvidence, ...]
    counts: tuple[StatusCount, ...]  # findings of all its checks per status
    failing: tuple[FailingFinding, ...]  # failing findings nobody accepted, most severe first, at most FAILING_SHOWN
    failing_total: int
    accepted: int

    @property
    def not_run(self) -> tuple[str, ...]:
        return tuple(check.check_id for check in self.checks if check.status is None)


@dataclass(frozen=True)
class FrameworkStatus:
    framework: Framework
    anchor: str
    requirements: tuple[RequirementStatus, ...]

    @property
    def counts(self) -> tuple[StatusCount, ...]:
        """Requirements per status, worst first, zero counts left out."""
        return _ordered(Counter(requirement.status for requirement in self.requirements))


def build(report: Report, sections: Iterable[CheckSection]) -> tuple[FrameworkStatus, ...]:
    """Every packaged framework judged on ``report``; ``sections`` (the findings chapter) give each check's anchor
    and counts, so both chapters show the same numbers."""
    sections = tuple(sections)
    return tuple(judge(framework, report, sections) for framework in frameworks())


def judge(framework: Framework, report: Report, sections: Iterable[CheckSection]) -> FrameworkStatus:
    """The status of each requirement of ``framework`` from the findings of its mapped checks."""
    by_section = {section.meta.id: section for section in sections}
    by_check: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_check.setdefault(finding.check_id, []).append(finding)
    return FrameworkStatus(
        framework=framework,
        anchor=f"compliance-{framework.id}",
        requirements=tuple(_requirement(r, by_check, by_section) for r in framework.requirements),
    )


def _requirement(
    requirement: Requirement, by_check: dict[str, list[Finding]], by_section: dict[str, CheckSection]
) -> RequirementStatus:
    checks = tuple(
        _check(check_id, by_check.get(check_id, []), by_section.get(check_id)) for check_id in requirement.checks
    )
    findings = [finding for check_id in requirement.checks for finding in by_check.get(check_id, [])]
    failing = sorted(
        (f for f in findings if f.status is Status.FAIL and not f.accepted), key=lambda f: -f.severity.rank
    )
    # A mapped check without findings (not in this audit's catalogue) leaves the requirement not fully evaluated:
    # an error, as a finding that could not be evaluated is.
    statuses = [Status(check.status) if check.status else Status.ERROR for check in checks]
    total: Counter[str] = Counter()
    for check in checks:
        total.update({item.status: item.count for item in check.counts})
    return RequirementStatus(
        requirement=requirement,
        status=min(statuses, key=_RANK.__getitem__).value,
        checks=checks,
        counts=_ordered(total),
        failing=tuple(_failing(f) for f in failing[:FAILING_SHOWN]),
        failing_total=len(failing),
        accepted=sum(check.accepted for check in checks),
    )


def _check(check_id: str, findings: list[Finding], section: CheckSection | None) -> CheckEvidence:
    judged = [_judged(finding) for finding in findings]
    return CheckEvidence(
        check_id=check_id,
        anchor=section.anchor if section else None,
        status=min(judged, key=_RANK.__getitem__).value if judged else None,
        counts=section.counts if section else (),
        accepted=sum(f.accepted and f.status in (Status.FAIL, Status.ERROR) for f in findings),
    )


def _judged(finding: Finding) -> Status:
    """A failure or error a waiver or the baseline accepted is shown but decides nothing: it counts as a warning."""
    if finding.accepted and finding.status in (Status.FAIL, Status.ERROR):
        return Status.WARN
    return finding.status


def _ordered(counts: Counter[str]) -> tuple[StatusCount, ...]:
    """Counts per status in the findings chapter's order (worst first), zero counts left out."""
    return tuple(StatusCount(s.value, counts[s.value]) for s in STATUS_ORDER if counts.get(s.value))


def _failing(finding: Finding) -> FailingFinding:
    return FailingFinding(
        check_id=finding.check_id,
        severity=finding.severity.value,
        cluster=finding.cluster or "",
        resource=finding.resource.display() if finding.resource else "",
        message=finding.message,
    )
