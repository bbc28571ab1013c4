"""What every drill test against the lab checks and builds: the clusters' state before and after, the residue a
drill left, and the configuration and flags that point a drill at the lab.

The strongest proof that a drill touched nothing is the apiserver's own: every object that existed before keeps
its resourceVersion (any write, even a finalizer or a status, bumps it), and nothing new stays behind. The state is
read from discovery, so a kind nobody thought of is covered too. Kinds that change by themselves (leases, events,
the leader-election endpoints and configmaps of kube-system) are left out: they would change with no drill at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException
from lab.launcher import Lab
from lab.rest import Rest

from auditor.config import AuditConfig
from auditor.drill.journal import JournalState, journal_path, read_journal
from auditor.drill.names import drill_namespace, drill_selector
from auditor.evidence import DrillRecord, EvidenceStore
from auditor.run import LiveFlags

CLUSTERS = ("hub", "prod-east", "prod-west")
MANAGED = ("prod-east", "prod-west")
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
HEALTHY_CEPH = SAMPLES / "healthy" / "ceph"
# Kinds whose objects change with no drill at all: heartbeats, the event stream.
SELF_CHANGING_KINDS = {"Lease", "Event"}
# In kube-system, the controller-manager's and scheduler's leader election writes these kinds.
LEADER_ELECTION_KINDS = {"Endpoints", "ConfigMap"}

# (cluster, apiVersion, kind, namespace, name)
ObjectKey = tuple[str, str, str, str | None, str]
Versions = dict[ObjectKey, str]  # -> resourceVersion


@dataclass(frozen=True)
class _Listable:
    api_version: str
    kind: str
    path: str  # the collection, cluster-wide


def _listable(rest: Rest) -> list[_Listable]:
    """Every resource the server lists, from its discovery (one entry per kind: the preferred group version)."""
    versions = [("v1", "/api/v1")]
    for group in rest.get("/apis")["groups"]:
        preferred = group["preferredVersion"]["groupVersion"]
        versions.append((preferred, f"/apis/{preferred}"))
    found = []
    for group_version, base in versions:
        for resource in rest.get(base)["resources"]:
            if "/" in resource["name"] or "list" not in resource.get("verbs", []):
                continue
            if resource["kind"] in SELF_CHANGING_KINDS:
                continue
            found.append(_Listable(group_version, resource["kind"], f"{base}/{resource['name']}"))
    return found


class ClusterState:
    """Reads what the lab's three clusters hold; discovery is read once (the served kinds do not change)."""

    def __init__(self, lab: Lab) -> None:
        self.rests = {cluster: lab.rest(cluster) for cluster in CLUSTERS}
        self.resources = {cluster: _listable(rest) for cluster, rest in self.rests.items()}

    def versions(self) -> Versions:
        """The resourceVersion of every object on every cluster, but those that change by themselves."""
        found: Versions = {}
        for cluster, rest in self.rests.items():
            for resource in self.resources[cluster]:
                for item in rest.get(resource.path)["items"]:
                    meta = item["metadata"]
                    namespace = meta.get("namespace")
                    if "resourceVersion" not in meta:  # computed on read (ComponentStatus): nothing stored
                        continue
                    if namespace == "kube-system" and resource.kind in LEADER_ELECTION_KINDS:
                        continue
                    key = (cluster, resource.api_version, resource.kind, namespace, meta["name"])
                    found[key] = meta["resourceVersion"]
        return found

    def settled(self, timeout: float = 60, quiet: float = 2.0) -> Versions:
        """The state once nothing has changed for ``quiet`` seconds (the simulators have finished with the loaded
        estate: finalizers added, statuses written), to compare a drill's aftermath with."""
        deadline = time.monotonic() + timeout
        before = self.versions()
        while True:
            time.sleep(quiet)
            now = self.versions()
            if now == before:
                return now
            if time.monotonic() > deadline:
                raise AssertionError(f"the lab never settled: {differences(before, now)[:20]}")
            before = now

    def drill_residue(self, drill_id: str) -> list[str]:
        """Everything on the managed clusters labelled with the drill's id (its namespaces too), by name."""
        left = []
        for cluster in MANAGED:
            rest = self.rests[cluster]
            for resource in self.resources[cluster]:
                for item in rest.get(resource.path, labelSelector=drill_selector(drill_id))["items"]:
                    meta = item["metadata"]
                    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
                    left.append(f"{cluster}: {resource.kind} {where}{meta['name']}")
        return left

    def namespace_exists(self, cluster: str, drill_id: str) -> bool:
        try:
            self.rests[cluster].get(f"/api/v1/namespaces/{drill_namespace(drill_id)}")
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def assert_clean(self, drill_id: str, before: Versions) -> None:
        """Nothing of the drill left on either cluster, and nothing else touched."""
        assert self.drill_residue(drill_id) == []
        self.assert_untouched(before)

    def assert_untouched(self, before: Versions, timeout: float = 60) -> None:
        """Waits until the clusters hold exactly what ``before`` saw, each object at the same resourceVersion (the
        simulated controllers may still be deleting volumes and snapshot contents the drill's deletes released),
        and fails naming every difference when they do not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found = differences(before, self.versions())
            if not found:
                return
            if time.monotonic() > deadline:
                raise AssertionError("the clusters changed:\n" + "\n".join(found))
            time.sleep(0.5)


def differences(before: Versions, after: Versions) -> list[str]:
    """Each object changed, gone or new between two states, one line each."""
    lines = []
    for key in sorted(before.keys() | after.keys(), key=str):
        cluster, api_version, kind, namespace, name = key
        what = f"{cluster}: {kind} ({api_version}) {namespace + '/' if namespace else ''}{name}"
        if key not in after:
            lines.append(f"gone: {what}")
        elif key not in before:
            lines.append(f"new: {what}")
        elif before[key] != after[key]:
            lines.append(f"changed: {what} resourceVersion {before[key]} -> {after[key]}")
    return lines


# ---- pointing a drill at the lab ---------------------------------------------------------------------------------


def drill_settings(state_dir: Path, **drill: Any) -> dict[str, Any]:
    """The config's ``drill`` section for a lab drill: journals under ``state_dir``, short timeout, the given keys."""
    return {"state_dir": str(state_dir), "timeout_seconds": 120, **drill}


