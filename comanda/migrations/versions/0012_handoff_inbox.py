"""handoff inbox: ticket statuses waiting/open/resolved (CHECK), claimed/first response/resolved times and
who resolved it, staff replies, private notes, customer media, the store's inbox threshold, templates and
canned replies

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

Old statuses map as open → waiting (nobody took it), assigned → open (someone owns it), closed → resolved.
``closed_by`` held an actor string; ``staff:<id>`` becomes ``resolved_by`` (the command line's resolutions
stay in the audit trail only).
"""
from alembic import op
import sqlalchemy as sa

import comanda.types

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = comanda.types.UTCDateTime(timezone=True)
STATUSES = {'open': 'waiting', 'assigned': 'open', 'closed': 'resolved'}


def upgrade() -> None:
    bind = op.get_bind()
    closed = bind.execute(sa.text("SELECT id, closed_by FROM handoff_tickets WHERE closed_by LIKE 'staff:%'")).all()
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handoff_warn_minutes', sa.Integer(), server_default='5', nullable=False))
        batch_op.add_column(sa.Column('handoff_templates', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('canned_replies', sa.JSON(), server_default='[]', nullable=False))
    # Each old value moves in one statement (CASE), so no value is renamed twice.
    op.execute(
        "UPDATE handoff_tickets SET status = CASE status "
        + " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in STATUSES.items())
        + " ELSE status END"
    )
    with op.batch_alter_table('handoff_tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updated_at', WHEN, nullable=True))
        batch_op.add_column(sa.Column('claimed_at', WHEN, nullable=True))
        batch_op.add_column(sa.Column('first_response_at', WHEN, nullable=True))
        batch_op.alter_column('closed_at', new_column_name='resolved_at')
        batch_op.add_column(sa.Column('resolved_by', Id, nullable=True))
        batch_op.drop_column('closed_by')
    op.execute("UPDATE handoff_tickets SET updated_at = COALESCE(resolved_at, created_at)")
    for ticket_id, actor in closed:
        staff_id = actor.split(':', 1)[1]
        if staff_id.isdigit():
            bind.execute(
                sa.text("UPDATE handoff_tickets SET resolved_by = :staff WHERE id = :id"),
                {'staff': int(staff_id), 'id': ticket_id},
            )
    with op.batch_alter_table('handoff_tickets', schema=None) as batch_op:
        batch_op.alter_column('updated_at', existing_type=WHEN, nullable=False)
        batch_op.create_foreign_key(
            op.f('fk_handoff_tickets_resolved_by_staff_users'), 'staff_users', ['resolved_by'], ['id']
        )
        batch_op.create_check_constraint(op.f('ck_handoff_tickets_status_valid'), "status IN ('waiting', 'open', 'resolved')")
        batch_op.create_index(batch_op.f('ix_handoff_tickets_updated_at'), ['updated_at'], unique=False)
        batch_op.create_index('ix_handoff_tickets_store_status', ['store_id', 'status'], unique=False)
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_messages_updated_at'), ['updated_at'], unique=False)
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_processed_at'), ['processed_at'], unique=False)

    op.create_table('handoff_replies',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('ticket_id', Id, nullable=False),
    sa.Column('staff_id', Id, nullable=False),
    sa.Column('outbound_message_id', Id, nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('in_tracker', sa.Boolean(), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['handoff_tickets.id'], name=op.f('fk_handoff_replies_ticket_id_handoff_tickets')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_handoff_replies_staff_id_staff_users')),
    sa.ForeignKeyConstraint(['outbound_message_id'], ['outbound_messages.id'], name=op.f('fk_handoff_replies_outbound_message_id_outbound_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff_replies')),
    sa.UniqueConstraint('outbound_message_id', name=op.f('uq_handoff_replies_outbound_message_id'))
    )
    op.create_index(op.f('ix_handoff_replies_ticket_id'), 'handoff_replies', ['ticket_id'], unique=False)

    op.create_table('handoff_notes',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('ticket_id', Id, nullable=False),
    sa.Column('staff_id', Id, nullable=False),
    sa.Column('text', sa.String(length=2000), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['handoff_tickets.id'], name=op.f('fk_handoff_notes_ticket_id_handoff_tickets')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_handoff_notes_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff_notes'))
    )
    op.create_index(op.f('ix_handoff_notes_ticket_id'), 'handoff_notes', ['ticket_id'], unique=False)

    op.create_table('customer_media',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('inbound_message_id', Id, nullable=False),
    sa.Column('media_id', sa.String(length=200), nullable=False),
    sa.Column('mime_type', sa.String(length=100), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_messages.id'], name=op.f('fk_customer_media_inbound_message_id_inbound_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_media')),
    sa.UniqueConstraint('inbound_message_id', name=op.f('uq_customer_media_inbound_message_id'))
    )


def downgrade() -> None:
    op.drop_table('customer_media')
    op.drop_index(op.f('ix_handoff_notes_ticket_id'), table_name='handoff_notes')
    op.drop_table('handoff_notes')
    op.drop_index(op.f('ix_handoff_replies_ticket_id'), table_name='handoff_replies')
    op.drop_table('handoff_replies')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_processed_at'))
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_messages_updated_at'))
    with op.batch_alter_table('handoff_tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_handoff_tickets_store_status')
        batch_op.drop_index(batch_op.f('ix_handoff_tickets_updated_at'))
        batch_op.drop_constraint(op.f('ck_handoff_tickets_status_valid'), type_='check')
        batch_op.drop_constraint(op.f('fk_handoff_tickets_resolved_by_staff_users'), type_='foreignkey')
        batch_op.add_column(sa.Column('closed_by', sa.String(length=100), nullable=True))
        batch_op.drop_column('resolved_by')
        batch_op.alter_column('resolved_at', new_column_name='closed_at')
        batch_op.drop_column('first_response_at')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('updated_at')
    op.execute(
        "UPDATE handoff_tickets SET status = CASE status "
        + " ".join(f"WHEN '{new}' THEN '{old}'" for old, new in STATUSES.items())
        + " ELSE status END"
    )
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.drop_column('canned_replies')
        batch_op.drop_column('handoff_templates')
        batch_op.drop_column('handoff_warn_minutes')
