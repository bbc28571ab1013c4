"""peer_capacity: the protected VMs of the primary against the schedulable nodes of the peer."""

from __future__ import annotations

import copy

import pytest
from helpers import context_for, run, sample

from auditor.config import AuditConfig, Thresholds
from auditor.inventory import Estate, Inventory, Obj
from auditor.model import Finding, Status

CHECK = "peer_capacity"
WEST = "prod-west"


def audit(estate: Estate, headroom: float | None = None) -> list[Finding]:
    config = (
        AuditConfig(thresholds=Thresholds(peer_capacity_headroom_percent=headroom)) if headroom is not None else None
    )
    return run(CHECK, context_for(estate, config=config))


def only(findings: list[Finding]) -> Finding:
    (finding,) = findings
    return finding


def node(estate: Estate, cluster: str, name: str) -> Obj:
    found = estate.clusters[cluster].get("Node", f"{name}.{cluster}.example.com")
    assert found is not None, name
    return found


def vm(estate: Estate, namespace: str, name: str) -> Obj:
    found = estate.clusters["prod-east"].get("VirtualMachine", name, namespace)
    assert found is not None, name
    return found


def vm_row(finding: Finding, label: str) -> dict:
    return next(row for row in finding.evidence["vms"] if row["vm"] == label)


def set_ready(worker: Obj, status: str, reason: str) -> None:
    ready = next(c for c in worker["status"]["conditions"] if c["type"] == "Ready")
    ready.update(status=status, reason=reason)


def test_healthy_peer_holds_every_protected_vm_with_headroom() -> None:
    finding = only(audit(sample("healthy")))
    assert finding.status is Status.PASS, finding.message
    assert (finding.cluster, finding.resource.kind, finding.resource.name) == (WEST, "ManagedCluster", WEST)
    assert finding.resource.api_version == "cluster.open-cluster-management.io/v1"
    evidence = finding.evidence
    assert (evidence["primary"], evidence["peer"]) == ("prod-east", WEST)
    assert vm_row(finding, "billing/billing-db")["drpc"] == "billing/billing-drpc"
    assert {row["vm"] for row in evidence["vms"]} >= {"billing/billing-db", "crm/crm-web", "erp/erp-ledger"}
    nodes = {row["node"]: row for row in evidence["nodes"]}
    assert [n for n, row in nodes.items() if row["eligible"]] == [
        f"worker-{i}.prod-west.example.com" for i in (1, 2, 3)
    ]
    master = nodes["master-0.prod-west.example.com"]
    assert master["excluded_because"] == [
        "tainted node-role.kubernetes.io/master:NoSchedule",
        "control-plane node without the worker role",
    ]
    assert nodes["worker-1.prod-west.example.com"]["allocatable"] == {"cpu": "31", "memory": "189.4Gi"}
    assert evidence["capacity"]["schedulable_nodes"] == 3
    assert "can hold the" in finding.message and "above the 10% headroom" in finding.message


def test_sizes_come_from_requests_then_guest_memory_and_topology() -> None:
    estate = sample("healthy")
    template = vm(estate, "billing", "billing-db")["spec"]["template"]["spec"]["domain"]
    template["resources"] = {"requests": {"cpu": "1500m", "memory": "20Gi"}, "limits": {"cpu": "6", "memory": "24Gi"}}
    finding = only(audit(estate))
    row = vm_row(finding, "billing/billing-db")
    assert (row["cpu"], row["memory"]) == ("1.5", "20Gi")
    assert row["sized_from"] == {"cpu": "domain.resources.requests.cpu", "memory": "domain.resources.requests.memory"}
    assert row["limits"] == {"cpu": "6", "memory": "24Gi"}
    assert finding.evidence["demand_limits"] == {"vms_with_limits": 1, "cpu": "6", "memory": "24Gi"}
    erp = vm_row(finding, "erp/erp-ledger")
    assert erp["sized_from"] == {"cpu": "domain.cpu cores x sockets x threads", "memory": "domain.memory.guest"}


