"""The action timeline's geometry and the pages' words, as plain values (no database, no browser)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.i18n import REASONS, TEXT, VERDICTS, reason_words, verdict_words
from api.routes.web_timeline import (
    LABEL_WIDTH,
    WIDTH,
    BarIn,
    build_timeline,
    length_label,
    seek_seconds,
    tick_step,
    ticks,
    view_bounds,
)

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def test_lanes_bars_and_bands_are_placed_on_the_window() -> None:
    end = T0 + timedelta(minutes=10)
    bars = [
        BarIn(1, "DEV-A", T0, T0 + timedelta(minutes=5)),
        BarIn(2, "DEV-B", T0 + timedelta(minutes=5), end, problem="no_audio"),
    ]
    shortfalls = [(T0 + timedelta(minutes=5), end, ("DEV-A",))]
    tl = build_timeline(T0, end, ["DEV-A", "DEV-B", "DEV-C"], bars, shortfalls, UTC_ZONE)

    assert [lane.device for lane in tl.lanes] == ["DEV-A", "DEV-B", "DEV-C"]
    assert [len(lane.bars) for lane in tl.lanes] == [1, 1, 0]
    assert tl.lanes[0].y < tl.lanes[1].y < tl.lanes[2].y < tl.lanes_bottom
    # 5 % context on each side: the 10-minute window spans 10/11 of the plot, starting 0.5/11 in
    plot = WIDTH - LABEL_WIDTH - 10
    assert tl.window_x == pytest.approx(LABEL_WIDTH + plot * 0.5 / 11, abs=0.01)
    assert tl.window_width == pytest.approx(plot * 10 / 11, abs=0.02)
    first, second = tl.lanes[0].bars[0], tl.lanes[1].bars[0]
    assert first.x == pytest.approx(tl.window_x, abs=0.01) and first.width == pytest.approx(
        tl.window_width / 2, abs=0.02
    )
    assert second.problem == "no_audio" and second.x == pytest.approx(first.x + first.width, abs=0.02)
    [band] = tl.bands
    assert band.x == pytest.approx(second.x, abs=0.01) and band.width == pytest.approx(second.width, abs=0.02)
    assert band.devices_recording == ("DEV-A",)


def test_bars_outside_the_view_are_clipped_to_it() -> None:
    end = T0 + timedelta(minutes=10)
    long = BarIn(1, "D", T0 - timedelta(hours=1), end + timedelta(hours=1))
    no_end = BarIn(2, "D", T0 + timedelta(minutes=2), None)
    tl = build_timeline(T0, end, ["D"], [long, no_end], [], UTC_ZONE)
    clipped, mark = tl.lanes[0].bars
    assert clipped.clipped and clipped.x == LABEL_WIDTH
    assert clipped.x + clipped.width == pytest.approx(WIDTH - 10, abs=0.01)
    assert not mark.clipped and mark.width == 2.0


def test_link_margin_widens_the_view_when_larger_than_the_context() -> None:
    end = T0 + timedelta(minutes=10)
    assert view_bounds(T0, end, 0) == (T0 - timedelta(seconds=30), end + timedelta(seconds=30))
    assert view_bounds(T0, end, 120) == (T0 - timedelta(seconds=120), end + timedelta(seconds=120))


def test_ticks_are_round_local_times() -> None:
    assert tick_step(600) == 120 and tick_step(20) == 5 and tick_step(7 * 86400) == 86400
    shanghai = [
        label for _, label in ticks(T0 - timedelta(seconds=30), T0 + timedelta(minutes=10), ZoneInfo("Asia/Shanghai"))
    ]
    assert shanghai == ["16:00", "16:02", "16:04", "16:06", "16:08", "16:10"]
    # a zone half an hour off UTC still gets ticks on its own round minutes
    kolkata = ticks(T0, T0 + timedelta(minutes=40), ZoneInfo("Asia/Kolkata"))
    assert [label for _, label in kolkata][:2] == ["13:30", "13:35"]
    short = [label for _, label in ticks(T0, T0 + timedelta(seconds=20), UTC_ZONE)]
    assert short == ["08:00:00", "08:00:05", "08:00:10", "08:00:15", "08:00:20"]


def test_every_word_exists_in_both_languages() -> None:
    assert TEXT["en"].keys() == TEXT["zh"].keys()
    assert REASONS["en"].keys() == REASONS["zh"].keys()
    assert VERDICTS["en"].keys() == VERDICTS["zh"].keys()
    assert verdict_words("pending", "zh") == "待上传" and verdict_words(None, "en") == "not evaluated"


def test_reasons_read_as_sentences_with_local_times() -> None:
    reason = {"code": "shortfall", "from": "2024-05-01T08:00:00+00:00", "to": "2024-05-01T08:05:00+00:00"}
    local = {"2024-05-01T08:00:00+00:00": "16:00", "2024-05-01T08:05:00+00:00": "16:05"}
    zh = reason_words(reason | {"devices_recording": []}, "zh", lambda v: local[v or ""])
    assert zh == "16:00 至 16:05 期间在录设备不足（全程在录：无）。"
    en = reason_words(reason | {"devices_recording": ["DEV-1"]}, "en", lambda v: local[v or ""])
    assert "From 16:00 to 16:05" in en and "throughout: DEV-1" in en
    assert (
        reason_words({"code": "no_audio", "device": "D-9", "recording": 4}, "zh", str) == "设备 D-9 的录像 4 没有声音。"
    )
    assert reason_words({"code": "too_few_devices"}, "en", str).startswith("Only ? recording")
    assert reason_words({"code": "strange"}, "en", str) == "Reason strange."


def test_a_required_device_no_record_names_gets_an_empty_lane() -> None:
    end = T0 + timedelta(minutes=1)
    bars = [BarIn(1, "SOLO", T0, end, problem="unplayable")]
    tl = build_timeline(T0, end, ["SOLO"], bars, [(T0, end, ())], UTC_ZONE, required=2)
    assert [lane.device for lane in tl.lanes] == ["SOLO", None]
    assert tl.lanes[1].recorded_nothing and not tl.lanes[0].recorded_nothing
    assert tl.lanes_bottom == tl.lanes[1].y + tl.lane_height
    [band] = tl.bands
    assert band.devices_missing == ("SOLO",) and band.unnamed_missing == 1 and band.seconds == 60


def test_enough_devices_get_no_extra_lane_and_bands_name_who_is_missing() -> None:
    end = T0 + timedelta(minutes=2)
    gap = (T0, T0 + timedelta(seconds=30), ("A",))
    tl = build_timeline(T0, end, ["A", "B", "C"], [], [gap], UTC_ZONE, required=2)
    assert [lane.device for lane in tl.lanes] == ["A", "B", "C"]
    assert tl.bands[0].devices_missing == ("B", "C") and tl.bands[0].unnamed_missing == 0


def test_lengths_and_seek_points_in_words() -> None:
    assert [length_label(s) for s in (0, 15, 90.4, 3600, 3725)] == ["0:00", "0:15", "1:30", "1:00:00", "1:02:05"]
    assert seek_seconds(T0, T0 + timedelta(seconds=12.345)) == 12.35
    assert seek_seconds(T0, T0 - timedelta(seconds=5)) == 0.0
