"""drcluster_health against the healthy sample's DRClusters, hub config and ManagedClusters, broken in memory."""

from __future__ import annotations

import json

import pytest
from crd_schemas import validate
from helpers import by_resource, context_for, run, sample, without

from auditor.inventory import Inventory, conditions
from auditor.model import Status
from auditor.ramen import HUB_OPERATOR_CONFIG, RAMEN_CONFIG_KEY

CHECK = "drcluster_health"


@pytest.fixture
def estate():
    return sample("healthy")


def drcluster(estate, name="prod-east") -> dict:
    return estate.hub.get("DRCluster", name)


def hub_config(estate) -> dict:
    (configmap,) = estate.hub.named("ConfigMap", HUB_OPERATOR_CONFIG)
    return configmap


def finding_for(estate, name="prod-east"):
    for obj in estate.hub.list("DRCluster") + estate.hub.list("ConfigMap") + estate.hub.list("ManagedCluster"):
        assert validate(obj) == [], obj["metadata"]["name"]
    return by_resource(run(CHECK, context_for(estate)))[f"None/{name}"]


def test_healthy_drclusters_pass(estate) -> None:
    findings = run(CHECK, context_for(estate))
    assert [f.resource.name for f in findings] == ["prod-east", "prod-west"]
    for finding in findings:
        assert finding.status is Status.PASS, finding.message
        assert finding.cluster == "hub" and finding.resource.kind == "DRCluster"
        assert finding.evidence["hubConfig"][0]["configMap"] == "openshift-operators/ramen-hub-operator-config"
    assert "S3 profile s3profile-prod-east-ocs-external-storagecluster is defined" in findings[0].message


def test_s3_profile_missing_from_the_hub_config_fails_without_revealing_secrets(estate) -> None:
    configmap = hub_config(estate)
    text = configmap["data"][RAMEN_CONFIG_KEY]
    configmap["data"][RAMEN_CONFIG_KEY] = text.replace(
        "s3profile-prod-east-ocs-external-storagecluster", "s3profile-prod-east-ocs-storagecluster"
    )
    finding = finding_for(estate)
    assert finding.status is Status.FAIL
    assert (
        "S3 profile s3profile-prod-east-ocs-external-storagecluster is not defined in ConfigMap "
        "openshift-operators/ramen-hub-operator-config (it defines: s3profile-prod-east-ocs-storagecluster, "
        "s3profile-prod-west-ocs-external-storagecluster)" in finding.message
    )
    assert "9a8e8fd04b5d1fdc7af29845a7d1f4a5e60fd0e" in text  # the Secret the profile names
    assert "9a8e8fd04b5d1fdc7af29845a7d1f4a5e60fd0e" not in json.dumps(finding.to_dict())
    assert finding_for(estate, "prod-west").status is Status.PASS


def test_hub_config_not_found_only_warns(estate) -> None:
    estate.hub = without(estate.hub, "ConfigMap", HUB_OPERATOR_CONFIG)
    finding = finding_for(estate)
    assert finding.status is Status.WARN
    assert "cannot be confirmed (no ConfigMap ramen-hub-operator-config on the hub)" in finding.message


def test_unreadable_hub_config_only_warns(estate) -> None:
    hub_config(estate)["data"][RAMEN_CONFIG_KEY] = "s3StoreProfiles: [unclosed"
    finding = finding_for(estate)
    assert finding.status is Status.WARN
    assert "ramen_manager_config.yaml is not valid YAML" in finding.message


def test_upstream_namespace_is_found_too(estate) -> None:
    """Upstream Ramen runs in ramen-system; the config is found by name, wherever it is."""
    hub_config(estate)["metadata"]["namespace"] = "ramen-system"
    estate.hub = Inventory("hub", [obj for kind in estate.hub.kinds() for obj in estate.hub.list(kind)])
    finding = finding_for(estate)
    assert finding.status is Status.PASS
    assert finding.evidence["hubConfig"][0]["configMap"] == "ramen-system/ramen-hub-operator-config"


