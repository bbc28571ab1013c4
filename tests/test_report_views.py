"""Renderer views and chart geometry: pure functions of Report.findings."""

from __future__ import annotations

import pytest
from report_factory import (
    RTT_META,
    VM_META,
    ceph_finding,
    drill_finding,
    estate_findings,
    make_report,
    rtt_finding,
    vm_finding,
)

from auditor.model import Finding, Severity, Status
from auditor.report import charts, views


def test_status_breakdown_counts_every_status_in_enum_order():
    report = make_report([vm_finding("c1", "ns", "a"), vm_finding("c1", "ns", "b", status=Status.FAIL), ceph_finding()])
    assert [(s.status, s.count) for s in views.status_breakdown(report)] == [
        ("pass", 2),
        ("warn", 0),
        ("fail", 1),
        ("error", 0),
        ("skip", 0),
    ]


def test_vm_rows_read_the_coverage_evidence_and_sort_for_lookup():
    report = make_report(
        [
            vm_finding("ocp-dc2", "web", "zeta", disks=3, protected=1, status=Status.FAIL, problems=("p1", "p2")),
            vm_finding("ocp-dc1", "web", "alpha", drpc=None, status=Status.FAIL),
            vm_finding("ocp-dc1", "db", "omega"),
            ceph_finding(),
        ]
    )
    rows = views.vm_rows(report)
    assert [(r.cluster, r.namespace, r.name) for r in rows] == [
        ("ocp-dc1", "db", "omega"),
        ("ocp-dc1", "web", "alpha"),
        ("ocp-dc2", "web", "zeta"),
    ]
    zeta = rows[2]
    assert (zeta.disks_protected, zeta.disks_total, zeta.problems, zeta.status) == (1, 3, ("p1", "p2"), "fail")
    assert (zeta.drpc, zeta.drpolicy) == ("apps/app-drpc", "metro-5m")
    assert rows[1].drpc is None


def test_vm_rows_skip_check_level_errors_and_tolerate_odd_evidence():
    crashed = VM_META.finding(Status.ERROR, "The check crashed: KeyError", evidence={"exception": "KeyError"})
    odd = Finding(
        "vm_dr_coverage",
        "t",
        Status.WARN,
        Severity.HIGH,
        "odd",
        cluster=None,
        evidence={"vm": {"cluster": "c9", "namespace": "n", "name": "odd-vm"}, "disks": "not-a-list", "drpc": 7},
    )
    rows = views.vm_rows(make_report([crashed, odd]))
    assert len(rows) == 1
    row = rows[0]
    assert (row.cluster, row.namespace, row.name) == ("c9", "n", "odd-vm")
    assert (row.disks_total, row.disks_protected, row.drpc, row.problems) == (0, 0, None, ())


def test_app_coverage_buckets_by_verdict_with_the_unprotected_bucket_first():
    report = make_report(
        [
            vm_finding("c", "a", "v1", drpc="a/drpc"),
            vm_finding("c", "a", "v2", drpc="a/drpc", status=Status.WARN),
            vm_finding("c", "a", "v3", drpc="a/drpc", status=Status.ERROR),
            vm_finding("c", "b", "v4", drpc="b/drpc"),
            vm_finding("c", "b", "v5", drpc="b/drpc", status=Status.FAIL),
            vm_finding("c", "b", "v6", drpc="b/drpc", status=Status.FAIL),
            vm_finding("c", "b", "v8", drpc="b/drpc", status=Status.FAIL),
            vm_finding("c", "x", "v7", drpc=None, status=Status.FAIL),
        ]
    )
    apps = views.app_coverage(report)
    assert [a.drpc for a in apps] == [None, "b/drpc", "a/drpc"]  # then most uncovered first
    assert apps[0].counts == {"protected": 0, "at-risk": 0, "unprotected": 1, "not-evaluated": 0}
    assert apps[2].counts == {"protected": 1, "at-risk": 1, "unprotected": 0, "not-evaluated": 1}
    assert apps[1].drpolicy == "metro-5m"
    assert sum(a.total for a in apps) == 8


