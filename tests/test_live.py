"""Live audits against real kube-apiservers (the lab): same findings as the snapshot, read-only RBAC proven.

One fresh lab holds the healthy sample estate. Users: `auditor` is bound to deploy/rbac/reader.yaml exactly;
`partial` to the same role minus VirtualMachines; `nobody` has no role at all.
"""

from __future__ import annotations

import base64
import copy
import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import SAMPLES
from lab.launcher import Lab, missing_binaries
from lab.loader import load

from auditor.capture import write_snapshot
from auditor.cli import main
from auditor.config import AuditConfig
from auditor.engine import audit, build_context
from auditor.evidence_io import import_json
from auditor.kinds import HUB_KINDS, KINDS, MANAGED_KINDS, OPTIONAL_KINDS
from auditor.live import LiveOptions, RequestStats, load_live
from auditor.model import Status
from auditor.registry import discover
from auditor.snapshot import load_ceph, load_snapshot

pytestmark = pytest.mark.skipif(
    bool(missing_binaries()), reason="no Kubernetes lab binaries on this machine; scripts/test builds them"
)
ROLE = Path(__file__).resolve().parent.parent / "deploy" / "rbac" / "reader.yaml"
CLUSTERS = {"prod-east": "prod-east", "prod-west": "prod-west"}
USERS = {"auditor": ("drauditor-auditors",), "partial": ("drauditor-partial",), "nobody": ()}


def reader_role() -> dict:
    return next(d for d in yaml.safe_load_all(ROLE.read_text()) if d["kind"] == "ClusterRole")


def bind(lab: Lab, role: dict, group: str) -> None:
    for cluster in lab.clusters:
        rest = lab.rest(cluster)
        rest.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role["metadata"]["name"]},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role["metadata"]["name"],
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
        }
        rest.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)


@pytest.fixture(scope="module")
def estate_lab() -> Iterator[Lab]:
    with Lab(users=USERS) as lab:
        load(lab, SAMPLES / "healthy")
        bind(lab, reader_role(), "drauditor-auditors")
        partial = copy.deepcopy(reader_role())
        partial["metadata"]["name"] = "drauditor-partial"
        for rule in partial["rules"]:
            rule["resources"] = [r for r in rule["resources"] if r != "virtualmachines"]
        bind(lab, partial, "drauditor-partial")
        yield lab


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("evidence") / "evidence.db"
    import_json(path, SAMPLES / "healthy" / "drills.json")
    return path


def kubeconfig_for(lab: Lab, user: str) -> Path:
    return lab.write_kubeconfig(lab.token(user))


def live_flags(lab: Lab, user: str) -> list[str]:
    """The CLI flags that audit the module's lab as ``user``."""
    clusters = [flag for name in CLUSTERS for flag in ("--cluster", f"{name}={name}")]
    return ["--kubeconfig", str(kubeconfig_for(lab, user)), "--hub-context", "hub", *clusters]


def live_estate(lab: Lab, user: str, **options):
    return load_live(
        "hub",
        CLUSTERS,
        LiveOptions(kubeconfig=kubeconfig_for(lab, user), **options),
        ceph=load_ceph(SAMPLES / "healthy" / "ceph", SAMPLES / "healthy", {}),
    )


def vm_readers() -> set[str]:
    """The checks that read VirtualMachines: exactly these become incomplete when VirtualMachines cannot be read."""
    checks, _ = discover()
    return {check.meta.id for check in checks if "VirtualMachine" in check.meta.kinds_read}


def judged(report, with_message: bool = True) -> list[tuple]:
    resource = lambda f: f.resource.display() if f.resource else None  # noqa: E731
    return sorted(
        (f.check_id, f.status.value, f.cluster, resource(f)) + ((f.message,) if with_message else ())
        for f in report.findings
    )


