"""level-0 blocks of the audit tree are written by the bulk appends, ahead of the checkpoints

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

A checkpoint after a bulk append of 10,000 events read every new event's leaf hash back. Now the bulk append
writes the level-0 blocks its leaves fill whole (``storage.events.append_events``) and the checkpoint reads
those, a row per 64 events; so level 0 may hold blocks beyond the latest checkpoint. No data changes on
upgrade (the checkpoint reads a missing block's leaves from the events, as before). PostgreSQL stores the
blocks' hashes inline and uncompressed (``STORAGE PLAIN``): a block of 64 random hashes (2 KiB) was just
over the size at which PostgreSQL tries to compress a row and then moves the value to the TOAST table, a
second table and index written per block and read per block. The rows already stored keep their TOAST until
rewritten; both are read alike. The downgrade deletes the level-0 blocks no checkpoint covers yet (the code
before wrote none, and 0007's downgrade hashes the levels between from an unbroken level 0).
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BLOCK = 64


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_tree_blocks ALTER COLUMN hashes SET STORAGE PLAIN")


def downgrade() -> None:
    op.execute(
        f"DELETE FROM audit_tree_blocks WHERE level = 0 "
        f"AND block * {BLOCK} >= (SELECT coalesce(max(size), 0) FROM audit_checkpoints)"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_tree_blocks ALTER COLUMN hashes SET STORAGE EXTENDED")
