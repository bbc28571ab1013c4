"""How a running drill reports itself: one event dict per thing that happened, drawn for a person or for a machine.

The runner only emits events; whether they become aligned terminal lines or JSON lines is the CLI's choice, so a
scheduled drill's log and `drill --json` carry exactly what an operator watching the terminal sees.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TextIO

from auditor.report.terminal import printable

Progress = Callable[[dict[str, Any]], None]


def json_lines(stream: TextIO) -> Progress:
    """Each event as one JSON line (flushed: a pipeline reads them while the drill runs)."""
    lock = threading.Lock()

    def emit(event: dict[str, Any]) -> None:
        with lock:
            stream.write(json.dumps(event, sort_keys=True, default=str) + "\n")
            stream.flush()

    return emit


def human_lines(stream: TextIO) -> Progress:
    """Each event as one line: elapsed seconds, the VM or phase, what happened."""
    lock = threading.Lock()

    def emit(event: dict[str, Any]) -> None:
        line = describe(event)
        if line is None:
            return
        with lock:
            stream.write(printable(line) + "\n")
            stream.flush()

    return emit


def describe(event: dict[str, Any]) -> str | None:
    kind = event.get("event")
    clock = f"[{event['seconds']:8.2f}s]" if isinstance(event.get("seconds"), int | float) else " " * 11
    if kind == "phase":
        return f"{clock} == {event['phase']}: {event.get('detail', '')}".rstrip(": ")
    if kind == "created":
        where = f"{event['namespace']}/" if event.get("namespace") else ""
        return f"{clock}    {event['cluster']}: created {event['kind']} {where}{event['name']}"
    if kind == "step":
        return f"{clock} {event['vm']}: {event['step']}"
    if kind == "vm_done":
        detail = f" ({event['error']})" if event.get("error") else ""
        rto = f", RTO {event['rto_seconds']:.2f}s" if event.get("rto_seconds") is not None else ""
        return f"{clock} {event['vm']}: {event['outcome']}{rto}{detail}"
    if kind == "rpo":
        return f"{clock} canary: RPO {event['rpo_seconds']}s (window {event['window_seconds']}s)"
    if kind == "warning":
        return f"{clock} warning: {event['message']}"
    if kind == "cleanup":
        return f"{clock} cleanup: {event['message']}"
    return None
