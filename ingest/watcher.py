"""The watcher: notices complete files in a station's export folder and hands them to its handler.

The handler decides what "ingest" means: the local pipeline (:func:`ingest.service.local_handler`) or a push
to the service over HTTP (:mod:`ingest.station`); the watcher itself touches neither database nor store.

Filesystem events only mark candidates; a full rescan at start-up and every ``rescan_seconds`` catches
whatever events were missed. Readiness (size and mtime unchanged for ``stable_seconds``) is judged by
polling each candidate's stat, and failed files wait out their back-off before the next try.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from config.settings import Settings
from ingest.naming import classify, is_temporary
from ingest.outcome import IngestOutcome
from ingest.readiness import ReadinessTracker, complete_now
from storage.basics import utcnow

log = logging.getLogger(__name__)

OutcomeHook = Callable[[IngestOutcome], None]
ScanProgress = Callable[[int, int], None]  # (files handled, files in all)
Handler = Callable[[Path, Path], IngestOutcome]  # (watched root, complete file) -> what became of it
Backoff = Callable[[], list[tuple[str, datetime]]]  # (relpath, next attempt) of files that failed before
POLL_SECONDS = 1.0  # how often a not-yet-stable candidate's stat is looked at again
MAX_SLEEP = 0.5  # upper bound on how long a stop request waits to be noticed


def excluded_dirs(settings: Settings, root: Path) -> list[Path]:
    """Folders inside the watched root that are ours (done folder, local object store): never ingested."""
    mine = [settings.done_dir] if settings.done_dir is not None else []
    url = settings.store_url
    if url.startswith("file://"):
        mine.append(Path(unquote(urlsplit(url).path)))
    real_root = root.resolve()
    return [p.resolve() for p in mine if p.resolve().is_relative_to(real_root)]


def walk_files(root: Path, excluded: Iterable[Path] = ()) -> Iterator[Path]:
    """Every media or sidecar file under ``root`` (hidden folders and our own folders skipped)."""
    skip = {str(p) for p in excluded}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and str(Path(folder, d).resolve()) not in skip)
        for name in sorted(files):
            if classify(name) in ("media", "sidecar"):
                yield Path(folder, name)


def _media_first(path: Path) -> tuple[int, str]:
    return (0 if classify(path.name) == "media" else 1, str(path))


def scan_once(
    settings: Settings,
    root: Path,
    station: str,
    handler: Handler,
    progress: ScanProgress | None = None,
    *,
    on_outcome: OutcomeHook | None = None,
) -> list[IngestOutcome]:
    """Ingest every file under ``root`` that is complete now (``--once``); younger ones are ``not_stable``."""
    root = Path(os.path.abspath(root))
    files = sorted(walk_files(root, excluded_dirs(settings, root)), key=_media_first)
    media = [p for p in files if classify(p.name) == "media"]
    sidecars = [p for p in files if classify(p.name) != "media"]
    outcomes: list[IngestOutcome] = []
    handled: set[str] = set()  # sidecars already taken along with their media
    done = 0

    def record(outcome: IngestOutcome | None) -> None:
        nonlocal done
        done += 1
        if outcome is not None:
            outcomes.append(outcome)
            handled.update(str(root / s.path) for s in outcome.sidecars if s.final)
            if on_outcome is not None:
                on_outcome(outcome)
        if progress is not None:
            progress(done, len(files))

    # Media files are independent: hash, store and probe several at once (ffprobe and I/O overlap).
    for _path, outcome in parallel(
        settings.ingest_workers, media, lambda p: _scan_one(settings, root, p, station, handler, handled)
    ):
        record(outcome)
    # Sidecars last, one by one: most went with their media already.
    for path in sidecars:
        record(_scan_one(settings, root, path, station, handler, handled))
    return outcomes


T = TypeVar("T")


def parallel(workers: int, paths: Sequence[Path], work: Callable[[Path], T]) -> Iterator[tuple[Path, T]]:
    """Run ``work`` over ``paths`` on ``workers`` threads, yielding results as they finish (in this thread)."""
    if workers <= 1 or len(paths) <= 1:
        for path in paths:
            yield path, work(path)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        futures = {pool.submit(work, path): path for path in paths}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _scan_one(
    settings: Settings, root: Path, path: Path, station: str, handler: Handler, handled: set[str]
) -> IngestOutcome | None:
    if str(path) in handled:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None  # moved away meanwhile (a sidecar that went with its media)
    except OSError:
        st = None  # let the pipeline report it
    if st is not None and not complete_now(st.st_mtime_ns, time.time(), settings.stable_seconds):
        relpath = path.relative_to(root).as_posix()
        kind = classify(path.name)
        return IngestOutcome("not_stable", relpath, station, kind=kind, reason="not yet stable (still being written?)")
    return handler(root, path)


class _Events(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("created", "modified", "moved", "closed"):
            return
        target = event.dest_path if event.event_type == "moved" else event.src_path
        path = Path(os.fsdecode(target))
        if event.is_directory:
            if event.event_type in ("created", "moved"):
                self._watcher.add(walk_files(path, self._watcher.excluded))
        elif classify(path.name) in ("media", "sidecar"):
            self._watcher.add([path])


class Watcher:
    """Watch ``root`` for ``station`` until a stop event is set, handing each complete file to ``handler``;
    ``on_outcome`` hears every file handled, ``backoff`` tells which files failed before and when to retry."""

    def __init__(
        self,
        settings: Settings,
        root: Path,
        station: str,
        handler: Handler,
        *,
        backoff: Backoff | None = None,
        on_outcome: OutcomeHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.root = Path(os.path.abspath(root))
        self.station = station
        self.handler = handler
        self.backoff = backoff
        self.on_outcome = on_outcome
        self.clock = clock
        self.excluded = excluded_dirs(settings, self.root)
        self._lock = threading.Lock()
        self._candidates: set[Path] = set()
        self._wake = threading.Event()
        self._tracker = ReadinessTracker(settings.stable_seconds, is_temporary)
        self._handled: dict[Path, tuple[int, int]] = {}  # path -> (size, mtime_ns) already dealt with
        self._retry_at: dict[Path, float] = {}  # path -> clock time of the next try after a failure

    def add(self, paths: Iterable[Path]) -> None:
        """Mark files as candidates (thread-safe; called from watchdog's thread too)."""
        with self._lock:
            self._candidates.update(Path(os.path.abspath(p)) for p in paths)
        self._wake.set()

    def rescan(self) -> None:
        """Mark every file under the root; forget handled files that are gone."""
        files = [Path(os.path.abspath(p)) for p in walk_files(self.root, self.excluded)]
        present = set(files)
        for path in [p for p in self._handled if p not in present]:
            del self._handled[path]
        self.add(files)

    def run(self, stop: threading.Event) -> None:
        """Watch until ``stop`` is set: events and periodic rescans feed candidates, ready ones are ingested."""
        observer = Observer()
        observer.schedule(_Events(self), str(self.root), recursive=True)
        observer.start()
        log.info("watch.start root=%s station=%s", self.root, self.station)
        try:
            self._load_backoff()
            next_rescan = self.clock()
            while not stop.is_set():
                if self.clock() >= next_rescan:
                    self.rescan()
                    next_rescan = self.clock() + self.settings.rescan_seconds
                self._wake.clear()
                delay = self.tick(stop)
                wait = min(delay, max(0.0, next_rescan - self.clock()), MAX_SLEEP)
                if wait > 0:
                    self._wake.wait(wait)
        finally:
            observer.stop()
            observer.join()
            log.info("watch.stop root=%s station=%s", self.root, self.station)

    def _load_backoff(self) -> None:
        """Open failures from earlier runs keep their back-off across restarts."""
        if self.backoff is None:
            return
        now_wall, now = utcnow(), self.clock()
        for relpath, next_attempt_at in self.backoff():
            self._retry_at[Path(os.path.abspath(self.root / relpath))] = now + _seconds_until(next_attempt_at, now_wall)

    def tick(self, stop: threading.Event | None = None) -> float:
        """Look at every candidate once and ingest the ready ones; returns how long to sleep at most."""
        with self._lock:
            candidates = sorted(self._candidates, key=_media_first)
        now = self.clock()
        sleep = POLL_SECONDS * 60
        ready: list[Path] = []
        for path in candidates:
            try:
                st = os.stat(path)
            except OSError:
                self._drop(path)  # gone (moved with its media, deleted by the station); a rescan finds it again
                continue
            state = (st.st_size, st.st_mtime_ns)
            if self._handled.get(path) == state:
                self._drop(path, keep_handled=True)
                continue
            retry = self._retry_at.get(path)
            if retry is not None and retry > now:
                sleep = min(sleep, retry - now)
                continue
            if self._tracker.observe(str(path), st.st_size, st.st_mtime_ns, now):
                ready.append(path)
            else:
                sleep = min(sleep, POLL_SECONDS, self._tracker.wait_left(str(path), now) or POLL_SECONDS)
        media = [p for p in ready if classify(p.name) == "media"]
        sidecars = [p for p in ready if classify(p.name) != "media"]
        for group in (media, sidecars):
            for path, outcome in parallel(
                self.settings.ingest_workers if group is media else 1, group, lambda p: self._try_ingest(p, stop)
            ):
                sleep = min(sleep, self._handle(path, outcome))
        return sleep

    def _try_ingest(self, path: Path, stop: threading.Event | None) -> IngestOutcome | Exception | None:
        """Runs on a worker thread: the handler only, no watcher state."""
        if (stop is not None and stop.is_set()) or not os.path.lexists(path):
            return None
        try:
            return self.handler(self.root, path)
        except Exception as exc:  # a bug or a database outage must not end the watcher: retry this file later
            log.exception("watch.ingest_crashed path=%s", path)
            return exc

    def _handle(self, path: Path, outcome: IngestOutcome | Exception | None) -> float:
        if outcome is None:
            return POLL_SECONDS * 60
        if isinstance(outcome, Exception):
            self._retry_at[path] = self.clock() + self.settings.retry_base_seconds
            return self.settings.retry_base_seconds
        self._note(path, outcome)
        for side in outcome.sidecars:
            self._note(self.root / side.path, side)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        if outcome.status in ("waiting", "not_stable"):
            return POLL_SECONDS
        if outcome.failed:
            return max(0.0, self._retry_at.get(path, self.clock()) - self.clock())
        return POLL_SECONDS * 60

    def _note(self, path: Path, outcome: IngestOutcome) -> None:
        move_pending = (
            self.settings.after_ingest != "keep" and outcome.after_ingest is None and outcome.status != "ignored"
        )
        if outcome.final and move_pending and os.path.lexists(path):
            # Stored, but the move or delete did not happen (full disk, permissions): try that again later.
            self._retry_at[path] = self.clock() + self.settings.retry_base_seconds
            self._tracker.forget(str(path))
            return
        if outcome.final:
            self._retry_at.pop(path, None)
            try:
                st = os.stat(path)
            except OSError:
                self._drop(path)  # moved or deleted after ingest
                return
            self._handled[path] = (st.st_size, st.st_mtime_ns)
            self._drop(path, keep_handled=True)
        elif outcome.failed:
            wait = (
                _seconds_until(outcome.next_attempt_at, utcnow())
                if outcome.next_attempt_at is not None
                else self.settings.retry_base_seconds
            )
            self._retry_at[path] = self.clock() + wait

    def _drop(self, path: Path, keep_handled: bool = False) -> None:
        with self._lock:
            self._candidates.discard(path)
        self._tracker.forget(str(path))
        if not keep_handled:
            self._handled.pop(path, None)

    def pending(self) -> list[Path]:
        """Candidates not yet handled (for tests and status)."""
        with self._lock:
            return sorted(self._candidates)


def _seconds_until(when: datetime, now: datetime) -> float:
    return max(0.0, (when - now).total_seconds())