def drill_config(state_dir: Path, **drill: Any) -> AuditConfig:
    return AuditConfig.model_validate({"drill": drill_settings(state_dir, **drill)})


def write_config(path: Path, state_dir: Path, **drill: Any) -> Path:
    """The same configuration as a file, for the CLI."""
    path.write_text(yaml.safe_dump({"drill": drill_settings(state_dir, **drill)}))
    return path


def live_flags(kubeconfig: Path, ceph: Path | None = HEALTHY_CEPH) -> LiveFlags:
    return LiveFlags(
        kubeconfig=kubeconfig,
        hub_context="hub",
        cluster_specs=tuple(f"{c}={c}" for c in MANAGED),
        ceph_dir=ceph,
    )


def live_args(kubeconfig: Path, ceph: Path | None = HEALTHY_CEPH) -> list[str]:
    """``live_flags`` as command-line options."""
    args = ["--kubeconfig", str(kubeconfig), "--hub-context", "hub"]
    for cluster in MANAGED:
        args += ["--cluster", f"{cluster}={cluster}"]
    return args + (["--ceph", str(ceph)] if ceph else [])


def drauditor() -> str:
    """The installed console script (the real entry point, as an operator runs it)."""
    return str(Path(sys.executable).with_name("drauditor"))


def filed(evidence: Path, drill_id: str) -> DrillRecord:
    """The drill's record in the evidence store (exactly one)."""
    with EvidenceStore(evidence) as store:
        found = [record for record in store.drills() if record.id == drill_id]
    assert len(found) == 1, f"{len(found)} records of drill {drill_id} in {evidence}"
    return found[0]


def closed_journal(state_dir: Path, drill_id: str) -> JournalState:
    """The drill's journal, which must have been closed."""
    state = read_journal(journal_path(state_dir, drill_id))
    assert state.closed, f"journal of {drill_id} left open: {state.closing}"
    return state


class Events:
    """A progress callback that keeps every event (thread-safe: list.append is atomic) and hands each to ``then``
    (a test that acts at a given moment of the drill: cut a cluster off, send a signal)."""

    def __init__(self, then: Callable[[dict[str, Any]], None] = lambda event: None) -> None:
        self.seen: list[dict[str, Any]] = []
        self.then = then

    def __call__(self, event: dict[str, Any]) -> None:
        self.seen.append(dict(event))
        self.then(event)

    def of(self, kind: str) -> Iterator[dict[str, Any]]:
        return (e for e in self.seen if e.get("event") == kind)
