"""What the canary pods would do if a kubelet ran them: the writer's clock ticks and the reader's output.

Nothing runs a container in the lab, so the writer's file is computed when someone looks: the writer stores
``date -u +%s.%N`` at its start and then once every interval, so the newest value at any instant is the last tick
before it. The simulator recognises the two programs by their shell scripts (the drill spec's commands), not by
pod name, so a pod with another script simply runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WRITER = re.compile(r"date -u \+%s\.%N > (?P<tmp>\S+) && mv -f (?P=tmp) (?P<file>\S+).*sleep (?P<interval>[0-9.]+)")
_READER = re.compile(r"^cat (?P<file>\S+) > /dev/termination-log$")


@dataclass(frozen=True)
class CanaryWriter:
    started_ns: int
    interval_ns: int

    def newest_at(self, at_ns: int) -> int | None:
        """The timestamp the file holds at ``at_ns`` (None before the first write)."""
        if at_ns < self.started_ns:
            return None
        return self.started_ns + (at_ns - self.started_ns) // self.interval_ns * self.interval_ns


def date_output(ns: int) -> str:
    """``date -u +%s.%N``: whole seconds, a dot, nine digits of nanoseconds."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def script_of(container: dict) -> str:
    """The script of a ``/bin/sh -c`` container (command or args), or '' for any other program."""
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    return argv[2] if len(argv) >= 3 and argv[0].endswith("sh") and argv[1] == "-c" else ""


def writer_program(script: str) -> tuple[str, int] | None:
    """(the file it writes, interval in ns) when ``script`` is the canary writer loop."""
    match = _WRITER.search(script)
    if match is None:
        return None
    return match["file"], round(float(match["interval"]) * 1_000_000_000)


def reader_program(script: str) -> str | None:
    """The file whose content becomes the termination message, when ``script`` is the canary reader."""
    match = _READER.match(script.strip())
    return match["file"] if match else None
