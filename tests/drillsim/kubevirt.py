"""Simulated KubeVirt (virt-controller and virt-handler) for VirtualMachines that should run.

A VM with ``runStrategy: Always`` (or ``running: true``) gets a VMI of its name: the template's labels,
annotations and spec, a controller ownerReference to the VM (the lab's garbage collector removes it with the VM)
and KubeVirt's finalizers. The VMI then walks the phases virt-controller and virt-handler give it: Pending ->
Scheduling -> Scheduled (only once every claim its disks use is Bound; the node picked like the scheduler would)
-> Running, then the guest agent connects (condition AgentConnected) and, when the VMI has a readinessProbe, the
probe passes (Ready). A VMI named in ``Knobs.vmi_failures`` goes Failed instead of Running, with the reason and
message on its Ready condition; it is not restarted. The VM's status (printableStatus, ready, created,
conditions) follows its VMI. Deleting a VM stops its VMI first; a deleted VMI loses its finalizers once
"shut down". Shapes follow the KubeVirt v1 CRDs and a captured VMI (samples/healthy erp-ledger).
"""

from __future__ import annotations

import copy
import uuid

from lab.rest import Obj

from .runtime import ClusterSim, add_finalizers, now_wall, remove_finalizers, rfc3339
from .scheduling import claims_bound, pick_node, request_binding
from .volumes import claims_of_vmi_spec, volume_claims

API_VERSION = "kubevirt.io/v1"
VM_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"
VMI_FINALIZERS = [VM_FINALIZER, "foregroundDeleteVirtualMachine"]
NODE_LABEL = "kubevirt.io/nodeName"
OBSERVED = {"kubevirt.io/latest-observed-api-version": "v1", "kubevirt.io/storage-observed-api-version": "v1"}


def _phase(vmi: Obj) -> str:
    return (vmi.get("status") or {}).get("phase") or ""


def _condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


def _true(obj: Obj, kind: str) -> bool:
    return (_condition(obj, kind) or {}).get("status") == "True"


