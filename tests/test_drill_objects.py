"""The drill's manifests: labelled, accepted by the real schemas, and VM copies that cannot pose as production."""

from __future__ import annotations

import copy

import pytest
import yaml
from crd_schemas import validate
from helpers import FIXTURES, sample

from auditor.config import DrillSettings
from auditor.drill import objects
from auditor.drill.names import (
    CANARY,
    CANARY_FILE,
    SOURCE_ANNOTATION,
    SOURCE_UID_ANNOTATION,
    drill_labels,
    drill_namespace,
)
from auditor.drill.plan import build_plan

DRILL = "20261126t004512-a1b2c3"
N = drill_namespace(DRILL)
APPS = ("billing/billing-drpc", "crm/crm-drpc", "openshift-dr-ops/erp-drpc")
EXAMPLES = FIXTURES / "kubevirt-examples"


def example(name: str) -> dict:
    (vm,) = [doc for doc in yaml.safe_load_all((EXAMPLES / name).read_text()) if doc]
    vm["metadata"].setdefault("namespace", "apps")
    return vm


def sample_vm(namespace: str, name: str) -> dict:
    return copy.deepcopy(sample("healthy").clusters["prod-east"].get("VirtualMachine", name, namespace))


def kubevirt_references(vm: dict) -> list[str]:
    """What virt-api's admission rejects and the CRD schema cannot express: a disk or filesystem naming no volume,
    an interface naming no network."""
    spec = vm["spec"]["template"]["spec"]
    devices = spec["domain"].get("devices") or {}
    volumes = {v["name"] for v in spec.get("volumes") or []}
    networks = {n["name"] for n in spec.get("networks") or []}
    problems = [f"disk {d['name']}" for d in devices.get("disks") or [] if d["name"] not in volumes]
    problems += [f"filesystem {d['name']}" for d in devices.get("filesystems") or [] if d["name"] not in volumes]
    problems += [f"interface {i['name']}" for i in devices.get("interfaces") or [] if i["name"] not in networks]
    return problems


def all_manifests() -> list[tuple[str, dict]]:
    estate = sample("healthy")
    settings = DrillSettings(defaults={"readiness_probe": {"guestAgentPing": {}, "initialDelaySeconds": 30}})
    found = []
    for app in APPS:
        for entry in build_plan(estate, app, (), DRILL, settings).preview():
            manifest = entry["manifest"]
            found.append((f"{app} {entry['cluster']} {manifest['kind']} {manifest['metadata']['name']}", manifest))
    return found


MANIFESTS = all_manifests()


@pytest.mark.parametrize(("label", "manifest"), MANIFESTS, ids=[label for label, _ in MANIFESTS])
def test_every_manifest_is_labelled_and_valid_against_its_schema(label: str, manifest: dict) -> None:
    assert manifest["metadata"]["labels"] == drill_labels(DRILL)
    assert validate(manifest) == []


def test_every_kind_the_spec_names_is_built() -> None:
    kinds = {manifest["kind"] for _, manifest in MANIFESTS}
    assert kinds == {
        "Namespace",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "Pod",
        "VolumeSnapshot",
        "VolumeSnapshotContent",
        "VirtualMachine",
    }


def test_the_schema_harness_rejects_what_the_apiserver_would() -> None:
    pod = objects.canary_writer(DRILL, "registry.example.com/ubi:9", 0.2)
    pod["spec"]["restartPolicy"] = "Sometimes"
    assert "is not one of ['Always', 'OnFailure', 'Never']" in "\n".join(validate(pod))
    content = objects.snapshot_content(
        DRILL, "c", driver="d", snapshot_handle="h", volume_mode="Block", snapshot_class=None, snapshot_name="s"
    )
    del content["spec"]["volumeSnapshotRef"]
    assert "'volumeSnapshotRef' is a required property" in "\n".join(validate(content))
    vm, _ = objects.vm_copy(sample_vm("erp", "erp-ledger"), DRILL, "prod-east")
    vm["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimNam"] = "x"
    assert "unknown field spec.template.spec.volumes[0].persistentVolumeClaim.claimNam" in "\n".join(validate(vm))


