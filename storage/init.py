"""``bwc init``: everything a fresh installation needs, idempotent."""

from __future__ import annotations

from collections.abc import Iterator

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.settings import Settings, mask_url
from storage.db import database_errors, make_engine
from storage.leftovers import clean_leftovers
from storage.migrate import upgrade
from storage.objects import open_store
from storage.runtime import build_runtime


def initialize(settings: Settings) -> Iterator[str]:
    """Create folders, migrate, prepare the store and the signing key; yields one line per step."""
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.inbox_path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    try:
        with database_errors(settings.db_url):
            upgrade(engine)
    finally:
        engine.dispose()
    yield f"database ready: {mask_url(settings.db_url)}"
    open_store(settings.store_url).ensure_ready()
    yield f"object store ready: {mask_url(settings.store_url)}"
    rt = build_runtime(settings)
    try:
        yield clean_leftovers(rt).summary()
    finally:
        rt.close()
    yield f"signing key: {ensure_signing_key(settings)}"
    yield f"inbox: {settings.inbox_path}"


def ensure_signing_key(settings: Settings) -> str:
    """Create the Ed25519 audit signing key once, and only for the embedded default; never replace one.

    With a server database every replica must sign with the one key the settings give (``BWC_SIGNING_KEY``
    or a file at ``BWC_SIGNING_KEY_PATH``), so none is made up here: a per-replica key would split the log.
    """
    if settings.signing_key is not None:
        return "from BWC_SIGNING_KEY"
    path = settings.signing_key_path
    assert path is not None
    if path.exists():
        return f"{path} (kept)"
    if not settings.db_url.startswith("sqlite"):
        return (
            f"MISSING at {path}: set BWC_SIGNING_KEY or BWC_SIGNING_KEY_PATH to the key all replicas share "
            "(no checkpoints are signed without it)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with open(path, "xb") as f:
        f.write(pem)
    path.chmod(0o600)
    return f"{path} (created)"
