"""The audit configuration file: thresholds with their sources, scope, evidence store, gating."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.docload import documents
from auditor.errors import InputError
from auditor.model import Severity


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    rtt_ms_max: float = Field(10.0, gt=0)
    # Auditors ask where a number came from; the report prints this next to the threshold.
    rtt_ms_source: str = "OpenShift Virtualization Metro-DR documentation: at most 10 ms RTT between data sites"
    failover_test_max_age_days: int = Field(90, gt=0)
    # Async (Regional) replication lag as a multiple of the scheduling interval: Ramen's own VolumeSynchronizationDelay
    # alert grades it this way (ramen_rpo_difference > 2 warns, >= 3 is critical).
    async_lag_warn_ratio: float = Field(2.0, gt=0)
    async_lag_fail_ratio: float = Field(3.0, gt=0)
    # Share of the peer's allocatable CPU and memory kept free after the protected VMs fail over to it.
    peer_capacity_headroom_percent: float = Field(10.0, ge=0, lt=100)


class Scope(_Strict):
    exclude_namespaces: tuple[str, ...] = ()  # fnmatch globs of VM namespaces outside the audit


class Evidence(_Strict):
    path: Path | None = None  # SQLite evidence store holding drill history


class Live(_Strict):
    """Where a live audit reads from; command-line flags override these."""

    kubeconfig: Path | None = None
    hub_context: str | None = None
    clusters: dict[str, str | None] = {}  # managed cluster name (as in DRPolicy.spec.drClusters) -> context


class CephCliConfig(_Strict):
    """The live Ceph source: ``conf`` (local `ceph` CLI) or ``tools_context`` (the tools pod) turns it on."""

    conf: Path | None = None
    keyring: Path | None = None
    name: str | None = None  # client name, e.g. client.drauditor
    cluster: str | None = None
    timeout_seconds: float = Field(20.0, gt=0)
    # ODF internal mode: run the same commands in the rook-ceph-tools pod of this kubeconfig context instead
    tools_context: str | None = None
    tools_namespace: str = "openshift-storage"
    tools_selector: str = "app=rook-ceph-tools"


class AuditConfig(_Strict):
    fail_on: Severity = Severity.INFO
    live: Live = Live()
    ceph: CephCliConfig = CephCliConfig()
    thresholds: Thresholds = Thresholds()
    scope: Scope = Scope()
    evidence: Evidence = Evidence()


def load_config(path: Path | None) -> AuditConfig:
    if path is None:
        return AuditConfig()
    docs = [doc for _, doc in documents(Path(path))]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise InputError(f"{path}: expected one YAML mapping")
    try:
        config = AuditConfig.model_validate(docs[0])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise InputError(f"{path}: invalid configuration: {problems}") from exc
    # Paths in the file are relative to the file, so a config travels together with its store and kubeconfig.
    base = Path(path).parent
    if config.evidence.path is not None and not config.evidence.path.is_absolute():
        config = config.model_copy(update={"evidence": Evidence(path=(base / config.evidence.path).resolve())})
    if config.live.kubeconfig is not None and not config.live.kubeconfig.is_absolute():
        live = config.live.model_copy(update={"kubeconfig": (base / config.live.kubeconfig).resolve()})
        config = config.model_copy(update={"live": live})
    relative = {
        k: (base / v).resolve() for k in ("conf", "keyring") if (v := getattr(config.ceph, k)) and not v.is_absolute()
    }
    if relative:
        config = config.model_copy(update={"ceph": config.ceph.model_copy(update=relative)})
    return config
