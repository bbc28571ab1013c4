"""No secret reaches a report, a capture, a terminal or a log.

Unique canary strings are planted wherever an estate really keeps secrets: Secret data and stringData (Ramen's S3
keys, a cloud-init Secret, an SSH key), cloud-init user and network data inline in VirtualMachines and
VirtualMachineInstances (plain and base64, NoCloud and ConfigDrive), kubectl's last-applied-configuration annotation
(which copies whole manifests), and a kubeconfig's bearer token, client key and server password. Every output is then
searched for each canary and its base64 form: every file the audit writes (the PDF's raw bytes, extracted text,
metadata, bookmarks and embedded report.json included), the evidence store, a capture of the loaded estate, the
terminal output, every log record and warning. A control canary, planted where the report must show it, proves the
search finds what is there.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import SAMPLES
from loopback import recording_server
from pypdf import PdfReader
from sample_edit import add, condition, copy_sample, edit, volume

from auditor.capture import write_snapshot
from auditor.cli import main
from auditor.evidence_io import import_json
from auditor.inventory import Inventory, redaction_marker
from auditor.snapshot import load_snapshot

SECRET_FIELDS = (
    "s3-access-key",
    "s3-secret-key",
    "ssh-private-key",
    "cloud-init-secret",
    "user-data",
    "network-data",
    "user-data-base64",
    "network-data-base64",
    "config-drive-user-data",
    "config-drive-network-data-base64",
    "last-applied-drpc",
    "last-applied-vm",
)


def canaries(*names: str) -> dict[str, str]:
    run = uuid.uuid4().hex
    return {name: f"drauditor-canary-{name}-{run}" for name in names}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def texts_of(folder: Path) -> Iterator[tuple[str, str]]:
    """(where, text) for every file under ``folder``: its bytes, and for a PDF also what a reader shows of it."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        yield str(path), path.read_bytes().decode("latin-1")
        if path.suffix == ".pdf":
            reader = PdfReader(path)
            yield f"{path} text", "\n".join(page.extract_text() for page in reader.pages)
            yield f"{path} metadata", json.dumps({k: str(v) for k, v in (reader.metadata or {}).items()})
            yield f"{path} outline", repr(reader.outline)
            for name, contents in reader.attachments.items():
                yield f"{path} attachment {name}", b"".join(contents).decode("latin-1")


def leaks(secrets: dict[str, str], outputs: list[tuple[str, str]]) -> list[str]:
    """Where a secret, or its base64 form, was found."""
    return [
        f"{name} ({form}) in {where}"
        for name, secret in secrets.items()
        for form, needle in (("plain", secret), ("base64", b64(secret)))
        for where, text in outputs
        if needle in text
    ]


