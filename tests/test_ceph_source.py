"""The live Ceph source: what a failing or silent `ceph` CLI becomes, and the round trip through a capture.

The happy path runs against the real Ceph stretch lab (tests/test_ceph_lab.py and the last test here); these
tests drive the failure paths with programs that fail the way a broken `ceph` call does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SAMPLES, context_for, run

from auditor.capture import write_snapshot
from auditor.ceph_source import COMMANDS, CephCli, collect
from auditor.cli import main
from auditor.model import Status
from auditor.snapshot import load_ceph, load_snapshot


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-ceph"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_options_become_ceph_arguments() -> None:
    cli = CephCli.from_options(Path("/etc/ceph/ceph.conf"), Path("/k"), "client.drauditor", "prod", timeout=5)
    assert cli.args == (
        "--conf",
        "/etc/ceph/ceph.conf",
        "--keyring",
        "/k",
        "--name",
        "client.drauditor",
        "--cluster",
        "prod",
    )
    assert CephCli.from_options().args == ()


@pytest.mark.parametrize(
    ("body", "timeout", "expected"),
    [
        ("echo 'monclient: authenticate NOTE: no keyring found' >&2; exit 1", 5, "exited with 1: monclient"),
        ("sleep 5", 0.5, "`ceph mon dump -f json`: did not answer within 0.5 s"),
        ("echo 'not json'", 5, "printed no JSON"),
    ],
)
def test_every_failure_is_recorded_with_its_command(tmp_path: Path, body: str, timeout: float, expected: str) -> None:
    data = collect(CephCli(binary=script(tmp_path, body), timeout=timeout))
    assert data.outputs == {}
    assert set(data.unavailable) == {f"ceph:{stem}" for stem in COMMANDS} | {"ceph:osd_network"}
    assert expected in data.unavailable["ceph:mon_dump"]
    assert "`ceph mon dump -f json`" in data.unavailable["ceph:mon_dump"]


def test_a_missing_binary_makes_the_ceph_checks_errors_not_passes() -> None:
    estate = load_snapshot(SAMPLES / "healthy")
    estate.ceph = collect(CephCli(binary="/nonexistent/ceph"))
    for check_id in ("ceph_stretch_health", "intersite_rtt"):
        findings = run(check_id, context_for(estate))
        assert findings and {f.status for f in findings} == {Status.ERROR}
        assert all(f.message.startswith("Cannot evaluate: ceph:") for f in findings)
        assert any("cannot run `/nonexistent/ceph`: No such file or directory" in f.message for f in findings)
    assert {f.status for f in run("vm_dr_coverage", context_for(estate))} == {Status.PASS}


def test_what_could_not_be_read_survives_a_capture(tmp_path: Path) -> None:
    estate = load_snapshot(SAMPLES / "healthy")
    ceph = load_ceph(SAMPLES / "healthy" / "ceph", SAMPLES / "healthy", {})
    del ceph.outputs["mon_dump"]
    ceph.unavailable["ceph:mon_dump"] = "`ceph mon dump -f json` did not answer within 20 s"
    estate.ceph = ceph
    write_snapshot(estate, tmp_path / "snap")
    again = load_snapshot(tmp_path / "snap")
    assert again.ceph.unavailable == ceph.unavailable
    assert again.ceph.outputs == ceph.outputs
    (finding,) = run("ceph_stretch_health", context_for(again))
    assert finding.status is Status.ERROR and "did not answer within 20 s" in finding.message


def test_live_ceph_lab_through_the_cli_source(ceph_lab) -> None:
    data = collect(CephCli(args=tuple(ceph_lab.ceph_args()), timeout=20))
    assert data.unavailable == {}
    assert set(COMMANDS) <= set(data.outputs)
    assert sum(stem.startswith("osd_network.osd.") for stem in data.outputs) == 2  # one OSD per data site


def test_capture_writes_the_contract_ceph_files_from_the_live_cluster(lab, ceph_lab, tmp_path: Path) -> None:
    args = ceph_lab.ceph_args()
    flags = {
        "--ceph-conf": args[args.index("--conf") + 1],
        "--ceph-keyring": args[args.index("--keyring") + 1],
        "--ceph-name": args[args.index("--name") + 1],
    }
    out = tmp_path / "snap"
    result = CliRunner().invoke(
        main,
        [
            "capture",
            "--kubeconfig",
            str(lab.kubeconfig),
            "--hub-context",
            "hub",
            "--cluster",
            "prod-east=prod-east",
            *[part for pair in flags.items() for part in pair],
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    written = {path.name for path in (out / "ceph").iterdir()}
    assert {f"{stem}.json" for stem in COMMANDS} <= written
    assert sum(name.startswith("osd_network.osd.") for name in written) == 2
    estate = load_snapshot(out)
    assert estate.ceph.unavailable == {} and set(COMMANDS) <= set(estate.ceph.outputs)
