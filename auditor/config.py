"""The audit configuration file: thresholds with their sources, scope, evidence store, gating."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from auditor.cadence import Cadence, parse_every
from auditor.docload import documents
from auditor.errors import InputError
from auditor.model import Severity
from auditor.webhook import HIDDEN, check_url, public_url


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

    def excludes(self, namespace: str) -> bool:
        """Whether VMs of ``namespace`` are outside the audit: the one reading every VM check uses."""
        return any(fnmatch(namespace, pattern) for pattern in self.exclude_namespaces)


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


def is_app_key(value: str) -> bool:
    """Whether ``value`` names an application as drills do: "NAMESPACE/DRPC", both parts non-empty."""
    return value.count("/") == 1 and "" not in value.split("/")


class DrillTarget(_Strict):
    """What one application's drill must achieve, and how its VM copies prove they serve."""

    rto_seconds: float | None = Field(None, gt=0)
    rpo_seconds: float | None = Field(None, ge=0)
    # A KubeVirt VirtualMachineInstance readinessProbe (e.g. {guestAgentPing: {}}, or exec/tcpSocket/httpGet) put on
    # every VM copy: the drill's last step waits for the VMI's Ready condition it drives.
    readiness_probe: dict[str, Any] | None = None


class DrillSettings(_Strict):
    """How `drauditor drill` runs, and the RTO/RPO targets per application ("namespace/drpc" keys in ``apps``)."""

    timeout_seconds: float = Field(900.0, gt=0)
    state_dir: Path | None = None  # drill journals; default: $XDG_STATE_HOME/drauditor/drills
    canary_image: str = "registry.access.redhat.com/ubi9/ubi-minimal:latest"
    canary_interval_seconds: float = Field(0.2, gt=0)
    canary_size: str = "1Gi"
    defaults: DrillTarget = DrillTarget()
    apps: dict[str, DrillTarget] = {}

    @field_validator("apps")
    @classmethod
    def _app_keys(cls, value: dict[str, DrillTarget]) -> dict[str, DrillTarget]:
        if bad := sorted(key for key in value if not is_app_key(key)):
            raise ValueError(f"keys must be NAMESPACE/DRPC: {', '.join(bad)}")
        return value

    def target_for(self, namespace: str, name: str) -> DrillTarget:
        """The application's own values where it sets them, the defaults elsewhere."""
        own = self.apps.get(f"{namespace}/{name}")
        if own is None:
            return self.defaults
        return self.defaults.model_copy(update=own.model_dump(exclude_unset=True))


class _ScheduledJob(_Strict):
    """What every job of `drauditor schedule` has: its runs go to ``<output>/<name>/<UTC timestamp>/``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a folder name, and the job in logs
    every: str  # auditor.cadence grammar
    output: Path

    @field_validator("every")
    @classmethod
    def _cadence(cls, value: str) -> str:
        parse_every(value)
        return value

    @property
    def cadence(self) -> Cadence:
        return parse_every(self.every)


class ScheduledAudit(_ScheduledJob):
    """One audit `drauditor schedule` runs."""

    snapshot: Path | None = None  # audit this snapshot directory ...
    live: bool = False  # ... or the live clusters of the config's live and ceph sections

    @model_validator(mode="after")
    def _one_source(self) -> ScheduledAudit:
        if (self.snapshot is not None) == self.live:
            raise ValueError("give exactly one source: snapshot: DIR, or live: true")
        return self


class ScheduledDrill(_ScheduledJob):
    """One drill `drauditor schedule` runs on the config's live clusters, with the config's drill settings."""

    app: str  # NAMESPACE/DRPC
    vms: tuple[str, ...] = ()  # as `drauditor drill --vm`; empty: every protected VM of the application

    @model_validator(mode="before")
    @classmethod
    def _no_force(cls, value: Any) -> Any:
        # A preflight refusal is a person's call to override (`drauditor drill --force`), never an unattended one's.
        if isinstance(value, dict) and "force" in value:
            raise ValueError("force is not available in a schedule: a refused drill is forced by hand only")
        return value

    @field_validator("app")
    @classmethod
    def _app(cls, value: str) -> str:
        if not is_app_key(value):
            raise ValueError(f"{value!r} is not NAMESPACE/DRPC")
        return value

    @field_validator("vms")
    @classmethod
    def _vms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "" in value:
            raise ValueError("a VM name is empty")
        if repeated := sorted({vm for vm in value if value.count(vm) > 1}):
            raise ValueError(f"VMs listed twice: {', '.join(repeated)}")
        return value


class Retention(_Strict):
    """Which run folders the scheduler deletes: beyond the newest ``keep_runs`` or older than ``keep_days``."""

    keep_runs: int | None = Field(None, ge=1)
    keep_days: float | None = Field(None, gt=0)


class Webhook(_Strict):
    """Where each scheduled run's summary JSON is POSTed; what authenticates it never reaches a report or log."""

    url: str
    timeout_seconds: float = Field(10.0, gt=0)
    headers: dict[str, SecretStr] = {}

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        return check_url(value)

    @field_serializer("url")
    def _public_url(self, value: str) -> str:
        return public_url(value)

    @field_serializer("headers")
    def _hidden_values(self, value: dict[str, SecretStr]) -> dict[str, str]:
        return {name: HIDDEN for name in value}


