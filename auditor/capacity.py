"""How much CPU and memory a VM asks the scheduler for, and how much a cluster's nodes can still give.

The figures are the scheduler's view, coarse on purpose: requests against node allocatable. Pods other than
virt-launchers are not read, so the configured headroom is what covers them and the launchers' own overhead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from auditor.inventory import Inventory, Obj, conditions, labels_of, name_of, namespace_of
from auditor.kubevirt import instancetype_ref, resolve_instancetype
from auditor.quantity import cores, gib, parse_quantity

WORKER_ROLE = "node-role.kubernetes.io/worker"
CONTROL_PLANE_ROLES = ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")
# Taint effects that keep a new virt-launcher pod off a node (PreferNoSchedule only discourages it).
_BLOCKING_TAINTS = ("NoSchedule", "NoExecute")
# VMI phases after which the launcher pod is gone and its node resources are free again.
_FINISHED_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Resources:
    cpu: Decimal = Decimal(0)  # cores
    memory: Decimal = Decimal(0)  # bytes

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.memory - other.memory)

    def scaled(self, factor: Decimal) -> Resources:
        return Resources(self.cpu * factor, self.memory * factor)

    def fits_in(self, room: Resources) -> bool:
        return self.cpu <= room.cpu and self.memory <= room.memory

    def describe(self) -> str:
        return f"{cores(self.cpu)} CPU and {gib(self.memory)} memory"

    def to_evidence(self) -> dict[str, str]:
        return {"cpu": cores(self.cpu), "memory": gib(self.memory)}


def total(items: list[Resources]) -> Resources:
    return sum(items, Resources())


# How each resource is printed: cores for CPU, GiB for memory.
_SHOWN = {"cpu": cores, "memory": gib}


def show_limits(limits: dict[str, Decimal]) -> dict[str, str]:
    return {key: _SHOWN[key](value) for key, value in limits.items()}


@dataclass(frozen=True)
class Sizing:
    """What one VM or VMI asks for: requests (what scheduling needs), the limits it sets, and where each came from."""

    requests: Resources
    limits: dict[str, Decimal]  # only the limits the spec sets ("cpu", "memory"), in cores and bytes
    sources: dict[str, str]  # "cpu" / "memory" -> the field the figure came from
    problem: str | None = None  # why a figure is missing; the requests then count it as 0


def vm_sizing(inventory: Inventory, vm: Obj) -> Sizing:
    """A VirtualMachine's size from its template: requests, else its instancetype, else guest memory and topology."""
    domain = ((((vm.get("spec") or {}).get("template") or {}).get("spec") or {}).get("domain")) or {}
    ref = instancetype_ref(vm)
    if ref is None:
        return _domain_sizing(domain, {}, "")
    instancetype = resolve_instancetype(inventory, ref)
    if instancetype is None:
        sizing = _domain_sizing(domain, {}, "")
        return Sizing(sizing.requests, sizing.limits, sizing.sources, f"{ref.display()} not found on {inventory.name}")
    return _domain_sizing(domain, instancetype.get("spec") or {}, ref.display())


def vmi_sizing(vmi: Obj) -> Sizing:
    """A VirtualMachineInstance's size; its spec already has any instancetype expanded into the domain."""
    return _domain_sizing(((vmi.get("spec") or {}).get("domain")) or {}, {}, "")


