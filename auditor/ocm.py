"""Open Cluster Management's vocabulary for a managed cluster's health, as the hub's registration controller writes it.

Constants from open-cluster-management-io/api cluster/v1/types.go; a DR cluster the hub cannot see cannot receive the
ManifestWorks (VRGs, NetworkFences) that Ramen sends for a failover.
"""

from __future__ import annotations

from auditor.inventory import Obj
from auditor.ramen import quote_condition, unmet_conditions

ACCEPTED = "HubAcceptedManagedCluster"
JOINED = "ManagedClusterJoined"
AVAILABLE = "ManagedClusterConditionAvailable"


def managed_cluster_problems(cluster: Obj, required: tuple[str, ...] = (ACCEPTED, JOINED, AVAILABLE)) -> list[str]:
    """Each required condition of a ManagedCluster that is not True, quoted as the hub wrote it."""
    return [quote_condition(kind, condition) for kind, condition in unmet_conditions(cluster, required).items()]
