"""one open low-stock alert per store and item by a partial unique index on the status, not a stored key

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    with op.batch_alter_table('low_stock_alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_low_stock_alerts_open_key'), type_='unique')
        batch_op.drop_column('open_key')
    op.create_index('uq_low_stock_alerts_open', 'low_stock_alerts', ['store_id', 'stock_item_id'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index('uq_low_stock_alerts_open', table_name='low_stock_alerts')
    with op.batch_alter_table('low_stock_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('open_key', sa.String(length=80), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_low_stock_alerts_open_key'), ['open_key'])
    op.execute("UPDATE low_stock_alerts SET open_key = store_id || ':' || stock_item_id WHERE status = 'open'")
