"""modifier groups that take several options, options that remove or replace a recipe ingredient, and
free-text kitchen notes on cart lines (order lines have theirs since 0009)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('modifier_groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_choices', sa.Integer(), nullable=False, server_default='1'))
    op.create_table('modifier_option_ingredients',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('option_id', ID, nullable=False),
    sa.Column('stock_item_id', ID, nullable=False),
    sa.Column('replacement_id', ID, nullable=True),
    sa.ForeignKeyConstraint(['option_id'], ['modifier_options.id'], name=op.f('fk_modifier_option_ingredients_option_id_modifier_options')),
    sa.ForeignKeyConstraint(['replacement_id'], ['stock_items.id'], name=op.f('fk_modifier_option_ingredients_replacement_id_stock_items')),
    sa.ForeignKeyConstraint(['stock_item_id'], ['stock_items.id'], name=op.f('fk_modifier_option_ingredients_stock_item_id_stock_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_modifier_option_ingredients')),
    sa.UniqueConstraint('option_id', 'stock_item_id', name=op.f('uq_modifier_option_ingredients_option_id_stock_item_id'))
    )
    with op.batch_alter_table('modifier_option_ingredients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_modifier_option_ingredients_option_id'), ['option_id'], unique=False)
    with op.batch_alter_table('cart_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cart_lines', schema=None) as batch_op:
        batch_op.drop_column('note')
    with op.batch_alter_table('modifier_option_ingredients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_modifier_option_ingredients_option_id'))
    op.drop_table('modifier_option_ingredients')
    with op.batch_alter_table('modifier_groups', schema=None) as batch_op:
        batch_op.drop_column('max_choices')
