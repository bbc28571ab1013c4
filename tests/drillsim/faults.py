"""The knobs a drill test turns on the simulators: step delays, and the faults a real site produces.

Delays are drawn deterministically (a hash of the seed and the step's identity), so a failing test replays with
the same timings. Faults the apiserver itself would show (500s, a lost site) are not simulated here: they come
from tests/fault_proxy.py in front of the real apiserver, see ``proxied_kubeconfig``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fault_proxy import FaultProxy
from lab.launcher import Lab


@dataclass(frozen=True)
class VmiFailure:
    """How a VMI fails instead of reaching Running; quoted on its Ready condition, as virt-controller does."""

    reason: str = "FailedCreate"
    message: str = "virt-launcher pod failed: 0/3 nodes are available: 3 Insufficient devices.kubevirt.io/kvm"


@dataclass
class Knobs:
    """Per-cluster settings, read at each step (a test may change them while the simulators run)."""

    delay_min: float = 0.2
    delay_max: float = 0.5
    seed: int = 0
    extra_delay: dict[str, float] = field(default_factory=dict)  # by step name (truth.py), seconds
    pvc_never_binds: set[str] = field(default_factory=set)  # "name" or "namespace/name"
    vmi_failures: dict[str, VmiFailure] = field(default_factory=dict)  # VMI (= VM) "name" or "namespace/name"
    canary_lag_seconds: float = 0.0  # how far behind the primary's writes a snapshot's content is

    def delay(self, cluster: str, kind: str, namespace: str | None, name: str, step: str) -> float:
        identity = f"{self.seed}|{cluster}|{kind}|{namespace}|{name}|{step}".encode()
        fraction = int.from_bytes(hashlib.sha256(identity).digest()[:8], "big") / 2**64
        return self.delay_min + (self.delay_max - self.delay_min) * fraction + self.extra_delay.get(step, 0.0)

    def never_binds(self, namespace: str, name: str) -> bool:
        return name in self.pvc_never_binds or f"{namespace}/{name}" in self.pvc_never_binds

    def vmi_failure(self, namespace: str, name: str) -> VmiFailure | None:
        return self.vmi_failures.get(f"{namespace}/{name}") or self.vmi_failures.get(name)


@contextlib.contextmanager
def proxied_kubeconfig(lab: Lab, cluster: str, path: Path) -> Iterator[tuple[FaultProxy, Path]]:
    """A copy of the lab's admin kubeconfig at ``path`` whose ``cluster`` goes through a running fault proxy.

    The drill under test uses this kubeconfig; the simulators keep talking to the apiserver directly, so a fault
    (``proxy.add(Rule(...))``) hits only the drill's view of that cluster, as a network partition would.
    """
    with FaultProxy.from_kubeconfig(lab.kubeconfig, cluster) as proxy:
        yield proxy, proxy.kubeconfig(lab.kubeconfig, cluster, path)