def test_an_instancetype_sizes_the_vm_from_the_primarys_inventory() -> None:
    estate = sample("healthy")
    # kubevirt/common-instancetypes instancetypes/u/1/sizes.yaml @ 7c1e305b: u1.2xlarge (8 vCPU, 32Gi).
    estate.clusters["prod-east"].add(
        {
            "apiVersion": "instancetype.kubevirt.io/v1beta1",
            "kind": "VirtualMachineClusterInstancetype",
            "metadata": {
                "name": "u1.2xlarge",
                "labels": {
                    "instancetype.kubevirt.io/cpu": "8",
                    "instancetype.kubevirt.io/memory": "32Gi",
                    "instancetype.kubevirt.io/size": "2xlarge",
                },
            },
            "spec": {"cpu": {"guest": 8}, "memory": {"guest": "32Gi"}},
        }
    )
    machine = vm(estate, "crm", "crm-web")
    machine["spec"]["instancetype"] = {"kind": "virtualmachineclusterinstancetype", "name": "u1.2xlarge"}
    domain = machine["spec"]["template"]["spec"]["domain"]
    domain.pop("cpu", None), domain.pop("memory", None)  # an instancetype VM's template sizes nothing itself
    row = vm_row(only(audit(estate)), "crm/crm-web")
    assert (row["cpu"], row["memory"]) == ("8", "32Gi")
    assert row["sized_from"]["memory"] == "VirtualMachineClusterInstancetype u1.2xlarge spec.memory.guest"

    machine["spec"]["instancetype"]["name"] = "u1.missing"
    finding = only(audit(estate))
    assert finding.status is Status.WARN
    assert "could not be fully sized (VirtualMachineClusterInstancetype u1.missing not found on prod-east)" in (
        finding.message
    )


def test_cordoned_and_notready_workers_leave_too_little_room() -> None:
    estate = sample("healthy")
    node(estate, WEST, "worker-1")["spec"]["unschedulable"] = True
    set_ready(node(estate, WEST, "worker-2"), "Unknown", "NodeStatusUnknown")
    node(estate, WEST, "worker-3")["spec"]["taints"] = [
        {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}
    ]
    finding = only(audit(estate))
    assert finding.status is Status.FAIL
    assert finding.message.startswith(
        "Peer cluster prod-west cannot take over the 4 running protected VM(s) of prod-east"
    )
    assert "they need 12 CPU but prod-west's schedulable nodes have 0 free" in finding.message
    assert "fits on no schedulable node of prod-west" in finding.message
    reasons = {row["node"].split(".")[0]: row["excluded_because"] for row in finding.evidence["nodes"]}
    assert reasons["worker-1"] == ["cordoned (spec.unschedulable)"]
    assert reasons["worker-2"] == ["Ready is Unknown (NodeStatusUnknown)"]
    assert reasons["worker-3"] == ["tainted node.kubernetes.io/memory-pressure:NoSchedule"]


def test_fitting_only_by_eating_the_headroom_fails_and_names_both_numbers() -> None:
    finding = only(audit(sample("healthy"), headroom=90))
    assert finding.status is Status.FAIL
    assert "they need 12 CPU of the 93 free, leaving 81, less than the 90% headroom of 83.7" in finding.message
    assert finding.evidence["capacity"]["usable"]["cpu"] == "9.3"


def test_half_a_headroom_above_the_limit_warns() -> None:
    # 81 of 93 CPU stay free (87%): at 60% headroom the minimum is 55.8, the warning line 1.5 x 55.8 = 83.7.
    finding = only(audit(sample("healthy"), headroom=60))
    assert finding.status is Status.WARN
    assert "only 81 CPU would stay free on prod-west, within half a headroom of the 55.8 minimum" in finding.message
    assert "memory" not in finding.message.split(", but ")[1]


@pytest.mark.parametrize(("headroom", "expected"), [(0, Status.PASS), (10, Status.PASS), (99, Status.FAIL)])
def test_headroom_comes_from_the_config(headroom: float, expected: Status) -> None:
    finding = only(audit(sample("healthy"), headroom=headroom))
    assert finding.status is expected
    assert finding.evidence["headroom_percent"] == headroom


def test_a_vm_larger_than_any_node_fails_even_when_the_total_fits() -> None:
    estate = sample("healthy")
    vm(estate, "billing", "billing-db")["spec"]["template"]["spec"]["domain"]["memory"]["guest"] = "200Gi"
    finding = only(audit(estate))
    assert finding.status is Status.FAIL
    assert finding.message.endswith(
        "VM billing/billing-db (4 CPU and 200Gi memory) fits on no schedulable node of prod-west."
    )
    assert vm_row(finding, "billing/billing-db")["fits_on_nodes"] == []
    assert finding.evidence["capacity"]["remaining_after_failover"]["memory"] == "340.2Gi"


