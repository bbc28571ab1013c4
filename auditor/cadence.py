"""The `every:` grammar of scheduled audits, and how each form maps onto the `schedule` library.

The grammar is deliberately small and strict, because a typo in an unattended schedule must fail when the config is
read, not silently run at another time:

    every    := INTERVAL | "day at " TIME | WEEKDAY " at " TIME
    INTERVAL := N "m" | N "h" | N "d"          N: a positive integer without a leading zero (e.g. 30m, 6h, 1d)
    TIME     := HH ":" MM                      24-hour clock, 00:00 to 23:59, the host's local time (like cron)
    WEEKDAY  := monday | tuesday | wednesday | thursday | friday | saturday | sunday

An interval runs first one interval after the scheduler starts, as the library does; `--once` runs right away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import schedule

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_TIME = r"(?:[01]\d|2[0-3]):[0-5]\d"
_INTERVAL = re.compile(r"(?P<count>[1-9]\d{0,5})(?P<unit>[mhd])")
_AT = re.compile(rf"(?P<day>day|{'|'.join(WEEKDAYS)}) at (?P<time>{_TIME})")
SYNTAX = "N followed by m, h or d (e.g. 30m, 6h, 1d), 'day at HH:MM', or '<weekday> at HH:MM' (e.g. 'monday at 06:00')"


@dataclass(frozen=True)
class Cadence:
    """One parsed `every:` value; ``day`` is "day" or a weekday for the `at` forms, None for an interval."""

    text: str
    count: int = 1
    unit: str = "days"  # a `schedule` unit: minutes, hours or days
    day: str | None = None
    time: str | None = None  # HH:MM

    def job(self, scheduler: schedule.Scheduler) -> schedule.Job:
        """An unstarted `schedule` job with this cadence; the caller gives it its function with ``.do``."""
        job = scheduler.every(self.count)
        if self.day is None:
            return getattr(job, self.unit)
        job = job.day if self.day == "day" else getattr(job, self.day)
        return job.at(self.time)


def parse_every(text: str) -> Cadence:
    """The cadence ``text`` names; ValueError (stating the grammar) for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a string; expected {SYNTAX}")
    if match := _INTERVAL.fullmatch(text):
        return Cadence(text, int(match["count"]), _UNITS[match["unit"]])
    if match := _AT.fullmatch(text):
        return Cadence(text, day=match["day"], time=match["time"])
    raise ValueError(f"{text!r} is not a schedule; expected {SYNTAX}")
