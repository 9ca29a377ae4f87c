"""``among``: a column's value in a list, whatever the strings hold (PostgreSQL sends them as an array's text)."""

from __future__ import annotations

from sqlalchemy import select

from audit.registry import among
from storage.db import transaction
from storage.models import Unit
from storage.runtime import Runtime

AWKWARD = ['a"b', "c\\d", "e,f", "{g}", "NULL", " h ", "执法-1", "", "x" * 128]


def test_among_finds_exactly_the_strings_asked_for(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        s.add_all([Unit(code=code, name=code) for code in [*AWKWARD, "other", "y" * 128]])
    with runtime.sessions() as s:
        found = set(s.scalars(select(Unit.code).where(among(s, Unit.code, [*AWKWARD, "missing", "y" * 129]))))
        ids = list(s.scalars(select(Unit.id).where(Unit.code.in_(["other"]))))
        by_id = list(s.scalars(select(Unit.code).where(among(s, Unit.id, ids))))
        none = list(s.scalars(select(Unit.code).where(among(s, Unit.code, []))))
    assert found == set(AWKWARD)  # a longer key is not cut down to the column's length to match
    assert by_id == ["other"] and none == []
