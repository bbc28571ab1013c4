"""The evidence bundle: ``OUT/manifest.json`` over every report file, an optional signature, and their verification.

The manifest is written last and lists each file with its SHA-256 and size, so any change to a report, any file
added or removed afterwards is found by ``drauditor verify``. Signing covers the manifest's exact bytes, and with
them every digest it lists. The PDF carries report.json inside it; verification also checks that this embedded
copy is byte for byte the report.json next to it, so the human and the machine view cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from auditor import signing
from auditor.errors import InputError
from auditor.provenance import file_sha256
from auditor.report.model import SCHEMA as REPORT_SCHEMA
from auditor.report.model import Report
from auditor.timeutil import rfc3339

MANIFEST_SCHEMA = "drauditor.manifest/v1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
REPORT_JSON = "report.json"
REPORT_PDF = "report.pdf"


def write_manifest(out_dir: Path, files: Iterable[Path], report: Report, key: Ed25519PrivateKey | None = None) -> Path:
    """Writes OUT/manifest.json over ``files`` (all inside ``out_dir``), and its signature when ``key`` is given.

    A signature left from an earlier run into the same folder is removed when this run does not sign: it would
    otherwise stand next to a manifest it does not match.
    """
    out_dir = Path(out_dir)
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "report": {"schema": REPORT_SCHEMA, "verdict": report.verdict, "generated_at": rfc3339(report.generated_at)},
        "files": [
            {"path": path.relative_to(out_dir).as_posix(), "sha256": file_sha256(path), "size": path.stat().st_size}
            for path in sorted(Path(p) for p in files)
        ],
    }
    if key is not None:
        public = key.public_key()
        manifest["signature"] = {
            "algorithm": "ed25519",
            "file": SIGNATURE,
            "public_key_sha256": signing.fingerprint(public),
            "public_key": signing.public_pem(public),
        }
    data = (json.dumps(manifest, indent=2) + "\n").encode()
    (out_dir / MANIFEST).write_bytes(data)
    signature_path = out_dir / SIGNATURE
    if key is not None:
        signature_path.write_bytes(signing.sign(key, data))
    else:
        signature_path.unlink(missing_ok=True)
    return out_dir / MANIFEST


@dataclass
class Verification:
    """What ``verify`` found: ``problems`` (one line each, naming the file) and what was checked."""

    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(out_dir: Path, public_key: Ed25519PublicKey | None = None) -> Verification:
    """Checks a bundle; with ``public_key``, also that the manifest is signed by exactly that key.

    Raises InputError only when ``out_dir`` is not a folder; everything wrong inside it is a problem found.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: not a directory")
    result = Verification()
    manifest_path = out_dir / MANIFEST
    try:
        data = manifest_path.read_bytes()
        manifest = json.loads(data)
        entries = _entries(manifest)
    except FileNotFoundError:
        result.problems.append(f"{MANIFEST}: missing")
        return result
    except (OSError, ValueError) as exc:
        result.problems.append(f"{MANIFEST}: unreadable: {exc}")
        return result
    _check_signature(out_dir, manifest, data, public_key, result)
    _check_files(out_dir, entries, result)
    _check_report(out_dir, manifest, entries, result)
    return result


def _entries(manifest: Any) -> dict[str, dict[str, Any]]:
    """Manifest entries by path; a malformed manifest or an entry pointing outside the bundle is a ValueError."""
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise ValueError(f"not a {MANIFEST_SCHEMA} document")
    shapes = {"files": list, "report": dict, "signature": dict}
    for key, shape in shapes.items():
        if key in manifest and not isinstance(manifest[key], shape):
            raise ValueError(f"{key} is not a JSON {'array' if shape is list else 'object'}")
    entries: dict[str, dict[str, Any]] = {}
    for entry in manifest.get("files") or []:
        path = entry.get("path") if isinstance(entry, dict) else None
        parts = PurePosixPath(path).parts if isinstance(path, str) else ()
        if not parts or PurePosixPath(path).is_absolute() or ".." in parts or path in (MANIFEST, SIGNATURE):
            raise ValueError(f"entry {path!r} does not name a report file inside the bundle")
        entries[path] = entry
    return entries


