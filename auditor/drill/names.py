"""Names and labels every drill object carries: the one place cleanup, the guard and the planner agree on them.

A drill's objects must be findable after the process that made them is gone (SIGKILL, a lost laptop), so each is
labelled with the drill id and named predictably from it.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

SNAPSHOT_API = "snapshot.storage.k8s.io/v1"  # the CSI snapshot kinds' apiVersion
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "drauditor"
DRILL_LABEL = "drauditor.io/drill-id"
# Where a copy came from: "<cluster>/<namespace>/<name>" and the source object's UID (annotations: not selectable).
SOURCE_ANNOTATION = "drauditor.io/source"
SOURCE_UID_ANNOTATION = "drauditor.io/source-uid"
NAMESPACE_PREFIX = "drauditor-drill-"
NETWORK_POLICY = "drauditor-deny-all"
CANARY = "drauditor-canary"  # the canary PVC and its snapshots, on both clusters
CANARY_WRITER = "drauditor-canary-writer"  # pod on the primary
CANARY_READER = "drauditor-canary-reader"  # pod on the secondary
CANARY_FILE = "/canary/timestamp"

_ID = re.compile(r"^[0-9]{8}t[0-9]{6}-[0-9a-f]{6}$")


def new_drill_id(now: datetime) -> str:
    """Sortable by start time and unique: ``20261126t004512-a1b2c3`` (lowercase: it is part of a namespace name)."""
    return f"{now.strftime('%Y%m%dt%H%M%S')}-{secrets.token_hex(3)}"


def drill_started(drill_id: str) -> datetime:
    """When a drill began, read back from its id (UTC, to the second)."""
    return datetime.strptime(drill_id[:15], "%Y%m%dt%H%M%S").replace(tzinfo=UTC)


def is_drill_id(value: str) -> bool:
    return bool(_ID.match(value))


def drill_namespace(drill_id: str) -> str:
    return f"{NAMESPACE_PREFIX}{drill_id}"


def drill_labels(drill_id: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, DRILL_LABEL: drill_id}


def drill_selector(drill_id: str | None = None) -> str:
    """Label selector for one drill's objects, or (no id) for every drill's."""
    return (
        f"{MANAGED_BY_LABEL}={MANAGED_BY},{DRILL_LABEL}={drill_id}"
        if drill_id
        else f"{MANAGED_BY_LABEL}={MANAGED_BY},{DRILL_LABEL}"
    )


def source_snapshot_name(drill_id: str, pvc: str) -> str:
    """The VolumeSnapshot of a protected PVC, in the application's namespace on the primary."""
    return f"drauditor-{drill_id}-{pvc}"[:253]


def content_name(drill_id: str, namespace: str, pvc: str) -> str:
    """The pre-provisioned VolumeSnapshotContent on the secondary (cluster-scoped, hence the namespace in it)."""
    return f"drauditor-{drill_id}-{namespace}-{pvc}"[:253]
