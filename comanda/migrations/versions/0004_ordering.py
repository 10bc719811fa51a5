"""ordering: store location, delivery radius and ticket prefix; coordinates with 6 places

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

COORDINATES = [('carts', 'delivery_latitude'), ('carts', 'delivery_longitude'),
               ('orders', 'delivery_latitude'), ('orders', 'delivery_longitude')]


def upgrade() -> None:
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('latitude', comanda.types.Coordinate(precision=9, scale=6), nullable=True))
        batch_op.add_column(sa.Column('longitude', comanda.types.Coordinate(precision=9, scale=6), nullable=True))
        batch_op.add_column(sa.Column('delivery_radius_km', comanda.types.Quantity(precision=14, scale=3),
                                      nullable=True))
        batch_op.add_column(sa.Column('ticket_prefix', sa.String(length=4), nullable=False, server_default='A'))
    for table, column in COORDINATES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=comanda.types.Quantity(precision=14, scale=3),
                                  type_=comanda.types.Coordinate(precision=9, scale=6), existing_nullable=True)


def downgrade() -> None:
    for table, column in COORDINATES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=comanda.types.Coordinate(precision=9, scale=6),
                                  type_=comanda.types.Quantity(precision=14, scale=3), existing_nullable=True)
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.drop_column('ticket_prefix')
        batch_op.drop_column('delivery_radius_km')
        batch_op.drop_column('longitude')
        batch_op.drop_column('latitude')
