"""samples/broken-replication: healthy plus exactly the faults its README lists, each caught where it says."""

from __future__ import annotations

import filecmp

from helpers import SAMPLES, context_for, run, sample

from auditor.docload import objects
from auditor.model import Status

ESTATE = "broken-replication"
# The files its README.md names, each with the objects changed and removed there; every other object and file must
# stay identical to healthy, so what another change adds to healthy (and forgets here) fails instead of drifting.
CHANGED = {
    "hub/apps/billing.yaml": ({("DRPlacementControl", "billing", "billing-drpc")}, set()),
    "hub/apps/erp.yaml": ({("DRPlacementControl", "openshift-dr-ops", "erp-drpc")}, set()),
    "clusters/prod-east/erp.yaml": ({("VolumeReplicationGroup", "openshift-dr-ops", "erp-drpc")}, set()),
    "clusters/prod-west/volumereplicationgroups.yaml": (set(), {("VolumeReplicationGroup", "crm", "crm-drpc")}),
}
ADDED = {"clusters/prod-east/erp-disks.yaml", "README.md"}


def files(estate: str) -> set[str]:
    root = SAMPLES / estate
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def objects_of(estate: str, relative: str) -> dict[tuple[str, str, str], dict]:
    return {
        (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]): obj
        for _, obj in objects(SAMPLES / estate / relative)
    }


def failing(check_id: str) -> dict[tuple[str, str, str], str]:
    """(cluster, kind, namespace/name) of every failing finding, with its message."""
    return {
        (f.cluster, f.resource.kind, f"{f.resource.namespace}/{f.resource.name}"): f.message
        for f in run(check_id, context_for(sample(ESTATE)))
        if f.status is Status.FAIL
    }


def test_it_is_healthy_plus_the_listed_faults() -> None:
    assert files(ESTATE) == (files("healthy") - {"README.md"}) | ADDED
    for relative in files(ESTATE) - ADDED:
        same = filecmp.cmp(SAMPLES / "healthy" / relative, SAMPLES / ESTATE / relative, shallow=False)
        assert same == (relative not in CHANGED), relative
    for relative, (changed, removed) in CHANGED.items():
        healthy, broken = objects_of("healthy", relative), objects_of(ESTATE, relative)
        assert set(healthy) - set(broken) == removed, relative
        assert {key for key in broken if broken[key] != healthy.get(key)} == changed, relative
    readme = (SAMPLES / ESTATE / "README.md").read_text()
    assert all(f"`{relative}`" in readme for relative in set(CHANGED) | ADDED - {"README.md"})


def test_drpc_state_fails_the_failover_waiting_for_fencing_and_the_unprotected_erp() -> None:
    found = failing("drpc_state")
    assert set(found) == {
        ("hub", "DRPlacementControl", "billing/billing-drpc"),
        ("hub", "DRPlacementControl", "openshift-dr-ops/erp-drpc"),
    }
    billing = found[("hub", "DRPlacementControl", "billing/billing-drpc")]
    assert "phase FailingOver is mid-action" in billing and "progression WaitForFencing" in billing
    assert "current home cluster prod-east is not fenced" in billing


def test_vrg_state_fails_each_resource_at_fault() -> None:
    found = failing("vrg_state")
    assert set(found) == {
        ("prod-west", "VolumeReplicationGroup", "crm/crm-drpc"),
        ("prod-east", "VolumeReplicationGroup", "openshift-dr-ops/erp-drpc"),
        ("prod-east", "PersistentVolumeClaim", "erp/erp-ledger-archive"),
        ("prod-east", "PersistentVolumeClaim", "erp/erp-ledger-journal"),
    }
    assert "reason UploadError" in found[("prod-east", "VolumeReplicationGroup", "openshift-dr-ops/erp-drpc")]
    assert "it is Pending, not Bound" in found[("prod-east", "PersistentVolumeClaim", "erp/erp-ledger-journal")]


def test_metro_estate_has_no_async_lag_to_judge() -> None:
    findings = run("async_replication_lag", context_for(sample(ESTATE)))
    assert {f.status for f in findings} == {Status.SKIP}
