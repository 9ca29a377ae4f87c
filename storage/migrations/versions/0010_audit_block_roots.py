"""the tree's leaves are the events' leaf hashes: bulk appends write one root per 64 leaves, not the leaves again

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Since 0009 a bulk append wrote the level-0 blocks of the audit tree (64 leaf hashes, 2 KiB a row) its leaves
filled, and a checkpoint read them back and hashed them up to level 6: a second copy of every leaf hash,
which ``audit_events.leaf_hash`` already holds, written and read once more per event (about a quarter of what
the tree added to a bulk append). Now level 0 is read from the events by ``seq`` (the primary key) where a
proof needs it, the bulk append hashes each block it fills whole up to its root (node ``(6, block)``, the
hashing the checkpoint did) and stores that one 32-byte root in ``audit_block_roots``, and a checkpoint reads
the roots (``audit.tree``). Upgrading deletes the level-0 blocks: the levels from 6 up that the checkpoints
stored are unchanged, and a checkpoint hashes the roots of blocks it finds none for from the events.
Downgrading writes level 0 again from the events' leaf hashes up to the latest checkpoint (as 0009's code
left it: whole blocks, the last one short) and drops the roots; 0009's code heals the blocks beyond.
Replicas of the previous image beside this one cannot checkpoint or prove (they find no level 0 and answer
``audit_tree_incomplete``) until they are replaced; what they append is read correctly by this one.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BLOCK = 64
PAGE = BLOCK * 1024  # events read at a time by the downgrade


def upgrade() -> None:
    op.create_table(
        'audit_block_roots',
        sa.Column('block', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
        sa.Column('root', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('block'),
    )
    op.execute("DELETE FROM audit_tree_blocks WHERE level = 0")


def downgrade() -> None:
    conn = op.get_bind()
    size = int(conn.execute(sa.text("SELECT coalesce(max(size), 0) FROM audit_checkpoints")).scalar_one())
    blocks = sa.table("audit_tree_blocks", sa.column("level"), sa.column("block"), sa.column("hashes"))
    select = sa.text("SELECT leaf_hash FROM audit_events WHERE seq > :a AND seq <= :b ORDER BY seq")
    # replicas of the previous image, run beside this one, may have written level-0 blocks of their own
    conn.execute(sa.text("DELETE FROM audit_tree_blocks WHERE level = 0"))
    for start in range(0, size, PAGE):
        hashes = conn.execute(select, {"a": start, "b": min(start + PAGE, size)}).scalars().all()
        data = bytes.fromhex("".join(hashes))
        span = 32 * BLOCK
        values = [
            {"level": 0, "block": (start + i // 32) // BLOCK, "hashes": data[i : i + span]}
            for i in range(0, len(data), span)
        ]
        if values:
            conn.execute(sa.insert(blocks), values)
    op.drop_table('audit_block_roots')
