"""The live source: reads the hub and the managed clusters through the Kubernetes API, strictly read-only.

Discovery first (a kind that is not served is reported, not crashed on), then one paginated list per kind per
cluster, clusters in parallel, every request with a timeout, and retries with backoff on 429 and 5xx that honour
Retry-After. Whatever cannot be read is recorded on the inventory, so the checks that need it become error findings
while everything else is still audited.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import SERVICE_TOKEN_FILENAME

from auditor.docload import yaml_error_message
from auditor.errors import InputError
from auditor.inventory import CephData, ClusterAccess, Estate, Inventory
from auditor.kinds import HUB_KINDS, KINDS, MANAGED_KINDS, OPTIONAL_KINDS, KindInfo
from auditor.kubehttp import RequestStats, RetriesExhausted, RetryPolicy, send

PAGE_SIZE = 500
MAX_LIST_RESTARTS = 3


@dataclass(frozen=True)
class Target:
    """One cluster to read: its name in the audit and its kubeconfig context (None: the current context)."""

    name: str
    context: str | None
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class LiveOptions:
    kubeconfig: Path | None = None  # None: $KUBECONFIG or ~/.kube/config, or in-cluster inside a pod
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    attempts: int = 5  # per request, for 429, 5xx and connection failures
    backoff_seconds: float = 0.5  # first retry delay; doubles per attempt
    max_backoff_seconds: float = 30.0
    page_size: int = PAGE_SIZE
    sleep: Callable[[float], None] = time.sleep  # between retries; tests inject a recorder

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.attempts, self.backoff_seconds, self.max_backoff_seconds, self.sleep)


class ApiFailure(Exception):
    """A request the server answered with a final error (4xx other than 429)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.status = status
        self.reason = reason


class Unreachable(Exception):
    """The server did not answer usefully after every retry."""


def _in_cluster(kubeconfig: Path | None, context: str | None) -> bool:
    """A pod given no kubeconfig and no context uses its own service account."""
    return kubeconfig is None and context is None and "KUBERNETES_SERVICE_HOST" in os.environ


