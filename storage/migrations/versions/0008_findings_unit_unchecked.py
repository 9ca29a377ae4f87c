"""findings.unit_id without a foreign key: opening findings in bulk no longer pays a per-row check

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

A finding's ``unit_id`` is a copy, taken when it opens, of its subject's unit: read from an action, device,
officer or recording row whose own ``unit_id`` the database checks, or the id of a unit row itself; units are
never deleted. The foreign key checked it again for every row, one trigger call each: on PostgreSQL two
thirds of the server time of the COPY that opens a full recompute's findings (5.9 of the 8.7 ms of backend
CPU for a batch of 187, 2026-12-01), the largest single part of what findings added to a first recompute.
The ledger reads the unit by an outer join, as before.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# SQLite's foreign key has no name: this convention gives the reflected one the name PostgreSQL gave its own
NAMES = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}


def upgrade() -> None:
    with op.batch_alter_table('findings', schema=None, naming_convention=NAMES) as batch_op:
        batch_op.drop_constraint('findings_unit_id_fkey', type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('findings', schema=None, naming_convention=NAMES) as batch_op:
        batch_op.create_foreign_key('findings_unit_id_fkey', 'units', ['unit_id'], ['id'])
