"""leases on the inbox, outbox and notification queues: a claim expires unless its holder renews it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

WHEN = comanda.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('lease_until', WHEN, nullable=True))
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', WHEN, nullable=True))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', WHEN, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
