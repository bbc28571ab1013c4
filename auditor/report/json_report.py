"""report.json, contract section 2: the canonical machine view every other format agrees with."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.report.model import Report


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report.to_json(), indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
