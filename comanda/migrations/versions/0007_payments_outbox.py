"""payments: the sandbox's webhook outbox; refunds found by the provider's refund id (refund webhooks)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = comanda.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'sandbox_webhooks',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('charge_id', sa.String(length=40), nullable=False),
        sa.Column('event_id', sa.String(length=60), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', WHEN, nullable=False),
        sa.Column('last_error', sa.String(length=1000), nullable=True),
        sa.Column('created_at', WHEN, nullable=False),
        sa.Column('delivered_at', WHEN, nullable=True),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'given_up')",
                           name=op.f('ck_sandbox_webhooks_status_valid')),
        sa.ForeignKeyConstraint(['charge_id'], ['sandbox_charges.id'],
                                name=op.f('fk_sandbox_webhooks_charge_id_sandbox_charges')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_webhooks')),
        sa.UniqueConstraint('event_id', name=op.f('uq_sandbox_webhooks_event_id')),
    )
    with op.batch_alter_table('sandbox_webhooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_webhooks_charge_id'), ['charge_id'], unique=False)
        batch_op.create_index('ix_sandbox_webhooks_status_next', ['status', 'next_attempt_at'], unique=False)
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_provider_refund_id'), ['provider_refund_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_provider_refund_id'))
    op.drop_table('sandbox_webhooks')
