"""The bundled sample estates hold only objects the real CRDs accept, and the schema harness can say no.

Checks tested against invented object shapes prove nothing about a real hub. Every sample object is
validated against the CRD its kind ships with (tests/fixtures/crds), and against each ODF release the way
that release's apiserver would store it.
"""

from __future__ import annotations

import copy
import filecmp
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from crd_schemas import VARIANTS, load_schema, prune, validate
from helpers import ESTATES, SAMPLES

from auditor.docload import documents, objects
from auditor.evidence import DrillRecord
from auditor.snapshot import load_snapshot

RELEASES = tuple(v for v in VARIANTS if v != "main")
RAMEN = "ramendr.openshift.io"


def object_files(estate: str) -> list[Path]:
    root = SAMPLES / estate
    return sorted(p for folder in ("hub", "clusters") for p in (root / folder).rglob("*") if p.is_file())


def sample_objects() -> list[tuple[str, dict]]:
    found = []
    for estate in ESTATES:
        for path in object_files(estate):
            for line, obj in objects(path):
                meta = obj["metadata"]
                name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
                found.append((f"{path.relative_to(SAMPLES)}:{line} {obj['kind']} {name}", obj))
    return found


SAMPLE_OBJECTS = sample_objects()


def sample_object(estate: str, kind: str, name: str) -> dict:
    for label, obj in SAMPLE_OBJECTS:
        if label.startswith(estate + "/") and obj["kind"] == kind and obj["metadata"]["name"] == name:
            return copy.deepcopy(obj)
    raise AssertionError(f"no {kind} {name} in {estate}")


@pytest.mark.parametrize(("label", "obj"), SAMPLE_OBJECTS, ids=[label for label, _ in SAMPLE_OBJECTS])
def test_every_sample_object_is_valid_against_its_schema(label: str, obj: dict) -> None:
    assert validate(obj) == []


RAMEN_OBJECTS = [(label, obj) for label, obj in SAMPLE_OBJECTS if obj["apiVersion"].startswith(RAMEN + "/")]


@pytest.mark.parametrize("release", RELEASES)
def test_every_ramen_sample_object_is_what_an_odf_hub_would_store(release: str) -> None:
    """Pruned to an older release's CRD, every Ramen object is still valid there (nothing it requires is new)."""
    assert RAMEN_OBJECTS
    for label, obj in RAMEN_OBJECTS:
        assert validate(prune(obj, release), release) == [], label


@pytest.mark.parametrize("estate", ESTATES)
def test_estate_loads_as_a_snapshot(estate: str) -> None:
    loaded = load_snapshot(SAMPLES / estate)
    assert loaded.captured_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    (policy,) = loaded.hub.list("DRPolicy")
    assert sorted(loaded.clusters) == sorted(policy["spec"]["drClusters"]) == ["prod-east", "prod-west"]
    assert loaded.clusters["prod-east"].list("VirtualMachine")
    assert not loaded.clusters["prod-west"].list("VirtualMachine")  # Metro-DR runs a VM only where it is placed


def test_samples_use_every_file_form_of_the_contract() -> None:
    """A single object, a kind: List, a multi-document stream and a JSON file (docs/contract.md section 1)."""
    forms = set()
    for path in object_files("healthy"):
        docs = [doc for _, doc in documents(path)]
        forms.add("json" if path.suffix == ".json" else "yaml")
        forms.add("stream" if len(docs) > 1 else "single")
        forms |= {"List" for doc in docs if doc.get("kind") == "List"}
    assert forms == {"json", "yaml", "stream", "single", "List"}


def test_broken_site_kubernetes_objects_are_the_healthy_ones() -> None:
    """broken-site differs from healthy only in ceph/, so its Ramen and VM findings must match healthy's."""
    for relative in ("snapshot.yaml", "drills.json"):
        assert filecmp.cmp(SAMPLES / "healthy" / relative, SAMPLES / "broken-site" / relative, shallow=False)
    for folder in ("hub", "clusters"):
        healthy = {p.relative_to(SAMPLES / "healthy") for p in (SAMPLES / "healthy" / folder).rglob("*")}
        site = {p.relative_to(SAMPLES / "broken-site") for p in (SAMPLES / "broken-site" / folder).rglob("*")}
        assert healthy == site
        for relative in healthy:
            if (SAMPLES / "healthy" / relative).is_file():
                assert filecmp.cmp(SAMPLES / "healthy" / relative, SAMPLES / "broken-site" / relative, shallow=False)


@pytest.mark.parametrize("estate", ESTATES)
def test_drill_records_are_valid_and_name_real_drpcs(estate: str) -> None:
    hub = load_snapshot(SAMPLES / estate).hub
    records = json.loads((SAMPLES / estate / "drills.json").read_text())
    assert records
    for index, data in enumerate(records):
        record = DrillRecord.from_dict(data, f"{estate}/drills.json: record {index}")
        assert record.mode in ("clone", "snapshot-restore") and record.tool_version == "0.1.0"
        assert record.started_at < record.finished_at
        assert hub.get("DRPlacementControl", record.app_name, record.app_namespace), record.id


