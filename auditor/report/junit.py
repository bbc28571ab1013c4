"""report.junit.xml: one testsuite per check, one testcase per finding, for CI systems that chart JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from auditor.model import Finding, Status
from auditor.report.model import Report


def _case_name(finding: Finding) -> str:
    where = f"{finding.cluster}: " if finding.cluster else ""
    return where + (finding.resource.display() if finding.resource else finding.title)


def build_junit(report: Report) -> ET.Element:
    root = ET.Element("testsuites", name="drauditor", tests=str(len(report.findings)))
    properties = ET.SubElement(root, "properties")
    for key, value in (("verdict", report.verdict), ("fail_on", report.fail_on.value), ("now", report.now.isoformat())):
        ET.SubElement(properties, "property", name=key, value=value)
    for meta, findings in report.findings_by_check():
        counts = {status: sum(f.status is status for f in findings) for status in Status}
        suite = ET.SubElement(
            root,
            "testsuite",
            name=meta.id,
            tests=str(len(findings)),
            failures=str(counts[Status.FAIL]),
            errors=str(counts[Status.ERROR]),
            skipped=str(counts[Status.SKIP]),
        )
        for finding in findings:
            case = ET.SubElement(suite, "testcase", classname=meta.id, name=_case_name(finding))
            detail = f"[{finding.severity.value}] {finding.message}"
            if finding.status is Status.FAIL:
                ET.SubElement(case, "failure", message=finding.message, type=finding.severity.value).text = detail
            elif finding.status is Status.ERROR:
                ET.SubElement(case, "error", message=finding.message).text = detail
            elif finding.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=finding.message)
            else:
                ET.SubElement(case, "system-out").text = f"{finding.status.value.upper()}: {finding.message}"
    return root


def write_junit(report: Report, path: Path) -> None:
    tree = ET.ElementTree(build_junit(report))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
