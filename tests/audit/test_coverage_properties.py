"""Properties of the interval algebra behind coverage, checked with Hypothesis."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.coverage import ActionFacts, Interval, Policy, RecordingFacts, depth, evaluate, merge, shortfalls

# Whole seconds as floats keep every comparison exact, so a failure is the algorithm's, not rounding's.
seconds = st.integers(min_value=0, max_value=1000).map(float)
lengths = st.integers(min_value=0, max_value=300).map(float)
intervals = st.builds(lambda s, n: (s, s + n), seconds, lengths)
interval_lists = st.lists(intervals, max_size=12)
gaps = st.integers(min_value=0, max_value=20).map(float)
per_device = st.dictionaries(st.sampled_from("ABCD"), interval_lists, max_size=4)
windows = st.builds(lambda s, n: (s, s + n), seconds, st.integers(min_value=1, max_value=800).map(float))


@given(interval_lists, gaps)
def test_merge_is_idempotent(ivs: list[Interval], gap: float) -> None:
    once = merge(ivs, gap)
    assert merge(once, gap) == once


@given(st.data(), interval_lists, gaps)
def test_merge_is_order_independent(data: st.DataObject, ivs: list[Interval], gap: float) -> None:
    shuffled = data.draw(st.permutations(ivs))
    assert merge(shuffled, gap) == merge(ivs, gap)


@given(interval_lists, gaps)
def test_merge_never_loses_covered_time(ivs: list[Interval], gap: float) -> None:
    merged = merge(ivs, gap)
    for s, e in ivs:
        if e > s:
            assert any(ms <= s and e <= me for ms, me in merged), (s, e, merged)


@given(interval_lists, gaps)
def test_merge_adds_only_bridged_gaps(ivs: list[Interval], gap: float) -> None:
    merged = merge(ivs, gap)
    starts = {s for s, e in ivs if e > s}
    ends = {e for s, e in ivs if e > s}
    for s, e in merged:
        assert s in starts and e in ends


@given(interval_lists, gaps)
def test_merge_result_sorted_disjoint_with_wide_gaps(ivs: list[Interval], gap: float) -> None:
    merged = merge(ivs, gap)
    for s, e in merged:
        assert e > s
    for (_, e1), (s2, _) in itertools.pairwise(merged):
        assert s2 - e1 > gap


@given(per_device, windows)
def test_depth_tiles_window_and_never_exceeds_device_count(devs: dict[str, list[Interval]], window: Interval) -> None:
    segs = depth(devs, window)
    assert segs[0].start == window[0] and segs[-1].end == window[1]
    for a, b in itertools.pairwise(segs):
        assert a.end == b.start
    for seg in segs:
        assert seg.end > seg.start
        assert seg.depth <= len(devs)
        mid = (seg.start + seg.end) / 2
        assert seg.devices == {d for d, ivs in devs.items() if any(s < mid < e for s, e in ivs)}


@given(per_device, windows, st.integers(min_value=1, max_value=4), gaps)
def test_shortfalls_lie_in_window_disjoint_and_long(
    devs: dict[str, list[Interval]], window: Interval, min_devices: int, gap: float
) -> None:
    found = shortfalls(window, devs, min_devices, gap)
    merged = {d: merge(ivs, gap) for d, ivs in devs.items()}
    for sf in found:
        assert window[0] <= sf.start < sf.end <= window[1]
        assert sf.end - sf.start > gap
        for d in sf.devices_recording:
            assert any(s <= sf.start and sf.end <= e for s, e in merged[d])
        assert all(seg.depth < min_devices for seg in depth(merged, (sf.start, sf.end)))
    for a, b in itertools.pairwise(found):
        assert a.end < b.start


@given(per_device, windows, st.integers(min_value=1, max_value=4), gaps, st.sampled_from("ABCD"), intervals)
def test_adding_a_recording_never_adds_shortfall_time(
    devs: dict[str, list[Interval]],
    window: Interval,
    min_devices: int,
    gap: float,
    device: str,
    extra: Interval,
) -> None:
    before = shortfalls(window, devs, min_devices, gap)
    more = {**devs, device: [*devs.get(device, []), extra]}
    after = shortfalls(window, more, min_devices, gap)
    for sf in after:
        assert any(b.start <= sf.start and sf.end <= b.end for b in before), (sf, before)
    assert sum(s.end - s.start for s in after) <= sum(s.end - s.start for s in before)


T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@given(st.integers(min_value=1, max_value=36_000), st.integers(0, 600), st.integers(0, 600), gaps)
@settings(max_examples=50)
def test_one_device_covering_the_window_with_min_devices_one_is_complete(
    length: int, before: int, after: int, gap: float
) -> None:
    end = T0 + timedelta(seconds=length)
    rec = RecordingFacts(1, "A", T0 - timedelta(seconds=before), end + timedelta(seconds=after))
    facts = ActionFacts("X", T0, end, devices=["A"], recordings=[rec])
    result = evaluate(facts, Policy(min_devices=1, max_gap_seconds=gap), T0)
    assert result.verdict == "complete"
    assert result.reasons == []
