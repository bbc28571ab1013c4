"""Starts the Kubernetes test lab: one etcd, a real kube-apiserver v1.20.2 per cluster (a hub and two managed
clusters, isolated by etcd prefix) and a kube-controller-manager per apiserver, all on 127.0.0.1.

Binaries come from ``tests/lab/build.sh`` (cache ``$DRAUDITOR_LAB_CACHE/bin``, default
``~/.cache/drauditor-lab/bin``) or from the folder named by ``DRAUDITOR_LAB_BIN``. Every process runs in its own
session and is stopped by its PID; the kernel also stops it if the Python process dies first.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import ctypes
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient
from kubernetes.config import new_client_from_config

from .lifecycle import StartStop
from .rest import Rest

HERE = Path(__file__).resolve().parent
CRD_DIR = HERE / "crds"
CLUSTERS = ("hub", "prod-east", "prod-west")
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
ADMIN_USER = "lab-admin"
CONTROLLER_USER = "system:kube-controller-manager"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader parses the 1.6 MB of CRDs 10x faster
_LIBC = ctypes.CDLL(None, use_errno=True)  # resolved here: a forked child should only call, not load

# Admission plugins that rewrite objects on create; replayed objects must come back exactly as captured.
_MUTATING_ADMISSION = (
    "ServiceAccount,DefaultStorageClass,LimitRanger,StorageObjectInUseProtection,DefaultTolerationSeconds,"
    "TaintNodesByCondition,Priority,DefaultIngressClass,RuntimeClass"
)
# Only what a loaded estate needs: namespaces that finish deleting, and ownerReference garbage collection. The
# other controllers act on replayed objects (PVCs without a PV go Lost, replayed Nodes get tainted, ...).
_CONTROLLERS = "namespace,garbagecollector"

# The lab CRDs as etcd stores them (key below the cluster's prefix, base64 value), by digest of the CRD files.
# An apiserver that has CRDs created through it spends about 12 CPU-seconds rebuilding its OpenAPI document per
# CRD, while one that finds them in etcd at start-up spends about 2. So each process installs them once, through
# a throw-away "template" apiserver (the real validation path), and seeds every cluster's etcd prefix with the
# stored bytes before that cluster's apiserver starts.
_STORED_CRDS: dict[str, list[tuple[str, str]]] = {}
_TEMPLATE = "crd-template"


class LabUnavailable(RuntimeError):
    """The machine cannot run the lab (binaries missing); tests skip on this, nothing else."""


def bin_dir() -> Path:
    if os.environ.get("DRAUDITOR_LAB_BIN"):
        return Path(os.environ["DRAUDITOR_LAB_BIN"])
    cache = os.environ.get("DRAUDITOR_LAB_CACHE") or Path.home() / ".cache" / "drauditor-lab"
    return Path(cache) / "bin"


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if not os.access(bin_dir() / name, os.X_OK)]


def read_crds(folder: Path = CRD_DIR) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(folder.rglob("*.y*ml"))
        for doc in yaml.load_all(path.read_text(), Loader=_YAML_LOADER)
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]


@dataclass(frozen=True)
class User:
    """A bearer-token identity the apiservers accept (--token-auth-file)."""

    name: str
    groups: tuple[str, ...] = ()
    token: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass
class _Proc:
    label: str
    popen: subprocess.Popen
    log: Path
    health: str  # URL that answers 200 once the process is ready
    ca: str | None = None  # CA file for an https health URL (the apiserver writes it at start-up)


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the Python process that started it dies."""
    _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _terminate(procs: list[_Proc], grace: float = 10) -> None:
    """SIGTERM each process group, then SIGKILL whatever still runs after ``grace`` seconds."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab(StartStop):
    """A hub and managed clusters on 127.0.0.1; use as a context manager (``with Lab() as lab:``).

    Each cluster is a kube-apiserver (token authentication, RBAC authorization) with its own etcd prefix and its
    own kube-controller-manager, and every CRD of ``crd_dir`` installed. ``lab.kubeconfig`` has one context per
    cluster, named like the cluster, for the admin (group system:masters).
    """

    def __init__(
        self,
        users: Mapping[str, Iterable[str]] | None = None,
        clusters: Iterable[str] = CLUSTERS,
        crd_dir: Path = CRD_DIR,
    ) -> None:
        """``users``: extra identities (name -> groups) to accept besides the admin; tokens via ``token(name)``."""
        self.clusters = tuple(clusters)
        self.crd_dir = crd_dir
        self.users = {
            ADMIN_USER: User(ADMIN_USER, ("system:masters",)),
            CONTROLLER_USER: User(CONTROLLER_USER, ("system:masters",)),
        }
        for name, groups in (users or {}).items():
            self.users[name] = User(name, tuple(groups))
        self.run_dir: Path | None = None
        self.urls: dict[str, str] = {}
        self.etcd_url = ""
        self.timings: dict[str, float] = {}
        self._ca: dict[str, str] = {}
        self._procs: list[_Proc] = []

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        missing = missing_binaries()
        if missing:
            raise LabUnavailable(
                f"lab binaries missing in {bin_dir()}: {', '.join(missing)} "
                "(build them with tests/lab/build.sh, or point DRAUDITOR_LAB_BIN at a folder holding them)"
            )
        began = time.monotonic()
        self.run_dir = Path(tempfile.mkdtemp(prefix="drauditor-lab-"))
        subprocess.run(
            ["openssl", "genrsa", "-out", str(self.run_dir / "sa.key"), "2048"], check=True, capture_output=True
        )
        with (self.run_dir / "tokens.csv").open("w", newline="") as f:
            for user in self.users.values():  # token,user,uid,"group1,group2"
                csv.writer(f).writerow([user.token, user.name, user.name, ",".join(user.groups)])
        etcd_url = self.etcd_url = self._start_etcd()
        self.timings["etcd"] = time.monotonic() - began
        stored = self._stored_crds(etcd_url)
        self.timings["crds"] = time.monotonic() - began
        for name in self.clusters:
            for key, value in stored:
                etcd_request(etcd_url, "put", self.etcd_prefix(name) + key, value)
        for proc in [self._start_apiserver(name, etcd_url) for name in self.clusters]:
            self._wait(proc)
        self.timings["apiservers"] = time.monotonic() - began
        self._write_kubeconfig(self.kubeconfig, self.users[ADMIN_USER].token)
        for proc in [self._start_controller_manager(name) for name in self.clusters]:
            self._wait(proc)
        self.timings["total"] = time.monotonic() - began

    def stop(self) -> None:
        """Stops every started process by its process group, etcd last, then removes the run dir."""
        # An apiserver whose etcd is already gone takes 20 s to exit instead of about 1 s.
        _terminate([p for p in self._procs if p.label != "etcd"])
        _terminate([p for p in self._procs if p.label == "etcd"])
        self._procs.clear()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    # ---- access ----------------------------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig: one context per cluster, named like the cluster; current context ``hub``."""
        return self._dir() / "kubeconfig"

    def token(self, user: str) -> str:
        return self.users[user].token

    def write_kubeconfig(self, token: str, path: Path | None = None) -> Path:
        """A kubeconfig with one context per cluster that authenticates with ``token`` (valid or not)."""
        path = path or self._dir() / f"kubeconfig-{secrets.token_hex(4)}"
        self._write_kubeconfig(path, token)
        return path

    def api_client(self, cluster: str, token: str | None = None) -> ApiClient:
        """An official-client ApiClient for ``cluster``, as the admin or with ``token``."""
        path = self.kubeconfig if token is None else self.write_kubeconfig(token)
        return new_client_from_config(config_file=str(path), context=cluster)

    def rest(self, cluster: str, token: str | None = None) -> Rest:
        return Rest(self.api_client(cluster, token))

    def etcd_prefix(self, cluster: str) -> str:
        """Where ``cluster`` keeps its objects in the shared etcd (--etcd-prefix)."""
        return f"/registry-{cluster}"

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of every running lab process, by label (e.g. ``kube-apiserver/hub``)."""
        sizes = {}
        for proc in self._procs:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{proc.popen.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes[proc.label] = int(line.split()[1]) / 1024
        return sizes

    # ---- internals -------------------------------------------------------------------------------------------

    def _dir(self) -> Path:
        if self.run_dir is None:
            raise RuntimeError("the lab is not running")
        return self.run_dir

    def _spawn(self, label: str, args: list[str], health: str, ca: str | None = None) -> _Proc:
        log = self._dir() / f"{label.replace('/', '-')}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [str(bin_dir() / args[0]), *args[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        proc = _Proc(label, popen, log, health, ca)
        self._procs.append(proc)
        return proc

    def _failed(self, proc: _Proc, what: str) -> RuntimeError:
        tail = proc.log.read_text(errors="replace").splitlines()[-25:]
        return RuntimeError(f"lab: {proc.label} {what}; last log lines:\n" + "\n".join(tail))

    def _wait(self, proc: _Proc, timeout: float = 90) -> None:
        """Polls the process's health URL until it answers 200; fails early if the process exits."""
        url, ca = proc.health, proc.ca
        headers = {"Authorization": f"Bearer {self.users[ADMIN_USER].token}"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise self._failed(proc, f"exited with code {proc.popen.returncode}")
            if ca is None or Path(ca).exists():
                context = ssl.create_default_context(cafile=ca) if ca else None
                request = urllib.request.Request(url, headers=headers)
                with contextlib.suppress(OSError), urllib.request.urlopen(request, context=context, timeout=5) as r:
                    if r.status == 200:
                        return
            time.sleep(0.2)
        raise self._failed(proc, f"not ready at {url} after {timeout:.0f} s")

    def _start_etcd(self) -> str:
        client, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
        proc = self._spawn(
            "etcd",
            [
                "etcd",
                "--name=lab",
                f"--data-dir={self._dir() / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=lab={peer}",
                "--unsafe-no-fsync",
            ],
            health=f"{client}/health",
        )
        self._wait(proc)
        return client

    def _start_apiserver(self, name: str, etcd_url: str) -> _Proc:
        port = _free_port()
        cert_dir = self._dir() / name
        sa_key = self._dir() / "sa.key"
        self.urls[name] = f"https://127.0.0.1:{port}"
        self._ca[name] = str(cert_dir / "apiserver.crt")  # self-signed at start-up, valid for 127.0.0.1
        return self._spawn(
            f"kube-apiserver/{name}",
            [
                "kube-apiserver",
                f"--etcd-servers={etcd_url}",
                f"--etcd-prefix={self.etcd_prefix(name)}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                "--insecure-port=0",
                f"--cert-dir={cert_dir}",
                f"--token-auth-file={self._dir() / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                f"--disable-admission-plugins={_MUTATING_ADMISSION}",
                "--feature-gates=AnyVolumeDataSource=true",  # CDI's PVC dataSource (VolumeImportSource); alpha in 1.20
            ],
            health=f"{self.urls[name]}/readyz",
            ca=self._ca[name],
        )

    def _start_controller_manager(self, name: str) -> _Proc:
        config = self._dir() / f"kcm-{name}.kubeconfig"
        self._write_kubeconfig(config, self.users[CONTROLLER_USER].token, only=name)
        health = _free_port()  # 1.20's plain-HTTP port; it only serves /healthz and /metrics, on loopback
        return self._spawn(
            f"kube-controller-manager/{name}",
            [
                "kube-controller-manager",
                f"--kubeconfig={config}",
                f"--controllers={_CONTROLLERS}",
                "--leader-elect=false",
                "--address=127.0.0.1",
                f"--port={health}",
                "--secure-port=0",
            ],
            health=f"http://127.0.0.1:{health}/healthz",
        )

    def _write_kubeconfig(self, path: Path, token: str, only: str | None = None) -> None:
        names = [only] if only else list(self.clusters)
        ca = {name: base64.b64encode(Path(self._ca[name]).read_bytes()).decode() for name in names}
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": n, "cluster": {"server": self.urls[n], "certificate-authority-data": ca[n]}} for n in names
            ],
            "users": [{"name": "lab-user", "user": {"token": token}}],
            "contexts": [{"name": n, "context": {"cluster": n, "user": "lab-user"}} for n in names],
            "current-context": names[0],
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def _stored_crds(self, etcd_url: str) -> list[tuple[str, str]]:
        """The lab CRDs as etcd holds them, installed once per process through a throw-away apiserver."""
        crds = read_crds(self.crd_dir)
        digest = hashlib.sha256(json.dumps(crds, sort_keys=True).encode()).hexdigest()
        if digest not in _STORED_CRDS:
            proc = self._start_apiserver(_TEMPLATE, etcd_url)
            self._wait(proc)
            config = self._dir() / "template.kubeconfig"
            self._write_kubeconfig(config, self.users[ADMIN_USER].token, only=_TEMPLATE)
            _install_crds(Rest(new_client_from_config(config_file=str(config))), crds)
            _terminate([proc])
            self._procs.remove(proc)
            del self.urls[_TEMPLATE], self._ca[_TEMPLATE]
            prefix = self.etcd_prefix(_TEMPLATE)
            listed = etcd_request(
                etcd_url, "range", f"{prefix}/apiextensions.k8s.io/customresourcedefinitions/", prefix=True
            )
            _STORED_CRDS[digest] = [
                (base64.b64decode(kv["key"]).decode()[len(prefix) :], kv["value"]) for kv in listed.get("kvs", [])
            ]
            if len(_STORED_CRDS[digest]) != len(crds):
                raise RuntimeError(f"lab: etcd holds {len(_STORED_CRDS[digest])} of the {len(crds)} CRDs installed")
        return _STORED_CRDS[digest]


def _install_crds(rest: Rest, crds: list[dict[str, Any]]) -> None:
    with ThreadPoolExecutor(4) as pool:
        posts = [
            pool.submit(rest.request, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
            for crd in crds
        ]
        for post in posts:
            post.result()
    deadline = time.monotonic() + 60
    pending = {crd["metadata"]["name"] for crd in crds}
    while pending:
        for name in sorted(pending):
            got = rest.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = {c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") == "True":
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"lab: CRDs not Established after 60 s: {sorted(pending)}")
        time.sleep(0.2 if pending else 0)


def etcd_request(url: str, op: str, key: str, value: str | None = None, prefix: bool = False) -> dict[str, Any]:
    """etcd's v3 JSON gateway: ``range`` reads ``key`` (every key under it with ``prefix``), ``put`` stores
    ``value``; keys are text, values base64 as the gateway has them."""
    raw = key.encode()
    body: dict[str, str] = {"key": base64.b64encode(raw).decode()}
    if prefix:
        body["range_end"] = base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()
    if op == "put":
        body["value"] = value or ""
    request = urllib.request.Request(f"{url}/v3/kv/{op}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
