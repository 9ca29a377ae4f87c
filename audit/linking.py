"""Linking recordings to enforcement actions and keeping coverage verdicts current (SPEC §6).

Stub signatures: the ingest pipeline calls ``on_recordings_changed`` in the same transaction that stores
a recording, so that a camera docking late updates every affected verdict without anyone asking.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from bwc.config.settings import Settings


def on_recordings_changed(session: Session, settings: Settings, recording_ids: Sequence[int], actor: str) -> None:
    """Link these recordings to the actions they belong to and recompute exactly those actions."""


def on_actions_changed(session: Session, settings: Settings, action_ids: Sequence[int], actor: str) -> None:
    """Resolve devices, relink recordings and recompute coverage for these actions."""
