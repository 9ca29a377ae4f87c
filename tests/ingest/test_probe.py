"""ffprobe on real recordings, and on the broken files a docking station really produces."""

from __future__ import annotations

import random
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.probe import ProbeResult, parse_creation_time, probe
from tests.fixtures.media import MediaFactory


def half_of(source: Path, dest: Path) -> Path:
    """The first half of ``source``: what a copy cut off midway leaves behind."""
    data = source.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def faststart(source: Path, dest: Path) -> Path:
    """The same streams with the MP4 index (moov) moved to the front, as many cameras write them."""
    remux = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), "-c", "copy"]
    subprocess.run([*remux, "-movflags", "+faststart", str(dest)], check=True)
    return dest


def test_video_with_audio(media: MediaFactory, tmp_path: Path) -> None:
    path = media.make(tmp_path / "clip.mp4", seconds=2, creation_time="2024-05-01T08:00:00Z")
    got = probe(path)
    assert got.ok and got.error is None and got.warning is None
    assert got.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert (got.has_video, got.has_audio, got.media_kind) == (True, True, "video")
    assert (got.video_codec, got.audio_codec) == ("mpeg4", "aac")
    assert (got.width, got.height) == (160, 120)
    assert got.container is not None and "mp4" in got.container
    assert got.creation_time == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("ext", ["mp4", "mov", "avi", "mkv", "ts"])
def test_every_video_container(media: MediaFactory, tmp_path: Path, ext: str) -> None:
    got = probe(media.make(tmp_path / f"clip.{ext}", seconds=3))
    assert got.ok, got.error
    assert got.duration_seconds == pytest.approx(3.0, abs=0.25)  # MPEG-TS counts the AAC priming
    assert got.has_video and got.has_audio and got.media_kind == "video"


@pytest.mark.parametrize("ext", ["m4a", "wav"])
def test_audio_only(media: MediaFactory, tmp_path: Path, ext: str) -> None:
    got = probe(media.make(tmp_path / f"voice.{ext}", seconds=2, video=False))
    assert got.ok, got.error
    assert (got.has_video, got.has_audio, got.media_kind) == (False, True, "audio")
    assert got.video_codec is None and got.width is None
    assert got.duration_seconds == pytest.approx(2.0, abs=0.1)


def test_video_without_audio(media: MediaFactory, tmp_path: Path) -> None:
    got = probe(media.make(tmp_path / "mute.mp4", seconds=2, audio=False))
    assert got.ok
    assert (got.has_video, got.has_audio, got.media_kind) == (True, False, "video")
    assert got.audio_codec is None


def test_photo(media: MediaFactory, tmp_path: Path) -> None:
    got = probe(media.make(tmp_path / "still.jpg"))
    assert got.ok, got.error
    assert got.media_kind == "photo" and got.video_codec == "mjpeg"
    assert got.duration_seconds is None
    assert (got.width, got.height) == (160, 120)
    assert not got.has_audio


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    got = probe(path)
    assert not got.ok and got.error and "empty" in got.error


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ext", ["mp4", "mov", "ts", "wav", "mkv", "avi", "m4a", "jpg"])
def test_random_bytes(tmp_path: Path, ext: str, seed: int) -> None:
    path = tmp_path / f"noise.{ext}"
    path.write_bytes(random.Random(f"{ext}-{seed}").randbytes(64 * 1024))  # the same bytes on every run
    got = probe(path)
    assert not got.ok
    assert got.error
    assert str(tmp_path) not in got.error  # only the file's name, never where it lives


def test_truncated_mp4_with_index_at_the_end_is_unreadable(media: MediaFactory, tmp_path: Path) -> None:
    whole = media.make(tmp_path / "whole.mp4", seconds=6)
    got = probe(half_of(whole, tmp_path / "half.mp4"))
    assert not got.ok
    assert got.error and "moov" in got.error
    assert got.duration_seconds is None


def test_truncated_faststart_mp4_reports_only_what_it_holds(media: MediaFactory, tmp_path: Path) -> None:
    whole = faststart(media.make(tmp_path / "raw.mp4", seconds=8), tmp_path / "whole.mp4")
    intact = probe(whole)
    assert intact.ok and intact.warning is None
    assert intact.duration_seconds == pytest.approx(8.0, abs=0.15)

    got = probe(half_of(whole, tmp_path / "half.mp4"))
    assert got.ok
    # the moov still declares 8 s; only about half of the packets are there
    assert got.declared_duration_seconds == pytest.approx(8.0, abs=0.15)
    assert got.duration_seconds is not None and 1.0 < got.duration_seconds < 6.0
    assert got.warning and "truncated" in got.warning


