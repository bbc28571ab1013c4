"""hub_health against the healthy sample's ManagedClusters and Ramen operator Deployments, broken in memory.

The Deployment statuses are the ones Kubernetes' deployment controller writes (MinimumReplicasAvailable /
MinimumReplicasUnavailable), and every changed object is checked against its schema first.
"""

from __future__ import annotations

import pytest
from crd_schemas import validate
from helpers import context_for, run, sample, without

from auditor.inventory import Inventory, conditions
from auditor.model import Status
from auditor.ramen import DR_CLUSTER_OPERATOR, HUB_OPERATOR

CHECK = "hub_health"


@pytest.fixture
def estate():
    return sample("healthy")


def operator(estate, cluster="prod-west") -> dict:
    inventory = estate.hub if cluster == "hub" else estate.clusters[cluster]
    (deployment,) = inventory.named("Deployment", HUB_OPERATOR if cluster == "hub" else DR_CLUSTER_OPERATOR)
    return deployment


def findings_by_subject(estate) -> dict:
    for inventory in estate.inventories():
        for obj in inventory.list("Deployment") + inventory.list("ManagedCluster"):
            assert validate(obj) == [], obj["metadata"]["name"]
    return {(f.cluster, f.resource.kind, f.resource.name): f for f in run(CHECK, context_for(estate)) if f.resource}


def make_unavailable(deployment: dict) -> None:
    """The deployment controller's status once the only pod stopped being ready."""
    status = deployment["status"]
    for key in ("availableReplicas", "readyReplicas"):
        status.pop(key)
    status["unavailableReplicas"] = 1
    available = next(c for c in status["conditions"] if c["type"] == "Available")
    status["conditions"].remove(available)
    status["conditions"].append(
        {
            **available,
            "lastTransitionTime": "2026-11-20T07:58:40Z",
            "lastUpdateTime": "2026-11-20T07:58:40Z",
            "message": "Deployment does not have minimum availability.",
            "reason": "MinimumReplicasUnavailable",
            "status": "False",
        }
    )


def test_healthy_hub_sees_both_clusters_and_every_operator_runs(estate) -> None:
    findings = run(CHECK, context_for(estate))
    assert all(f.status is Status.PASS for f in findings), [f.message for f in findings]
    assert sorted((f.cluster, f.resource.kind, f.resource.name) for f in findings) == [
        ("hub", "Deployment", "ramen-hub-operator"),
        ("hub", "ManagedCluster", "prod-east"),
        ("hub", "ManagedCluster", "prod-west"),
        ("prod-east", "Deployment", "ramen-dr-cluster-operator"),
        ("prod-west", "Deployment", "ramen-dr-cluster-operator"),
    ]
    hub_operator = next(f for f in findings if f.resource.name == HUB_OPERATOR)
    assert hub_operator.resource.namespace == "openshift-operators"
    assert hub_operator.evidence["images"]["manager"].startswith("registry.redhat.io/odf4/odr-rhel9-operator@")


def test_unavailable_managed_cluster_fails(estate) -> None:
    cluster = estate.hub.get("ManagedCluster", "prod-west")
    conditions(cluster)["ManagedClusterConditionAvailable"].update(
        status="Unknown",
        reason="ManagedClusterLeaseUpdateStopped",
        message="Registration agent stopped updating its lease.",
    )
    finding = findings_by_subject(estate)[("hub", "ManagedCluster", "prod-west")]
    assert finding.status is Status.FAIL
    assert (
        "ManagedClusterConditionAvailable is Unknown, reason ManagedClusterLeaseUpdateStopped: "
        '"Registration agent stopped updating its lease."' in finding.message
    )
    assert findings_by_subject(estate)[("hub", "ManagedCluster", "prod-east")].status is Status.PASS


def test_cluster_not_accepted_or_joined_fails(estate) -> None:
    cluster = estate.hub.get("ManagedCluster", "prod-east")
    cluster["spec"]["hubAcceptsClient"] = False
    cluster["status"]["conditions"] = [
        c
        for c in cluster["status"]["conditions"]
        if c["type"] not in ("HubAcceptedManagedCluster", "ManagedClusterJoined")
    ]
    finding = findings_by_subject(estate)[("hub", "ManagedCluster", "prod-east")]
    assert finding.status is Status.FAIL
    assert "HubAcceptedManagedCluster is not reported" in finding.message
    assert "ManagedClusterJoined is not reported" in finding.message
    assert finding.evidence["hubAcceptsClient"] is False


def test_missing_managed_cluster_is_named(estate) -> None:
    estate.hub = without(estate.hub, "ManagedCluster", "prod-west")
    finding = findings_by_subject(estate)[("hub", "ManagedCluster", "prod-west")]
    assert finding.status is Status.FAIL and "does not exist on the hub" in finding.message
    assert finding.resource.api_version == "cluster.open-cluster-management.io/v1"


def test_missing_hub_operator_fails(estate) -> None:
    estate.hub = without(estate.hub, "Deployment", HUB_OPERATOR)
    finding = findings_by_subject(estate)[("hub", "Deployment", HUB_OPERATOR)]
    assert finding.status is Status.FAIL
    assert "The Ramen hub operator is not installed on hub" in finding.message
    assert finding.resource.api_version == "apps/v1" and finding.resource.namespace is None


