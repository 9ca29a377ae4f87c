"""Worked examples of the coverage rule (SPEC §6), pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from audit.coverage import (
    ActionFacts,
    Policy,
    RecordingFacts,
    Shortfall,
    depth,
    evaluate,
    merge,
    shortfalls,
    verdict_for,
)
from storage.basics import iso

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
POLICY = Policy(min_devices=2, max_gap_seconds=3, require_audio=True, upload_grace_hours=24)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rec(rid: int, device: str, start: float, end: float, **kw: object) -> RecordingFacts:
    return RecordingFacts(id=rid, device=device, started_at=at(start), ended_at=at(end), **kw)  # type: ignore[arg-type]


def action(*recs: RecordingFacts, devices: tuple[str, ...] = ("A", "B"), end: float = 600, **kw: object) -> ActionFacts:
    return ActionFacts("X1", T0, at(end), devices=devices, recordings=recs, **kw)  # type: ignore[arg-type]


LATE = at(600) + timedelta(days=2)


def codes(result: object) -> list[str]:
    return [r["code"] for r in result.reasons]  # type: ignore[attr-defined]


def test_merge_bridges_camera_segment_gaps_but_not_longer_ones() -> None:
    segments = [(0.0, 300.0), (302.0, 600.0), (610.0, 700.0)]
    assert merge(segments, 3) == [(0.0, 600.0), (610.0, 700.0)]
    assert merge(segments, 10) == [(0.0, 700.0)]
    assert merge(segments, 0) == segments


def test_merge_drops_empty_intervals_and_absorbs_contained_ones() -> None:
    assert merge([(5.0, 5.0), (0.0, 10.0), (2.0, 3.0)], 0) == [(0.0, 10.0)]


def test_depth_tiles_the_window_with_the_devices_recording() -> None:
    segs = depth({"A": [(0.0, 10.0)], "B": [(5.0, 20.0)]}, (0.0, 15.0))
    assert [(s.start, s.end, sorted(s.devices)) for s in segs] == [
        (0.0, 5.0, ["A"]),
        (5.0, 10.0, ["A", "B"]),
        (10.0, 15.0, ["B"]),
    ]


def test_shortfall_reports_devices_recording_throughout_and_partly() -> None:
    gaps = shortfalls((0.0, 100.0), {"A": [(0.0, 100.0)], "B": [(0.0, 40.0), (60.0, 100.0)]}, 2, 3)
    assert gaps == [Shortfall(40.0, 60.0, ("A",), ())]
    # B stops in the middle of a part where A is missing: the part is maximal, B recorded only partly
    gaps = shortfalls((0.0, 100.0), {"A": [(0.0, 30.0)], "B": [(0.0, 50.0)]}, 2, 3)
    assert gaps == [Shortfall(30.0, 100.0, (), ("B",))]


def test_shortfall_no_longer_than_max_gap_is_tolerated() -> None:
    per_device = {"A": [(0.0, 100.0)], "B": [(0.0, 50.0), (53.0, 100.0)]}
    assert shortfalls((0.0, 100.0), per_device, 2, 3) == []
    # the same 3 s hole at the window's end is not bridged by a later segment, but is no longer than max gap
    assert shortfalls((0.0, 100.0), {"A": [(0.0, 100.0)], "B": [(0.0, 97.0)]}, 2, 3) == []
    assert shortfalls((0.0, 100.0), {"A": [(0.0, 100.0)], "B": [(0.0, 96.0)]}, 2, 3) == [
        Shortfall(96.0, 100.0, ("A",), ())
    ]


def test_two_devices_covering_the_whole_action_is_complete() -> None:
    result = evaluate(action(rec(1, "A", -5, 605), rec(2, "B", 0, 300), rec(3, "B", 302, 600)), POLICY, LATE)
    assert result.verdict == "complete"
    assert result.reasons == []
    assert result.pending_until is None


def test_one_device_short_is_pending_within_grace_then_incomplete() -> None:
    facts = action(rec(1, "A", 0, 600), rec(2, "B", 0, 400))
    soon = evaluate(facts, POLICY, at(700))
    assert soon.verdict == "pending"
    assert soon.pending_until == at(600) + timedelta(hours=24)
    assert soon.reasons == [
        {"code": "shortfall", "from": iso(at(400)), "to": iso(at(600)), "devices_recording": ["A"]},
    ]
    late = evaluate(facts, POLICY, LATE)
    assert late.verdict == "incomplete"
    assert late.pending_until is None
    assert late.reasons == soon.reasons


def test_clock_offset_shifts_a_device_into_the_window() -> None:
    # B's clock runs 120 s slow: its raw times end at 480, its true times at 600
    facts = action(rec(1, "A", 0, 600), rec(2, "B", -120, 480, clock_offset_seconds=120.0))
    assert evaluate(facts, POLICY, LATE).verdict == "complete"
    unshifted = action(rec(1, "A", 0, 600), rec(2, "B", -120, 480))
    assert codes(evaluate(unshifted, POLICY, LATE)) == ["shortfall"]


def test_no_footage_and_too_few_devices() -> None:
    result = evaluate(action(devices=("A",)), POLICY, at(601))
    assert codes(result) == ["too_few_devices", "no_footage", "shortfall"]
    assert result.reasons[0] == {"code": "too_few_devices", "devices": 1, "min_devices": 2}
    assert result.reasons[2]["devices_recording"] == []
    # waiting cannot add a device to the action: incomplete at once, not pending
    assert result.verdict == "incomplete"


def test_no_footage_alone_waits_for_docking() -> None:
    result = evaluate(action(), POLICY, at(601))
    assert codes(result) == ["no_footage", "shortfall"]
    assert result.verdict == "pending"


def test_recording_without_audio_does_not_count_and_says_why() -> None:
    facts = action(rec(1, "A", 0, 600), rec(2, "B", 0, 600, has_audio=False))
    result = evaluate(facts, POLICY, LATE)
    assert result.verdict == "incomplete"
    assert {"code": "no_audio", "device": "B", "recording": 2} in result.reasons
    assert result.reasons[0]["devices_recording"] == ["A"]
    relaxed = Policy(min_devices=2, max_gap_seconds=3, require_audio=False)
    assert evaluate(facts, relaxed, LATE).verdict == "complete"


def test_audio_only_recording_is_not_coverage() -> None:
    result = evaluate(action(rec(1, "A", 0, 600), rec(2, "B", 0, 600, has_video=False)), POLICY, LATE)
    assert {"code": "no_video", "device": "B", "recording": 2} in result.reasons
    assert result.verdict == "incomplete"


def test_unplayable_recording_does_not_count() -> None:
    result = evaluate(action(rec(1, "A", 0, 600), rec(2, "B", 0, 600, status="unplayable")), POLICY, LATE)
    assert {"code": "unplayable", "device": "B", "recording": 2} in result.reasons
    assert "shortfall" in codes(result)


def test_failed_fixity_blocks_even_without_a_shortfall_and_never_waits() -> None:
    facts = action(rec(1, "A", 0, 600), rec(2, "B", 0, 600), rec(3, "B", 0, 600, fixity_ok=False))
    result = evaluate(facts, POLICY, at(601))
    assert codes(result) == ["integrity"]
    assert result.reasons[0] == {"code": "integrity", "device": "B", "recording": 3}
    assert result.verdict == "incomplete"


def test_auxiliary_staff_alone_is_uncertified() -> None:
    recs = (rec(1, "A", 0, 600), rec(2, "B", 0, 600))
    assert codes(evaluate(action(*recs, officers_certified=[False, False]), POLICY, LATE)) == ["uncertified"]
    assert evaluate(action(*recs, officers_certified=[False, False]), POLICY, LATE).verdict == "incomplete"
    assert evaluate(action(*recs, officers_certified=[False, True]), POLICY, LATE).verdict == "complete"
    # certification not entered yet, or no officers on the action: nothing to conclude
    assert evaluate(action(*recs, officers_certified=[False, None]), POLICY, LATE).verdict == "complete"
    assert evaluate(action(*recs, officers_certified=[]), POLICY, LATE).verdict == "complete"


def test_manually_linked_recording_of_another_device_counts_as_a_device() -> None:
    facts = action(rec(1, "A", 0, 600), rec(2, "C", 0, 600), devices=("A",))
    result = evaluate(facts, POLICY, LATE)
    assert result.verdict == "complete"


def test_min_devices_one() -> None:
    policy = Policy(min_devices=1, max_gap_seconds=3)
    assert evaluate(action(rec(1, "A", 0, 600), devices=("A",)), policy, LATE).verdict == "complete"


def test_verdict_for_pending_only_inside_grace() -> None:
    reasons = [{"code": "shortfall"}]
    assert verdict_for(reasons, at(600), POLICY, at(600) + timedelta(hours=23)) == (
        "pending",
        at(600) + timedelta(hours=24),
    )
    assert verdict_for(reasons, at(600), POLICY, at(600) + timedelta(hours=24)) == ("incomplete", None)
    assert verdict_for([{"code": "no_audio"}], at(600), POLICY, at(0)) == ("complete", None)


def test_iso_is_utc_with_offset() -> None:
    from zoneinfo import ZoneInfo

    assert iso(datetime(2024, 5, 1, 16, 0, tzinfo=ZoneInfo("Asia/Shanghai"))) == "2024-05-01T08:00:00+00:00"
