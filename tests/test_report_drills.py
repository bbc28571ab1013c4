"""The "Failover drills" chapter: drill records with details (schema 1) in report.json, HTML and PDF."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import SAMPLES
from markupsafe import escape
from pypdf import PdfReader
from report_factory import estate_findings, make_report
from test_evidence import drill
from test_evidence_chain import T0

from auditor import drill_details
from auditor.evidence import DrillRecord, EvidenceStore
from auditor.evidence_io import import_json
from auditor.history import MAX_DRILLS, History, history_of
from auditor.report.html import render_html
from auditor.report.model import Report
from auditor.report.pdf import write_pdf
from auditor.timeutil import rfc3339

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "report.schema.json").read_text())
SVG = "{http://www.w3.org/2000/svg}"
STEP_NAMES = ("snapshot_ready", "content_ready", "pvc_bound", "vmi_scheduled", "vmi_running", "agent_connected")


def vm(name: str, seconds: list[float], *, outcome: str = "ready", error: str | None = None, removed=()) -> dict:
    steps = [
        {"step": step, "seconds": s, "wall": rfc3339(T0 + timedelta(seconds=s))}
        for step, s in zip(STEP_NAMES, seconds, strict=False)
    ]
    return {
        "namespace": "shop",
        "name": name,
        "outcome": outcome,
        "rto_seconds": seconds[-1] if outcome == "ready" else None,
        "error": error,
        "steps": steps,
        "removed": list(removed),
    }


def details(vms: list[dict], *, rto_target: float | None = 300.0, rpo_target: float | None = 0.0, **extra) -> dict:
    return {
        "schema": 1,
        "primary": "prod-east",
        "secondary": "prod-west",
        "namespace": "drauditor-drill-20261102t100000-abc123",
        "policy": "metro-policy",
        "replication": "sync",
        "targets": {"rto_seconds": rto_target, "rpo_seconds": rpo_target},
        "started": {"wall": rfc3339(T0), "monotonic": 1000.5},
        "vms": vms,
        "rpo": {
            "method": "canary",
            "seconds": 0.0,
            "window_seconds": 0.13,
            "resolution_seconds": 0.2,
            "snapshot_requested": "2026-11-02T10:00:00.001000Z",
            "canary_timestamp": "2026-11-02T09:59:59.871000Z",
            "stretch_degraded": False,
        },
        "objects": [{"cluster": "prod-west", "apiVersion": "v1", "kind": "Namespace", "name": "x", "uid": "u-1"}],
        "cleanup": {"complete": True, "residue": []},
        "error": None,
        "preflight": {"forced": False, "refusals": []},
        "contexts": {"hub": "hub-ctx", "prod-east": "east-ctx"},
        **extra,
    }


SLOW = details(
    [
        vm("shop-db", [2.0, 5.0, 12.0, 15.0, 40.0, 412.5], removed=["interface backup (multus network vlan) detached"]),
        vm("shop-web", [1.5, 4.0, 9.0, 130.0], outcome="timeout", error="VMI never reached phase Running"),
    ]
)


def history() -> list[DrillRecord]:
    """web/shop: an old drill without details, a failure, then a slow success with details; erp/ledger: one success
    without details (imported)."""
    return [
        drill(id="d-old", app_namespace="web", app_name="shop", finished_at=T0, rto_seconds=280.0),
        drill(
            id="d-fail",
            app_namespace="web",
            app_name="shop",
            finished_at=T0 + timedelta(days=1),
            outcome="failure",
            rto_seconds=None,
            rpo_seconds=None,
            details=details([vm("shop-db", [2.0, 5.0], outcome="failed", error="PVC never bound")]),
        ),
        drill(
            id="d-new",
            app_namespace="web",
            app_name="shop",
            started_at=T0 + timedelta(days=2),
            finished_at=T0 + timedelta(days=2, minutes=9),
            mode="snapshot-restore",
            run_by="bob",
            tool_version="0.2.0",
            rto_seconds=412.5,
            rpo_seconds=0.0,
            details=SLOW,
        ),
        drill(id="d-erp", app_namespace="erp", app_name="ledger", finished_at=T0, rto_seconds=90.0),
    ]


def report_with(drills: list[DrillRecord]) -> Report:
    report = make_report(estate_findings(5))
    report.history = history_of([], drills)
    report.evidence_source = "evidence.db"
    return report


def section(page: str, anchor: str) -> str:
    match = re.search(rf'<section class="drill" id="{anchor}">(.*?)</section>', page, re.DOTALL)
    assert match, f"{anchor} is not in the page"
    return match.group(1)


def cells(html: str, table: str) -> list[str]:
    body = re.search(rf'<table class="{table}">(.*?)</table>', html, re.DOTALL)
    assert body, table
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>.*?</td>", body.group(1), re.DOTALL)]


def chart(page: str, chart_id: str) -> ET.Element:
    figure = re.search(rf'<figure class="chart" id="{chart_id}">\s*(<svg.*?</svg>)', page, re.DOTALL)
    assert figure, f"{chart_id} is not in the page"
    return ET.fromstring(figure.group(1))


# --- report.json -------------------------------------------------------------------------------------------


def test_report_json_lists_every_drill_per_application_and_the_newest_ones_details() -> None:
    data = report_with(history()).to_json()
    jsonschema.validate(data, SCHEMA)
    erp, shop = data["history"]["drills"]
    assert (erp["namespace"], erp["name"], erp["drills_total"], erp["latest_details"]) == ("erp", "ledger", 1, None)
    assert [(d["id"], d["outcome"], d["rto_seconds"]) for d in shop["drills"]] == [
        ("d-old", "success", 280.0),
        ("d-fail", "failure", None),
        ("d-new", "success", 412.5),
    ]
    assert shop["drills"][-1] == {
        "id": "d-new",
        "started_at": "2026-11-04T10:00:00Z",
        "finished_at": "2026-11-04T10:09:00Z",
        "outcome": "success",
        "mode": "snapshot-restore",
        "run_by": "bob",
        "tool_version": "0.2.0",
        "rto_seconds": 412.5,
        "rpo_seconds": 0.0,
    }
    latest = shop["latest_details"]
    # What the chapter renders, in the record's own shape; object UIDs and kubeconfig contexts stay in the store.
    expected = {k: v for k, v in SLOW.items() if k not in ("objects", "contexts")}
    assert latest == {**expected, "started": {"wall": "2026-11-02T10:00:00Z"}}
    # The older RTO series is unchanged: successes with an RTO only.
    assert [d["id"] for d in data["history"]["rto"][1]["drills"]] == ["d-old", "d-new"]
    assert Report.from_json(data).to_json() == data


def test_a_report_json_written_before_the_drill_chapter_still_reads() -> None:
    data = report_with(history()).to_json()["history"]
    del data["drills"]
    assert History.from_json(data).drills == ()


def test_only_the_newest_drills_are_listed_and_all_are_counted() -> None:
    many = [drill(id=f"d{i:02}", finished_at=T0 + timedelta(hours=i), outcome="aborted") for i in range(MAX_DRILLS + 3)]
    (app,) = history_of([], many).drills
    assert (app.total, app.drills[0].id, app.latest.id) == (MAX_DRILLS + 3, "d03", f"d{MAX_DRILLS + 2:02}")
    page = render_html(report_with(many))
    assert f"The newest {MAX_DRILLS} of {MAX_DRILLS + 3} drills on record are listed" in page


def test_details_that_are_not_schema_1_or_have_odd_fields_are_read_as_unknown() -> None:
    assert drill_details.parse({"vms": ["billing-db"]}) is None  # an older record's free-form details
    assert drill_details.parse("text") is None
    odd = drill_details.parse(
        details(
            [
                {"name": "a", "steps": [{"step": "rebooted", "seconds": 3}, {"step": "pvc_bound", "seconds": "9"}]},
                {"namespace": "x"},  # no name: not a VM
                vm("b", [1.0, 2.0]),
            ],
            rto_target="fast",
            cleanup={"complete": "yes", "residue": [{"kind": "Pod", "name": "p"}]},
        )
    )
    assert odd is not None and odd.rto_target is None and odd.rpo_target == 0.0
    assert (odd.vms[0].name, odd.vms[0].outcome, odd.vms[0].steps) == ("a", "unknown", ())
    assert [s.step for s in odd.vms[1].steps] == ["snapshot_ready", "content_ready"]
    assert odd.cleanup is not None and odd.cleanup.complete is None
    assert odd.cleanup.residue == ('{"kind": "Pod", "name": "p"}',)


# --- HTML --------------------------------------------------------------------------------------------------


def test_html_shows_the_latest_drill_its_targets_and_its_history() -> None:
    page = render_html(report_with(history()))
    assert '<a href="#drills">Failover drills</a>' in page and '<a href="#drill-web-shop">web/shop</a>' in page
    shop = section(page, "drill-web-shop")
    facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", shop, re.DOTALL))
    assert "<code>d-new</code>" in facts["Latest drill"] and "success" in facts["Outcome"]
    assert (facts["Run by"], facts["Tool version"], facts["Mode"]) == ("bob", "0.2.0", "snapshot-restore")
    assert facts["Failover"].startswith("prod-east → prod-west")
    assert cells(shop, "drill-objectives") == [
        *("RTO", "412.5 s", "300.0 s", "missed"),
        *("RPO", "0 s", "0 s", "met"),
    ]
    assert cells(shop, "drill-history") == [
        *("2026-11-04T10:09:00Z", "success", "412.5 s", "0 s", "snapshot-restore", "d-new"),
        *("2026-11-03T10:00:00Z", "failure", "n/a", "n/a", "clone", "d-fail"),
        *("2026-11-02T10:00:00Z", "success", "280.0 s", "0 s", "clone", "d-old"),
    ]
    vms = cells(shop, "drill-vms")
    assert vms[:3] == ["shop/shop-db", "ready", "412.5 s"] and "multus network vlan" in vms[3]
    assert vms[4:7] == ["shop/shop-web", "timeoutVMI never reached phase Running", "n/a"]
    assert "window 0.13 s at a resolution of 0.2 s, so the RPO is 0 s" in shop
    assert "complete: nothing the drill created is left" in shop


def test_html_timeline_draws_a_segment_per_step_from_t0_and_marks_the_vm_that_did_not_recover() -> None:
    svg = chart(render_html(report_with(history())), "chart-drill-web-shop")
    bars = [(r.get("class"), r.findtext(f"{SVG}title"), r) for r in svg.iter(f"{SVG}rect") if "bar" in r.get("class")]
    db = [b for b in bars if b[1].startswith("shop/shop-db")]
    assert [cls for cls, _, _ in db] == [f"bar step-{step}" for step in STEP_NAMES]
    assert db[-1][1] == "shop/shop-db: agent (+372.5 s): 412.5 s"
    # one scale: each segment starts where the previous ended, and widths are proportional to the step durations
    starts = [float(r.get("x")) for *_, r in db]
    widths = [float(r.get("width")) for *_, r in db]
    assert starts[1:] == pytest.approx([s + w for s, w in zip(starts, widths, strict=False)][:-1], abs=0.2)
    assert widths[-1] / sum(widths) == pytest.approx(372.5 / 412.5, abs=0.002)
    texts = [(t.get("class"), t.text) for t in svg.iter(f"{SVG}text")]
    assert ("value", "RTO 412.5 s") in texts
    assert ("value vm-failed", "timeout after 130.0 s") in texts
    assert ("axis-label vm-failed", "shop/shop-web") in texts
    (failed_mark,) = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "vm-failed-mark"]
    web_end = max(float(r.get("x")) + float(r.get("width")) for _, t, r in bars if t.startswith("shop/shop-web"))
    assert float(failed_mark.get("x1")) == pytest.approx(web_end, abs=0.2)
    (target,) = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "threshold"]
    origin = starts[0]
    assert float(target.get("x1")) - origin == pytest.approx((starts[-1] + widths[-1] - origin) * 300 / 412.5, abs=0.5)


def test_a_drill_without_details_renders_without_a_timeline_and_says_why() -> None:
    page = render_html(report_with(history()))
    erp = section(page, "drill-erp-ledger")
    assert "carries no step timings" in erp and "<svg" not in erp
    assert cells(erp, "drill-objectives") == [
        *("RTO", "90.0 s", "none", "no target"),
        *("RPO", "0 s", "none", "no target"),
    ]
    assert cells(erp, "drill-history") == ["2026-11-02T10:00:00Z", "success", "90.0 s", "0 s", "clone", "d-erp"]


def test_a_failed_latest_drill_measured_nothing_against_its_targets() -> None:
    failed = history()[:2]
    shop = section(render_html(report_with(failed)), "drill-web-shop")
    assert cells(shop, "drill-objectives") == [
        *("RTO", "n/a", "300.0 s", "not measured"),
        *("RPO", "n/a", "0 s", "not measured"),
    ]
    assert "failed after 5.0 s" in shop and "PVC never bound" in shop


def test_the_rto_trend_chart_marks_each_applications_target() -> None:
    svg = chart(render_html(report_with(history())), "chart-rto")
    bar = next(r for r in svg.iter(f"{SVG}rect") if r.findtext(f"{SVG}title", "").startswith("web/shop"))
    (target,) = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "threshold"]
    start, width = float(bar.get("x")), float(bar.get("width"))
    assert float(target.get("x1")) - start == pytest.approx(width * 300 / 412.5, abs=0.2)
    assert "RTO target" in [t.text for t in svg.iter(f"{SVG}text")]


def test_without_a_store_the_chapter_says_why() -> None:
    report = make_report(estate_findings(3))
    assert "so there are no drill records to show" in render_html(report)


def test_drill_text_is_escaped() -> None:
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    record = drill(
        id="d-x",
        app_name=hostile,
        details=details(
            [vm(hostile, [1.0, 2.0], outcome="failed", error=hostile, removed=[hostile])],
            error=hostile,
            cleanup={"complete": False, "residue": [hostile]},
            preflight={"forced": True, "refusals": [hostile]},
        ),
    )
    page = render_html(report_with([record]))
    assert "<script>alert(2)" not in page and "<img src=x" not in page
    assert page.count(str(escape(hostile))) >= 6  # heading, error, preflight, VM error, removed note, residue


# --- PDF ---------------------------------------------------------------------------------------------------


def test_pdf_prints_the_drill_chapter(tmp_path: Path) -> None:
    write_pdf(report_with(history()), tmp_path / "report.pdf")
    pages = [page.extract_text() for page in PdfReader(tmp_path / "report.pdf").pages]
    chapter = [page for page in pages[2:] if "Failover drills" in page]  # its running header; not the contents
    text = " ".join(" ".join(chapter).split())  # lines joined: table cells wrap
    assert "Achieved against target" in text
    for expected in ("web/shop", "d-new", "prod-east → prod-west", "multus network vlan", "timeout after 130.0 s"):
        assert expected in text
    assert re.search(r"RTO\s+412\.5 s\s+300\.0 s\s+missed", text)
    assert re.search(r"2026-11-03T10:00:00Z\s+failure\s+n/a\s+n/a\s+clone\s+d-fail", text)
    assert "carries no step timings" in text  # erp/ledger


# --- the bundled sample ------------------------------------------------------------------------------------


def _consistent(record: dict[str, Any]) -> None:
    data = record["details"]
    assert data["schema"] == 1 and record["mode"] == "snapshot-restore"
    rtos = []
    for machine in data["vms"]:
        seconds = [step["seconds"] for step in machine["steps"]]
        assert seconds == sorted(seconds) and machine["outcome"] == "ready"
        assert machine["rto_seconds"] == seconds[-1]
        rtos.append(machine["rto_seconds"])
    assert record["rto_seconds"] == max(rtos) <= data["targets"]["rto_seconds"]
    assert record["rpo_seconds"] == data["rpo"]["seconds"] == 0.0
    assert data["rpo"]["window_seconds"] <= data["rpo"]["resolution_seconds"]
    assert record["started_at"] < data["started"]["wall"] < record["finished_at"]
    assert data["namespace"] == f"drauditor-drill-{record['id']}"


def test_the_healthy_samples_drills_carry_consistent_details_and_render(tmp_path: Path) -> None:
    records = json.loads((SAMPLES / "healthy" / "drills.json").read_text())
    for record in records:
        _consistent(record)
    import_json(tmp_path / "evidence.db", SAMPLES / "healthy" / "drills.json")
    with EvidenceStore(tmp_path / "evidence.db") as store:
        page = render_html(report_with(store.drills()))
    for anchor, vms in (("drill-billing-billing-drpc", 2), ("drill-openshift-dr-ops-erp-drpc", 1)):
        assert section(page, anchor)
        svg = chart(page, f"chart-{anchor}")
        values = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "value"]
        assert len(values) == vms and all(text.startswith("RTO ") for text in values)
