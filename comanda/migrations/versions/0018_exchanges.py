"""exchanges at another price and split store credit: the replacement's price as it was at the request, and a
store-credit movement that gives back what an unpaid order had spent ('restored': cancelled or expired)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

KINDS = "kind IN ('return', 'checkout', 'restored', 'adjustment')"
KINDS_BEFORE = "kind IN ('return', 'checkout', 'adjustment')"


def upgrade() -> None:
    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replacement_amount', comanda.types.Money(), nullable=True))
    # exchanges asked before were at the same price
    op.execute("UPDATE returns SET replacement_amount = refund_amount WHERE outcome = 'exchange'")
    with op.batch_alter_table('store_credit_movements', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_store_credit_movements_kind_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_store_credit_movements_kind_valid'), KINDS)


def downgrade() -> None:
    # the balances stay: a restored movement becomes an adjustment
    op.execute("UPDATE store_credit_movements SET kind = 'adjustment' WHERE kind = 'restored'")
    with op.batch_alter_table('store_credit_movements', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_store_credit_movements_kind_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_store_credit_movements_kind_valid'), KINDS_BEFORE)
    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.drop_column('replacement_amount')
