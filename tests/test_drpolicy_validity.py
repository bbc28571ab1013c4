"""drpolicy_validity against the healthy sample's Metro-DR policy, reshaped in memory into every case it judges.

Every reshaped DRPolicy is validated against the real CRD first, so no case rests on a shape Ramen could not store.
"""

from __future__ import annotations

import copy

import pytest
from crd_schemas import prune, validate
from helpers import by_resource, context_for, run, sample, without

from auditor.model import Status

CHECK = "drpolicy_validity"
POLICY = "odr-metro-policy"


@pytest.fixture
def estate():
    return sample("healthy")


def policy(estate) -> dict:
    return estate.hub.get("DRPolicy", POLICY)


def judged(estate):
    """The one finding about the policy, after checking that the policy is one the CRD accepts."""
    assert validate(policy(estate)) == []
    (finding,) = [f for f in run(CHECK, context_for(estate)) if f.resource and f.resource.kind == "DRPolicy"]
    return finding


def make_regional(obj: dict, interval: str = "5m") -> None:
    """What Ramen reports for a Regional-DR policy: an interval and a peer class pairing two storage systems."""
    obj["spec"]["schedulingInterval"] = interval
    sync_class = obj["status"]["sync"]["peerClasses"][0]
    obj["status"]["sync"] = {}
    obj["status"]["async"] = {
        "peerClasses": [
            {
                **copy.deepcopy(sync_class),
                "replicationID": "a6a1e4d2c9b8f7e3d5c1b0a9f8e7d6c5",
                "storageID": ["8b1f4c2e6d0a4b7e9c3f5a1d2e4b6c8f", "f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8"],
            }
        ]
    }


def test_healthy_metro_policy_passes_and_says_which_kind(estate) -> None:
    findings = run(CHECK, context_for(estate))
    (finding,) = findings
    assert finding.status is Status.PASS, finding.message
    assert finding.cluster == "hub" and finding.resource.name == POLICY
    assert "Metro-DR (synchronous)" in finding.message
    assert "ocs-external-storagecluster-ceph-rbd (storageID 8b1f4c2e6d0a4b7e9c3f5a1d2e4b6c8f)" in finding.message
    assert finding.evidence["kind"] == "Metro-DR (synchronous)" and finding.evidence["mode"] == "metro"
    assert finding.evidence["drClusters"] == ["prod-east", "prod-west"]
    assert len(finding.evidence["drpcs"]) == 3


def test_regional_policy_with_async_peer_classes_passes(estate) -> None:
    make_regional(policy(estate))
    finding = judged(estate)
    assert finding.status is Status.PASS, finding.message
    assert "Regional-DR (asynchronous, every 5m)" in finding.message
    assert finding.evidence["mode"] == "regional" and finding.evidence["schedulingInterval"] == "5m"


def test_zero_interval_is_metro_as_ramen_reads_it(estate) -> None:
    policy(estate)["spec"]["schedulingInterval"] = "0m"
    assert "Metro-DR (synchronous)" in judged(estate).message


def test_regional_interval_with_only_sync_peer_classes_is_a_shape_mismatch(estate) -> None:
    policy(estate)["spec"]["schedulingInterval"] = "1h"
    finding = judged(estate)
    assert finding.status is Status.FAIL
    assert "Regional-DR (asynchronous, every 1h)" in finding.message
    assert "asks for Regional-DR (schedulingInterval 1h) but Ramen found StorageClasses shared" in finding.message
    assert "no asynchronous peer class" in finding.message


def test_metro_policy_with_async_peer_classes_is_a_shape_mismatch(estate) -> None:
    obj = policy(estate)
    make_regional(obj)
    obj["spec"]["schedulingInterval"] = ""
    finding = judged(estate)
    assert finding.status is Status.FAIL
    assert "asks for Metro-DR (empty schedulingInterval) but Ramen paired StorageClasses for asynchronous" in (
        finding.message
    )
    assert "no synchronous peer class" in finding.message


def test_metro_policy_without_sync_peer_classes_fails(estate) -> None:
    policy(estate)["status"]["sync"] = {}
    finding = judged(estate)
    assert finding.status is Status.FAIL
    assert "Ramen reports no synchronous peer class in status.sync.peerClasses" in finding.message
    assert finding.evidence["peerClasses"]["reported"] is True


