"""The snapshot source: reads a snapshot directory (contract section 1) into an Estate."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from auditor.docload import documents, objects, parse_json
from auditor.errors import InputError
from auditor.inventory import CephData, Estate, Inventory
from auditor.kinds import kind_key
from auditor.timeutil import parse_time

_OBJECT_SUFFIXES = {".yaml", ".yml", ".json"}


def load_snapshot(root: Path) -> Estate:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: snapshot directory not found")
    digests: dict[str, str] = {}
    hub_dir, clusters_dir = root / "hub", root / "clusters"
    if not hub_dir.is_dir():
        raise InputError(f"{root}: no hub/ folder (see docs/contract.md section 1)")
    if not clusters_dir.is_dir():
        raise InputError(f"{root}: no clusters/ folder (see docs/contract.md section 1)")
    cluster_dirs = sorted(p for p in clusters_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not cluster_dirs:
        raise InputError(f"{clusters_dir}: no managed cluster folders")
    captured_at, unavailable = _manifest(root, digests)
    estate = Estate(
        hub=_load_inventory("hub", hub_dir, root, digests),
        clusters={d.name: _load_inventory(d.name, d, root, digests) for d in cluster_dirs},
        ceph=load_ceph(root / "ceph", root, digests),
        captured_at=captured_at,
        source="snapshot",
        origin=str(root),
        input_digests=digests,
    )
    sources = {source.name: source for source in estate.sources()}
    for name, kinds in unavailable.items():
        if name not in sources:
            raise InputError(
                f"{root / 'snapshot.yaml'}: unavailable names {name!r}, which is neither hub, ceph nor a cluster folder"
            )
        sources[name].unavailable.update(kinds)
    return estate


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _record_digest(path: Path, root: Path, digests: dict[str, str]) -> None:
    digests[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()


def _load_inventory(name: str, folder: Path, root: Path, digests: dict[str, str]) -> Inventory:
    inventory = Inventory(name)
    # Where each object was read, by its inventory identity (the inventory keeps a redacted copy, not ``obj``).
    seen_in: dict[tuple[str, str | None, str], str] = {}
    for path in _files(folder):
        if path.suffix not in _OBJECT_SUFFIXES:
            raise InputError(f"{path}: unexpected file; objects must be in .yaml, .yml or .json files")
        _record_digest(path, root, digests)
        for line, obj in objects(path):
            meta = obj["metadata"]
            identity = (kind_key(obj["apiVersion"], obj["kind"]), meta.get("namespace"), meta["name"])
            if inventory.add(obj) is not None:
                where = f"{meta.get('namespace')}/{meta['name']}" if meta.get("namespace") else meta["name"]
                raise InputError(
                    f"{path}:{line}: {obj['kind']} {where} appears twice in {name} (first in {seen_in[identity]})"
                )
            seen_in[identity] = f"{path}:{line}"
    return inventory


def load_ceph(folder: Path, root: Path, digests: dict[str, str]) -> CephData:
    if not folder.is_dir():
        return CephData(origin=str(folder))
    outputs = {}
    for path in _files(folder):
        if path.suffix != ".json":
            raise InputError(f"{path}: unexpected file; Ceph outputs must be .json files (ceph ... -f json)")
        _record_digest(path, root, digests)
        outputs[path.relative_to(folder).with_suffix("").as_posix()] = parse_json(path)
    return CephData(outputs=outputs, origin=str(folder))


def _manifest(root: Path, digests: dict[str, str]) -> tuple[datetime | None, dict[str, dict[str, str]]]:
    """snapshot.yaml: capturedAt, and what the capture could not read (cluster -> kind -> reason)."""
    path = root / "snapshot.yaml"
    if not path.exists():
        return None, {}
    _record_digest(path, root, digests)
    docs = [doc for _, doc in documents(path)]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise InputError(f"{path}: expected one mapping with capturedAt")
    value = docs[0].get("capturedAt")
    moment = None
    if value is not None:
        moment = parse_time(value)
        if moment is None:
            raise InputError(f"{path}: capturedAt {value!r} is not an RFC 3339 timestamp")
    unavailable = docs[0].get("unavailable") or {}
    if not isinstance(unavailable, dict) or not all(
        isinstance(kinds, dict) and all(isinstance(k, str) and isinstance(r, str) for k, r in kinds.items())
        for kinds in unavailable.values()
    ):
        raise InputError(f"{path}: unavailable must map cluster names to {{kind: reason}}")
    return moment, unavailable
