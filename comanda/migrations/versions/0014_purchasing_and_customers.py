"""purchasing from low stock (price lists, receipts, one draft per store and supplier), stock counts, and the
customers' consent history, tags and notes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

WHEN = comanda.types.UTCDateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
DRAFT = sa.text("status = 'draft'")
OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    with op.batch_alter_table('suppliers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=2), server_default='es', nullable=False))
        batch_op.create_check_constraint(op.f('ck_suppliers_language_valid'), "language IN ('es', 'en')")
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_marketing_source', sa.String(length=20), nullable=True))
    # SQLite's batch mode copies the table and would lose the partial index's WHERE: set it again after.
    op.drop_index('uq_low_stock_alerts_open', table_name='low_stock_alerts')
    with op.batch_alter_table('low_stock_alerts', schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f('ck_low_stock_alerts_status_valid'), "status IN ('open', 'ordered', 'resolved')"
        )
        batch_op.create_index(batch_op.f('ix_low_stock_alerts_purchase_order_id'), ['purchase_order_id'], unique=False)
    op.create_index('uq_low_stock_alerts_open', 'low_stock_alerts', ['store_id', 'stock_item_id'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    with op.batch_alter_table('purchase_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_to', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('received_at', WHEN, nullable=True))
        batch_op.add_column(sa.Column('cancelled_at', WHEN, nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_purchase_orders_status_valid'),
            "status IN ('draft', 'sent', 'partially_received', 'received', 'cancelled')",
        )
    op.create_index('uq_purchase_orders_draft', 'purchase_orders', ['store_id', 'supplier_id'], unique=True,
                    sqlite_where=DRAFT, postgresql_where=DRAFT)
    with op.batch_alter_table('purchase_order_lines', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            op.f('uq_purchase_order_lines_purchase_order_id_stock_item_id'), ['purchase_order_id', 'stock_item_id']
        )
        batch_op.create_check_constraint(op.f('ck_purchase_order_lines_quantity_ordered_positive'), 'quantity_ordered > 0')
        batch_op.create_check_constraint(
            op.f('ck_purchase_order_lines_quantity_received_not_negative'), 'quantity_received >= 0'
        )

    op.create_table(
        'supplier_prices',
        sa.Column('supplier_id', sa.String(length=40), nullable=False),
        sa.Column('stock_item_id', ID, nullable=False),
        sa.Column('unit_cost', comanda.types.Money(precision=12, scale=2), nullable=False),
        sa.Column('updated_at', WHEN, nullable=False),
        sa.ForeignKeyConstraint(['stock_item_id'], ['stock_items.id'], name=op.f('fk_supplier_prices_stock_item_id_stock_items')),
        sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], name=op.f('fk_supplier_prices_supplier_id_suppliers')),
        sa.PrimaryKeyConstraint('supplier_id', 'stock_item_id', name=op.f('pk_supplier_prices')),
    )
    op.create_table(
        'purchase_receipts',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('purchase_order_id', ID, nullable=False),
        sa.Column('received_at', WHEN, nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['purchase_order_id'], ['purchase_orders.id'], name=op.f('fk_purchase_receipts_purchase_order_id_purchase_orders')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_purchase_receipts')),
    )
    op.create_index(op.f('ix_purchase_receipts_purchase_order_id'), 'purchase_receipts', ['purchase_order_id'], unique=False)
    op.create_table(
        'purchase_receipt_lines',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('receipt_id', ID, nullable=False),
        sa.Column('purchase_order_line_id', ID, nullable=False),
        sa.Column('quantity', comanda.types.Quantity(precision=14, scale=3), nullable=False),
        sa.CheckConstraint('quantity > 0', name=op.f('ck_purchase_receipt_lines_quantity_positive')),
        sa.ForeignKeyConstraint(['purchase_order_line_id'], ['purchase_order_lines.id'], name=op.f('fk_purchase_receipt_lines_purchase_order_line_id_purchase_order_lines')),
        sa.ForeignKeyConstraint(['receipt_id'], ['purchase_receipts.id'], name=op.f('fk_purchase_receipt_lines_receipt_id_purchase_receipts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_purchase_receipt_lines')),
    )
    op.create_index(op.f('ix_purchase_receipt_lines_receipt_id'), 'purchase_receipt_lines', ['receipt_id'], unique=False)
    op.create_table(
        'stock_counts',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('store_id', sa.String(length=40), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.Column('created_at', WHEN, nullable=False),
        sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_stock_counts_store_id_stores')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_counts')),
    )
    op.create_index(op.f('ix_stock_counts_store_id'), 'stock_counts', ['store_id'], unique=False)
    op.create_table(
        'stock_count_lines',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('count_id', ID, nullable=False),
        sa.Column('stock_item_id', ID, nullable=False),
        sa.Column('expected', comanda.types.Quantity(precision=14, scale=3), nullable=False),
        sa.Column('counted', comanda.types.Quantity(precision=14, scale=3), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.CheckConstraint("reason IN ('waste', 'breakage', 'count_correction')", name=op.f('ck_stock_count_lines_reason_valid')),
        sa.CheckConstraint('counted >= 0', name=op.f('ck_stock_count_lines_counted_not_negative')),
        sa.ForeignKeyConstraint(['count_id'], ['stock_counts.id'], name=op.f('fk_stock_count_lines_count_id_stock_counts')),
        sa.ForeignKeyConstraint(['stock_item_id'], ['stock_items.id'], name=op.f('fk_stock_count_lines_stock_item_id_stock_items')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_count_lines')),
        sa.UniqueConstraint('count_id', 'stock_item_id', name=op.f('uq_stock_count_lines_count_id_stock_item_id')),
    )
    op.create_index(op.f('ix_stock_count_lines_count_id'), 'stock_count_lines', ['count_id'], unique=False)
    op.create_table(
        'consent_events',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('granted', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
        sa.CheckConstraint("kind IN ('marketing', 'fiscal_data')", name=op.f('ck_consent_events_kind_valid')),
        sa.CheckConstraint("source IN ('chat', 'console', 'cli', 'import')", name=op.f('ck_consent_events_source_valid')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_consent_events_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_events')),
    )
    op.create_index(op.f('ix_consent_events_customer_id'), 'consent_events', ['customer_id'], unique=False)
    op.create_table(
        'customer_tags',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('tag', sa.String(length=40), nullable=False),
        sa.Column('added_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_tags_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_tags')),
        sa.UniqueConstraint('customer_id', 'tag', name=op.f('uq_customer_tags_customer_id_tag')),
    )
    op.create_index(op.f('ix_customer_tags_customer_id'), 'customer_tags', ['customer_id'], unique=False)
    op.create_table(
        'customer_notes',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('customer_id', ID, nullable=False),
        sa.Column('body', sa.String(length=2000), nullable=False),
        sa.Column('author', sa.String(length=100), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_notes_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_notes')),
    )
    op.create_index(op.f('ix_customer_notes_customer_id'), 'customer_notes', ['customer_id'], unique=False)


def downgrade() -> None:
    for table in ('customer_notes', 'customer_tags', 'consent_events', 'stock_count_lines', 'stock_counts',
                  'purchase_receipt_lines', 'purchase_receipts', 'supplier_prices'):
        op.drop_table(table)
    with op.batch_alter_table('purchase_order_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_purchase_order_lines_quantity_received_not_negative'), type_='check')
        batch_op.drop_constraint(op.f('ck_purchase_order_lines_quantity_ordered_positive'), type_='check')
        batch_op.drop_constraint(op.f('uq_purchase_order_lines_purchase_order_id_stock_item_id'), type_='unique')
    op.drop_index('uq_purchase_orders_draft', table_name='purchase_orders')
    with op.batch_alter_table('purchase_orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_purchase_orders_status_valid'), type_='check')
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('received_at')
        batch_op.drop_column('sent_to')
    op.drop_index('uq_low_stock_alerts_open', table_name='low_stock_alerts')
    with op.batch_alter_table('low_stock_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_low_stock_alerts_purchase_order_id'))
        batch_op.drop_constraint(op.f('ck_low_stock_alerts_status_valid'), type_='check')
    op.create_index('uq_low_stock_alerts_open', 'low_stock_alerts', ['store_id', 'stock_item_id'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('consent_marketing_source')
    with op.batch_alter_table('suppliers', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_suppliers_language_valid'), type_='check')
        batch_op.drop_column('language')
