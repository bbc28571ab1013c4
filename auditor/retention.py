"""Dated run folders of scheduled audits: their names, and which of them the retention policy deletes.

A run folder is named after the UTC second its run started (``20261125T060000Z``, ``-N`` appended when a folder
of that second exists), so folders sort by time and a name is enough to know the run's age. Retention deletes only
folders whose names parse that way: whatever else an operator keeps under the output root is never touched.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>[1-9]\d*))?")


@dataclass(frozen=True, order=True)
class RunFolder:
    started_at: datetime
    n: int  # the -N suffix, 0 without one
    path: Path


def new_run_folder(root: Path, started_at: datetime) -> Path:
    """A not yet existing folder under ``root`` for a run that started at ``started_at``."""
    stamp = started_at.astimezone(UTC).strftime(STAMP)
    candidate, n = Path(root) / stamp, 0
    while candidate.exists():
        n += 1
        candidate = Path(root) / f"{stamp}-{n}"
    return candidate


def run_folders(root: Path) -> list[RunFolder]:
    """The run folders under ``root``, oldest first; anything not named like one (or a symlink) is left out."""
    if not Path(root).is_dir():
        return []
    found = []
    for path in Path(root).iterdir():
        match = _NAME.fullmatch(path.name)
        if match and path.is_dir() and not path.is_symlink():
            started = datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)
            found.append(RunFolder(started, int(match["n"] or 0), path))
    return sorted(found)


def expired(
    folders: list[RunFolder], *, keep_runs: int | None, keep_days: float | None, now: datetime
) -> list[RunFolder]:
    """The folders to delete: all but the newest ``keep_runs``, and those older than ``keep_days``."""
    newest_first = folders[::-1]
    doomed = set(newest_first[keep_runs:]) if keep_runs is not None else set()
    if keep_days is not None:
        cutoff = now - timedelta(days=keep_days)
        doomed |= {folder for folder in folders if folder.started_at < cutoff}
    return sorted(doomed)


def prune(root: Path, *, keep_runs: int | None, keep_days: float | None, now: datetime) -> list[Path]:
    """Deletes the expired run folders under ``root`` and returns them."""
    doomed = expired(run_folders(root), keep_runs=keep_runs, keep_days=keep_days, now=now)
    for folder in doomed:
        shutil.rmtree(folder.path)
    return [folder.path for folder in doomed]
