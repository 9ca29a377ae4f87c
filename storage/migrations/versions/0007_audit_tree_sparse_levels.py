"""the stored audit tree keeps every sixth level (0, 6, 12, ...): the blocks of the levels between go

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

A checkpoint after a bulk append of 10,000 events cost about 30 % of the append, a good part of it writing
a block row for every level. Now only the levels ``audit.tree`` stores are kept: a block of 64 hashes of a
stored level is one node of the next stored level, and the five levels between are hashed again from one
block when a proof needs them. The blocks of the stored levels have the same shape as before, so upgrading
is deleting the others (the code reads no other level). Downgrading hashes them again from the stored leaf
hashes (level 0), the way the earlier code wrote them: every level, ``64`` hashes a block.
"""
from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

STEP = 6
BLOCK = 64
HASH_SIZE = 32


def upgrade() -> None:
    op.execute(f"DELETE FROM audit_tree_blocks WHERE level % {STEP} <> 0")


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT block, hashes FROM audit_tree_blocks WHERE level = 0 ORDER BY block"))
    level = b"".join(bytes(data) for _, data in rows)
    blocks = sa.table("audit_tree_blocks", sa.column("level"), sa.column("block"), sa.column("hashes"))
    conn.execute(sa.text(f"DELETE FROM audit_tree_blocks WHERE level % {STEP} <> 0"))
    number = 0
    while len(level) >= 2 * HASH_SIZE:
        number += 1
        pairs = len(level) // (2 * HASH_SIZE)
        level = b"".join(
            hashlib.sha256(b"\x01" + level[2 * HASH_SIZE * i : 2 * HASH_SIZE * (i + 1)]).digest() for i in range(pairs)
        )
        if number % STEP:
            span = BLOCK * HASH_SIZE
            values = [
                {"level": number, "block": i // span, "hashes": level[i : i + span]} for i in range(0, len(level), span)
            ]
            conn.execute(sa.insert(blocks), values)
