"""The snapshot source: every contract form parses, and every malformed input names its file and line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.snapshot import load_snapshot

VM = """apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: {name}
  namespace: app
spec: {{}}
"""


def make_snapshot(root: Path, files: dict[str, str]) -> Path:
    (root / "hub").mkdir(parents=True, exist_ok=True)
    (root / "clusters" / "east").mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_every_contract_form_is_read(tmp_path: Path) -> None:
    vm_list = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "kubevirt.io/v1",
                "kind": "VirtualMachine",
                "metadata": {"name": "from-json-list", "namespace": "app"},
            }
        ],
    }
    root = make_snapshot(
        tmp_path,
        {
            "clusters/east/single.yaml": VM.format(name="single"),
            "clusters/east/stream.yml": VM.format(name="a") + "---\n" + VM.format(name="b") + "---\n",
            "clusters/east/nested/list.json": json.dumps(vm_list),
            "clusters/east/typed-list.yaml": "apiVersion: kubevirt.io/v1\nkind: VirtualMachineList\nitems:\n"
            "- apiVersion: kubevirt.io/v1\n  kind: VirtualMachine\n  metadata: {name: typed, namespace: app}\n",
            "snapshot.yaml": "capturedAt: 2026-11-20T09:00:00Z\n",
        },
    )
    estate = load_snapshot(root)
    names = sorted(vm["metadata"]["name"] for vm in estate.clusters["east"].list("VirtualMachine"))
    assert names == ["a", "b", "from-json-list", "single", "typed"]
    assert estate.captured_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert estate.clusters["east"].get("VirtualMachine", "a", "app")["metadata"]["name"] == "a"
    assert set(estate.input_digests) == {
        "clusters/east/single.yaml",
        "clusters/east/stream.yml",
        "clusters/east/nested/list.json",
        "clusters/east/typed-list.yaml",
        "snapshot.yaml",
    }


@pytest.mark.parametrize(
    ("relative", "text", "expected"),
    [
        ("clusters/east/bad.yaml", VM.format(name="ok") + "  bad: [unclosed\n", "bad.yaml:7: malformed YAML"),
        ("clusters/east/bad.json", '{"apiVersion": "v1",\n "kind": }', "bad.json:2: malformed JSON"),
        ("clusters/east/scalar.yaml", VM.format(name="ok") + "---\njust a string\n", "scalar.yaml:8: expected a "),
        ("clusters/east/noname.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "has no metadata.name"),
        ("clusters/east/nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n", "object has no 'kind'"),
        (
            "clusters/east/labels.yaml",
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: x\n  labels: {dr: true}\n",
            "metadata.labels must map strings to strings",
        ),
        ("clusters/east/items.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n", "'List.items' must be a list"),
        ("clusters/east/list-item.yaml", "apiVersion: v1\nkind: List\nitems:\n- 3\n", "items[0]: expected a"),
        ("clusters/east/notes.txt", "hello", "notes.txt: unexpected file"),
        ("clusters/east/binary.yaml", "\udcff", "not UTF-8"),
        ("ceph/status.json", "{", "status.json:1: malformed JSON"),
        ("snapshot.yaml", "capturedAt: yesterday\n", "is not an RFC 3339 timestamp"),
    ],
)
def test_malformed_input_names_the_file_and_line(tmp_path: Path, relative: str, text: str, expected: str) -> None:
    root = make_snapshot(tmp_path, {})
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(InputError) as caught:
        load_snapshot(root)
    assert expected in str(caught.value)
    assert relative.rsplit("/", 1)[-1] in str(caught.value)


def test_duplicate_object_names_both_places(tmp_path: Path) -> None:
    root = make_snapshot(
        tmp_path, {"clusters/east/a.yaml": VM.format(name="x"), "clusters/east/b.yaml": VM.format(name="x")}
    )
    with pytest.raises(
        InputError, match=r"b\.yaml:1: VirtualMachine app/x appears twice in east \(first in .*a\.yaml:1\)"
    ):
        load_snapshot(root)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ({"hub"}, "no clusters/ folder"),
        ({"clusters/east"}, "no hub/ folder"),
        ({"hub", "clusters"}, "no managed cluster"),
    ],
)
def test_missing_layout_is_an_input_error(tmp_path: Path, layout: set[str], expected: str) -> None:
    for folder in layout:
        (tmp_path / folder).mkdir(parents=True)
    with pytest.raises(InputError, match=expected):
        load_snapshot(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="snapshot directory not found"):
        load_snapshot(tmp_path / "nope")


def test_without_captured_at_now_is_unknown(tmp_path: Path) -> None:
    estate = load_snapshot(make_snapshot(tmp_path, {"clusters/east/vm.yaml": VM.format(name="a")}))
    assert estate.captured_at is None
    assert estate.ceph.outputs == {}