def test_rtt_pairs_read_numbers_and_skip_findings_without_a_site_pair():
    no_data = RTT_META.finding(Status.ERROR, "No heartbeat data.", evidence={"sources": []})
    bad_types = RTT_META.finding(
        Status.WARN, "odd", evidence={"sites": ["a", "b"], "max_ms": True, "avg_1min_ms": "3", "osd_pairs": 2.0}
    )
    pairs = views.rtt_pairs(make_report([rtt_finding(("dc2", "dc3"), max_ms=12.0), no_data, bad_types]))
    assert [p.sites for p in pairs] == [("a", "b"), ("dc2", "dc3")]
    odd, real = pairs
    assert (odd.latency.max_ms, odd.latency.avg_1min_ms, odd.latency.osd_pairs) == (None, None, 2)
    assert real.status == "fail" and real.latency.max_ms == 12.0 and real.threshold_ms == 10.0
    assert real.label == "dc2 ↔ dc3"
    assert [s.label for s in real.same_site] == ["within dc2", "within dc3"]


def test_failover_tests_are_listed_worst_first():
    report = make_report(
        [
            drill_finding("a/ok", age_days=3),
            drill_finding("b/never", age_days=None),
            drill_finding("c/old", age_days=200),
        ]
    )
    tests = views.failover_tests(report)
    assert [(t.drpc, t.status) for t in tests] == [("b/never", "fail"), ("c/old", "fail"), ("a/ok", "pass")]
    never = tests[0]
    assert (never.last_success, never.rto_seconds, never.drills) == (None, None, 0)
    assert (tests[2].source, tests[2].rto_seconds, tests[2].drills, tests[2].max_age_days) == (
        "evidence store",
        184.0,
        1,
        90,
    )


def test_check_sections_split_attention_from_passing_and_count_what_the_limit_left_out():
    findings = [vm_finding("c", "ns", f"vm-{i}", status=Status.FAIL if i < 3 else Status.PASS) for i in range(10)]
    report = make_report([*findings, ceph_finding()])
    full = {s.meta.id: s for s in views.check_sections(report)}
    assert len(full["vm_dr_coverage"].attention) == 3 and len(full["vm_dr_coverage"].passing) == 7
    assert full["vm_dr_coverage"].omitted == ()

    limited = {s.meta.id: s for s in views.check_sections(report, detail_limit=4)}
    vm = limited["vm_dr_coverage"]
    assert [f.status for f in vm.attention] == ["fail"] * 3 and len(vm.passing) == 1
    assert [(c.status, c.count) for c in vm.omitted] == [("pass", 6)] and vm.omitted_total == 6
    assert (vm.count("fail"), vm.count("pass"), vm.count("warn"), vm.total) == (3, 7, 0, 10)
    assert vm.lists_vms and not limited["ceph_stretch_health"].lists_vms
    assert limited["intersite_rtt"].total == 0  # a check without findings keeps its section


def test_check_sections_keep_findings_of_unknown_checks():
    stray = Finding("pack_check", "From a pack that failed to load", Status.ERROR, Severity.HIGH, "Not loaded.")
    sections = views.check_sections(make_report([stray]))
    assert sections[-1].meta.id == "pack_check" and sections[-1].anchor == "check-pack-check"
    assert sections[-1].attention[0].message == "Not loaded."


def test_anchors_never_carry_markup_from_ids():
    stray = Finding('x" onclick="alert(1)', "t", Status.ERROR, Severity.HIGH, "m")
    anchor = views.check_sections(make_report([stray], checks=[]))[0].anchor
    assert anchor == "check-x--onclick--alert-1-"


