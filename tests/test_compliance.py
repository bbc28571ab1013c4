"""Compliance mapping: the framework files are valid and cover every check, and requirement statuses follow the
findings of their checks (waived failures decide nothing, as in the verdict); the PDF shows the result."""

from __future__ import annotations

import re
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

import pytest
from helpers import SAMPLES
from pypdf import PdfReader
from report_factory import CEPH_META, DRILL_META, RTT_META, VM_META, make_report

from auditor.compliance import (
    FAILING_SHOWN,
    FRAMEWORK_PACKAGE,
    Framework,
    FrameworkError,
    RequirementStatus,
    frameworks,
    judge,
    parse,
)
from auditor.config import AuditConfig
from auditor.engine import audit, build_context
from auditor.evidence_io import import_json
from auditor.model import Finding, ResourceRef, Severity, Status, WaiverMark
from auditor.registry import discover
from auditor.report.pdf import write_pdf
from auditor.report.views import check_sections
from auditor.snapshot import load_snapshot

# What issue 7 asks the mapping to cover at least, by framework file.
REQUIRED = {
    "dora": {"DORA Art. 11(6)", "DORA Art. 12(2)", "DORA Art. 24(6)", "DORA Art. 25(1)"},
    "iso-22301": {"ISO 22301:2019 8.5"},
    "nist-sp-800-34": {"SP 800-34 Rev. 1 §3.5"},
    "nist-sp-800-53": {"CP-4"},
    "soc2": {"A1.2", "A1.3"},
}

# Framework files


def test_every_packaged_file_is_a_valid_framework():
    names = sorted(p.name for p in files(FRAMEWORK_PACKAGE).iterdir() if p.name.endswith(".yaml"))
    loaded = frameworks()
    assert [f"{f.id}.yaml" for f in loaded] == names
    assert all(isinstance(f, Framework) for f in loaded)


def test_the_required_frameworks_and_requirements_are_mapped():
    by_id = {f.id: {r.id for r in f.requirements} for f in frameworks()}
    for framework, requirements in REQUIRED.items():
        assert requirements <= by_id[framework], framework


def test_every_mapped_check_exists_in_the_registry():
    checks, failures = discover()
    assert not failures
    registered = {c.meta.id for c in checks}
    for framework in frameworks():
        for requirement in framework.requirements:
            unknown = set(requirement.checks) - registered
            assert not unknown, f"{framework.id} {requirement.id} maps unknown checks {sorted(unknown)}"


def test_every_registered_check_is_mapped_by_some_framework():
    checks, _ = discover()
    mapped = set().union(*(f.check_ids for f in frameworks()))
    assert {c.meta.id for c in checks} - mapped == set()


def test_every_requirement_cites_where_its_number_was_verified():
    for framework in frameworks():
        assert framework.sources and framework.verification
        for requirement in framework.requirements:
            assert requirement.verified_at, requirement.id
            assert all(url.startswith("https://") for url in requirement.verified_at)


VALID = """\
id: sample
title: Sample framework
edition: first edition
sources: [https://example.org/standard]
verification: checked against the standard
requirements:
  - id: R-1
    title: Test the plan
    summary: Tests happen.
    checks: [last_test_failover]
    evidence: The drill ages.
    verified_at: [https://example.org/standard#r1]
"""


def test_parse_reads_a_valid_file():
    framework = parse(VALID, "compliance/sample.yaml")
    assert framework.requirements[0].checks == ["last_test_failover"]
    assert framework.check_ids == {"last_test_failover"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (VALID + "extra: 1\n", "extra"),
        (VALID.replace("checks: [last_test_failover]", "checks: []"), "checks"),
        (VALID.replace("checks: [last_test_failover]", "checks: last_test_failover"), "checks"),
        (VALID.replace("[last_test_failover]", "[last_test_failover, last_test_failover]"), "check listed twice"),
        (VALID.replace("[last_test_failover]", "[Last-Test]"), "checks.0"),
        (VALID.replace("[https://example.org/standard#r1]", "[http://example.org/r1]"), "verified_at.0"),
        (VALID.replace("    verified_at: [https://example.org/standard#r1]\n", ""), "verified_at"),
        (VALID.replace("title: Test the plan", "title: 42"), "title"),
        (VALID.replace("title: Test the plan", "title: '  '"), "title"),
        (VALID + VALID[VALID.index("  - id: R-1") :], "requirement id listed twice"),
        (VALID.replace("id: sample", "id: other"), "differs from the file name"),
    ],
)
def test_parse_refuses_a_file_off_the_schema(text, problem):
    with pytest.raises(FrameworkError, match=re.escape(problem)) as raised:
        parse(text, "compliance/sample.yaml")
    assert str(raised.value).startswith("compliance/sample.yaml")


