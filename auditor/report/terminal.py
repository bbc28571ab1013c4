"""The terminal summary: what a person or a pipeline log needs at a glance."""

from __future__ import annotations

import re

import click

from auditor.model import Status
from auditor.report.model import Report

_COLOURS = {"pass": "green", "warn": "yellow", "fail": "red", "error": "magenta", "skip": "bright_black"}
_VERDICT_COLOURS = {"ready": "green", "not-ready": "red", "incomplete": "magenta"}
MAX_LISTED = 15
# Control characters (ANSI escapes among them) in cluster-supplied text could rewrite a reader's terminal or a CI
# log; they are shown as visible escapes instead.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def summary_lines(report: Report, *, colour: bool = True) -> list[str]:
    style = click.style if colour else (lambda text, **_: text)
    width = max([len(meta.id) for meta, _ in report.findings_by_check()] + [5])
    statuses = [s.value for s in Status]
    lines = [f"{'check':<{width}}  " + "  ".join(f"{s:>5}" for s in statuses)]
    for meta, findings in report.findings_by_check():
        cells = []
        for status in statuses:
            count = sum(f.status.value == status for f in findings)
            cells.append(style(f"{count:>5}", fg=_COLOURS[status]) if count else f"{count:>5}")
        lines.append(f"{meta.id:<{width}}  " + "  ".join(cells))
    problems = [f for f in report.findings if f.status in (Status.FAIL, Status.ERROR)]
    if problems:
        lines.append("")
        for finding in problems[:MAX_LISTED]:
            tag = style(finding.status.value.upper(), fg=_COLOURS[finding.status.value])
            lines.append(f"{tag} [{finding.severity.value}] {finding.check_id}: {printable(finding.message)}")
        if len(problems) > MAX_LISTED:
            lines.append(f"... and {len(problems) - MAX_LISTED} more in the reports")
    verdict = style(report.verdict.upper(), fg=_VERDICT_COLOURS[report.verdict], bold=True)
    counts = ", ".join(f"{n} {s}" for s, n in report.summary.items())
    lines += ["", f"Verdict: {verdict} ({counts}; fail-on {report.fail_on.value}; now = {report.now_source})"]
    return lines