class Schedule(_Strict):
    """The `drauditor schedule` plan: audits and drills on a cadence, retention of their folders, notification, lock."""

    audits: tuple[ScheduledAudit, ...] = ()
    drills: tuple[ScheduledDrill, ...] = ()
    retention: Retention = Retention()
    webhook: Webhook | None = None
    lock_file: Path | None = None  # default: drauditor-schedule.lock in the --state-dir

    @model_validator(mode="after")
    def _jobs(self) -> Schedule:
        names = [job.name for job in self.jobs]
        if not names:
            raise ValueError("list at least one audit or drill to run")
        if repeated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"audit and drill names must be unique (their runs share a folder): {', '.join(repeated)}")
        return self

    @property
    def jobs(self) -> tuple[ScheduledAudit | ScheduledDrill, ...]:
        """Every job, audits first, each in config order (the order of `--once`)."""
        return self.audits + self.drills


class AuditConfig(_Strict):
    fail_on: Severity = Severity.INFO
    live: Live = Live()
    ceph: CephCliConfig = CephCliConfig()
    thresholds: Thresholds = Thresholds()
    scope: Scope = Scope()
    evidence: Evidence = Evidence()
    drill: DrillSettings = DrillSettings()
    schedule: Schedule | None = None  # only `drauditor schedule` reads it
    waivers: Path | None = None  # accepted risks (auditor.waivers); `audit --waivers` overrides, --no-waivers ignores


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
    if config.schedule is not None:
        config = config.model_copy(update={"schedule": _schedule_paths(config.schedule, base)})
    if config.drill.state_dir is not None and not config.drill.state_dir.is_absolute():
        drill = config.drill.model_copy(update={"state_dir": (base / config.drill.state_dir).resolve()})
        config = config.model_copy(update={"drill": drill})
    if config.waivers is not None and not config.waivers.is_absolute():
        config = config.model_copy(update={"waivers": (base / config.waivers).resolve()})
    return config


def _schedule_paths(schedule: Schedule, base: Path) -> Schedule:
    """The schedule with its snapshot, output and lock paths made absolute against the config file's folder."""

    def resolved(path: Path | None) -> Path | None:
        return path if path is None or path.is_absolute() else (base / path).resolve()

    audits = tuple(
        audit.model_copy(update={"snapshot": resolved(audit.snapshot), "output": resolved(audit.output)})
        for audit in schedule.audits
    )
    drills = tuple(drill.model_copy(update={"output": resolved(drill.output)}) for drill in schedule.drills)
    return schedule.model_copy(update={"audits": audits, "drills": drills, "lock_file": resolved(schedule.lock_file)})
