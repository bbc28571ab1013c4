"""Moving drill records between JSON files and the evidence store (demo seeding, migrations, archives)."""

from __future__ import annotations

from pathlib import Path

from auditor.docload import parse_json
from auditor.errors import InputError
from auditor.evidence import EvidenceStore


def import_json(store_path: Path, records_path: Path) -> int:
    records = parse_json(records_path)
    if not isinstance(records, list):
        raise InputError(f"{records_path}: expected a JSON list of drill records")
    with EvidenceStore(store_path) as store:
        return store.import_records(records, str(records_path))
