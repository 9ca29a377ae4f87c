"""The audit log's one signing key, from the settings (SPEC §9).

Every replica must sign with the same key, so it comes from the settings: ``BWC_SIGNING_KEY`` (the key as
text: a PKCS#8 PEM, or Go's ``PRIVATE+KEY+<name>+<id>+<base64>`` signer form) or the file at
``BWC_SIGNING_KEY_PATH`` (the same forms). The key's name is ``BWC_AUDIT_ORIGIN``. Error messages name where
the key was looked for, never its content.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.notes import Keyring, NoteError, Signer, Verifier, parse_signer, parse_verifier
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


def load_verifier(settings: Settings) -> Keyring:
    """The public half of the configured key, plus the retired keys that signed older checkpoints."""
    current = load_signer(settings).verifier
    return Keyring(current.name, current.public_key, retired_verifiers(settings))


def retired_verifiers(settings: Settings) -> tuple[Verifier, ...]:
    """The retired keys of ``BWC_AUDIT_RETIRED_KEYS``; each must carry the log's name."""
    found = []
    for text in settings.audit_retired_keys.replace(",", " ").split():
        try:
            verifier = parse_verifier(text)
        except NoteError as exc:
            raise SigningKeyError(f"BWC_AUDIT_RETIRED_KEYS holds an unreadable key: {exc.message}") from None
        if verifier.name != settings.audit_origin:
            raise SigningKeyError(
                f"BWC_AUDIT_RETIRED_KEYS holds a key named {verifier.name!r}, not the log's {settings.audit_origin!r}"
            )
        found.append(verifier)
    return tuple(found)


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
