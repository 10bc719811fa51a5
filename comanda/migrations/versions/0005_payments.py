"""payments: notifications outbox, the sandbox provider's books, flagged payments, one open low-stock alert

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MONEY = comanda.types.Money(precision=12, scale=2)
WHEN = comanda.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'sandbox_charges',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('link_id', sa.String(length=60), nullable=False),
        sa.Column('order_reference', sa.String(length=60), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('amount', MONEY, nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('refunded', MONEY, nullable=False),
        sa.Column('refunds', sa.JSON(), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_charges')),
    )
    with op.batch_alter_table('sandbox_charges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_charges_link_id'), ['link_id'], unique=False)

    op.create_table(
        'notifications',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('conversation_id', sa.String(length=120), nullable=False),
        sa.Column('order_id', ID, nullable=False),
        sa.Column('event', sa.String(length=20), nullable=False),
        sa.Column('dedupe_key', sa.String(length=120), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', WHEN, nullable=False),
        sa.Column('last_error', sa.String(length=1000), nullable=True),
        sa.Column('created_at', WHEN, nullable=False),
        sa.Column('sent_at', WHEN, nullable=True),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'],
                                name=op.f('fk_notifications_conversation_id_conversations')),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_notifications_order_id_orders')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
        sa.UniqueConstraint('dedupe_key', name=op.f('uq_notifications_dedupe_key')),
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_notifications_status_next', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('low_stock_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_key', sa.String(length=80), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_low_stock_alerts_open_key'), ['open_key'])

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flag_reason', sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('flag_reason')

    with op.batch_alter_table('low_stock_alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_low_stock_alerts_open_key'), type_='unique')
        batch_op.drop_column('open_key')

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_status_next')
        batch_op.drop_index(batch_op.f('ix_notifications_order_id'))
        batch_op.drop_index(batch_op.f('ix_notifications_conversation_id'))
    op.drop_table('notifications')

    with op.batch_alter_table('sandbox_charges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_charges_link_id'))
    op.drop_table('sandbox_charges')
