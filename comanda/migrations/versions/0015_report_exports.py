"""report_exports: the daily export of the reports, a row per business and day, claimed once; orders by
store and the time they entered the queue, refunds by the time they went back, as the reports read them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

WHEN = comanda.types.UTCDateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'report_exports',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('business_id', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('claimed_by', sa.String(length=80), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('lease_until', WHEN, nullable=False),
        sa.Column('files', sa.JSON(), nullable=False),
        sa.Column('emailed_to', sa.String(length=1000), nullable=True),
        sa.Column('error', sa.String(length=1000), nullable=True),
        sa.Column('created_at', WHEN, nullable=False),
        sa.Column('finished_at', WHEN, nullable=True),
        sa.CheckConstraint("status IN ('running', 'done', 'failed')", name=op.f('ck_report_exports_status_valid')),
        sa.ForeignKeyConstraint(
            ['business_id'], ['businesses.id'], name=op.f('fk_report_exports_business_id_businesses')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_exports')),
        sa.UniqueConstraint('business_id', 'day', name=op.f('uq_report_exports_business_id_day')),
    )
    op.create_index('ix_orders_store_confirmed', 'orders', ['store_id', 'confirmed_at'], unique=False)
    op.create_index('ix_refunds_completed_at', 'refunds', ['completed_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_refunds_completed_at', table_name='refunds')
    op.drop_index('ix_orders_store_confirmed', table_name='orders')
    op.drop_table('report_exports')
