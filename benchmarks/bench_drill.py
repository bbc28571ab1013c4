"""Prints how accurately a drill measures its steps, and what a 50-VM drill costs, against the test lab.

Targets (issue 6): every step a drill records is within 100 ms of the simulated controller's status write that
made it true (per VM, the largest error of its steps); the wall time, API requests, peak RSS and cleanup time of
one application with 50 VMs drilled concurrently are printed.
Usage: .venv/bin/python benchmarks/bench_drill.py [--vms 50] [--timeout 600]
       (needs the lab binaries: tests/lab/build.sh)

The lab holds the healthy sample estate plus one generated application (estate_generator.write_drill_estate:
``--vms`` protected VMs with a disk each, in namespace ``scale``). The simulated controllers (tests/drillsim) run
in this process and record the monotonic time right after each status write they make (the ground truth); the
drills run here too with ``run_drill``, so their step stamps (taken when the watch event arrived) and the ground
truth are on the same clock. Error = measured step time - the instant the write's answer arrived (positive: the
drill saw it late; negative: the watch event beat the answer to this process, which a busy CPU stretches). It is
also printed against the write's window [request sent, answer arrived], inside which a stamp is exact. The
healthy sample's applications are drilled first (erp with a readiness probe, so every step is measured), then the
large one.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estate_generator import write_drill_estate

from auditor.config import AuditConfig
from auditor.drill.measure import STEPS
from auditor.drill.plan import DrillPlan, VmPlan
from auditor.drill.runner import DrillRequest, DrillResult, run_drill
from auditor.run import LiveFlags

# The lab and the simulators are test packages, not part of drauditor: put tests/ on the path to import them, as
# pytest does for the tests through tests/conftest.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from drillsim.fixtures import ensure_snapshot_classes
from drillsim.sims import Simulators
from drillsim.truth import DRILL_STEPS, GroundTruth, Record
from lab.launcher import Lab
from lab.loader import load

HEALTHY_APPS = ("billing/billing-drpc", "crm/crm-drpc", "openshift-dr-ops/erp-drpc")
PROBED_APP = "openshift-dr-ops/erp-drpc"  # drilled with a readiness probe: its VMs also reach probe_ready
TARGET_MS = 100.0
DISK_STEPS = {"snapshot_ready", "content_ready", "pvc_bound"}  # a VM reaches them when its last disk does


@dataclass(frozen=True)
class StepError:
    """A recorded step against the simulator write that made it true, in ms: ``answered_ms`` = stamp - the
    instant the write's answer arrived (the 100 ms target's error); ``outside_ms`` = how far the stamp lies outside the
    write's window [request sent, answer arrived] (0 inside it, negative before the request: impossible)."""

    answered_ms: float
    outside_ms: float

    @classmethod
    def of(cls, stamp: float, record: Record) -> StepError:
        if stamp > record.monotonic:
            outside = stamp - record.monotonic
        elif stamp < record.sent:
            outside = stamp - record.sent
        else:
            outside = 0.0
        return cls((stamp - record.monotonic) * 1000, outside * 1000)


@dataclass
class Drilled:
    """One drill's result and what the benchmark saw around it."""

    app: str
    result: DrillResult
    wall_seconds: float
    cleanup_seconds: float | None
    rss_before_mib: float
    rss_peak_mib: float
    created: dict[tuple[str, str, str | None, str], float]  # (cluster, kind, namespace, name) -> monotonic
    errors: dict[str, dict[str, StepError]] = field(default_factory=dict)  # VM -> step -> error

    @property
    def details(self) -> dict[str, Any]:
        assert self.result.record is not None
        return self.result.record.details


