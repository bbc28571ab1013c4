"""The Markdown summary, rendered by cmark-gfm (GitHub's own Markdown library) the way a pull-request comment is.

Raw HTML is let through when rendering here (GitHub would sanitize some of it), so any tag cluster text managed to
inject shows up in the HTML these tests read.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
from click.testing import CliRunner
from cmarkgfm.cmark import Options
from helpers import SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st
from report_factory import VM_META, make_report, vm_finding

from auditor.cli import main
from auditor.model import Finding, ResourceRef, Status, WaiverMark
from auditor.report.markdown import MAX_LISTED, MAX_TEXT, cell, render_markdown
from auditor.report.model import Gating, WaiverSource
from auditor.report.terminal import printable

HOSTILE = (
    "```\n# Owned\n<script>alert(1)</script> <img src=x onerror=alert(1)> <b>bold</b> <!-- c --> | --- |\r\n"
    "- item [link](https://evil.example/a) ![img](https://evil.example/b.png) https://evil.example/c "
    "www.evil.example user@evil.example @octocat #12 **strong** _em_ \\| `tick` ``two`` &amp; &#60;x&#62;"
)
TAGS_ALLOWED = {"h2", "h3", "p", "strong", "table", "thead", "tbody", "tr", "th", "td", "code"}


def github(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


Cell = tuple[list[str], str]  # the tags inside a table cell, and its text


class Tables(HTMLParser):
    """Every tag in the page, and each table as its rows of cells (the header row first)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.tables: list[list[list[Cell]]] = []
        self._cell: tuple[list[str], list[str]] | None = None
        self.feed(page)

    @property
    def rows(self) -> list[list[Cell]]:
        return [row for table in self.tables for row in table]

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ([], [])
        elif self._cell is not None:
            self._cell[0].append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append((self._cell[0], "".join(self._cell[1])))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1].append(data)


def hostile_report():
    waived = Finding(
        check_id="vm_dr_coverage",
        title=VM_META.title,
        status=Status.FAIL,
        severity=VM_META.severity,
        message=HOSTILE,
        cluster="ocp|dc1",
        resource=ResourceRef("kubevirt.io/v1", "VirtualMachine", "vm`1`", "ns"),
        waiver=WaiverMark(reason=HOSTILE, owner="@octocat <b>", expires="2026-12-31", line=3),
    )
    findings = [
        vm_finding(HOSTILE, "ns", HOSTILE, status=Status.FAIL, message=HOSTILE),
        vm_finding("ocp-dc1", "ns", "vm-2", status=Status.ERROR, message=HOSTILE),
        waived,
    ]
    report = make_report(findings)
    report.gating = Gating(waivers=WaiverSource("waivers.yaml", "ab" * 32, disabled=False, count=1))
    return report


def test_hostile_cluster_and_waiver_text_stays_inert_text_in_its_cell() -> None:
    markdown = render_markdown(hostile_report())
    page = Tables(github(markdown))
    assert page.tags <= TAGS_ALLOWED, page.tags - TAGS_ALLOWED  # no link, image, script, heading, list or HTML
    (_, *rows) = next(t for t in page.tables if t[0][0][1] == "Gate")
    assert len(rows) == 3 and all(len(row) == 7 for row in rows)
    shown = printable(HOSTILE)
    new_fail, error, waived = rows
    assert new_fail[0] == (["strong"], "new") and new_fail[4] == (["code"], shown) and new_fail[6] == (["code"], shown)
    too_long = printable(f"VirtualMachine ns/{HOSTILE}"[: MAX_TEXT - 1] + "…")  # cut before it is made printable
    assert new_fail[5] == (["code"], too_long)
    assert error[6] == (["code"], shown)
    assert waived[3:6] == [(["code"], "vm_dr_coverage"), (["code"], "ocp|dc1"), (["code"], "VirtualMachine ns/vm`1`")]
    assert waived[0] == (["code", "code", "code"], f"waived by @octocat <b> until 2026-12-31: {shown}")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=MAX_TEXT - 1))
def test_any_text_is_one_code_span_in_one_cell(text: str) -> None:
    page = Tables(github(f"| a | b |\n| --- | --- |\n| {cell(text)} | end |\n"))
    assert page.tags <= {"table", "thead", "tbody", "tr", "th", "td", "code"}
    assert len(page.rows) == 2 and len(page.rows[1]) == 2 and page.rows[1][1] == ([], "end")
    if text.strip() == "":
        assert page.rows[1][0] == ([], "—")
    else:
        assert page.rows[1][0] == (["code"], printable(text))


def test_the_summary_gives_verdict_counts_per_check_failures_and_gating(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("- {check: vm_dr_coverage, reason: migration, owner: dr-team, expires: 2026-12-31}\n")
    summary = tmp_path / "summary.md"
    result = CliRunner().invoke(
        main,
        ["audit", "--snapshot", str(SAMPLES / "broken-protection"), "--output-dir", str(tmp_path / "out"),
         "--waivers", str(waivers), "--summary-md", str(summary)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 1
    markdown = summary.read_text()
    assert markdown.startswith("## drauditor: NOT READY\n")
    assert "](" not in markdown and "http" not in markdown  # link-free
    page = Tables(github(markdown))
    assert "a" not in page.tags
    tables = page.tables
    facts = dict(zip([c[1] for c in tables[0][0]], [c[1] for c in tables[0][1]], strict=True))
    assert facts["Verdict"] == "not-ready" and facts["Exit code"] == "1" and facts["Hub"] == "hub"
    checks = {row[0][1]: [c[1] for c in row[1:]] for row in tables[1][1:]}
    assert checks["vm_dr_coverage"] == ["critical", "5", "0", "0", "0", "2", "5", "0"]
    assert checks["waivers"] == ["low", "0", "0", "0", "0", "1", "0", "0"]
    assert "**Gate:** 6 new failing or erroring findings, 0 baselined, 5 waived." in markdown
    failing = tables[2][1:]
    assert len(failing) == 11
    assert [row[0][1] for row in failing] == ["new"] * 6 + ["waived by dr-team until 2026-12-31: migration"] * 5
    assert {row[3][1] for row in failing[:6]} == {
        "drpc_state",
        "vrg_state",
        "last_test_failover",
        "kube_object_protection_freshness",
    }


def test_waivers_disabled_and_long_lists_are_said_so() -> None:
    findings = [vm_finding("ocp-dc1", "ns", f"vm-{i}", status=Status.FAIL) for i in range(MAX_LISTED + 7)]
    report = make_report(findings)
    report.gating = Gating(waivers=WaiverSource(None, None, disabled=True, count=0))
    markdown = render_markdown(report)
    assert "Waivers were **disabled** (`--no-waivers`)" in markdown
    assert "7 more are listed in report.json and report.html." in markdown
    assert len(re.findall(r"^\| \*\*new\*\* \|", markdown, flags=re.M)) == MAX_LISTED
    assert html.unescape(github(markdown)).count("<td>FAIL</td>") == MAX_LISTED
