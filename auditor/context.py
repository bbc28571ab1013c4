"""What a check may look at. Everything here was read before the first check runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from auditor.config import AuditConfig
from auditor.evidence import DrillRecord
from auditor.inventory import Estate


@dataclass(frozen=True)
class AuditContext:
    estate: Estate
    config: AuditConfig
    drills: tuple[DrillRecord, ...]
    evidence_source: str | None  # where the drill history came from; None when no store was given
    now: datetime  # the snapshot's capturedAt, so a re-audit of old evidence gives the same answer
    now_source: str
