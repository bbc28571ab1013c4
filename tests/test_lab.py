"""The Kubernetes lab is honest: sample estates load into real apiservers unchanged, and the API behaves like one.

The estate tests start a fresh hub + managed clusters per sample (cluster-scoped objects such as DRPolicies
would collide in a shared lab); the probes share the session lab and isolate by namespace.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import ESTATES, SAMPLES
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from lab.launcher import Lab, missing_binaries, read_crds
from lab.loader import RESTORED, ClusterLoad, describe, load, objects_of, path_of
from lab.rest import Obj, Rest

from auditor.snapshot import load_snapshot

pytestmark = pytest.mark.skipif(
    bool(missing_binaries()), reason="no Kubernetes lab binaries on this machine; scripts/test builds them"
)
# Fields a v1.20 apiserver cannot hold, by (kind, path): the only differences the estate test tolerates.
VERSION_GAPS = {
    ("PersistentVolumeClaim", ".spec.dataSourceRef"): "added in Kubernetes 1.22; the v1.20 PVC type has no such field",
}


def differences(expected: Any, actual: Any, path: str) -> list[str]:
    """Paths where ``actual`` lost or changed what ``expected`` holds; keys only in ``actual`` (defaults) are fine."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing after load (file: {value!r})")
            else:
                found.extend(differences(value, actual[key], f"{path}.{key}"))
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in differences(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: file {expected!r}, read back {actual!r}"]


def comparable(obj: Obj, server_metadata: bool) -> Obj:
    """The object minus what only a server sets (uid, resourceVersion, managedFields, ...); ``generation`` and
    ``creationTimestamp`` stay when the loader restores them (custom resources)."""
    meta = obj.get("metadata") or {}
    keys = ["name", "namespace", "labels", "annotations", "finalizers"]
    kept = {key: meta[key] for key in keys + (list(RESTORED) if server_metadata else []) if key in meta}
    if meta.get("ownerReferences"):  # owners get new UIDs in the lab
        kept["ownerReferences"] = [{k: v for k, v in ref.items() if k != "uid"} for ref in meta["ownerReferences"]]
    return {**{k: v for k, v in obj.items() if k != "metadata"}, "metadata": kept}


@dataclass
class LoadedEstate:
    name: str
    result: dict[str, ClusterLoad]
    read_back: list[tuple[str, Obj, Obj]]  # (cluster, object as captured, object as the lab serves it)


@pytest.fixture(scope="module", params=ESTATES)
def estate(request: pytest.FixtureRequest) -> LoadedEstate:
    """One sample estate, loaded into a fresh lab of its own and read back object by object."""
    snapshot = SAMPLES / request.param
    captured = load_snapshot(snapshot)
    with Lab() as fresh:
        result = load(fresh, snapshot)
        read_back = []
        for cluster, inventory in {"hub": captured.hub, **captured.clusters}.items():
            rest = fresh.rest(cluster)
            resources = rest.discover()
            read_back += [
                (cluster, obj, rest.get(path_of(resources[(obj["apiVersion"], obj["kind"])], obj)))
                for obj in objects_of(inventory)
            ]
    return LoadedEstate(request.param, result, read_back)


def test_sample_estate_reads_back_unchanged(estate: LoadedEstate) -> None:
    problems = []
    for cluster, obj, stored in estate.read_back:
        restored = describe(obj) not in estate.result[cluster].server_metadata_reset
        problems += [
            f"{cluster}: {describe(obj)}: {d}"
            for d in differences(comparable(obj, restored), comparable(stored, restored), "")
            if (obj["kind"], d.partition(":")[0]) not in VERSION_GAPS
        ]
    assert not problems, f"{estate.name}: the lab pruned or changed {len(problems)} values:\n" + "\n".join(problems)
    for cluster, load_result in estate.result.items():
        count = sum(1 for c, _, _ in estate.read_back if c == cluster)
        assert load_result.created + load_result.replaced == count, cluster
        assert not load_result.dropped_owner_refs, f"{cluster}: owners missing from the estate"


def test_owner_references_point_at_the_loaded_owners(estate: LoadedEstate) -> None:
    uids = {
        (c, s["kind"], s["metadata"].get("namespace"), s["metadata"]["name"]): s["metadata"]["uid"]
        for c, _, s in estate.read_back
    }
    refs = [
        (cluster, stored, ref)
        for cluster, _, stored in estate.read_back
        for ref in stored["metadata"].get("ownerReferences") or []
    ]
    assert refs, f"{estate.name}: no ownerReferences to check"
    for cluster, stored, ref in refs:
        owner = uids.get((cluster, ref["kind"], stored["metadata"].get("namespace"), ref["name"]))
        assert owner == ref["uid"], f"{cluster}: {describe(stored)} -> {ref['kind']} {ref['name']}"


def test_read_back_comparison_reports_pruned_and_changed_values(lab: Lab) -> None:
    """The estate test is only as good as ``differences``: a field the schema does not know is really pruned."""
    rest = lab.rest("prod-east")
    ns = _namespace(CoreV1Api(lab.api_client("prod-east")))
    sent = {
        "apiVersion": "ramendr.openshift.io/v1alpha1",
        "kind": "VolumeReplicationGroup",
        "metadata": {"name": "probe", "namespace": ns},
        "spec": {"pvcSelector": {}, "replicationState": "primary", "s3Profiles": [], "notInTheSchema": "x"},
    }
    stored = rest.request("POST", f"/apis/ramendr.openshift.io/v1alpha1/namespaces/{ns}/volumereplicationgroups", sent)
    assert differences(comparable(sent, True), comparable(stored, True), "") == [
        ".spec.notInTheSchema: missing after load (file: 'x')"
    ]
    assert differences({"a": [1, 2]}, {"a": [1, 3], "b": 0}, "") == [".a[1]: file 2, read back 3"]


# ---- API probes on the shared session lab -----------------------------------------------------------------


def _namespace(core: CoreV1Api) -> str:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def test_pagination_with_limit_and_continue(lab: Lab) -> None:
    core = CoreV1Api(lab.api_client("prod-east"))
    ns = _namespace(core)
    for i in range(7):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}})
    pages, names, token = 0, [], None
    while True:
        page = core.list_namespaced_config_map(ns, limit=2, _continue=token)
        pages += 1
        names += [cm.metadata.name for cm in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert (pages, sorted(names)) == (4, [f"cm-{i}" for i in range(7)])


def test_rbac_denies_a_user_without_roles(lab: Lab) -> None:
    CoreV1Api(lab.api_client("hub")).list_namespace()  # the admin may
    with pytest.raises(ApiException) as denied:
        CoreV1Api(lab.api_client("hub", token=lab.token("lab-no-role"))).list_namespace()
    assert denied.value.status == 403
    with pytest.raises(ApiException) as unknown:
        CoreV1Api(lab.api_client("hub", token="not-a-lab-token")).list_namespace()
    assert unknown.value.status == 401


def test_every_lab_crd_kind_is_discoverable_on_every_cluster(lab: Lab) -> None:
    wanted = {
        (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
        for crd in read_crds()
        for version in crd["spec"]["versions"]
        if version["served"]
    }
    assert ("kubevirt.io/v1", "VirtualMachine") in wanted
    for cluster in lab.clusters:
        assert wanted <= set(lab.rest(cluster).discover()), cluster


def test_empty_strings_in_custom_resources_are_kept(lab: Lab) -> None:
    """Go >= 1.16 builds of v1.20 refuse "" unless kube-openapi#230 is applied (tests/lab/patches)."""
    rest = lab.rest("hub")
    name = f"probe-{uuid.uuid4().hex[:8]}"
    policy = {
        "apiVersion": "ramendr.openshift.io/v1alpha1",
        "kind": "DRPolicy",
        "metadata": {"name": name},
        "spec": {"drClusters": ["prod-east", "prod-west"], "schedulingInterval": ""},
    }
    path = f"/apis/ramendr.openshift.io/v1alpha1/drpolicies/{name}"
    rest.request("POST", "/apis/ramendr.openshift.io/v1alpha1/drpolicies", body=policy)
    try:
        assert rest.get(path)["spec"]["schedulingInterval"] == ""
    finally:  # the session lab is shared: other tests audit its hub and must not find this probe
        rest.request("DELETE", path)


def _gone(rest: Rest, path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rest.get(path)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        time.sleep(0.5)
    return False


def test_controllers_collect_garbage_and_finish_namespace_deletion(lab: Lab) -> None:
    rest = lab.rest("prod-west")
    ns = _namespace(CoreV1Api(lab.api_client("prod-west")))
    configmaps = f"/api/v1/namespaces/{ns}/configmaps"
    owner = rest.request("POST", configmaps, body={"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    rest.request("POST", configmaps, body={"metadata": {"name": "dependent", "ownerReferences": [ref]}})
    rest.request("DELETE", f"{configmaps}/owner")
    assert _gone(rest, f"{configmaps}/dependent", timeout=60), "garbage collector did not delete the dependent"
    rest.request("DELETE", f"/api/v1/namespaces/{ns}")
    assert _gone(rest, f"/api/v1/namespaces/{ns}", timeout=90), "namespace stayed Terminating"