def test_parse_names_the_line_of_malformed_yaml():
    with pytest.raises(FrameworkError, match=r"^compliance/sample\.yaml:3: malformed YAML"):
        parse("id: sample\ntitle: x\n  bad: [\n", "compliance/sample.yaml")


# Requirement statuses

FRAMEWORK = parse(
    """\
id: sample
title: Sample framework
edition: first edition
sources: [https://example.org/standard]
verification: checked against the standard
requirements:
  - id: TESTING
    title: Test the plan
    summary: Tests happen.
    checks: [last_test_failover]
    evidence: The drill ages.
    verified_at: [https://example.org/standard#testing]
  - id: SITES
    title: Two sites
    summary: Storage survives a site loss.
    checks: [ceph_stretch_health, intersite_rtt, vm_dr_coverage]
    evidence: Ceph, RTT and coverage.
    verified_at: [https://example.org/standard#sites]
  - id: FUTURE
    title: A check this audit does not have
    summary: Something newer.
    checks: [last_test_failover, peer_capacity]
    evidence: Drills and capacity.
    verified_at: [https://example.org/standard#future]
""",
    "compliance/sample.yaml",
)


def _finding(meta, status: Status, name: str = "x", severity: Severity | None = None) -> Finding:
    resource = ResourceRef("v1", "Thing", name, "ns")
    return meta.finding(status, f"{meta.id} {name}: {status.value}", cluster="c1", resource=resource, severity=severity)


def _judge(findings: list[Finding]) -> dict[str, RequirementStatus]:
    report = make_report(findings)
    judged = judge(FRAMEWORK, report, check_sections(report))
    return {r.requirement.id: r for r in judged.requirements}


def _waived(finding: Finding) -> Finding:
    return replace(finding, waiver=WaiverMark("accepted until the move", "dr-team", "2099-01-01", 3))


def test_all_passing_checks_pass_the_requirement():
    result = _judge([_finding(DRILL_META, Status.PASS), _finding(CEPH_META, Status.PASS)])["TESTING"]
    assert result.status == "pass"
    assert [(c.check_id, c.status) for c in result.checks] == [("last_test_failover", "pass")]
    assert result.failing == () and result.failing_total == 0


def test_one_failing_finding_fails_the_requirement_and_is_listed():
    results = _judge(
        [
            _finding(DRILL_META, Status.PASS, "a"),
            _finding(DRILL_META, Status.FAIL, "b"),
            _finding(CEPH_META, Status.PASS),
            _finding(RTT_META, Status.PASS),
            _finding(VM_META, Status.PASS),
        ]
    )
    testing = results["TESTING"]
    assert testing.status == "fail"
    assert [(f.check_id, f.resource) for f in testing.failing] == [("last_test_failover", "Thing ns/b")]
    assert [(c.status, c.count) for c in testing.counts] == [("fail", 1), ("pass", 1)]
    assert results["SITES"].status == "pass"


def test_failure_outranks_error_and_error_outranks_warning():
    fail_and_error = _judge([_finding(CEPH_META, Status.ERROR), _finding(RTT_META, Status.FAIL)])["SITES"]
    assert fail_and_error.status == "fail"
    error_and_warn = _judge([_finding(CEPH_META, Status.ERROR), _finding(RTT_META, Status.WARN)])["SITES"]
    assert error_and_warn.status == "error"
    warn = _judge([_finding(CEPH_META, Status.PASS), _finding(RTT_META, Status.WARN), _finding(VM_META, Status.PASS)])
    assert warn["SITES"].status == "warn"


def test_only_skipped_checks_make_a_requirement_not_applicable():
    skipped = _judge(
        [_finding(CEPH_META, Status.SKIP), _finding(RTT_META, Status.SKIP), _finding(VM_META, Status.SKIP)]
    )
    assert skipped["SITES"].status == "skip"
    partly = _judge([_finding(CEPH_META, Status.SKIP), _finding(RTT_META, Status.SKIP), _finding(VM_META, Status.PASS)])
    assert partly["SITES"].status == "pass"