def _plant(root: Path, secret: dict[str, str], control: str) -> None:
    add(
        root / "hub/ramen-s3-secret.yaml",
        {  # what Ramen's S3 store profiles reference: s3SecretRef -> AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "ramen-s3-secret", "namespace": "ramen-system"},
            "type": "Opaque",
            "data": {
                "AWS_ACCESS_KEY_ID": b64(secret["s3-access-key"]),
                "AWS_SECRET_ACCESS_KEY": b64(secret["s3-secret-key"]),
            },
        },
    )
    add(
        root / "clusters/prod-east/secrets.yaml",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "billing-ssh", "namespace": "billing", "labels": {"app": "billing"}},
            "type": "kubernetes.io/ssh-auth",
            "stringData": {"ssh-privatekey": secret["ssh-private-key"]},
        },
    )
    edit(
        root / "clusters/prod-east/vm-secrets.yaml",
        "Secret",
        "crm-web-cloudinit",
        lambda s: s["data"].update(userdata=b64(f"#cloud-config\npassword: {secret['cloud-init-secret']}\n")),
    )
    east = root / "clusters/prod-east"
    for kind in ("VirtualMachine", "VirtualMachineInstance"):
        edit(
            east / "billing.yaml",
            kind,
            "billing-db",
            lambda vm: volume(vm, "cloudinitdisk").update(
                cloudInitNoCloud={
                    "userData": f"#cloud-config\nchpasswd:\n  list: root:{secret['user-data']}\n",
                    "networkData": f"version: 2\n# {secret['network-data']}\n",
                }
            ),
        )
        edit(
            east / "crm.yaml",
            kind,
            "crm-web",
            lambda vm: volume(vm, "cloudinitdisk").update(
                cloudInitConfigDrive={
                    "userData": f"#cloud-config\npassword: {secret['config-drive-user-data']}\n",
                    "networkDataBase64": b64(secret["config-drive-network-data-base64"]),
                }
            ),
        )
    edit(
        east / "billing.yaml",
        "VirtualMachine",
        "billing-app",
        lambda vm: volume(vm, "cloudinitdisk").update(
            cloudInitNoCloud={
                "userDataBase64": b64(f"#cloud-config\npassword: {secret['user-data-base64']}\n"),
                "networkDataBase64": b64(secret["network-data-base64"]),
            }
        ),
    )

    def applied_vm(vm: dict) -> None:
        manifest = {**vm, "stringData": {"password": secret["last-applied-vm"]}}
        vm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(manifest)

    edit(east / "erp.yaml", "VirtualMachine", "erp-ledger", applied_vm)

    def drpc(obj: dict) -> None:
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
            {"kind": "Secret", "stringData": {"token": secret["last-applied-drpc"]}}
        )
        condition(obj, "Protected").update(status="False", reason="Control", message=control)

    edit(root / "hub/apps/billing.yaml", "DRPlacementControl", "billing-drpc", drpc)


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    secret = canaries(*SECRET_FIELDS)
    control = canaries("control")["control"]
    root = copy_sample("healthy", tmp_path / "estate")
    _plant(root, secret, control)
    return root, secret, control


def test_the_loaded_estate_keeps_the_fields_but_not_the_values(planted) -> None:
    root, secret, _ = planted
    estate = load_snapshot(root)
    east = estate.clusters["prod-east"]
    vm = east.get("VirtualMachine", "billing-db", "billing")
    planted_user_data = f"#cloud-config\nchpasswd:\n  list: root:{secret['user-data']}\n"
    assert volume(vm, "cloudinitdisk")["cloudInitNoCloud"]["userData"] == redaction_marker(planted_user_data)
    assert volume(east.get("VirtualMachineInstance", "crm-web", "crm"), "cloudinitdisk")["cloudInitConfigDrive"] == {
        "userData": redaction_marker(f"#cloud-config\npassword: {secret['config-drive-user-data']}\n"),
        "networkDataBase64": redaction_marker(b64(secret["config-drive-network-data-base64"])),
    }
    ledger = east.get("VirtualMachine", "erp-ledger", "erp")
    assert "kubectl.kubernetes.io/last-applied-configuration" not in ledger["metadata"]["annotations"]
    assert ledger["metadata"]["annotations"]  # the other annotations stay
    assert set(estate.hub.get("Secret", "ramen-s3-secret", "ramen-system")) == {"apiVersion", "kind", "metadata"}
    assert east.get("Secret", "billing-ssh", "billing")["metadata"]["labels"] == {"app": "billing"}


def test_redaction_copies_instead_of_changing_what_a_source_passes_in() -> None:
    user_data = "#cloud-config\npassword: hunter2\n"
    vm = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            "name": "vm",
            "namespace": "app",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"},
        },
        "spec": {"template": {"spec": {"volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": user_data}}]}}},
    }
    before = copy.deepcopy(vm)
    inventory = Inventory("east")
    inventory.add(vm)
    assert vm == before  # a live source's list, or a caller's fixture, is never changed underneath it
    kept = inventory.get("VirtualMachine", "vm", "app")
    assert kept["metadata"]["annotations"] == {"keep": "me"}
    assert volume(kept, "ci") == {"name": "ci", "cloudInitNoCloud": {"userData": "<redacted by drauditor: 32 bytes>"}}