def _check_signature(
    out_dir: Path, manifest: dict[str, Any], data: bytes, trusted: Ed25519PublicKey | None, result: Verification
) -> None:
    declared = manifest.get("signature")
    signature_path = out_dir / SIGNATURE
    if not declared:
        if signature_path.exists():
            result.problems.append(f"{SIGNATURE}: present, but {MANIFEST} declares no signature")
        if trusted is not None:
            result.problems.append(f"{MANIFEST}: not signed, but a public key was given to verify it with")
        return
    if not signature_path.is_file():
        result.problems.append(f"{SIGNATURE}: missing ({MANIFEST} declares a signature)")
        return
    try:
        embedded = signing.public_key_from_pem(str(declared.get("public_key", "")).encode(), MANIFEST)
    except InputError as exc:
        result.problems.append(f"{MANIFEST}: its signature block has no usable public key ({exc})")
        return
    key = trusted or embedded
    if signing.fingerprint(embedded) != declared.get("public_key_sha256"):
        result.problems.append(f"{MANIFEST}: public_key_sha256 does not match the public key it carries")
    if trusted is not None and signing.fingerprint(trusted) != signing.fingerprint(embedded):
        made_with, given = signing.fingerprint(embedded), signing.fingerprint(trusted)
        result.problems.append(f"{SIGNATURE}: the manifest names signing key {made_with}, not the given key {given}")
        return
    if not signing.signature_valid(key, data, signature_path.read_bytes()):
        result.problems.append(f"{SIGNATURE}: the signature does not match {MANIFEST}")
        return
    trust = (
        "the given public key"
        if trusted is not None
        else "the key the manifest carries (give --public-key to trust it)"
    )
    result.checked.append(f"{SIGNATURE}: valid signature by key {signing.fingerprint(key)}, {trust}")


def _check_files(out_dir: Path, entries: dict[str, dict[str, Any]], result: Verification) -> None:
    present = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file() or p.is_symlink()} - {
        MANIFEST,
        SIGNATURE,
    }
    for name in sorted(present - set(entries)):
        result.problems.append(f"{name}: not in {MANIFEST} (added after the audit)")
    for name, entry in sorted(entries.items()):
        path = out_dir / name
        if not path.is_file():
            result.problems.append(f"{name}: missing")
            continue
        try:
            digest, size = file_sha256(path), path.stat().st_size
        except OSError as exc:
            result.problems.append(f"{name}: unreadable ({exc.strerror or exc})")
            continue
        if digest != entry.get("sha256") or size != entry.get("size"):
            result.problems.append(
                f"{name}: changed (sha256 {digest}, {size} bytes; manifest: {entry.get('sha256')}, {entry.get('size')})"
            )
        else:
            result.checked.append(f"{name}: sha256 {digest}")


def _check_report(
    out_dir: Path, manifest: dict[str, Any], entries: dict[str, dict[str, Any]], result: Verification
) -> None:
    """report.json agrees with the manifest's summary of it, and the PDF embeds exactly that report.json."""
    json_path = out_dir / REPORT_JSON
    if REPORT_JSON not in entries or not json_path.is_file():
        return
    report_bytes = json_path.read_bytes()
    try:
        report = json.loads(report_bytes)
        actual = {"schema": report["schema"], "verdict": report["verdict"], "generated_at": report["generated_at"]}
    except (ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"{REPORT_JSON}: not a drauditor report ({type(exc).__name__}: {exc})")
        return
    for key, value in actual.items():
        recorded = (manifest.get("report") or {}).get(key)
        if recorded != value:
            result.problems.append(f"{MANIFEST}: report {key} {recorded!r} differs from {REPORT_JSON}'s {value!r}")
    pdf_path = out_dir / REPORT_PDF
    if REPORT_PDF not in entries or not pdf_path.is_file():
        return
    try:
        embedded = PdfReader(pdf_path).attachments.get(REPORT_JSON)
    except (PyPdfError, OSError, ValueError, KeyError, TypeError) as exc:
        result.problems.append(f"{REPORT_PDF}: cannot be read as a PDF ({type(exc).__name__}: {exc})")
        return
    if not embedded:
        result.problems.append(f"{REPORT_PDF}: has no embedded {REPORT_JSON}")
    elif embedded != [report_bytes]:
        result.problems.append(f"{REPORT_PDF}: the embedded {REPORT_JSON} differs from {REPORT_JSON}")
    else:
        result.checked.append(f"{REPORT_PDF}: embeds {REPORT_JSON} byte for byte")
