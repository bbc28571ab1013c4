"""The fixtures drill tests use: a lab of their own with the healthy estate and the simulators running.

Import them into a test module (``from drillsim.fixtures import drill_lab, drill_faults``); pytest then finds
them there. ``drill_lab`` is module-scoped (a lab start takes about 20 s); ``drill_faults`` gives the same lab
to one test and puts every knob back afterwards, so faults never leak into the next test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from fault_proxy import FaultProxy
from lab.launcher import Lab, bin_dir, missing_binaries
from lab.loader import load

from .faults import Knobs, proxied_kubeconfig
from .sims import MANAGED, Simulators
from .truth import GroundTruth

HEALTHY = Path(__file__).resolve().parents[2] / "samples" / "healthy"
SNAPSHOT_CLASSES = "snapshotclasses.yaml"


@dataclass
class DrillLab:
    """A running lab (hub, prod-east, prod-west) with samples/healthy loaded and simulators on the managed ones."""

    lab: Lab
    sims: Simulators

    @property
    def kubeconfig(self) -> Path:
        return self.lab.kubeconfig

    @property
    def truth(self) -> GroundTruth:
        return self.sims.truth

    def knobs(self, cluster: str) -> Knobs:
        return self.sims.knobs(cluster)

    def proxied(self, cluster: str, path: Path) -> AbstractContextManager[tuple[FaultProxy, Path]]:
        """A kubeconfig at ``path`` whose ``cluster`` goes through a fault proxy: ``with drill.proxied(...) as
        (proxy, kubeconfig):``."""
        return proxied_kubeconfig(self.lab, cluster, path)


def ensure_snapshot_classes(lab: Lab, estate: Path = HEALTHY) -> None:
    """The managed clusters serve the estate's VolumeSnapshotClasses (clusters/<name>/snapshotclasses.yaml): the
    loader replays them when the snapshot reader knows the kind; otherwise they are created from that file."""
    for cluster in MANAGED:
        rest = lab.rest(cluster)
        if rest.get("/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses")["items"]:
            continue
        source = estate / "clusters" / cluster / SNAPSHOT_CLASSES
        if not source.exists():
            raise RuntimeError(f"{cluster}: no VolumeSnapshotClass in the lab and no {source} to create one from")
        for item in yaml.safe_load(source.read_text())["items"]:
            meta = item["metadata"]
            body = {**item, "metadata": {k: meta[k] for k in ("name", "labels", "annotations") if k in meta}}
            rest.request("POST", "/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses", body=body)


@pytest.fixture(scope="module")
def drill_lab() -> Iterator[DrillLab]:
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"no Kubernetes lab binaries ({', '.join(missing)} missing in {bin_dir()}); scripts/test builds them"
        )
    with Lab() as lab:
        load(lab, HEALTHY)
        ensure_snapshot_classes(lab)
        with Simulators(lab) as sims:
            yield DrillLab(lab, sims)


@pytest.fixture
def drill_faults(drill_lab: DrillLab) -> Iterator[DrillLab]:
    """``drill_lab`` for one test that turns knobs; they are reset when it ends."""
    try:
        yield drill_lab
    finally:
        drill_lab.sims.reset_knobs()
