"""actions leave half of each page free (PostgreSQL fillfactor 50), so that a verdict update stays on its page

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Every action is written twice in one import batch: inserted, then given its verdict by the linking pass, and
again by every recompute. With full pages each new version goes to another page and all four indexes of the
table get a new entry; with room on the page the update is HOT (heap-only), indexes untouched: the import's
verdict update took a fifth of the time. The room costs nothing a full page would not: the old version of a
row updated right after its insert occupies it until vacuum either way. Only rows written after this
migration get the room; ``VACUUM FULL actions`` rewrites the existing ones. SQLite has no such setting.
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE actions SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE actions RESET (fillfactor)")
