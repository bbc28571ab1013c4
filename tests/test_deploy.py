"""deploy/ as a cluster gets it: rendered by the real kustomize (`kubectl kustomize`), created in the lab's real
Kubernetes 1.20 apiserver and read back, and run through the pod's view of the world by the real CLI.

Not exercised: a running pod. The lab has no scheduler and no kubelet, so no Job starts; instead the pod's files
(the ConfigMap and Secret volumes, the service account token the kubelet mounts) are laid out in a temp dir at the
paths the CronJob names, and `drauditor` reads the lab through them with a real service account token.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes.client.models
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from lab.launcher import Lab
from lab.loader import describe, path_of
from test_lab import differences

from auditor.cli import audit_command, main
from auditor.config import load_config
from auditor.drill import runner
from auditor.drill.cleanup import SURVEYED
from auditor.drill.guard import CREATABLE
from auditor.drill.names import drill_labels, drill_namespace, new_drill_id

Obj = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBECTL = shutil.which("kubectl")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where the kubelet mounts the pod's token and CA
JOB_NAME = "drauditor-audit-29402417"  # a CronJob's job: its name and the scheduled minute since the epoch

pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="no kubectl (kustomize) on this machine; scripts/test installs Debian's kubernetes-client"
)


@cache
def _rendered(folder: str) -> str:
    done = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY / folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"kubectl kustomize deploy/{folder} failed:\n{done.stderr}"
    return done.stdout


def render(folder: str) -> list[Obj]:
    """The objects ``kubectl kustomize deploy/<folder>`` prints (fresh copies: tests may change them)."""
    return [doc for doc in yaml.safe_load_all(_rendered(folder)) if doc]


def ident(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if ident(o) == (kind, name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def pod_spec(cronjob: Obj) -> Obj:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container(cronjob: Obj) -> Obj:
    (only,) = pod_spec(cronjob)["containers"]
    return only


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


# ---- the pod's view: its mounted files at the paths the CronJob names, under a temp root ----------------------------


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of command, args and env values."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def container_env(cronjob: Obj) -> dict[str, str]:
    """The container's environment in a pod of job ``JOB_NAME`` (plain values and the job-name label)."""
    env: dict[str, str] = {}
    for var in container(cronjob).get("env", []):
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
        elif var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['job-name']":
            env[var["name"]] = JOB_NAME  # the Job controller labels its pods job-name=<job>
    return env


class PodView:
    """A pod's filesystem as far as drauditor reads it: every volume at its mountPath, below ``root``."""

    def __init__(self, root: Path, cronjob: Obj, objects: list[Obj], secrets: dict[str, dict[str, str]]) -> None:
        self.root = root
        volumes = {v["name"]: v for v in pod_spec(cronjob)["volumes"]}
        for mount in container(cronjob)["volumeMounts"]:
            folder = self.local(mount["mountPath"])
            folder.mkdir(parents=True, exist_ok=True)
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                files = one(objects, "ConfigMap", volume["configMap"]["name"])["data"]
            elif "secret" in volume:
                files = secrets[volume["secret"]["secretName"]]
            else:  # emptyDir, persistentVolumeClaim: an empty writable folder
                files = {}
            for key, text in files.items():
                (folder / key).write_text(text)
        self.local(SA_DIR).mkdir(parents=True)

    def local(self, pod_path: str) -> Path:
        assert pod_path.startswith("/"), pod_path
        return self.root / pod_path.lstrip("/")

    def local_paths(self, pod_paths: str) -> str:
        """A colon-separated list of pod paths (KUBECONFIG) as local paths."""
        return os.pathsep.join(str(self.local(p)) for p in pod_paths.split(":"))


def option(args: list[str], name: str) -> str:
    (value,) = [arg.partition("=")[2] for arg in args if arg.startswith(f"{name}=")]
    return value


# ---- rendering: no cluster needed -----------------------------------------------------------------------------------