def rss_mib() -> float:
    """This process's resident set now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def rss_sampler(interval: float = 0.02) -> Iterator[Callable[[], float]]:
    """Samples VmRSS while the block runs; yields a function returning the highest sample so far."""
    peak = [rss_mib()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], rss_mib())

    thread = threading.Thread(target=sample, name="bench-rss", daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        stop.set()
        thread.join()


def drill(app: str, config: AuditConfig, flags: LiveFlags, evidence: Path) -> Drilled:
    """Runs one drill of ``app``, timing it as a whole and its cleanup (from the runner's progress events)."""
    marks: dict[str, float] = {}
    created: dict[tuple[str, str, str | None, str], float] = {}

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") == "created":
            created[(event["cluster"], event["kind"], event["namespace"], event["name"])] = time.monotonic()
        elif event.get("event") == "phase" and event.get("phase") == "cleanup":
            marks["cleanup_started"] = time.monotonic()
        elif event.get("event") == "cleanup":
            marks["cleanup_done"] = time.monotonic()
        elif event.get("event") == "warning":
            print(f"  warning: {event.get('message')}")

    before = rss_mib()
    started = time.monotonic()
    with rss_sampler() as peak:
        result = run_drill(DrillRequest(app=app), config, flags, evidence=evidence, progress=progress)
        highest = peak()
    wall = time.monotonic() - started
    if result.record is None:
        raise RuntimeError(f"{app}: the drill was refused: {'; '.join(result.refusals)}")
    cleanup = marks["cleanup_done"] - marks["cleanup_started"] if len(marks) == 2 else None
    return Drilled(app, result, wall, cleanup, before, highest, created)


def truth_of(truth: GroundTruth, plan: DrillPlan, vm: VmPlan, step: str) -> Record | None:
    """The simulator write that made ``step`` true for ``vm`` (for a disk step: the last of its disks'), or None
    when the ground truth has no such write."""
    kind, written = DRILL_STEPS[step]
    if step not in DISK_STEPS:
        return truth.first(plan.secondary or "", kind, plan.namespace, vm.name, written)
    records = []
    for disk in vm.disks:
        if step == "snapshot_ready":  # the primary's snapshot, beside the PVC in the application's namespace
            records.append(truth.first(plan.primary, kind, disk.namespace, disk.source_snapshot, written))
        else:  # the restored snapshot and PVC on the secondary, named after the PVC, in the drill namespace
            records.append(truth.first(plan.secondary or "", kind, plan.namespace, disk.pvc, written))
    found = [r for r in records if r is not None]
    return max(found, key=lambda r: r.monotonic) if len(found) == len(records) else None


def measure_errors(drilled: Drilled, truth: GroundTruth) -> None:
    """Fills ``drilled.errors``: per VM and step, how the recorded step time compares with the write."""
    plan = drilled.result.plan
    assert plan is not None
    t0 = drilled.details["started"]["monotonic"]
    vms = {f"{vm['namespace']}/{vm['name']}": vm for vm in drilled.details["vms"]}
    for vm in plan.vms:
        errors = drilled.errors.setdefault(vm.key, {})
        for entry in vms[vm.key]["steps"]:
            record = truth_of(truth, plan, vm, entry["step"])
            if record is None:
                raise RuntimeError(f"{vm.key}: step {entry['step']} recorded but no simulator write made it true")
            errors[entry["step"]] = StepError.of(t0 + entry["seconds"], record)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def show_errors(label: str, values: list[float]) -> None:
    if not values:
        return
    largest = max(values, key=abs)
    p95 = percentile([abs(v) for v in values], 0.95)
    print(
        f"  {label:<18} n={len(values):<4} max |error| {abs(largest):7.1f} ms ({largest:+.1f})"
        f"   median {statistics.median(values):+7.1f} ms   p95 |error| {p95:7.1f} ms"
    )


def verdict(label: str, per_vm: dict[str, float]) -> None:
    missed = sorted((error, vm) for vm, error in per_vm.items() if error > TARGET_MS)
    print(
        f"  {label}: {'PASS' if not missed else 'MISS'} ({len(per_vm) - len(missed)}/{len(per_vm)} VMs within "
        f"{TARGET_MS:.0f} ms; worst VM {max(per_vm.values()):.1f} ms)"
    )
    for error, vm in missed[-5:]:
        print(f"    {vm}: {error:.1f} ms")


def show_accuracy(drills: list[Drilled]) -> None:
    print("accuracy: recorded step time - the simulator's write (answer received), per VM and step")
    answered: dict[str, list[float]] = {}
    outside: dict[str, list[float]] = {}
    for drilled in drills:
        for steps in drilled.errors.values():
            for step, error in steps.items():
                answered.setdefault(step, []).append(error.answered_ms)
                outside.setdefault(step, []).append(error.outside_ms)
    for step in STEPS:
        show_errors(step, answered.get(step, []))
    show_errors("all steps", [e for errors in answered.values() for e in errors])
    print("  the same, counting a stamp between the write's request and its answer as exact (the event can")
    print("  arrive before the answer; negative would mean a stamp before the write was sent):")
    show_errors("all steps", [e for errors in outside.values() for e in errors])
    vms = {vm: steps for drilled in drills for vm, steps in drilled.errors.items()}
    verdict(
        "|error| vs answer <= 100 ms per VM", {vm: max(abs(e.answered_ms) for e in s.values()) for vm, s in vms.items()}
    )
    verdict(
        "|error| vs write window <= 100 ms per VM",
        {vm: max(abs(e.outside_ms) for e in s.values()) for vm, s in vms.items()},
    )


def show_drill(drilled: Drilled) -> None:
    record = drilled.result.record
    assert record is not None
    details = drilled.details
    vms = details["vms"]
    ready = sum(1 for vm in vms if vm["outcome"] == "ready")
    last_ready = max((vm["rto_seconds"] for vm in vms if vm["rto_seconds"] is not None), default=None)
    cleanup = f"{drilled.cleanup_seconds:8.2f} s" if drilled.cleanup_seconds is not None else "not reported"
    print(
        f"{drilled.app}: {record.outcome}, {ready}/{len(vms)} VMs ready, exit {drilled.result.exit_code}, "
        f"residue {details['cleanup']['residue'] or 'none'}"
    )
    print(f"  {'wall time, whole drill':<40} {drilled.wall_seconds:8.2f} s")
    if last_ready is not None:
        print(f"  {'T0 -> last VM ready':<40} {last_ready:8.2f} s")
    print(f"  {'cleanup (delete + wait until gone)':<40} {cleanup}")
    print(f"  {'API requests (details.api_requests)':<40} {details['api_requests']:8d}")
    print(f"  {'objects created':<40} {len(details['objects']):8d}")
    print(
        f"  {'RSS (drill + simulators)':<40} {drilled.rss_before_mib:8.0f} MiB before, "
        f"{drilled.rss_peak_mib:.0f} MiB peak (+{drilled.rss_peak_mib - drilled.rss_before_mib:.0f})"
    )
    show_own_share(drilled)
    if details.get("error"):
        print(f"  error: {details['error']}")


def show_own_share(drilled: Drilled) -> None:
    """The drill's own share of the RTO: how long issuing the snapshots took, and from a VM's snapshot_ready to
    its copy's creation (the GET of the snapshot's content and the creates of the restore objects, each journaled
    first); the rest of the RTO is the (simulated) controllers'."""
    plan = drilled.result.plan
    assert plan is not None
    t0 = drilled.details["started"]["monotonic"]
    restore = []
    for vm in drilled.details["vms"]:
        snapshot = next((e["seconds"] for e in vm["steps"] if e["step"] == "snapshot_ready"), None)
        copy = drilled.created.get((plan.secondary or "", "VirtualMachine", plan.namespace, vm["name"]))
        if snapshot is not None and copy is not None:
            restore.append(copy - t0 - snapshot)
    sources = [
        at - t0
        for (cluster, kind, _, _), at in drilled.created.items()
        if kind == "VolumeSnapshot" and cluster == plan.primary
    ]
    if sources:
        print(f"  {'T0 -> last primary snapshot requested':<40} {max(sources):8.2f} s   ({len(sources)} snapshots)")
    if restore:
        print(
            f"  {'snapshot_ready -> VM copy created':<40} {statistics.median(restore):8.2f} s median, "
            f"{max(restore):.2f} s max"
        )


def show_steps(drilled: Drilled) -> None:
    """When the VMs reached each step, seconds after T0, across the application's VMs."""
    reached: dict[str, list[float]] = {}
    for vm in drilled.details["vms"]:
        for entry in vm["steps"]:
            reached.setdefault(entry["step"], []).append(entry["seconds"])
    print(f"{drilled.app}: steps reached, seconds after T0")
    for step in STEPS:
        if step in reached:
            times = reached[step]
            print(
                f"  {step:<18} first {min(times):6.2f} s   median {statistics.median(times):6.2f} s   "
                f"last {max(times):6.2f} s   (n={len(times)})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=50, help="VMs of the generated application")
    parser.add_argument("--timeout", type=float, default=600, help="each drill's timeout, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drauditor-bench-drill-") as tmp:
        root = Path(tmp) / "estate"
        generated = write_drill_estate(root, vms=args.vms)
        started = time.perf_counter()
        with Lab() as lab:
            print(f"{'lab start':<42} {time.perf_counter() - started:8.2f} s")
            started = time.perf_counter()
            load(lab, root)
            ensure_snapshot_classes(lab, root)
            print(
                f"{'load estate (healthy + ' + str(args.vms) + '-VM app)':<42} {time.perf_counter() - started:8.2f} s"
            )
            config = AuditConfig.model_validate(
                {
                    "drill": {
                        "state_dir": str(Path(tmp) / "journals"),
                        "timeout_seconds": args.timeout,
                        "apps": {PROBED_APP: {"readiness_probe": {"guestAgentPing": {}, "periodSeconds": 5}}},
                    }
                }
            )
            flags = LiveFlags(
                kubeconfig=lab.kubeconfig,
                hub_context="hub",
                cluster_specs=("prod-east=prod-east", "prod-west=prod-west"),
                ceph_dir=root / "ceph",
            )
            evidence = Path(tmp) / "evidence.db"
            drills: list[Drilled] = []
            with Simulators(lab) as sims:
                for app in (*HEALTHY_APPS, generated["app"]):
                    drilled = drill(app, config, flags, evidence)
                    measure_errors(drilled, sims.truth)
                    drills.append(drilled)
                    show_drill(drilled)
                show_steps(drills[-1])
                show_accuracy(drills)
                if sims.errors():
                    print(f"simulator errors ({len(sims.errors())}): {sims.errors()[:3]}")
            print(f"{'peak RSS of the benchmark process':<42} {peak_rss_mib():8.0f} MiB")
            print(f"{'lab RSS':<42} " + ", ".join(f"{k} {v:.0f} MiB" for k, v in lab.rss_mib().items()))


if __name__ == "__main__":
    main()
