"""The one ISO time formatter: SPEC §12's ``+00:00`` form, and the audit leaf form whose bytes are hashed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage.basics import iso, iso_or_none
from storage.events import iso_utc

SHANGHAI = timezone(timedelta(hours=8))


def test_iso_is_utc_with_an_explicit_offset() -> None:
    assert iso(datetime(2024, 5, 1, 16, 30, tzinfo=SHANGHAI)) == "2024-05-01T08:30:00+00:00"
    assert iso(datetime(2024, 5, 1, 8, 30, 0, 250000, tzinfo=UTC)) == "2024-05-01T08:30:00.250000+00:00"
    assert iso_or_none(None) is None


def test_leaf_form_keeps_exactly_its_bytes() -> None:
    # These strings are inside stored Merkle leaves: any change here would break every existing proof.
    assert iso_utc(datetime(2024, 5, 1, 16, 30, tzinfo=SHANGHAI)) == "2024-05-01T08:30:00.000000Z"
    assert iso_utc(datetime(2024, 5, 1, 8, 30, 0, 7, tzinfo=UTC)) == "2024-05-01T08:30:00.000007Z"
    assert iso(datetime(2024, 5, 1, tzinfo=UTC), leaf=True) == iso_utc(datetime(2024, 5, 1, tzinfo=UTC))


def test_naive_times_are_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        iso(datetime(2024, 5, 1, 8, 30))
    with pytest.raises(ValueError, match="naive"):
        iso_utc(datetime(2024, 5, 1, 8, 30))
