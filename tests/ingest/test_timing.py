"""Start and end times from untrusted candidates, in the SPEC §4 order."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.timing import RecordingTimes, choose_times

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
EARLIEST = datetime(2005, 1, 1)  # naive: UTC, as Settings.earliest_plausible
SHANGHAI = ZoneInfo("Asia/Shanghai")
MTIME = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def times(**overrides: Any) -> RecordingTimes:
    args: dict[str, Any] = {
        "name_start_local": None,
        "creation_time": None,
        "mtime": MTIME,
        "duration_seconds": 60.0,
        "tz": SHANGHAI,
        "now": NOW,
        "earliest": EARLIEST,
        "future_tolerance_seconds": 86400.0,
    }
    args.update(overrides)
    return choose_times(**args)


def test_file_name_comes_first_and_is_read_in_the_deployment_zone() -> None:
    got = times(
        name_start_local=datetime(2024, 5, 1, 8, 30),
        creation_time=datetime(2024, 5, 1, 7, 0, tzinfo=UTC),
    )
    assert got == RecordingTimes(
        datetime(2024, 5, 1, 0, 30, tzinfo=UTC), datetime(2024, 5, 1, 0, 31, tzinfo=UTC), "filename"
    )
    assert got.started_at is not None and got.started_at.tzinfo is UTC


def test_same_name_in_utc_deployment() -> None:
    got = times(name_start_local=datetime(2024, 5, 1, 8, 30), tz=ZoneInfo("UTC"))
    assert got.started_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


def test_container_creation_time_when_the_name_has_none() -> None:
    got = times(creation_time=datetime(2024, 5, 1, 7, 0, tzinfo=UTC), duration_seconds=2.5)
    assert got == RecordingTimes(
        datetime(2024, 5, 1, 7, 0, tzinfo=UTC), datetime(2024, 5, 1, 7, 0, 2, 500000, tzinfo=UTC), "metadata"
    )


def test_mtime_minus_duration_last() -> None:
    got = times(duration_seconds=600.0)
    assert got == RecordingTimes(MTIME - timedelta(minutes=10), MTIME, "mtime")


@pytest.mark.parametrize(
    "creation_time",
    [
        datetime(1970, 1, 1, tzinfo=UTC),  # what some cameras write for "unknown"
        datetime(2004, 12, 31, 23, 59, 59, tzinfo=UTC),  # a second before the earliest plausible
        NOW + timedelta(days=1, seconds=1),  # beyond the future tolerance
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    ],
)
def test_implausible_metadata_falls_through_to_mtime(creation_time: datetime) -> None:
    assert times(creation_time=creation_time).time_source == "mtime"


def test_implausible_name_falls_through_to_metadata() -> None:
    got = times(name_start_local=datetime(2001, 1, 1), creation_time=datetime(2024, 5, 1, 7, 0, tzinfo=UTC))
    assert got.time_source == "metadata"
    got = times(name_start_local=datetime(2030, 1, 1), creation_time=datetime(2024, 5, 1, 7, 0, tzinfo=UTC))
    assert got.time_source == "metadata"


def test_bounds_are_inclusive_and_tolerance_counts() -> None:
    assert times(creation_time=datetime(2005, 1, 1, tzinfo=UTC)).time_source == "metadata"
    assert times(creation_time=NOW + timedelta(days=1)).time_source == "metadata"
    assert times(creation_time=NOW + timedelta(seconds=1), future_tolerance_seconds=0).time_source == "mtime"


def test_aware_earliest_is_respected() -> None:
    earliest = datetime(2024, 5, 1, 8, 0, tzinfo=SHANGHAI)  # 00:00 UTC
    got = times(creation_time=datetime(2024, 4, 30, 23, 59, tzinfo=UTC), earliest=earliest)
    assert got.time_source == "mtime"


def test_nothing_plausible_gives_no_times() -> None:
    got = times(creation_time=datetime(1970, 1, 1, tzinfo=UTC), mtime=datetime(1980, 1, 1, tzinfo=UTC))
    assert got == RecordingTimes(None, None, None)


def test_naive_mtime_and_creation_time_are_utc() -> None:
    assert times(creation_time=datetime(2024, 5, 1, 7, 0)).started_at == datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
    got = times(mtime=datetime(2024, 5, 1, 9, 0), duration_seconds=None)
    assert got.started_at == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def test_photo_is_an_instant() -> None:
    for duration in (None, 0.0):
        got = times(name_start_local=datetime(2024, 5, 1, 8, 30), duration_seconds=duration, media_kind="photo")
        assert got.ended_at == got.started_at == datetime(2024, 5, 1, 0, 30, tzinfo=UTC)
    # without a kind, a missing duration is taken as an instant too
    got = times(name_start_local=datetime(2024, 5, 1, 8, 30), duration_seconds=None)
    assert got.ended_at == got.started_at


def test_recording_of_unknown_length_has_no_end() -> None:
    got = times(name_start_local=datetime(2024, 5, 1, 8, 30), duration_seconds=None, media_kind="video")
    assert got.started_at == datetime(2024, 5, 1, 0, 30, tzinfo=UTC)
    assert got.ended_at is None


@pytest.mark.parametrize("duration", [math.nan, math.inf, -5.0, 1e300])
def test_absurd_durations_are_unknown(duration: float) -> None:
    got = times(creation_time=datetime(2024, 5, 1, 7, 0, tzinfo=UTC), duration_seconds=duration, media_kind="video")
    assert got == RecordingTimes(datetime(2024, 5, 1, 7, 0, tzinfo=UTC), None, "metadata")
    got = times(duration_seconds=duration)
    assert got.started_at == MTIME and got.time_source == "mtime"


def test_wall_clock_times_around_dst_changes() -> None:
    new_york = ZoneInfo("America/New_York")
    skipped = times(name_start_local=datetime(2024, 3, 10, 2, 30), tz=new_york)  # does not exist
    repeated = times(name_start_local=datetime(2023, 11, 5, 1, 30), tz=new_york)  # happens twice
    assert skipped.started_at == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
    assert repeated.started_at == datetime(2023, 11, 5, 5, 30, tzinfo=UTC)  # the first one (fold=0)


def test_extreme_name_dates_do_not_raise() -> None:
    got = times(name_start_local=datetime(1, 1, 1), tz=ZoneInfo("America/Los_Angeles"))
    assert got.time_source == "mtime"
    got = times(name_start_local=datetime(9999, 12, 31, 23, 59), tz=ZoneInfo("Pacific/Kiritimati"))
    assert got.time_source == "mtime"


aware = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)) | st.none()


@given(
    st.datetimes() | st.none(),
    aware,
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.floats(allow_nan=True, allow_infinity=True) | st.none(),
    st.floats(min_value=0, max_value=1e7),
)
def test_result_is_always_plausible_or_empty(
    name_start: datetime | None,
    creation: datetime | None,
    mtime: datetime,
    duration: float | None,
    tolerance: float,
) -> None:
    got = times(
        name_start_local=name_start,
        creation_time=creation,
        mtime=mtime,
        duration_seconds=duration,
        future_tolerance_seconds=tolerance,
    )
    if got.started_at is None:
        assert got == RecordingTimes(None, None, None)
        return
    assert datetime(2005, 1, 1, tzinfo=UTC) <= got.started_at <= NOW + timedelta(seconds=tolerance)
    assert got.started_at.utcoffset() == timedelta(0)
    assert got.time_source in ("filename", "metadata", "mtime")
    if got.ended_at is not None:
        assert got.ended_at >= got.started_at
