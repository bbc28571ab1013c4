"""intersite_rtt on real dump_osd_network captures of a Ceph 16.2.15 stretch cluster (tests/fixtures/ceph).

The captured cluster ran on one host, so its inter-site figures are about 1 ms; fail and warn cases lower
thresholds.rtt_ms_max below the captured figures instead of changing them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import FIXTURES, ceph_estate, ceph_fixture, context_for

from auditor.config import AuditConfig, Thresholds
from auditor.model import Finding, Status
from auditor.registry import load_module
from auditor.runner import run_check

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CHECK = load_module("intersite_rtt", "checks.intersite_rtt")  # proves META is valid
RENDERED_KEYS = {  # the report renderer reads these from every finding of this check
    "sites",
    "avg_1min_ms",
    "avg_5min_ms",
    "avg_15min_ms",
    "max_ms",
    "osd_pairs",
    "threshold_ms",
    "threshold_source",
    "sources",
    "same_site",
}


def run(outputs: dict[str, Any], threshold: float | None = None) -> list[Finding]:
    config = AuditConfig(thresholds=Thresholds(rtt_ms_max=threshold)) if threshold else None
    findings = run_check(CHECK, context_for(ceph_estate(outputs), config=config))
    for finding in findings:
        assert finding.check_id == "intersite_rtt" and finding.cluster == "ceph"
        assert set(finding.evidence) >= RENDERED_KEYS, finding.evidence
    return findings


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def test_meta_loads_through_the_registry() -> None:
    assert CHECK.meta.severity.value == "high" and "ceph:osd_network" in CHECK.meta.kinds_read


def test_healthy_capture_passes_with_worst_case_figures() -> None:
    finding = only(run(ceph_fixture("healthy")))
    assert finding.status is Status.PASS
    assert finding.resource is not None and finding.resource.display() == "SiteLink dc1-dc2"
    ev = finding.evidence
    assert ev["sites"] == ["dc1", "dc2"]
    # osd.0 -> osd.3 front is the slowest cross-site pair; osd.0 -> osd.3 front also had the highest ping
    assert (ev["avg_1min_ms"], ev["avg_5min_ms"], ev["avg_15min_ms"], ev["max_ms"]) == (1.241, 1.241, 1.241, 8.343)
    assert ev["osd_pairs"] == 4  # 0-2, 0-3, 1-2, 1-3
    assert ev["threshold_ms"] == 10.0 and "10 ms" in ev["threshold_source"]
    assert ev["sources"] == [
        "osd_network.mgr.x",
        "osd_network.osd.0",
        "osd_network.osd.1",
        "osd_network.osd.2",
        "osd_network.osd.3",
    ]
    assert ev["same_site"]["dc1"] == {
        "avg_1min_ms": 0.582,
        "avg_5min_ms": 0.582,
        "avg_15min_ms": 0.582,
        "max_ms": 1.769,
        "osd_pairs": 1,
    }
    assert set(ev["same_site"]) == {"dc1", "dc2"}
    assert "worst case" in ev["aggregation"] and ev["current"] is True
    assert finding.message == (
        "Inter-site RTT between datacenters dc1 and dc2 is within 10 ms: worst OSD-pair average 1.241 ms (1 min), "
        "1.241 ms (5 min), 1.241 ms (15 min), peak 8.343 ms over 4 OSD pairs."
    )


@pytest.mark.parametrize("keep", ["osd_network.mgr.x", "osd"])
def test_mgr_dump_and_osd_dumps_give_the_same_figures(keep: str) -> None:
    outputs = ceph_fixture("healthy")
    for stem in [s for s in outputs if s.startswith("osd_network.")]:
        if (stem == "osd_network.mgr.x") != (keep == "osd_network.mgr.x"):
            del outputs[stem]
    ev = only(run(outputs)).evidence
    assert (ev["avg_1min_ms"], ev["max_ms"], ev["osd_pairs"]) == (1.241, 8.343, 4)


def test_plain_contract_file_name_is_read() -> None:
    outputs = ceph_fixture("healthy")
    dumps = {s: outputs.pop(s) for s in [s for s in outputs if s.startswith("osd_network.")]}
    outputs["osd_network"] = dumps["osd_network.osd.1"]  # only osd.1's dump, under the contract's name
    ev = only(run(outputs)).evidence
    assert ev["sources"] == ["osd_network"] and ev["avg_1min_ms"] == 0.743 and ev["osd_pairs"] == 2


def test_averages_over_the_threshold_fail() -> None:
    finding = only(run(ceph_fixture("healthy"), threshold=1.0))
    assert finding.status is Status.FAIL
    assert "exceeds 1 ms in the 1 and 5-minute averages" in finding.message
    assert finding.evidence["threshold_ms"] == 1.0


def test_only_a_peak_over_the_threshold_warns() -> None:
    finding = only(run(ceph_fixture("healthy"), threshold=5.0))
    assert finding.status is Status.WARN
    assert "within 5 ms now, but not its 15-minute average or peak" in finding.message


def test_degraded_capture_cannot_confirm_the_link() -> None:
    # osd.0/osd.1 still list osd.2/osd.3 with their last figures ("stale": false) after dc2 died
    finding = only(run(ceph_fixture("degraded")))
    assert finding.status is Status.ERROR
    assert "cannot be confirmed because osd.2, osd.3 are down" in finding.message
    assert finding.evidence["current"] is False
    assert finding.evidence["not_current"]["down_osds"] == [2, 3]
    assert set(finding.evidence["same_site"]) == {"dc1"}


def test_degraded_capture_with_old_figures_over_the_threshold_fails() -> None:
    finding = only(run(ceph_fixture("degraded"), threshold=1.0))
    assert finding.status is Status.FAIL
    assert "exceeded 1 ms in the last figures Ceph kept, which are no longer current because osd.2, osd.3" in (
        finding.message
    )


def test_figures_that_stopped_updating_are_not_current() -> None:
    # captured 17:28:20: dc1 pairs updated at 17:28:12, cross-site pairs still show 17:26:08
    finding = only(run(ceph_fixture("scenarioC_tiebreaker_down")))
    assert finding.status is Status.ERROR
    assert finding.evidence["not_current"]["lagging_entries"] == 16
    assert "last updated over 90 s before the newest of their dump" in finding.message


def test_recovered_capture_passes() -> None:
    assert only(run(ceph_fixture("recovered"))).status is Status.PASS


def test_empty_dumps_are_an_error() -> None:
    finding = only(run(ceph_fixture("misconfigured_pools_health_ok")))
    assert finding.status is Status.ERROR and "hold no entries" in finding.message


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        ("osd_tree", "osd_tree.json"),
        ("dumps", "osd_network.json (or osd_network.<daemon>.json)"),
    ],
)
def test_missing_inputs_are_an_error_naming_them(drop: str, named: str) -> None:
    outputs = ceph_fixture("healthy")
    for stem in list(outputs):
        if stem == drop or (drop == "dumps" and stem.startswith("osd_network")):
            del outputs[stem]
    finding = only(run(outputs))
    assert finding.status is Status.ERROR and named in finding.message and finding.evidence["sites"] == []


def test_no_ceph_data_at_all_is_an_error() -> None:
    assert only(run({})).status is Status.ERROR


def test_wrong_type_is_an_error_finding_naming_file_and_field() -> None:
    outputs = ceph_fixture("healthy")
    outputs["osd_network.osd.2"]["entries"][0]["from osd"] = "osd.2"  # in memory
    finding = only(run(outputs))
    assert finding.status is Status.ERROR
    assert finding.message == (
        "Inter-site RTT cannot be measured: Ceph output osd_network.osd.2.json is malformed: entries[0].from osd "
        "is a string ('osd.2'), expected an integer."
    )


def test_osds_outside_the_tree_are_reported_not_counted() -> None:
    outputs = ceph_fixture("healthy")
    outputs["osd_network.osd.0"]["entries"][0]["to osd"] = 9  # in memory: a peer the tree does not know
    ev = only(run(outputs)).evidence
    assert ev["unmapped_osds"] == [9]


def test_healthy_samples_pass() -> None:
    for estate in ("healthy", "broken-protection"):
        finding = only(run_check(CHECK, context_for(ceph_dir=SAMPLES / estate / "ceph")))
        assert finding.status is Status.PASS


def _derive_module():
    spec = importlib.util.spec_from_file_location("derive_wan_latency", SAMPLES / "tools" / "derive_wan_latency.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_broken_site_rtt_file_is_exactly_the_scripted_derivation_of_a_capture() -> None:
    captured = FIXTURES / "ceph" / "degraded"
    derived = _derive_module().derive(
        json.loads((captured / "osd_network.mgr.x.json").read_text()),
        json.loads((captured / "osd_tree.json").read_text()),
        14,
    )
    sample = json.loads((SAMPLES / "broken-site" / "ceph" / "osd_network.mgr.x.json").read_text())
    assert sample == derived
    original = json.loads((captured / "osd_network.mgr.x.json").read_text())
    changed = [i for i, (a, b) in enumerate(zip(original["entries"], sample["entries"], strict=True)) if a != b]
    assert len(changed) == 16  # the cross-site entries only


def test_broken_site_sample_fails() -> None:
    finding = only(run_check(CHECK, context_for(ceph_dir=SAMPLES / "broken-site" / "ceph")))
    assert finding.status is Status.FAIL
    assert finding.evidence["avg_1min_ms"] == 15.241 and finding.evidence["sources"] == ["osd_network.mgr.x"]
    assert "no longer current because osd.2, osd.3 are down" in finding.message
