"""The Markdown summary (``audit --summary-md FILE``): the gate's result as a pull-request comment.

GitHub-flavoured and link-free. Cluster text (names, messages) and waiver text reach a page other people read, so
every such value is written as a code span in a table cell: inside a code span Markdown and HTML are inert, and
GitHub turns neither ``@mentions``, ``#references`` nor URLs into links there (backslash escapes would stop Markdown
and HTML, but not GitHub's autolinks and mentions). Control characters are shown as visible escapes, so a newline
cannot end the table row, and ``|`` is escaped, so it cannot end the cell.
"""

from __future__ import annotations

import re
from pathlib import Path

from auditor.model import Finding, Status
from auditor.report.model import Report
from auditor.report.terminal import printable
from auditor.report.views import STATUS_ORDER, verdict_reason
from auditor.timeutil import rfc3339
from auditor.waivers import RESERVED_ID as WAIVERS_ID

MAX_LISTED = 50  # findings listed; a comment has room for about 65,000 characters
MAX_TEXT = 300  # characters of one message or reason
_BACKTICKS = re.compile(r"`+")
_VERDICT_TITLES = {"ready": "READY", "not-ready": "NOT READY", "incomplete": "INCOMPLETE"}


def cell(text: str | None, limit: int = MAX_TEXT) -> str:
    """``text`` as an inert table cell: a code span whose fence is longer than any run of backticks inside it."""
    if not text or text.isspace():
        return "—"
    shown = printable(text if len(text) <= limit else text[: limit - 1] + "…").replace("|", "\\|")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(shown)), default=0) + 1)
    return f"{fence} {shown} {fence}"  # one space each side is stripped again, so edge backticks stay content


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    align = ["---" if i < numeric_from else "--:" for i in range(len(header))]
    return [_row(header), _row(align), *(_row(r) for r in rows)]


def render_markdown(report: Report) -> str:
    counts = report.gate_counts
    lines = [
        f"## drauditor: {_VERDICT_TITLES[report.verdict]}",
        "",
        *_table(
            ["Verdict", "Exit code", "Fail on", "Now", "Hub", "Clusters"],
            [
                [
                    f"**{report.verdict}**",
                    str(report.exit_code),
                    report.fail_on.value,
                    cell(f"{rfc3339(report.now)} ({report.now_source})"),
                    cell(report.scope.hub),
                    cell(", ".join(report.scope.clusters)),
                ]
            ],
            numeric_from=99,
        ),
        "",
        printable(verdict_reason(report)),  # numbers and severity names only
        "",
        f"**Gate:** {counts.new:,} new failing or erroring {_plural(counts.new, 'finding')}, "
        f"{counts.baselined:,} baselined, {counts.waived:,} waived.",
        *_gating_notes(report),
        "",
        "### Results by check",
        "",
        *_check_table(report),
        *_problems(report),
        *_waiver_attention(report),
    ]
    return "\n".join(lines) + "\n"


def write_markdown(report: Report, path: Path) -> None:
    Path(path).write_text(render_markdown(report), encoding="utf-8")


def _gating_notes(report: Report) -> list[str]:
    gating = report.gating
    notes = []
    if gating and gating.waivers and gating.waivers.disabled:
        notes.append("Waivers were **disabled** (`--no-waivers`): every finding is judged as it is.")
    elif gating and gating.waivers:
        notes.append(f"Waivers applied: {gating.waivers.count:,} in the waivers file.")
    if gating and gating.baseline:
        when = rfc3339(gating.baseline.generated_at)
        notes.append(
            f"Baseline of {when}: {gating.baseline.count:,} known failing {_plural(gating.baseline.count, 'finding')}; "
            "only findings not in it fail the gate."
        )
    return ["", *notes] if notes else []


def _check_table(report: Report) -> list[str]:
    statuses = [s.value for s in STATUS_ORDER]
    rows = []
    for meta, findings in report.findings_by_check():
        row = [cell(meta.id), meta.severity.value]
        row += [str(sum(f.status.value == s for f in findings)) for s in statuses]
        row += [str(sum(f.waiver is not None for f in findings)), str(sum(f.baselined for f in findings))]
        rows.append(row)
    return _table(["Check", "Severity", *statuses, "waived", "baselined"], rows, numeric_from=2)


def _problems(report: Report) -> list[str]:
    """Failing and erroring findings, the ones deciding the verdict first."""
    problems = sorted((f for f in report.findings if f.status in (Status.FAIL, Status.ERROR)), key=_gate_order)
    if not problems:
        return ["", "No failing or erroring findings."]
    shown = problems[:MAX_LISTED]
    rows = [
        [
            _gate(f),
            f.status.value.upper(),
            f.severity.value,
            cell(f.check_id),
            cell(f.cluster),
            cell(f.resource.display() if f.resource else None),
            cell(f.message),
        ]
        for f in shown
    ]
    lines = [
        "",
        f"### Failing and erroring findings ({len(problems):,})",
        "",
        *_table(["Gate", "Status", "Severity", "Check", "Cluster", "Resource", "Message"], rows, numeric_from=99),
    ]
    if len(problems) > len(shown):
        lines += ["", f"{len(problems) - len(shown):,} more are listed in report.json and report.html."]
    return lines


def _gate(finding: Finding) -> str:
    if finding.waiver is not None:
        w = finding.waiver
        return f"waived by {cell(w.owner, 80)} until {cell(w.expires, 10)}: {cell(w.reason)}"
    return "baselined" if finding.baselined else "**new**"


def _gate_order(finding: Finding) -> tuple[bool, int, str]:
    return finding.accepted, -finding.severity.rank, finding.check_id


def _waiver_attention(report: Report) -> list[str]:
    """Expired waivers and waivers that match nothing: someone has to renew, fix or remove them."""
    stale = [f for f in report.findings if f.check_id == WAIVERS_ID and f.status is not Status.PASS]
    if not stale:
        return []
    return [
        "",
        f"### Waivers needing attention ({len(stale):,})",
        "",
        *_table(["Waiver"], [[cell(f.message, 2 * MAX_TEXT)] for f in stale], numeric_from=99),
    ]


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