def test_namespace_and_deny_all_policy() -> None:
    assert objects.namespace(DRILL)["metadata"] == {"name": N, "labels": drill_labels(DRILL)}
    policy = objects.deny_all_policy(DRILL)
    assert policy["metadata"]["namespace"] == N and policy["metadata"]["name"] == "drauditor-deny-all"
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_snapshots_content_and_restored_pvc() -> None:
    source = objects.volume_snapshot(DRILL, "erp", "snap", "erp-ledger-rootdisk", "rbd-snapclass")
    assert source["metadata"]["namespace"] == "erp"
    assert source["spec"] == {
        "source": {"persistentVolumeClaimName": "erp-ledger-rootdisk"},
        "volumeSnapshotClassName": "rbd-snapclass",
    }
    content = objects.snapshot_content(
        DRILL,
        "content",
        driver="openshift-storage.rbd.csi.ceph.com",
        snapshot_handle="0001-0011-openshift-storage-0000000000000001-abc",
        volume_mode="Block",
        snapshot_class=None,
        snapshot_name="erp-ledger-rootdisk",
    )
    assert "namespace" not in content["metadata"]
    assert content["spec"] == {
        "deletionPolicy": "Retain",
        "driver": "openshift-storage.rbd.csi.ceph.com",
        "source": {"snapshotHandle": "0001-0011-openshift-storage-0000000000000001-abc"},
        "sourceVolumeMode": "Block",
        "volumeSnapshotRef": {"namespace": N, "name": "erp-ledger-rootdisk"},
    }
    restored = objects.restored_snapshot(DRILL, "erp-ledger-rootdisk", "content", None)
    assert restored["metadata"]["namespace"] == N
    assert restored["spec"] == {"source": {"volumeSnapshotContentName": "content"}}
    pvc = objects.restored_pvc(
        DRILL,
        "erp-ledger-rootdisk",
        storage_class="rbd",
        access_modes=["ReadWriteMany"],
        volume_mode="Block",
        size="50Gi",
        snapshot="erp-ledger-rootdisk",
    )
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "50Gi"}},
        "storageClassName": "rbd",
        "volumeMode": "Block",
        "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "erp-ledger-rootdisk"},
    }


