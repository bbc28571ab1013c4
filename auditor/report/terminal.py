"""The terminal summary: what a person or a pipeline log needs at a glance."""

from __future__ import annotations

import re

import click

from auditor.model import Finding, Status
from auditor.report.model import Report, acceptance
from auditor.timeutil import rfc3339

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
    # The problems that decide the verdict first; accepted ones after them, marked, so a short log shows what to fix.
    problems = sorted((f for f in report.findings if f.status in (Status.FAIL, Status.ERROR)), key=_accepted_last)
    if problems:
        lines.append("")
        for finding in problems[:MAX_LISTED]:
            tag = style(finding.status.value.upper(), fg=_COLOURS[finding.status.value])
            line = f"{tag} [{finding.severity.value}] {finding.check_id}: {printable(finding.message)}"
            lines.append(line + (f" ({printable(acceptance(finding))})" if finding.accepted else ""))
        if len(problems) > MAX_LISTED:
            lines.append(f"... and {len(problems) - MAX_LISTED} more in the reports")
    lines += [printable(line) for line in gating_lines(report)]
    verdict = style(report.verdict.upper(), fg=_VERDICT_COLOURS[report.verdict], bold=True)
    counts = ", ".join(f"{n} {s}" for s, n in report.summary.items())
    lines += ["", f"Verdict: {verdict} ({counts}; fail-on {report.fail_on.value}; now = {report.now_source})"]
    return lines


def _accepted_last(finding: Finding) -> bool:
    return finding.accepted


def gating_lines(report: Report) -> list[str]:
    """What the verdict took into account besides the findings: the waivers and baseline files, with their effect."""
    gating, counts = report.gating, report.gate_counts
    lines = []
    if gating and gating.waivers:
        w = gating.waivers
        if w.disabled:
            ignored = f": {w.file} not applied" if w.file else ""
            lines.append(f"Waivers: disabled (--no-waivers){ignored}; every finding is judged as it is")
        else:
            lines.append(f"Waivers: {w.file} ({_count(w.count, 'waiver')}): {_count(counts.waived, 'finding')} waived")
    if gating and gating.baseline:
        b = gating.baseline
        lines.append(
            f"Baseline: {b.file} (of {rfc3339(b.generated_at)}): {_count(counts.baselined, 'failing finding')} "
            f"already known, {counts.new} new"
        )
    return ["", *lines] if lines else []


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def gate_line(report: Report) -> str:
    """The last line of `drauditor audit`: one grep-able record of the gate for a pipeline log."""
    c = report.gate_counts
    return (
        f"drauditor: verdict={report.verdict} fail={c.fail} error={c.error} new={c.new} "
        f"baselined={c.baselined} waived={c.waived} exit={report.exit_code}"
    )
