"""whatsapp identities, numbered options, outbox dedupe

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient', sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column('numbered_options', sa.JSON(), nullable=True))

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('whatsapp_user_id', sa.String(length=160), nullable=True))
        batch_op.alter_column('phone',
               existing_type=sa.VARCHAR(length=20),
               nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_customers_whatsapp_user_id'), ['whatsapp_user_id'])

    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.alter_column('sender',
               existing_type=sa.VARCHAR(length=40),
               type_=sa.String(length=160),
               existing_nullable=True)

    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dedupe_key', sa.String(length=240), nullable=True))
        batch_op.alter_column('recipient',
               existing_type=sa.VARCHAR(length=40),
               type_=sa.String(length=160),
               existing_nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_outbound_messages_dedupe_key'), ['dedupe_key'])



def downgrade() -> None:
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_outbound_messages_dedupe_key'), type_='unique')
        batch_op.alter_column('recipient',
               existing_type=sa.String(length=160),
               type_=sa.VARCHAR(length=40),
               existing_nullable=False)
        batch_op.drop_column('dedupe_key')

    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.alter_column('sender',
               existing_type=sa.String(length=160),
               type_=sa.VARCHAR(length=40),
               existing_nullable=True)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_customers_whatsapp_user_id'), type_='unique')
        batch_op.alter_column('phone',
               existing_type=sa.VARCHAR(length=20),
               nullable=False)
        batch_op.drop_column('whatsapp_user_id')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('numbered_options')
        batch_op.drop_column('recipient')

