"""Writes an Estate as a snapshot directory (contract section 1), so a live read can be audited again offline."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from auditor.inventory import Estate, Inventory
from auditor.timeutil import rfc3339


def _write_inventory(inventory: Inventory, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind in inventory.kinds():
        document = {"apiVersion": "v1", "kind": "List", "items": inventory.list(kind)}
        (folder / f"{kind}.json").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def write_snapshot(estate: Estate, out: Path) -> None:
    """One ``<Kind>.json`` List per kind and cluster, the Ceph outputs, and snapshot.yaml with what was unreadable.

    Only the kinds the audit reads are ever listed, and Secrets only as metadata (auditor.inventory.metadata_only):
    a capture holds no secret value.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; a capture needs an empty or new directory")
    _write_inventory(estate.hub, out / "hub")
    for name, inventory in estate.clusters.items():
        _write_inventory(inventory, out / "clusters" / name)
    if estate.ceph.outputs:
        for stem, data in estate.ceph.outputs.items():
            path = out / "ceph" / f"{stem}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    manifest: dict = {"capturedAt": rfc3339(estate.captured_at)} if estate.captured_at else {}
    unavailable = {src.name: dict(sorted(src.unavailable.items())) for src in estate.sources() if src.unavailable}
    if unavailable:
        manifest["unavailable"] = unavailable
    header = f"# drauditor capture of {estate.origin}\n"
    (out / "snapshot.yaml").write_text(header + yaml.safe_dump(manifest, sort_keys=True), encoding="utf-8")