class KubeVirt:
    def __init__(self, sim: ClusterSim) -> None:
        self.sim = sim

    def reconcile(self) -> None:
        for vm in self.sim.objects("VirtualMachine"):
            self._reconcile_vm(vm)
        for vmi in self.sim.objects("VirtualMachineInstance"):
            self._reconcile_vmi(vmi)

    # ---- VirtualMachine --------------------------------------------------------------------------------------

    def _reconcile_vm(self, vm: Obj) -> None:
        meta = vm["metadata"]
        vmi = self.sim.cached("VirtualMachineInstance", meta["namespace"], meta["name"])
        if meta.get("deletionTimestamp"):
            if vmi is not None and not vmi["metadata"].get("deletionTimestamp"):
                self.sim.step(vm, "stop", self._stop)
            elif vmi is None and VM_FINALIZER in (meta.get("finalizers") or []):
                self.sim.step(vm, "release", lambda v: remove_finalizers(self.sim, v, [VM_FINALIZER]))
            return
        if VM_FINALIZER not in (meta.get("finalizers") or []):
            self.sim.step(vm, "protect", lambda v: add_finalizers(self.sim, v, [VM_FINALIZER]))
        if vmi is None and _wants_running(vm):
            self.sim.step(vm, "start", self._start)
        status = self._vm_status(vm, vmi)
        current = vm.get("status") or {}
        if any(current.get(k) != status[k] for k in ("printableStatus", "ready", "created")):
            label = f"{status['printableStatus']} ready={str(status['ready']).lower()}"
            self.sim.step(vm, label, self._write_vm_status, repeat=True)

    def _start(self, vm: Obj) -> bool:
        meta, template = vm["metadata"], vm["spec"]["template"]
        if meta.get("deletionTimestamp") or not _wants_running(vm):
            return False
        template_meta = template.get("metadata") or {}
        vmi = {
            "apiVersion": API_VERSION,
            "kind": "VirtualMachineInstance",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": dict(template_meta.get("labels") or {}),
                "annotations": {**(template_meta.get("annotations") or {}), **OBSERVED},
                "finalizers": list(VMI_FINALIZERS),
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": "VirtualMachine",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": copy.deepcopy(template["spec"]),
        }
        self.sim.api.create(vmi)
        return True

    def _stop(self, vm: Obj) -> bool:
        vmi = self.sim.cached("VirtualMachineInstance", vm["metadata"]["namespace"], vm["metadata"]["name"])
        return vmi is not None and self.sim.api.delete(vmi)

    def _vm_status(self, vm: Obj, vmi: Obj | None) -> Obj:
        if vm["metadata"].get("deletionTimestamp"):
            printable = "Terminating"
        elif vmi is None:
            printable = "Starting" if _wants_running(vm) else "Stopped"
        else:
            printable = {
                "Running": "Running",
                "Failed": "CrashLoopBackOff",
                "Succeeded": "Stopped",
            }.get(_phase(vmi), "Starting")
            if printable == "Starting" and not claims_bound(
                self.sim, vm["metadata"]["namespace"], claims_of_vmi_spec(vmi["spec"])
            ):
                printable = "WaitingForVolumeBinding"
        ready = vmi is not None and _phase(vmi) == "Running" and _true(vmi, "Ready")
        return {"printableStatus": printable, "ready": ready, "created": vmi is not None}

    def _write_vm_status(self, vm: Obj) -> bool:
        vmi = self.sim.cached("VirtualMachineInstance", vm["metadata"]["namespace"], vm["metadata"]["name"])
        status = self._vm_status(vm, vmi)
        current = vm.get("status") or {}
        if all(current.get(k) == status[k] for k in ("printableStatus", "ready", "created")):
            return True
        status["runStrategy"] = vm["spec"].get("runStrategy") or ("Always" if vm["spec"].get("running") else "Halted")
        status["conditions"] = copy.deepcopy(((vmi or {}).get("status") or {}).get("conditions") or [])
        written = self.sim.api.patch_status(vm, status)
        self.sim.record(written, f"{status['printableStatus']} ready={str(status['ready']).lower()}")
        return True

    # ---- VirtualMachineInstance ------------------------------------------------------------------------------

    def _reconcile_vmi(self, vmi: Obj) -> None:
        meta, step = vmi["metadata"], self.sim.step
        if meta.get("deletionTimestamp"):
            if set(VMI_FINALIZERS) & set(meta.get("finalizers") or []):
                step(vmi, "shutdown", lambda v: remove_finalizers(self.sim, v, VMI_FINALIZERS))
            return
        phase, claims = _phase(vmi), claims_of_vmi_spec(vmi["spec"])
        if phase == "":
            step(vmi, "Pending", lambda v: self._phase_to(v, "", "Pending"))
        elif phase == "Pending":
            step(
                vmi, "Scheduling", lambda v: self._phase_to(v, "Pending", "Scheduling", [_not_ready("GuestNotRunning")])
            )
        elif phase == "Scheduling":
            node = pick_node(self.sim, f"{meta['namespace']}/{meta['name']}")["metadata"]["name"]
            request_binding(self.sim, meta["namespace"], claims, node)
            if claims_bound(self.sim, meta["namespace"], claims):
                step(vmi, "Scheduled", lambda v: self._scheduled(v, node))
        elif phase == "Scheduled":
            if self.sim.knobs.vmi_failure(meta["namespace"], meta["name"]) is not None:
                step(vmi, "Failed", self._fail)
            else:
                step(vmi, "Running", self._running)
        elif phase == "Running":
            if not _true(vmi, "AgentConnected"):
                step(vmi, "AgentConnected", self._agent_connected)
            elif vmi["spec"].get("readinessProbe") and not _true(vmi, "Ready"):
                step(vmi, "Ready", self._probe_ready)

    def _write(self, vmi: Obj, step: str, status: Obj, labels: dict[str, str] | None = None) -> bool:
        """One update of the VMI (it has no /status subresource: KubeVirt writes the whole object)."""
        body: Obj = {"status": status}
        if labels:
            body["metadata"] = {"labels": labels}
        self.sim.record(self.sim.api.patch(vmi, body), step)
        return True

    def _phase_to(self, vmi: Obj, before: str, phase: str, conditions: list[Obj] | None = None) -> bool:
        if _phase(vmi) != before:
            return False
        status: Obj = {"phase": phase, "phaseTransitionTimestamps": _transitions(vmi, phase)}
        if conditions is not None:
            status["conditions"] = conditions
        return self._write(vmi, phase, status)

    def _scheduled(self, vmi: Obj, node: str) -> bool:
        if _phase(vmi) != "Scheduling":
            return False
        pod_uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"virt-launcher/{vmi['metadata']['uid']}"))
        status = {
            "phase": "Scheduled",
            "phaseTransitionTimestamps": _transitions(vmi, "Scheduled"),
            "nodeName": node,
            "activePods": {pod_uid: node},
        }
        return self._write(vmi, "Scheduled", status, labels={NODE_LABEL: node})

    def _running(self, vmi: Obj) -> bool:
        if _phase(vmi) != "Scheduled":
            return False
        spec = vmi["spec"]
        ready = [] if spec.get("readinessProbe") else [_condition_true("Ready")]
        probe_pending = [_not_ready("GuestNotRunning")] if spec.get("readinessProbe") else []
        status = {
            "phase": "Running",
            "phaseTransitionTimestamps": _transitions(vmi, "Running"),
            "conditions": ready + probe_pending,
            "interfaces": [
                {"name": i["name"], "mac": i.get("macAddress", ""), "infoSource": "domain"}
                for i in (spec.get("domain") or {}).get("devices", {}).get("interfaces") or []
            ],
            "volumeStatus": self._volume_status(vmi),
            "migrationMethod": "LiveMigration",
        }
        return self._write(vmi, "Running", status)

    def _volume_status(self, vmi: Obj) -> list[Obj]:
        disks = [d["name"] for d in (vmi["spec"].get("domain") or {}).get("devices", {}).get("disks") or []]
        claim_of = volume_claims(vmi["spec"])
        found = []
        for index, name in enumerate(disks):
            entry: Obj = {"name": name, "target": f"vd{chr(ord('a') + index)}"}
            pvc = self.sim.cached("PersistentVolumeClaim", vmi["metadata"]["namespace"], claim_of.get(name) or "")
            if pvc is not None:
                entry["persistentVolumeClaimInfo"] = {
                    "claimName": pvc["metadata"]["name"],
                    "accessModes": pvc["spec"]["accessModes"],
                    "capacity": (pvc.get("status") or {}).get("capacity") or {},
                    "requests": pvc["spec"]["resources"]["requests"],
                    "volumeMode": pvc["spec"].get("volumeMode") or "Filesystem",
                    "filesystemOverhead": "0",
                }
            found.append(entry)
        return found

    def _agent_connected(self, vmi: Obj) -> bool:
        if _phase(vmi) != "Running" or _true(vmi, "AgentConnected"):
            return False
        conditions = [*(vmi["status"].get("conditions") or []), _condition_true("AgentConnected")]
        return self._write(vmi, "AgentConnected", {"conditions": conditions})

    def _probe_ready(self, vmi: Obj) -> bool:
        if _phase(vmi) != "Running" or _true(vmi, "Ready"):
            return False
        others = [c for c in vmi["status"].get("conditions") or [] if c["type"] != "Ready"]
        return self._write(vmi, "Ready", {"conditions": [_condition_true("Ready"), *others]})

    def _fail(self, vmi: Obj) -> bool:
        failure = self.sim.knobs.vmi_failure(vmi["metadata"]["namespace"], vmi["metadata"]["name"])
        if _phase(vmi) != "Scheduled" or failure is None:
            return False
        condition = {**_not_ready(failure.reason), "message": failure.message}
        status = {
            "phase": "Failed",
            "phaseTransitionTimestamps": _transitions(vmi, "Failed"),
            "conditions": [condition],
        }
        return self._write(vmi, "Failed", status)


def _wants_running(vm: Obj) -> bool:
    spec = vm["spec"]
    return spec.get("runStrategy") == "Always" or (spec.get("runStrategy") is None and spec.get("running") is True)


def _transitions(vmi: Obj, phase: str) -> list[Obj]:
    earlier = (vmi.get("status") or {}).get("phaseTransitionTimestamps") or []
    return [*earlier, {"phase": phase, "phaseTransitionTimestamp": rfc3339(now_wall())}]


def _condition_true(kind: str) -> Obj:
    return {"type": kind, "status": "True", "lastTransitionTime": rfc3339(now_wall())}


def _not_ready(reason: str) -> Obj:
    messages = {"GuestNotRunning": "Guest VM is not reported as running"}
    return {
        "type": "Ready",
        "status": "False",
        "reason": reason,
        "message": messages.get(reason, reason),
        "lastTransitionTime": rfc3339(now_wall()),
    }