def test_evidence_items_render_scalars_as_text_and_nested_values_as_json():
    items = views.evidence_items({"a": None, "b": True, "c": 1.5, "d": {"k": [1, "é"]}, "e": "text"})
    assert [(i.key, i.text, i.nested) for i in items] == [
        ("a", "null", False),
        ("b", "true", False),
        ("c", "1.5", False),
        ("d", '{"k": [1, "é"]}', True),
        ("e", "text", False),
    ]


@pytest.mark.parametrize(
    ("findings", "fail_on", "verdict", "reason"),
    [
        ([vm_finding("c", "n", "v", status=Status.FAIL)], Severity.HIGH, "not-ready", "1 failing finding at or above"),
        (
            [drill_finding("a/b", age_days=None), VM_META.finding(Status.ERROR, "x")],
            Severity.HIGH,
            "incomplete",
            "No failing finding at or above high severity (1 more below that severity), but 1 result could not",
        ),
        ([ceph_finding()], Severity.INFO, "ready", "No failing finding at or above info severity, and every check"),
    ],
)
def test_verdict_reason_states_the_rule_with_the_reports_numbers(findings, fail_on, verdict, reason):
    report = make_report(findings, fail_on=fail_on)
    assert report.verdict == verdict
    assert views.verdict_reason(report).startswith(reason)


def test_headlines_leave_out_figures_without_data():
    assert views.build(make_report([ceph_finding()])).headlines == ()
    view = views.build(make_report(estate_findings(14)))
    assert [h.label for h in view.headlines] == [
        "VMs protected",
        "Worst inter-site RTT (max)",
        "Applications with a recent failover test",
    ]
    assert view.headlines[0].value == "12 / 14" and view.headlines[0].css_class == "bad"
    assert view.headlines[1].css_class == "good"


def test_build_caps_the_failover_table_but_not_the_vm_appendix():
    report = make_report(estate_findings(30, drpcs=8))
    view = views.build(report, detail_limit=5)
    assert len(view.failover_tests) == 5 and view.failover_omitted == 3
    assert view.vm_count == 30
    assert [g.cluster for g in view.vm_clusters] == ["ocp-dc1", "ocp-dc2"]
    assert views.build(report).failover_omitted == 0


# Chart geometry


def test_status_chart_bars_are_proportional_and_labelled():
    chart = charts.status_chart(views.status_breakdown(make_report(estate_findings(14))))
    assert chart is not None
    by_status = {bar.css_class: bar for bar in chart.bars}
    assert set(by_status) == {"pass", "warn", "fail", "error", "skip"}
    assert by_status["pass"].value == "17" and by_status["fail"].value == "3"
    assert by_status["pass"].height == pytest.approx(by_status["fail"].height * 17 / 3, abs=0.2)
    assert by_status["warn"].height == 0
    baseline = by_status["pass"].y + by_status["pass"].height
    assert all(bar.y + bar.height == pytest.approx(baseline, abs=0.1) for bar in chart.bars)
    assert charts.status_chart(views.status_breakdown(make_report([]))) is None


def test_coverage_chart_stacks_buckets_and_sums_the_tail():
    apps = tuple(
        views.AppCoverage(
            f"ns/app-{i}", None, {"protected": 10 - i, "at-risk": 0, "unprotected": i, "not-evaluated": 0}
        )
        for i in range(5)
    )
    chart = charts.coverage_chart(apps, max_rows=3)
    assert chart is not None
    row_labels = [label.text for label in chart.labels if label.css_class == "axis-label"]
    assert row_labels == ["ns/app-0", "ns/app-1", "ns/app-2", "2 more DRPCs"]
    assert chart.note and "other 2" in chart.note
    first_row = [bar for bar in chart.bars if bar.label.startswith("ns/app-1:")]
    assert [b.css_class for b in first_row] == ["protected", "unprotected"]
    assert first_row[0].x + first_row[0].width == pytest.approx(first_row[1].x, abs=0.2)
    assert first_row[0].width == pytest.approx(first_row[1].width * 9, abs=0.5)  # 9 protected : 1 unprotected
    row_widths = {}
    for bar in chart.bars:
        row_widths[bar.y] = row_widths.get(bar.y, 0) + bar.width
    assert max(row_widths.values()) - min(row_widths.values()) < 0.5  # every row is a full-width share
    assert [label.text for label in chart.labels if label.css_class == "value"] == ["10 VMs"] * 3 + ["20 VMs"]
    tail = [bar for bar in chart.bars if bar.label.startswith("2 more")]
    assert [b.value for b in tail] == ["13", "7"]  # (7+6) protected, (3+4) unprotected
    assert charts.coverage_chart(()) is None