def test_a_mapped_check_the_audit_did_not_run_leaves_the_requirement_unevaluated():
    result = _judge([_finding(DRILL_META, Status.PASS)])["FUTURE"]
    assert result.status == "error"
    assert result.not_run == ("peer_capacity",)
    capacity = next(c for c in result.checks if c.check_id == "peer_capacity")
    assert capacity.anchor is None and capacity.status is None
    drills = next(c for c in result.checks if c.check_id == "last_test_failover")
    assert drills.anchor == "check-last-test-failover"  # the findings chapter's section
    # ...but a failure still decides: the requirement is not met, evaluated or not
    assert _judge([_finding(DRILL_META, Status.FAIL)])["FUTURE"].status == "fail"


def test_a_waived_failure_decides_nothing_as_in_the_verdict():
    findings = [_waived(_finding(DRILL_META, Status.FAIL)), _finding(DRILL_META, Status.PASS, "y")]
    report = make_report(findings, fail_on=Severity.INFO)
    assert report.verdict == "ready"
    result = _judge(findings)["TESTING"]
    assert result.status == "warn"  # shown, not passed off as clean, and not failing
    assert result.accepted == 1 and result.failing == () and result.failing_total == 0
    assert [(c.status, c.count) for c in result.counts] == [("fail", 1), ("pass", 1)]  # counts stay as found


def test_a_baselined_failure_is_accepted_like_a_waived_one():
    result = _judge([replace(_finding(DRILL_META, Status.FAIL), baselined=True)])["TESTING"]
    assert result.status == "warn" and result.accepted == 1


def test_failures_count_whatever_their_severity_and_the_worst_are_listed_first():
    findings = [_finding(CEPH_META, Status.FAIL, f"low-{i}", severity=Severity.LOW) for i in range(FAILING_SHOWN)]
    findings.append(_finding(RTT_META, Status.FAIL, "critical", severity=Severity.CRITICAL))
    report = make_report(findings, fail_on=Severity.CRITICAL)
    sites = {r.requirement.id: r for r in judge(FRAMEWORK, report, check_sections(report)).requirements}["SITES"]
    assert sites.status == "fail"
    assert sites.failing_total == FAILING_SHOWN + 1 and len(sites.failing) == FAILING_SHOWN
    assert sites.failing[0].resource == "Thing ns/critical" and sites.failing[0].severity == "critical"


def test_framework_counts_requirements_per_status_worst_first():
    passing = [_finding(meta, Status.PASS) for meta in (CEPH_META, RTT_META, VM_META)]
    report = make_report([_finding(DRILL_META, Status.FAIL), *passing])
    judged = judge(FRAMEWORK, report, check_sections(report))
    assert [(c.status, c.count) for c in judged.counts] == [("fail", 2), ("pass", 1)]
    assert judged.anchor == "compliance-sample"


# The samples, end to end


def _sample_report(name: str, tmp_path: Path):
    store = tmp_path / "evidence.db"
    import_json(store, SAMPLES / name / "drills.json")
    return audit(build_context(load_snapshot(SAMPLES / name), AuditConfig(), store))


def _statuses(report) -> dict[tuple[str, str], str]:
    sections = check_sections(report)
    return {(f.id, r.requirement.id): r.status for f in frameworks() for r in judge(f, report, sections).requirements}


def test_healthy_sample_meets_every_requirement(tmp_path):
    statuses = _statuses(_sample_report("healthy", tmp_path))
    assert set(statuses.values()) == {"pass"}, {k: v for k, v in statuses.items() if v != "pass"}


def test_pdf_of_broken_protection_shows_the_dora_testing_requirement_failing(tmp_path):
    report = _sample_report("broken-protection", tmp_path)
    statuses = _statuses(report)
    assert statuses[("dora", "DORA Art. 11(6)")] == "fail"
    assert statuses[("dora", "DORA Art. 12(4)")] == "pass"  # the peer site is intact in this sample
    write_pdf(report, tmp_path / "report.pdf")
    pages = [page.extract_text() for page in PdfReader(tmp_path / "report.pdf").pages]
    chapter = "\n".join(text for text in pages[2:] if "Compliance mapping" in text)
    assert "Digital Operational Resilience Act (DORA)" in chapter
    # Requirement status first, then one badge per mapped check, before the row's "Requirement:" text
    assert _badges(chapter, "DORA Art. 11(6)") == ["FAIL", "FAIL"]  # last_test_failover
    assert set(_badges(chapter, "DORA Art. 12(4)")) == {"PASS"}


def _badges(text: str, requirement: str) -> list[str]:
    row = re.search(re.escape(requirement) + r" (.*?)Requirement:", text, re.DOTALL)
    assert row, f"{requirement} not in the compliance chapter"
    return re.findall(r"\b(PASS|WARN|FAIL|ERROR|SKIP)\b", row.group(1))