# --- prune() --------------------------------------------------------------------------------------------


def test_prune_drops_status_sync_from_a_4_16_drpolicy() -> None:
    policy = sample_object("healthy", "DRPolicy", "odr-metro-policy")
    assert policy["status"]["sync"]["peerClasses"]
    assert set(prune(policy, "4.16")["status"]) == {"conditions"}
    assert prune(policy, "4.18")["status"]["sync"] == policy["status"]["sync"]
    assert prune(policy, "main") == policy


def test_prune_empties_the_vrg_sync_spec_of_4_16_and_keeps_it_later() -> None:
    """ODF 4.16 declares VRG spec.sync as a bare object: the peer classes Ramen writes there are dropped."""
    vrg = sample_object("healthy", "VolumeReplicationGroup", "billing-drpc")
    stored = prune(vrg, "4.16")
    assert stored["spec"]["sync"] == {}
    assert all("volumeMode" not in pvc for pvc in stored["status"]["protectedPVCs"])
    assert stored["status"]["protectedPVCs"][0]["storageID"] == vrg["status"]["protectedPVCs"][0]["storageID"]
    for release in ("4.18", "4.20"):
        assert prune(vrg, release)["spec"]["sync"] == vrg["spec"]["sync"]


def test_prune_keeps_unknown_fields_only_where_the_schema_preserves_them() -> None:
    vm = sample_object("healthy", "VirtualMachine", "billing-db")
    vm["spec"]["template"]["metadata"]["anything"] = {"goes": ["here"]}  # preserve-unknown-fields
    vm["spec"]["template"]["spec"]["notAField"] = True
    vm["spec"]["template"]["spec"]["volumes"][0]["madeUp"] = 1
    vm["metadata"]["notObjectMeta"] = "x"
    original = copy.deepcopy(vm)
    stored = prune(vm)
    assert vm == original  # prune works on a copy
    assert stored["spec"]["template"]["metadata"]["anything"] == {"goes": ["here"]}
    assert "notAField" not in stored["spec"]["template"]["spec"]
    assert "madeUp" not in stored["spec"]["template"]["spec"]["volumes"][0]
    assert "notObjectMeta" not in stored["metadata"]
    assert stored["metadata"]["name"] == "billing-db" and stored["apiVersion"] == "kubevirt.io/v1"


def test_prune_reduces_the_metadata_of_an_embedded_resource_to_object_meta() -> None:
    """ManifestWork manifests are embedded resources that preserve unknown fields, except inside metadata."""
    work = {
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": "billing-drpc-billing-vrg-mw", "namespace": "prod-east"},
        "spec": {
            "workload": {
                "manifests": [
                    {
                        "apiVersion": "ramendr.openshift.io/v1alpha1",
                        "kind": "VolumeReplicationGroup",
                        "metadata": {"name": "billing-drpc", "namespace": "billing", "bogus": 1},
                        "spec": {"replicationState": "primary"},
                    }
                ]
            }
        },
    }
    manifest = prune(work)["spec"]["workload"]["manifests"][0]
    assert manifest["spec"] == {"replicationState": "primary"}
    assert manifest["metadata"] == {"name": "billing-drpc", "namespace": "billing"}
    assert "unknown field spec.workload.manifests[0].metadata.bogus" in "\n".join(validate(work))


# --- validate() can fail --------------------------------------------------------------------------------


def errors_after(obj: dict, change) -> str:
    broken = copy.deepcopy(obj)
    change(broken)
    errors = validate(broken)
    assert errors, "the harness accepted a broken object"
    return "\n".join(errors)


@pytest.fixture
def drpc() -> dict:
    return sample_object("healthy", "DRPlacementControl", "billing-drpc")


def test_rejects_a_wrong_type(drpc: dict) -> None:
    errors = errors_after(drpc, lambda o: o["spec"].update(pvcSelector="appname=billing"))
    assert "spec.pvcSelector: 'appname=billing' is not of type 'object'" in errors


def test_rejects_an_unknown_field(drpc: dict) -> None:
    errors = errors_after(drpc, lambda o: o["spec"].update(pvcSelecter=o["spec"]["pvcSelector"]))
    assert "unknown field spec.pvcSelecter" in errors


def test_rejects_a_missing_required_field() -> None:
    policy = sample_object("healthy", "DRPolicy", "odr-metro-policy")
    errors = errors_after(policy, lambda o: o["spec"].pop("schedulingInterval"))
    assert "'schedulingInterval' is a required property" in errors


