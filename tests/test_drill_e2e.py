"""Drills end to end on the real lab apiservers, with the simulated controllers playing storage, KubeVirt and kubelets.

Each drill runs as an operator runs it (in process through run_drill, or the installed `drauditor` command) against
hub, prod-east and prod-west with samples/healthy loaded. Every test ends with what a drill owes the estate: its
record in the evidence store, its journal closed, nothing of it left on either cluster and every object that
existed before at the same resourceVersion.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from drill_helpers import (
    HEALTHY_CEPH,
    SAMPLES,
    ClusterState,
    Events,
    Versions,
    closed_journal,
    drauditor,
    drill_config,
    drill_settings,
    filed,
    live_args,
    live_flags,
    write_config,
)
from drillsim import fixtures
from drillsim.faults import VmiFailure
from drillsim.fixtures import DrillLab
from drillsim.truth import DRILL_STEPS
from fault_proxy import Rule

from auditor.drill.measure import STEPS
from auditor.drill.plan import VmPlan
from auditor.drill.runner import DrillRequest, DrillResult, run_drill

drill_lab = fixtures.drill_lab  # the fixtures, where pytest looks for them
drill_faults = fixtures.drill_faults
ERP = "openshift-dr-ops/erp-drpc"
PROBE = {"guestAgentPing": {}, "periodSeconds": 5}
BROKEN_SITE_CEPH = SAMPLES / "broken-site" / "ceph"


@pytest.fixture(scope="module")
def clusters(drill_lab: DrillLab) -> ClusterState:
    return ClusterState(drill_lab.lab)


@pytest.fixture(scope="module")
def baseline(clusters: ClusterState) -> Versions:
    """The lab once the simulators have finished with the loaded estate: what every drill must leave as it was."""
    return clusters.settled()


def drill(
    lab: DrillLab,
    tmp_path: Path,
    request: DrillRequest,
    *,
    kubeconfig: Path | None = None,
    ceph: Path | None = HEALTHY_CEPH,
    progress: Events | None = None,
    **settings: Any,
) -> DrillResult:
    return run_drill(
        request,
        drill_config(tmp_path / "state", **settings),
        live_flags(kubeconfig or lab.kubeconfig, ceph),
        evidence=tmp_path / "evidence.db",
        progress=progress or Events(),
    )


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([drauditor(), *args], capture_output=True, text=True, timeout=timeout)


def assert_done(
    lab: DrillLab, tmp_path: Path, clusters: ClusterState, baseline: Versions, drill_id: str, outcome: str
) -> dict[str, Any]:
    """The drill is on record with ``outcome``, its journal closed, the clusters as they were; returns its details."""
    record = filed(tmp_path / "evidence.db", drill_id)
    assert record.outcome == outcome
    assert closed_journal(tmp_path / "state", drill_id).closing["outcome"] == outcome
    clusters.assert_clean(drill_id, baseline)
    assert lab.sims.errors() == []
    return record.details


def only_vm(details: dict[str, Any]) -> dict[str, Any]:
    [vm] = details["vms"]
    return vm


def step_writes(lab: DrillLab, vm: VmPlan, namespace: str, step: str) -> list:
    """The simulator writes that made ``step`` true for ``vm`` (one per disk for the disk steps)."""
    kind, written = DRILL_STEPS[step]
    if step == "snapshot_ready":
        wanted = [("prod-east", disk.namespace, disk.source_snapshot) for disk in vm.disks]
    elif step in ("content_ready", "pvc_bound"):
        wanted = [("prod-west", namespace, disk.pvc) for disk in vm.disks]
    else:
        wanted = [("prod-west", namespace, vm.name)]
    records = [lab.truth.first(cluster, kind, ns, name, written) for cluster, ns, name in wanted]
    assert None not in records, f"no simulator write for {step} of {vm.key}"
    return records


# ---- 1. success ------------------------------------------------------------------------------------------------


def test_drill_succeeds_measures_every_step_and_the_audit_cites_it(
    drill_lab: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    targets = {"rto_seconds": 600, "rpo_seconds": 0, "readiness_probe": PROBE}
    result = drill(drill_lab, tmp_path, DrillRequest(app=ERP), apps={ERP: targets})
    assert result.exit_code == 0, result.to_json()
    record = result.record
    assert record is not None and record.outcome == "success"
    details = assert_done(drill_lab, tmp_path, clusters, baseline, record.id, "success")

    assert result.plan is not None
    [vm_plan] = result.plan.vms
    vm = only_vm(details)
    assert (vm["outcome"], vm["error"]) == ("ready", None)
    assert [s["step"] for s in vm["steps"]] == list(STEPS)  # probe_ready included: the app has a probe
    seconds = [s["seconds"] for s in vm["steps"]]
    assert seconds == sorted(seconds) and len(set(seconds)) == len(seconds) and seconds[0] > 0
    assert record.rto_seconds == max(v["rto_seconds"] for v in details["vms"]) == seconds[-1]

    # Each step measured from the watch event of the write that made it true: never before that write was sent,
    # and in the order the simulators wrote them.
    t0 = details["started"]["monotonic"]
    sent_order = []
    for step in vm["steps"]:
        writes = step_writes(drill_lab, vm_plan, details["namespace"], step["step"])
        last_sent = max(w.sent for w in writes)
        assert t0 + step["seconds"] >= last_sent - 0.0005, f"{step['step']} measured before it was written"
        sent_order.append((last_sent, step["step"]))
    assert [name for _, name in sorted(sent_order)] == list(STEPS)

    rpo = details["rpo"]
    assert record.rpo_seconds == rpo["seconds"] == 0.0
    assert rpo["window_seconds"] <= rpo["resolution_seconds"] == 0.2
    assert rpo["stretch_degraded"] is False  # samples/healthy/ceph: stretch mode healthy
    assert details["targets"] == {"rto_seconds": 600.0, "rpo_seconds": 0.0, "rto_met": True, "rpo_met": True}
    planned = {
        (
            i["cluster"],
            i["manifest"]["kind"],
            i["manifest"]["metadata"].get("namespace"),
            i["manifest"]["metadata"]["name"],
        )
        for i in result.plan.preview()
    }
    created = {(o["cluster"], o["kind"], o["namespace"], o["name"]) for o in details["objects"]}
    assert created == planned
    assert all(o["uid"] for o in details["objects"])
    assert details["api_requests"] > 0
    assert details["cleanup"] == {"complete": True, "residue": []}
    assert details["preflight"] == {"forced": False, "refusals": []}

    out = tmp_path / "audit"
    audit = cli(
        "audit",
        "--snapshot",
        str(SAMPLES / "healthy"),
        "--evidence",
        str(tmp_path / "evidence.db"),
        "--output-dir",
        str(out),
    )
    assert audit.returncode in (0, 1), audit.stdout + audit.stderr  # 1: the other apps were never drilled here
    [finding] = [
        f
        for f in json.loads((out / "report.json").read_text())["findings"]
        if f["check_id"] == "last_test_failover" and f["resource"]["name"] == "erp-drpc"
    ]
    assert finding["status"] == "pass"
    assert [d["id"] for d in finding["evidence"]["drills"]] == [record.id]


def test_canary_lag_is_the_rpo_and_misses_a_zero_target(
    drill_faults: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    # The primary's snapshots hold data 3 s old. The writer must have run longer than that before the snapshot
    # (else the restored canary has no file yet): a 2 s interval keeps it writing 4 s before T0, and quick
    # snapshots on the primary keep the window (lag minus the time from request to cut) above that interval.
    lag, interval = 3.0, 2.0
    knobs = drill_faults.knobs("prod-east")
    knobs.canary_lag_seconds, knobs.delay_min, knobs.delay_max = lag, 0.05, 0.1
    settings = {"canary_interval_seconds": interval, "apps": {ERP: {"rpo_seconds": 0}}}
    result = drill(drill_faults, tmp_path, DrillRequest(app=ERP), **settings)
    record = result.record
    assert record is not None
    details = assert_done(drill_faults, tmp_path, clusters, baseline, record.id, "success")
    assert result.exit_code == 1  # the drill worked, the target was missed
    # window = requested - the newest tick the snapshot holds (cut soon after the request, minus the lag)
    assert lag - 1.0 < record.rpo_seconds < lag + interval
    assert details["rpo"]["window_seconds"] == record.rpo_seconds
    assert details["targets"]["rpo_met"] is False
    assert only_vm(details)["outcome"] == "ready"


# ---- 2. the plan -----------------------------------------------------------------------------------------------


def test_plan_prints_every_object_and_creates_nothing(
    drill_lab: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "state")
    args = ["drill", "--app", ERP, "--plan", "--config", str(config), *live_args(drill_lab.kubeconfig)]
    shown = cli(*args)
    assert shown.returncode == 0, shown.stderr
    header, *documents = shown.stdout.split("\n---\n")
    count = int(header.split(": ")[1].split()[0])  # "# drauditor drill plan ID: N object(s) would be created..."
    manifests = [yaml.safe_load(document) for document in documents]
    assert len(manifests) == count > 0
    assert all(m["metadata"]["labels"]["drauditor.io/drill-id"] for m in manifests)
    as_json = cli(*args, "--json")
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert result["event"] == "result" and result["drill"] is None and result["refusals"] == []
    assert [named(item["manifest"]) for item in result["plan"]] == [named(m) for m in manifests]
    clusters.assert_untouched(baseline)
    assert not (tmp_path / "state").exists() or not list((tmp_path / "state").iterdir())  # not even a journal


def named(manifest: dict[str, Any]) -> tuple[str, str]:
    """A planned object's kind and name, its drill id left out (each plan draws a new one)."""
    drill_id = manifest["metadata"]["labels"]["drauditor.io/drill-id"]
    return manifest["kind"], manifest["metadata"]["name"].replace(drill_id, "ID")


