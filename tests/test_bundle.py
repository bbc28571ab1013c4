"""The evidence bundle: OUT/manifest.json, its Ed25519 signature, and `drauditor verify` finding every tampering."""

from __future__ import annotations

import base64
import json
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from helpers import SAMPLES
from pypdf import PdfReader

from auditor import signing
from auditor.bundle import verify, write_manifest
from auditor.cli import main
from auditor.provenance import file_sha256
from auditor.report.model import Report
from auditor.report.pdf import write_pdf

REPORT_FILES = ("report.html", "report.json", "report.junit.xml", "report.pdf")


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    result = invoke("keygen", "--out", tmp_path_factory.mktemp("keys"))
    assert result.exit_code == 0, result.output
    folder = Path(result.output.split("private key: ")[1].split(" ")[0]).parent
    return folder / signing.PRIVATE_KEY_FILE, folder / signing.PUBLIC_KEY_FILE


@pytest.fixture(scope="module")
def signed_bundle(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> Path:
    """One signed audit of the healthy sample; tests tamper with copies of it."""
    out = tmp_path_factory.mktemp("bundle") / "out"
    result = invoke("audit", "--snapshot", SAMPLES / "healthy", "--output-dir", out, "--sign-key", keys[0])
    assert result.exit_code in (0, 1), result.output  # ready or not: the bundle is the subject here
    assert f"Manifest: {out / 'manifest.json'}, signed by sha256:" in result.output
    return out


@pytest.fixture
def bundle(signed_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(signed_bundle, tmp_path / "out"))


def unsigned(out: Path) -> Path:
    """The bundle as an unsigned audit writes it: the manifest rewritten without a key (the signature removed)."""
    written = [out / name for name in REPORT_FILES]
    write_manifest(out, written, Report.from_json(json.loads((out / "report.json").read_text())))
    return out


def verify_cli(out: Path, *extra: str | Path):
    return invoke("verify", out, *extra)


def failed_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("FAILED ")]


def test_manifest_lists_every_report_file_with_digest_and_size(signed_bundle: Path) -> None:
    manifest = json.loads((signed_bundle / "manifest.json").read_text())
    report = json.loads((signed_bundle / "report.json").read_text())
    assert manifest["schema"] == "drauditor.manifest/v1"
    assert manifest["report"] == {k: report[k] for k in ("schema", "verdict", "generated_at")}
    assert [f["path"] for f in manifest["files"]] == list(REPORT_FILES)
    for entry in manifest["files"]:
        path = signed_bundle / entry["path"]
        assert entry["sha256"] == file_sha256(path) and entry["size"] == path.stat().st_size


def test_the_signature_is_a_plain_ed25519_signature_over_the_manifest_bytes(
    signed_bundle: Path, keys: tuple[Path, Path]
) -> None:
    # Checked with the cryptography API directly, as anyone without drauditor would.
    public = load_pem_public_key(keys[1].read_bytes())
    public.verify(
        base64.b64decode((signed_bundle / "manifest.json.sig").read_text()),
        (signed_bundle / "manifest.json").read_bytes(),
    )
    declared = json.loads((signed_bundle / "manifest.json").read_text())["signature"]
    assert declared["algorithm"] == "ed25519"
    assert declared["public_key_sha256"] == signing.fingerprint(signing.load_public_key(keys[1]))


def test_an_intact_signed_bundle_verifies_with_its_public_key(signed_bundle: Path, keys: tuple[Path, Path]) -> None:
    result = verify_cli(signed_bundle, "--public-key", keys[1])
    assert result.exit_code == 0, result.output
    assert failed_lines(result) == []
    for name in REPORT_FILES:
        assert f"ok     {signed_bundle}/{name}: sha256 {file_sha256(signed_bundle / name)}" in result.output
    assert "manifest.json.sig: valid signature by key sha256:" in result.output
    assert "report.pdf: embeds report.json byte for byte" in result.output


def test_an_intact_bundle_verifies_without_a_key_and_says_the_key_is_not_trusted(signed_bundle: Path) -> None:
    result = verify_cli(signed_bundle)
    assert result.exit_code == 0, result.output
    assert "give --public-key to trust it" in result.output


def _append(name: str) -> Callable[[Path], None]:
    return lambda out: (out / name).write_bytes((out / name).read_bytes() + b" ")


def _other_verdict(report_json: str) -> str:
    report = json.loads(report_json)
    report["verdict"] = "not-ready" if report["verdict"] == "ready" else "ready"
    return json.dumps(report, indent=2) + "\n"


def _edit_json(out: Path) -> None:
    (out / "report.json").write_text(_other_verdict((out / "report.json").read_text()))


def _flip_pdf_byte(out: Path) -> None:
    data = bytearray((out / "report.pdf").read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / "report.pdf").write_bytes(bytes(data))


