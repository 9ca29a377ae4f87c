"""What a media file holds, as ffprobe sees it (SPEC §4): streams, codecs, a duration we can prove, creation time.

Every file is untrusted. :func:`probe` never raises for bad media; it says ``ok=False`` with the reason and the
pipeline stores the file as ``unplayable`` evidence. It runs ``ffprobe`` as a subprocess (stdout and stderr go
to temporary files, so memory stays flat and nothing is shared), so callers may run it in a thread beside the
hashing of the same file.

How the duration is proven: the container's declared duration (an MP4 ``moov`` or a Matroska header written
when recording ended) is only believed if packets can be read up to it. The same ffprobe call that describes
the file seeks past its end (landing on the last keyframe) and reads a bounded number of packets; if they reach
the declared end, it stands (one ffprobe start per healthy file: starting ffprobe costs ~80 ms of CPU here,
the probing itself almost nothing). Otherwise a read from a few seconds before the declared end is tried. If not,
the file is truncated (for instance an MP4 made with ``+faststart``, cut short by a copy that failed): every
packet is read and the duration is the end of the last one, with a ``warning``. An MP4 cut short whose index
(``moov``) was at the end cannot be read at all and is not ok; neither is a file with no audio or video packet.

Why ffprobe directly and not ffmpeg-python's ``probe``: that function has no deadline (a hostile file could
hang ingest) and passes the path unguarded, so a name like ``-i.mp4`` or ``http:x.mp4`` is read as an option
or a URL. Here every call has a deadline, the path is given as ``file:<absolute path>`` and only the ``file``
protocol is allowed.
"""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

TAIL_SECONDS = 5.0  # how far before the declared end the proof starts reading
SEEK_PAST_END = 99_999_999  # seconds: a seek there lands on the last keyframe of an indexed file
TAIL_PACKETS = 2000  # at most this many packets read after that seek (bounded memory if the seek fails)
PACKET_FIELDS = "packet=stream_index,pts_time,dts_time,duration_time"
END_TOLERANCE_SECONDS = 1.0  # packets ending this close to the declared end prove it
PHOTO_CODECS = frozenset({"mjpeg", "png", "jpegls", "jpeg2000", "bmp", "tiff", "webp"})
CREATION_TAGS = ("creation_time", "com.apple.quicktime.creationdate")
MAX_ERROR_CHARS = 500
_ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+")


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    error: str | None
    duration_seconds: float | None
    has_video: bool
    has_audio: bool
    media_kind: str | None  # "video" | "audio" | "photo"
    container: str | None
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    creation_time: datetime | None  # aware UTC as the container tags say; untrusted, may be anything
    warning: str | None = None  # an ok file that is damaged, e.g. truncated
    declared_duration_seconds: float | None = field(default=None)  # what the container claims


class _TimedOut(Exception):
    pass


@dataclass(frozen=True)
class _Run:
    returncode: int
    stdout: IO[bytes]
    stderr: str


def probe(path: Path, timeout: float = 60.0, *, ffprobe: str = "ffprobe") -> ProbeResult:
    """Probe one file; ``ok`` means at least one audio or video stream with a proven duration, or a photo.

    Raises ``OSError`` only when the file itself is missing or ffprobe cannot be started: those are not
    properties of the media, and the caller should retry rather than call the evidence unplayable.
    """
    size = path.stat().st_size
    if size == 0:
        return _failed("empty file (0 bytes)")
    prober = _Prober(path, time.monotonic() + timeout, ffprobe)
    try:
        return prober.run()
    except _TimedOut:
        log.warning("probe.timeout path=%s timeout=%s", path, timeout)
        return _failed(f"ffprobe did not finish within {timeout:g} s")


