"""Provenance: what ran, with which configuration, by whom, against what and when, in report.json, HTML and PDF."""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import socket
from importlib import import_module
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from helpers import SAMPLES, empty_estate
from pypdf import PdfReader

from auditor import __version__
from auditor.cli import main
from auditor.config import AuditConfig
from auditor.engine import audit, build_context
from auditor.evidence_io import import_json
from auditor.inventory import ClusterAccess
from auditor.live import LiveOptions, access_names, load_live, service_account_name
from auditor.provenance import REDACTED, Catalog, CatalogEntry, catalog_version, redact
from auditor.registry import discover
from auditor.report.html import render_html
from auditor.report.model import Report
from auditor.report.views import settings
from auditor.timeutil import parse_time, rfc3339

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "report.schema.json").read_text())
HEALTHY = SAMPLES / "healthy"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One CLI audit of the healthy sample with a config file and an evidence store; the digests taken beforehand."""
    base = tmp_path_factory.mktemp("provenance")
    config = base / "drauditor.yaml"
    config.write_text(
        "fail_on: high\nthresholds:\n  rtt_ms_max: 7\nceph:\n  keyring: ceph.client.drauditor.keyring\n"
        "  name: client.drauditor\n"
    )
    store = base / "evidence.db"
    import_json(store, HEALTHY / "drills.json")
    digests = {"config": sha256(config), "store": sha256(store)}
    out = base / "out"
    args = ["audit", "--snapshot", str(HEALTHY), "--output-dir", str(out), "--config", str(config)]
    result = CliRunner().invoke(main, [*args, "--evidence", str(store), "--fail-on", "critical"])
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "report.json").read_text())
    return {"report": report, "out": out, "config": config, "store": store, "digests": digests}


def test_report_json_carries_provenance_valid_against_the_schema(audited: dict) -> None:
    report = audited["report"]
    jsonschema.validate(report, SCHEMA)
    provenance = report["provenance"]
    assert provenance["tool"] == {"name": "drauditor", "version": __version__}
    assert set(provenance) == {"tool", "catalog", "config", "run_by", "where", "when", "inputs"}


def test_every_snapshot_file_is_an_input_with_its_sha256(audited: dict) -> None:
    inputs = audited["report"]["provenance"]["inputs"]
    files = {
        p.relative_to(HEALTHY).as_posix(): sha256(p)
        for p in HEALTHY.rglob("*")
        if p.is_file() and (p.name == "snapshot.yaml" or p.parts[len(HEALTHY.parts)] in ("hub", "clusters", "ceph"))
    }
    assert len(files) > 10
    assert {k: v for k, v in inputs.items() if ":" not in k} == files
    assert inputs[f"config:{audited['config']}"] == audited["digests"]["config"]
    assert inputs[f"evidence:{audited['store']}"] == audited["digests"]["store"]
    assert audited["report"]["inputs"] == files  # the top-level field keeps its contract meaning


def test_the_check_catalog_names_each_module_and_its_source_digest(audited: dict) -> None:
    catalog = audited["report"]["provenance"]["catalog"]
    checks, _ = discover()
    assert [c["id"] for c in catalog["checks"]] == sorted(c.meta.id for c in checks)
    for entry in catalog["checks"]:
        assert entry["sha256"] == sha256(Path(import_module(entry["module"]).__file__))
    # The documented recipe, recomputed here by hand.
    rows = [[c["id"], c["module"], c["sha256"]] for c in catalog["checks"]]
    expected = hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()
    assert catalog["version"] == f"sha256:{expected}"


def test_the_catalog_version_changes_with_any_check_and_not_with_order() -> None:
    a, b = CatalogEntry("a", "checks.a", "1" * 64), CatalogEntry("b", "checks.b", "2" * 64)
    assert catalog_version([a, b]) == catalog_version([b, a])
    assert catalog_version([a, b]) != catalog_version([a])
    assert catalog_version([a, b]) != catalog_version([a, CatalogEntry("b", "checks.b", "3" * 64)])
    assert catalog_version([a, b]) != catalog_version([a, CatalogEntry("b", "pack.b", "2" * 64)])
    assert Catalog.of([]).checks == ()


def test_the_config_is_recorded_as_used_with_secrets_redacted(audited: dict) -> None:
    config = audited["report"]["provenance"]["config"]
    assert config["file"] == str(audited["config"])
    assert config["sha256"] == audited["digests"]["config"]
    values = config["values"]
    assert values["fail_on"] == "critical"  # the flag overrode the file: what was used, not what was written
    assert values["thresholds"]["rtt_ms_max"] == 7
    assert values["ceph"]["keyring"] == REDACTED
    assert values["ceph"]["name"] == "client.drauditor"
    assert "ceph.client.drauditor.keyring" not in json.dumps(audited["report"])


def test_who_where_and_when_for_a_snapshot_audit(audited: dict) -> None:
    report = audited["report"]
    provenance = report["provenance"]
    assert provenance["run_by"] == {"os_user": getpass.getuser(), "host": socket.gethostname(), "clusters": []}
    assert provenance["where"] == {
        "source": "snapshot",
        "origin": str(HEALTHY),
        "endpoints": {},
        "contexts": {},
        "ceph": str(HEALTHY / "ceph"),
    }
    when = provenance["when"]
    captured = parse_time(yaml.safe_load((HEALTHY / "snapshot.yaml").read_text())["capturedAt"])
    assert when["captured_at"] == report["captured_at"] == rfc3339(captured)
    assert when["started_at"] <= when["finished_at"] == report["generated_at"]


def test_html_and_pdf_show_the_provenance_of_the_report_rebuilt_from_json(audited: dict) -> None:
    provenance = audited["report"]["provenance"]
    html = (audited["out"] / "report.html").read_text()
    assert html == render_html(Report.from_json(audited["report"]))
    pdf = "\n".join(page.extract_text() for page in PdfReader(audited["out"] / "report.pdf").pages)
    for text in (html, pdf.replace("\n", " ")):
        assert "Appendix C: Provenance" in text
        assert provenance["catalog"]["version"] in text.replace(" ", "")
        assert f"{getpass.getuser()} on host {socket.gethostname()}" in text
        assert "ceph.keyring" in text and REDACTED in text
        assert str(audited["config"]) in text
    for entry in provenance["catalog"]["checks"]:
        assert entry["sha256"] in html
    assert f"evidence:{audited['store']}" in html  # Appendix B lists every input, the store included


def test_provenance_survives_the_json_round_trip(audited: dict) -> None:
    assert Report.from_json(audited["report"]).to_json() == audited["report"]


# Redaction


def test_redact_replaces_values_under_secret_looking_keys_at_any_depth() -> None:
    config = {
        "name": "client.drauditor",
        "API_TOKEN": "t0k3n",
        "s3": {"accessKeyId": "AKIA", "SecretAccessKey": "s3cr3t", "bucket": "drauditor"},
        "users": [{"name": "a", "password": "hunter2"}, {"name": "b", "credentials": {"user": "x"}}],
        "keyring": None,
        "kubeconfig": "/etc/kube/config",
        "monkey_patch": 1,
    }
    assert redact(config) == {
        "name": "client.drauditor",
        "API_TOKEN": REDACTED,
        "s3": {"accessKeyId": REDACTED, "SecretAccessKey": REDACTED, "bucket": "drauditor"},
        "users": [{"name": "a", "password": REDACTED}, {"name": "b", "credentials": REDACTED}],
        "keyring": None,  # unset: nothing to hide, and the reader sees it was not used
        "kubeconfig": "/etc/kube/config",
        "monkey_patch": REDACTED,  # substring match: over-redacting is the safe side
    }
    assert config["API_TOKEN"] == "t0k3n"  # the input is not changed


def test_redact_leaves_values_without_keys_alone() -> None:
    assert redact(["token", {"x": "password"}, 3, None]) == ["token", {"x": "password"}, 3, None]


# Live: names of contexts and users, never credentials


KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {"name": "c-hub", "cluster": {"server": "https://127.0.0.1:1"}},
        {"name": "c-east", "cluster": {"server": "https://127.0.0.1:2"}},
    ],
    "users": [
        {"name": "hub-admin", "user": {"token": "sha256~SECRET-HUB-TOKEN"}},
        {"name": "east-reader", "user": {"token": "sha256~SECRET-EAST-TOKEN"}},
    ],
    "contexts": [
        {"name": "hub", "context": {"cluster": "c-hub", "user": "hub-admin"}},
        {"name": "east", "context": {"cluster": "c-east", "user": "east-reader"}},
    ],
    "current-context": "hub",
}


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return path


def test_access_names_are_the_kubeconfig_context_and_user_names(kubeconfig: Path) -> None:
    assert access_names(kubeconfig, "east") == ("east", "east-reader")
    assert access_names(kubeconfig, None) == ("hub", "hub-admin")  # the current context


def test_a_live_read_records_endpoint_context_and_user_per_cluster_and_no_token(kubeconfig: Path) -> None:
    # Nothing listens on these ports: the read fails fast, and the provenance is still recorded.
    options = LiveOptions(kubeconfig=kubeconfig, attempts=1, connect_timeout=0.5, sleep=lambda _: None)
    estate = load_live("hub", {"prod-east": "east"}, options)
    assert estate.access == (
        ClusterAccess("hub", "https://127.0.0.1:1", "hub", "hub-admin"),
        ClusterAccess("prod-east", "https://127.0.0.1:2", "east", "east-reader"),
    )
    report = audit(build_context(estate, AuditConfig())).to_json()
    provenance = report["provenance"]
    assert provenance["run_by"]["clusters"] == [
        {"cluster": "hub", "context": "hub", "user": "hub-admin"},
        {"cluster": "prod-east", "context": "east", "user": "east-reader"},
    ]
    assert provenance["where"]["endpoints"] == {"hub": "https://127.0.0.1:1", "prod-east": "https://127.0.0.1:2"}
    assert provenance["where"]["contexts"] == {"hub": "hub", "prod-east": "east"}
    assert provenance["where"]["source"] == "live"
    assert "SECRET" not in json.dumps(report)
    jsonschema.validate(report, SCHEMA)


def _jwt(claims: dict) -> str:
    encode = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{encode({'alg': 'RS256'})}.{encode(claims)}.c2lnbmF0dXJl"


def test_in_a_pod_the_service_account_comes_from_the_token_subject(tmp_path: Path, monkeypatch) -> None:
    token = tmp_path / "serviceaccount" / "token"
    token.parent.mkdir()
    token.write_text(_jwt({"sub": "system:serviceaccount:dr-audit:drauditor", "aud": ["https://kubernetes"]}))
    (token.parent / "namespace").write_text("dr-audit")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setattr("auditor.live.SERVICE_TOKEN_FILENAME", str(token))
    assert access_names(None, None) == (None, "system:serviceaccount:dr-audit:drauditor")
    assert "c2lnbmF0dXJl" not in "".join(str(n) for n in access_names(None, None))


def test_without_a_readable_subject_the_pod_namespace_is_named(tmp_path: Path) -> None:
    token = tmp_path / "token"
    (tmp_path / "namespace").write_text("dr-audit\n")
    for content in ("not-a-jwt", _jwt({"iss": "x"}), _jwt({"sub": "alice"})):
        token.write_text(content)
        assert service_account_name(token) == "a service account of namespace dr-audit"
    (tmp_path / "namespace").unlink()
    assert service_account_name(token) is None
    assert service_account_name(tmp_path / "absent") is None


def test_a_report_without_provenance_still_renders_and_says_so() -> None:
    report = audit(build_context(empty_estate(), AuditConfig()))
    report.provenance = None
    data = report.to_json()
    assert "provenance" not in data
    assert Report.from_json(data).provenance is None
    assert "This report was written without provenance" in render_html(Report.from_json(data))


def test_the_config_table_has_one_row_per_setting_by_dotted_path() -> None:
    rows = settings({"fail_on": "high", "ceph": {"keyring": REDACTED, "conf": None}, "live": {"clusters": {}}})
    assert [(row.key, row.value) for row in rows] == [
        ("fail_on", "high"),
        ("ceph.keyring", REDACTED),
        ("ceph.conf", "null"),
        ("live.clusters", "{}"),
    ]