def _edit_manifest_digest(out: Path) -> None:
    path = out / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"][0]["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def _forge_signature(out: Path) -> None:
    other = signing.load_private_key(signing.generate(out.parent / "other-key")[0])
    (out / "manifest.json.sig").write_bytes(signing.sign(other, (out / "manifest.json").read_bytes()))


# (what is tampered with, how, the problem lines verify must print: each a prefix of one FAILED line)
def _add_nested_file(out: Path) -> None:
    (out / "sub").mkdir()
    (out / "sub" / "a.json").write_text("{}")


SIGNATURE_BROKEN = "manifest.json.sig: the signature does not match manifest.json"
TAMPERING = [
    (
        "report.json",
        _edit_json,
        ["report.json: changed", "report.pdf: the embedded report.json differs", "manifest.json: report verdict"],
    ),
    ("report.junit.xml", _append("report.junit.xml"), ["report.junit.xml: changed"]),
    ("report.html", _append("report.html"), ["report.html: changed"]),
    ("report.pdf", _flip_pdf_byte, ["report.pdf: changed"]),
    ("manifest.json", _edit_manifest_digest, [SIGNATURE_BROKEN, "report.html: changed"]),
    ("manifest.json.sig", _forge_signature, [SIGNATURE_BROKEN]),
    ("deleted signature", lambda out: (out / "manifest.json.sig").unlink(), ["manifest.json.sig: missing"]),
    ("added file", lambda out: (out / "notes.txt").write_text("x"), ["notes.txt: not in manifest.json"]),
    ("added nested file", _add_nested_file, ["sub/a.json: not in manifest.json"]),
    ("deleted file", lambda out: (out / "report.junit.xml").unlink(), ["report.junit.xml: missing"]),
    ("deleted manifest", lambda out: (out / "manifest.json").unlink(), ["manifest.json: missing"]),
    ("garbled manifest", lambda out: (out / "manifest.json").write_text("{not json"), ["manifest.json: unreadable"]),
]


