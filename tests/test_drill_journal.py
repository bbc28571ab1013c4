"""The drill journal: durable line by line, private, read back into what cleanup needs, tolerant of the one damage
a crash can do (a torn last line) and of nothing else."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.drill.journal import (
    CreatedObject,
    DrillRunning,
    Journal,
    ObjectRef,
    default_state_dir,
    is_running,
    journal_path,
    open_journals,
    read_journal,
)
from auditor.drill.names import new_drill_id
from auditor.errors import InputError

STARTED = datetime(2026, 11, 26, 0, 45, 12, tzinfo=UTC)
NS = "drauditor-drill-x"
POD = ObjectRef("prod-west", "v1", "Pod", NS, "drauditor-canary-reader")
CONTENT = ObjectRef("prod-west", "snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", None, "drauditor-x-erp-disk")


def start(state_dir: Path, drill_id: str | None = None) -> Journal:
    return Journal.start(
        state_dir,
        drill_id=drill_id or new_drill_id(STARTED),
        app="erp/erp-drpc",
        primary="prod-east",
        secondary="prod-west",
        contexts={"prod-east": "east", "prod-west": None},
        kubeconfig="/home/op/.kube/config",
        started_at=STARTED,
        run_by="op",
        tool_version="1.2.3",
    )


def test_a_journal_reads_back_every_event_and_is_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "drills"
    journal = start(state_dir)
    journal.intent(POD)
    journal.created(CreatedObject(POD, "uid-pod"))
    journal.intent(CONTENT)
    journal.deleted(POD, "uid-pod")

    state = read_journal(journal.path)
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert journal.path == journal_path(state_dir, state.drill_id)
    assert state.header["app"] == "erp/erp-drpc" and state.header["started_at"] == "2026-11-26T00:45:12Z"
    assert state.header["contexts"] == {"prod-east": "east", "prod-west": None}
    assert state.clusters == ["prod-west", "prod-east"]
    assert state.intended == [POD, CONTENT]
    assert state.created == {POD: "uid-pod"}
    assert state.deleted == {POD}
    assert state.pending() == [CONTENT]  # intended, maybe created, never deleted
    assert not state.closed and state.torn is None

    journal.close("failure", ["prod-west: VolumeSnapshotContent drauditor-x-erp-disk (not deleted)"])
    closed = read_journal(journal.path)
    assert closed.closed and closed.closing["outcome"] == "failure"
    assert closed.closing["residue"] == ["prod-west: VolumeSnapshotContent drauditor-x-erp-disk (not deleted)"]
    with pytest.raises(ValueError, match="closed"):
        journal.intent(POD)


def test_every_line_is_fsynced_before_the_method_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = start(tmp_path)
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(len(journal.path.read_bytes().splitlines()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    journal.intent(POD)
    journal.created(CreatedObject(POD, "u"))
    assert synced == [2, 3]  # one fsync per line, after that line reached the file


def test_a_second_journal_for_the_same_drill_is_refused(tmp_path: Path) -> None:
    journal = start(tmp_path)
    with pytest.raises(InputError, match="cannot create"):
        start(tmp_path, read_journal(journal.path).drill_id)


def test_a_torn_last_line_is_ignored_said_and_repaired_on_reopen(tmp_path: Path) -> None:
    journal = start(tmp_path)
    journal.intent(POD)
    fragment = b'{"event": "intent", "cluster": "prod-west", "apiVersion": "v1", "kind": "PersistentVolumeCl'
    with journal.path.open("ab") as file:
        file.write(fragment)  # the process died inside this write
    die(journal)

    state = read_journal(journal.path)
    assert state.intended == [POD]
    assert state.torn is not None and "line 3" in state.torn and "crash" in state.torn

    reopened = Journal.reopen(journal.path)
    reopened.deleted(POD, "u")
    lines = [json.loads(line) for line in journal.path.read_text().splitlines()]  # every line whole again
    assert [line["event"] for line in lines] == ["start", "intent", "torn", "deleted"]
    assert lines[2]["ignored"] == fragment.decode()
    repaired = read_journal(journal.path)
    assert repaired.torn is None and repaired.deleted == {POD}


def test_a_whole_last_line_without_its_newline_counts(tmp_path: Path) -> None:
    journal = start(tmp_path)
    journal.intent(POD)
    journal.path.write_bytes(journal.path.read_bytes().rstrip(b"\n"))
    die(journal)
    assert read_journal(journal.path).intended == [POD] and read_journal(journal.path).torn is None
    Journal.reopen(journal.path).intent(CONTENT)
    assert read_journal(journal.path).intended == [POD, CONTENT]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda text: text.replace('"event": "intent"', '"event": "intent"  garbage', 1), "line 2 is not JSON"),
        (lambda text: text.replace('"event": "intent"', '"event": "patched"', 1), "line 2 is not a journal event"),
        (lambda text: text.replace('"name": "drauditor-canary-reader"', '"name": ""', 1), "without cluster"),
        (lambda text: text.replace(', "uid": "u"', "", 1), "created without uid"),
        (lambda text: text.split("\n", 1)[1], "no start line"),
    ],
)
def test_damage_a_crash_cannot_do_is_refused(tmp_path: Path, damage, message: str) -> None:
    journal = start(tmp_path)
    journal.intent(POD)
    journal.created(CreatedObject(POD, "u"))
    journal.path.write_text(damage(journal.path.read_text()))
    with pytest.raises(InputError, match=message):
        read_journal(journal.path)


def test_a_journal_under_another_drills_name_is_refused(tmp_path: Path) -> None:
    journal = start(tmp_path)
    other = journal.path.with_name(f"{new_drill_id(STARTED)}.journal")
    journal.path.rename(other)
    with pytest.raises(InputError, match="under another name"):
        read_journal(other)


def test_open_journals_are_the_unclosed_ones_oldest_first(tmp_path: Path) -> None:
    assert open_journals(tmp_path / "missing") == []
    later = start(tmp_path, new_drill_id(datetime(2026, 11, 27, tzinfo=UTC)))
    earlier = start(tmp_path, new_drill_id(datetime(2026, 11, 25, tzinfo=UTC)))
    start(tmp_path).close("success", [])
    assert [state.path for state in open_journals(tmp_path)] == [earlier.path, later.path]


def test_default_state_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "drauditor" / "drills"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "drauditor" / "drills"


def test_lines_written_from_many_threads_stay_whole(tmp_path: Path) -> None:
    journal = start(tmp_path)
    refs = [ObjectRef("prod-west", "v1", "Pod", NS, f"pod-{i}") for i in range(200)]
    threads = [threading.Thread(target=journal.intent, args=(ref,)) for ref in refs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(read_journal(journal.path).intended, key=lambda r: int(r.name[4:])) == refs


def die(journal: Journal) -> None:
    """The drill's process dies: the kernel closes its descriptor, which drops the journal's lock."""
    os.close(journal._fd)


def test_a_running_drill_holds_its_journal_and_a_dead_one_does_not(tmp_path: Path) -> None:
    journal = start(tmp_path)
    journal.intent(POD)
    assert is_running(journal.path)
    with pytest.raises(DrillRunning, match="still running"):
        Journal.reopen(journal.path)
    die(journal)
    assert not is_running(journal.path)
    Journal.reopen(journal.path).close("aborted", [])
    assert read_journal(journal.path).closed
