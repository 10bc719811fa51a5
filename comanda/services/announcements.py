"""What the customer hears when their order moves (paid, ready, delivered, ...): which news, for which order.

The back office queues the event (comanda.services.notifications); the chat says it. Only the
conversation's own orders are spoken of, whatever order id the event carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy.orm import Session

from comanda import models as m
from comanda.enums import Fulfilment, NotificationEvent
from comanda.services import orders
from comanda.services.cfdi.invoicing import order_problem


@dataclass(frozen=True)
class Announcement:
    news: str  # the event, refined: "ready_delivery", "delivered_invoice" (the response is utter_order_<news>)
    order_id: int
    order: str  # the order as the customer knows it (orders.order_number)
    total: Any
    address: str  # the store's, for pickups


def announcement(session: Session, conversation_id: str, order_id: Any, event: Any) -> Optional[Announcement]:
    """The news for an event of one of the conversation's orders, or None (not theirs, not an event).

    "ready" depends on how the order is fulfilled; a finished order invites an invoice only while it can
    still get one (paid, not invoiced yet, within the deadline)."""
    order = orders.own_order(session, conversation_id, order_id)
    kind = NotificationEvent.parse(event)
    if order is None or kind is None:
        return None
    news = "cancelled_by_store" if kind == NotificationEvent.CANCELLED else str(kind)
    if kind == NotificationEvent.READY:
        news = "ready_delivery" if order.fulfilment == Fulfilment.DELIVERY else "ready_pickup"
    elif kind in (NotificationEvent.DELIVERED, NotificationEvent.PICKED_UP) and order_problem(session, order) is None:
        news = f"{kind}_invoice"
    store = session.get(m.Store, order.store_id)
    return Announcement(news, order.id, orders.order_number(order), order.total, store.address)
