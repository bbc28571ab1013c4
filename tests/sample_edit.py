"""Copies of the bundled sample estates that a test changes object by object (the samples stay untouched)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from helpers import SAMPLES

Obj = dict[str, Any]


def copy_sample(name: str, dest: Path) -> Path:
    return Path(shutil.copytree(SAMPLES / name, dest))


def edit(path: Path, kind: str, name: str, change: Callable[[Obj], None]) -> None:
    """Applies ``change`` to the one ``kind`` named ``name`` in the YAML file at ``path`` (a stream or a List)."""
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    objects = [item for d in docs if d for item in (d["items"] if d.get("kind") == "List" else [d])]
    found = [o for o in objects if o.get("kind") == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name} in {path}, found {len(found)}"
    change(found[0])
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


def add(path: Path, *objects: Obj) -> None:
    """Writes ``objects`` as a new YAML stream at ``path``."""
    assert not path.exists(), path
    path.write_text(yaml.safe_dump_all(list(objects), sort_keys=False), encoding="utf-8")


def volume(vm: Obj, name: str) -> Obj:
    """The volume called ``name`` of a VirtualMachine (its template) or a VirtualMachineInstance."""
    spec = vm["spec"]["template"]["spec"] if vm["kind"] == "VirtualMachine" else vm["spec"]
    return next(v for v in spec["volumes"] if v["name"] == name)


def condition(obj: Obj, condition_type: str) -> Obj:
    return next(c for c in obj["status"]["conditions"] if c["type"] == condition_type)
