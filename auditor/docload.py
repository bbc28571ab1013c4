"""Strict parsing of YAML and JSON files into Kubernetes objects, with file and line in every error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from auditor.errors import InputError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc


def parse_json(path: Path, text: str | None = None) -> Any:
    try:
        return json.loads(read_text(path) if text is None else text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg} (column {exc.colno})") from exc


def documents(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, data) for each document of a YAML stream, or the single JSON document."""
    text = read_text(path)
    if path.suffix == ".json":
        yield 1, parse_json(path, text)
        return
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            yield line, loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{where}: malformed YAML: {problem}") from exc
    finally:
        loader.dispose()


def objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Kubernetes objects in ``path``: single objects, ``List``/``<Kind>List`` items, multi-document streams."""
    for line, doc in documents(path):
        if doc is None:
            continue  # an empty document, e.g. a trailing '---'
        where = f"{path}:{line}"
        if not isinstance(doc, dict):
            raise InputError(f"{where}: expected a Kubernetes object (a mapping), found {type(doc).__name__}")
        kind = doc.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
            items = doc["items"]
            if items is None:
                continue
            if not isinstance(items, list):
                raise InputError(f"{where}: '{kind}.items' must be a list, found {type(items).__name__}")
            for index, item in enumerate(items):
                yield line, _validated(item, f"{where}: items[{index}]")
        else:
            yield line, _validated(doc, where)


def _validated(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a Kubernetes object (a mapping), found {type(obj).__name__}")
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise InputError(f"{where}: object has no '{key}'")
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise InputError(f"{where}: {obj['kind']} has no metadata.name")
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise InputError(f"{where}: {obj['kind']} {metadata['name']}: metadata.namespace must be a string")
    labels = metadata.get("labels")
    if labels is not None and not (isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())):
        raise InputError(f"{where}: {obj['kind']} {metadata['name']}: metadata.labels must map strings to strings")
    return obj
