"""Names, classes and sidecar keys from paths relative to the watched root (SPEC §4)."""

from __future__ import annotations

import re
import string
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.errors import BadInput
from config.settings import DEFAULT_NAME_PATTERNS, Settings
from ingest.naming import (
    NameInfo,
    classify,
    compile_patterns,
    is_temporary,
    parse_name,
    parse_start,
    sidecar_stem_key,
)

DEFAULTS = compile_patterns(DEFAULT_NAME_PATTERNS)


# --- the three default forms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        # <DEVICE>_<OFFICER>_<YYYYMMDDHHMMSS>_<NNNN>.<ext>, at any depth
        (
            "DSJ-A001_O1234_20240501083000_0007.mp4",
            NameInfo("DSJ-A001", "O1234", datetime(2024, 5, 1, 8, 30), 7, 0),
        ),
        (
            "站点 一/2024 五月/DSJ-A001_张三_20240501083000_0007.MP4",
            NameInfo("DSJ-A001", "张三", datetime(2024, 5, 1, 8, 30), 7, 0),
        ),
        # <DEVICE>_<YYYYMMDD>_<HHMMSS>_<N>.<ext>, at any depth
        ("DSJ-A001_20240501_083005_3.mov", NameInfo("DSJ-A001", None, datetime(2024, 5, 1, 8, 30, 5), 3, 1)),
        (
            "Ünïcode dir/sub dir/CAM7_20241231_235959_12.wav",
            NameInfo("CAM7", None, datetime(2024, 12, 31, 23, 59, 59), 12, 1),
        ),
        # <root>/<DEVICE>/<anything>.<ext>: the first folder is the device, wherever the file sits below it
        ("DSJ-A001/clip one.mp4", NameInfo("DSJ-A001", None, None, None, 2)),
        ("执法记录仪 01/2024-05-01/录像 1.mp4", NameInfo("执法记录仪 01", None, None, None, 2)),
        # ... and a date-time in the file name is its start
        ("DSJ-A001/VID_20240501_083000.mp4", NameInfo("DSJ-A001", None, datetime(2024, 5, 1, 8, 30), None, 2)),
        ("DSJ-A001/20240501083000.jpg", NameInfo("DSJ-A001", None, datetime(2024, 5, 1, 8, 30), None, 2)),
        # a camera prefix without a digit is not a device: the folder names it
        (
            "DSJ-A001/VID_20240501_083000_1.mp4",
            NameInfo("DSJ-A001", None, datetime(2024, 5, 1, 8, 30), None, 2),
        ),
    ],
)
def test_default_forms_parse(relpath: str, expected: NameInfo) -> None:
    assert parse_name(relpath, DEFAULTS) == expected


def test_settings_default_to_these_patterns() -> None:
    assert Settings().name_patterns == list(DEFAULT_NAME_PATTERNS)


def test_file_in_the_root_with_a_free_name_says_nothing() -> None:
    assert parse_name("clip.mp4", DEFAULTS) == NameInfo(None, None, None, None, None)


@pytest.mark.parametrize(
    "relpath",
    [
        "DSJ-A001_O1_20241301083000_0001.mp4",  # month 13
        "DSJ-A001_O1_20240230083000_0001.mp4",  # 30 February
        "DSJ-A001_O1_20240501250000_0001.mp4",  # hour 25
        "DSJ-A001_20240230_083000_1.mp4",
    ],
)
def test_impossible_start_is_no_start_not_an_error(relpath: str) -> None:
    info = parse_name(relpath, DEFAULTS)
    assert info.device == "DSJ-A001"
    assert info.start_local is None
    assert info.sequence is not None


def test_first_matching_pattern_wins() -> None:
    patterns = compile_patterns([r"^(?P<device>x\d)/", r"(?P<device>[^/]+)/(?P<seq>\d+)\.mp4$"])
    assert parse_name("x1/22.mp4", patterns) == NameInfo("x1", None, None, None, 0)
    assert parse_name("y1/22.mp4", patterns) == NameInfo("y1", None, None, 22, 1)


def test_custom_pattern_start_reads_digits_only() -> None:
    patterns = compile_patterns([r"(?P<device>\w+)-(?P<start>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})"])
    assert parse_name("D9-2024-05-01T08:30:15.mp4", patterns).start_local == datetime(2024, 5, 1, 8, 30, 15)


def test_groups_a_pattern_does_not_name_stay_none() -> None:
    info = parse_name("anything.mp4", compile_patterns([r"(?P<other>any)"]))
    assert info == NameInfo(None, None, None, None, 0)


def test_bad_pattern_is_refused_by_name() -> None:
    with pytest.raises(BadInput) as caught:
        compile_patterns([r"(?P<device>.+)", r"(?P<device>[unclosed"])
    assert "[unclosed" in caught.value.message
    assert "#1" in caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240501083000", datetime(2024, 5, 1, 8, 30)),
        ("2024-05-01 08:30:00", datetime(2024, 5, 1, 8, 30)),
        ("2024050108300", None),  # 13 digits
        ("202405010830000", None),  # 15 digits
        ("00000101000000", None),  # year 0
        ("", None),
        (None, None),
    ],
)
def test_parse_start(value: str | None, expected: datetime | None) -> None:
    assert parse_start(value) == expected


# --- properties --------------------------------------------------------------------------------------------