def test_vmis_already_running_on_the_peer_use_its_room() -> None:
    estate = sample("healthy")
    running = copy.deepcopy(estate.clusters["prod-east"].get("VirtualMachineInstance", "billing-db", "billing"))
    running["metadata"].update(name="reporting-db", namespace="reporting")
    running["spec"]["domain"]["cpu"]["sockets"] = 28
    running["status"]["nodeName"] = "worker-2.prod-west.example.com"
    pending = copy.deepcopy(running)
    pending["metadata"]["name"] = "reporting-batch"
    pending["spec"]["domain"]["cpu"]["sockets"] = 2
    pending["status"] = {"phase": "Scheduling"}
    finished = copy.deepcopy(running)
    finished["metadata"]["name"] = "reporting-done"
    finished["status"]["phase"] = "Succeeded"
    for vmi in (running, pending, finished):
        estate.clusters[WEST].add(vmi)
    finding = only(audit(estate))
    nodes = {row["node"]: row for row in finding.evidence["nodes"]}
    worker2 = nodes["worker-2.prod-west.example.com"]
    assert worker2["vmis"] == ["reporting/reporting-db"]
    assert worker2["used_by_vmis"] == {"cpu": "28", "memory": "16Gi"}  # VMI requests.memory, vCPU topology
    assert worker2["free"]["cpu"] == "3"
    assert finding.evidence["vmis_without_node"] == ["reporting/reporting-batch"]
    assert finding.evidence["capacity"]["free"]["cpu"] == "63"  # 93 - 28 - 2
    assert "worker-2.prod-west.example.com" not in vm_row(finding, "billing/billing-db")["fits_on_nodes"]


def test_stopped_vms_are_not_counted() -> None:
    estate = sample("healthy")
    east = estate.clusters["prod-east"]
    vmi = east.get("VirtualMachineInstance", "crm-web", "crm")
    vmi["status"]["phase"] = "Succeeded"
    finding = only(audit(estate))
    assert finding.evidence["not_running"] == ["crm/crm-web"]
    assert "crm/crm-web" not in {row["vm"] for row in finding.evidence["vms"]}
    assert finding.evidence["demand"]["cpu"] == "10"


def test_pairs_follow_the_placement_both_ways() -> None:
    """An application placed on prod-west fails over to prod-east, whose own VMIs then count as used."""
    estate = sample("healthy")
    crm = estate.hub.get("PlacementDecision", "crm-placement-decision-1", "crm")
    crm["status"]["decisions"][0]["clusterName"] = WEST
    east, west = estate.clusters["prod-east"], estate.clusters[WEST]
    for kind in ("VirtualMachine", "VirtualMachineInstance", "PersistentVolumeClaim"):
        for obj in list(east.in_namespace(kind, "crm")):
            west.add(copy.deepcopy(obj))
    west.get("VirtualMachineInstance", "crm-web", "crm")["status"]["nodeName"] = "worker-1.prod-west.example.com"
    findings = audit(estate)
    assert [(f.evidence["primary"], f.evidence["peer"]) for f in findings] == [("prod-east", WEST), (WEST, "prod-east")]
    to_east = findings[1]
    assert to_east.resource.name == "prod-east" and to_east.cluster == "prod-east"
    assert [row["vm"] for row in to_east.evidence["vms"]] == ["crm/crm-web"]
    assert to_east.evidence["capacity"]["used_by_vmis"]["cpu"] == "12"  # all four VMIs still on prod-east
    assert findings[0].evidence["capacity"]["used_by_vmis"]["cpu"] == "2"  # crm-web now runs on prod-west


def test_no_protected_vm_is_a_skip() -> None:
    estate = sample("healthy")
    estate.hub._by_kind.pop("DRPlacementControl")
    finding = only(audit(estate))
    assert finding.status is Status.SKIP and finding.cluster == "hub"


def test_a_peer_without_node_objects_cannot_be_judged() -> None:
    estate = sample("healthy")
    estate.clusters[WEST]._by_kind.pop("Node")
    finding = only(audit(estate))
    assert finding.status is Status.SKIP
    assert "the inventory of prod-west holds no Node objects" in finding.message


def test_unreadable_nodes_on_the_peer_are_an_error_not_a_verdict() -> None:
    estate = sample("healthy")
    estate.clusters[WEST].unavailable["Node"] = "list nodes on prod-west was refused (HTTP 403)"
    findings = audit(estate)
    assert [f.status for f in findings] == [Status.ERROR, Status.SKIP]
    assert findings[0].message == (
        "Cannot evaluate: Node could not be read on prod-west: list nodes on prod-west was refused (HTTP 403)."
    )
    assert "the inventory of prod-west was not read" in findings[1].message


def test_a_malformed_quantity_is_an_error() -> None:
    estate = sample("healthy")
    node(estate, WEST, "worker-1")["status"]["allocatable"]["memory"] = "lots"
    finding = only(audit(estate))
    assert finding.status is Status.ERROR
    assert "not a quantity: 'lots'" in finding.message


def test_the_managed_cluster_object_is_named_even_when_the_hub_lacks_it() -> None:
    estate = sample("healthy")
    hub: Inventory = estate.hub
    hub._by_key.pop(("ManagedCluster", None, WEST))
    finding = only(audit(estate))
    assert (finding.resource.kind, finding.resource.name, finding.resource.namespace) == ("ManagedCluster", WEST, None)
