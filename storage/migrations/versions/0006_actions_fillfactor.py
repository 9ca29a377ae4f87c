"""actions leave room on each page (PostgreSQL fillfactor 30), so that a verdict update stays on its page

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Every action is written twice in one import batch: inserted without a verdict, then given its verdict and
reasons (about twice the row's size) by the linking pass; every recompute writes it again. On a full page
each new version goes to another page and all four indexes of the table get a new entry; with room on the
page the update is HOT (heap-only), indexes untouched. At fillfactor 50 half of an import's updates still
found no room (the new version is the larger); at 30 all do. The cost is space: 4,000 imported actions take
2.3 MB at 30, 2.0 MB at 100 (where the old versions leave holes for vacuum) and 2.7 MB at 50. Only pages
written after this migration get the room; ``VACUUM FULL actions`` rewrites the others.
SQLite has no such setting.
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE actions SET (fillfactor = 30)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE actions RESET (fillfactor)")
