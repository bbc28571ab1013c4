"""Strict parsing of YAML and JSON files into Kubernetes objects, with file and line in every error.

Snapshot files come from anywhere (a colleague's capture, an attachment to a ticket), so they are read as the
Kubernetes API reads manifests, and bounded: JSON data only (YAML timestamps stay strings, as they do for
``kubectl``; ``!!binary``, ``!!set`` and other non-JSON types are refused), string keys that appear once per
mapping, no YAML merge keys, at most ``MAX_DEPTH`` levels of nesting, and YAML aliases that cannot expand a file
much beyond its own size (a "billion laughs" file is a few hundred bytes that expand to gigabytes when anything
walks them). Whatever breaks a bound is an InputError naming the file, never a RecursionError, a hang or a memory
blow-up in the code that reads the data later.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import yaml

from auditor.errors import InputError
from auditor.kinds import KINDS, kind_key

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Kubernetes objects nest about 20 levels deep and Ceph outputs fewer; anything deeper is broken or hostile, and
# the code that walks loaded data (json.dumps for captures and reports) must stay far from Python's recursion limit.
MAX_DEPTH = 100
# What YAML aliases may add to a file's size (see _check_data) beyond its own length.
ALIAS_ALLOWANCE = 100_000

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_JSON_SCALARS = (str, int, float, bool, type(None))


def _brief(text: str, limit: int = 60) -> str:
    """``text`` short enough for an error message, whatever size the input makes it."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _StrictLoader(_BaseLoader):
    """YAML as Kubernetes reads it: unquoted timestamps stay strings; mapping keys are unique strings.

    Merge keys (``<<``) are refused: kubectl never writes them, and PyYAML copies every merged entry into the
    merging node before building it, so nested merges grow exponentially before any later bound could act.
    """

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                self._refuse(key_node, "found a merge key (<<); write the merged fields out")
            key = self.construct_object(key_node)
            if not isinstance(key, str):
                self._refuse(key_node, f"found a {type(key).__name__} key {_brief(repr(key))}; keys are strings")
            if key in first_line:
                self._refuse(key_node, f"found duplicate key {_brief(repr(key))} (first on line {first_line[key]})")
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    @staticmethod
    def _refuse(node: yaml.Node, problem: str) -> None:
        raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when a key repeats (JSON parsers disagree on which value wins)."""
    result = dict(pairs)
    if len(result) < len(pairs):
        duplicate = next(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        raise ValueError(f"duplicate key {_brief(repr(duplicate))}")
    return result


def parse_json(path: Path, text: str | None = None) -> Any:
    text = read_text(path) if text is None else text
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg} (column {exc.colno})") from exc
    except ValueError as exc:  # a duplicate key, or an integer too long to convert
        raise InputError(f"{path}: malformed JSON: {_brief(str(exc), 200)}") from exc
    except RecursionError as exc:
        raise InputError(f"{path}: malformed JSON: nested more than {MAX_DEPTH} levels deep") from exc
    _check_data(data, str(path), len(text) + 1)
    return data


def yaml_error_message(exc: yaml.YAMLError, path: object) -> str:
    """``<path>[:<line>]: malformed YAML: <problem>``: the parser's words and where, never a quote of the text
    (the text may be a kubeconfig, whose tokens must not reach a terminal or a CI log)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}" if mark else str(path)
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or type(exc).__name__
    return f"{where}: malformed YAML: {problem}"


