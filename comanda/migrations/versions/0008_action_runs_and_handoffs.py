"""action runs (an action's answer kept per turn step, replayed on a retry); handoff waiting times

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = comanda.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'action_runs',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('conversation_id', sa.String(length=120), nullable=False),
        sa.Column('message_id', sa.String(length=200), nullable=False),
        sa.Column('action_name', sa.String(length=100), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('response', sa.JSON(), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_action_runs')),
        sa.UniqueConstraint('conversation_id', 'message_id', 'action_name', 'position',
                            name=op.f('uq_action_runs_conversation_id_message_id_action_name_position')),
    )
    with op.batch_alter_table('businesses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handoff_unanswered_minutes', sa.Integer(), nullable=False,
                                      server_default=sa.text('10')))
    with op.batch_alter_table('handoff_tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unanswered_notice_at', WHEN, nullable=True))
        batch_op.add_column(sa.Column('closed_by', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('handoff_tickets', schema=None) as batch_op:
        batch_op.drop_column('closed_by')
        batch_op.drop_column('unanswered_notice_at')
    with op.batch_alter_table('businesses', schema=None) as batch_op:
        batch_op.drop_column('handoff_unanswered_minutes')
    op.drop_table('action_runs')