def test_rejects_a_value_outside_an_enum_or_pattern(drpc: dict) -> None:
    errors = errors_after(drpc, lambda o: o["status"]["conditions"][0].update(status="true"))
    assert "status.conditions[0].status: 'true' is not one of ['True', 'False', 'Unknown']" in errors
    policy = sample_object("healthy", "DRPolicy", "odr-metro-policy")
    errors = errors_after(policy, lambda o: o["spec"].update(schedulingInterval="5 minutes"))
    assert "spec.schedulingInterval: '5 minutes' does not match" in errors
    errors = errors_after(drpc, lambda o: o["spec"]["kubeObjectProtection"].update(captureInterval="5 minutes"))
    assert "spec.kubeObjectProtection.captureInterval: '5 minutes' is not a 'duration'" in errors


def test_date_time_must_be_an_rfc3339_string(drpc: dict) -> None:
    errors = errors_after(drpc, lambda o: o["status"].update(lastUpdateTime="2026-11-20"))
    assert "status.lastUpdateTime: '2026-11-20' is not a 'date-time'" in errors
    # An unquoted timestamp in YAML loads as a datetime, which the apiserver would never return.
    unquoted = yaml.safe_load("lastUpdateTime: 2026-11-20T08:58:02Z")["lastUpdateTime"]
    errors = errors_after(drpc, lambda o: o["status"].update(lastUpdateTime=unquoted))
    assert "status.lastUpdateTime: datetime.datetime(2026, 11, 20" in errors and "is not of type 'string'" in errors


def test_int_or_string_quantities() -> None:
    pvc = sample_object("healthy", "PersistentVolumeClaim", "billing-db-data")
    pvc["spec"]["resources"]["requests"]["storage"] = 107374182400
    assert validate(pvc) == []
    errors = errors_after(pvc, lambda o: o["spec"]["resources"]["requests"].update(storage="100 GiB"))
    assert "spec.resources.requests.storage: '100 GiB' does not match" in errors


def test_null_only_where_nullable() -> None:
    vm = sample_object("healthy", "VirtualMachine", "billing-db")
    assert vm["status"]["conditions"][0]["lastProbeTime"] is None  # nullable in the KubeVirt CRD
    assert validate(vm) == []
    errors = errors_after(vm, lambda o: o["status"].update(printableStatus=None))
    assert "status.printableStatus: None is not of type 'string'" in errors


def test_scope_is_checked(drpc: dict) -> None:
    assert "metadata.namespace is required" in errors_after(drpc, lambda o: o["metadata"].pop("namespace"))
    storage_class = sample_object("healthy", "StorageClass", "ocs-external-storagecluster-ceph-rbd")
    errors = errors_after(storage_class, lambda o: o["metadata"].update(namespace="openshift-storage"))
    assert "set on a cluster-scoped kind" in errors


def test_core_kinds_are_checked_by_hand_written_schemas() -> None:
    pvc = sample_object("healthy", "PersistentVolumeClaim", "billing-db-data")
    assert "status.phase: 'Ready' is not one of" in errors_after(pvc, lambda o: o["status"].update(phase="Ready"))
    assert "'accessModes' is a required property" in errors_after(pvc, lambda o: o["spec"].pop("accessModes"))
    namespace = sample_object("healthy", "Namespace", "billing")
    assert "unknown field spec.owner" in errors_after(namespace, lambda o: o["spec"].update(owner="team-a"))


def test_object_meta_is_checked(drpc: dict) -> None:
    errors = errors_after(drpc, lambda o: o["metadata"]["labels"].update(tier=3))
    assert "metadata.labels.tier: 3 is not of type 'string'" in errors
    errors = errors_after(drpc, lambda o: o["metadata"].update(ownerReferences=[{"kind": "Placement"}] * 2))
    assert "'uid' is a required property" in errors
    assert "duplicate entry metadata.ownerReferences[1]" in errors


def test_unknown_kinds_and_versions_are_reported_not_guessed(drpc: dict) -> None:
    errors = errors_after(drpc, lambda o: o.update(apiVersion="ramendr.openshift.io/v1"))
    assert "no schema for ramendr.openshift.io/v1 DRPlacementControl" in errors
    with pytest.raises(KeyError, match=r"no ODF 4\.16 schema"):
        load_schema(RAMEN, "v1alpha1", "DRClusterConfig", "4.16")
    with pytest.raises(ValueError, match="unknown variant"):
        load_schema(RAMEN, "v1alpha1", "DRPolicy", "4.17")


def test_release_schemas_really_differ() -> None:
    """The per-release files are what they claim: 4.16 lacks DRPolicy status.sync, main has networkPeers."""
    status = {v: load_schema(RAMEN, "v1alpha1", "DRPolicy", v)["properties"]["status"]["properties"] for v in VARIANTS}
    assert "sync" not in status["4.16"] and "sync" in status["4.18"]
    assert "networkPeers" in status["main"] and "networkPeers" not in status["4.20"]
