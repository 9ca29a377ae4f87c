"""Linking recordings to enforcement actions and keeping coverage verdicts current (SPEC §6).

The entry points: :func:`on_recordings_changed` and :func:`on_actions_changed` in the caller's transaction
(ingest, imports, edits); :func:`recompute_all`, which commits batch by batch; :func:`link_by_hand` and
:func:`unlink_by_hand` for reviewers. Inside: ``load`` (what is read), ``sync`` (devices, links, verdicts of
a batch), ``write`` (the batch's bulk writes), ``incremental``, ``full`` and ``manual``.
"""

from audit.linking.full import Recomputed, recompute_all
from audit.linking.incremental import on_actions_changed, on_recordings_changed
from audit.linking.manual import ManualChange, link_by_hand, unlink_by_hand

__all__ = [
    "ManualChange",
    "Recomputed",
    "link_by_hand",
    "on_actions_changed",
    "on_recordings_changed",
    "recompute_all",
    "unlink_by_hand",
]