# ---- 3. preflight ----------------------------------------------------------------------------------------------


def test_degraded_stretch_cluster_is_refused_and_nothing_is_created(
    drill_lab: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    result = drill(drill_lab, tmp_path, DrillRequest(app=ERP), ceph=BROKEN_SITE_CEPH)
    assert result.exit_code == 1 and result.record is None
    assert any("stretch mode is degraded" in refusal for refusal in result.refusals), result.refusals
    assert not (tmp_path / "evidence.db").exists()
    clusters.assert_untouched(baseline)


def test_forced_drill_reports_json_progress_and_records_the_refusals(
    drill_lab: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "state")
    run = cli(
        "drill",
        "--app",
        ERP,
        "--force",
        "--json",
        "--config",
        str(config),
        "--evidence",
        str(tmp_path / "evidence.db"),
        *live_args(drill_lab.kubeconfig, BROKEN_SITE_CEPH),
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]  # every line is one JSON object
    *progress, last = events
    assert last["event"] == "result" and last["exit_code"] == 0
    drill_id = last["drill"]["id"]
    assert {e["event"] for e in progress} >= {"warning", "phase", "created", "step", "vm_done", "rpo", "done"}
    assert any("forced past preflight" in e.get("message", "") for e in progress)
    details = assert_done(drill_lab, tmp_path, clusters, baseline, drill_id, "success")
    assert last["drill"]["details"] == details
    assert details["preflight"]["forced"] is True
    assert any("stretch mode is degraded" in r for r in details["preflight"]["refusals"])
    assert details["rpo"]["stretch_degraded"] is True  # read right before the snapshots


def test_unknown_application_is_bad_input_naming_the_drpcs(drill_lab: DrillLab, tmp_path: Path) -> None:
    run = cli("drill", "--app", "erp/no-such-drpc", *live_args(drill_lab.kubeconfig))
    assert run.returncode == 2
    for known in ("billing/billing-drpc", "crm/crm-drpc", ERP):
        assert known in run.stderr


# ---- 4. faults -------------------------------------------------------------------------------------------------


def test_pvc_that_never_binds_times_out_naming_it(
    drill_faults: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    drill_faults.knobs("prod-west").pvc_never_binds = {"erp-ledger-rootdisk"}
    result = drill(drill_faults, tmp_path, DrillRequest(app=ERP, timeout_seconds=20))
    assert result.exit_code == 1
    assert result.record is not None and result.record.rto_seconds is None
    vm = only_vm(assert_done(drill_faults, tmp_path, clusters, baseline, result.record.id, "failure"))
    assert vm["outcome"] == "timeout"
    assert "PersistentVolumeClaim" in vm["error"] and "erp-ledger-rootdisk" in vm["error"]
    assert "Pending" in vm["error"]
    assert [s["step"] for s in vm["steps"]] == ["snapshot_ready", "content_ready"]


def test_canary_writer_that_never_runs_fails_the_drill_before_any_snapshot(
    drill_faults: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    drill_faults.knobs("prod-east").extra_delay["Running"] = 120  # the primary's kubelet never starts the writer
    result = drill(drill_faults, tmp_path, DrillRequest(app=ERP, timeout_seconds=8))
    assert result.exit_code == 1 and result.record is not None
    details = assert_done(drill_faults, tmp_path, clusters, baseline, result.record.id, "failure")
    assert details["error"].startswith("preparation: ") and "drauditor-canary-writer" in details["error"]
    assert not any(o["kind"] == "VolumeSnapshot" for o in details["objects"])  # T0 never came
    vm = only_vm(details)
    assert vm["outcome"] == "failed" and vm["steps"] == [] and "not restored" in vm["error"]


def test_failed_vmi_fails_the_drill_quoting_the_reason(
    drill_faults: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    failure = VmiFailure()
    drill_faults.knobs("prod-west").vmi_failures = {"erp-ledger": failure}
    result = drill(drill_faults, tmp_path, DrillRequest(app=ERP))
    assert result.exit_code == 1 and result.record is not None
    vm = only_vm(assert_done(drill_faults, tmp_path, clusters, baseline, result.record.id, "failure"))
    assert vm["outcome"] == "failed"
    assert "Failed" in vm["error"] and failure.reason in vm["error"] and failure.message in vm["error"]
    assert vm["steps"][-1]["step"] == "vmi_scheduled"


def test_secondary_lost_mid_drill_leaves_residue_that_cleanup_removes(
    drill_lab: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    with drill_lab.proxied("prod-west", tmp_path / "kubeconfig") as (proxy, kubeconfig):

        def cut_off_once_the_copy_exists(event: dict[str, Any]) -> None:
            if event.get("event") == "created" and event.get("kind") == "VirtualMachine":
                proxy.sever()

        events = Events(then=cut_off_once_the_copy_exists)
        result = drill(drill_lab, tmp_path, DrillRequest(app=ERP), kubeconfig=kubeconfig, progress=events)
        record = result.record
        assert record is not None and result.exit_code == 3
        assert any(e.get("kind") == "VirtualMachine" for e in events.of("created"))
        assert record.outcome == "failure" and "prod-west" in record.details["error"]
        assert filed(tmp_path / "evidence.db", record.id).outcome == "failure"
        residue = record.details["cleanup"]["residue"]
        assert residue and all(line.startswith("prod-west") or "prod-west" in line for line in residue)
        assert closed_journal(tmp_path / "state", record.id).closing["residue"] == residue
        assert clusters.drill_residue(record.id)  # really there: the copy and its disks on prod-west

        proxy.heal()
        config = write_config(tmp_path / "config.yaml", tmp_path / "state")
        cleaned = cli(
            "drill", "cleanup", "--id", record.id, "--config", str(config), "--evidence", str(tmp_path / "evidence.db")
        )  # the clusters as the journal says
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert f"drill {record.id}:" in cleaned.stdout and "clean" in cleaned.stdout
    clusters.assert_clean(record.id, baseline)
    assert drill_lab.sims.errors() == []


def test_transient_server_errors_are_retried(
    drill_lab: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    with drill_lab.proxied("prod-west", tmp_path / "kubeconfig") as (proxy, kubeconfig):
        flaky = proxy.add(Rule(path=r"/.*", method="POST", status=500, times=2))
        result = drill(drill_lab, tmp_path, DrillRequest(app=ERP), kubeconfig=kubeconfig)
    assert flaky.hits == 2
    assert result.exit_code == 0 and result.record is not None
    details = assert_done(drill_lab, tmp_path, clusters, baseline, result.record.id, "success")
    assert only_vm(details)["outcome"] == "ready"


def test_persistent_server_errors_on_pvc_creates_fail_the_drill_cleanly(
    drill_lab: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    with drill_lab.proxied("prod-west", tmp_path / "kubeconfig") as (proxy, kubeconfig):
        broken = proxy.add(
            Rule(path=r"/api/v1/namespaces/[^/]+/persistentvolumeclaims", method="POST", status=500, times=None)
        )
        result = drill(drill_lab, tmp_path, DrillRequest(app=ERP), kubeconfig=kubeconfig)
    assert broken.hits > 1  # retried before giving up
    assert result.exit_code == 1 and result.record is not None
    details = assert_done(drill_lab, tmp_path, clusters, baseline, result.record.id, "failure")
    assert "prod-west" in details["error"] and "HTTP 500" in details["error"]
    assert "creating PersistentVolumeClaim drauditor-drill-" in details["error"]  # names the object that failed
    assert only_vm(details)["outcome"] == "failed"
    assert not any(o["kind"] == "PersistentVolumeClaim" and o["cluster"] == "prod-west" for o in details["objects"])


def test_scheduled_drill_runs_through_the_real_scheduler_and_runner(
    drill_lab: DrillLab, clusters: ClusterState, baseline: Versions, tmp_path: Path
) -> None:
    """`drauditor schedule --once` with a drills entry: the live section names the clusters (no Ceph source, so the
    stretch state is recorded as unknown), the run folder holds drill.json and drill.log, the store the record."""
    config = {
        "live": {
            "kubeconfig": str(drill_lab.kubeconfig),
            "hub_context": "hub",
            "clusters": {cluster: cluster for cluster in ("prod-east", "prod-west")},
        },
        "drill": drill_settings(tmp_path / "state"),
        "evidence": {"path": str(tmp_path / "evidence.db")},
        "schedule": {"drills": [{"name": "erp-drill", "every": "1d", "app": ERP, "output": str(tmp_path / "runs")}]},
    }
    path = tmp_path / "drauditor.yaml"
    path.write_text(yaml.safe_dump(config))
    run = cli("schedule", "--config", str(path), "--once", "--state-dir", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    [folder] = (tmp_path / "runs" / "erp-drill").iterdir()
    result = json.loads((folder / "drill.json").read_text())
    assert result["exit_code"] == 0 and result["drill"]["outcome"] == "success"
    assert "agent_connected" in (folder / "drill.log").read_text()
    details = assert_done(drill_lab, tmp_path, clusters, baseline, result["drill"]["id"], "success")
    assert details["rpo"]["stretch_degraded"] is None