def test_canary_pods_are_restricted_and_write_then_report_the_timestamp() -> None:
    writer = objects.canary_writer(DRILL, "registry.example.com/ubi:9", 0.5)
    reader = objects.canary_reader(DRILL, "registry.example.com/ubi:9")
    (write,), (read,) = writer["spec"]["containers"], reader["spec"]["containers"]
    assert write["command"] == [
        "/bin/sh",
        "-c",
        "while :; do date -u +%s.%N > /canary/timestamp.tmp && mv -f /canary/timestamp.tmp /canary/timestamp && sync; "
        "sleep 0.5; done",
    ]
    assert read["command"] == ["/bin/sh", "-c", f"cat {CANARY_FILE} > /dev/termination-log"]
    assert writer["spec"]["restartPolicy"] == "Always" and reader["spec"]["restartPolicy"] == "Never"
    assert read["terminationMessagePolicy"] == "File"
    for container in (write, read):
        assert container["securityContext"] == {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container["volumeMounts"][0]["mountPath"] == "/canary"
    for pod in (writer, reader):
        assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == CANARY
    assert objects.canary_pvc(DRILL, "rbd", "1Gi")["spec"]["volumeMode"] == "Filesystem"


# --- the VM copy -----------------------------------------------------------------------------------------------------


def test_erp_ledger_copy_keeps_only_the_pod_network_and_the_restored_disks() -> None:
    source = sample_vm("erp", "erp-ledger")
    vm, removed = objects.vm_copy(source, DRILL, "prod-east")
    assert validate(vm) == [] and kubevirt_references(vm) == []
    assert vm["metadata"] == {
        "name": "erp-ledger",
        "namespace": N,
        "labels": drill_labels(DRILL),
        "annotations": {
            SOURCE_ANNOTATION: "prod-east/erp/erp-ledger",
            SOURCE_UID_ANNOTATION: "77865c5d-72bc-5a61-a06d-48de07273783",
        },
    }
    spec = vm["spec"]
    assert spec["runStrategy"] == "Always" and "running" not in spec and "dataVolumeTemplates" not in spec
    template = spec["template"]
    assert template["metadata"]["labels"] == {
        "kubevirt.io/domain": "erp-ledger",
        "kubevirt.io/size": "medium",
        **drill_labels(DRILL),
    }
    body = template["spec"]
    assert body["volumes"] == [
        {"name": "rootdisk", "persistentVolumeClaim": {"claimName": "erp-ledger-rootdisk"}},
        {
            "name": "tools",
            "containerDisk": {"image": "registry.example.com/erp/ledger-tools:2.3", "imagePullPolicy": "IfNotPresent"},
        },
    ]
    assert [d["name"] for d in body["domain"]["devices"]["disks"]] == ["rootdisk", "tools"]
    assert body["networks"] == [{"name": "default", "pod": {}}]
    assert body["domain"]["devices"]["interfaces"] == [{"masquerade": {}, "model": "virtio", "name": "default"}]
    assert "accessCredentials" not in body
    assert removed == (
        "volume cloudinitdisk (cloudInitNoCloud) and its disk removed",
        "accessCredentials removed (their Secrets are not in the drill namespace)",
        "macAddress of interface default removed",
        "interface backup (multus network default/backup-vlan300) detached: secondary networks are not attached in a "
        "drill",
    )
    assert source == sample_vm("erp", "erp-ledger")  # the source is never changed


def test_firmware_identity_is_removed_and_the_rest_of_the_firmware_kept() -> None:
    source = sample_vm("erp", "erp-ledger")
    firmware = source["spec"]["template"]["spec"]["domain"]["firmware"]
    firmware.update(uuid="9b585b2f-1a90-564a-9609-f2aedd4112f3", serial="ERP-LEDGER-01")  # the VMI's uuid
    vm, removed = objects.vm_copy(source, DRILL, "prod-east")
    assert vm["spec"]["template"]["spec"]["domain"]["firmware"] == {"bootloader": {"efi": {}}}
    assert "firmware.uuid removed (no SMBIOS twin of production)" in removed
    assert "firmware.serial removed (no SMBIOS twin of production)" in removed
    assert validate(vm) == []


def test_readiness_probe_comes_from_the_target_when_set() -> None:
    source = sample_vm("billing", "billing-db")
    probe = {"guestAgentPing": {}, "initialDelaySeconds": 30, "periodSeconds": 5}
    vm, removed = objects.vm_copy(source, DRILL, "prod-east", probe)
    assert vm["spec"]["template"]["spec"]["readinessProbe"] == probe
    assert not any("readinessProbe" in note for note in removed)
    source["spec"]["template"]["spec"]["readinessProbe"] = {"tcpSocket": {"port": 22}}
    vm, removed = objects.vm_copy(source, DRILL, "prod-east", probe)
    assert vm["spec"]["template"]["spec"]["readinessProbe"] == probe
    assert "readinessProbe replaced by the drill target's readiness_probe" in removed
    vm, _ = objects.vm_copy(source, DRILL, "prod-east")
    assert vm["spec"]["template"]["spec"]["readinessProbe"] == {"tcpSocket": {"port": 22}}
    assert validate(vm) == []


def test_billing_db_copy_keeps_both_pvc_disks_and_drops_the_multus_vlan() -> None:
    vm, removed = objects.vm_copy(sample_vm("billing", "billing-db"), DRILL, "prod-east")
    assert vm["spec"]["template"]["spec"]["volumes"] == [
        {"name": "rootdisk", "persistentVolumeClaim": {"claimName": "billing-db-rootdisk"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "billing-db-data"}},
    ]
    assert (
        "interface db-vlan120 (multus network db-vlan120) detached: secondary networks are not attached in a drill"
        in removed
    )
    assert validate(vm) == [] and kubevirt_references(vm) == []


@pytest.mark.parametrize(
    ("name", "volumes", "removed"),
    [
        (
            "vm-alpine-datavolume.yaml",
            [{"name": "datavolumedisk1", "persistentVolumeClaim": {"claimName": "alpine-dv"}}],
            (),
        ),
        (
            "vm-alpine-multipvc.yaml",
            [
                {"name": "pvcdisk1", "persistentVolumeClaim": {"claimName": "disk-alpine"}},
                {"name": "pvcdisk2", "persistentVolumeClaim": {"claimName": "disk-custom"}},
            ],
            (),
        ),
        (
            "vm-cirros.yaml",
            [
                {
                    "containerDisk": {"image": "registry:5000/kubevirt/cirros-container-disk-demo:devel"},
                    "name": "containerdisk",
                }
            ],
            ("volume cloudinitdisk (cloudInitNoCloud) and its disk removed",),
        ),
        (
            "ramen-test-drenv-vm.yaml",
            [{"name": "containerdisk", "containerDisk": {"image": "quay.io/nirsof/cirros:0.6.2-1"}}],
            (
                "volume cloudinitdisk (cloudInitConfigDrive) and its disk removed",
                "accessCredentials removed (their Secrets are not in the drill namespace)",
            ),
        ),
    ],
)
def test_upstream_examples_copy_into_valid_vms(name: str, volumes: list, removed: tuple) -> None:
    source = example(name)
    vm, notes = objects.vm_copy(source, DRILL, "prod-east")
    assert validate(source) == [] and validate(vm) == [] and kubevirt_references(vm) == []
    assert vm["spec"]["runStrategy"] == "Always" and "running" not in vm["spec"]
    assert "dataVolumeTemplates" not in vm["spec"]
    assert vm["spec"]["template"]["spec"]["volumes"] == volumes
    assert notes == removed
    labels = source["spec"]["template"]["metadata"]["labels"]
    assert vm["spec"]["template"]["metadata"]["labels"] == {**labels, **drill_labels(DRILL)}


def test_every_identity_field_of_the_api_round_trip_fixture_is_removed() -> None:
    """KubeVirt's round-trip fixture sets every field: the copy must drop each one the spec names."""
    source = example("kubevirt.io.v1.VirtualMachine.yaml")
    vm, removed = objects.vm_copy(source, DRILL, "prod-east")
    body = vm["spec"]["template"]["spec"]
    assert "uuid" not in body["domain"]["firmware"] and "serial" not in body["domain"]["firmware"]
    assert "accessCredentials" not in body
    assert all("macAddress" not in i for i in body["domain"]["devices"].get("interfaces") or [])
    assert "revisionName" not in vm["spec"]["instancetype"] and "revisionName" not in vm["spec"]["preference"]
    assert {
        "spec.instancetype.revisionName (a ControllerRevision in namespaceValue) removed",
        "spec.preference.revisionName (a ControllerRevision in namespaceValue) removed",
        "accessCredentials removed (their Secrets are not in the drill namespace)",
        "firmware.uuid removed (no SMBIOS twin of production)",
        "firmware.serial removed (no SMBIOS twin of production)",
    } <= set(removed)


def test_a_vm_on_a_secondary_network_only_loses_its_interface_and_network() -> None:
    """Multus as the only network: nothing of production's networks is attached, so nothing can reach it."""
    source = sample_vm("erp", "erp-ledger")
    body = source["spec"]["template"]["spec"]
    body["networks"] = [n for n in body["networks"] if "multus" in n]
    body["domain"]["devices"]["interfaces"] = [
        i for i in body["domain"]["devices"]["interfaces"] if i["name"] == "backup"
    ]
    vm, removed = objects.vm_copy(source, DRILL, "prod-east")
    copied = vm["spec"]["template"]["spec"]
    assert copied["networks"] == [] and copied["domain"]["devices"]["interfaces"] == []
    assert kubevirt_references(vm) == [] and validate(vm) == []
    assert any(note.startswith("interface backup (multus network default/backup-vlan300) detached") for note in removed)