@pytest.mark.parametrize(("artifact", "tamper", "expected"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_verify_names_every_tampered_artifact_and_exits_1(
    bundle: Path, artifact: str, tamper: Callable[[Path], None], expected: list[str]
) -> None:
    assert verify_cli(bundle).exit_code == 0  # the copy is intact before the change
    tamper(bundle)
    result = verify_cli(bundle)
    assert result.exit_code == 1, result.output
    problems = failed_lines(result)
    for line in expected:
        assert any(p.startswith(f"FAILED {bundle}/{line}") for p in problems), (line, problems)


def test_a_swapped_pdf_attachment_is_found_even_when_the_manifest_was_updated_to_match(bundle: Path) -> None:
    """Someone re-renders report.pdf around a different report.json and fixes up the (unsigned) manifest."""
    unsigned(bundle)
    forged = bundle.parent / "forged.json"
    forged.write_text(_other_verdict((bundle / "report.json").read_text()))
    report = Report.from_json(json.loads(forged.read_text()))
    write_pdf(report, bundle / "report.pdf", attachment=forged)
    write_manifest(bundle, [bundle / name for name in REPORT_FILES], report)
    assert PdfReader(bundle / "report.pdf").attachments["forged.json"] == [forged.read_bytes()]
    result = verify_cli(bundle)
    assert result.exit_code == 1
    assert failed_lines(result) == [f"FAILED {bundle}/report.pdf: has no embedded report.json"]

    # The same swap, keeping the attachment's name: the bytes differ.
    forged = forged.rename(bundle.parent / "report.json")
    write_pdf(report, bundle / "report.pdf", attachment=forged)
    write_manifest(bundle, [bundle / name for name in REPORT_FILES], report)
    result = verify_cli(bundle)
    assert result.exit_code == 1
    assert failed_lines(result) == [f"FAILED {bundle}/report.pdf: the embedded report.json differs from report.json"]


def test_a_wrong_public_key_fails(bundle: Path, tmp_path: Path) -> None:
    _, other_public = signing.generate(tmp_path / "other")
    result = verify_cli(bundle, "--public-key", other_public)
    assert result.exit_code == 1
    assert len(failed_lines(result)) == 1
    assert failed_lines(result)[0].startswith(f"FAILED {bundle}/manifest.json.sig: the manifest names signing key")


def test_a_bundle_resigned_with_another_key_fails_against_the_trusted_key(
    bundle: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """Whoever edits a report and re-signs the manifest with their own key passes only the untrusted check."""
    other = signing.load_private_key(signing.generate(tmp_path / "attacker")[0])
    _append("report.html")(bundle)
    report = Report.from_json(json.loads((bundle / "report.json").read_text()))
    write_manifest(bundle, [bundle / name for name in REPORT_FILES], report, other)
    assert verify_cli(bundle).exit_code == 0  # self-consistent...
    result = verify_cli(bundle, "--public-key", keys[1])
    assert result.exit_code == 1  # ...but not signed by the key the auditor trusts
    assert "manifest.json.sig: the manifest names signing key" in result.output


def test_a_public_key_requires_a_signature(bundle: Path, keys: tuple[Path, Path]) -> None:
    unsigned(bundle)
    assert not (bundle / "manifest.json.sig").exists()
    assert verify_cli(bundle).exit_code == 0
    result = verify_cli(bundle, "--public-key", keys[1])
    assert result.exit_code == 1
    assert failed_lines(result) == [
        f"FAILED {bundle}/manifest.json: not signed, but a public key was given to verify it with"
    ]


def test_a_signature_file_next_to_an_unsigned_manifest_is_reported(bundle: Path) -> None:
    signature = (bundle / "manifest.json.sig").read_bytes()
    unsigned(bundle)
    (bundle / "manifest.json.sig").write_bytes(signature)
    result = verify_cli(bundle)
    assert result.exit_code == 1
    assert failed_lines(result) == [
        f"FAILED {bundle}/manifest.json.sig: present, but manifest.json declares no signature"
    ]


def test_a_manifest_entry_outside_the_bundle_is_refused(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"].append({"path": "../elsewhere.txt", "sha256": "0" * 64, "size": 0})
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = verify(bundle)
    assert result.problems == [
        "manifest.json: unreadable: entry '../elsewhere.txt' does not name a report file inside the bundle"
    ]


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("signature", "forged", "signature is not a JSON object"),
        ("files", {"report.json": "x"}, "files is not a JSON array"),
        ("schema", "drauditor.manifest/v0", "not a drauditor.manifest/v1 document"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_reported_not_crashed_on(bundle: Path, key: str, value, problem: str) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest[key] = value
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert verify(bundle).problems == [f"manifest.json: unreadable: {problem}"]


def test_a_tampered_public_key_block_in_the_manifest_is_reported(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["signature"]["public_key_sha256"] = "sha256:" + "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    problems = verify(bundle).problems
    assert "manifest.json: public_key_sha256 does not match the public key it carries" in problems
    assert "manifest.json.sig: the signature does not match manifest.json" in problems


def test_an_unsigned_rerun_into_the_same_folder_removes_the_old_signature(bundle: Path) -> None:
    result = invoke("audit", "--snapshot", SAMPLES / "healthy", "--output-dir", bundle)
    assert result.exit_code in (0, 1), result.output
    assert not (bundle / "manifest.json.sig").exists()
    assert "signature" not in json.loads((bundle / "manifest.json").read_text())
    assert verify_cli(bundle).exit_code == 0


def test_usage_errors_exit_2(bundle: Path, tmp_path: Path) -> None:
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello")
    for args, message in [
        ((tmp_path / "absent",), "not a directory"),
        ((bundle, "--public-key", not_a_key), "not a PEM public key"),
        ((bundle, "--public-key", tmp_path / "absent.pem"), "cannot read the public key"),
        ((), "give a report bundle folder"),
        (("--public-key", not_a_key), "give BUNDLE too"),
    ]:
        result = invoke("verify", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output


def test_a_bad_signing_key_stops_the_audit_before_it_runs(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    out = tmp_path / "out"
    result = invoke("audit", "--snapshot", SAMPLES / "healthy", "--output-dir", out, "--sign-key", keys[1])
    assert result.exit_code == 2
    assert "not a PEM private key" in result.output
    assert not out.exists()


def test_keygen_writes_a_private_key_only_its_owner_can_read_and_never_overwrites(tmp_path: Path) -> None:
    result = invoke("keygen", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    private, public = tmp_path / signing.PRIVATE_KEY_FILE, tmp_path / signing.PUBLIC_KEY_FILE
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = signing.load_private_key(private)
    assert signing.fingerprint(key.public_key()) == signing.fingerprint(signing.load_public_key(public))
    assert f"fingerprint: {signing.fingerprint(key.public_key())}" in result.output
    before = private.read_bytes()
    again = invoke("keygen", "--out", tmp_path)
    assert again.exit_code == 2 and "already exists" in again.output
    assert private.read_bytes() == before


def test_verify_history_reports_the_store_alongside_the_bundle(bundle: Path, tmp_path: Path) -> None:
    store = tmp_path / "evidence.db"
    assert invoke("evidence", "import", "--store", store, SAMPLES / "healthy" / "drills.json").exit_code == 0
    result = invoke("verify", bundle, "--history", store)
    assert result.exit_code == 0, result.output
    assert f"ok     {store}: history intact" in result.output
    assert invoke("verify", "--history", tmp_path / "absent.db").exit_code == 2