def _domain_sizing(domain: Obj, instancetype_spec: Obj, instancetype: str) -> Sizing:
    """The requests a VM's launcher pod will carry: an explicit request wins, then the instancetype's guest figures,
    then the template's guest memory and vCPU topology. A vCPU counts as a full core: KubeVirt's default CPU
    allocation ratio would request less, so the estimate errs towards "does not fit"."""
    resources = domain.get("resources") or {}
    requests = resources.get("requests") or {}
    sources: dict[str, str] = {}
    problem = None

    if "cpu" in requests:
        cpu, sources["cpu"] = parse_quantity(requests["cpu"]), "domain.resources.requests.cpu"
    elif (instancetype_spec.get("cpu") or {}).get("guest") is not None:
        cpu, sources["cpu"] = parse_quantity(instancetype_spec["cpu"]["guest"]), f"{instancetype} spec.cpu.guest"
    else:
        topology = domain.get("cpu") or {}
        cpu = Decimal(
            int(topology.get("cores") or 1) * int(topology.get("sockets") or 1) * int(topology.get("threads") or 1)
        )
        sources["cpu"] = "domain.cpu cores x sockets x threads"

    if "memory" in requests:
        memory, sources["memory"] = parse_quantity(requests["memory"]), "domain.resources.requests.memory"
    elif (instancetype_spec.get("memory") or {}).get("guest") is not None:
        memory = parse_quantity(instancetype_spec["memory"]["guest"])
        sources["memory"] = f"{instancetype} spec.memory.guest"
    elif (domain.get("memory") or {}).get("guest") is not None:
        memory, sources["memory"] = parse_quantity(domain["memory"]["guest"]), "domain.memory.guest"
    else:
        memory, sources["memory"] = Decimal(0), "none"
        problem = "no memory request, instancetype or guest memory"

    limits = {key: parse_quantity(value) for key, value in (resources.get("limits") or {}).items() if key in _SHOWN}
    return Sizing(Resources(cpu, memory), limits, sources, problem)


def active_vmis(inventory: Inventory) -> dict[tuple[str | None, str], Obj]:
    """VMIs whose launcher pod holds node resources (not Succeeded or Failed), by (namespace, name)."""
    return {
        (namespace_of(vmi), name_of(vmi)): vmi
        for vmi in inventory.list("VirtualMachineInstance")
        if (vmi.get("status") or {}).get("phase") not in _FINISHED_PHASES
    }


def unschedulable_reasons(node: Obj) -> list[str]:
    """Why a new VM cannot be scheduled on ``node``; empty when it can."""
    reasons = []
    if (node.get("spec") or {}).get("unschedulable"):
        reasons.append("cordoned (spec.unschedulable)")
    ready = conditions(node).get("Ready")
    if ready is None:
        reasons.append("Ready not reported")
    elif ready.get("status") != "True":
        reasons.append(f"Ready is {ready.get('status')} ({ready.get('reason') or 'no reason given'})")
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in _BLOCKING_TAINTS:
            value = f"={taint['value']}" if taint.get("value") else ""
            reasons.append(f"tainted {taint.get('key')}{value}:{taint.get('effect')}")
    labels = labels_of(node)
    if WORKER_ROLE not in labels and any(role in labels for role in CONTROL_PLANE_ROLES):
        reasons.append("control-plane node without the worker role")
    return reasons


def allocatable(node: Obj) -> Resources:
    found = (node.get("status") or {}).get("allocatable") or {}
    return Resources(parse_quantity(found.get("cpu", 0)), parse_quantity(found.get("memory", 0)))


@dataclass
class NodeRoom:
    """One node of a cluster: whether new VMs may land there, and what its running VMIs leave free."""

    name: str
    excluded_because: list[str]
    allocatable: Resources
    used: Resources = field(default_factory=Resources)
    vmis: list[str] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return not self.excluded_because

    @property
    def free(self) -> Resources:
        return self.allocatable - self.used

    def to_evidence(self) -> dict:
        return {
            "node": self.name,
            "eligible": self.eligible,
            "excluded_because": self.excluded_because,
            "allocatable": self.allocatable.to_evidence(),
            "used_by_vmis": self.used.to_evidence(),
            "free": self.free.to_evidence(),
            "vmis": self.vmis,
        }


def node_rooms(inventory: Inventory) -> tuple[list[NodeRoom], Resources, list[str]]:
    """Every node with what its VMIs use; plus what VMIs not yet on any node ask for (they will need room too)."""
    rooms = {
        name_of(node): NodeRoom(name_of(node), unschedulable_reasons(node), allocatable(node))
        for node in inventory.list("Node")
    }
    unplaced, unplaced_names = Resources(), []
    for (namespace, name), vmi in sorted(active_vmis(inventory).items(), key=lambda item: str(item[0])):
        requests = vmi_sizing(vmi).requests
        room = rooms.get((vmi.get("status") or {}).get("nodeName") or "")
        if room is None:
            unplaced, unplaced_names = unplaced + requests, [*unplaced_names, f"{namespace}/{name}"]
        else:
            room.used = room.used + requests
            room.vmis.append(f"{namespace}/{name}")
    return sorted(rooms.values(), key=lambda r: r.name), unplaced, unplaced_names
