"""Baselines: written from one audit, read by the next; only failures not in it fail the gate."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from helpers import SAMPLES, sample
from sample_edit import condition, copy_sample, edit

from auditor.baseline import baseline_of, identity, load_baseline, mark_baselined, write_baseline
from auditor.cli import main
from auditor.config import AuditConfig
from auditor.engine import audit, build_context
from auditor.errors import InputError
from auditor.gating import Gate
from auditor.model import CheckMeta, ResourceRef, Severity, Status
from auditor.report.model import Report

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "report.schema.json").read_text())
META = CheckMeta("hub_health", "Hub is healthy", Severity.HIGH, "", "", "", ())
CLUSTER = ResourceRef("cluster.open-cluster-management.io/v1", "ManagedCluster", "prod-west")


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def broken_hub_report() -> Report:
    return audit(build_context(sample("broken-hub"), AuditConfig()))


def test_identity_is_check_cluster_and_resource_never_the_message() -> None:
    first = META.finding(Status.FAIL, "lease stopped at 09:00", cluster="hub", resource=CLUSTER)
    later = META.finding(Status.FAIL, "lease stopped at 09:05", cluster="hub", resource=CLUSTER)
    assert identity(first) == identity(later)
    assert identity(first) != identity(META.finding(Status.FAIL, "x", cluster="prod-west", resource=CLUSTER))


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_written_baseline_reads_back_as_every_failing_identity(tmp_path: Path, suffix: str) -> None:
    report = broken_hub_report()
    path = tmp_path / f"baseline{suffix}"
    write_baseline(report, path)
    text = path.read_text()
    assert "message" not in text and (json.loads(text) if suffix == ".json" else yaml.safe_load(text))
    loaded = load_baseline(path)
    failing = {identity(f) for f in report.findings if f.status is Status.FAIL}
    assert loaded.identities == failing and len(failing) == 8
    assert loaded.generated_at == report.generated_at
    marked = mark_baselined(report.findings, loaded)
    assert {identity(f) for f in marked if f.baselined} == failing
    assert not any(f.baselined for f in marked if f.status is Status.PASS)


def test_only_failures_missing_from_the_baseline_decide_the_verdict(tmp_path: Path) -> None:
    report = broken_hub_report()
    doc = baseline_of(report)
    dropped = doc["findings"].pop(0)  # the estate now "newly" fails this one
    path = tmp_path / "baseline.yaml"
    path.write_text(yaml.safe_dump(doc))
    again = audit(build_context(sample("broken-hub"), AuditConfig()), gate=Gate.load(AuditConfig(), baseline=path))
    new = [f for f in again.findings if f.status is Status.FAIL and not f.baselined]
    assert [identity(f).to_json() for f in new] == [dropped]
    assert again.verdict == "not-ready" and again.gate_counts.new == 1 and again.gate_counts.baselined == 7
    assert again.gating.baseline.count == 7 and again.gating.baseline.file == str(path)
    assert again.provenance.inputs[f"baseline:{path}"] == again.gating.baseline.sha256
    data = json.loads(json.dumps(again.to_json()))
    jsonschema.validate(data, SCHEMA)
    assert Report.from_json(data).to_json() == data and Report.from_json(data).findings == again.findings
    junit = ET.fromstring(_junit(again))
    assert len(junit.findall(".//failure")) == 1
    assert len([s for s in junit.findall(".//skipped") if s.get("message") == "baselined"]) == 7


def _junit(report: Report) -> str:
    from auditor.report.junit import build_junit

    return ET.tostring(build_junit(report), encoding="unicode")


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("schema: drauditor.baseline/v2\ngenerated_at: '2026-11-20T09:00:00Z'\nfindings: []\n", 1, "schema"),
        ("schema: drauditor.baseline/v1\ngenerated_at: yesterday\nfindings: []\n", 2, "RFC 3339"),
        ("schema: drauditor.baseline/v1\ngenerated_at: '2026-11-20T09:00:00Z'\nfindings:\n- check_id: x\n"
         "  cluster: hub\n  resource: {apiVersion: v1, kind: Node, name: n}\n", 6, "namespace: Field required"),
        ("schema: drauditor.baseline/v1\ngenerated_at: '2026-11-20T09:00:00Z'\nfindings:\n- check_id: x\n"
         "  cluster: hub\n  resource: null\n  message: old\n", 7, "Extra inputs"),
        ("schema: drauditor.baseline/v1\nfindings: []\n", 1, "generated_at: Field required"),
        ("[1, 2]\n", 1, "valid dictionary"),
    ],
)  # fmt: skip
def test_a_malformed_baseline_names_the_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_baseline(path)
    assert f"{path}:{line}:" in str(caught.value) and problem in str(caught.value)


def test_cli_baseline_round_trip_passes_the_same_estate_and_fails_a_new_failure(tmp_path: Path) -> None:
    estate = copy_sample("broken-hub", tmp_path / "estate")
    baseline = tmp_path / "baseline.yaml"
    first = run_cli("audit", "--snapshot", str(estate), "--output-dir", str(tmp_path / "o1"),
                    "--write-baseline", str(baseline))  # fmt: skip
    assert first.exit_code == 1, first.output  # writing a baseline does not change this audit's verdict
    assert (
        first.output.splitlines()[-1] == "drauditor: verdict=not-ready fail=8 error=0 new=8 baselined=0 waived=0 exit=1"
    )

    same = run_cli(
        "audit", "--snapshot", str(estate), "--output-dir", str(tmp_path / "o2"), "--baseline", str(baseline)
    )
    assert same.exit_code == 0, same.output
    assert same.output.splitlines()[-1] == "drauditor: verdict=ready fail=8 error=0 new=0 baselined=8 waived=0 exit=0"
    assert json.loads((tmp_path / "o2" / "report.json").read_text())["gating"]["baseline"]["count"] == 8

    # prod-east's ManagedCluster stops reporting too: a failure the baseline does not know.
    edit(
        estate / "hub" / "managedclusters.yaml",
        "ManagedCluster",
        "prod-east",
        lambda mc: condition(mc, "ManagedClusterConditionAvailable").update(status="Unknown"),
    )
    worse = run_cli(
        "audit", "--snapshot", str(estate), "--output-dir", str(tmp_path / "o3"), "--baseline", str(baseline)
    )
    assert worse.exit_code == 1, worse.output
    report = json.loads((tmp_path / "o3" / "report.json").read_text())
    new = [f for f in report["findings"] if f["status"] == "fail" and not f.get("baselined")]
    assert {(f["check_id"], f["resource"]["name"]) for f in new} == {("hub_health", "prod-east")}
    assert worse.output.splitlines()[-1].endswith(f"new={len(new)} baselined=8 waived=0 exit=1")


def test_cli_refuses_a_malformed_baseline_and_side_files_inside_the_bundle(tmp_path: Path) -> None:
    bad = tmp_path / "baseline.json"
    bad.write_text('{"schema": "drauditor.baseline/v1",\n "generated_at": "2026-11-20T09:00:00Z",\n "extra": 1,\n'
                   ' "findings": []}\n')  # fmt: skip
    out = tmp_path / "out"
    result = run_cli("audit", "--snapshot", str(SAMPLES / "healthy"), "--output-dir", str(out), "--baseline", str(bad))
    assert result.exit_code == 2 and f"{bad}:3: baseline: extra: Extra inputs are not permitted" in result.output
    inside = run_cli("audit", "--snapshot", str(SAMPLES / "healthy"), "--output-dir", str(out),
                     "--summary-md", str(out / "summary.md"))  # fmt: skip
    assert inside.exit_code == 2 and "must be outside --output-dir" in inside.output
    assert not out.exists()