class _Prober:
    """One probe of one file; holds nothing beyond the call."""

    def __init__(self, path: Path, deadline: float, ffprobe: str) -> None:
        self.path = path
        self.url = "file:" + str(path.absolute())  # "file:" so that a name like "http:x" is not a URL
        self.deadline = deadline
        self.ffprobe = ffprobe

    def run(self) -> ProbeResult:
        # One ffprobe call for a healthy file: the description plus the packets after a seek past the end
        # (which lands on the last keyframe), bounded in number; they prove the declared end (see _timed).
        # Formats that cannot seek (a still image, some streams) refuse that: describe them plainly.
        described = self._describe(
            "-read_intervals", f"{SEEK_PAST_END}%+#{TAIL_PACKETS}", "-show_entries", PACKET_FIELDS
        )
        if isinstance(described, str) and "seek" in described:
            described = self._describe()
        if isinstance(described, str):
            return _failed(described)
        data = described
        raw_format = data.get("format")
        fmt: dict[str, Any] = raw_format if isinstance(raw_format, dict) else {}
        streams = [s for s in data.get("streams") or [] if isinstance(s, dict)]
        # A stream counts only with the basics a player needs: garbage bytes sometimes "probe" as a tiny
        # video stream with no size, or audio with no sample rate.
        video = [s for s in streams if s.get("codec_type") == "video" and not _attached_picture(s) and _has_size(s)]
        audio = [s for s in streams if s.get("codec_type") == "audio" and _positive_int(s.get("sample_rate"))]
        base = ProbeResult(
            ok=False,
            error=None,
            duration_seconds=None,
            has_video=bool(video),
            has_audio=bool(audio),
            media_kind="video" if video else "audio" if audio else None,
            container=_text(fmt.get("format_name"), 64),
            video_codec=_text(video[0].get("codec_name"), 64) if video else None,
            audio_codec=_text(audio[0].get("codec_name"), 64) if audio else None,
            width=_positive_int(video[0].get("width")) if video else None,
            height=_positive_int(video[0].get("height")) if video else None,
            creation_time=_creation_time(fmt, streams),
        )
        if _is_photo(fmt, video, audio):
            return self._photo(base)
        if not video and not audio:
            return _replace(base, error="no audio or video stream")
        tail = [p for p in data.get("packets") or [] if isinstance(p, dict)]
        return self._timed(base, fmt, video + audio, tail)

    def _describe(self, *args: str) -> dict[str, Any] | str:
        """ffprobe's JSON description of the file, or why there is none."""
        with self._ffprobe(*args, "-show_format", "-show_streams", "-of", "json") as run:
            if run.returncode != 0:
                return self._error(run.stderr, run.returncode)
            try:
                data = json.loads(run.stdout.read().decode("utf-8", "replace"))
            except ValueError:
                return "ffprobe printed no readable description of the file"
        return data if isinstance(data, dict) else "ffprobe printed no readable description of the file"

    def _photo(self, base: ProbeResult) -> ProbeResult:
        """A still image is ok when it has a size and a frame decodes; decoder complaints become a warning."""
        photo = _replace(base, has_video=False, media_kind="photo")
        if photo.width is None or photo.height is None:
            return _replace(photo, error="no image data")
        with self._ffprobe("-show_entries", "frame=width,height", "-of", "compact=p=0") as run:
            frames = sum(1 for line in run.stdout if line.strip())
            if run.returncode != 0 or frames == 0:
                return _replace(photo, error=self._error(run.stderr, run.returncode) or "image cannot be decoded")
            warning = f"image data damaged: {self._error(run.stderr, 0)}" if run.stderr.strip() else None
        return _replace(photo, ok=True, warning=warning)

    def _timed(
        self, base: ProbeResult, fmt: Mapping[str, Any], usable: list[dict[str, Any]], tail: list[dict[str, Any]]
    ) -> ProbeResult:
        """Audio or video: believe the declared duration only as far as packets prove it."""
        indexes = {s.get("index") for s in usable}
        start = _number(fmt.get("start_time")) or 0.0
        declared = _declared_duration(fmt, usable, start)
        base = _replace(base, declared_duration_seconds=declared)
        if declared is not None and declared > 0:
            tail_end = _latest_end(tail, indexes)
            if tail_end is not None and tail_end - start >= declared - END_TOLERANCE_SECONDS:
                return _replace(base, ok=True, duration_seconds=declared)
            seek = start + declared - TAIL_SECONDS
            if seek > max(start, 0.0):
                # The seek past the end may land early (few keyframes) or fail (no index): try from closer in.
                tail_end = self._last_packet_end(indexes, seek=seek)
                if tail_end is not None and tail_end - start >= declared - END_TOLERANCE_SECONDS:
                    return _replace(base, ok=True, duration_seconds=declared)
        proven_end = self._last_packet_end(indexes, seek=None)
        proven = None if proven_end is None else round(proven_end - start, 6)
        if proven is None or proven <= 0:
            return _replace(base, error="no audio or video packet can be read")
        if declared is None or declared <= 0:
            return _replace(base, ok=True, duration_seconds=proven)
        if proven >= declared - END_TOLERANCE_SECONDS:  # the tail read was merely unlucky
            return _replace(base, ok=True, duration_seconds=declared)
        log.info("probe.truncated path=%s declared=%s proven=%s", self.path, declared, proven)
        return _replace(
            base,
            ok=True,
            duration_seconds=proven,
            warning=f"truncated: the container declares {declared:.3f} s, packets end at {proven:.3f} s",
        )

    def _last_packet_end(self, indexes: set[Any], *, seek: float | None) -> float | None:
        """The latest end time (pts or dts + duration) of the streams' packets, reading from ``seek`` to EOF."""
        args = ["-show_entries", PACKET_FIELDS, "-of", "compact=p=0"]
        if seek is not None:
            args = ["-read_intervals", f"{seek:.6f}%", *args]
        with self._ffprobe(*args) as run:
            return _latest_end(_compact_lines(run.stdout), indexes)

    def _ffprobe(self, *args: str) -> _RunContext:
        return _RunContext(
            [self.ffprobe, "-v", "error", "-hide_banner", "-protocol_whitelist", "file", *args, self.url],
            self.deadline,
        )

    def _error(self, stderr: str, returncode: int) -> str:
        """ffprobe's last complaints, without memory addresses or the full path."""
        text = _ADDRESS.sub("", stderr).replace(self.url, self.path.name)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            return f"ffprobe exited with status {returncode}" if returncode else ""
        return "; ".join(lines[-3:])[:MAX_ERROR_CHARS]


