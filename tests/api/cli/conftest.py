"""CLI tests (one file per api/cli module): ``cli`` and ``bare_cli`` come from tests/fixtures/cli.py via the root
conftest; the ingest area's inbox and database views are shared here for the ingest and recordings commands."""

from __future__ import annotations

from tests.ingest.conftest import db, inbox  # noqa: F401
