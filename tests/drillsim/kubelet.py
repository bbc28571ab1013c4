"""Simulated scheduler and kubelet for plain pods (the drill's canary writer and reader).

A pending pod is bound to a node (the Binding subresource, as kube-scheduler does) once its claims are Bound,
then goes Running. The canary writer's image starts receiving timestamps at that instant (canary.py); the canary
reader, a ``restartPolicy: Never`` pod, then terminates with the newest timestamp its restored disk holds as the
termination message (exit 0), or exit 1 without a message when the file is not there, as ``cat`` would. Any
other pod keeps running. A deleted pod that a kubelet still holds (graceful deletion) is removed once its
containers "stopped" (grace period 0, as the kubelet confirms), and the writer stops writing.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from lab.rest import Obj

from .canary import CanaryWriter, date_output, reader_program, script_of, writer_program
from .runtime import ClusterSim, now_wall, rfc3339
from .scheduling import claims_bound, node_ip, pick_node, request_binding
from .volumes import claims_of_pod


class Kubelet:
    def __init__(self, sim: ClusterSim) -> None:
        self.sim = sim

    def reconcile(self) -> None:
        for pod in self.sim.objects("Pod"):
            meta, phase = pod["metadata"], (pod.get("status") or {}).get("phase")
            if meta.get("deletionTimestamp"):
                self.sim.step(pod, "removed", self._remove)
            elif not pod["spec"].get("nodeName"):
                node = pick_node(self.sim, f"{meta['namespace']}/{meta['name']}")["metadata"]["name"]
                request_binding(self.sim, meta["namespace"], claims_of_pod(pod), node)
                if claims_bound(self.sim, meta["namespace"], claims_of_pod(pod)):
                    self.sim.step(pod, "scheduled", lambda p, n=node: self._bind(p, n))
            elif phase == "Pending":
                self.sim.step(pod, "Running", self._start)
            elif phase == "Running" and pod["spec"].get("restartPolicy") == "Never" and self._reader_file(pod):
                self.sim.step(pod, "terminated", self._finish_reader)

    def _bind(self, pod: Obj, node: str) -> bool:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        self.sim.api.post(self.sim.api.path("v1", "Pod", meta["name"], meta["namespace"]) + "/binding", binding)
        self.sim.record(pod, "scheduled")
        return True

    def _start(self, pod: Obj) -> bool:
        if (pod.get("status") or {}).get("phase") != "Pending" or not pod["spec"].get("nodeName"):
            return False
        started_ns = time.time_ns()
        container = pod["spec"]["containers"][0]
        program = writer_program(script_of(container))
        if program is not None:
            handle = self._volume_handle(pod, program[0])
            if handle:
                self.sim.ceph.start_writer(handle, CanaryWriter(started_ns, program[1]))
        started = rfc3339(datetime.fromtimestamp(started_ns / 1e9, UTC))
        node = self.sim.static("Node", pod["spec"]["nodeName"])
        status = {
            "phase": "Running",
            "hostIP": node_ip(node) if node else "10.0.0.1",
            "podIP": _pod_ip(pod),
            "podIPs": [{"ip": _pod_ip(pod)}],
            "startTime": started,
            "conditions": _conditions(pod, ready=True),
            "containerStatuses": [
                {
                    **_container_base(pod, container),
                    "ready": True,
                    "started": True,
                    "state": {"running": {"startedAt": started}},
                }
            ],
        }
        self.sim.record(self.sim.api.patch_status(pod, status), "Running")
        return True

    def _finish_reader(self, pod: Obj) -> bool:
        file = self._reader_file(pod)
        if (pod.get("status") or {}).get("phase") != "Running" or not file:
            return False
        handle = self._volume_handle(pod, file)
        image = self.sim.ceph.image(handle) if handle else None
        value = image.canary_at(time.time_ns()) if image else None
        container = pod["spec"]["containers"][0]
        started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
        terminated = {
            "exitCode": 0 if value is not None else 1,
            "reason": "Completed" if value is not None else "Error",
            "startedAt": started,
            "finishedAt": rfc3339(now_wall()),
            "containerID": _container_id(pod),
        }
        if value is not None:
            terminated["message"] = date_output(value)
        phase = "Succeeded" if value is not None else "Failed"
        status = {
            "phase": phase,
            "conditions": _conditions(pod, ready=False),
            "containerStatuses": [
                {
                    **_container_base(pod, container),
                    "ready": False,
                    "started": False,
                    "state": {"terminated": terminated},
                }
            ],
        }
        self.sim.record(self.sim.api.patch_status(pod, status), phase)
        return True

    def _remove(self, pod: Obj) -> bool:
        container = pod["spec"]["containers"][0]
        program = writer_program(script_of(container))
        if program is not None:
            handle = self._volume_handle(pod, program[0])
            if handle:
                self.sim.ceph.stop_writer(handle, time.time_ns())
        return self.sim.api.delete(pod, grace_seconds=0)

    def _reader_file(self, pod: Obj) -> str | None:
        return reader_program(script_of(pod["spec"]["containers"][0]))

    def _volume_handle(self, pod: Obj, file: str) -> str | None:
        """The image behind the file's directory: the container's mount -> the pod's claim -> its volume."""
        mounts = pod["spec"]["containers"][0].get("volumeMounts") or []
        mount = max(
            (m for m in mounts if file.startswith(m["mountPath"].rstrip("/") + "/")),
            key=lambda m: len(m["mountPath"]),
            default=None,
        )
        volume = next((v for v in pod["spec"].get("volumes") or [] if mount and v["name"] == mount["name"]), None)
        if volume is None or "persistentVolumeClaim" not in volume:
            return None
        pvc = self.sim.cached(
            "PersistentVolumeClaim", pod["metadata"]["namespace"], volume["persistentVolumeClaim"]["claimName"]
        )
        pv = self.sim.cached("PersistentVolume", None, (pvc or {}).get("spec", {}).get("volumeName") or "")
        return ((pv or {}).get("spec", {}).get("csi") or {}).get("volumeHandle")


def _digest(pod: Obj) -> bytes:
    return hashlib.sha256(pod["metadata"]["uid"].encode()).digest()


def _pod_ip(pod: Obj) -> str:
    digest = _digest(pod)
    return f"10.128.{digest[0]}.{max(2, digest[1])}"


def _container_id(pod: Obj) -> str:
    return f"cri-o://{_digest(pod).hex()}"


def _container_base(pod: Obj, container: Obj) -> Obj:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": container["image"],
        "containerID": _container_id(pod),
        "restartCount": 0,
        "lastState": {},
    }


def _conditions(pod: Obj, ready: bool) -> list[Obj]:
    """The kubelet's pod conditions; PodScheduled is kept as the binding wrote it."""
    now = rfc3339(now_wall())
    done = {} if ready else {"reason": "PodCompleted"}
    scheduled = [c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"]
    return [
        {"type": "Initialized", "status": "True", "lastTransitionTime": now, **done},
        {"type": "Ready", "status": str(ready), "lastTransitionTime": now, **done},
        {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": now, **done},
        *scheduled,
    ]
