"""Can the peer cluster hold the protected VMs that run on the primary?

After a site loss every protected VM restarts on the peer at once. If the peer's schedulable workers lack the
CPU or memory, some VMs stay Pending: the failover "succeeds" in Ramen's eyes while the workload is down. The
check adds up, per (primary -> peer) pair, what the running protected VMs request and compares it with what the
peer's schedulable nodes have left after the VMIs already running there.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from auditor.capacity import (
    NodeRoom,
    Resources,
    Sizing,
    active_vmis,
    node_rooms,
    show_limits,
    total,
    vm_sizing,
)
from auditor.context import AuditContext
from auditor.inventory import Inventory, Obj, name_of, namespace_of
from auditor.kinds import KINDS
from auditor.model import CheckMeta, Finding, ResourceRef, Severity, Status
from auditor.quantity import cores, gib
from auditor.ramen import Application, applications, applications_by_namespace, peer_cluster, protecting_application

META = CheckMeta(
    id="peer_capacity",
    title="The peer cluster can hold the protected VMs",
    severity=Severity.HIGH,
    description=(
        "For each primary cluster and the peer its protected VMs fail over to (the other drCluster of the DRPC's "
        "DRPolicy): the CPU and memory requests of the running protected VMs (domain.resources.requests, else the "
        "instancetype's guest CPU and memory, else guest memory and cores x sockets x threads; limits are "
        "reported), against the allocatable CPU and memory of the peer's schedulable workers (not cordoned, Ready, "
        "without NoSchedule/NoExecute taints, not control-plane only) minus the requests of the VMIs already running "
        "there, keeping thresholds.peer_capacity_headroom_percent of the allocatable free. Each VM must also fit on "
        "at least one node."
    ),
    rationale=(
        "Metro-DR restarts every protected VM on the peer at once. A peer sized for its own load leaves VMs Pending "
        "after a failover that Ramen reports as complete; only the node and VM figures show it beforehand."
    ),
    remediation=(
        "Add worker nodes (or CPU and memory) to the peer, return cordoned or NotReady workers to service, or reduce "
        "what runs there; for a VM that fits on no single node, use larger nodes or a smaller instancetype. Keep "
        "the configured headroom free for the launcher pods' overhead and the peer's other workloads."
    ),
    kinds_read=(
        "DRPlacementControl",
        "DRPolicy",
        "Placement",
        "PlacementDecision",
        "ManagedCluster",
        "VirtualMachine",
        "VirtualMachineInstance",
        "PersistentVolumeClaim",
        "Node",
        "VirtualMachineInstancetype",
        "VirtualMachineClusterInstancetype",
    ),
)

# The grading rule. h = thresholds.peer_capacity_headroom_percent of the peer's schedulable allocatable must stay free
# after the failover: remaining = free - demand. FAIL when remaining < h (the VMs do not fit, or fit only by eating
# the headroom); WARN when remaining < 1.5 h (less than half a headroom above the limit: the next VM breaks it).
_WARN_MARGIN = Decimal("1.5")


@dataclass(frozen=True)
class _Demand:
    vm: Obj
    app: Application
    sizing: Sizing

    @property
    def label(self) -> str:
        return f"{namespace_of(self.vm)}/{name_of(self.vm)}"

    def to_evidence(self, fits_on: list[str]) -> dict:
        return {
            "vm": self.label,
            "drpc": self.app.key,
            **self.sizing.requests.to_evidence(),
            "limits": show_limits(self.sizing.limits),
            "sized_from": self.sizing.sources,
            "fits_on_nodes": fits_on,
            "problem": self.sizing.problem,
        }


@dataclass
class _Pair:
    primary: str
    peer: str
    demands: list[_Demand]
    not_running: list[str]


def run(ctx: AuditContext) -> list[Finding]:
    pairs = _pairs(ctx)
    if not pairs:
        return [
            META.finding(
                Status.SKIP,
                "No protected VM on a managed cluster whose DRPC names a peer cluster: no failover load to place.",
                cluster="hub",
            )
        ]
    return [_judge(ctx, pair) for pair in sorted(pairs.values(), key=lambda p: (p.primary, p.peer))]


def _pairs(ctx: AuditContext) -> dict[tuple[str, str], _Pair]:
    """Protected VMs on each application's primary, grouped by the peer they would fail over to."""
    hub = ctx.estate.hub
    candidates_by_namespace = applications_by_namespace(applications(hub))
    pairs: dict[tuple[str, str], _Pair] = {}
    for cluster, inventory in sorted(ctx.estate.clusters.items()):
        running = active_vmis(inventory)
        for vm in inventory.list("VirtualMachine"):
            app = protecting_application(inventory, vm, candidates_by_namespace.get(namespace_of(vm) or "", []))
            if app is None or app.placement_cluster != cluster:
                continue  # unprotected, or not where its application runs: vm_dr_coverage reports it
            peer, _ = peer_cluster(hub, app)
            if peer is None:
                continue  # no failover target to judge: the DRPolicy checks report it
            pair = pairs.setdefault((cluster, peer), _Pair(cluster, peer, [], []))
            if (namespace_of(vm), name_of(vm)) in running:
                pair.demands.append(_Demand(vm, app, vm_sizing(inventory, vm)))
            else:
                pair.not_running.append(f"{namespace_of(vm)}/{name_of(vm)}")
    return pairs


def _peer_resource(ctx: AuditContext, peer: str) -> ResourceRef:
    """The hub's ManagedCluster of the peer: the only object that stands for a whole managed cluster."""
    managed = ctx.estate.hub.get("ManagedCluster", peer)
    if managed is not None:
        return ResourceRef.of(managed)
    return ResourceRef(KINDS["ManagedCluster"].api_version, "ManagedCluster", peer)


