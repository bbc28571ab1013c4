"""The simulators of a lab's managed clusters, started and stopped together, sharing one Ceph and one ground truth."""

from __future__ import annotations

from lab.launcher import Lab
from lab.lifecycle import StartStop

from .faults import Knobs
from .kubelet import Kubelet
from .kubevirt import KubeVirt
from .runtime import ClusterSim
from .snapshots import SnapshotController
from .storage import StretchedCeph
from .truth import GroundTruth
from .volumes import PvBinder

MANAGED = ("prod-east", "prod-west")


class Simulators(StartStop):
    """``with Simulators(lab) as sims:``; ``sims.knobs("prod-west")``, ``sims.truth``, ``sims.errors()``."""

    def __init__(self, lab: Lab, clusters: tuple[str, ...] = MANAGED) -> None:
        self.ceph = StretchedCeph()
        self.truth = GroundTruth()
        self.clusters: dict[str, ClusterSim] = {}
        for name in clusters:
            sim = ClusterSim(name, lab.api_client(name), self.ceph, self.truth)
            sim.controllers = [SnapshotController(sim), PvBinder(sim), KubeVirt(sim), Kubelet(sim)]
            self.clusters[name] = sim
        self.backfilled: dict[str, list[str]] = {}

    def start(self) -> None:
        for name, sim in self.clusters.items():
            sim.start()
            self.backfilled[name] = PvBinder(sim).backfill()

    def stop(self) -> None:
        for sim in self.clusters.values():
            sim.stop()

    def knobs(self, cluster: str) -> Knobs:
        return self.clusters[cluster].knobs

    def reset_knobs(self) -> None:
        for sim in self.clusters.values():
            sim.knobs = Knobs()

    def errors(self) -> list[str]:
        """What went wrong inside the simulators (a test asserts this is empty)."""
        return [e for sim in self.clusters.values() for e in sim.errors]
