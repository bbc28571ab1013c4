"""Hand-written input files (waivers, baselines) validated strictly, with every error naming the file and line.

People edit these files by hand and a pipeline refuses them on the strength of one error line, so the line has to be
the one at fault: the data is read by auditor.docload (the same hardened parser as snapshots), and the YAML node
tree of the same text gives the line of every value a validation error points at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from auditor.docload import documents, read_text
from auditor.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Located(Generic[T]):
    """A validated file with the node tree its data came from, to name the line of any part of it."""

    path: Path
    value: T
    root: yaml.Node | None  # None for JSON text that YAML cannot compose (then only the file is named)

    def line(self, loc: Sequence[int | str]) -> int | None:
        """1-based line of the value at ``loc`` (mapping keys and list indexes), or of its nearest enclosing one."""
        node = self.root
        if node is None:
            return None
        for part in loc:
            child = _child(node, part)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1

    def where(self, loc: Sequence[int | str]) -> str:
        line = self.line(loc)
        return f"{self.path}:{line}" if line else str(self.path)


def load(path: Path, adapter: TypeAdapter[T], what: str) -> Located[T]:
    """The one document in ``path`` validated by ``adapter``; InputError naming file, line and field otherwise.

    An empty file is an empty document (``None``), for the adapter to accept or refuse.
    """
    path = Path(path)
    docs = [data for _, data in documents(path)]
    if len(docs) > 1:
        raise InputError(f"{path}: expected one {what} document, found {len(docs)}")
    data = docs[0] if docs else None
    root = _compose(read_text(path))
    try:
        value = adapter.validate_python(data)
    except ValidationError as exc:
        located = Located(path, None, root)
        problems = [
            f"{located.where(err['loc'])}: {what}: {_dotted(err['loc']) or 'document'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise InputError("; ".join(problems)) from exc
    return Located(path, value, root)


def _compose(text: str) -> yaml.Node | None:
    """The node tree of text docload has already accepted; JSON is YAML too, except for rare escapes."""
    try:
        return yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None


def _child(node: yaml.Node, part: int | str) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        return next((value for key, value in node.value if getattr(key, "value", None) == part), None)
    return None


def _dotted(loc: Sequence[Any]) -> str:
    return ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in loc).replace(".[", "[")
