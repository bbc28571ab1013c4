"""The drill simulators against the real lab apiservers: objects created by hand, as a drill creates them
(docs/drills.md), and the statuses, faults, ground truth and deletions the simulated controllers produce."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from drillsim import fixtures
from drillsim.canary import CanaryWriter, date_output, reader_program, script_of, writer_program
from drillsim.faults import Knobs, VmiFailure
from drillsim.fixtures import DrillLab
from drillsim.kubevirt import VM_FINALIZER
from drillsim.snapshots import CONTENT_BOUND
from fault_proxy import Rule
from kubernetes.client.exceptions import ApiException
from lab.rest import Obj, Rest

from auditor.drill.names import CANARY, CANARY_FILE, CANARY_READER, CANARY_WRITER, drill_labels

drill_lab = fixtures.drill_lab  # the fixtures, where pytest looks for them
drill_faults = fixtures.drill_faults
CLASS = "ocs-external-storagecluster-ceph-rbd"
SNAPCLASS = "ocs-external-storagecluster-rbdplugin-snapclass"
DRIVER = "openshift-storage.rbd.csi.ceph.com"
SNAP = "/apis/snapshot.storage.k8s.io/v1"
KV = "/apis/kubevirt.io/v1"
HANDLE = re.compile(r"^0001-0011-openshift-storage-0000000000000002-[0-9a-f-]{36}$")
INTERVAL = 0.2


def wait_for(what: str, probe: Callable[[], Obj | bool | None], timeout: float = 60) -> Obj:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found  # type: ignore[return-value]
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def get(rest: Rest, path: str) -> Obj | None:
    try:
        return rest.get(path)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def when(rest: Rest, path: str, ready: Callable[[Obj], bool]) -> Callable[[], Obj | None]:
    def probe() -> Obj | None:
        obj = get(rest, path)
        return obj if obj is not None and ready(obj) else None

    return probe


def status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def namespace(rest: Rest, name: str) -> None:
    rest.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name, "labels": drill_labels("t")}})


def pvc(name: str, ns: str, size: str = "1Gi", source: str | None = None, mode: str = "Filesystem") -> Obj:
    spec: Obj = {
        "storageClassName": CLASS,
        "accessModes": ["ReadWriteOnce"],
        "volumeMode": mode,
        "resources": {"requests": {"storage": size}},
    }
    if source:
        spec["dataSource"] = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": source}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def canary_pod(name: str, ns: str, script: str, restart: str) -> Obj:
    security = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "restartPolicy": restart,
            "containers": [
                {
                    "name": "canary",
                    "image": "registry.access.redhat.com/ubi9/ubi-minimal:latest",
                    "command": ["/bin/sh", "-c", script],
                    "securityContext": security,
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [{"name": "canary", "mountPath": "/canary"}],
                }
            ],
            "volumes": [{"name": "canary", "persistentVolumeClaim": {"claimName": CANARY}}],
        },
    }


WRITER = (
    "while :; do date -u +%s.%N > /canary/timestamp.tmp && mv -f /canary/timestamp.tmp /canary/timestamp && sync; "
    f"sleep {INTERVAL}; done"
)
READER = f"cat {CANARY_FILE} > /dev/termination-log"


def snapshot(name: str, ns: str, *, claim: str | None = None, content: str | None = None) -> Obj:
    source = {"persistentVolumeClaimName": claim} if claim else {"volumeSnapshotContentName": content}
    spec: Obj = {"source": source}
    if claim:
        spec["volumeSnapshotClassName"] = SNAPCLASS
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": ns, "labels": drill_labels("t")},
        "spec": spec,
    }


def vm(name: str, ns: str, claim: str, probe: bool) -> Obj:
    template_spec: Obj = {
        "domain": {
            "devices": {
                "disks": [{"name": "rootdisk", "disk": {"bus": "virtio"}}],
                "interfaces": [{"name": "default", "masquerade": {}}],
            },
            "memory": {"guest": "1Gi"},
        },
        "networks": [{"name": "default", "pod": {}}],
        "volumes": [{"name": "rootdisk", "persistentVolumeClaim": {"claimName": claim}}],
    }
    if probe:
        template_spec["readinessProbe"] = {"guestAgentPing": {}, "initialDelaySeconds": 5, "periodSeconds": 5}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": ns, "labels": drill_labels("t")},
        "spec": {
            "runStrategy": "Always",
            "template": {
                "metadata": {"labels": {"kubevirt.io/domain": name, **drill_labels("t")}},
                "spec": template_spec,
            },
        },
    }


def create(rest: Rest, path: str, body: Obj) -> Obj:
    return rest.request("POST", path, body=body)


def ready(obj: Obj) -> bool:
    return status(obj).get("readyToUse") is True


def bound(obj: Obj) -> bool:
    return status(obj).get("phase") == "Bound"


def pre_provisioned(name: str, handle: str, ref_ns: str, ref_name: str, mode: str) -> Obj:
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotContent",
        "metadata": {"name": name, "labels": drill_labels("t")},
        "spec": {
            "deletionPolicy": "Retain",
            "driver": DRIVER,
            "source": {"snapshotHandle": handle},
            "sourceVolumeMode": mode,
            "volumeSnapshotClassName": SNAPCLASS,
            "volumeSnapshotRef": {"namespace": ref_ns, "name": ref_name},
        },
    }


def start_canary(rest: Rest, ns: str) -> Obj:
    create(rest, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", pvc(CANARY, ns))
    create(rest, f"/api/v1/namespaces/{ns}/pods", canary_pod(CANARY_WRITER, ns, WRITER, "Always"))
    return wait_for(
        "writer Running",
        when(rest, f"/api/v1/namespaces/{ns}/pods/{CANARY_WRITER}", lambda p: status(p).get("phase") == "Running"),
    )


def read_canary(rest: Rest, ns: str) -> Obj:
    create(rest, f"/api/v1/namespaces/{ns}/pods", canary_pod(CANARY_READER, ns, READER, "Never"))
    return wait_for(
        "reader finished",
        when(
            rest,
            f"/api/v1/namespaces/{ns}/pods/{CANARY_READER}",
            lambda p: status(p).get("phase") in ("Succeeded", "Failed"),
        ),
    )


def delete_namespaces(drill: DrillLab, names: dict[str, str]) -> None:
    for cluster, ns in names.items():
        drill.lab.rest(cluster).request("DELETE", f"/api/v1/namespaces/{ns}")
    for cluster, ns in names.items():
        rest = drill.lab.rest(cluster)
        wait_for(
            f"namespace {ns} gone on {cluster}", lambda r=rest, n=ns: get(r, f"/api/v1/namespaces/{n}") is None, 60
        )


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---- pure parts -----------------------------------------------------------------------------------------------


def test_canary_clock_and_programs() -> None:
    writer = CanaryWriter(started_ns=1_000_000_000_000_000_000, interval_ns=200_000_000)
    assert writer.newest_at(999_999_999_999_999_999) is None
    assert writer.newest_at(1_000_000_000_450_000_000) == 1_000_000_000_400_000_000
    assert date_output(1_764_000_000_000_000_123) == "1764000000.000000123"
    container = canary_pod("w", "ns", WRITER, "Always")["spec"]["containers"][0]
    assert writer_program(script_of(container)) == (CANARY_FILE, 200_000_000)
    assert reader_program(READER) == CANARY_FILE
    assert writer_program(READER) is None and reader_program(WRITER) is None


def test_step_delays_are_deterministic_and_tunable() -> None:
    knobs = Knobs(seed=7)
    first = knobs.delay("prod-west", "PersistentVolumeClaim", "ns", "disk", "Bound")
    assert first == knobs.delay("prod-west", "PersistentVolumeClaim", "ns", "disk", "Bound")
    assert 0.2 <= first <= 0.5
    assert first != Knobs(seed=8).delay("prod-west", "PersistentVolumeClaim", "ns", "disk", "Bound")
    knobs.extra_delay["Bound"] = 3.0
    assert knobs.delay("prod-west", "PersistentVolumeClaim", "ns", "disk", "Bound") == pytest.approx(first + 3.0)
    knobs.pvc_never_binds = {"ns/disk", "other"}
    assert knobs.never_binds("ns", "disk") and knobs.never_binds("x", "other") and not knobs.never_binds("x", "disk")


# ---- against the lab ------------------------------------------------------------------------------------------


def test_snapshot_restore_boot_and_cleanup(drill_lab: DrillLab) -> None:
    """The drill's whole path by hand: snapshots on prod-east, restore and boot on prod-west, canary read-back,
    ground truth for every step, and nothing left after the namespaces and snapshots are deleted."""
    east, west = drill_lab.lab.rest("prod-east"), drill_lab.lab.rest("prod-west")
    ns = "drillsim-flow"
    namespace(east, ns)
    namespace(west, ns)
    assert drill_lab.sims.errors() == []
    assert drill_lab.sims.backfilled["prod-east"]  # the estate's bound claims got their volumes
    writer = start_canary(east, ns)
    assert writer["spec"]["nodeName"].startswith("worker-")
    time.sleep(2 * INTERVAL)

    requested = time.time()
    source = create(
        east,
        f"{SNAP}/namespaces/erp/volumesnapshots",
        snapshot("drillsim-erp-root", "erp", claim="erp-ledger-rootdisk"),
    )
    canary = create(east, f"{SNAP}/namespaces/{ns}/volumesnapshots", snapshot(CANARY, ns, claim=CANARY))
    source = wait_for(
        "source snapshot ready", when(east, f"{SNAP}/namespaces/erp/volumesnapshots/drillsim-erp-root", ready)
    )
    canary = wait_for("canary snapshot ready", when(east, f"{SNAP}/namespaces/{ns}/volumesnapshots/{CANARY}", ready))

    content = east.get(f"{SNAP}/volumesnapshotcontents/{status(source)['boundVolumeSnapshotContentName']}")
    assert content["metadata"]["name"] == f"snapcontent-{source['metadata']['uid']}"
    assert content["spec"]["driver"] == DRIVER and content["spec"]["deletionPolicy"] == "Delete"
    assert content["spec"]["volumeSnapshotRef"]["uid"] == source["metadata"]["uid"]
    assert HANDLE.match(content["spec"]["source"]["volumeHandle"]) and HANDLE.match(status(content)["snapshotHandle"])
    assert status(content)["restoreSize"] == 50 * 2**30 and isinstance(status(content)["creationTime"], int)
    assert status(source)["restoreSize"] == "50Gi" and CONTENT_BOUND in content["metadata"]["finalizers"]
    canary_content = east.get(f"{SNAP}/volumesnapshotcontents/{status(canary)['boundVolumeSnapshotContentName']}")

    # secondary: pre-provisioned contents, snapshots bound to them, claims restored from them, a VM on them
    for name, made, mode in (("root", content, "Block"), (CANARY, canary_content, "Filesystem")):
        handle = status(made)["snapshotHandle"]
        create(west, f"{SNAP}/volumesnapshotcontents", pre_provisioned(f"drillsim-{name}", handle, ns, name, mode))
        create(west, f"{SNAP}/namespaces/{ns}/volumesnapshots", snapshot(name, ns, content=f"drillsim-{name}"))
    restored = wait_for("restored snapshot ready", when(west, f"{SNAP}/namespaces/{ns}/volumesnapshots/root", ready))
    assert status(restored)["restoreSize"] == "50Gi"
    bound_content = west.get(f"{SNAP}/volumesnapshotcontents/drillsim-root")
    assert bound_content["spec"]["volumeSnapshotRef"]["uid"] == restored["metadata"]["uid"]
    assert status(bound_content)["snapshotHandle"] == status(content)["snapshotHandle"]
    create(
        west, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", pvc("root", ns, "50Gi", source="root", mode="Block")
    )
    create(west, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", pvc(CANARY, ns, source=CANARY))
    create(west, f"{KV}/namespaces/{ns}/virtualmachines", vm("copy", ns, "root", probe=True))

    claim = wait_for("restored claim Bound", when(west, f"/api/v1/namespaces/{ns}/persistentvolumeclaims/root", bound))
    volume = west.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    assert volume["metadata"]["name"] == f"pvc-{claim['metadata']['uid']}" and volume["spec"]["csi"]["driver"] == DRIVER
    assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"] and status(claim)["capacity"] == {
        "storage": "50Gi"
    }

    vmi_path = f"{KV}/namespaces/{ns}/virtualmachineinstances/copy"
    vmi = wait_for(
        "VMI ready",
        when(
            west,
            vmi_path,
            lambda v: any(c["type"] == "Ready" and c["status"] == "True" for c in status(v).get("conditions") or []),
        ),
    )
    assert status(vmi)["phase"] == "Running" and status(vmi)["nodeName"].startswith("worker-")
    assert {c["type"] for c in status(vmi)["conditions"]} == {"Ready", "AgentConnected"}
    owner = vmi["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "VirtualMachine" and owner["controller"] is True
    assert vmi["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "drauditor"
    assert status(vmi)["volumeStatus"][0]["persistentVolumeClaimInfo"]["claimName"] == "root"
    vm_status = status(
        wait_for("VM ready", when(west, f"{KV}/namespaces/{ns}/virtualmachines/copy", lambda v: status(v).get("ready")))
    )
    assert vm_status["printableStatus"] == "Running" and vm_status["created"] is True

    reader = read_canary(west, ns)
    terminated = status(reader)["containerStatuses"][0]["state"]["terminated"]
    assert status(reader)["phase"] == "Succeeded" and terminated["exitCode"] == 0
    written = float(terminated["message"])
    taken = status(canary_content)["creationTime"] / 1e9
    assert taken - INTERVAL - 0.05 <= written <= taken  # the newest tick before the snapshot was made
    assert requested - 1 < taken

    truth = drill_lab.truth
    steps = [r.step for r in truth.records("prod-west", "VirtualMachineInstance", ns, "copy")]
    assert steps == ["Pending", "Scheduling", "Scheduled", "Running", "AgentConnected", "Ready"]
    ready_record = truth.first("prod-west", "VirtualMachineInstance", ns, "copy", "Ready")
    pvc_record = truth.first("prod-west", "PersistentVolumeClaim", ns, "root", "Bound")
    scheduled = truth.first("prod-west", "VirtualMachineInstance", ns, "copy", "Scheduled")
    assert pvc_record.monotonic < scheduled.monotonic < ready_record.monotonic
    source_ready = truth.first("prod-east", "VolumeSnapshot", "erp", "drillsim-erp-root", "ready")
    assert abs(source_ready.wall.timestamp() - stamp(status(source)["creationTime"])) < 30
    assert source_ready.monotonic < pvc_record.monotonic

    # cleanup as the drill does it; the controllers release their finalizers and the dynamic content goes too
    vm_obj = west.get(f"{KV}/namespaces/{ns}/virtualmachines/copy")
    assert VM_FINALIZER in vm_obj["metadata"]["finalizers"]
    east.request("DELETE", f"{SNAP}/namespaces/erp/volumesnapshots/drillsim-erp-root")
    delete_namespaces(drill_lab, {"prod-west": ns, "prod-east": ns})
    for name in ("root", CANARY):
        west.request("DELETE", f"{SNAP}/volumesnapshotcontents/drillsim-{name}")
    for rest, path in (
        (east, f"{SNAP}/volumesnapshotcontents/{content['metadata']['name']}"),
        (east, f"{SNAP}/volumesnapshotcontents/{canary_content['metadata']['name']}"),
        (east, f"{SNAP}/namespaces/erp/volumesnapshots/drillsim-erp-root"),
        (west, f"{SNAP}/volumesnapshotcontents/drillsim-root"),
        (west, f"/api/v1/persistentvolumes/{volume['metadata']['name']}"),
    ):
        wait_for(f"{path} gone", lambda r=rest, p=path: get(r, p) is None)
    assert drill_lab.sims.ceph.find_snapshot(status(content)["snapshotHandle"]) is None
    assert drill_lab.sims.errors() == []


def test_faults(drill_faults: DrillLab) -> None:
    """A claim that never binds, a VMI that fails, an extra step delay, and replication lag on the canary."""
    drill = drill_faults
    east, west = drill.lab.rest("prod-east"), drill.lab.rest("prod-west")
    ns = "drillsim-faults"
    namespace(east, ns)
    namespace(west, ns)
    west_knobs, east_knobs = drill.knobs("prod-west"), drill.knobs("prod-east")
    west_knobs.pvc_never_binds = {"stuck"}
    west_knobs.vmi_failures = {
        f"{ns}/broken": VmiFailure("FailedPvcNotFound", "PVC drillsim-faults/gone does not exist")
    }
    west_knobs.extra_delay = {"Bound": 1.5}
    east_knobs.canary_lag_seconds = 3.0

    created = time.monotonic()
    for name in ("stuck", "disk"):
        create(west, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", pvc(name, ns))
    create(west, f"{KV}/namespaces/{ns}/virtualmachines", vm("broken", ns, "disk", probe=False))
    create(west, f"{KV}/namespaces/{ns}/virtualmachines", vm("waiting", ns, "stuck", probe=False))
    vmi = wait_for(
        "VMI Failed",
        when(
            west, f"{KV}/namespaces/{ns}/virtualmachineinstances/broken", lambda v: status(v).get("phase") == "Failed"
        ),
    )
    condition = status(vmi)["conditions"][0]
    assert (condition["reason"], condition["message"]) == (
        "FailedPvcNotFound",
        "PVC drillsim-faults/gone does not exist",
    )
    bound_at = drill.truth.first("prod-west", "PersistentVolumeClaim", ns, "disk", "Bound").monotonic
    assert bound_at - created >= 1.5 + 0.2
    broken = wait_for(
        "VM crash loop",
        when(
            west,
            f"{KV}/namespaces/{ns}/virtualmachines/broken",
            lambda v: status(v).get("printableStatus") == "CrashLoopBackOff",
        ),
    )
    assert status(broken)["ready"] is False
    waiting = wait_for(
        "VM waiting",
        when(
            west,
            f"{KV}/namespaces/{ns}/virtualmachines/waiting",
            lambda v: status(v).get("printableStatus") == "WaitingForVolumeBinding",
        ),
    )
    assert status(west.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/stuck")).get("phase") != "Bound"
    assert status(west.get(f"{KV}/namespaces/{ns}/virtualmachineinstances/waiting"))["phase"] == "Scheduling"
    assert waiting["status"]["created"] is True

    # replication lag: the snapshot holds what the writer wrote 3 s before it was taken (restored on prod-east)
    start_canary(east, ns)
    time.sleep(3.5)
    create(east, f"{SNAP}/namespaces/{ns}/volumesnapshots", snapshot("lagging", ns, claim=CANARY))
    taken = wait_for("lagging snapshot", when(east, f"{SNAP}/namespaces/{ns}/volumesnapshots/lagging", ready))
    content = east.get(f"{SNAP}/volumesnapshotcontents/{status(taken)['boundVolumeSnapshotContentName']}")
    east.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{CANARY_WRITER}")
    wait_for("writer gone", lambda: get(east, f"/api/v1/namespaces/{ns}/pods/{CANARY_WRITER}") is None)
    east.request("DELETE", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{CANARY}")
    wait_for("canary claim gone", lambda: get(east, f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{CANARY}") is None)
    create(east, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", pvc(CANARY, ns, source="lagging"))
    terminated = status(read_canary(east, ns))["containerStatuses"][0]["state"]["terminated"]
    lag = status(content)["creationTime"] / 1e9 - float(terminated["message"])
    assert 3.0 <= lag <= 3.0 + INTERVAL + 0.05

    delete_namespaces(drill, {"prod-west": ns, "prod-east": ns})
    assert drill.sims.errors() == []


def test_reader_without_canary_fails_like_cat(drill_lab: DrillLab) -> None:
    west = drill_lab.lab.rest("prod-west")
    ns = "drillsim-empty"
    namespace(west, ns)
    create(west, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", pvc(CANARY, ns))
    reader = read_canary(west, ns)
    terminated = status(reader)["containerStatuses"][0]["state"]["terminated"]
    assert status(reader)["phase"] == "Failed" and terminated["exitCode"] == 1 and "message" not in terminated
    assert [r.step for r in drill_lab.truth.records("prod-west", "Pod", ns, CANARY_READER)] == [
        "scheduled",
        "Running",
        "Failed",
    ]
    delete_namespaces(drill_lab, {"prod-west": ns})


def test_proxied_kubeconfig_faults_only_the_drills_view(drill_lab: DrillLab, tmp_path: Path) -> None:
    from kubernetes.config import new_client_from_config

    with drill_lab.proxied("prod-west", tmp_path / "kubeconfig") as (proxy, kubeconfig):
        proxy.add(Rule(path="/api/v1/namespaces", status=500, times=None))
        through = Rest(new_client_from_config(config_file=str(kubeconfig), context="prod-west"))
        with pytest.raises(ApiException) as failed:
            through.get("/api/v1/namespaces")
        assert failed.value.status == 500
        assert drill_lab.lab.rest("prod-west").get("/api/v1/namespaces")["items"]  # the simulators' direct path
        other = Rest(new_client_from_config(config_file=str(kubeconfig), context="prod-east"))
        assert other.get("/api/v1/namespaces")["items"]  # the other clusters are not proxied
