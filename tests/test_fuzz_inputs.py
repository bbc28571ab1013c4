"""Malformed and adversarial snapshots: a clear input error or error findings, never a traceback, hang or blow-up.

Every example is a copy of the healthy sample estate broken one way or another: objects with wrong types and missing
fields (metadata a list, spec a string, status.conditions a mapping, names as numbers), huge strings, deep nesting,
new objects of every kind the checks read filled with junk, corrupted file text, arbitrary bytes. Each goes through
the real loader and then through every check and the report (JSON and HTML). The only allowed outcomes are an
InputError whose message names the file, or a report, in which whatever a check could not judge is an error finding
(the runner turns a crashing check into one). The loader's own bounds (nesting, YAML alias expansion, merge keys,
non-JSON tags, duplicate keys) are exercised directly, and a YAML bomb is loaded under a memory limit.
"""

from __future__ import annotations

import copy
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_edit import edit

from auditor.config import AuditConfig
from auditor.docload import MAX_DEPTH, documents
from auditor.engine import audit, build_context
from auditor.errors import InputError
from auditor.kinds import KINDS
from auditor.model import Status
from auditor.report.html import render_html
from auditor.report.model import Report
from auditor.snapshot import load_snapshot

SAMPLE = SAMPLES / "healthy"
# The sample's object and Ceph files, read once (each example starts from the same text): relative name -> text.
TEXTS: dict[str, str] = {
    path.relative_to(SAMPLE).as_posix(): path.read_text(encoding="utf-8")
    for path in sorted(SAMPLE.rglob("*"))
    if path.is_file() and path.suffix in {".yaml", ".yml", ".json"} and path.parent != SAMPLE
}
# The same files parsed: (relative name, its documents).
FILES: list[tuple[str, list[Any]]] = [(name, [doc for _, doc in documents(SAMPLE / name)]) for name in TEXTS]
# Fields the checks read, on whatever kind carries them: mutations aim here as well as at random paths.
READ_PATHS: tuple[tuple[str | int, ...], ...] = (
    ("metadata",),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("metadata", "labels"),
    ("metadata", "annotations"),
    ("metadata", "ownerReferences"),
    ("spec",),
    ("status",),
    ("status", "conditions"),
    ("status", "phase"),
    ("status", "state"),
    ("status", "protectedPVCs"),
    ("status", "decisions"),
    ("status", "lastGroupSyncTime"),
    ("spec", "template", "spec", "volumes"),
    ("spec", "template", "spec", "domain"),
    ("spec", "dataVolumeTemplates"),
    ("spec", "pvcSelector"),
    ("spec", "drPolicyRef"),
    ("spec", "placementRef"),
    ("spec", "drClusters"),
    ("spec", "schedulingInterval"),
    ("spec", "resources"),
    ("spec", "storageClassName"),
    ("status", "conditions", 0),
    ("status", "conditions", 0, "status"),
    ("status", "conditions", 0, "lastTransitionTime"),
    ("status", "decisions", 0),
    ("status", "protectedPVCs", 0),
    ("status", "protectedPVCs", 0, "conditions"),
    ("spec", "template", "spec", "volumes", 0),
    ("spec", "template", "spec", "volumes", 0, "persistentVolumeClaim"),
    ("spec", "pvcSelector", "matchLabels"),
    ("spec", "pvcSelector", "matchExpressions"),
)
FUZZ = settings(
    deadline=timedelta(seconds=15),  # one load + audit + render takes well under a second on this machine
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["", "True", "False", "Unknown", "Primary", "Bound", "0", "-1", "1e999", "2026-13-45T99:99:99Z"]),
)
junk = st.one_of(
    st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=12,
    ),
    st.integers(20_000, 200_000).map(lambda n: "<huge " + "A" * n + ">"),
    st.integers(10, MAX_DEPTH + 20).map(nested),
)


def _objects(doc: Any) -> list[Any]:
    """The Kubernetes objects of a document: a List's items, or the document itself."""
    if isinstance(doc, dict) and isinstance(doc.get("items"), list) and doc["items"]:
        return doc["items"]
    return [doc]