codes = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=12).filter(
    lambda s: any(c.isdigit() for c in s)
)
officers = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=12)
folders = st.lists(
    st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]), min_size=1, max_size=8),
    max_size=3,
)
moments = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
extensions = st.sampled_from(["mp4", "MOV", "wav", "jpg", "Mkv"])


@given(folders, codes, officers, moments, st.integers(0, 99999), extensions)
def test_officer_form_round_trips(
    dirs: list[str], device: str, officer: str, start: datetime, seq: int, ext: str
) -> None:
    relpath = "/".join([*dirs, f"{device}_{officer}_{start:%Y%m%d%H%M%S}_{seq:04d}.{ext}"])
    assert parse_name(relpath, DEFAULTS) == NameInfo(device, officer, start, seq, 0)


@given(folders, codes, moments, st.integers(0, 99999), extensions)
def test_date_time_form_round_trips(dirs: list[str], device: str, start: datetime, seq: int, ext: str) -> None:
    relpath = "/".join([*dirs, f"{device}_{start:%Y%m%d_%H%M%S}_{seq}.{ext}"])
    assert parse_name(relpath, DEFAULTS) == NameInfo(device, None, start, seq, 1)


@given(st.text(max_size=200))
def test_any_path_parses_without_raising(relpath: str) -> None:
    info = parse_name(relpath, DEFAULTS)
    assert info.pattern in (None, 0, 1, 2)
    if info.pattern is None:
        assert info == NameInfo(None, None, None, None, None)


@given(st.text(string.digits + "-_T: ", max_size=30))
def test_parse_start_never_raises(value: str) -> None:
    start = parse_start(value)
    if start is not None:
        assert f"{start:%Y%m%d%H%M%S}" == "".join(c for c in value if c.isdigit())


def test_default_patterns_do_not_backtrack_badly() -> None:
    # a long, almost-matching name must still be decided (a catastrophic regex would hang here)
    relpath = "D1/" + "1" * 5000 + "_" * 5000 + ".mp4"
    assert parse_name(relpath, DEFAULTS).device == "D1"


# --- classes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clip.mp4", "media"),
        ("CLIP.MP4", "media"),
        ("a/b/clip.Mov", "media"),
        ("x.avi", "media"),
        ("x.mkv", "media"),
        ("x.ts", "media"),
        ("x.m4a", "media"),
        ("x.wav", "media"),
        ("photo.JPG", "media"),
        ("clip.json", "sidecar"),
        ("clip.XML", "sidecar"),
        ("clip.gps", "sidecar"),
        ("clip.nmea", "sidecar"),
        ("clip.txt", "sidecar"),
        ("clip.srt", "sidecar"),
        ("clip.mp4.tmp", "temporary"),
        ("clip.mp4.part", "temporary"),
        ("clip.mp4.PART", "temporary"),
        ("clip.mp4.crdownload", "temporary"),
        ("~clip.mp4", "temporary"),
        (".clip.mp4", "temporary"),
        ("dir/.DS_Store", "temporary"),
        ("readme", "other"),
        ("clip.exe", "other"),
        ("clip.", "other"),
    ],
)
def test_classify(name: str, expected: str) -> None:
    assert classify(name) == expected


def test_temporary_names() -> None:
    assert is_temporary("a.tmp") and is_temporary("~$doc.mp4") and is_temporary(".hidden")
    assert not is_temporary("clip.mp4") and not is_temporary("tmp.mp4") and not is_temporary("a~b.mp4")


# --- sidecar keys ------------------------------------------------------------------------------------------


def test_sidecar_key_pairs_same_folder_and_stem_whatever_the_extension_case() -> None:
    key = sidecar_stem_key("DSJ-A001/2024/clip 1.MP4")
    assert key == "DSJ-A001/2024/clip 1"
    assert sidecar_stem_key("DSJ-A001/2024/clip 1.json") == key
    assert sidecar_stem_key("DSJ-A001/2024/clip 1.GPS") == key
    assert sidecar_stem_key("DSJ-A001/2024/clip 1.mp4.json") == key


def test_sidecar_key_tells_folders_and_stems_apart() -> None:
    assert sidecar_stem_key("a/clip.json") != sidecar_stem_key("b/clip.mp4")
    assert sidecar_stem_key("a/clip2.json") != sidecar_stem_key("a/clip.mp4")
    assert sidecar_stem_key("clip.mp4") == "clip"
    assert sidecar_stem_key("clip.v1.json") == "clip.v1"


def test_compile_patterns_returns_regexes() -> None:
    assert all(isinstance(p, re.Pattern) for p in DEFAULTS)
    assert len(DEFAULTS) == 3


def test_a_sequence_or_code_too_big_for_its_column_is_no_value() -> None:
    # DEV_OFFICER_YYYYMMDDHHMMSS_NNNN: a counter past 32 bits, or a "serial" past 128 characters, is no camera's
    huge = parse_name(f"DSJ-A001_P1_20240501083000_{2**31}.mp4", DEFAULTS)
    assert huge.sequence is None and huge.device == "DSJ-A001" and huge.start_local is not None
    assert parse_name(f"DSJ-A001_P1_20240501083000_{2**31 - 1}.mp4", DEFAULTS).sequence == 2**31 - 1
    assert parse_name(f"{'D' * 129}/clip.mp4", DEFAULTS).device is None  # <DEVICE>/<anything>.mp4
    assert parse_name(f"{'D' * 128}/clip.mp4", DEFAULTS).device == "D" * 128
