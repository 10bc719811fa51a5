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

# Values this revision adds to the CHECKs of 0017: a payment of the rest after the credit went back
# (flag reason and webhook outcome), and the link for a dearer exchange's difference (notification).
FLAG_REASONS = ('amount_mismatch', 'currency_mismatch', 'stock_gone', 'already_paid', 'order_closed')
OUTCOMES = ('paid', 'duplicate', 'declined', 'expired', 'pending', 'ignored', 'refund_succeeded', 'refund_failed')
EVENTS = ('paid', 'paid_twice', 'declined', 'expired', 'flagged', 'preparing', 'ready', 'delivered', 'picked_up',
          'cancelled', 'return_approved', 'return_rejected', 'return_received', 'return_refunded', 'return_credited',
          'return_exchanged', 'return_credit_note')
WIDENED = {
    ('payments', 'flag_reason'): (FLAG_REASONS, ('credit_returned',)),
    ('payment_events', 'outcome'): (OUTCOMES + FLAG_REASONS, ('credit_returned',)),
    ('notifications', 'event'): (EVENTS, ('return_exchange_due',)),
}


def _check(table: str, column: str, values: tuple) -> None:
    listed = ', '.join(f"'{value}'" for value in values)
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(op.f(f'ck_{table}_{column}_valid'), type_='check')
        batch_op.create_check_constraint(op.f(f'ck_{table}_{column}_valid'), f'{column} IN ({listed})')


def upgrade() -> None:
    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replacement_amount', comanda.types.Money(), nullable=True))
    # exchanges asked before were at the same price
    op.execute("UPDATE returns SET replacement_amount = refund_amount WHERE outcome = 'exchange'")
    with op.batch_alter_table('store_credit_movements', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_store_credit_movements_kind_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_store_credit_movements_kind_valid'), KINDS)
    for (table, column), (before, added) in WIDENED.items():
        _check(table, column, before + added)


def downgrade() -> None:
    for (table, column), (before, added) in WIDENED.items():
        # rows with a value this revision added would break the narrower CHECK: they are cleared or moved
        if table == 'notifications':
            op.execute(f"DELETE FROM notifications WHERE event IN ('{added[0]}')")
        elif table == 'payments':
            op.execute(f"UPDATE payments SET flag_reason = 'amount_mismatch' WHERE flag_reason = '{added[0]}'")
        else:
            op.execute(f"UPDATE payment_events SET outcome = 'amount_mismatch' WHERE outcome = '{added[0]}'")
        _check(table, column, before)
    # the balances stay: a restored movement becomes an adjustment
    op.execute("UPDATE store_credit_movements SET kind = 'adjustment' WHERE kind = 'restored'")
    with op.batch_alter_table('store_credit_movements', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_store_credit_movements_kind_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_store_credit_movements_kind_valid'), KINDS_BEFORE)
    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.drop_column('replacement_amount')