def _set(target: Any, path: tuple[Any, ...], value: Any) -> None:
    """Sets ``path`` in ``target`` to ``value``, creating missing mappings; a path through a scalar is left alone."""
    for step in path[:-1]:
        if isinstance(target, dict):
            target = target.setdefault(step, {})
        elif isinstance(target, list) and isinstance(step, int) and step < len(target):
            target = target[step]
        else:
            return
        if not isinstance(target, (dict, list)):
            return
    last = path[-1]
    if isinstance(target, dict) or (isinstance(target, list) and isinstance(last, int) and last < len(target)):
        target[last] = value


def _delete(target: Any, path: tuple[Any, ...]) -> None:
    for step in path[:-1]:
        try:
            target = target[step]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(target, dict):
        target.pop(path[-1], None)
    elif isinstance(target, list) and isinstance(path[-1], int) and path[-1] < len(target):
        del target[path[-1]]


@st.composite
def random_path(draw: st.DrawFn, obj: Any) -> tuple[Any, ...]:
    """A path into ``obj``, descending one random key or index at a time."""
    path: list[Any] = []
    node = obj
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        node = node[key]
    return tuple(path)


@st.composite
def broken_estates(draw: st.DrawFn) -> dict[str, list[Any]]:
    """Files to write over a copy of the sample: mutated sample files and new files of junk objects."""
    changed: dict[str, list[Any]] = {}
    for number in range(draw(st.integers(1, 4))):
        name, docs = draw(st.sampled_from(FILES))
        docs = changed.setdefault(name, copy.deepcopy(docs))
        doc_index = draw(st.integers(0, len(docs) - 1))
        objects = _objects(docs[doc_index])
        obj = objects[draw(st.integers(0, len(objects) - 1))]
        path = draw(st.one_of(st.sampled_from(READ_PATHS), random_path(obj)))
        action = draw(st.sampled_from(["replace"] * 5 + ["delete"] * 2 + ["clone"]))
        if action == "clone":  # the same object again, in a file of its own
            changed[f"{Path(name).parent}/clone-{number}.json"] = [copy.deepcopy(obj)]
        elif not path:
            docs[doc_index] = draw(junk)
        elif action == "delete":
            _delete(obj, path)
        else:
            _set(obj, path, draw(junk))
    for index in range(draw(st.integers(0, 2))):  # objects of the kinds the checks read, with junk for content
        info = KINDS[draw(st.sampled_from(sorted(KINDS)))]
        obj = {"apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": draw(st.text(max_size=30))}}
        for field in ("spec", "status", "data"):
            if draw(st.booleans()):
                obj[field] = draw(junk)
        if draw(st.booleans()):
            obj["metadata"]["namespace"] = draw(st.sampled_from(["billing", "crm", "erp", "ramen-system", ""]))
        cluster = draw(st.sampled_from(["hub", "clusters/prod-east", "clusters/prod-west"]))
        changed[f"{cluster}/fuzz-{index}.json"] = [obj]
    return changed


def _write(root: Path, files: dict[str, list[Any]]) -> None:
    for name, docs in files.items():
        path = root / name
        if path.suffix == ".json":
            (text,) = (json.dumps(doc) for doc in docs)  # a JSON file holds one document
        else:
            text = yaml.dump_all(docs, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
        path.write_text(text, encoding="utf-8")


def audited_or_refused(root: Path) -> Report | None:
    """The outcome contract: an InputError naming a file of the snapshot, or a report every format can render."""
    try:
        estate = load_snapshot(root)
    except InputError as exc:
        assert str(root) in str(exc), f"the message names no file of the snapshot: {exc}"
        return None
    report = audit(build_context(estate, AuditConfig()))
    assert all(isinstance(f.status, Status) for f in report.findings)
    rebuilt = Report.from_json(json.loads(json.dumps(report.to_json(), default=str)))
    assert render_html(rebuilt)
    return report


def with_estate(change: Callable[[Path], None]) -> Report | None:
    with tempfile.TemporaryDirectory(prefix="drauditor-fuzz-") as tmp:
        root = Path(shutil.copytree(SAMPLE, Path(tmp) / "estate"))
        change(root)
        return audited_or_refused(root)


@settings(FUZZ, max_examples=200)
@given(broken_estates())
def test_objects_with_wrong_types_missing_fields_and_junk(files: dict[str, list[Any]]) -> None:
    with_estate(lambda root: _write(root, files))


@st.composite
def corrupted_files(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(TEXTS)))
    text = TEXTS[name]
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        piece = draw(st.one_of(st.sampled_from(list(":-[]{}&*!|>'\"#%@`,?\t\n\\ \x00\x1b")), st.text(max_size=4)))
        span = draw(st.integers(0, 8))
        text = text[:at] + piece + text[at + span :] if draw(st.booleans()) else text[:at] + text[at + span :]
    return name, text


