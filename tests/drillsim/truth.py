"""Ground truth: when each simulated controller's status write was accepted by the apiserver.

The drill measures step times from its watch events; the benchmark and the tests compare them with these
records, taken right after each write returned. The apiserver may send the watch event before that answer arrives,
so a drill can see a state slightly before its record; it can never see it before the write was sent (``sent``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

# The drill's steps (docs/drills.md) and the simulator write that makes each one true: (kind, step).
DRILL_STEPS: dict[str, tuple[str, str]] = {
    "snapshot_ready": ("VolumeSnapshot", "ready"),
    "content_ready": ("VolumeSnapshot", "ready"),
    "pvc_bound": ("PersistentVolumeClaim", "Bound"),
    "vmi_scheduled": ("VirtualMachineInstance", "Scheduled"),
    "vmi_running": ("VirtualMachineInstance", "Running"),
    "agent_connected": ("VirtualMachineInstance", "AgentConnected"),
    "probe_ready": ("VirtualMachineInstance", "Ready"),
}


@dataclass(frozen=True)
class Record:
    cluster: str
    kind: str
    namespace: str | None
    name: str
    step: str
    wall: datetime  # UTC
    monotonic: float  # when the apiserver's answer arrived
    sent: float  # monotonic: when the write was sent


class GroundTruth:
    """Every recorded write, in order; thread-safe."""

    def __init__(self) -> None:
        self._records: list[Record] = []
        self._lock = threading.Lock()

    def add(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)

    def records(
        self,
        cluster: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        step: str | None = None,
    ) -> list[Record]:
        """The records matching every given field, oldest first."""
        wanted = {"cluster": cluster, "kind": kind, "namespace": namespace, "name": name, "step": step}
        with self._lock:
            return [r for r in self._records if all(v is None or getattr(r, k) == v for k, v in wanted.items())]

    def first(self, cluster: str, kind: str, namespace: str | None, name: str, step: str) -> Record | None:
        found = self.records(cluster, kind, namespace, name, step)
        return found[0] if found else None