@pytest.mark.parametrize(
    "spec",
    [
        "a string",
        {"template": []},
        {"template": {"spec": {"volumes": {"ci": {"cloudInitNoCloud": {"userData": "x"}}}}}},
        {"template": {"spec": {"volumes": ["ci", {"cloudInitNoCloud": "x"}, {"cloudInitConfigDrive": None}]}}},
        {"template": {"spec": {"volumes": [{"cloudInitNoCloud": {"userData": None, "networkData": ["x"]}}]}}},
    ],
)
def test_redaction_leaves_shapes_it_does_not_know_to_the_checks(spec: object) -> None:
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm"}, "spec": spec}
    inventory = Inventory("east")
    inventory.add(vm)
    assert inventory.list("VirtualMachine")[0]["metadata"] == {"name": "vm"}


def test_snapshot_audit_capture_terminal_and_logs_hold_no_secret(planted, tmp_path: Path, caplog, recwarn) -> None:
    root, secret, control = planted
    caplog.set_level(logging.DEBUG)
    out, store, capture = tmp_path / "out", tmp_path / "evidence.db", tmp_path / "capture"
    import_json(store, SAMPLES / "healthy" / "drills.json")
    result = CliRunner().invoke(
        main, ["audit", "--snapshot", str(root), "--output-dir", str(out), "--evidence", str(store)]
    )
    assert result.exit_code == 1, result.output  # not ready: the control condition is a failure
    write_snapshot(load_snapshot(root), capture)
    outputs = [
        ("terminal", result.output),
        ("log records", caplog.text),
        ("warnings", "\n".join(str(w.message) for w in recwarn)),
        *texts_of(out),
        *texts_of(capture),
        ("evidence store", store.read_bytes().decode("latin-1")),
    ]
    assert leaks(secret, outputs) == []
    # The control: the search finds what is there, in the PDF's text and its attachment as everywhere else.
    found = {where.removeprefix(str(tmp_path)) for where, text in outputs if control in text}
    assert {"terminal", "/out/report.json", "/out/report.html", "/out/report.pdf text"} <= found
    assert any(where.startswith("/out/report.pdf attachment") for where in found)
    assert any(where.startswith("/capture/hub/") for where in found)
    # A capture still shows that the VM has cloud-init data, and how much.
    assert "<redacted by drauditor: " in (capture / "clusters/prod-east/VirtualMachine.json").read_text()


# Kubeconfigs


def kubeconfig(server: str, user: dict, contexts: tuple[str, ...] = ("hub", "east")) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": {"server": server}}],
        "users": [{"name": "auditor", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "lab", "user": "auditor"}} for name in contexts],
        "current-context": contexts[0],
    }


def live_flags(kubeconfig_path: Path) -> list[str]:
    return ["--kubeconfig", str(kubeconfig_path), "--hub-context", "hub", "--cluster", "prod-east=east"]


def credentials(secret: dict[str, str]) -> dict:
    return {
        "token": secret["token"],
        "client-certificate-data": b64(f"-----BEGIN CERTIFICATE-----\n{secret['client-cert']}\n"),
        "client-key-data": b64(f"-----BEGIN PRIVATE KEY-----\n{secret['client-key']}\n"),
    }


def not_base64(text: str) -> str:
    """``text`` padded so that base64 decoding fails (one alphabet character too many for whole quanta)."""
    alphabet = sum(c.isalnum() or c in "+/" for c in text)
    return text + "A" * ((1 - alphabet) % 4)


