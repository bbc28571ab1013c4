"""Provenance of one audit: which tool and checks ran, with what configuration, by whom, against what, when.

An auditor has to tie a report to the run that produced it and to the evidence it read. Everything here is a name,
a time or a digest; a configuration value under a secret-looking key is replaced before it reaches the report.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.inventory import ClusterAccess, Estate
from auditor.registry import Check
from auditor.timeutil import parse_time, rfc3339

TOOL_NAME = "drauditor"
REDACTED = "[redacted]"
# Matched anywhere in a key, case-insensitively: over-redacting a harmless value costs less than leaking one.
SECRET_KEY = re.compile(r"token|password|secret|key|credential", re.IGNORECASE)


def redact(value: Any) -> Any:
    """``value`` with every non-null value under a secret-looking key (at any depth) replaced by ``REDACTED``.

    A null stays null: it tells the reader the setting was not used, and it hides nothing.
    """
    if isinstance(value, dict):
        return {
            key: REDACTED if SECRET_KEY.search(str(key)) and item is not None else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def file_sha256(path: Path) -> str:
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    module: str
    sha256: str  # of the module's file as loaded (its source, or the compiled file when shipped without source)


@dataclass(frozen=True)
class Catalog:
    """The checks that ran; ``version`` changes whenever a check is added, removed, renamed or edited."""

    version: str
    checks: tuple[CatalogEntry, ...]

    @classmethod
    def of(cls, checks: Iterable[Check]) -> Catalog:
        entries = sorted((CatalogEntry(c.meta.id, c.module, module_sha256(c.module)) for c in checks), key=_by_id)
        return cls(catalog_version(entries), tuple(entries))


def _by_id(entry: CatalogEntry) -> str:
    return entry.id


def module_sha256(module_name: str) -> str:
    """SHA-256 of a loaded module's file, read through its loader so a zipped pack hashes the same bytes."""
    module = sys.modules[module_name]
    return hashlib.sha256(module.__loader__.get_data(module.__file__)).hexdigest()


def catalog_version(entries: Iterable[CatalogEntry]) -> str:
    """``sha256:`` + SHA-256 of the compact JSON ``[[id, module, sha256], ...]`` sorted by id (docs/contract.md)."""
    rows = [[e.id, e.module, e.sha256] for e in sorted(entries, key=_by_id)]
    return "sha256:" + hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Provenance:
    tool_version: str
    catalog: Catalog
    config: dict[str, Any]  # the AuditConfig as used, redacted
    config_file: str | None
    config_sha256: str | None
    os_user: str
    host: str
    access: tuple[ClusterAccess, ...]  # live: how each cluster was reached
    source: str
    origin: str
    ceph: str
    started_at: datetime
    finished_at: datetime
    captured_at: datetime | None
    inputs: dict[str, str]  # every input read -> SHA-256: estate files or live lists, config file, evidence store

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": {"name": TOOL_NAME, "version": self.tool_version},
            "catalog": {
                "version": self.catalog.version,
                "checks": [{"id": e.id, "module": e.module, "sha256": e.sha256} for e in self.catalog.checks],
            },
            "config": {"file": self.config_file, "sha256": self.config_sha256, "values": self.config},
            "run_by": {
                "os_user": self.os_user,
                "host": self.host,
                "clusters": [{"cluster": a.cluster, "context": a.context, "user": a.user} for a in self.access],
            },
            "where": {
                "source": self.source,
                "origin": self.origin,
                "endpoints": {a.cluster: a.endpoint for a in self.access},
                "contexts": {a.cluster: a.context for a in self.access},
                "ceph": self.ceph,
            },
            "when": {
                "started_at": rfc3339(self.started_at),
                "finished_at": rfc3339(self.finished_at),
                "captured_at": rfc3339(self.captured_at) if self.captured_at else None,
            },
            "inputs": self.inputs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        run_by, where, when = data["run_by"], data["where"], data["when"]
        endpoints = where.get("endpoints") or {}
        return cls(
            tool_version=data["tool"]["version"],
            catalog=Catalog(
                data["catalog"]["version"],
                tuple(CatalogEntry(c["id"], c["module"], c["sha256"]) for c in data["catalog"]["checks"]),
            ),
            config=data["config"]["values"],
            config_file=data["config"].get("file"),
            config_sha256=data["config"].get("sha256"),
            os_user=run_by["os_user"],
            host=run_by["host"],
            access=tuple(
                ClusterAccess(c["cluster"], endpoints.get(c["cluster"], ""), c.get("context"), c.get("user"))
                for c in run_by.get("clusters") or []
            ),
            source=where["source"],
            origin=where["origin"],
            ceph=where.get("ceph", ""),
            started_at=parse_time(when["started_at"]),
            finished_at=parse_time(when["finished_at"]),
            captured_at=parse_time(when.get("captured_at")),
            inputs=data.get("inputs") or {},
        )


def os_user() -> str:
    """The login name, or the numeric uid in a container whose uid has no passwd entry (OpenShift's random uids)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def collect(
    *,
    tool_version: str,
    checks: Iterable[Check],
    config: dict[str, Any],
    config_file: Path | None,
    estate: Estate,
    evidence_store: Path | None,
    started_at: datetime,
    finished_at: datetime,
) -> Provenance:
    """Provenance of an audit of ``estate``; reads the config file and evidence store once more, to hash them."""
    inputs = dict(estate.input_digests)
    config_sha256 = file_sha256(config_file) if config_file is not None else None
    if config_file is not None:
        inputs[f"config:{config_file}"] = config_sha256
    if evidence_store is not None:
        inputs[f"evidence:{evidence_store}"] = file_sha256(evidence_store)
    return Provenance(
        tool_version=tool_version,
        catalog=Catalog.of(checks),
        config=redact(config),
        config_file=str(config_file) if config_file is not None else None,
        config_sha256=config_sha256,
        os_user=os_user(),
        host=socket.gethostname(),
        access=estate.access,
        source=estate.source,
        origin=estate.origin,
        ceph=estate.ceph.origin,
        started_at=started_at,
        finished_at=finished_at,
        captured_at=estate.captured_at,
        inputs=inputs,
    )