def test_the_role_grants_only_reads_of_what_an_audit_lists() -> None:
    granted = {
        (group, resource)
        for rule in reader_role()["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    needed = {(KINDS[k].group, KINDS[k].plural) for k in HUB_KINDS + MANAGED_KINDS}
    assert granted == needed
    assert {verb for rule in reader_role()["rules"] for verb in rule["verbs"]} == {"get", "list", "watch"}


def test_live_audit_with_exactly_the_shipped_role_matches_the_snapshot_audit(estate_lab: Lab, store: Path) -> None:
    live_ctx = build_context(live_estate(estate_lab, "auditor"), AuditConfig(), store)
    assert live_ctx.now_source == "start of the live read"
    offline_ctx = build_context(load_snapshot(SAMPLES / "healthy"), AuditConfig(), store)
    # The live read happens days after the sample's capturedAt: judged at that same moment, every age agrees.
    live = audit(replace(live_ctx, now=offline_ctx.now))
    offline = audit(offline_ctx)
    assert live.verdict == "ready", [f.message for f in live.findings if f.status is not Status.PASS]
    assert judged(live) == judged(offline)
    assert live.scope.source == "live" and "hub=https://127.0.0.1:" in live.scope.origin
    assert {key.split("/")[1] for key in live.input_digests if key.startswith("live/")} == {"hub", *CLUSTERS}


def test_capture_audits_exactly_like_the_live_read(estate_lab: Lab, store: Path, tmp_path: Path) -> None:
    estate = live_estate(estate_lab, "auditor")
    write_snapshot(estate, tmp_path / "capture")
    captured = load_snapshot(tmp_path / "capture")
    assert captured.captured_at == estate.captured_at
    live = audit(build_context(estate, AuditConfig(), store))
    replay = audit(build_context(captured, AuditConfig(), store))
    assert [f.to_dict() for f in live.findings] == [f.to_dict() for f in replay.findings]
    # Provenance names each cluster's endpoint, context and kubeconfig user, and never the token used.
    assert {(a.cluster, a.endpoint, a.context, a.user) for a in live.provenance.access} == {
        (name, estate_lab.urls[name], name, "lab-user") for name in ("hub", *CLUSTERS)
    }
    assert estate_lab.token("auditor") not in json.dumps(live.to_json(), default=str)


def test_a_role_missing_one_kind_gives_an_error_naming_kind_cluster_and_verb(
    estate_lab: Lab, store: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "audit",
            *live_flags(estate_lab, "partial"),
            "--ceph",
            str(SAMPLES / "healthy" / "ceph"),
            "--evidence",
            str(store),
            "--output-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 3, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    errors = [f for f in report["findings"] if f["status"] == "error"]
    assert {f["check_id"] for f in errors} == vm_readers()
    assert {f["cluster"] for f in errors} == set(CLUSTERS)
    for finding in errors:
        assert "VirtualMachine could not be read on" in finding["message"]
        assert "list virtualmachines.kubevirt.io" in finding["message"] and "403" in finding["message"]
    # everything else was still read and judged
    assert {f["check_id"] for f in report["findings"] if f["status"] == "pass"} >= {
        "ceph_stretch_health",
        "intersite_rtt",
        "last_test_failover",
    }


def test_no_role_at_all_is_incomplete_not_a_crash(estate_lab: Lab) -> None:
    estate = live_estate(estate_lab, "nobody")
    unreadable = {(cluster, kind) for cluster, kind, _ in estate.unavailable()}
    expected = {("hub", k) for k in HUB_KINDS} | {(c, k) for c in CLUSTERS for k in MANAGED_KINDS}
    # Optional kinds the lab has no CRD for (PlacementRule) are "none exist"; every other kind is refused.
    assert {(c, k) for c, k in expected if k not in OPTIONAL_KINDS} <= unreadable <= expected
    assert ("hub", "PlacementRule") not in unreadable
    assert all("refused" in reason and "403" in reason for _, _, reason in estate.unavailable())
    report = audit(build_context(estate, AuditConfig()))
    assert report.verdict == "incomplete"


def test_small_pages_give_the_same_result_with_more_requests(estate_lab: Lab) -> None:
    one_page, paged = RequestStats(), RequestStats()
    whole = load_live("hub", CLUSTERS, LiveOptions(kubeconfig=estate_lab.kubeconfig), stats=one_page)
    pages = load_live("hub", CLUSTERS, LiveOptions(kubeconfig=estate_lab.kubeconfig, page_size=2), stats=paged)
    for name in ("hub", *CLUSTERS):
        left = whole.hub if name == "hub" else whole.clusters[name]
        right = pages.hub if name == "hub" else pages.clusters[name]
        assert {k: len(left.list(k)) for k in left.kinds()} == {k: len(right.list(k)) for k in right.kinds()}
    assert paged.requests > one_page.requests
    assert one_page.retries == paged.retries == 0


def test_a_cluster_that_is_down_loses_nothing_read_from_the_others(
    estate_lab: Lab, store: Path, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    config = yaml.safe_load(kubeconfig_for(estate_lab, "auditor").read_text())
    for cluster in config["clusters"]:
        if cluster["name"] == "prod-west":
            cluster["cluster"]["server"] = f"https://127.0.0.1:{dead_port}"
    broken = tmp_path / "kubeconfig"
    broken.write_text(yaml.safe_dump(config))
    estate = load_live("hub", CLUSTERS, LiveOptions(kubeconfig=broken, attempts=2, backoff_seconds=0.01))
    assert {c for c, _, _ in estate.unavailable()} == {"prod-west"}
    assert all("cannot read the API of prod-west" in reason for _, _, reason in estate.unavailable())
    assert estate.clusters["prod-east"].list("VirtualMachine")
    report = audit(build_context(estate, AuditConfig(), store))
    coverage = [f for f in report.findings if f.check_id == "vm_dr_coverage"]
    assert {f.status for f in coverage if f.cluster == "prod-east"} == {Status.PASS}  # still judged
    west = [f for f in coverage if f.cluster == "prod-west"]
    assert west and {f.status for f in west} == {Status.ERROR}
    assert report.verdict == "incomplete"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--kubeconfig", "/nonexistent/kubeconfig", "--cluster", "east=east"], "kubeconfig /nonexistent/kubeconfig"),
        (
            ["--kubeconfig", "KUBECONFIG", "--hub-context", "nope", "--cluster", "prod-east=prod-east"],
            "cannot use context 'nope'",
        ),
        (["--kubeconfig", "KUBECONFIG", "--cluster", "prod-east"], "is not NAME=CONTEXT"),
        (["--snapshot", "SNAP", "--cluster", "prod-east=prod-east"], "either --snapshot or the live flags"),
        ([], "give --snapshot DIR, or --cluster NAME=CONTEXT"),
    ],
)
def test_bad_live_arguments_are_exit_2(estate_lab: Lab, tmp_path: Path, args: list[str], expected: str) -> None:
    args = [a.replace("KUBECONFIG", str(estate_lab.kubeconfig)).replace("SNAP", str(SAMPLES / "healthy")) for a in args]
    result = CliRunner().invoke(main, ["audit", "--output-dir", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_capture_command_writes_a_snapshot_the_audit_accepts(estate_lab: Lab, tmp_path: Path) -> None:
    canary = "drauditor-canary-" + uuid.uuid4().hex
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "vm-ssh-key",
            "namespace": "billing",
            # what `kubectl apply` leaves behind: the whole manifest, values included
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps({"stringData": canary})},
        },
        "data": {"key": base64.b64encode(canary.encode()).decode()},
        "stringData": {"plain": canary},
    }
    estate_lab.rest("prod-east").request("POST", "/api/v1/namespaces/billing/secrets", secret)
    out = tmp_path / "snap"
    result = CliRunner().invoke(
        main,
        [
            "capture",
            *live_flags(estate_lab, "auditor"),
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "hub" / "DRPlacementControl.json").exists()
    assert len(load_snapshot(out).clusters["prod-east"].list("VirtualMachine")) == 4
    written = b"".join(path.read_bytes() for path in out.rglob("*") if path.is_file())
    captured = load_snapshot(out).clusters["prod-east"].get("Secret", "vm-ssh-key", "billing")
    assert captured and set(captured) == {"apiVersion", "kind", "metadata"}  # its existence is read ...
    assert canary.encode() not in written  # ... its value never and base64.b64encode(canary.encode()) not in written
    again = CliRunner().invoke(
        main,
        [
            "capture",
            "--kubeconfig",
            str(estate_lab.kubeconfig),
            "--cluster",
            "prod-east=prod-east",
            "--output",
            str(out),
        ],
    )
    assert again.exit_code == 2 and "is not empty" in again.output


def test_a_missing_crd_is_an_error_finding_not_a_crash(estate_lab: Lab, store: Path) -> None:
    """Runs last in this module: it deletes the VirtualMachine CRD from prod-west (which holds no VMs; the VRGs
    there carry Ramen finalizers, so their CRD would stay served until a Ramen controller released them)."""
    rest = estate_lab.rest("prod-west")
    rest.request("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/virtualmachines.kubevirt.io")
    deadline = time.monotonic() + 60  # the apiserver stops serving the kind once the deletion is finalized
    while True:
        estate = live_estate(estate_lab, "auditor")
        if ("prod-west", "VirtualMachine") in {(c, k) for c, k, _ in estate.unavailable()}:
            break
        assert time.monotonic() < deadline, "the VirtualMachine CRD is still served 60 s after its deletion"
        time.sleep(0.5)
    reasons = {(c, k): r for c, k, r in estate.unavailable()}
    assert "virtualmachines.kubevirt.io is not served" in reasons[("prod-west", "VirtualMachine")]
    report = audit(build_context(estate, AuditConfig(), store))
    errors = [f for f in report.findings if f.status is Status.ERROR]
    assert {f.check_id for f in errors} == vm_readers() and {f.cluster for f in errors} == {"prod-west"}
    assert report.verdict == "incomplete"
