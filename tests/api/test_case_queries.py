"""The case lookup (``GET /api/v1/cases/{n}``), the API's busiest read: a fixed, small number of queries on one
connection whatever the case's size, the same JSON as the general action shapes give, and nothing cached
across requests (a revoked token or grant counts on the next one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH
from sqlalchemy import event, select

from api.auth import authenticate, create_token, revoke_token
from audit.access import action_condition, scope_for
from audit.holds import case_hold_json
from audit.shapes import actions_json
from storage.basics import utcnow
from storage.db import reading, transaction
from storage.models import Action, Recording
from storage.runtime import Runtime
from storage.shapes import recording_json
from tests.api.conftest import Tokens, events, ingest
from tests.fixtures.media import MediaFactory

# The token with its units and grants; the case's actions with its hold; their links with the recordings, their
# devices and officers (one UNION ALL). Pinned: a query more per lookup is a regression of the busiest read.
LOOKUP_SELECTS = 3


@dataclass
class Seen:
    selects: list[str] = field(default_factory=list)
    checkouts: int = 0


@contextmanager
def watching(client: TestClient) -> Iterator[Seen]:
    """Every SELECT the service's engines run (the writing one and, on PostgreSQL, the reading one), and every
    connection they take from their pools, meanwhile."""
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    engines = [e for e in (runtime.engine, runtime.reader) if e is not None]
    seen = Seen()

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.selects.append(statement)

    def checkout(*_args: Any) -> None:
        seen.checkouts += 1

    for engine in engines:
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "checkout", checkout)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "checkout", checkout)


def _post(client: TestClient, tokens: Tokens, action_id: str, case: str, unit: str, *devices: str) -> None:
    body = {
        "action_id": action_id,
        "case_number": case,
        "unit": unit,
        "started_at": "2024-05-01T08:00:00Z",
        "ended_at": "2024-05-01T08:00:02Z",
        "devices": list(devices),
        "officers": ["P1", "P2"] if action_id.endswith("1") else [],
    }
    response = client.post("/api/v1/actions", json=body, headers=tokens.headers("admin"))
    assert response.status_code == 200, response.text


@pytest.fixture
def city(client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path) -> None:
    """Case C-BIG: three actions, two in U1 (the reviewer's unit) and one in U2, on two filming devices and one
    that never docked, under a legal hold; case C-ONE: a single action."""
    for dev, tone in (("DEV-1", 440), ("DEV-2", 550)):
        ingest(runtime, media.make(tmp_path / "cam" / f"{dev}_P1_20240501080000_0001.mp4", seconds=2, tone=tone))
    _post(client, tokens, "A-1", "C-BIG", "U1", "DEV-1", "DEV-2")
    _post(client, tokens, "A-2", "C-BIG", "U1", "DEV-2", "DEV-9")
    _post(client, tokens, "A-3", "C-BIG", "U2", "DEV-1")
    _post(client, tokens, "B-1", "C-ONE", "U1", "DEV-1")
    held = client.post("/api/v1/cases/C-BIG/hold", json={"reason": "court order"}, headers=tokens.headers("admin"))
    assert held.status_code == 200, held.text


def _reference(runtime: Runtime, secret: str, case: str) -> dict[str, Any]:
    """The case as the general shapes (``actions_json``, ``recording_json``, ``case_hold_json``) give it."""
    with reading(runtime.sessions) as s:
        who = authenticate(s, secret)
        assert who is not None
        now = utcnow()
        conditions: list[Any] = [Action.case_number == case]
        scoped = action_condition(scope_for(who, now))
        if scoped is not None:
            conditions.append(scoped)
        actions = actions_json(s, conditions, now)
        ids = {rid for a in actions for rid in a["recordings"]}
        recs = s.scalars(select(Recording).where(Recording.id.in_(ids)).order_by(Recording.started_at, Recording.id))
        return {
            "case_number": case,
            "legal_hold": case_hold_json(s, case),
            "actions": actions,
            "recordings": [recording_json(r) for r in recs],
        }


@pytest.mark.usefixtures("city")
@pytest.mark.parametrize("role", ["reviewer", "auditor"])
def test_a_case_lookup_takes_three_queries_on_one_connection_whatever_its_size(
    client: TestClient, tokens: Tokens, runtime: Runtime, role: str
) -> None:
    counts, texts = {}, {}
    for case in ("C-BIG", "C-ONE"):
        with watching(client) as seen:
            response = client.get(f"/api/v1/cases/{case}", headers=tokens.headers(role))
        assert response.status_code == 200, response.text
        assert response.json() == _reference(runtime, tokens.secrets[role], case)
        assert seen.checkouts == 1, "the token and the case are read on one connection"
        counts[case] = len(seen.selects)
        texts[case] = seen.selects
    assert counts == {"C-BIG": LOOKUP_SELECTS, "C-ONE": LOOKUP_SELECTS}, seen.selects
    # The same statements' text whatever the case (no expanding IN re-rendered per lookup), each short enough for
    # psycopg's parse cache: a longer one, or a new text, is parsed again on every request.
    assert texts["C-BIG"] == texts["C-ONE"]
    lengths = [len(sql.encode()) for sql in texts["C-BIG"]]
    assert max(lengths) <= MAX_CACHED_STATEMENT_LENGTH, lengths


@pytest.mark.usefixtures("city")
def test_the_lookup_shows_a_reviewer_their_units_part_with_the_hold(client: TestClient, tokens: Tokens) -> None:
    mine = client.get("/api/v1/cases/C-BIG", headers=tokens.headers("reviewer")).json()
    every = client.get("/api/v1/cases/C-BIG", headers=tokens.headers("auditor")).json()
    assert [a["action_id"] for a in mine["actions"]] == ["A-1", "A-2"]
    assert [a["action_id"] for a in every["actions"]] == ["A-1", "A-2", "A-3"]
    first = mine["actions"][0]
    assert first["devices"] == ["DEV-1", "DEV-2"] and first["officers"] == ["P1", "P2"]
    assert mine["actions"][1]["devices"] == ["DEV-2", "DEV-9"] and mine["actions"][1]["officers"] == []
    assert [r["device"] for r in mine["recordings"]] == ["DEV-1", "DEV-2"]  # each once, though linked twice
    assert mine["legal_hold"]["reason"] == "court order" and mine["legal_hold"]["held_by"] == "token:admin-1"
    assert client.get("/api/v1/cases/NO-SUCH", headers=tokens.headers("reviewer")).status_code == 404


@pytest.mark.usefixtures("city")
def test_revoking_a_token_or_a_grant_counts_on_the_next_lookup(
    client: TestClient, tokens: Tokens, runtime: Runtime
) -> None:
    with transaction(runtime.sessions) as s:
        _t, dora = create_token(s, role="reviewer", name="dora", units=["U2"], actor="test")
    h = {"Authorization": f"Bearer {dora}"}
    assert client.get("/api/v1/cases/C-ONE", headers=h).status_code == 403  # U1's, and no grant
    body = {"to": "dora", "case_number": "C-ONE", "approver": "Head of U1", "reason": "review", "hours": 2}
    grant = client.post("/api/v1/access/grants", json=body, headers=tokens.headers("admin"))
    assert grant.status_code == 201, grant.text
    seen = client.get("/api/v1/cases/C-ONE", headers=h)
    assert seen.status_code == 200 and [a["action_id"] for a in seen.json()["actions"]] == ["B-1"]
    uses = [e for e in events(runtime, "access.grant_used") if e.subject == f"grant:{grant.json()['id']}"]
    assert len(uses) == 1 and uses[0].actor == "token:dora"  # the read relied on the grant: audited
    revoked = client.delete(f"/api/v1/access/grants/{grant.json()['id']}", headers=tokens.headers("admin"))
    assert revoked.status_code == 200
    assert client.get("/api/v1/cases/C-ONE", headers=h).status_code == 403
    assert client.get("/api/v1/cases/C-BIG", headers=h).status_code == 200  # A-3 is U2's
    with transaction(runtime.sessions) as s:  # what `bwc token revoke dora` does
        revoke_token(s, "dora", actor="test")
    assert client.get("/api/v1/cases/C-BIG", headers=h).status_code == 401


@pytest.mark.usefixtures("city")
def test_a_lookup_admits_its_caller_before_it_reads_the_case(client: TestClient, tokens: Tokens) -> None:
    """The token, then the role (``api.deps.Reading``), in the lookup's own reading session, before any of the case:
    a caller without a bearer header takes no connection at all, a role that may not read cases only the token's
    query, and an admitted one gets the ready JSON body."""
    with watching(client) as seen:
        anonymous = client.get("/api/v1/cases/C-BIG")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    assert seen.checkouts == 0 and seen.selects == []
    with watching(client) as seen:
        station = client.get("/api/v1/cases/C-BIG", headers=tokens.headers("station"))
    assert station.status_code == 403 and station.json()["error"]["code"] == "forbidden"
    assert seen.checkouts == 1 and len(seen.selects) == 1, seen.selects
    with watching(client) as seen:
        bogus = client.get("/api/v1/cases/C-BIG", headers={"Authorization": "Bearer bwc_not-a-token"})
    assert bogus.status_code == 401 and len(seen.selects) == 1
    found = client.get("/api/v1/cases/C-BIG", headers=tokens.headers("reviewer"))
    assert found.status_code == 200 and found.headers["content-type"] == "application/json"