def test_not_validated_fails_quoting_ramen(estate) -> None:
    conditions(drcluster(estate))["Validated"].update(
        status="False",
        reason="s3ConnectionFailed",
        message="s3profile-prod-east-ocs-external-storagecluster: failed to get profile",
    )
    finding = finding_for(estate)
    assert finding.status is Status.FAIL
    assert (
        'Validated is False, reason s3ConnectionFailed: "s3profile-prod-east-ocs-external-storagecluster: failed '
        'to get profile"' in finding.message
    )


def test_fenced_cluster_fails(estate) -> None:
    obj = drcluster(estate)
    obj["spec"]["clusterFence"] = "Fenced"
    obj["status"]["phase"] = "Fenced"
    conditions(obj)["Fenced"].update(status="True", reason="Fenced", message="Cluster Fenced")
    conditions(obj)["Clean"].update(status="False", reason="Fenced", message="Cluster Fenced")
    finding = finding_for(estate)
    assert finding.status is Status.FAIL
    assert 'Clean is False, reason Fenced: "Cluster Fenced"' in finding.message
    assert 'Fenced is True, reason Fenced: "Cluster Fenced" (expected False)' in finding.message
    assert "spec.clusterFence is Fenced" in finding.message and "status.phase is Fenced" in finding.message


def test_manually_unfenced_is_steady(estate) -> None:
    obj = drcluster(estate)
    obj["spec"]["clusterFence"] = "ManuallyUnfenced"
    obj["status"]["phase"] = "Unfenced"
    assert finding_for(estate).status is Status.PASS


def test_transitional_phase_warns(estate) -> None:
    drcluster(estate)["status"]["phase"] = "Unfencing"
    finding = finding_for(estate)
    assert finding.status is Status.WARN
    assert "status.phase is Unfencing, not a steady phase (Available or Unfenced)" in finding.message


def test_missing_fenced_condition_fails(estate) -> None:
    obj = drcluster(estate)
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] != "Fenced"]
    assert "Fenced is not reported (expected False)" in finding_for(estate).message


def test_empty_s3_profile_name_fails(estate) -> None:
    drcluster(estate)["spec"]["s3ProfileName"] = ""
    finding = finding_for(estate)
    assert finding.status is Status.FAIL and "spec.s3ProfileName is empty" in finding.message


def test_unavailable_managed_cluster_fails(estate) -> None:
    available = conditions(estate.hub.get("ManagedCluster", "prod-west"))["ManagedClusterConditionAvailable"]
    available.update(
        status="Unknown",
        reason="ManagedClusterLeaseUpdateStopped",
        message="Registration agent stopped updating its lease.",
    )
    finding = finding_for(estate, "prod-west")
    assert finding.status is Status.FAIL
    assert (
        "ManagedCluster prod-west: ManagedClusterConditionAvailable is Unknown, reason ManagedClusterLeaseUpdateStopped"
        in finding.message
    )
    assert finding_for(estate).status is Status.PASS


def test_missing_managed_cluster_fails(estate) -> None:
    estate.hub = without(estate.hub, "ManagedCluster", "prod-east")
    assert "no ManagedCluster prod-east on the hub" in finding_for(estate).message


def test_no_drcluster_is_a_skip(estate) -> None:
    estate.hub = without(estate.hub, "DRCluster")
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.SKIP


def test_unreadable_config_maps_are_an_error(estate) -> None:
    estate.hub.unavailable["ConfigMap"] = "list configmaps on hub was refused (HTTP 403)"
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.ERROR and "ConfigMap could not be read on hub" in finding.message


def test_broken_hub_sample() -> None:
    findings = by_resource(run(CHECK, context_for(sample("broken-hub"))))
    east, west = findings["None/prod-east"], findings["None/prod-west"]
    assert east.status is Status.FAIL
    assert "reason s3ConnectionFailed" in east.message
    assert "S3 profile s3profile-prod-east-ocs-external-storagecluster is not defined" in east.message
    assert west.status is Status.FAIL
    assert west.evidence["failures"] == [
        "ManagedCluster prod-west: ManagedClusterConditionAvailable is Unknown, reason "
        'ManagedClusterLeaseUpdateStopped: "Registration agent stopped updating its lease."'
    ]
