"""staff console: stores per staff member (many to many), sessions, personal API tokens, login attempts,
the staff member's language and sound, the audit's address, queue thresholds per store, order and line notes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

On SQLite, dropping staff_users.store_id rebuilds the table (copy, drop, rename), which foreign keys
pointing at its rows would refuse: staff_users is rebuilt before the new tables that point at it exist,
and the store of each account is carried over in memory.
"""
from alembic import op
import sqlalchemy as sa
import comanda.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    bind = op.get_bind()
    # One store, or none (every store of the business), becomes rows of staff_store_access; owners see
    # every store without rows.
    accounts = bind.execute(sa.text("SELECT id, business_id, store_id, role FROM staff_users")).all()
    stores = bind.execute(sa.text("SELECT id, business_id FROM stores")).all()
    access = [
        {'staff_id': staff_id, 'store_id': store_id}
        for staff_id, business_id, own_store, role in accounts
        if role != 'owner'
        for store_id, store_business in stores
        if (own_store == store_id) or (own_store is None and store_business == business_id)
    ]
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=2), server_default='es', nullable=False))
        batch_op.add_column(sa.Column('sound_on', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('disabled_at', comanda.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_login_at', comanda.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint('fk_staff_users_store_id_stores', type_='foreignkey')
        batch_op.drop_column('store_id')
        batch_op.create_check_constraint(op.f('ck_staff_users_role_valid'), "role IN ('owner', 'manager', 'staff')")
    op.execute("UPDATE staff_users SET email = lower(email)")

    access_table = op.create_table('staff_store_access',
    sa.Column('staff_id', Id, nullable=False),
    sa.Column('store_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_staff_store_access_staff_id_staff_users')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_staff_store_access_store_id_stores')),
    sa.PrimaryKeyConstraint('staff_id', 'store_id', name=op.f('pk_staff_store_access'))
    )
    op.create_index(op.f('ix_staff_store_access_store_id'), 'staff_store_access', ['store_id'], unique=False)
    if access:
        op.bulk_insert(access_table, access)

    op.create_table('staff_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('staff_id', Id, nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('created_at', comanda.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', comanda.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', comanda.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', comanda.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=True),
    sa.CheckConstraint("end_reason IN ('logout', 'idle', 'expired', 'disabled', 'password_changed')", name=op.f('ck_staff_sessions_end_reason_valid')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_staff_sessions_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions'))
    )
    op.create_index(op.f('ix_staff_sessions_staff_id'), 'staff_sessions', ['staff_id'], unique=False)

    op.create_table('staff_api_tokens',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('staff_id', Id, nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', comanda.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', comanda.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', comanda.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_users.id'], name=op.f('fk_staff_api_tokens_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_api_tokens_token_hash'))
    )
    op.create_index(op.f('ix_staff_api_tokens_staff_id'), 'staff_api_tokens', ['staff_id'], unique=False)

    op.create_table('login_attempts',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('created_at', comanda.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('succeeded', 'wrong_password', 'unknown_account', 'disabled', 'throttled')", name=op.f('ck_login_attempts_outcome_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    op.create_index('ix_login_attempts_email_created', 'login_attempts', ['email', 'created_at'], unique=False)
    op.create_index('ix_login_attempts_ip_created', 'login_attempts', ['ip', 'created_at'], unique=False)

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ip', sa.String(length=45), nullable=True))
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.String(length=300), nullable=True))
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.String(length=500), nullable=True))
    with op.batch_alter_table('stores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue_warn_minutes', sa.Integer(), server_default='10', nullable=False))
        batch_op.add_column(sa.Column('queue_late_minutes', sa.Integer(), server_default='20', nullable=False))


def downgrade() -> None:
    bind = op.get_bind()
    # Plain DROP COLUMN (SQLite 3.35+): rebuilding stores or orders would trip over the rows pointing at them.
    for table, column in (
        ('stores', 'queue_late_minutes'),
        ('stores', 'queue_warn_minutes'),
        ('orders', 'note'),
        ('order_lines', 'note'),
        ('audit_events', 'ip'),
    ):
        op.drop_column(table, column)
    op.drop_index('ix_login_attempts_ip_created', table_name='login_attempts')
    op.drop_index('ix_login_attempts_email_created', table_name='login_attempts')
    op.drop_table('login_attempts')
    op.drop_index(op.f('ix_staff_api_tokens_staff_id'), table_name='staff_api_tokens')
    op.drop_table('staff_api_tokens')
    op.drop_index(op.f('ix_staff_sessions_staff_id'), table_name='staff_sessions')
    op.drop_table('staff_sessions')
    # Back to one store: a member of exactly one store keeps it; several (and owners) become "every store".
    single = bind.execute(sa.text(
        "SELECT staff_id, min(store_id) FROM staff_store_access GROUP BY staff_id HAVING count(*) = 1"
    )).all()
    op.drop_index(op.f('ix_staff_store_access_store_id'), table_name='staff_store_access')
    op.drop_table('staff_store_access')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_staff_users_role_valid'), type_='check')
        batch_op.add_column(sa.Column('store_id', sa.VARCHAR(length=40), nullable=True))
        batch_op.create_foreign_key('fk_staff_users_store_id_stores', 'stores', ['store_id'], ['id'])
        batch_op.drop_column('last_login_at')
        batch_op.drop_column('disabled_at')
        batch_op.drop_column('sound_on')
        batch_op.drop_column('language')
    for staff_id, store_id in single:
        bind.execute(sa.text("UPDATE staff_users SET store_id = :store WHERE id = :id"), {"store": store_id, "id": staff_id})
