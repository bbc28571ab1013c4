"""A hash chain over an append-only sequence of records, and the sidecar anchor that pins its newest entry.

Each entry's hash covers the previous entry's hash and its own canonical JSON, so editing, deleting, inserting or
reordering any entry breaks a link that anyone can recompute. The one change a chain cannot show by itself is the
removal of its newest entries; the anchor file, rewritten outside the database on every append, shows that.
Storage-agnostic on purpose: the evidence store decides what the records are, this module only how they are linked.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64  # the prev_hash of the first entry


@dataclass(frozen=True)
class Head:
    """The newest entry of a chain: what the anchor file records."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Entry:
    seq: int
    record: str  # canonical JSON
    prev_hash: str
    hash: str

    @property
    def label(self) -> str:
        """``seq N (type id)`` when the record still parses, so a problem names the record an auditor knows."""
        try:
            data = json.loads(self.record)
            return f"seq {self.seq} ({data['type']} {data['id']})"
        except (ValueError, TypeError, KeyError):
            return f"seq {self.seq}"


def canonical(record: dict[str, Any]) -> str:
    """One text per record (sorted keys, no whitespace), so the same record always hashes the same."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def link(prev_hash: str, record: str) -> str:
    return hashlib.sha256((prev_hash + record).encode("utf-8")).hexdigest()


def extend(head: Head | None, records: Iterable[str]) -> list[Entry]:
    """The entries that append ``records`` (canonical JSON) after ``head``."""
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
    entries = []
    for record in records:
        seq += 1
        entry = Entry(seq, record, prev, link(prev, record))
        entries.append(entry)
        prev = entry.hash
    return entries


def chain_problems(entries: Sequence[Entry]) -> list[str]:
    """Every place where ``entries`` (in seq order) is not the unbroken chain ``extend`` builds."""
    problems = []
    expected_seq, expected_prev = 1, GENESIS
    for entry in entries:
        if entry.seq > expected_seq:
            missing = f"{expected_seq}" if entry.seq == expected_seq + 1 else f"{expected_seq}-{entry.seq - 1}"
            problems.append(f"seq {missing} missing: deleted from the ledger")
        if entry.prev_hash != expected_prev:
            problems.append(
                f"{entry.label}: prev_hash does not link to the entry before it: "
                "an entry was deleted, inserted or reordered"
            )
        if link(entry.prev_hash, entry.record) != entry.hash:
            problems.append(f"{entry.label}: record does not match its hash: edited")
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    return problems


def anchor_path(store: Path) -> Path:
    return Path(f"{store}.head")


def read_anchor(path: Path) -> Head | None:
    """The anchored head; None when there is no anchor. Raises ValueError when the file is not an anchor."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("seq"), int) or not isinstance(data.get("hash"), str):
        raise ValueError("not a {seq, hash} object")
    return Head(data["seq"], data["hash"])


def write_anchor(path: Path, head: Head) -> Callable[[], None]:
    """Atomically replaces the anchor; returns what puts the previous one back (for an append that rolls back)."""
    previous = path.read_bytes() if path.exists() else None
    _replace(path, json.dumps({"seq": head.seq, "hash": head.hash}).encode("utf-8") + b"\n")

    def restore() -> None:
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            _replace(path, previous)

    return restore


def _replace(path: Path, content: bytes) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def anchor_problems(entries: Sequence[Entry], anchor: Head, where: Path) -> list[str]:
    """Where the chain's head disagrees with the anchor: its newest entries removed, or the history rewritten."""
    head = entries[-1] if entries else None
    if head is None or head.seq < anchor.seq:
        ends = f"ends at seq {head.seq}" if head else "is empty"
        return [f"the ledger {ends} but {where} records seq {anchor.seq}: the newest entries were deleted"]
    anchored = next((e for e in entries if e.seq == anchor.seq), None)
    if anchored is None or anchored.hash != anchor.hash:
        return [f"seq {anchor.seq}: hash differs from the one {where} records: the history was rewritten"]
    if head.seq > anchor.seq:
        return [
            f"the ledger continues past seq {anchor.seq}, which {where} records as its newest: entries were appended "
            "outside drauditor, or the anchor was replaced by an older copy"
        ]
    return []
