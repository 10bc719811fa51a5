"""review inbox and training runs: messages the bot was unsure about (grouped by text, each sighting kept
once), the runs of `comanda train` with their evaluation, and staff members' WhatsApp numbers

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = comanda.types.UTCDateTime(timezone=True)
REASONS = "reason IN ('low_confidence', 'fallback', 'ambiguous', 'corrected', 'handoff', 'unplaced', 'conflict')"


def upgrade() -> None:
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('whatsapp_phone', sa.String(length=20), nullable=True))
        batch_op.create_unique_constraint(op.f('uq_staff_users_whatsapp_phone'), ['whatsapp_phone'])

    op.create_table('review_items',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('business_id', sa.String(length=40), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('text_key', sa.String(length=400), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=True),
    sa.Column('intent', sa.String(length=100), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('runner_up', sa.String(length=100), nullable=True),
    sa.Column('runner_up_confidence', sa.Float(), nullable=True),
    sa.Column('ranking', sa.JSON(), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('unplaced', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', WHEN, nullable=False),
    sa.Column('last_seen_at', WHEN, nullable=False),
    sa.Column('last_conversation_id', sa.String(length=120), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('decision', sa.JSON(), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decided_at', WHEN, nullable=True),
    sa.CheckConstraint("status IN ('waiting', 'correct', 'changed', 'fixed', 'ignored')", name=op.f('ck_review_items_status_valid')),
    sa.CheckConstraint(REASONS, name=op.f('ck_review_items_reason_valid')),
    sa.ForeignKeyConstraint(['business_id'], ['businesses.id'], name=op.f('fk_review_items_business_id_businesses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_items')),
    sa.UniqueConstraint('business_id', 'text_key', name=op.f('uq_review_items_business_id_text_key'))
    )
    op.create_index('ix_review_items_status_last', 'review_items', ['status', 'last_seen_at'], unique=False)

    op.create_table('review_sightings',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('item_id', Id, nullable=False),
    sa.Column('store_id', sa.String(length=40), nullable=False),
    sa.Column('conversation_id', sa.String(length=120), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=True),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('seen_at', WHEN, nullable=False),
    sa.CheckConstraint(REASONS, name=op.f('ck_review_sightings_reason_valid')),
    sa.ForeignKeyConstraint(['item_id'], ['review_items.id'], name=op.f('fk_review_sightings_item_id_review_items')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_review_sightings_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_sightings')),
    sa.UniqueConstraint('conversation_id', 'message_id', 'reason', name=op.f('uq_review_sightings_conversation_id_message_id_reason'))
    )
    op.create_index(op.f('ix_review_sightings_item_id'), 'review_sightings', ['item_id'], unique=False)
    op.create_index(op.f('ix_review_sightings_store_id'), 'review_sightings', ['store_id'], unique=False)

    op.create_table('training_runs',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('started_by', sa.String(length=100), nullable=False),
    sa.Column('forced', sa.Boolean(), nullable=False),
    sa.Column('progress', sa.Text(), nullable=False),
    sa.Column('model_path', sa.String(length=500), nullable=True),
    sa.Column('previous_model_path', sa.String(length=500), nullable=True),
    sa.Column('comparison', sa.JSON(), nullable=True),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.Column('started_at', WHEN, nullable=False),
    sa.Column('finished_at', WHEN, nullable=True),
    sa.CheckConstraint("status IN ('running', 'activated', 'kept_old', 'failed', 'rolled_back')", name=op.f('ck_training_runs_status_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_runs'))
    )


def downgrade() -> None:
    op.drop_table('training_runs')
    op.drop_index(op.f('ix_review_sightings_store_id'), table_name='review_sightings')
    op.drop_index(op.f('ix_review_sightings_item_id'), table_name='review_sightings')
    op.drop_table('review_sightings')
    op.drop_index('ix_review_items_status_last', table_name='review_items')
    op.drop_table('review_items')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_staff_users_whatsapp_phone'), type_='unique')
        batch_op.drop_column('whatsapp_phone')