def api_client(kubeconfig: Path | None, context: str | None) -> ApiClient:
    """A client for one context; in-cluster configuration when running in a pod with no kubeconfig given."""
    try:
        if _in_cluster(kubeconfig, context):
            configuration = Configuration()
            kube_config.load_incluster_config(client_configuration=configuration)
            return ApiClient(configuration)
        configuration = Configuration()
        kube_config.load_kube_config(
            config_file=str(kubeconfig) if kubeconfig else None,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
        configuration.retries = False  # kubehttp.send retries, honouring Retry-After; urllib3 must not add its own
        return ApiClient(configuration)
    except yaml.YAMLError as exc:  # the parser's words and line only: a quote of the text could hold a token
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise InputError(f"kubeconfig {yaml_error_message(exc, where)}") from exc
    except (ConfigException, OSError, TypeError, ValueError, AttributeError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        what = f"context {context!r}" if context else "the current context"
        raise InputError(f"kubeconfig {where}: cannot use {what}: {exc}") from exc


def access_names(kubeconfig: Path | None, context: str | None) -> tuple[str | None, str | None]:
    """The (context, user) names ``api_client`` used, for the report's provenance: names, never a token or cert."""
    if _in_cluster(kubeconfig, context):
        return None, service_account_name(Path(SERVICE_TOKEN_FILENAME))
    contexts, current = kube_config.list_kube_config_contexts(str(kubeconfig) if kubeconfig else None)
    chosen = context or (current or {}).get("name")
    entry = next((c for c in contexts if c.get("name") == chosen), {})
    return chosen, (entry.get("context") or {}).get("user")


def service_account_name(token_file: Path) -> str | None:
    """``system:serviceaccount:<namespace>:<name>`` from the subject claim of the pod's token.

    The mounted token's path says nothing about the account's name; its JWT claims do. Only the unsigned claims are
    decoded and only the subject is kept. Without a readable subject, the namespace file next to the token still
    says whose pod this is.
    """
    try:
        payload = token_file.read_text(encoding="ascii").strip().split(".")[1]
        subject = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("sub")
    except (OSError, IndexError, ValueError, AttributeError):
        subject = None
    if isinstance(subject, str) and subject.startswith("system:serviceaccount:"):
        return subject
    try:
        namespace = token_file.with_name("namespace").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return f"a service account of namespace {namespace}" if namespace else None


class ClusterReader:
    """Reads one cluster. Never writes: every request is a GET."""

    def __init__(
        self,
        name: str,
        api: ApiClient,
        options: LiveOptions,
        stats: RequestStats,
    ) -> None:
        self.name = name
        self.api = api
        self.options = options
        self.stats = stats

    @property
    def endpoint(self) -> str:
        """The API server URL as reports and messages show it: without a user:password the kubeconfig put in it."""
        parts = urlsplit(self.api.configuration.host)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    def get(
        self, path: str, query: list[tuple[str, Any]] | None = None, accept: str = "application/json"
    ) -> dict[str, Any]:
        try:
            reply = send(
                self.api,
                self.name,
                self.stats,
                self.options.retry_policy,
                "GET",
                path,
                query=query,
                headers={"Accept": accept},
                timeout=(self.options.connect_timeout, self.options.read_timeout),
            )
        except RetriesExhausted as exc:
            raise Unreachable(str(exc)) from exc
        if not reply.ok:
            raise ApiFailure(reply.status, reply.message)
        return reply.json()

    def served(self, kinds: tuple[str, ...]) -> dict[str, tuple[KindInfo, str] | str]:
        """For each kind: (its info, the group/version to list) if served, else why not."""
        groups = {g["name"]: g for g in self.get("/apis").get("groups", [])}
        resources: dict[str, set[str]] = {}
        result: dict[str, tuple[KindInfo, str] | str] = {}
        for kind in kinds:
            info = KINDS[kind]
            if info.group and info.group not in groups:
                result[kind] = f"API group {info.group} is not served (is its operator or CRD installed?)"
                continue
            versions = [info.version] + [
                v["version"]
                for v in (groups[info.group]["versions"] if info.group else [])
                if v["version"] != info.version
            ]
            for version in versions:
                group_version = f"{info.group}/{version}" if info.group else version
                if group_version not in resources:
                    try:
                        listed = self.get(_base(info.group, version))
                    except ApiFailure as exc:
                        if exc.status != 404:
                            raise
                        listed = {}
                    resources[group_version] = {r["name"] for r in listed.get("resources", [])}
                if info.plural in resources[group_version]:
                    result[kind] = (info, version)
                    break
            else:
                result[kind] = f"{info.plural}.{info.group or 'core'} is not served (is its CRD installed?)"
        return result

    def list_all(self, info: KindInfo, version: str) -> list[dict[str, Any]]:
        """Every object of one kind across all namespaces, page by page; an expired continue restarts the list."""
        path = f"{_base(info.group, version)}/{info.plural}"
        api_version = f"{info.group}/{version}" if info.group else version
        for _ in range(MAX_LIST_RESTARTS):
            items: list[dict[str, Any]] = []
            token = ""
            try:
                while True:
                    query: list[tuple[str, Any]] = [("limit", self.options.page_size)]
                    if token:
                        query.append(("continue", token))
                    page = self.get(path, query, _METADATA_ONLY if info.metadata_only else "application/json")
                    for item in page.get("items") or []:
                        # Metadata-only items arrive as meta.k8s.io PartialObjectMetadata: name them as their kind.
                        if info.metadata_only or "apiVersion" not in item:
                            item["apiVersion"] = api_version
                        if info.metadata_only or "kind" not in item:
                            item["kind"] = info.kind
                        items.append(item)
                    token = (page.get("metadata") or {}).get("continue") or ""
                    if not token:
                        return items
            except ApiFailure as exc:
                if exc.status != 410 or not token:
                    raise
        raise Unreachable(f"the list of {info.plural} expired {MAX_LIST_RESTARTS} times while paging")


# The apiserver then lists names, labels and annotations only (server-side), so no Secret value is ever sent.
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


def _base(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def read_cluster(reader: ClusterReader, kinds: tuple[str, ...]) -> tuple[Inventory, dict[str, str]]:
    """The cluster's inventory and the SHA-256 of each kind's object list (provenance of live input)."""
    inventory = Inventory(reader.name)
    digests: dict[str, str] = {}
    try:
        served = reader.served(kinds)
    except (ApiFailure, Unreachable) as exc:
        reason = f"cannot read the API of {reader.name} at {reader.endpoint}: {exc}"
        inventory.unavailable = dict.fromkeys(kinds, reason)
        return inventory, digests
    for kind, found in served.items():
        if isinstance(found, str):
            if kind not in OPTIONAL_KINDS:
                inventory.unavailable[kind] = found
            continue
        info, version = found
        try:
            items = reader.list_all(info, version)
        except (ApiFailure, Unreachable) as exc:
            if isinstance(exc, ApiFailure) and exc.status == 404:  # served at discovery, gone by the list
                if kind not in OPTIONAL_KINDS:
                    resource = f"{info.plural}.{info.group or 'core'}"
                    inventory.unavailable[kind] = f"{resource} is not served (its CRD went away while it was read)"
                continue
            outcome = "was refused" if isinstance(exc, ApiFailure) else "failed"
            inventory.unavailable[kind] = (
                f"list {info.plural}.{info.group or 'core'} on {reader.name} {outcome} ({exc})"
            )
            continue
        for item in items:
            inventory.add(item)
        canonical = json.dumps(items, sort_keys=True, separators=(",", ":")).encode()
        digests[f"live/{reader.name}/{kind}"] = hashlib.sha256(canonical).hexdigest()
    return inventory, digests


def targets(hub_context: str | None, clusters: dict[str, str | None]) -> list[Target]:
    if not clusters:
        raise InputError("a live audit needs at least one managed cluster (--cluster NAME=CONTEXT)")
    return [Target("hub", hub_context, HUB_KINDS)] + [
        Target(name, context, MANAGED_KINDS) for name, context in sorted(clusters.items())
    ]


def load_live(
    hub_context: str | None,
    clusters: dict[str, str | None],
    options: LiveOptions | None = None,
    stats: RequestStats | None = None,
    ceph: CephData | None = None,
) -> Estate:
    options = options or LiveOptions()
    stats = stats or RequestStats()
    started = datetime.now(UTC)
    chosen = targets(hub_context, clusters)
    readers = [
        (ClusterReader(t.name, api_client(options.kubeconfig, t.context), options, stats), t.kinds) for t in chosen
    ]
    access = tuple(
        ClusterAccess(reader.name, reader.endpoint, *access_names(options.kubeconfig, t.context))
        for (reader, _), t in zip(readers, chosen, strict=True)
    )
    with ThreadPoolExecutor(max_workers=len(readers)) as pool:
        results = list(pool.map(lambda pair: read_cluster(*pair), readers))
    digests = {key: value for _, part in results for key, value in part.items()}
    inventories = {reader.name: inventory for (reader, _), (inventory, _) in zip(readers, results, strict=True)}
    origin = ", ".join(f"{reader.name}={reader.endpoint}" for reader, _ in readers)
    return Estate(
        hub=inventories.pop("hub"),
        clusters=inventories,
        ceph=ceph or CephData(origin="no Ceph outputs given (--ceph DIR)"),
        captured_at=started,
        source="live",
        origin=origin,
        input_digests=digests,
        access=access,
    )
