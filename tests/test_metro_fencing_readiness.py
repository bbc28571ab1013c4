"""metro_fencing_readiness against the healthy sample's Metro-DR DRClusters, with the CIDR states Ramen reports.

The CIDRsValidated conditions are written as Ramen's drcluster_controller.go writes them (PR #2561); the
DRClusterConfig objects as its drclusterconfig_controller.go does, and both are checked against the real CRDs.
"""

from __future__ import annotations

import pytest
from crd_schemas import validate
from helpers import by_resource, context_for, run, sample, without

from auditor.inventory import conditions
from auditor.model import Status

CHECK = "metro_fencing_readiness"
CLUSTER_IDS = {"prod-east": "5d4f1b0e-8c2a-4f7e-9b1d-3a6c2e9f0a11", "prod-west": "a3e9c6d2-1f4b-4c8a-8e7d-6b2f0c9d4e55"}


@pytest.fixture
def estate():
    return sample("healthy")


def drcluster(estate, name="prod-west") -> dict:
    return estate.hub.get("DRCluster", name)


def cidrs_validated(estate, name="prod-west") -> dict:
    return conditions(drcluster(estate, name))["CIDRsValidated"]


def drop_cidrs_validated(estate, name="prod-west") -> None:
    """What a Ramen release before PR #2561 reports: no CIDRsValidated condition at all."""
    obj = drcluster(estate, name)
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] != "CIDRsValidated"]


def add_drcluster_config(estate, cluster: str, detected: list[str]) -> None:
    config = {
        "apiVersion": "ramendr.openshift.io/v1alpha1",
        "kind": "DRClusterConfig",
        "metadata": {
            "finalizers": ["drclusterconfigs.ramendr.openshift.io/finalizer"],
            "labels": {"ramendr.openshift.io/created-by-ramen": "true"},
            "name": cluster,
        },
        "spec": {"clusterID": CLUSTER_IDS[cluster]},
        "status": {
            "conditions": [
                {
                    "lastTransitionTime": "2026-09-02T10:05:31Z",
                    "message": "Configuration processed and validated",
                    "observedGeneration": 1,
                    "reason": "Succeeded",
                    "status": "True",
                    "type": "Processed",
                },
                {
                    "lastTransitionTime": "2026-09-02T10:05:29Z",
                    "message": "Initializing DRClusterConfig",
                    "observedGeneration": 1,
                    "reason": "Initializing",
                    "status": "Unknown",
                    "type": "Reachable",
                },
            ],
            "networkFenceClasses": ["ocs-external-storagecluster-rbd-networkfenceclass"],
            "storageAccessDetails": [{"cidrs": detected, "storageProvisioner": "openshift-storage.rbd.csi.ceph.com"}],
            "storageClasses": ["ocs-external-storagecluster-ceph-rbd"],
        },
    }
    assert validate(config) == []
    estate.clusters[cluster].add(config)


def finding_for(estate, name="prod-west"):
    for obj in estate.hub.list("DRCluster"):
        assert validate(obj) == [], obj["metadata"]["name"]
    return by_resource(run(CHECK, context_for(estate)))[f"None/{name}"]


def test_healthy_metro_clusters_can_be_fenced(estate) -> None:
    findings = run(CHECK, context_for(estate))
    assert [f.resource.name for f in findings] == ["prod-east", "prod-west"]
    for finding in findings:
        assert finding.status is Status.PASS, finding.message
        assert 'CIDRsValidated is True, reason Succeeded: "All detected CIDRs are configured"' in finding.message
    assert findings[1].evidence["metroPeers"] == {"prod-east": ["10.40.8.0/24"]}


def test_no_cidrs_fails_with_the_patch_to_apply(estate) -> None:
    """Ramen removes CIDRsValidated when spec.cidrs is empty (validateCIDRs: non-MDR setups skip validation)."""
    drcluster(estate)["spec"].pop("cidrs")
    drop_cidrs_validated(estate)
    finding = finding_for(estate)
    assert finding.status is Status.FAIL
    assert "spec.cidrs is empty" in finding.message and "WaitForFencing" in finding.message
    assert "oc patch drcluster prod-west --type merge" in finding.message
    assert finding.evidence["fix"].endswith("""-p '{"spec":{"cidrs":["<CIDR of every node of prod-west>"]}}'""")


def test_no_cidrs_patch_lists_the_detected_cidrs_when_known(estate) -> None:
    drcluster(estate)["spec"].pop("cidrs")
    drop_cidrs_validated(estate)
    add_drcluster_config(estate, "prod-west", ["10.48.8.0/24", "10.48.9.0/24"])
    finding = finding_for(estate)
    assert finding.evidence["fix"] == (
        """oc patch drcluster prod-west --type merge -p '{"spec":{"cidrs":["10.48.8.0/24","10.48.9.0/24"]}}'"""
    )


def test_detected_cidrs_unconfigured_fails(estate) -> None:
    cidrs_validated(estate).update(
        status="False", reason="DetectedCIDRsUnconfigured", message="detected CIDRs not configured: 10.48.9.0/24"
    )
    add_drcluster_config(estate, "prod-west", ["10.48.8.0/24", "10.48.9.0/24"])
    finding = finding_for(estate)
    assert finding.status is Status.FAIL
    assert (
        'CIDRsValidated is False, reason DetectedCIDRsUnconfigured: "detected CIDRs not configured: 10.48.9.0/24"'
        in finding.message
    )
    assert '"cidrs":["10.48.8.0/24","10.48.9.0/24"]' in finding.evidence["fix"]


