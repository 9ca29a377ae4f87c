"""Rotating the audit signing key: the old checkpoints keep verifying once the retired key is named."""

from __future__ import annotations

import pytest

from audit.checkpoints import make_checkpoint
from audit.log_verify import verify_log
from audit.signing import SigningKeyError, load_signer, load_verifier
from config.settings import Settings
from storage.db import transaction
from storage.events import append_events
from storage.runtime import Runtime
from tests.fixtures.audit_log import fill, new_signer, with_key


def _rotated(runtime: Runtime, settings: Settings) -> tuple[Settings, Settings]:
    """A log checkpointed by an old key, then by a new one; the settings before and after the rotation."""
    old, new = new_signer(), new_signer()
    fill(runtime, old, [5, 9])
    rotated = with_key(settings, new)
    with transaction(runtime.sessions) as s:
        append_events(s, [("test.after", f"recording:{n}", {"n": n}) for n in range(4)])
        make_checkpoint(s, load_signer(rotated))
    with_retired = rotated.model_copy(update={"audit_retired_keys": f" {old.verifier} ,"})
    return rotated, with_retired


def test_old_checkpoints_verify_with_the_retired_key_named(runtime: Runtime, settings: Settings) -> None:
    _, with_retired = _rotated(runtime, settings)
    with transaction(runtime.sessions) as s:
        report = verify_log(s, load_verifier(with_retired))
    assert report.ok, report.finding
    assert (report.events, report.checkpoints) == (13, 3)


def test_without_the_retired_key_the_old_checkpoints_are_reported(runtime: Runtime, settings: Settings) -> None:
    rotated, _ = _rotated(runtime, settings)
    with transaction(runtime.sessions) as s:
        report = verify_log(s, load_verifier(rotated))
    assert not report.ok
    assert report.finding is not None and "signature" in report.finding.message


def test_a_retired_key_must_be_readable_and_carry_the_logs_name(settings: Settings) -> None:
    current = with_key(settings, new_signer())
    with pytest.raises(SigningKeyError, match="unreadable"):
        load_verifier(current.model_copy(update={"audit_retired_keys": "not-a-key"}))
    stranger = new_signer("other.example/audit").verifier
    with pytest.raises(SigningKeyError, match="not the log's"):
        load_verifier(current.model_copy(update={"audit_retired_keys": str(stranger)}))