def documents(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, data) for each document of a YAML stream, or the single JSON document."""
    text = read_text(path)
    if path.suffix == ".json":
        yield 1, parse_json(path, text)
        return
    budget = len(text) + ALIAS_ALLOWANCE  # what this file may expand to, all its documents together
    loader = None
    where = str(path)
    try:
        loader = _StrictLoader(text)
        while loader.check_node():
            node = loader.get_node()
            where = f"{path}:{node.start_mark.line + 1}"
            data = loader.construct_document(node)
            budget -= _check_data(data, where, budget)
            yield node.start_mark.line + 1, data
    except yaml.YAMLError as exc:
        raise InputError(yaml_error_message(exc, path)) from exc
    except ValueError as exc:  # an integer too long to convert
        raise InputError(f"{where}: malformed YAML: {_brief(str(exc), 200)}") from exc
    except RecursionError as exc:  # the pure-Python parser, when libyaml is not installed
        raise InputError(f"{where}: malformed YAML: nested more than {MAX_DEPTH} levels deep") from exc
    finally:
        if loader is not None:
            loader.dispose()


def _check_data(data: Any, where: str, budget: int) -> int:
    """The size of ``data`` (one per value plus the length of every string and key), counting shared (aliased)
    values each time they appear; InputError past ``budget`` or ``MAX_DEPTH``, or for a value JSON cannot hold.

    Alias-free text holds at most one unit per character, so the budget only stops aliases: a "billion laughs"
    of nested lists, and a long string aliased thousands of times alike. The walk keeps its own stack, so it can
    neither recurse too deep nor, bounded by the budget, run long on a structure aliases make huge or cyclic.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    size = 0
    while stack:
        value, depth = stack.pop()
        size += 1
        if isinstance(value, str):
            size += len(value)
            if not value.isascii():
                _check_text(value, where)
            children: Any = ()
        elif isinstance(value, dict):
            size += sum(map(len, value))
            if not all(map(str.isascii, value)):
                for key in value:
                    _check_text(key, where)
            children = value.values()
        elif isinstance(value, list):
            children = value
        elif isinstance(value, _JSON_SCALARS):
            children = ()
        else:
            raise InputError(
                f"{where}: a {type(value).__name__} value is not JSON data "
                "(only strings, numbers, booleans, null, lists and mappings; remove the YAML tag)"
            )
        if size > budget:
            raise InputError(
                f"{where}: YAML aliases expand the file beyond its size plus {ALIAS_ALLOWANCE:,} characters; refused"
            )
        if children and depth >= MAX_DEPTH:
            raise InputError(f"{where}: nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)
    return size


def _check_text(text: str, where: str) -> None:
    """Refuses a string no UTF-8 output can hold: a lone surrogate from a ``\\ud83d``-style escape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{where}: a string holds an unpaired surrogate escape (not Unicode text)") from exc


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
                raise InputError(f"{where}: '{_brief(kind)}.items' must be a list, found {type(items).__name__}")
            for index, item in enumerate(items):
                yield line, _validated(item, f"{where}: items[{index}]")
        else:
            yield line, _validated(doc, where)


def _string_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _validated(obj: Any, where: str) -> dict[str, Any]:
    """The fields every source and check relies on, typed as the Kubernetes API guarantees them."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a Kubernetes object (a mapping), found {type(obj).__name__}")
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise InputError(f"{where}: object has no '{key}'")
    kind = _brief(obj["kind"])
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise InputError(f"{where}: {kind} has no metadata.name")
    described = f"{kind} {_brief(metadata['name'])}"
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise InputError(f"{where}: {described}: metadata.namespace must be a string")
    for field in ("labels", "annotations"):
        if metadata.get(field) is not None and not _string_map(metadata[field]):
            raise InputError(f"{where}: {described}: metadata.{field} must map strings to strings")
    if kind_key(obj["apiVersion"], obj["kind"]) in KINDS:  # a third-party kind may shape its spec as it likes
        _check_envelope(obj, f"{where}: {described}")
    return obj


def _check_envelope(obj: dict[str, Any], where: str) -> None:
    """spec and status mappings and status.conditions a list of mappings, as every kind drauditor reads has them:
    every check and helper starts from these, so one object typed otherwise is named here instead of failing every
    check that lists its kind."""
    for field in ("spec", "status"):
        if obj.get(field) is not None and not isinstance(obj[field], dict):
            raise InputError(f"{where}: {field} must be a mapping, found {type(obj[field]).__name__}")
    conditions = (obj.get("status") or {}).get("conditions")
    if conditions is not None and not (isinstance(conditions, list) and all(isinstance(c, dict) for c in conditions)):
        raise InputError(f"{where}: status.conditions must be a list of mappings")
