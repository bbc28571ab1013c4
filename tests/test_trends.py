"""Readiness over time: the evidence store's earlier audits and drill RTOs in report.json, HTML and PDF."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from helpers import empty_estate
from pypdf import PdfReader
from report_factory import estate_findings, make_report
from test_evidence import drill
from test_evidence_chain import T0, audit_record

from auditor.config import AuditConfig
from auditor.engine import audit, build_context
from auditor.evidence import EvidenceStore
from auditor.history import MAX_RUNS, history_of
from auditor.report.html import render_html
from auditor.report.model import Report
from auditor.report.pdf import write_pdf

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "report.schema.json").read_text())
SVG = "{http://www.w3.org/2000/svg}"

# Four earlier audits, oldest first: (verdict, fail, error, warn)
RUNS = [("not-ready", 5, 0, 2), ("not-ready", 3, 1, 2), ("incomplete", 0, 2, 1), ("ready", 0, 0, 1)]


def audits() -> list:
    return [
        audit_record(
            id=f"a{i}",
            started_at=T0 + timedelta(days=i),
            finished_at=T0 + timedelta(days=i, minutes=2),
            verdict=verdict,
            summary={"pass": 50, "warn": warn, "fail": fail, "error": error, "skip": 3},
        )
        for i, (verdict, fail, error, warn) in enumerate(RUNS)
    ]


def drills() -> list:
    """billing/billing-db recovered in 300, 240 and then 420 s; a failed drill and one without an RTO do not count."""
    specs = [
        ("billing", "billing-db", "success", 300.0),
        ("billing", "billing-db", "success", 240.0),
        ("billing", "billing-db", "failure", 900.0),
        ("web", "shop", "success", 95.0),
        ("web", "cart", "success", None),
        ("billing", "billing-db", "success", 420.0),
    ]
    return [
        drill(
            id=f"d{i}",
            app_namespace=namespace,
            app_name=name,
            started_at=T0 + timedelta(days=i),
            finished_at=T0 + timedelta(days=i, minutes=10),
            outcome=outcome,
            rto_seconds=rto,
        )
        for i, (namespace, name, outcome, rto) in enumerate(specs)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "evidence.db"
    with EvidenceStore(path) as opened:
        for record in drills():
            opened.record_drill(record)
        for record in audits():
            opened.record_audit(record)
    return path


def with_history() -> Report:
    report = make_report(estate_findings(20))
    report.history = history_of(audits(), drills())
    return report


def test_an_audit_given_a_store_carries_its_earlier_runs_and_rtos_in_report_json(store: Path) -> None:
    data = audit(build_context(empty_estate(), AuditConfig(), store)).to_json()
    jsonschema.validate(data, SCHEMA)
    history = data["history"]
    assert history["audits_total"] == 4
    assert [(a["id"], a["verdict"], a["summary"]["fail"], a["summary"]["error"]) for a in history["audits"]] == [
        ("a0", "not-ready", 5, 0),
        ("a1", "not-ready", 3, 1),
        ("a2", "incomplete", 0, 2),
        ("a3", "ready", 0, 0),
    ]
    assert history["audits"][0] == {
        "id": "a0",
        "started_at": "2026-11-02T10:00:00Z",
        "finished_at": "2026-11-02T10:02:00Z",
        "verdict": "not-ready",
        "summary": {"pass": 50, "warn": 2, "fail": 5, "error": 0, "skip": 3},
        "source": "snapshot",
        "tool_version": "0.1.0",
        "report_sha256": "ab" * 32,
    }
    assert history["rto"] == [
        {
            "namespace": "billing",
            "name": "billing-db",
            "drills_total": 3,
            "drills": [
                {"id": "d0", "finished_at": "2026-11-02T10:10:00Z", "rto_seconds": 300.0, "mode": "clone"},
                {"id": "d1", "finished_at": "2026-11-03T10:10:00Z", "rto_seconds": 240.0, "mode": "clone"},
                {"id": "d5", "finished_at": "2026-11-07T10:10:00Z", "rto_seconds": 420.0, "mode": "clone"},
            ],
        },
        {
            "namespace": "web",
            "name": "shop",
            "drills_total": 1,
            "drills": [{"id": "d3", "finished_at": "2026-11-05T10:10:00Z", "rto_seconds": 95.0, "mode": "clone"}],
        },
    ]
    assert Report.from_json(data).to_json() == data  # every renderer reads it back from report.json


def test_without_a_store_report_json_has_no_history_and_the_page_says_why() -> None:
    report = audit(build_context(empty_estate(), AuditConfig()))
    assert "history" not in report.to_json()
    assert "This audit was given no evidence store" in render_html(report)


def test_an_empty_store_gives_an_empty_history_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    EvidenceStore(path).close()
    report = audit(build_context(empty_estate(), AuditConfig(), path))
    assert report.to_json()["history"] == {"audits_total": 0, "audits": [], "rto": [], "drills": []}
    page = render_html(report)
    assert "No earlier audit is on record in the evidence store." in page
    assert "No drill is on record in the evidence store." in page
    assert "No successful drill with a measured RTO is on record" in page
    assert 'id="chart-runs"' not in page and 'id="chart-rto"' not in page


def test_only_the_newest_runs_and_drills_are_kept_and_all_are_counted() -> None:
    many = [audit_record(id=f"a{i:03}", finished_at=T0 + timedelta(hours=i)) for i in range(MAX_RUNS + 5)]
    measured = [drill(id=f"d{i:02}", finished_at=T0 + timedelta(hours=i), rto_seconds=float(i)) for i in range(25)]
    history = history_of(many, measured)
    assert history.runs_total == MAX_RUNS + 5
    assert [run.id for run in history.runs] == [f"a{i:03}" for i in range(5, MAX_RUNS + 5)]
    (app,) = history.applications
    assert (app.total, app.drills[0].rto_seconds, app.last.rto_seconds, app.change_seconds) == (25, 5.0, 24.0, 1.0)


def _chart(page: str, chart_id: str) -> ET.Element:
    figure = re.search(rf'<figure class="chart" id="{chart_id}">\s*(<svg.*?</svg>)', page, re.DOTALL)
    assert figure, f"{chart_id} is not in the page"
    return ET.fromstring(figure.group(1))


def _bars(svg: ET.Element) -> list[tuple[str, str]]:
    """(css class, tooltip) of every bar."""
    return [(rect.get("class"), rect.findtext(f"{SVG}title")) for rect in svg.iter(f"{SVG}rect") if rect.get("height")]


def test_html_charts_findings_and_verdict_per_run_with_the_stored_counts() -> None:
    svg = _chart(render_html(with_history()), "chart-runs")
    bars = [bar for bar in _bars(svg) if bar[0].startswith("bar ")]
    assert bars == [
        ("bar fail", "2026-11-02 10:02 fail: 5"),
        ("bar warn", "2026-11-02 10:02 warn: 2"),
        ("bar run-not-ready", "2026-11-02 10:02 verdict: not-ready"),
        ("bar fail", "2026-11-03 10:02 fail: 3"),
        ("bar error", "2026-11-03 10:02 error: 1"),
        ("bar warn", "2026-11-03 10:02 warn: 2"),
        ("bar run-not-ready", "2026-11-03 10:02 verdict: not-ready"),
        ("bar error", "2026-11-04 10:02 error: 2"),
        ("bar warn", "2026-11-04 10:02 warn: 1"),
        ("bar run-incomplete", "2026-11-04 10:02 verdict: incomplete"),
        ("bar warn", "2026-11-05 10:02 warn: 1"),
        ("bar run-ready", "2026-11-05 10:02 verdict: ready"),
    ]
    heights = {
        title: float(rect.get("height")) for rect in svg.iter(f"{SVG}rect") if (title := rect.findtext(f"{SVG}title"))
    }
    # one scale for every bar: 5 fails stand five times as tall as 1 error
    assert heights["2026-11-02 10:02 fail: 5"] == pytest.approx(5 * heights["2026-11-03 10:02 error: 1"], abs=0.2)
    totals = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "value"]
    assert totals == ["7", "6", "3", "1"]  # over each bar: fail + error + warn


def test_html_charts_the_last_rto_per_application_with_earlier_drills_as_ticks() -> None:
    page = render_html(with_history())
    svg = _chart(page, "chart-rto")
    assert [bar for bar in _bars(svg) if bar[0] == "bar rto-last"] == [
        ("bar rto-last", "billing/billing-db: drill of 2026-11-07: 420 s"),
        ("bar rto-last", "web/shop: drill of 2026-11-05: 95 s"),
    ]
    ticks = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "rto-earlier"]
    assert len(ticks) == 2  # billing-db's 300 s and 240 s drills
    bar = next(r for r in svg.iter(f"{SVG}rect") if r.findtext(f"{SVG}title", "").startswith("billing/"))
    start, width = float(bar.get("x")), float(bar.get("width"))
    assert sorted(float(t.get("x1")) - start for t in ticks) == pytest.approx(
        [width * 240 / 420, width * 300 / 420], abs=0.2
    )
    rows = re.findall(r'<table class="trend-rto">.*?</table>', page, re.DOTALL)[0]
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>.*?</td>", rows, re.DOTALL)]
    assert cells == [
        *("billing/billing-db", "3", "2026-11-07T10:10:00Z", "420 s (7m 0s)", "240 s (4m 0s)", "+180 s"),
        *("web/shop", "1", "2026-11-05T10:10:00Z", "95 s (1m 35s)", "none", "—"),
    ]


def test_pdf_prints_the_trend_section_its_charts_and_values(tmp_path: Path) -> None:
    write_pdf(with_history(), tmp_path / "report.pdf")
    pages = [page.extract_text() for page in PdfReader(tmp_path / "report.pdf").pages]
    section = next(text for text in pages if "Findings per audit run" in text)
    for text in ("Readiness over time", "Last drill RTO per application", "billing/billing-db", "+180 s", "420 s"):
        assert text in section
    assert re.search(r"2026-11-05T10:02:00Z\s+ready\s+0\s+0\s+1\s+3\s+50\s+snapshot", section)
    assert re.search(r"2026-11-02T10:02:00Z\s+not-ready\s+5\s+0\s+2\s+3\s+50\s+snapshot", section)
    contents = pages[1]
    match = re.search(r"Readiness over time[\s.]*?(\d+)\s*$", contents, re.MULTILINE)
    assert match and "Findings per audit run" in pages[int(match.group(1)) - 1]