class _RunContext:
    """Run ffprobe to completion (or the deadline) with its output in temporary files."""

    def __init__(self, args: list[str], deadline: float) -> None:
        self.args = args
        self.deadline = deadline
        self.out: IO[bytes] | None = None

    def __enter__(self) -> _Run:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _TimedOut
        out = tempfile.TemporaryFile()
        try:
            with tempfile.TemporaryFile() as err:
                completed = subprocess.run(
                    self.args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=remaining, check=False
                )
                err.seek(0)
                stderr = err.read(64 * 1024).decode("utf-8", "replace")
        except subprocess.TimeoutExpired as exc:  # run() has killed and reaped ffprobe
            out.close()
            raise _TimedOut from exc
        except BaseException:
            out.close()
            raise
        out.seek(0)
        self.out = out
        return _Run(completed.returncode, out, stderr)

    def __exit__(self, *exc: object) -> None:
        if self.out is not None:
            self.out.close()


def parse_creation_time(value: object) -> datetime | None:
    """A container's creation time as aware UTC, or None for anything unparseable (``0000-00-00``, junk)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) < 16 or len(text) > 64:  # a date alone is too vague to be a start time
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")  # EXIF style
        except ValueError:
            return None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _creation_time(fmt: Mapping[str, Any], streams: list[dict[str, Any]]) -> datetime | None:
    """The format's creation time, else the first stream's that parses."""
    for owner in (fmt, *streams):
        tags = owner.get("tags")
        if not isinstance(tags, dict):
            continue
        lowered = {str(k).lower(): v for k, v in tags.items()}
        for key in CREATION_TAGS:
            parsed = parse_creation_time(lowered.get(key))
            if parsed is not None:
                return parsed
    return None


def _declared_duration(fmt: Mapping[str, Any], usable: list[dict[str, Any]], start: float) -> float | None:
    """How long the audio and video claim to be; a longer data track (GPS, timecode) does not count."""
    ends = []
    for stream in usable:
        duration = _number(stream.get("duration"))
        if duration is not None:
            stream_start = _number(stream.get("start_time"))
            ends.append((start if stream_start is None else stream_start) + duration)
    if ends:
        return round(max(ends) - start, 6)
    return _number(fmt.get("duration"))


def _is_photo(fmt: Mapping[str, Any], video: list[dict[str, Any]], audio: list[dict[str, Any]]) -> bool:
    """One still-image stream in an image container (an MJPEG video in an AVI is not a photo)."""
    name = str(fmt.get("format_name") or "")
    image_container = name == "image2" or name.endswith("_pipe")
    return image_container and not audio and len(video) == 1 and video[0].get("codec_name") in PHOTO_CODECS


def _attached_picture(stream: Mapping[str, Any]) -> bool:
    disposition = stream.get("disposition")
    return isinstance(disposition, dict) and bool(disposition.get("attached_pic"))


def _latest_end(packets: Iterable[Mapping[str, Any]], indexes: set[Any]) -> float | None:
    """The latest end time (pts, else dts, plus duration) among the packets of the given streams."""
    latest: float | None = None
    for fields in packets:
        if _int(fields.get("stream_index")) not in indexes:
            continue
        at = _number(fields.get("pts_time"))
        if at is None:
            at = _number(fields.get("dts_time"))
        if at is None:
            continue
        end = at + (_number(fields.get("duration_time")) or 0.0)
        latest = end if latest is None else max(latest, end)
    return latest


def _compact_lines(stream: IO[bytes]) -> Iterator[dict[str, str]]:
    for raw in stream:
        line = raw.decode("utf-8", "replace").strip()
        if line:
            yield dict(part.split("=", 1) for part in line.split("|") if "=" in part)


def _failed(error: str) -> ProbeResult:
    return ProbeResult(
        ok=False,
        error=error,
        duration_seconds=None,
        has_video=False,
        has_audio=False,
        media_kind=None,
        container=None,
        video_codec=None,
        audio_codec=None,
        width=None,
        height=None,
        creation_time=None,
    )


def _replace(result: ProbeResult, **changes: Any) -> ProbeResult:
    return replace(result, **changes)


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: object) -> int | None:
    if not isinstance(value, str | int | float):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _has_size(stream: Mapping[str, Any]) -> bool:
    return _positive_int(stream.get("width")) is not None and _positive_int(stream.get("height")) is not None


def _positive_int(value: object) -> int | None:
    number = _int(value)
    return number if number is not None and number > 0 else None


def _text(value: object, limit: int) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None
