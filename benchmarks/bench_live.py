"""Prints what a live audit read costs against real kube-apiservers (the test lab) holding a large estate.

Targets (issue 3): the live read takes at most 1.3x the time of merely listing the same kinds with the plain
official client (each kind once per cluster, no pagination); its requests grow with kinds and pages, not VMs.
Usage: .venv/bin/python benchmarks/bench_live.py [--apps 1000] [--vms-per-app 5] [--disks-per-vm 2]
       [--small-apps 50] [--repeat 3]    (needs the lab binaries: tests/lab/build.sh)

A small estate (--small-apps) is loaded and read first; the large one is then loaded into the same lab. The
generator names apps app-0000, app-0001, ..., so the small estate is exactly a subset of the large one and the
lab ends up holding the large estate alone. Generating and loading happen in a forked child, so the peak RSS
printed is that of the live read, the audit and the baselines, not of the loader's copies of the estate.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from estate_generator import write_estate
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi, StorageV1Api
from kubernetes.client.exceptions import ApiException

from auditor.config import AuditConfig
from auditor.engine import audit, build_context
from auditor.kinds import HUB_KINDS, KINDS, MANAGED_KINDS
from auditor.live import PAGE_SIZE, LiveOptions, RequestStats, load_live

# The lab (tests/lab) is a test package, not part of drauditor: put tests/ on the path to import it, as pytest
# does for the tests through tests/conftest.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from lab.launcher import Lab
from lab.loader import load

SAMPLE_CEPH = Path(__file__).resolve().parent.parent / "samples" / "healthy" / "ceph"
MANAGED = {"prod-east": "prod-east", "prod-west": "prod-west"}
T = TypeVar("T")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_child(action: Callable[[], T]) -> T:
    """``action()`` in a forked child: its memory never counts in this process's peak RSS."""
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()

    def run() -> None:
        try:
            results.put((True, action()))
        except BaseException:
            results.put((False, traceback.format_exc()))

    child = context.Process(target=run)
    child.start()
    ok, value = results.get()
    child.join()
    if not ok:
        raise RuntimeError(f"the child process failed:\n{value}")
    return value