@settings(FUZZ, max_examples=120)
@given(corrupted_files())
def test_corrupted_file_text(corrupted: tuple[str, str]) -> None:
    name, text = corrupted
    with_estate(lambda root: (root / name).write_text(text, encoding="utf-8"))


@settings(FUZZ, max_examples=60)
@given(st.sampled_from(["hub/x.yaml", "hub/x.json", "clusters/prod-east/x.yml", "ceph/status.json"]), st.binary())
def test_arbitrary_bytes(name: str, content: bytes) -> None:
    with_estate(lambda root: (root / name).write_bytes(content))


def _billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


ADVERSARIAL: dict[str, tuple[str, bytes | str, str]] = {
    # case: (file in the estate, content, what the message says)
    "10,000 nested JSON lists": ("hub/deep.json", "[" * 10_000 + "]" * 10_000, "nested more than"),
    "10,000 nested JSON objects": ("hub/deep.json", '{"a":' * 10_000 + "1" + "}" * 10_000, "nested more than"),
    "10,000 nested YAML flow lists": ("hub/deep.yaml", "[" * 10_000 + "]" * 10_000, "nesting depth"),
    "10,000 nested YAML block maps": (
        "hub/deep.yaml",
        "".join(" " * level + "k:\n" for level in range(10_000)),
        "nesting depth",
    ),
    "nesting just past the bound": ("hub/deep.json", json.dumps(nested(MAX_DEPTH + 1)), "nested more than"),
    "billion laughs": ("hub/bomb.yaml", _billion_laughs(), "aliases expand"),
    "one long string aliased thousands of times": (
        "hub/bomb.yaml",
        f'a: &a "{"x" * 100_000}"\nb: [{", ".join(["*a"] * 5_000)}]\n',
        "aliases expand",
    ),
    "nested merge keys": (
        "hub/merge.yaml",
        "a: &a {x: 1}\n" + "".join(f"m{n}: &m{n} {{<<: [{', '.join(['*a'] * 9)}]}}\n" for n in range(9)),
        "merge key",
    ),
    "an alias inside itself": ("hub/cycle.yaml", "a: &a [*a]\n", "nested more than"),
    "duplicate YAML keys": ("hub/dup.yaml", "apiVersion: v1\nkind: ConfigMap\nkind: Secret\n", "duplicate key 'kind'"),
    "duplicate JSON keys": ("hub/dup.json", '{"apiVersion": "v1", "kind": "A", "kind": "B"}', "duplicate key 'kind'"),
    "a number as a key": ("hub/key.yaml", "apiVersion: v1\n8080: x\n", "int key"),
    "a list as a key": ("hub/key.yaml", "? [a]\n: b\n", "list key"),
    "!!binary": ("hub/tag.yaml", "apiVersion: !!binary aGVsbG8=\n", "bytes value is not JSON"),
    "!!set": ("hub/tag.yaml", "a: !!set {x, y}\n", "set value is not JSON"),
    "!!timestamp": ("hub/tag.yaml", "a: !!timestamp 2026-01-01\n", "date value is not JSON"),
    "a Python tag": ("hub/tag.yaml", "a: !!python/object/apply:os.system ['true']\n", "malformed YAML"),
    "an unpaired surrogate": ("hub/s.json", '{"apiVersion": "v1", "kind": "A\\ud800"}', "unpaired surrogate"),
    "a 5,000-digit integer": ("hub/n.yaml", "a: " + "9" * 5_000 + "\n", "malformed YAML"),
    "not UTF-8": ("hub/latin1.yaml", "kind: Caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "a NUL byte": ("hub/nul.yaml", "kind: a\x00b\n", "malformed YAML"),
    "a byte order mark in JSON": ("hub/bom.json", "\ufeff{}", "malformed JSON"),
    "metadata a list": ("hub/m.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [name, x]\n", "has no metadata.name"),
    "a name that is a number": (
        "hub/m.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 7}\n",
        "metadata.name",
    ),
    "annotations a list": (
        "hub/m.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, annotations: [a]}\n",
        "metadata.annotations must map strings to strings",
    ),
    "a List whose items is a mapping": ("hub/l.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n", "must be a list"),
    "a scalar document": ("clusters/prod-east/s.yaml", "just text\n", "expected a Kubernetes object"),
    "capturedAt a mapping": ("snapshot.yaml", "capturedAt: {a: 1}\n", "capturedAt"),
    "unavailable a list": ("snapshot.yaml", "unavailable: [hub]\n", "unavailable must map"),
}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_adversarial_files_are_input_errors_naming_the_file(case: str, tmp_path: Path) -> None:
    name, content, expected = ADVERSARIAL[case]
    root = Path(shutil.copytree(SAMPLE, tmp_path / "estate"))
    path = root / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    with pytest.raises(InputError) as raised:
        load_snapshot(root)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)
    assert len(str(raised.value)) < len(str(path)) + 300  # a message, not a dump of the input


