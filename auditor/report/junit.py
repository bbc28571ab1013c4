"""report.junit.xml: one testsuite per check, one testcase per finding, for CI systems that chart JUnit.

A failing or erroring finding accepted by a waiver or the baseline is written as ``<skipped>`` whose message says why
(``waived by OWNER until DAY: REASON`` or ``baselined``), its original status and message in the body: CI test tabs
show a skipped case as neither red nor hidden, which is what it is for the gate (the exit code ignores it too), while
a ``<failure>`` would paint the run red under a green exit code.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from auditor.model import Finding, Status
from auditor.report.model import Report, acceptance


def _case_name(finding: Finding) -> str:
    where = f"{finding.cluster}: " if finding.cluster else ""
    return where + (finding.resource.display() if finding.resource else finding.title)


def _gate_skips(finding: Finding) -> bool:
    """A failure or error the gate accepts: reported as skipped, with the reason."""
    return finding.accepted and finding.status in (Status.FAIL, Status.ERROR)


def build_junit(report: Report) -> ET.Element:
    root = ET.Element("testsuites", name="drauditor", tests=str(len(report.findings)))
    properties = ET.SubElement(root, "properties")
    for key, value in (("verdict", report.verdict), ("fail_on", report.fail_on.value), ("now", report.now.isoformat())):
        ET.SubElement(properties, "property", name=key, value=value)
    gate = report.gate_counts
    for key, count in (("new", gate.new), ("waived", gate.waived), ("baselined", gate.baselined)):
        ET.SubElement(properties, "property", name=key, value=str(count))
    for meta, findings in report.findings_by_check():
        counts = {status: sum(f.status is status and not _gate_skips(f) for f in findings) for status in Status}
        suite = ET.SubElement(
            root,
            "testsuite",
            name=meta.id,
            tests=str(len(findings)),
            failures=str(counts[Status.FAIL]),
            errors=str(counts[Status.ERROR]),
            skipped=str(counts[Status.SKIP] + sum(map(_gate_skips, findings))),
        )
        for finding in findings:
            case = ET.SubElement(suite, "testcase", classname=meta.id, name=_case_name(finding))
            detail = f"[{finding.severity.value}] {finding.message}"
            if _gate_skips(finding):
                status = f"{finding.status.value.upper()} [{finding.severity.value}] {finding.message}"
                ET.SubElement(case, "skipped", message=acceptance(finding)).text = status
            elif finding.status is Status.FAIL:
                ET.SubElement(case, "failure", message=finding.message, type=finding.severity.value).text = detail
            elif finding.status is Status.ERROR:
                ET.SubElement(case, "error", message=finding.message).text = detail
            elif finding.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=finding.message)
            else:
                note = f" ({acceptance(finding)})" if finding.accepted else ""
                ET.SubElement(case, "system-out").text = f"{finding.status.value.upper()}: {finding.message}{note}"
    return root


def write_junit(report: Report, path: Path) -> None:
    tree = ET.ElementTree(build_junit(report))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