def _judge(ctx: AuditContext, pair: _Pair) -> Finding:
    resource = _peer_resource(ctx, pair.peer)
    headroom_percent = ctx.config.thresholds.peer_capacity_headroom_percent
    evidence: dict = {
        "primary": pair.primary,
        "peer": pair.peer,
        "headroom_percent": headroom_percent,
        "rule": (
            f"after failover at least {headroom_percent:g}% of the peer's schedulable allocatable stays free (else "
            f"fail), and at least {float(_WARN_MARGIN) * headroom_percent:g}% (else warn); every VM fits on one node"
        ),
        "not_running": pair.not_running,
    }
    peer_inventory: Inventory | None = ctx.estate.clusters.get(pair.peer)
    if peer_inventory is None or not peer_inventory.list("Node"):
        why = "was not read" if peer_inventory is None else "holds no Node objects"
        evidence["vms"] = [d.to_evidence([]) for d in pair.demands]
        return META.finding(
            Status.SKIP,
            f"Cannot judge whether {pair.peer} can hold the protected VMs of {pair.primary}: the inventory of "
            f"{pair.peer} {why}.",
            cluster=pair.peer,
            resource=resource,
            evidence=evidence,
        )

    rooms, unplaced, unplaced_names = node_rooms(peer_inventory)
    eligible = [room for room in rooms if room.eligible]
    allocatable = total([room.allocatable for room in eligible])
    used = total([room.used for room in eligible]) + unplaced
    free = allocatable - used
    reserve = allocatable.scaled(Decimal(str(headroom_percent)) / 100)
    demand = total([d.sizing.requests for d in pair.demands])
    remaining = free - demand
    fits = {d.label: [room.name for room in eligible if d.sizing.requests.fits_in(room.free)] for d in pair.demands}
    evidence.update(
        vms=[d.to_evidence(fits[d.label]) for d in pair.demands],
        demand=demand.to_evidence(),
        demand_limits=_limits_total(pair.demands),
        nodes=[room.to_evidence() for room in rooms],
        vmis_without_node=unplaced_names,
        capacity={
            "schedulable_nodes": len(eligible),
            "allocatable": allocatable.to_evidence(),
            "used_by_vmis": used.to_evidence(),
            "free": free.to_evidence(),
            "headroom": reserve.to_evidence(),
            "usable": (free - reserve).to_evidence(),
            "remaining_after_failover": remaining.to_evidence(),
        },
    )

    problems = _capacity_problems(demand, free, reserve, remaining, headroom_percent, pair.peer)
    nowhere = [d for d in pair.demands if not fits[d.label]]
    problems += [
        f"VM {d.label} ({d.sizing.requests.describe()}) fits on no schedulable node of {pair.peer}" for d in nowhere
    ]
    warnings = _capacity_warnings(remaining, reserve, pair.peer) if not problems else []
    warnings += [
        f"VM {d.label} could not be fully sized ({d.sizing.problem}), so the demand is understated"
        for d in pair.demands
        if d.sizing.problem
    ]
    evidence["problems"], evidence["warnings"] = problems, warnings

    what = f"the {len(pair.demands)} running protected VM(s) of {pair.primary} ({demand.describe()})"
    where = f"The {len(eligible)} schedulable node(s) of {pair.peer} ({free.describe()} free{_excluded(rooms)})"
    return META.graded(
        problems,
        warnings,
        fail=f"Peer cluster {pair.peer} cannot take over {what}: {'; '.join(problems)}.",
        warn=f"{where} can hold {what}, but {'; '.join(warnings)}.",
        ok=f"{where} can hold {what} and keep {remaining.describe()} free, above the "
        f"{headroom_percent:g}% headroom ({reserve.describe()}).",
        cluster=pair.peer,
        resource=resource,
        evidence=evidence,
    )


def _capacity_problems(
    demand: Resources, free: Resources, reserve: Resources, remaining: Resources, headroom: float, peer: str
) -> list[str]:
    problems = []
    for label, need, have, keep, left, show in (
        ("CPU", demand.cpu, free.cpu, reserve.cpu, remaining.cpu, cores),
        ("memory", demand.memory, free.memory, reserve.memory, remaining.memory, gib),
    ):
        if need > have:
            problems.append(f"they need {show(need)} {label} but {peer}'s schedulable nodes have {show(have)} free")
        elif left < keep:
            problems.append(
                f"they need {show(need)} {label} of the {show(have)} free, leaving {show(left)}, less than the "
                f"{headroom:g}% headroom of {show(keep)}"
            )
    return problems


def _capacity_warnings(remaining: Resources, reserve: Resources, peer: str) -> list[str]:
    return [
        f"only {show(left)} {label} would stay free on {peer}, within half a headroom of the {show(keep)} minimum"
        for label, left, keep, show in (
            ("CPU", remaining.cpu, reserve.cpu, cores),
            ("memory", remaining.memory, reserve.memory, gib),
        )
        if left < keep * _WARN_MARGIN
    ]


def _limits_total(demands: list[_Demand]) -> dict[str, str | int]:
    """Sum of the limits the VMs set: reported, not judged, as the scheduler places pods by their requests."""
    found: dict[str, str | int] = {"vms_with_limits": sum(1 for d in demands if d.sizing.limits)}
    for key in ("cpu", "memory"):
        amounts = [d.sizing.limits[key] for d in demands if key in d.sizing.limits]
        if amounts:
            found.update(show_limits({key: sum(amounts, Decimal(0))}))
    return found


def _excluded(rooms: list[NodeRoom]) -> str:
    excluded = [room.name for room in rooms if not room.eligible]
    return f"; {len(excluded)} node(s) not schedulable" if excluded else ""
