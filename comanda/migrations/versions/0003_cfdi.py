"""cfdi: invoice documents, relations, live-invoice guard, retention; card funding on payments

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('relation_type', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('replaced_by_uuid', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('active_key', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('global_period', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('pac_document_id', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('test_document', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('pdf', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('cancellation_receipt', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('retain_until', sa.Date(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_active_key'), ['active_key'])

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card_funding', sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('card_funding')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_invoices_active_key'), type_='unique')
        for column in ('retain_until', 'cancellation_receipt', 'pdf', 'test_document', 'pac_document_id',
                       'global_period', 'active_key', 'replaced_by_uuid', 'relation_type'):
            batch_op.drop_column(column)
