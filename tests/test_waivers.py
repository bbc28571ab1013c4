"""Waivers: glob matching, the expiry day, stale and expired waivers reported, strict files, and every format."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from click.testing import CliRunner
from helpers import SAMPLES, sample

from auditor.cli import main
from auditor.config import AuditConfig, load_config
from auditor.engine import audit, build_context
from auditor.errors import InputError
from auditor.gating import Gate
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.report.model import Report, verdict_of
from auditor.waivers import RESERVED_ID, apply_waivers, load_waivers

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "report.schema.json").read_text())
META = CheckMeta("vm_dr_coverage", "VMs are protected", Severity.CRITICAL, "", "", "", ())
VM = "kubevirt.io/v1"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def vm(cluster: str, namespace: str, name: str, status: Status = Status.FAIL, kind: str = "VirtualMachine") -> Finding:
    return META.finding(
        status, f"{name} is not protected", cluster=cluster, resource=ResourceRef(VM, kind, name, namespace)
    )


def waivers_file(tmp_path: Path, text: str, name: str = "waivers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_waiver(tmp_path: Path, expires: str = "2026-12-31", **globs: str) -> Path:
    lines = [f"  {key}: {json.dumps(value)}" for key, value in globs.items()]
    body = "\n".join(lines)
    return waivers_file(
        tmp_path, f"- check: vm_dr_coverage\n{body}\n  reason: accepted\n  owner: team-a\n  expires: {expires}\n"
    )


def waived(findings: list[Finding]) -> list[str]:
    return [f.resource.name for f in findings if f.waiver is not None and f.resource]


def test_a_waiver_matches_check_cluster_namespace_name_and_kind_by_glob(tmp_path: Path) -> None:
    findings = [
        vm("prod-east", "billing", "billing-db"),
        vm("prod-east", "billing", "billing-web"),
        vm("prod-west", "billing", "billing-dr"),
        vm("prod-east", "crm", "crm-db"),
        vm("prod-east", "billing", "billing-pvc", kind="PersistentVolumeClaim"),
    ]
    cases = {
        (): ["billing-db", "billing-web", "billing-dr", "crm-db", "billing-pvc"],
        (("cluster", "prod-e*"),): ["billing-db", "billing-web", "crm-db", "billing-pvc"],
        (("namespace", "billing"), ("name", "*-db")): ["billing-db"],
        (("cluster", "prod-[ew]???"), ("name", "billing-?b")): ["billing-db"],
        (("kind", "Virtual*"), ("namespace", "b*")): ["billing-db", "billing-web", "billing-dr"],
        (("cluster", "Prod-East"),): [],  # Kubernetes names are case-sensitive, and so is the match
    }
    for globs, expected in cases.items():
        wf = load_waivers(one_waiver(tmp_path, **dict(globs)))
        assert waived(apply_waivers(findings, wf, NOW)) == expected, globs
    other_check = waivers_file(tmp_path, "- {check: 'peer_*', reason: r, owner: o, expires: 2026-12-31}\n")
    assert waived(apply_waivers(findings, load_waivers(other_check), NOW)) == []


def test_a_finding_without_resource_matches_only_the_default_namespace_and_name(tmp_path: Path) -> None:
    finding = META.finding(Status.FAIL, "stretch mode is off", cluster=None)
    assert apply_waivers([finding], load_waivers(one_waiver(tmp_path)), NOW)[0].waiver is not None
    assert apply_waivers([finding], load_waivers(one_waiver(tmp_path, name="x*")), NOW)[0].waiver is None
    assert apply_waivers([finding], load_waivers(one_waiver(tmp_path, kind="*")), NOW)[0].waiver is None


def test_passing_and_skipped_findings_are_never_waived_and_a_waiver_matching_only_them_is_stale(tmp_path: Path) -> None:
    findings = [vm("prod-east", "billing", "ok", Status.PASS), vm("prod-east", "billing", "na", Status.SKIP)]
    result = apply_waivers(findings, load_waivers(one_waiver(tmp_path)), NOW)
    assert [f.waiver for f in result[:2]] == [None, None]
    (review,) = result[2:]
    assert review.check_id == RESERVED_ID and review.status is Status.WARN
    assert "matches no finding that is not passing" in review.message and review.evidence["matched"] == 0


def test_the_waived_finding_keeps_its_status_and_carries_the_waiver(tmp_path: Path) -> None:
    path = one_waiver(tmp_path, name="billing-db")
    finding = apply_waivers([vm("prod-east", "billing", "billing-db")], load_waivers(path), NOW)[0]
    assert finding.status is Status.FAIL and finding.accepted
    assert finding.waiver.to_dict() == {"reason": "accepted", "owner": "team-a", "expires": "2026-12-31", "line": 1}
    assert verdict_of([finding], Severity.INFO) == "ready"
    assert verdict_of([vm("prod-east", "billing", "billing-db")], Severity.INFO) == "not-ready"


def test_a_waived_error_no_longer_makes_the_audit_incomplete(tmp_path: Path) -> None:
    error = vm("prod-west", "billing", "billing-db", Status.ERROR)
    result = apply_waivers([error], load_waivers(one_waiver(tmp_path)), NOW)
    assert verdict_of(result, Severity.INFO) == "ready"
    assert verdict_of([error], Severity.INFO) == "incomplete"


def test_a_waiver_holds_through_its_expiry_day_and_not_a_second_longer(tmp_path: Path) -> None:
    wf = load_waivers(one_waiver(tmp_path, expires="2026-11-20"))
    finding = vm("prod-east", "billing", "billing-db")
    last_moment = datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC)
    day_after = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    held = apply_waivers([finding], wf, last_moment)
    assert held[0].waiver is not None and held[1].status is Status.PASS
    lapsed = apply_waivers([finding], wf, day_after)
    assert lapsed[0].waiver is None and verdict_of(lapsed, Severity.INFO) == "not-ready"
    review = lapsed[1]
    assert review.check_id == RESERVED_ID and review.status is Status.WARN
    assert f"{wf.path}:1" in review.message and "expired on 2026-11-20" in review.message
    assert review.evidence["owner"] == "team-a" and review.evidence["reason"] == "accepted"
    assert review.evidence["findings"] == ["vm_dr_coverage fail: prod-east: VirtualMachine billing/billing-db"]
    # The day is the audit clock's day in UTC: 20:00 on the 20th in New York is already the 21st.
    evening_in_new_york = datetime(2026, 11, 20, 20, 0, tzinfo=ZoneInfo("America/New_York"))
    assert apply_waivers([finding], wf, evening_in_new_york)[0].waiver is None


def test_the_first_unexpired_matching_waiver_in_file_order_wins(tmp_path: Path) -> None:
    path = waivers_file(
        tmp_path,
        "- {check: vm_dr_coverage, reason: old, owner: a, expires: 2020-01-01}\n"
        "- {check: vm_dr_coverage, name: 'billing-*', reason: first, owner: b, expires: 2026-12-31}\n"
        "- {check: '*', reason: second, owner: c, expires: 2026-12-31}\n",
    )
    result = apply_waivers([vm("prod-east", "billing", "billing-db")], load_waivers(path), NOW)
    assert result[0].waiver.reason == "first" and result[0].waiver.line == 2
    assert [f.status for f in result[1:]] == [Status.WARN, Status.PASS, Status.PASS]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (
            "- check: a\n  reason: r\n  owner: o\n  expires: 2026-12-31\n  team: x\n",
            5,
            "Extra inputs are not permitted",
        ),
        (
            "- check: a\n  reason: r\n  owner: o\n  expires: 2026-12-31\n"
            "- check: b\n  owner: o\n  expires: 2026-12-31\n",
            5,
            "reason: Field required",
        ),
        ("- check: a\n  reason: r\n  owner: o\n  expires: 2026-12-31T00:00:00Z\n", 4, "YYYY-MM-DD"),
        ("- check: a\n  reason: r\n  owner: o\n  expires: 2026-02-30\n", 4, "day is out of range"),
        ("- check: a\n  reason: r\n  owner: o\n  expires: 20261231\n", 4, "YYYY-MM-DD"),
        ("- check: a\n  reason: '   '\n  owner: o\n  expires: 2026-12-31\n", 2, "reason"),
        ("- check: 7\n  reason: r\n  owner: o\n  expires: 2026-12-31\n", 1, "valid string"),
        ("check: a\nreason: r\n", 1, "valid list"),
        ("- check: a\n  reason: [unclosed\n", 3, "malformed YAML"),
        ("- check: a\n  check: b\n", 2, "duplicate key"),
    ],
)
def test_a_malformed_waivers_file_names_the_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = waivers_file(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_waivers(path)
    assert f"{path}:{line}:" in str(caught.value) and problem in str(caught.value)


def test_an_empty_waivers_file_waives_nothing(tmp_path: Path) -> None:
    assert load_waivers(waivers_file(tmp_path, "# no accepted risks\n")).entries == ()


def test_the_config_names_the_waivers_file_relative_to_itself(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    one_waiver(folder)
    (folder / "drauditor.yaml").write_text("waivers: waivers.yaml\n")
    config = load_config(folder / "drauditor.yaml")
    assert config.waivers == (folder / "waivers.yaml").resolve()
    assert len(Gate.load(config).waivers.entries) == 1
    assert Gate.load(config, no_waivers=True).waivers is None


def test_an_audit_with_waivers_reports_them_and_round_trips_through_json(tmp_path: Path) -> None:
    path = waivers_file(
        tmp_path,
        "- {check: vm_dr_coverage, cluster: prod-east, namespace: billing, reason: migrating, owner: ops, "
        "expires: 2026-12-31}\n- {check: drpc_state, reason: gone, owner: ops, expires: 2026-12-31}\n",
    )
    ctx = build_context(sample("broken-protection"), AuditConfig())
    report = audit(ctx, gate=Gate.load(AuditConfig(), waivers=path))
    marked = [f for f in report.findings if f.waiver]
    assert {(f.check_id, f.resource.name) for f in marked} == {
        ("vm_dr_coverage", "billing-report"),
        ("vm_dr_coverage", "billing-archive"),
        ("drpc_state", "crm-drpc"),
    }
    assert report.gate_counts.waived == 3 and report.verdict == "not-ready"
    assert RESERVED_ID in {m.id for m in report.checks}
    assert report.gating.waivers.file == str(path) and report.gating.waivers.count == 2
    assert report.provenance.inputs[f"waivers:{path}"] == report.gating.waivers.sha256
    data = json.loads(json.dumps(report.to_json()))
    jsonschema.validate(data, SCHEMA)
    assert Report.from_json(data).to_json() == data
    assert Report.from_json(data).findings == report.findings


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_waivers_everything_then_no_waivers_judges_everything(tmp_path: Path) -> None:
    path = waivers_file(
        tmp_path, "- check: '*'\n  reason: 'known outage, INC-42'\n  owner: dr-team\n  expires: 2026-12-31\n"
    )
    out = tmp_path / "out"
    result = run_cli("audit", "--snapshot", str(SAMPLES / "broken-protection"), "--output-dir", str(out),
                     "--waivers", str(path))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == "drauditor: verdict=ready fail=11 error=0 new=0 baselined=0 waived=11 exit=0"
    assert "(waived by dr-team until 2026-12-31: known outage, INC-42)" in result.output
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "ready" and report["summary"]["fail"] == 11
    assert all(f["waiver"]["owner"] == "dr-team" for f in report["findings"] if f["status"] == "fail")
    junit = ET.parse(out / "report.junit.xml").getroot()
    assert not junit.findall(".//failure")
    skipped = [s.get("message") for s in junit.findall(".//skipped") if s.get("message", "").startswith("waived")]
    assert skipped == ["waived by dr-team until 2026-12-31: known outage, INC-42"] * 11
    html = (out / "report.html").read_text()
    assert html.count('<span class="mark">Waived</span> by dr-team until 2026-12-31: known outage, INC-42') == 11

    strict = tmp_path / "strict"
    result = run_cli("audit", "--snapshot", str(SAMPLES / "broken-protection"), "--output-dir", str(strict),
                     "--waivers", str(path), "--no-waivers")  # fmt: skip
    assert result.exit_code == 1, result.output
    assert f"Waivers: disabled (--no-waivers): {path} not applied" in result.output
    assert result.output.splitlines()[-1].endswith("new=11 baselined=0 waived=0 exit=1")
    report = json.loads((strict / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["gating"]["waivers"] == {"file": str(path), "sha256": None, "disabled": True, "count": 0}
    assert not any("waiver" in f for f in report["findings"])
    assert "Waivers were disabled for this audit" in (strict / "report.html").read_text()


def test_cli_refuses_a_malformed_waivers_file_before_reading_the_estate(tmp_path: Path) -> None:
    path = waivers_file(tmp_path, "- check: a\n  reason: r\n  owner: o\n  expires: next week\n")
    result = run_cli("audit", "--snapshot", str(tmp_path / "no-such-snapshot"), "--output-dir", str(tmp_path / "o"),
                     "--waivers", str(path))  # fmt: skip
    assert result.exit_code == 2
    assert f"{path}:4: waiver: [0].expires" in result.output
    assert not (tmp_path / "o").exists()