def test_base_deploys_the_reader_role_exactly_as_deploy_rbac_defines_it() -> None:
    objects = render("base")
    reader = [doc for doc in yaml.safe_load_all((DEPLOY / "rbac" / "reader.yaml").read_text()) if doc]
    assert [o for o in objects if ident(o) in {ident(r) for r in reader}] == reader
    assert sorted(ident(o) for o in objects) == sorted(
        [ident(r) for r in reader]
        + [
            ("ConfigMap", "drauditor-config"),
            ("CronJob", "drauditor-audit"),
            ("CronJob", "drauditor-drill"),
            ("PersistentVolumeClaim", "drauditor-reports"),
        ]
    )
    cluster_wide = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] not in cluster_wide} == {"drauditor"}


@pytest.mark.parametrize("name", ["drauditor-audit", "drauditor-drill"])
def test_each_cronjob_runs_as_the_hub_reader_unprivileged_and_one_at_a_time(name: str) -> None:
    """The drill CronJob too: on the hub a drill only reads; its writes happen on the managed clusters, with the
    identity of the kubeconfig Secret it mounts (deploy/rbac/drill.yaml there)."""
    objects = render("base")
    cronjob = one(objects, "CronJob", name)
    assert cronjob["apiVersion"] == "batch/v1"
    spec, pod, box = cronjob["spec"], pod_spec(cronjob), container(cronjob)
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    # the identity is the service account the reader role is bound to, and nothing else grants it anything
    binding = one(objects, "ClusterRoleBinding", "drauditor-reader")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": cronjob["metadata"]["namespace"]}
    ]
    assert [o for o in objects if o["kind"] in {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}] == [
        one(objects, "ClusterRole", "drauditor-reader"),
        binding,
    ]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert box["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    for bounds in ("requests", "limits"):
        assert set(box["resources"][bounds]) == {"cpu", "memory"}, bounds
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in box["volumeMounts"]}
    assert set(mounts.values()) == set(volumes), "every volume mounted, every mount a volume"
    assert "emptyDir" in volumes[mounts["/tmp"]]
    writable = {m["mountPath"] for m in box["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", "/reports"}, "the only writable paths besides the read-only root filesystem"
    claim = volumes[mounts["/reports"]]["persistentVolumeClaim"]["claimName"]
    assert one(objects, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    secret = next(v["secret"]["secretName"] for v in volumes.values() if "secret" in v)
    assert not [o for o in objects if o["kind"] == "Secret"], f"{secret} holds credentials: created by the user"


def test_the_container_runs_an_audit_the_cli_accepts_with_the_files_the_pod_has(tmp_path: Path) -> None:
    objects = render("base")
    cronjob = one(objects, "CronJob", "drauditor-audit")
    view = PodView(tmp_path, cronjob, objects, {"drauditor-managed-kubeconfig": {"kubeconfig": "{}"}})
    env = container_env(cronjob)
    args = [expand(arg, env) for arg in container(cronjob)["args"]]
    assert args[0] == "audit"
    audit_command.make_context("audit", list(args[1:]))  # raises on an unknown flag or a bad value
    assert option(args, "--output-dir") == f"/reports/runs/{JOB_NAME}"
    config = load_config(view.local(option(args, "--config")))
    assert config.evidence.path is not None and config.evidence.path.is_relative_to("/reports")
    kubeconfigs = env["KUBECONFIG"].split(":")
    assert all(view.local(path).is_file() for path in kubeconfigs), "KUBECONFIG names mounted files"
    hub = yaml.safe_load(view.local(kubeconfigs[0]).read_text())
    context = next(c["context"] for c in hub["contexts"] if c["name"] == config.live.hub_context)
    user = next(u["user"] for u in hub["users"] if u["name"] == context["user"])
    cluster = next(c["cluster"] for c in hub["clusters"] if c["name"] == context["cluster"])
    assert user == {"tokenFile": f"{SA_DIR}/token"}
    assert cluster == {"server": "https://kubernetes.default.svc", "certificate-authority": f"{SA_DIR}/ca.crt"}


def test_the_drill_cronjob_runs_a_drill_the_cli_accepts_filed_where_the_audits_read_it(tmp_path: Path) -> None:
    objects = render("base")
    cronjob, audit = one(objects, "CronJob", "drauditor-drill"), one(objects, "CronJob", "drauditor-audit")
    secret = "drauditor-drill-kubeconfig"
    view = PodView(tmp_path, cronjob, objects, {secret: {"kubeconfig": "{}"}})
    env = container_env(cronjob)
    args = [expand(arg, env) for arg in container(cronjob)["args"]]
    assert args[0] == "drill"
    main.commands["drill"].make_context("drill", list(args[1:]))  # raises on an unknown flag or a bad value
    assert "--force" not in args and "--plan" not in args
    assert option(args, "--app") == "billing/billing-drpc"  # the sample estate's application, as config.yaml's
    config = load_config(view.local(option(args, "--config")))
    assert config.drill.state_dir is not None and config.drill.state_dir.is_relative_to("/reports")
    assert config.evidence.path is not None and config.evidence.path.is_relative_to("/reports")
    # the audits' volume: their last_test_failover check and RTO trends read this drill's record from it
    assert [v for v in pod_spec(cronjob)["volumes"] if "persistentVolumeClaim" in v] == [
        v for v in pod_spec(audit)["volumes"] if "persistentVolumeClaim" in v
    ]
    assert env["KUBECONFIG"] == container_env(audit)["KUBECONFIG"]
    assert {v["secret"]["secretName"] for v in pod_spec(cronjob)["volumes"] if "secret" in v} == {secret}
    # SIGTERM at the deadline aborts the drill; its cleanup must fit in the grace period, the drill in the deadline
    pod, job = pod_spec(cronjob), cronjob["spec"]["jobTemplate"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > runner._CLEANUP_SECONDS
    assert job["activeDeadlineSeconds"] >= config.drill.timeout_seconds + runner._CLEANUP_SECONDS
    assert cronjob["spec"]["schedule"] != audit["spec"]["schedule"]


@pytest.mark.parametrize("name", ["drauditor-audit", "drauditor-drill"])
def test_the_image_is_the_project_version(name: str) -> None:
    image = container(one(render("base"), "CronJob", name))["image"]
    assert image == f"localhost/drauditor:{project_version()}"


def test_the_kubernetes_1_20_overlay_changes_only_the_cronjob_api_version() -> None:
    base, old = render("base"), render("overlays/k8s-1.20")
    assert [ident(o) for o in old] == [ident(o) for o in base]
    for before, after in zip(base, old, strict=True):
        if before["kind"] == "CronJob":
            assert (before["apiVersion"], after["apiVersion"]) == ("batch/v1", "batch/v1beta1")
            after = {**after, "apiVersion": before["apiVersion"]}
        assert after == before


def pair_folders() -> list[str]:
    """The pair folders deploy/overlays/pairs lists, checked against the folders that exist."""
    listed = yaml.safe_load((DEPLOY / "overlays" / "pairs" / "kustomization.yaml").read_text())["bases"]
    pairs = [entry for entry in listed if not entry.startswith("../")]
    on_disk = [p.name for p in (DEPLOY / "overlays" / "pairs").iterdir() if p.is_dir()]
    assert sorted(pairs) == sorted(on_disk), "every pair folder is listed in the pairs kustomization"
    return pairs


def test_the_pairs_overlay_has_an_audit_a_drill_and_a_reports_volume_per_dr_pair() -> None:
    base, objects = render("base"), render("overlays/pairs")
    pairs = pair_folders()
    assert len(pairs) >= 3
    template = one(base, "CronJob", "drauditor-audit")
    shared = [o for o in base if o["kind"] not in {"CronJob", "PersistentVolumeClaim"}]
    assert [o for o in objects if ident(o) in {ident(s) for s in shared}] == shared, "shared objects once, unchanged"
    assert len(objects) == len(shared) + 3 * len(pairs)
    schedules, audited = set(), []
    for pair in pairs:
        cronjob = one(objects, "CronJob", f"drauditor-audit-{pair}")
        volume = one(objects, "PersistentVolumeClaim", f"drauditor-reports-{pair}")
        assert (
            cronjob["metadata"]["labels"]["app.kubernetes.io/instance"]
            == pair
            == volume["metadata"]["labels"]["app.kubernetes.io/instance"]
        )
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in pod_spec(cronjob)["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == [volume["metadata"]["name"]], f"{pair} writes to its own volume"
        args = container(cronjob)["args"]
        assert args[: len(container(template)["args"])] == container(template)["args"]
        clusters = [arg.removeprefix("--cluster=") for arg in args[len(container(template)["args"]) :]]
        assert len(clusters) == 2 and all(re.fullmatch(r"[a-z0-9-]+=[a-z0-9-]+", c) for c in clusters), clusters
        audited.append(tuple(sorted(clusters)))
        schedules.add(cronjob["spec"]["schedule"])
        # apart from its name, labels, schedule, volume and clusters, each pair runs exactly the base audit
        expected = yaml.safe_load(yaml.safe_dump(template))
        expected["metadata"] = cronjob["metadata"]
        expected["spec"]["schedule"] = cronjob["spec"]["schedule"]
        for meta in (expected["spec"]["jobTemplate"], expected["spec"]["jobTemplate"]["spec"]["template"]):
            meta["metadata"]["labels"]["app.kubernetes.io/instance"] = pair
        pod_spec(expected)["volumes"] = pod_spec(cronjob)["volumes"]
        container(expected)["args"] = args
        assert cronjob == expected, pair
        # the pair's drill: the base drill with the pair's name, volume, schedule, application and the same clusters
        drill, base_drill = one(objects, "CronJob", f"drauditor-drill-{pair}"), one(base, "CronJob", "drauditor-drill")
        base_args = container(base_drill)["args"]
        drill_args = container(drill)["args"]
        assert drill_args[: len(base_args) - 1] == base_args[:-1] and drill_args[len(base_args) - 1].startswith(
            "--app="
        )
        assert sorted(a.removeprefix("--cluster=") for a in drill_args[len(base_args) :]) == sorted(clusters)
        expected = yaml.safe_load(yaml.safe_dump(base_drill))
        expected["metadata"] = drill["metadata"]
        expected["spec"]["schedule"] = drill["spec"]["schedule"]
        for meta in (expected["spec"]["jobTemplate"], expected["spec"]["jobTemplate"]["spec"]["template"]):
            meta["metadata"]["labels"]["app.kubernetes.io/instance"] = pair
        for volume in pod_spec(expected)["volumes"]:  # the pair's reports volume, as its audit's
            if "persistentVolumeClaim" in volume:
                volume["persistentVolumeClaim"]["claimName"] = f"drauditor-reports-{pair}"
        container(expected)["args"] = drill_args
        assert drill == expected, pair
        assert drill["metadata"]["labels"]["app.kubernetes.io/instance"] == pair
        schedules.add(drill["spec"]["schedule"])
    assert len(set(audited)) == len(pairs), "each pair audits its own two clusters"
    assert len(schedules) == 2 * len(pairs), "pairs and their drills are staggered"


def model_problems(value: Any, type_name: str, path: str) -> list[str]:
    """Fields of ``value`` that the Kubernetes client's model ``type_name`` (generated from the Kubernetes OpenAPI)
    does not have, or whose JSON type differs."""
    generic = re.fullmatch(r"(?:list|List)\[(.+)\]|(?:dict|Dict)\(?\[?str, (.+?)[\])]", type_name)
    if generic and generic.group(1):
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [p for i, item in enumerate(value) for p in model_problems(item, generic.group(1), f"{path}[{i}]")]
    if generic:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not a map"]
        return [p for key, item in value.items() for p in model_problems(item, generic.group(2), f"{path}.{key}")]
    plain = {"str": str, "int": int, "bool": bool, "object": object}
    if type_name in plain:
        return [] if isinstance(value, plain[type_name]) else [f"{path}: {value!r} is not {type_name}"]
    model = getattr(kubernetes.client.models, type_name)
    if not isinstance(value, dict):
        return [f"{path}: {value!r} is not a {type_name}"]
    fields = {json_name: attr for attr, json_name in model.attribute_map.items()}
    problems = []
    for key, item in value.items():
        if key in fields:
            problems += model_problems(item, model.openapi_types[fields[key]], f"{path}.{key}")
        else:
            problems.append(f"{path}.{key}: not a field of {type_name}")
    return problems


@pytest.mark.parametrize("folder", ["base", "overlays/pairs"])
def test_every_batch_v1_cronjob_field_is_a_batch_v1_cronjob_field(folder: str) -> None:
    """The lab (1.20) cannot see batch/v1: its field names and types are checked against the client's V1CronJob;
    the lab validates the same objects as batch/v1beta1 below (the two versions share their fields)."""
    cronjobs = [o for o in render(folder) if o["kind"] == "CronJob"]
    assert cronjobs and {c["apiVersion"] for c in cronjobs} == {"batch/v1"}
    assert [p for c in cronjobs for p in model_problems(c, "V1CronJob", c["metadata"]["name"])] == []
    broken = yaml.safe_load(yaml.safe_dump(cronjobs[0]))
    container(broken)["securityContext"]["readOnlyRootFileSystem"] = True  # a typo the API would silently drop
    assert model_problems(broken, "V1CronJob", "x") == [
        "x.spec.jobTemplate.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem: "
        "not a field of V1SecurityContext"
    ]


# ---- the lab: Kubernetes 1.20 creates what kustomize renders, and the service account reads the hub ----------------


def as_v1beta1(objects: list[Obj]) -> list[Obj]:
    """What deploy/overlays/k8s-1.20 does (its test above proves it changes nothing else)."""
    return [{**o, "apiVersion": "batch/v1beta1"} if o["kind"] == "CronJob" else o for o in objects]


@pytest.fixture(scope="module")
def deployed(lab: Lab) -> Iterator[list[tuple[Obj, Obj]]]:
    """deploy/overlays/k8s-1.20 created in the hub, then every per-pair object of deploy/overlays/pairs; yields
    (object as rendered, object as the server returns it). Removed again afterwards (the lab is shared)."""
    rest = lab.rest("hub")
    resources = rest.discover()
    objects = render("overlays/k8s-1.20")
    objects += [o for o in as_v1beta1(render("overlays/pairs")) if ident(o) not in {ident(b) for b in objects}]
    created = []
    try:
        for obj in objects:
            resource = resources[(obj["apiVersion"], obj["kind"])]
            rest.request("POST", resource.collection(obj["metadata"].get("namespace")), obj)
            created.append((obj, resource))
        yield [(obj, rest.get(path_of(resource, obj))) for obj, resource in created]
    finally:
        for obj, resource in reversed(created):
            if obj["kind"] in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:  # the namespace takes the rest
                rest.request("DELETE", path_of(resource, obj))


def test_kubernetes_1_20_accepts_every_object_and_keeps_every_value(deployed: list[tuple[Obj, Obj]]) -> None:
    kinds = [obj["kind"] for obj, _ in deployed]
    assert kinds.count("CronJob") == 2 * (1 + len(pair_folders())) and "PersistentVolumeClaim" in kinds
    problems = [
        f"{describe(obj)}: {d}"
        for obj, stored in deployed
        for d in differences(obj, {**stored, "metadata": {k: stored["metadata"][k] for k in obj["metadata"]}}, "")
    ]
    assert not problems, "the apiserver dropped or changed values:\n" + "\n".join(problems)
    cronjob = next(stored for obj, stored in deployed if ident(obj) == ("CronJob", "drauditor-audit"))
    assert cronjob["apiVersion"] == "batch/v1beta1" and cronjob["spec"]["schedule"] == "17 */6 * * *"
    assert pod_spec(cronjob)["serviceAccountName"] == "drauditor-reader"
    drill = next(stored for obj, stored in deployed if ident(obj) == ("CronJob", "drauditor-drill"))
    assert drill["apiVersion"] == "batch/v1beta1" and container(drill)["args"][0] == "drill"
    assert pod_spec(drill)["terminationGracePeriodSeconds"] == 330


def test_a_typo_in_a_cronjob_is_refused_by_the_server(lab: Lab, deployed: list[tuple[Obj, Obj]]) -> None:
    """The read-back above can fail: the server validates (and would reject) what it is given."""
    rest = lab.rest("hub")
    resource = rest.discover()[("batch/v1beta1", "CronJob")]
    broken = as_v1beta1(render("base"))
    cronjob = one(broken, "CronJob", "drauditor-audit")
    cronjob["metadata"]["name"] = "drauditor-audit-typo"
    cronjob["spec"]["concurrencyPolicy"] = "Never"
    with pytest.raises(ApiException) as refused:
        rest.request("POST", resource.collection("drauditor"), cronjob)
    assert refused.value.status == 422 and "concurrencyPolicy" in refused.value.body


def capture_as(lab: Lab, tmp_path: Path, token: str) -> subprocess.CompletedProcess[str]:
    """`drauditor capture` with the audit CronJob's config and KUBECONFIG, in the pod's view of its files: the hub
    through the in-cluster kubeconfig with ``token`` as the mounted service account token, the managed clusters
    through a Secret holding the lab's admin kubeconfig."""
    objects = render("base")
    cronjob = one(objects, "CronJob", "drauditor-audit")
    view = PodView(
        tmp_path, cronjob, objects, {"drauditor-managed-kubeconfig": {"kubeconfig": lab.kubeconfig.read_text()}}
    )
    admin = yaml.safe_load(lab.kubeconfig.read_text())
    hub_api = next(c["cluster"] for c in admin["clusters"] if c["name"] == "hub")
    view.local(f"{SA_DIR}/token").write_text(token)
    view.local(f"{SA_DIR}/ca.crt").write_bytes(base64.b64decode(hub_api["certificate-authority-data"]))
    env = container_env(cronjob)
    kubeconfigs = env["KUBECONFIG"].split(":")
    # In the pod, kubernetes.default.svc is the hub's apiserver; here it is the lab's hub. Paths go to the view.
    hub = yaml.safe_load(view.local(kubeconfigs[0]).read_text())
    for entry in hub["clusters"]:
        entry["cluster"]["server"] = hub_api["server"]
        entry["cluster"]["certificate-authority"] = str(view.local(entry["cluster"]["certificate-authority"]))
    for entry in hub["users"]:
        entry["user"]["tokenFile"] = str(view.local(entry["user"]["tokenFile"]))
    view.local(kubeconfigs[0]).write_text(yaml.safe_dump(hub))
    config = view.local(option(container(cronjob)["args"], "--config"))
    drauditor = Path(sys.executable).with_name("drauditor")
    return subprocess.run(
        [str(drauditor), "capture", "--config", str(config), "--output", str(tmp_path / "snapshot")],
        env={**os.environ, "KUBECONFIG": view.local_paths(env["KUBECONFIG"])},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def service_account_token(lab: Lab, cronjob: Obj) -> str:
    """A token of the CronJob's service account from the TokenRequest API, as the kubelet gets one for a pod."""
    namespace, account = cronjob["metadata"]["namespace"], pod_spec(cronjob)["serviceAccountName"]
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    return lab.rest("hub").request("POST", path, request)["status"]["token"]


def test_the_cronjob_service_account_reads_everything_an_audit_needs_from_the_hub(
    lab: Lab, deployed: list[tuple[Obj, Obj]], tmp_path: Path
) -> None:
    cronjob = next(stored for obj, stored in deployed if ident(obj) == ("CronJob", "drauditor-audit"))
    done = capture_as(lab, tmp_path / "reader", service_account_token(lab, cronjob))
    assert done.returncode == 0, done.stderr
    assert "not captured" not in done.stderr
    # Control: the same files with a token the reader role is not bound to leave the hub unread.
    refused = capture_as(lab, tmp_path / "nobody", lab.token("lab-no-role"))
    assert refused.returncode == 3, refused.stderr
    assert re.search(r"not captured: DRPolicy on hub: .*(403|forbidden)", refused.stderr), refused.stderr
    assert "on prod-east" not in refused.stderr


# ---- deploy/rbac/drill.yaml: the drill's identity on a managed cluster -----------------------------------------------

DRILL_ACCOUNT = "system:serviceaccount:drauditor:drauditor-drill"
READS = {"get", "list", "watch"}
WRITES = {"create", "delete"}


def role_grants(role: Obj) -> set[tuple[str, str, str]]:
    """(group, resource, verb) for every rule of ``role``; wildcards and unknown verbs fail the test."""
    grants = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb) and verb in READS | WRITES, rule
                    grants.add((group, resource, verb))
    return grants


@pytest.fixture(scope="module")
def drill_identity(lab: Lab) -> Iterator[str]:
    """reader.yaml then drill.yaml applied on prod-west as deploy/README.md says; yields a drauditor-drill token.
    Removed again afterwards (the lab is shared)."""
    rest = lab.rest("prod-west")
    resources = rest.discover()
    objects = [
        doc
        for name in ("reader.yaml", "drill.yaml")
        for doc in yaml.safe_load_all((DEPLOY / "rbac" / name).read_text())
        if doc
    ]
    created = []
    try:
        for obj in objects:
            resource = resources[(obj["apiVersion"], obj["kind"])]
            rest.request("POST", resource.collection(obj["metadata"].get("namespace")), obj)
            created.append((obj, resource))
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
        path = "/api/v1/namespaces/drauditor/serviceaccounts/drauditor-drill/token"
        yield rest.request("POST", path, request)["status"]["token"]
    finally:
        for obj, resource in reversed(created):
            if obj["kind"] in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
                rest.request("DELETE", path_of(resource, obj))


def allowed(lab: Lab, verb: str, group: str, resource: str, namespace: str | None) -> bool:
    """What the apiserver's authorizer answers for the drill's service account (a SubjectAccessReview)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": DRILL_ACCOUNT,
            "groups": ["system:serviceaccounts", "system:serviceaccounts:drauditor", "system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": namespace or ""},
        },
    }
    answer = lab.rest("prod-west").request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(answer["status"].get("allowed"))


def test_the_drill_role_grants_exactly_what_the_drill_code_does_and_never_patch_or_update(
    lab: Lab, drill_identity: str
) -> None:
    """The kinds come from the drill code itself: the guard's CREATABLE (the only write path: create and delete) and
    cleanup's SURVEYED (what it lists to find residue, VMIs included); the plan reads the snapshot and storage
    classes. The role must grant those, and nothing else."""
    served = lab.rest("prod-west").discover()

    def group_resource(api_version: str, kind: str) -> tuple[str, str]:
        group = api_version.rpartition("/")[0]
        return group, served[(api_version, kind)].plural

    written = {group_resource(*kind) for kind in CREATABLE}
    read = written | {group_resource(*kind) for kind in SURVEYED}
    read |= {("snapshot.storage.k8s.io", "volumesnapshotclasses"), ("storage.k8s.io", "storageclasses")}
    role = one(
        [d for d in yaml.safe_load_all((DEPLOY / "rbac" / "drill.yaml").read_text()) if d],
        "ClusterRole",
        "drauditor-drill",
    )
    grants = role_grants(role)
    assert {(g, r) for g, r, v in grants if v in WRITES} == written
    assert grants == {(g, r, v) for g, r in written for v in WRITES} | {(g, r, v) for g, r in read for v in READS}

    # The apiserver agrees: creates and deletes anywhere (RBAC cannot confine them; the guard does), no patch/update.
    for group, resource in sorted(read):
        namespace = (
            None
            if resource in {"namespaces", "volumesnapshotcontents", "storageclasses", "volumesnapshotclasses"}
            else "billing"
        )
        for verb in sorted(READS | WRITES | {"patch", "update", "deletecollection"}):
            expected = verb in READS or (verb in WRITES and (group, resource) in written)
            assert allowed(lab, verb, group, resource, namespace) is expected, (verb, group, resource)
    for group, resource in [
        ("", "secrets"),
        ("", "configmaps"),
        ("apps", "deployments"),
        ("ramendr.openshift.io", "drplacementcontrols"),
    ]:
        assert not allowed(lab, "create", group, resource, "billing"), resource
        assert not allowed(lab, "delete", group, resource, "billing"), resource


def test_the_drill_identity_creates_and_deletes_a_drill_namespace_and_cannot_patch_it(
    lab: Lab, drill_identity: str
) -> None:
    rest = lab.rest("prod-west", token=drill_identity)
    drill_id = new_drill_id(datetime.now(UTC))
    name = drill_namespace(drill_id)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": drill_labels(drill_id)}}
    created = rest.request("POST", "/api/v1/namespaces", namespace)
    try:
        assert created["metadata"]["labels"] == drill_labels(drill_id)
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "drauditor-deny-all", "labels": drill_labels(drill_id)},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        }
        rest.request("POST", f"/apis/networking.k8s.io/v1/namespaces/{name}/networkpolicies", policy)
        with pytest.raises(ApiException) as refused:
            rest.request("PATCH", f"/api/v1/namespaces/{name}", {"metadata": {"labels": {"x": "y"}}})
        assert refused.value.status == 403
        with pytest.raises(ApiException) as refused:
            rest.request("PUT", f"/api/v1/namespaces/{name}", created)
        assert refused.value.status == 403
    finally:
        rest.request("DELETE", f"/api/v1/namespaces/{name}")