# Shapes the fuzz tests found crashing a shared helper, which took every check using it down with it.
HELPER_CRASHES: dict[str, tuple[str, str, str, Callable[[dict], None]]] = {
    "a placement decision that is not a mapping": (
        "hub/apps/billing.yaml",
        "PlacementDecision",
        "billing-placement-decision-1",
        lambda pd: pd["status"]["decisions"].insert(0, None),
    ),
    "a protected PVC entry that is not a mapping": (
        "clusters/prod-east/billing.yaml",
        "VolumeReplicationGroup",
        "billing-drpc",
        lambda vrg: vrg["status"]["protectedPVCs"].append("billing-db-data"),
    ),
}


@pytest.mark.parametrize("case", sorted(HELPER_CRASHES))
def test_a_malformed_list_entry_is_skipped_not_fatal(case: str) -> None:
    name, kind, object_name, change = HELPER_CRASHES[case]
    report = with_estate(lambda root: edit(root / name, kind, object_name, change))
    assert report is not None
    assert [f.message for f in report.findings if "crashed" in f.message] == []


def test_a_clean_sample_passes_the_same_contract() -> None:
    """The contract function itself: a sound estate gives a report, so the fuzz tests above judge something."""
    report = with_estate(lambda root: None)
    assert report is not None and {f.check_id for f in report.findings} == {m.id for m in report.checks}


# What the bombs would do without the loader's bounds, and what they do with them, each in a child process limited to
# 512 MiB of address space and 60 s.
_LIMITED = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
sys.path[:0] = {paths!r}
{body}
"""
_WITH_BOUNDS = """
from pathlib import Path
from auditor.errors import InputError
from auditor.snapshot import load_snapshot
try:
    load_snapshot(Path(sys.argv[1]))
except InputError as exc:
    print("refused:", exc)
"""
_WITHOUT_BOUNDS = """
import yaml
data = yaml.load(open(sys.argv[1] + "/hub/bomb.yaml").read(), Loader=yaml.CSafeLoader)
try:
    json.dumps(data)  # what a capture or report does with loaded data
except MemoryError:
    print("out of memory")
"""


def _limited(body: str, root: Path) -> subprocess.CompletedProcess[str]:
    script = _LIMITED.format(paths=[str(Path(__file__).resolve().parent.parent)], body=body)
    return subprocess.run(
        [sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY, reason="already limited")
def test_a_yaml_bomb_is_refused_within_bounded_memory(tmp_path: Path) -> None:
    root = Path(shutil.copytree(SAMPLE, tmp_path / "estate"))
    (root / "hub" / "bomb.yaml").write_text(_billion_laughs(), encoding="utf-8")
    unbounded = _limited(_WITHOUT_BOUNDS, root)
    assert "out of memory" in unbounded.stdout, f"the bomb is not a bomb: {unbounded.stderr}"
    bounded = _limited(_WITH_BOUNDS, root)
    assert bounded.returncode == 0, bounded.stderr
    assert f"refused: {root / 'hub' / 'bomb.yaml'}:1: YAML aliases expand" in bounded.stdout
