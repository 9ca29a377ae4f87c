"""The audit log's one signing key, from the settings (SPEC §9).

Every replica must sign with the same key, so it comes from the settings: ``BWC_SIGNING_KEY`` (the key as
text: a PKCS#8 PEM, or Go's ``PRIVATE+KEY+<name>+<id>+<base64>`` signer form) or the file at
``BWC_SIGNING_KEY_PATH`` (the same forms). The key's name is ``BWC_AUDIT_ORIGIN``. Error messages name where
the key was looked for, never its content.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.notes import NoteError, Signer, Verifier, parse_signer
from config.errors import BwcError
from config.settings import Settings


class SigningKeyError(BwcError):
    """The audit signing key is missing or unreadable: no checkpoint can be made."""

    code = "signing_key_unavailable"
    status = 503


def load_signer(settings: Settings) -> Signer:
    """The audit log's signer: the configured Ed25519 key, named for the log's origin."""
    if settings.signing_key is not None:
        return _parse(settings.signing_key.get_secret_value().encode(), "BWC_SIGNING_KEY", settings.audit_origin)
    path = settings.signing_key_path
    assert path is not None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(
            f"no audit signing key at {path} ({exc.strerror}): set BWC_SIGNING_KEY or BWC_SIGNING_KEY_PATH "
            "to the one key all replicas share (`bwc init` creates one only for the embedded default)"
        ) from None
    return _parse(data, str(path), settings.audit_origin)


def load_verifier(settings: Settings) -> Verifier:
    """The public half of the configured key: what checks checkpoints."""
    return load_signer(settings).verifier


def _parse(data: bytes, where: str, name: str) -> Signer:
    text = data.decode("utf-8", "replace").strip()
    if text.startswith("PRIVATE+KEY+"):
        try:
            signer = parse_signer(text)
        except NoteError as exc:
            raise SigningKeyError(f"the audit signing key in {where} is unreadable: {exc.message}") from None
        if signer.name != name:
            raise SigningKeyError(f"the audit signing key in {where} is named {signer.name!r}, not {name!r}")
        return signer
    try:
        key = serialization.load_pem_private_key(data.strip() + b"\n", password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"the audit signing key in {where} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"the audit signing key in {where} is not an Ed25519 key")
    return Signer(name, key)
