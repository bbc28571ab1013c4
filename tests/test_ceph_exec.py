"""Ceph through the rook-ceph-tools pod, as far as the lab allows: the real apiserver's exec endpoint is reached,
but the lab has no kubelet, so no command can actually run in a pod. What is proven: the pod lookup, the exec request
through the official client's websocket stream, and that every failure becomes a recorded, named reason."""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner
from kubernetes.client import CoreV1Api

from auditor.ceph_exec import ToolsPod
from auditor.ceph_source import COMMANDS, CephCli, collect
from auditor.cli import main


def tools_namespace(lab) -> str:
    name = "ceph-tools-" + uuid.uuid4().hex[:8]
    CoreV1Api(lab.api_client("prod-east")).create_namespace({"metadata": {"name": name}})
    return name


def test_no_running_tools_pod_is_a_named_reason_for_every_output(lab) -> None:
    namespace = tools_namespace(lab)
    data = collect(CephCli(transport=ToolsPod(lab.api_client("prod-east"), "prod-east", namespace)))
    assert data.outputs == {}
    assert set(data.unavailable) == {f"ceph:{stem}" for stem in COMMANDS} | {"ceph:osd_network"}
    expected = f"no Running pod labelled app=rook-ceph-tools in namespace {namespace} on prod-east"
    assert expected in data.unavailable["ceph:status"]


def test_exec_reaches_the_apiserver_and_its_refusal_is_recorded(lab) -> None:
    namespace = tools_namespace(lab)
    core = CoreV1Api(lab.api_client("prod-east"))
    pod = {
        "metadata": {"name": "rook-ceph-tools-7d9f", "labels": {"app": "rook-ceph-tools"}},
        "spec": {"nodeName": "storage-node-1", "containers": [{"name": "rook-ceph-tools", "image": "rook/ceph"}]},
    }
    core.create_namespaced_pod(namespace, pod)
    core.patch_namespaced_pod_status("rook-ceph-tools-7d9f", namespace, {"status": {"phase": "Running"}})
    transport = ToolsPod(lab.api_client("prod-east"), "prod-east", namespace)
    data = collect(CephCli(transport=transport, timeout=10))
    assert transport.pod() == "rook-ceph-tools-7d9f"
    reason = data.unavailable["ceph:mon_dump"]
    assert reason.startswith("`ceph mon dump -f json`: exec in pod " + f"{namespace}/rook-ceph-tools-7d9f on prod-east")
    assert "was refused: HTTP 404" in reason and "storage-node-1" in reason  # no such node: nothing to exec on


def test_the_cli_reads_ceph_through_the_tools_pod_and_says_why_it_could_not(lab, tmp_path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "audit",
            "--kubeconfig",
            str(lab.kubeconfig),
            "--hub-context",
            "hub",
            "--cluster",
            "prod-east=prod-east",
            "--ceph-tools-context",
            "prod-east",
            "--output-dir",
            str(tmp_path),
        ],
    )
    # The lab holds no Ramen at all, so hub_health fails (exit 1); the Ceph checks could not run and say why.
    assert result.exit_code == 1, result.output
    assert "no Running pod labelled app=rook-ceph-tools in namespace openshift-storage on prod-east" in result.output
    findings = json.loads((tmp_path / "report.json").read_text())["findings"]
    assert {f["status"] for f in findings if f["check_id"] in ("ceph_stretch_health", "intersite_rtt")} == {"error"}
    assert {f["check_id"] for f in findings if f["status"] == "fail"} == {"hub_health"}
