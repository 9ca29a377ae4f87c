"""When is a file complete? Size and mtime unchanged for ``stable_seconds``, and not a temporary name.

Pure: fed with observations and an injected clock, so it is tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

TemporaryTest = Callable[[str], bool]


@dataclass(frozen=True)
class _State:
    size: int
    mtime_ns: int
    since: float  # clock time when this (size, mtime) was first observed


class ReadinessTracker:
    """Remembers each candidate's last (size, mtime) and since when it has held still."""

    def __init__(self, stable_seconds: float, is_temporary: TemporaryTest) -> None:
        self.stable_seconds = stable_seconds
        self._is_temporary = is_temporary
        self._states: dict[str, _State] = {}

    def observe(self, path: str, size: int, mtime_ns: int, now: float) -> bool:
        """Record what the file looks like at ``now``; True once it has been unchanged long enough."""
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        if self._is_temporary(name):
            self._states.pop(path, None)
            return False
        state = self._states.get(path)
        if state is None or (state.size, state.mtime_ns) != (size, mtime_ns):
            state = _State(size, mtime_ns, now)
            self._states[path] = state
        return now - state.since >= self.stable_seconds

    def wait_left(self, path: str, now: float) -> float | None:
        """Seconds until ``path`` may be ready if it holds still; None when it is not tracked."""
        state = self._states.get(path)
        if state is None:
            return None
        return max(0.0, self.stable_seconds - (now - state.since))

    def forget(self, path: str) -> None:
        self._states.pop(path, None)

    def tracked(self) -> list[str]:
        return list(self._states)


def complete_now(mtime_ns: int, now: float, stable_seconds: float) -> bool:
    """For a one-off scan: a file last modified at least ``stable_seconds`` ago is complete."""
    return now - mtime_ns / 1e9 >= stable_seconds
