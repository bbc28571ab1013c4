"""Ed25519 keys and detached signatures for the evidence bundle, through the ``cryptography`` package.

Formats are the established ones, so a bundle can be checked without drauditor: the private key is PKCS#8 PEM, the
public key SubjectPublicKeyInfo PEM, and a signature is the raw 64-byte Ed25519 signature, base64-encoded. A key's
fingerprint is ``sha256:`` + the SHA-256 of its DER SubjectPublicKeyInfo
(``openssl pkey -pubin -in KEY.pub.pem -outform DER | sha256sum``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditor.errors import InputError

PRIVATE_KEY_FILE = "drauditor-signing.key.pem"
PUBLIC_KEY_FILE = "drauditor-signing.pub.pem"


def generate(out_dir: Path) -> tuple[Path, Path]:
    """A new key pair in ``out_dir``: the private key readable by its owner only. Never overwrites a key."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / PRIVATE_KEY_FILE, out_dir / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise InputError(f"{path}: already exists; drauditor never overwrites a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created 0600 in one step: the key is never readable by others, not even between a write and a chmod.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem(key.public_key()).encode())
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the signing key: {exc.strerror or exc}") from exc
    except TypeError as exc:  # cryptography's way of saying the key is encrypted
        raise InputError(f"{path}: the signing key is encrypted; give an unencrypted PKCS#8 PEM key") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{path}: not a PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path}: a {type(key).__name__}; drauditor signs with Ed25519 keys (drauditor keygen)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        return public_key_from_pem(Path(path).read_bytes(), str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the public key: {exc.strerror or exc}") from exc


def public_key_from_pem(pem: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{where}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{where}: a {type(key).__name__}; drauditor verifies Ed25519 signatures")
    return key


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(key: Ed25519PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The contents of a detached signature file for ``data``: base64 of the raw signature, one line."""
    return base64.b64encode(key.sign(data)) + b"\n"


def signature_valid(key: Ed25519PublicKey, data: bytes, signature_file: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature_file.strip(), validate=True), data)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