def test_coverage_chart_clips_long_labels_but_keeps_them_whole_in_tooltips():
    long_name = "namespace-with-a-very-long-name/drpc-with-an-even-longer-name-than-that"
    apps = (views.AppCoverage(long_name, None, {"protected": 1, "at-risk": 0, "unprotected": 0, "not-evaluated": 0}),)
    chart = charts.coverage_chart(apps)
    label = next(label for label in chart.labels if label.css_class == "axis-label")
    assert label.text.endswith("…") and len(label.text) < len(long_name)
    assert [label.text for label in chart.labels if label.css_class == "value"] == ["1 VM"]
    assert chart.bars[0].label.startswith(long_name)


def test_rtt_chart_draws_the_threshold_and_marks_bars_over_it():
    pairs = views.rtt_pairs(make_report([rtt_finding(("dc1", "dc2"), max_ms=12.5)]))
    chart = charts.rtt_chart(pairs)
    assert chart is not None
    (threshold,) = chart.markers
    over = [bar for bar in chart.bars if "over" in bar.css_class.split()]
    assert [bar.label for bar in over] == ["dc1 ↔ dc2 max"]
    assert over[0].y < threshold.y1  # taller than the line
    assert all(bar.y > threshold.y1 for bar in chart.bars if bar not in over)
    baseline = next(rule for rule in chart.rules if rule.css_class == "axis")
    # the line sits at 10/12.5 of the max bar's height above the baseline
    assert baseline.y1 - threshold.y1 == pytest.approx((baseline.y1 - over[0].y) * 10 / 12.5, abs=0.3)
    assert any(label.text == "10 ms limit" for label in chart.labels)
    assert charts.rtt_chart(()) is None


def test_rtt_chart_marks_missing_values_instead_of_drawing_zero():
    finding = RTT_META.finding(Status.WARN, "partial", evidence={"sites": ["a", "b"], "max_ms": 3.0})
    chart = charts.rtt_chart(views.rtt_pairs(make_report([finding])))
    assert [bar.label for bar in chart.bars] == ["a ↔ b max"]
    assert sum(1 for label in chart.labels if label.text == "n/a") == 3
    assert chart.markers == ()


@pytest.mark.parametrize(
    ("peak", "top", "step"), [(0, 1.0, 0.25), (7, 8, 2), (40, 40, 10), (13.5, 15, 5), (4999, 6000, 2000)]
)
def test_axis_scale_is_round(peak, top, step):
    assert charts._scale(peak) == (pytest.approx(top), pytest.approx(step))


def test_a_huge_evidence_value_is_cut_in_the_rendered_views_only() -> None:
    from auditor.report.views import EVIDENCE_TEXT_LIMIT, evidence_items

    demand = [{"vm": f"billing/vm-{i}", "cpu": "4", "memory": "16Gi"} for i in range(5000)]
    (item,) = evidence_items({"demand": demand})
    assert item.nested and len(item.text) < EVIDENCE_TEXT_LIMIT + 100
    assert item.text.startswith('[{"vm": "billing/vm-0"') and "the whole value is in report.json" in item.text
    (small,) = evidence_items({"demand": demand[:3]})
    assert "report.json" not in small.text and small.text.count("billing/vm-") == 3
