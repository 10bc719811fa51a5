"""Payments: an order is paid exactly once, without anyone reconciling screenshots by hand.

One module per job, all re-exported here (``from comanda.services import payments``):

- ``links``: ``start_payment`` opens a payment for a ``pending_payment`` order, a provider link (card,
  OXXO) whose expiry is the stock hold's, or SPEI instructions (reference and CLABE, no provider);
  ``new_link`` is "send me the link again".
- ``events``: ``apply_event`` applies a verified provider webhook: every event is a ``payment_events``
  row unique per provider event id (the replay guard), and the payment moves by conditional UPDATEs on
  its status, so concurrent duplicates pay once. Paid → ``orders.enter_queue`` (the sale in the ledger,
  the day's ticket) and a "paid" notification; an amount or currency that does not match, a payment for
  an order already paid or closed, or a late payment whose stock is gone → the payment is flagged for
  staff (handoff ticket ``payment_flag``), nothing is sold. Declined → the hold is released and the order
  waits for a new link until its hold time passes. Staff confirm SPEI (``mark_spei_received``) and cash
  (``collect_cash``) the same way.
- ``sweep``: ``expire_due`` expires the orders whose hold ran out unpaid.
- ``refunds``: ``refund`` gives money back through the payment's provider, once per idempotency key;
  ``refund_extra_charge`` is staff's one step for a second charge (flagged ``already_paid``).
- ``reconciliation``: ``reconcile`` compares a day's payments with each provider's books.

Lock order, the same on every path that changes an order's payment (webhooks, the sweep, new links,
staff): the order row first (SELECT … FOR UPDATE), then its payments, reservation and stock levels,
then the ticket counter. Calls to providers never happen while a webhook's transaction is open; the
sweep closes links after its commit and refunds run in three steps (row, provider, outcome). Only
``start_payment`` and ``new_link`` call a provider (make a link, close the one it replaces) inside
their caller's transaction, with the order locked: keep that transaction to the call alone.
"""

from comanda.services.payments.common import NotPayable, ProviderFor, RefundRefused, RetryLater
from comanda.services.payments.events import apply_event, collect_cash, mark_spei_received
from comanda.services.payments.links import PaymentInstructions, SpeiDetails, new_link, spei_reference, start_payment
from comanda.services.payments.reconciliation import ReconciliationRow, reconcile
from comanda.services.payments.refunds import refund, refund_extra_charge
from comanda.services.payments.sweep import expire_due

__all__ = [
    "NotPayable",
    "PaymentInstructions",
    "ProviderFor",
    "ReconciliationRow",
    "RefundRefused",
    "RetryLater",
    "SpeiDetails",
    "apply_event",
    "collect_cash",
    "expire_due",
    "mark_spei_received",
    "new_link",
    "reconcile",
    "refund",
    "refund_extra_charge",
    "spei_reference",
    "start_payment",
]
