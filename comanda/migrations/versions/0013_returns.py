"""returns: outcome, reason, conditions, exchange and receiving on returns; return policy per business and
product; the store-credit ledger

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = comanda.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('businesses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('return_refund_on', sa.String(length=10), server_default='received', nullable=False))
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('return_window_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('return_condition', sa.String(length=10), server_default='any', nullable=False))
    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('store_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('conversation_id', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=10), server_default='refund', nullable=False))
        batch_op.add_column(sa.Column('reason_code', sa.String(length=20), server_default='other', nullable=False))
        batch_op.add_column(sa.Column('declared_condition', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('received_condition', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('auto_approved', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('rejection_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('replacement_product_id', Id, nullable=True))
        batch_op.add_column(sa.Column('replacement_variant_id', Id, nullable=True))
        batch_op.add_column(sa.Column('replacement_reservation_id', Id, nullable=True))
        batch_op.add_column(sa.Column('exchange_order_id', Id, nullable=True))
        batch_op.add_column(sa.Column('manual_refund_reference', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('received_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('received_at', WHEN, nullable=True))
        batch_op.add_column(sa.Column('completed_at', WHEN, nullable=True))
        batch_op.create_foreign_key(op.f('fk_returns_store_id_stores'), 'stores', ['store_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_returns_conversation_id_conversations'), 'conversations', ['conversation_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_returns_replacement_product_id_products'), 'products', ['replacement_product_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_returns_replacement_variant_id_product_variants'), 'product_variants', ['replacement_variant_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_returns_replacement_reservation_id_reservations'), 'reservations', ['replacement_reservation_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_returns_exchange_order_id_orders'), 'orders', ['exchange_order_id'], ['id'])
        batch_op.create_check_constraint(op.f('ck_returns_status_valid'), "status IN ('requested', 'approved', 'rejected', 'received', 'refunded', 'credited', 'exchanged')")
        batch_op.create_check_constraint(op.f('ck_returns_outcome_valid'), "outcome IN ('refund', 'credit', 'exchange')")
        batch_op.create_check_constraint(op.f('ck_returns_reason_code_valid'), "reason_code IN ('defective', 'wrong_item', 'changed_mind', 'not_as_described', 'other')")
        batch_op.create_check_constraint(op.f('ck_returns_declared_condition_valid'), "declared_condition IN ('any', 'unused', 'unopened')")
        batch_op.create_check_constraint(op.f('ck_returns_received_condition_valid'), "received_condition IN ('good', 'damaged')")
        batch_op.create_index('ix_returns_store_status', ['store_id', 'status'], unique=False)
    with op.batch_alter_table('return_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount', comanda.types.Money(), server_default=sa.text('0'), nullable=False))
        batch_op.create_check_constraint(op.f('ck_return_lines_quantity_positive'), 'quantity > 0')

    op.create_table('store_credit_movements',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('business_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', Id, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('amount', comanda.types.Money(), nullable=False),
    sa.Column('return_id', Id, nullable=True),
    sa.Column('order_id', Id, nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.CheckConstraint("kind IN ('return', 'checkout', 'adjustment')", name=op.f('ck_store_credit_movements_kind_valid')),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_store_credit_movements_amount_not_zero')),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_store_credit_movements_business_id_businesses')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_store_credit_movements_customer_id_customers')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_store_credit_movements_order_id_orders')),
    sa.ForeignKeyConstraint(['return_id'], ['returns.id'], name=op.f('fk_store_credit_movements_return_id_returns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store_credit_movements')),
    sa.UniqueConstraint('kind', 'order_id', name=op.f('uq_store_credit_movements_kind_order_id')),
    sa.UniqueConstraint('kind', 'return_id', name=op.f('uq_store_credit_movements_kind_return_id'))
    )
    op.create_index('ix_store_credit_movements_customer', 'store_credit_movements', ['business_id', 'customer_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_store_credit_movements_customer', table_name='store_credit_movements')
    op.drop_table('store_credit_movements')
    with op.batch_alter_table('return_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_return_lines_quantity_positive'), type_='check')
        batch_op.drop_column('amount')
    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.drop_index('ix_returns_store_status')
        for name in ('status', 'outcome', 'reason_code', 'declared_condition', 'received_condition'):
            batch_op.drop_constraint(op.f(f'ck_returns_{name}_valid'), type_='check')
        for column, table in (
            ('exchange_order_id', 'orders'), ('replacement_reservation_id', 'reservations'),
            ('replacement_variant_id', 'product_variants'), ('replacement_product_id', 'products'),
            ('conversation_id', 'conversations'), ('store_id', 'stores'),
        ):
            batch_op.drop_constraint(op.f(f'fk_returns_{column}_{table}'), type_='foreignkey')
            batch_op.drop_column(column)
        for column in ('completed_at', 'received_at', 'received_by', 'manual_refund_reference', 'rejection_reason',
                       'auto_approved', 'received_condition', 'declared_condition', 'reason_code', 'outcome'):
            batch_op.drop_column(column)
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_column('return_condition')
        batch_op.drop_column('return_window_days')
    with op.batch_alter_table('businesses', schema=None) as batch_op:
        batch_op.drop_column('return_refund_on')
