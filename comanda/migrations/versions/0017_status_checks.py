"""status checks: CHECK constraints keep the older tables' statuses, kinds, reasons, methods, channels and
languages inside their enums (comanda/enums.py, as of this revision); the business's payment methods move
out of its FAQ data into a column of their own

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

LANGUAGES = ('es', 'en')
CHANNELS = ('whatsapp', 'twilio', 'simulator', 'rest', 'shell', 'console')
FULFILMENTS = ('pickup', 'delivery')
ORDER_STATUSES = ('pending_payment', 'received', 'preparing', 'ready', 'delivered', 'picked_up', 'cancelled', 'expired')
PAYMENT_METHODS = ('card', 'oxxo', 'spei', 'cash', 'store_credit')
PROVIDERS = ('sandbox', 'stripe', 'mercadopago', 'spei', 'cash', 'store_credit')
FLAG_REASONS = ('amount_mismatch', 'currency_mismatch', 'stock_gone', 'already_paid', 'order_closed')

# table → column → the values it may hold (NULL allowed, as check_in does)
CHECKS = {
    'businesses': {'default_language': LANGUAGES, 'return_refund_on': ('received', 'approved')},
    'staff_users': {'language': LANGUAGES},
    'customers': {'language': LANGUAGES, 'consent_marketing_source': ('chat', 'console', 'cli', 'import')},
    'conversations': {'channel': CHANNELS, 'language': LANGUAGES},
    'stock_items': {'kind': ('product', 'variant', 'ingredient')},
    'products': {'return_condition': ('any', 'unused', 'unopened')},
    'stock_movements': {
        'reason': ('opening', 'reservation', 'release', 'sale', 'return', 'purchase_receipt', 'adjustment',
                   'write_off'),
    },
    'reservations': {'status': ('active', 'committed', 'released', 'expired')},
    'carts': {'status': ('open', 'ordered', 'abandoned'), 'fulfilment': FULFILMENTS},
    'orders': {
        'channel': CHANNELS,
        'status': ORDER_STATUSES,
        'payment_status': ('unpaid', 'paid', 'refunded', 'partially_refunded', 'flagged'),
        'payment_method': PAYMENT_METHODS,
        'fulfilment': FULFILMENTS,
        'language': LANGUAGES,
    },
    'order_status_changes': {'from_status': ORDER_STATUSES, 'to_status': ORDER_STATUSES},
    'payments': {
        'provider': PROVIDERS,
        'method': PAYMENT_METHODS,
        'status': ('pending', 'paid', 'declined', 'expired', 'refunded', 'partially_refunded', 'flagged', 'voided'),
        'flag_reason': FLAG_REASONS,
        'card_funding': ('credit', 'debit', 'prepaid', 'unknown'),
    },
    'payment_events': {
        'provider': PROVIDERS,
        'outcome': ('paid', 'duplicate', 'declined', 'expired', 'pending', 'ignored', 'refund_succeeded',
                    'refund_failed') + FLAG_REASONS,
    },
    'refunds': {'status': ('pending', 'succeeded', 'failed')},
    'sandbox_charges': {'status': ('succeeded', 'declined')},
    'invoices': {
        'kind': ('ingreso', 'egreso', 'global'),
        'status': ('draft', 'sealed', 'stamped', 'rejected', 'failed', 'unconfirmed', 'cancellation_pending',
                   'cancelled'),
        'relation_type': ('01', '04'),
        'pac': ('local', 'facturapi', 'finkok'),
        'cancellation_motive': ('01', '02', '03', '04'),
    },
    'handoff_tickets': {
        'reason': ('requested', 'fallback', 'complaint', 'media', 'payment_flag', 'refund_failed', 'cancellation',
                   'return', 'privacy', 'invoice'),
    },
    'inbound_messages': {
        'channel': CHANNELS,
        'status': ('received', 'processing', 'processed', 'ignored', 'failed', 'parked'),
    },
    'outbound_messages': {
        'channel': CHANNELS,
        'status': ('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'given_up'),
    },
    'notifications': {
        'event': ('paid', 'paid_twice', 'declined', 'expired', 'flagged', 'preparing', 'ready', 'delivered',
                  'picked_up', 'cancelled', 'return_approved', 'return_rejected', 'return_received',
                  'return_refunded', 'return_credited', 'return_exchanged', 'return_credit_note'),
        'status': ('queued', 'sending', 'sent', 'failed', 'given_up'),
    },
    'privacy_requests': {
        'kind': ('access', 'rectification', 'erasure', 'opt_out'),
        'status': ('open', 'done', 'rejected'),
    },
}

# What a business offers (store credit offers itself to customers with a balance); none listed: cash, as before.
OFFERED = ('card', 'oxxo', 'spei', 'cash')
BUSINESSES = sa.table('businesses', sa.column('id', sa.String), sa.column('faq', sa.JSON),
                      sa.column('payment_methods', sa.JSON))


def upgrade() -> None:
    with op.batch_alter_table('businesses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_methods', sa.JSON(), nullable=True))
    connection = op.get_bind()
    for business_id, faq in connection.execute(sa.select(BUSINESSES.c.id, BUSINESSES.c.faq)).all():
        faq = dict(faq or {})
        listed = faq.pop('payment_methods', None) or []
        methods = [code for code in dict.fromkeys(listed) if code in OFFERED] or ['cash']
        connection.execute(
            BUSINESSES.update().where(BUSINESSES.c.id == business_id).values(payment_methods=methods, faq=faq)
        )
    with op.batch_alter_table('businesses', schema=None) as batch_op:
        batch_op.alter_column('payment_methods', existing_type=sa.JSON(), nullable=False)

    for table, columns in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, values in columns.items():
                listed = ', '.join(f"'{value}'" for value in values)
                batch_op.create_check_constraint(op.f(f'ck_{table}_{column}_valid'), f'{column} IN ({listed})')


def downgrade() -> None:
    for table, columns in reversed(CHECKS.items()):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(columns):
                batch_op.drop_constraint(op.f(f'ck_{table}_{column}_valid'), type_='check')

    connection = op.get_bind()
    rows = connection.execute(sa.select(BUSINESSES.c.id, BUSINESSES.c.faq, BUSINESSES.c.payment_methods)).all()
    for business_id, faq, methods in rows:
        connection.execute(
            BUSINESSES.update()
            .where(BUSINESSES.c.id == business_id)
            .values(faq={**(faq or {}), 'payment_methods': list(methods or [])})
        )
    with op.batch_alter_table('businesses', schema=None) as batch_op:
        batch_op.drop_column('payment_methods')