def test_unavailable_cluster_operator_fails_on_its_cluster_only(estate) -> None:
    make_unavailable(operator(estate))
    findings = findings_by_subject(estate)
    west = findings[("prod-west", "Deployment", DR_CLUSTER_OPERATOR)]
    assert west.status is Status.FAIL
    assert (
        'Available is False, reason MinimumReplicasUnavailable: "Deployment does not have minimum availability."'
        in west.message
    )
    assert "0 of 1 replicas are ready" in west.message
    assert findings[("prod-east", "Deployment", DR_CLUSTER_OPERATOR)].status is Status.PASS


def test_rollout_stuck_past_its_deadline_warns(estate) -> None:
    """An upgrade whose new pod never gets ready: the old pod still serves, the controller reports the timeout."""
    deployment = operator(estate, "hub")
    deployment["metadata"]["generation"] = 2
    status = deployment["status"]
    status.update(observedGeneration=2, replicas=2, unavailableReplicas=1, updatedReplicas=1)
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    status["conditions"].remove(progressing)
    status["conditions"].append(
        {
            **progressing,
            "lastTransitionTime": "2026-11-20T08:41:09Z",
            "lastUpdateTime": "2026-11-20T08:41:09Z",
            "message": 'ReplicaSet "ramen-hub-operator-84b6f7c9d5" has timed out progressing.',
            "reason": "ProgressDeadlineExceeded",
            "status": "False",
        }
    )
    finding = findings_by_subject(estate)[("hub", "Deployment", HUB_OPERATOR)]
    assert finding.status is Status.WARN
    assert "is available (1 of 1 replicas ready), but its rollout is stuck" in finding.message
    assert "Progressing is False, reason ProgressDeadlineExceeded" in finding.message


def test_scaled_to_zero_fails(estate) -> None:
    deployment = operator(estate, "hub")
    deployment["spec"]["replicas"] = 0
    deployment["status"] = {"conditions": deployment["status"]["conditions"], "observedGeneration": 2}
    finding = findings_by_subject(estate)[("hub", "Deployment", HUB_OPERATOR)]
    assert finding.status is Status.FAIL and "it is scaled to 0 replicas" in finding.message


def test_operator_being_deleted_fails(estate) -> None:
    operator(estate, "prod-east")["metadata"]["deletionTimestamp"] = "2026-11-20T08:55:00Z"
    finding = findings_by_subject(estate)[("prod-east", "Deployment", DR_CLUSTER_OPERATOR)]
    assert finding.status is Status.FAIL and "it is being deleted since 2026-11-20T08:55:00Z" in finding.message


def test_upstream_namespace_is_found_too(estate) -> None:
    operator(estate, "prod-east")["metadata"]["namespace"] = "ramen-system"
    inventory = estate.clusters["prod-east"]
    estate.clusters["prod-east"] = Inventory("prod-east", [o for k in inventory.kinds() for o in inventory.list(k)])
    finding = findings_by_subject(estate)[("prod-east", "Deployment", DR_CLUSTER_OPERATOR)]
    assert finding.status is Status.PASS and finding.resource.namespace == "ramen-system"


def test_no_policy_skips_the_clusters_but_still_judges_the_operators(estate) -> None:
    estate.hub = without(estate.hub, "DRPolicy")
    findings = run(CHECK, context_for(estate))
    assert [f.status for f in findings if f.resource is None] == [Status.SKIP]
    assert sum(f.status is Status.PASS for f in findings) == 3


def test_deployments_unreadable_on_one_cluster_still_judge_the_rest(estate) -> None:
    estate.clusters["prod-west"].unavailable["Deployment"] = "list deployments.apps on prod-west was refused (HTTP 403)"
    findings = run(CHECK, context_for(estate))
    (error,) = [f for f in findings if f.status is Status.ERROR]
    assert error.cluster == "prod-west" and "Deployment could not be read on prod-west" in error.message
    judged = {(f.cluster, f.resource.name) for f in findings if f.status is Status.PASS}
    assert ("prod-east", DR_CLUSTER_OPERATOR) in judged and ("hub", HUB_OPERATOR) in judged
    assert ("prod-west", DR_CLUSTER_OPERATOR) not in judged


def test_deployments_unreadable_on_the_hub_is_an_error(estate) -> None:
    estate.hub.unavailable["Deployment"] = "list deployments.apps on hub was refused (HTTP 403)"
    (finding,) = run(CHECK, context_for(estate))
    assert finding.status is Status.ERROR and finding.cluster == "hub"


def test_broken_hub_sample() -> None:
    findings = findings_by_subject(sample("broken-hub"))
    failing = sorted(key for key, f in findings.items() if f.status is Status.FAIL)
    assert failing == [("hub", "ManagedCluster", "prod-west"), ("prod-west", "Deployment", DR_CLUSTER_OPERATOR)]
    assert "MinimumReplicasUnavailable" in findings[("prod-west", "Deployment", DR_CLUSTER_OPERATOR)].message