def test_invalid_cidr_format_fails(estate) -> None:
    drcluster(estate)["spec"]["cidrs"] = ["10.48.8.0/24", "10.48.9.0"]
    cidrs_validated(estate).update(
        status="False", reason="InvalidCIDRsFormat", message="invalid CIDRs format specified 10.48.9.0"
    )
    finding = finding_for(estate)
    assert finding.status is Status.FAIL
    assert "spec.cidrs holds invalid CIDR(s) 10.48.9.0" in finding.message
    assert "reason InvalidCIDRsFormat" in finding.message
    assert '"cidrs":["10.48.8.0/24"]' in finding.evidence["fix"]


@pytest.mark.parametrize("cidr", ["10.48.8.0/33", "10.48.8.0/255.255.255.0", "fd00::/129", "prod-west-nodes"])
def test_cidrs_go_would_refuse_are_invalid(estate, cidr) -> None:
    drcluster(estate)["spec"]["cidrs"] = [cidr]
    assert f"spec.cidrs holds invalid CIDR(s) {cidr}" in finding_for(estate).message


def test_host_bits_are_accepted_like_go_parse_cidr(estate) -> None:
    drcluster(estate)["spec"]["cidrs"] = ["10.48.8.17/24", "fd00:48::/64"]
    assert finding_for(estate).status is Status.PASS


def test_undetected_cidrs_found_passes_with_a_note(estate) -> None:
    """PR #2561: extra CIDRs keep CIDRsValidated True; fencing still covers every detected storage client."""
    drcluster(estate)["spec"]["cidrs"] = ["10.48.8.0/24", "10.48.12.0/24"]
    cidrs_validated(estate).update(
        status="True",
        reason="UndetectedCIDRsFound",
        message="warning: CIDRs not detected by storage provisioner: 10.48.12.0/24",
    )
    finding = finding_for(estate)
    assert finding.status is Status.PASS
    assert "reason UndetectedCIDRsFound" in finding.message and "Ramen allows CIDRs" in finding.message


def test_cidr_overlapping_the_peer_fails(estate) -> None:
    drcluster(estate)["spec"]["cidrs"] = ["10.32.0.0/11"]
    finding = finding_for(estate)
    assert finding.status is Status.FAIL
    assert "10.32.0.0/11 overlaps 10.40.8.0/24 of peer DRCluster prod-east" in finding.message
    assert "10.40.8.0/24 overlaps 10.32.0.0/11 of peer DRCluster prod-west" in finding_for(estate, "prod-east").message
    assert "<CIDR of every node of prod-west>" in finding.evidence["fix"]  # the fix drops the overlapping CIDR


def test_older_ramen_without_drclusterconfig_warns(estate) -> None:
    drop_cidrs_validated(estate)
    finding = finding_for(estate)
    assert finding.status is Status.WARN
    assert "cannot be confirmed: Ramen reports no CIDRsValidated condition" in finding.message
    assert "prod-west has no DRClusterConfig" in finding.message


def test_older_ramen_compared_with_drclusterconfig(estate) -> None:
    drop_cidrs_validated(estate)
    add_drcluster_config(estate, "prod-west", ["10.48.8.0/25", "10.48.8.128/25"])
    finding = finding_for(estate)
    assert finding.status is Status.PASS
    assert "every CIDR that DRClusterConfig prod-west on prod-west detected lies within spec.cidrs" in finding.message


def test_older_ramen_detected_cidr_outside_spec_fails(estate) -> None:
    drop_cidrs_validated(estate)
    add_drcluster_config(estate, "prod-west", ["10.48.8.0/24", "10.48.9.0/24"])
    finding = finding_for(estate)
    assert finding.status is Status.FAIL
    assert "detected storage clients in 10.48.9.0/24, outside spec.cidrs" in finding.message


def test_regional_only_estate_is_a_skip(estate) -> None:
    estate.hub.get("DRPolicy", "odr-metro-policy")["spec"]["schedulingInterval"] = "5m"
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.SKIP and "No Metro-DR DRPolicy" in finding.message


def test_drcluster_outside_metro_policies_is_skipped(estate) -> None:
    estate.hub.get("DRPolicy", "odr-metro-policy")["spec"]["drClusters"] = ["prod-east", "prod-north"]
    assert finding_for(estate).status is Status.SKIP
    assert finding_for(estate, "prod-east").status is Status.PASS


def test_drclusterconfig_unreadable_on_one_cluster_still_judges_the_rest(estate) -> None:
    estate.clusters["prod-west"].unavailable["DRClusterConfig"] = "list drclusterconfigs on prod-west timed out"
    findings = run(CHECK, context_for(estate))
    errors = [f for f in findings if f.status is Status.ERROR]
    assert [f.cluster for f in errors] == ["prod-west"]
    assert {f.resource.name: f.status for f in findings if f.resource} == {
        "prod-east": Status.PASS,
        "prod-west": Status.PASS,
    }


def test_unreadable_drclusters_are_an_error(estate) -> None:
    estate.hub.unavailable["DRCluster"] = "list drclusters.ramendr.openshift.io on hub was refused (HTTP 403)"
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.ERROR


def test_broken_hub_sample_fails_the_cluster_without_cidrs() -> None:
    findings = by_resource(run(CHECK, context_for(sample("broken-hub"))))
    assert findings["None/prod-east"].status is Status.PASS
    west = findings["None/prod-west"]
    assert west.status is Status.FAIL and "spec.cidrs is empty" in west.message
    assert west.evidence["condition"] is None


def test_without_drclusters_it_is_a_skip(estate) -> None:
    estate.hub = without(estate.hub, "DRCluster")
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.SKIP and "No DRCluster" in finding.message