def broken_kubeconfigs(secret: dict[str, str]) -> dict[str, str]:
    """Kubeconfig texts that cannot be used, each holding the credentials, keyed by what is wrong."""
    good = kubeconfig("https://127.0.0.1:9", credentials(secret))
    text = yaml.safe_dump(good, sort_keys=False)

    def changed(change) -> str:
        config = json.loads(json.dumps(good))
        change(config)
        return yaml.safe_dump(config, sort_keys=False)

    return {
        "malformed YAML after the token": text.replace("current-context: hub", "current-context: [hub\n  x: }"),
        "malformed YAML on the token's line": text.replace(f"token: {secret['token']}", f"token: {secret['token']}: ]"),
        "a control character next to the token": text.replace(secret["token"], secret["token"] + "\x07"),
        "key data that is not base64": changed(
            lambda c: c["users"][0]["user"].update({"client-key-data": not_base64(secret["client-key"])})
        ),
        "a CA that is not base64": changed(
            lambda c: c["clusters"][0]["cluster"].update({"certificate-authority-data": not_base64(secret["token"])})
        ),
        "a user entry that is not a mapping": changed(lambda c: c["users"][0].update(user=secret["token"])),
        "a context naming a missing cluster": changed(lambda c: c["clusters"][0].update(name="elsewhere")),
        "no contexts": changed(lambda c: c.pop("contexts")),
    }


def test_broken_kubeconfigs_are_input_errors_that_never_echo_credentials(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    secret = canaries("token", "client-cert", "client-key")
    for problem, text in broken_kubeconfigs(secret).items():
        path = tmp_path / "kubeconfig.yaml"
        path.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(main, ["audit", *live_flags(path), "--output-dir", str(tmp_path / "out")])
        assert result.exit_code == 2, f"{problem}: {result.output}"
        assert f"kubeconfig {path}" in result.output, problem
        assert "Traceback" not in result.output, problem
        assert leaks(secret, [("terminal", result.output), ("log records", caplog.text)]) == [], problem
        assert not (tmp_path / "out").exists(), problem


def test_a_live_audit_refused_by_the_server_leaks_no_credential(tmp_path: Path, caplog, recwarn) -> None:
    """A real live read against a loopback API server that refuses every request (HTTP 401): the token is sent,
    every kind becomes an error finding, and no report, capture attempt or log names a credential."""
    caplog.set_level(logging.DEBUG)
    secret = canaries("token", "client-cert", "client-key", "server-password")
    unauthorized = json.dumps({"kind": "Status", "status": "Failure", "message": "Unauthorized", "code": 401})
    with recording_server(status=401, body=unauthorized.encode()) as server:
        config = kubeconfig(server.base, credentials(secret))
        # The hub's server URL carries a password, as a kubeconfig may: reports name the endpoint without it.
        host = server.base.removeprefix("http://")
        config["clusters"].append(
            {"name": "hub", "cluster": {"server": f"http://drauditor:{secret['server-password']}@{host}"}}
        )
        config["contexts"][0]["context"]["cluster"] = "hub"
        path = tmp_path / "kubeconfig.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        out = tmp_path / "out"
        result = CliRunner().invoke(main, ["audit", *live_flags(path), "--output-dir", str(out)])
        capture = CliRunner().invoke(main, ["capture", *live_flags(path), "--output", str(tmp_path / "capture")])
    assert result.exit_code == 3, result.output  # incomplete: nothing could be read
    assert capture.exit_code == 3, capture.output
    assert f"Bearer {secret['token']}" in server.authorizations  # the credential was really used
    outputs = [
        ("terminal", result.output),
        ("capture terminal", capture.output),
        ("log records", caplog.text),
        ("warnings", "\n".join(str(w.message) for w in recwarn)),
        *texts_of(out),
        *texts_of(tmp_path / "capture"),
    ]
    assert leaks(secret, outputs) == []
    report = json.loads((out / "report.json").read_text())
    assert any("HTTP 401" in f["message"] for f in report["findings"])  # the run did reach the server
    assert any(host in text for _, text in outputs)  # and reports name the endpoint, minus its password