def timed(action: Callable[[], T], repeat: int = 1) -> tuple[T, list[float]]:
    """The last result and every run's wall time."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return result, times


def show(label: str, times: list[float], extra: str = "") -> None:
    spread = f" (min {min(times):.2f}, max {max(times):.2f}, n={len(times)})" if len(times) > 1 else ""
    print(f"{label:<52} {statistics.median(times):8.2f} s{spread}{extra}")


def live_read(lab: Lab) -> tuple[Any, RequestStats]:
    stats = RequestStats()
    estate = load_live("hub", MANAGED, LiveOptions(kubeconfig=lab.kubeconfig), stats=stats)
    if estate.unavailable():
        raise RuntimeError(f"the live read missed: {estate.unavailable()}")
    return estate, stats


def list_kind(api: ApiClient, kind: str, typed: bool) -> int:
    """The naive read: one unpaginated list of ``kind`` across all namespaces; returns the item count.

    typed=False asks for the raw body and parses it with json.loads (what the live reader does); typed=True
    lets the client build its model objects, which is what most code written with it does.
    """
    info = KINDS[kind]
    raw = {} if typed else {"_preload_content": False}
    if info.group == "":
        core = CoreV1Api(api)
        call = {"PersistentVolumeClaim": core.list_persistent_volume_claim_for_all_namespaces}.get(kind)
        result = (call or core.list_namespace)(**raw)
    elif info.group == "storage.k8s.io":
        result = StorageV1Api(api).list_storage_class(**raw)
    else:
        result = CustomObjectsApi(api).list_cluster_custom_object(info.group, info.version, info.plural, **raw)
    if not typed:
        return len(json.loads(result.data)["items"])
    return len(result["items"] if isinstance(result, dict) else result.items)


def naive_read(lab: Lab, typed: bool) -> int:
    """Every kind of the live read, once per cluster, clusters in parallel as the live read does them."""

    def one_cluster(cluster: str) -> int:
        api = lab.api_client(cluster)
        count = 0
        for kind in HUB_KINDS if cluster == "hub" else MANAGED_KINDS:
            try:
                count += list_kind(api, kind, typed)
            except ApiException as exc:
                if exc.status != 404:  # PlacementRule: the lab serves no such CRD; the live read skips it too
                    raise
        api.close()
        return count

    with ThreadPoolExecutor(len(lab.clusters)) as pool:
        return sum(pool.map(one_cluster, lab.clusters))


def objects_in(estate: Any) -> int:
    return sum(len(inv.list(kind)) for inv in estate.inventories() for kind in inv.kinds())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--vms-per-app", type=int, default=5)
    parser.add_argument("--disks-per-vm", type=int, default=2)
    parser.add_argument("--small-apps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each read; the median is printed")
    args = parser.parse_args()
    shape = {"vms_per_app": args.vms_per_app, "disks_per_vm": args.disks_per_vm}
    with tempfile.TemporaryDirectory(prefix="drauditor-bench-live-") as tmp:
        small, large = Path(tmp) / "small", Path(tmp) / "large"
        counts = in_child(
            lambda: [
                write_estate(small, apps=args.small_apps, ceph_from=SAMPLE_CEPH, **shape),
                write_estate(large, apps=args.apps, ceph_from=SAMPLE_CEPH, **shape),
            ]
        )
        started = time.perf_counter()
        with Lab() as lab:
            show("lab start", [time.perf_counter() - started])
            requests: dict[str, dict[str, int]] = {}
            for name, root, count in (("small", small, counts[0]), ("large", large, counts[1])):
                estate_name = f"{count['vms']} VMs, {count['drpcs']} DRPCs, {count['pvcs']} PVCs"
                loaded, load_times = timed(lambda root=root: in_child(lambda: load(lab, root)))
                created = sum(c.created + c.replaced for c in loaded.values())
                show(f"load {name} estate ({estate_name})", load_times, f", {created} objects written")
                repeat = args.repeat if name == "large" else 1
                (estate, stats), read_times = timed(lambda: live_read(lab), repeat)
                requests[name] = dict(sorted(stats.by_cluster.items()))
                show(
                    f"live read, {name} (load_live)",
                    read_times,
                    f", {objects_in(estate)} objects, {stats.requests} requests, {stats.retries} retries",
                )
            print(f"{'peak RSS after the live reads':<52} {peak_rss_mib():8.0f} MiB")
            report, audit_times = timed(lambda: audit(build_context(estate, AuditConfig())))
            show("audit of the large live estate", audit_times, f", {len(report.findings)} findings")
            print(f"{'peak RSS after the audit':<52} {peak_rss_mib():8.0f} MiB")

            listed, raw_times = timed(lambda: naive_read(lab, typed=False), args.repeat)
            show("naive list, raw JSON (baseline)", raw_times, f", {listed} objects")
            listed, typed_times = timed(lambda: naive_read(lab, typed=True), args.repeat)
            show("naive list, typed models", typed_times, f", {listed} objects")
            live = statistics.median(read_times)
            print(f"{'ratio live / naive raw (target <= 1.3)':<52} {live / statistics.median(raw_times):8.2f}")
            print(f"{'ratio live / naive typed':<52} {live / statistics.median(typed_times):8.2f}")
            for name, by_cluster in requests.items():
                print(f"{f'requests per cluster, {name} (page size {PAGE_SIZE})':<52} {by_cluster}")
            print(f"{'peak RSS of the benchmark process':<52} {peak_rss_mib():8.0f} MiB")
            print(f"{'lab RSS':<52} " + ", ".join(f"{k} {v:.0f} MiB" for k, v in lab.rss_mib().items()))


if __name__ == "__main__":
    main()
