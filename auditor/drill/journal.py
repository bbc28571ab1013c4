"""The drill's crash journal: what it was about to create, what it created, what it deleted, and how it ended.

A drill writes to production clusters, so its process may die at the worst moment (SIGKILL, a lost laptop). Every
line is flushed and fsync'd before the request it announces is sent: whatever the server may hold, the journal
named it first, and `drauditor drill cleanup` can find and remove it later. A crash can still tear the line being
written; such a last line is ignored (and said so), which loses nothing: an intent that never reached the disk
announced a request that was never sent, and a torn "created" line names an object its intent line already names.

One JSONL file per drill, ``<state_dir>/<drill_id>.journal``, readable by its owner only: it names the clusters,
kubeconfig and contexts the drill used.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.drill.names import is_drill_id
from auditor.errors import InputError
from auditor.timeutil import rfc3339

SUFFIX = ".journal"
EVENTS = ("start", "intent", "created", "deleted", "torn", "closed")
_REF_FIELDS = ("cluster", "apiVersion", "kind", "name")


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/drauditor/drills`` (XDG base directories: state that outlives a run but is not config)."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "drauditor" / "drills"


@dataclass(frozen=True)
class ObjectRef:
    """One object on one cluster; ``namespace`` None for a cluster-scoped one."""

    cluster: str
    api_version: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, cluster: str, api_version: str, kind: str, obj: dict[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(cluster, api_version, kind, meta.get("namespace") or None, str(meta.get("name") or ""))

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.cluster}: {self.kind} {where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


@dataclass(frozen=True)
class CreatedObject:
    """An object the drill created, with the UID that tells it apart from any later object of the same name."""

    ref: ObjectRef
    uid: str

    def to_json(self) -> dict[str, Any]:
        return {**self.ref.to_json(), "uid": self.uid}


@dataclass
class JournalState:
    """A journal as read back: enough for cleanup to find the clusters and every object the drill may have made."""

    path: Path
    drill_id: str
    header: dict[str, Any]  # the "start" event
    intended: list[ObjectRef] = field(default_factory=list)  # in order; a create may or may not have happened
    created: dict[ObjectRef, str] = field(default_factory=dict)  # -> uid
    deleted: set[ObjectRef] = field(default_factory=set)
    closing: dict[str, Any] | None = None  # the "closed" event
    torn: str | None = None  # why the last line was ignored

    @property
    def closed(self) -> bool:
        return self.closing is not None

    @property
    def clusters(self) -> list[str]:
        """The managed clusters the drill wrote to, secondary first (cleanup's order)."""
        return [c for c in (self.header.get("secondary"), self.header.get("primary")) if isinstance(c, str)]

    def pending(self) -> list[ObjectRef]:
        """Objects announced or created and not yet recorded as deleted, in the order they were announced."""
        return [ref for ref in self.intended if ref not in self.deleted]


def read_journal(path: Path) -> JournalState:
    """Parses a journal; a torn last line (a crash mid-write) is ignored and noted in ``torn``.

    Anything else that does not parse is refused: a journal damaged other than by a crash is not guessed at, since
    cleanup deletes what it names.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the drill journal ({exc})") from exc
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, else the unterminated last line
    events: list[tuple[int, dict[str, Any]]] = []
    torn = None
    for number, raw in enumerate(lines, start=1):
        events.append((number, _parse(path, number, raw)))
    if tail:
        try:
            events.append((len(lines) + 1, _parse(path, len(lines) + 1, tail)))
        except InputError as exc:
            torn = f"line {len(lines) + 1} was cut short by a crash and is ignored ({exc.__cause__ or exc})"
    if not events or events[0][1]["event"] != "start":
        raise InputError(f"{path}: not a drill journal (no start line)")
    header = events[0][1]
    drill_id = header.get("drill_id")
    if not isinstance(drill_id, str) or not is_drill_id(drill_id) or path.name != f"{drill_id}{SUFFIX}":
        raise InputError(f"{path}: journal of drill {drill_id!r} under another name")
    state = JournalState(path, drill_id, header, torn=torn)
    for number, event in events[1:]:
        _apply(state, number, event)
    return state


def _parse(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"{path}: line {number} is not JSON") from exc
    if not isinstance(event, dict) or event.get("event") not in EVENTS:
        raise InputError(f"{path}: line {number} is not a journal event")
    if event["event"] in ("intent", "created", "deleted"):
        if any(not isinstance(event.get(key), str) or not event[key] for key in _REF_FIELDS) or not isinstance(
            event.get("namespace"), str | None
        ):
            raise InputError(f"{path}: line {number}: {event['event']} without cluster, apiVersion, kind and name")
        if event["event"] == "created" and not isinstance(event.get("uid"), str):
            raise InputError(f"{path}: line {number}: created without uid")
    return event


def _ref(event: dict[str, Any]) -> ObjectRef:
    return ObjectRef(event["cluster"], event["apiVersion"], event["kind"], event.get("namespace"), event["name"])


def _apply(state: JournalState, number: int, event: dict[str, Any]) -> None:
    kind = event["event"]
    if kind == "start":
        raise InputError(f"{state.path}: line {number}: a second start line")
    if kind in ("intent", "created", "deleted"):
        ref = _ref(event)
        if ref not in state.intended:  # "created" without its intent cannot be written by Journal; tolerate it
            state.intended.append(ref)
        if kind == "created":
            state.created[ref] = event["uid"]
            state.deleted.discard(ref)  # created again after a deletion (a retried create)
        elif kind == "deleted":
            state.deleted.add(ref)
    elif kind == "closed":
        state.closing = event


def open_journals(state_dir: Path) -> list[JournalState]:
    """Journals of drills that never closed (their process died, or its cleanup did), oldest drill first."""
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        return []
    states = [read_journal(path) for path in sorted(state_dir.glob(f"*{SUFFIX}"))]
    return [state for state in states if not state.closed]


def journal_path(state_dir: Path, drill_id: str) -> Path:
    return Path(state_dir) / f"{drill_id}{SUFFIX}"


class Journal:
    """Appends events to one drill's journal, each durable (fsync) before the method returns. Thread-safe."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._lock = threading.Lock()

    @classmethod
    def start(
        cls,
        state_dir: Path,
        *,
        drill_id: str,
        app: str,
        primary: str,
        secondary: str,
        contexts: dict[str, str | None],
        kubeconfig: str | None,
        started_at: datetime,
        run_by: str,
        tool_version: str,
    ) -> Journal:
        """A new journal (refused if one exists for this id), its directory made owner-only when created here."""
        state_dir = Path(state_dir)
        state_dir.parent.mkdir(parents=True, exist_ok=True)
        state_dir.mkdir(mode=0o700, exist_ok=True)
        path = journal_path(state_dir, drill_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except OSError as exc:
            raise InputError(f"{path}: cannot create the drill journal ({exc})") from exc
        _lock_or_refuse(fd, path)
        _fsync_dir(state_dir)  # the new file's directory entry survives a crash too
        journal = cls(path, fd)
        journal._write(
            {
                "event": "start",
                "drill_id": drill_id,
                "app": app,
                "primary": primary,
                "secondary": secondary,
                "contexts": contexts,
                "kubeconfig": kubeconfig,
                "started_at": rfc3339(started_at),
                "run_by": run_by,
                "tool_version": tool_version,
            }
        )
        return journal

    @classmethod
    def reopen(cls, path: Path) -> Journal:
        """Appends to an existing journal (cleanup after a lost process). A torn last line is first replaced by a
        ``torn`` event quoting it, so the file stays parseable line by line."""
        path = Path(path)
        state = read_journal(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except OSError as exc:
            raise InputError(f"{path}: cannot open the drill journal ({exc})") from exc
        _lock_or_refuse(fd, path)
        journal = cls(path, fd)
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            end = data.rfind(b"\n") + 1
            if state.torn is None:  # the last line is whole but lost its newline
                os.write(fd, b"\n")
            else:
                os.ftruncate(fd, end)
                journal._write({"event": "torn", "ignored": data[end:].decode("utf-8", "replace")})
        return journal

    def intent(self, ref: ObjectRef) -> None:
        self._write({"event": "intent", **ref.to_json()})

    def created(self, obj: CreatedObject) -> None:
        self._write({"event": "created", **obj.to_json()})

    def deleted(self, ref: ObjectRef, uid: str) -> None:
        self._write({"event": "deleted", **ref.to_json(), "uid": uid})

    def close(self, outcome: str, residue: Iterable[str]) -> None:
        """The last line: a closed journal is one `drill cleanup` leaves alone."""
        self._write({"event": "closed", "outcome": outcome, "residue": list(residue)})
        with self._lock:
            os.close(self._fd)
            self._fd = -1

    def state(self) -> JournalState:
        return read_journal(self.path)

    def _write(self, event: dict[str, Any]) -> None:
        line = json.dumps({**event, "at": rfc3339(datetime.now(UTC))}, sort_keys=True) + "\n"
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"{self.path}: journal already closed")
            data = line.encode()
            while data:  # a regular file takes it in one write; loop for the rare short write
                data = data[os.write(self._fd, data) :]
            os.fsync(self._fd)


class DrillRunning(InputError):
    """The journal is held by a live drill process: its objects are in use, not left behind."""


def _lock_or_refuse(fd: int, path: Path) -> None:
    """A drill holds an exclusive lock on its journal while it runs (the kernel drops it when the process dies,
    even by SIGKILL), so cleanup can tell a running drill from a dead one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DrillRunning(f"{path}: drill {path.stem} is still running (another process holds its journal)") from None


def is_running(path: Path) -> bool:
    """Whether a live process holds the journal's lock."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