def test_metro_peer_class_must_share_one_storage_id(estate) -> None:
    policy(estate)["status"]["sync"]["peerClasses"][0]["storageID"].append("f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8")
    finding = judged(estate)
    assert finding.status is Status.FAIL
    assert "Metro-DR needs one storage system, the same storageID on both clusters" in finding.message


def test_odf_4_16_hub_without_peer_class_status_only_warns(estate) -> None:
    """ODF 4.16's DRPolicy CRD has no status.sync/async: the apiserver prunes what Ramen would write there."""
    stored = prune(policy(estate), "4.16")
    assert validate(stored, "4.16") == []
    policy(estate)["status"] = stored["status"]
    finding = judged(estate)
    assert finding.status is Status.WARN
    assert "cannot confirm peer classes" in finding.message and "Metro-DR (synchronous)" in finding.message


def test_not_validated_fails_quoting_the_condition(estate) -> None:
    validated = policy(estate)["status"]["conditions"][0]
    validated.update(
        status="False",
        reason="DRClustersUnavailable",
        message="none of the DRClusters are validated ([prod-east prod-west])",
    )
    finding = judged(estate)
    assert finding.status is Status.FAIL
    assert (
        'Validated is False, reason DRClustersUnavailable: "none of the DRClusters are validated '
        '([prod-east prod-west])"' in finding.message
    )


def test_each_policy_cluster_needs_a_drcluster(estate) -> None:
    estate.hub = without(estate.hub, "DRCluster", "prod-west")
    finding = judged(estate)
    assert finding.status is Status.FAIL and "no DRCluster on the hub for prod-west" in finding.message
    assert finding.evidence["missingDRClusters"] == ["prod-west"]


def test_exactly_two_clusters(estate) -> None:
    """Releases before the CEL rule (ODF 4.16) accept any number of drClusters."""
    policy(estate)["spec"]["drClusters"] = ["prod-east"]
    assert validate(prune(policy(estate), "4.16"), "4.16") == []
    finding = run(CHECK, context_for(estate))[0]
    assert finding.status is Status.FAIL
    assert "spec.drClusters names 1 cluster(s) (prod-east), not two" in finding.message


def test_drpc_naming_a_missing_policy_fails_on_the_drpc(estate) -> None:
    drpc = estate.hub.get("DRPlacementControl", "crm-drpc", "crm")
    drpc["spec"]["drPolicyRef"]["name"] = "odr-metro-policy-old"
    findings = by_resource(run(CHECK, context_for(estate)))
    dangling = findings["crm/crm-drpc"]
    assert dangling.status is Status.FAIL and dangling.resource.kind == "DRPlacementControl"
    assert "names DRPolicy odr-metro-policy-old, which does not exist on the hub" in dangling.message
    assert findings[f"None/{POLICY}"].status is Status.PASS
    assert len(findings[f"None/{POLICY}"].evidence["drpcs"]) == 2


def test_drpcs_without_any_policy_fail(estate) -> None:
    estate.hub = without(estate.hub, "DRPolicy")
    findings = run(CHECK, context_for(estate))
    assert len(findings) == 3
    assert all(f.status is Status.FAIL and f.resource.kind == "DRPlacementControl" for f in findings)
    assert all("the hub has no DRPolicy at all" in f.message for f in findings)


def test_no_policy_and_no_drpc_is_a_skip(estate) -> None:
    estate.hub = without(without(estate.hub, "DRPolicy"), "DRPlacementControl")
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.SKIP


def test_unreadable_policies_are_an_error(estate) -> None:
    estate.hub.unavailable["DRPolicy"] = "list drpolicies.ramendr.openshift.io on hub was refused (HTTP 403)"
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.ERROR and "DRPolicy could not be read on hub" in finding.message


def test_broken_hub_sample_fails_on_the_missing_sync_peer_class() -> None:
    (finding,) = run(CHECK, context_for(sample("broken-hub")))
    assert finding.status is Status.FAIL and finding.resource.name == POLICY
    assert "Metro-DR (synchronous)" in finding.message
    assert "Ramen reports no synchronous peer class" in finding.message
    assert not any("Validated" in failure for failure in finding.evidence["failures"])
