"""What an audit accepts before its verdict: waivers (accepted risks) and a baseline (failures already known).

Both are read before the estate, so a malformed file stops the run (exit 2) before minutes of live reading, and both
are applied to the findings in one place, after the checks and before the report: the verdict (auditor.report.model
verdict_of) then leaves every accepted finding out, and every renderer shows the markers the findings carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from auditor.baseline import Baseline, load_baseline, mark_baselined
from auditor.config import AuditConfig
from auditor.model import CheckMeta, Finding
from auditor.report.model import BaselineSource, Gating, WaiverSource
from auditor.waivers import META as WAIVERS_META
from auditor.waivers import WaiverFile, apply_waivers, load_waivers


@dataclass(frozen=True)
class Gate:
    waivers: WaiverFile | None = None
    waivers_disabled: bool = False  # --no-waivers: an auditor's view, every finding judged as it is
    ignored_file: Path | None = None  # the waivers file --no-waivers left unread
    baseline: Baseline | None = None

    @classmethod
    def load(
        cls,
        config: AuditConfig,
        *,
        waivers: Path | None = None,
        no_waivers: bool = False,
        baseline: Path | None = None,
    ) -> Gate:
        """The gate of one audit: ``waivers`` (else the config's) unless ``no_waivers``, and ``baseline``."""
        path = waivers or config.waivers
        known = load_baseline(baseline) if baseline else None
        if no_waivers:
            return cls(waivers_disabled=True, ignored_file=path, baseline=known)
        return cls(waivers=load_waivers(path) if path else None, baseline=known)

    def apply(self, findings: list[Finding], now: datetime) -> list[Finding]:
        if self.waivers is not None:
            findings = apply_waivers(findings, self.waivers, now)
        if self.baseline is not None:
            findings = mark_baselined(findings, self.baseline)
        return findings

    def checks(self) -> list[CheckMeta]:
        """The review of the waivers file is reported like a check, so its findings have a description."""
        return [WAIVERS_META] if self.waivers is not None else []

    def record(self) -> Gating:
        """What report.json says under ``gating``."""
        if self.waivers is not None:
            w = self.waivers
            waiver_source = WaiverSource(str(w.path), w.sha256, disabled=False, count=len(w.entries))
        elif self.waivers_disabled:
            waiver_source = WaiverSource(str(self.ignored_file) if self.ignored_file else None, None, True, 0)
        else:
            waiver_source = None
        b = self.baseline
        baseline_source = BaselineSource(str(b.path), b.sha256, b.generated_at, len(b.identities)) if b else None
        return Gating(waivers=waiver_source, baseline=baseline_source)

    def input_digests(self) -> dict[str, str]:
        """The files read, for the provenance's list of inputs (as config: and evidence: are)."""
        digests = {}
        if self.waivers is not None:
            digests[f"waivers:{self.waivers.path}"] = self.waivers.sha256
        if self.baseline is not None:
            digests[f"baseline:{self.baseline.path}"] = self.baseline.sha256
        return digests