def test_truncated_matroska_reports_only_what_it_holds(media: MediaFactory, tmp_path: Path) -> None:
    whole = media.make(tmp_path / "whole.mkv", seconds=8)
    got = probe(half_of(whole, tmp_path / "half.mkv"))
    assert got.ok
    assert got.duration_seconds is not None and 1.0 < got.duration_seconds < 6.0
    assert got.warning and "truncated" in got.warning


def test_truncated_jpeg_still_shows_but_is_flagged(media: MediaFactory, tmp_path: Path) -> None:
    got = probe(half_of(media.make(tmp_path / "whole.jpg"), tmp_path / "half.jpg"))
    assert got.ok and got.media_kind == "photo"
    assert got.warning


def test_names_that_look_like_options_or_urls(media: MediaFactory, tmp_path: Path) -> None:
    for name in ("-i.mp4", "http:example.mp4", "concat:a|b.mp4", "空 格.mp4"):
        got = probe(media.make(tmp_path / name, seconds=1))
        assert got.ok, (name, got.error)


def test_timeout_is_a_result_not_an_exception(media: MediaFactory, tmp_path: Path) -> None:
    got = probe(media.make(tmp_path / "clip.mp4", seconds=1), timeout=0)
    assert not got.ok and got.error and "did not finish" in got.error


def test_missing_file_raises_for_the_caller_to_retry(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "gone.mp4")


def test_probes_in_parallel_threads_do_not_interfere(media: MediaFactory, tmp_path: Path) -> None:
    paths = [media.make(tmp_path / f"c{s}.mp4", seconds=s, audio=s % 2 == 0) for s in (1, 2, 3, 4)]
    paths.append(half_of(paths[-1], tmp_path / "half.mp4"))
    alone = [probe(p) for p in paths]
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        together: list[ProbeResult] = list(pool.map(probe, paths))
    assert together == alone
    assert [r.ok for r in alone] == [True, True, True, True, False]


@pytest.mark.parametrize(
    "creation_time",
    ["1970-01-01T00:00:05Z", "2024-05-01T08:00:00.000000Z"],  # cameras without a set clock write 1970
)
def test_container_creation_time_is_reported_as_written(
    media: MediaFactory, tmp_path: Path, creation_time: str
) -> None:
    got = probe(media.make(tmp_path / "clip.mov", seconds=1, creation_time=creation_time))
    assert got.creation_time == parse_creation_time(creation_time)
    assert got.creation_time is not None and got.creation_time.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T08:00:00.000000Z", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("2024-05-01 16:00:00+08:00", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("2024-05-01T16:00:00+0800", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("2024:05:01 08:00:00", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("2024-05-01 08:00:00", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("1970-01-01T00:00:00.000000Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("0000-00-00T00:00:00.000000Z", None),
        ("0000-00-00 00:00:00", None),
        ("2024-13-01T00:00:00Z", None),
        ("2024-02-30T00:00:00Z", None),
        ("0001-01-01T00:00:00+14:00", None),  # before year 1 in UTC
        ("2024-05-01", None),  # a date alone is not a start time
        ("garbage", None),
        ("", None),
        ("\x00" * 40, None),
        ("9" * 10_000, None),
        (None, None),
        (1714550400, None),
    ],
)
def test_parse_creation_time(value: object, expected: datetime | None) -> None:
    assert parse_creation_time(value) == expected


def test_a_longer_subtitle_track_does_not_stretch_the_recording(media: MediaFactory, tmp_path: Path) -> None:
    # cameras put GPS fixes in subtitle tracks; the container's duration counts them, the footage does not
    clip = media.make(tmp_path / "clip.mp4", seconds=3)
    gps = tmp_path / "gps.srt"
    gps.write_text("1\n00:00:00,000 --> 00:00:01,000\nN31.2 E121.4\n\n2\n00:00:08,000 --> 00:00:09,000\nN31.3\n")
    out = tmp_path / "with-gps.mp4"
    inputs = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip), "-i", str(gps)]
    subprocess.run([*inputs, "-map", "0", "-map", "1", "-c", "copy", "-c:s", "mov_text", str(out)], check=True)
    got = probe(out)
    assert got.ok and got.warning is None
    assert got.duration_seconds == pytest.approx(3.0, abs=0.15)
