"""Customer profiles for staff: search, what a customer bought (at the member's stores), consent with when and
where it was given, saved fiscal data masked, staff tags and notes, open handoffs and returns.

Marketing consent is its own flag, separate from service messages (answers about the customer's own orders,
inside the chat they opened); giving or withdrawing it is a ``consent_events`` row with its source and time.
Nothing here sends marketing.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Dict, List, Optional

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate
from comanda.enums import (
    ConsentKind,
    ConsentSource,
    HandoffStatus,
    OrderStatus,
    RefundStatus,
    ReturnStatus,
    values_in,
)
from comanda.errors import InvalidInput, NotFound
from comanda.services import audit
from comanda.services.audit import Actor
from comanda.services.staff import StaffMember, visible_customer, visible_customers

# Orders that were sales: placed and not cancelled or expired before they were paid or handed over.
SOLD = values_in(
    (OrderStatus.RECEIVED, OrderStatus.PREPARING, OrderStatus.READY, OrderStatus.DELIVERED, OrderStatus.PICKED_UP)
)
OPEN_RETURNS = values_in((ReturnStatus.REQUESTED, ReturnStatus.APPROVED, ReturnStatus.RECEIVED))
TAG = re.compile(r"^[\w][\w\- ]{0,39}$")
SEARCH_LIMIT = 50


def search(session: Session, who: StaffMember, text: str) -> List[Dict[str, Any]]:
    """Customers whose name or phone contains the text (digits match phones however they are typed)."""
    query = visible_customers(select(m.Customer), who).where(m.Customer.erased_at.is_(None))
    text = text.strip()
    if text:
        digits = re.sub(r"\D", "", text)
        wanted = [func.lower(m.Customer.name).contains(text.lower())]
        if len(digits) >= 3:
            wanted.append(cast(m.Customer.phone, String).contains(digits))
        query = query.where(or_(*wanted))
    customers = session.execute(query.order_by(m.Customer.updated_at.desc()).limit(SEARCH_LIMIT)).scalars().all()
    stats = _order_stats(session, who, [c.id for c in customers])
    return [
        {
            "id": c.id,
            "name": c.name,
            "phone": c.phone,
            "language": c.language,
            "orders": stats.get(c.id, (0, Decimal(0), None))[0],
            "spend": stats.get(c.id, (0, Decimal(0), None))[1],
            "last_order_at": stats.get(c.id, (0, Decimal(0), None))[2],
        }
        for c in customers
    ]


def _order_stats(session: Session, who: StaffMember, customer_ids: List[int]) -> Dict[int, tuple]:
    """Per customer: sales at the member's stores, their total less refunds, and the last one's time."""
    if not customer_ids:
        return {}
    rows = session.execute(
        select(m.Order.customer_id, func.count(m.Order.id), func.sum(m.Order.total), func.max(m.Order.created_at))
        .where(
            m.Order.customer_id.in_(customer_ids), m.Order.status.in_(SOLD), m.Order.store_id.in_(sorted(who.store_ids))
        )
        .group_by(m.Order.customer_id)
    ).all()
    refunded = dict(
        session.execute(
            select(m.Order.customer_id, func.sum(m.Refund.amount))
            .join(m.Payment, m.Payment.id == m.Refund.payment_id)
            .join(m.Order, m.Order.id == m.Payment.order_id)
            .where(
                m.Order.customer_id.in_(customer_ids),
                m.Order.store_id.in_(sorted(who.store_ids)),
                m.Refund.status == RefundStatus.SUCCEEDED.value,
            )
            .group_by(m.Order.customer_id)
        ).all()
    )
    return {
        customer_id: (
            count,
            Decimal(str(total or 0)).quantize(Decimal("0.01")) - Decimal(str(refunded.get(customer_id) or 0)),
            last,
        )
        for customer_id, count, total, last in rows
    }


def mask_rfc(rfc: str) -> str:
    """``XAXX010101000`` → ``XAXX•••••000``: enough to tell two apart, not enough to invoice with."""
    return rfc[:4] + "•" * max(len(rfc) - 7, 0) + rfc[-3:] if len(rfc) > 7 else "•" * len(rfc)


def mask_email(address: Optional[str]) -> Optional[str]:
    if not address or "@" not in address:
        return address
    name, domain = address.split("@", 1)
    return f"{name[:1]}•••@{domain}"


@dataclass
class Consent:
    granted: bool
    at: Optional[datetime]
    source: Optional[str]


def _consent(customer: m.Customer, kind: ConsentKind) -> Consent:
    """The current answer; fiscal-data consent is given in the chat when an invoice is asked for."""
    if kind == ConsentKind.MARKETING:
        return Consent(
            bool(customer.consent_marketing), customer.consent_marketing_at, customer.consent_marketing_source
        )
    at = customer.consent_fiscal_data_at
    return Consent(bool(customer.consent_fiscal_data), at, ConsentSource.CHAT.value if at else None)


def profile(session: Session, who: StaffMember, customer_id: int) -> Dict[str, Any]:
    customer = visible_customer(session, who, customer_id)
    stores = sorted(who.store_ids)
    orders = (
        session.execute(
            select(m.Order)
            .where(m.Order.customer_id == customer.id, m.Order.store_id.in_(stores))
            .order_by(m.Order.created_at.desc(), m.Order.id.desc())
            .limit(20)
        )
        .scalars()
        .all()
    )
    count, spend, last_at = _order_stats(session, who, [customer.id]).get(customer.id, (0, Decimal(0), None))
    favourites: Counter = Counter()
    for description, quantity in session.execute(
        select(m.OrderLine.description, m.OrderLine.quantity)
        .join(m.Order)
        .where(m.Order.customer_id == customer.id, m.Order.store_id.in_(stores), m.Order.status.in_(SOLD))
    ):
        favourites[description] += quantity
    fiscal = [
        {
            "rfc": mask_rfc(p.rfc),
            "postal_code": p.postal_code,
            "tax_regime": p.tax_regime,
            "cfdi_use": p.cfdi_use,
            "email": mask_email(p.email),
        }
        for p in customer.fiscal_profiles
    ]
    handoffs = (
        session.execute(
            select(m.HandoffTicket)
            .where(
                m.HandoffTicket.customer_id == customer.id,
                m.HandoffTicket.store_id.in_(stores),
                m.HandoffTicket.status != HandoffStatus.RESOLVED.value,
            )
            .order_by(m.HandoffTicket.id)
        )
        .scalars()
        .all()
    )
    returns = (
        session.execute(
            select(m.Return)
            .join(m.Order, m.Order.id == m.Return.order_id)
            .where(m.Return.customer_id == customer.id, m.Order.store_id.in_(stores), m.Return.status.in_(OPEN_RETURNS))
            .order_by(m.Return.id)
        )
        .scalars()
        .all()
    )
    notes = (
        session.execute(
            select(m.CustomerNote).where(m.CustomerNote.customer_id == customer.id).order_by(m.CustomerNote.id.desc())
        )
        .scalars()
        .all()
    )
    return {
        "customer": customer,
        "display_name": customer.name or next((o.customer_name for o in orders if o.customer_name), None),
        "authors": _staff_names(session, [note.author for note in notes]),
        "erased": customer.erased_at is not None,
        "orders": orders,
        "order_count": count,
        "spend": spend,
        "last_order": next((o for o in orders if o.status in SOLD), None),
        "last_order_at": last_at,
        "favourites": favourites.most_common(5),
        "consent": {kind.value: _consent(customer, kind) for kind in ConsentKind},
        "consent_history": session.execute(
            select(m.ConsentEvent).where(m.ConsentEvent.customer_id == customer.id).order_by(m.ConsentEvent.id.desc())
        )
        .scalars()
        .all(),
        "fiscal": fiscal,
        "tags": session.execute(
            select(m.CustomerTag).where(m.CustomerTag.customer_id == customer.id).order_by(m.CustomerTag.tag)
        )
        .scalars()
        .all(),
        "notes": notes,
        "handoffs": handoffs,
        "returns": returns,
    }


def _staff_names(session: Session, actors: List[str]) -> Dict[str, str]:
    """``staff:<id>`` → the person's name, for showing who wrote a note."""
    ids = {int(actor.split(":", 1)[1]) for actor in actors if actor.startswith("staff:") and actor[6:].isdigit()}
    if not ids:
        return {}
    rows = session.execute(select(m.StaffUser.id, m.StaffUser.name).where(m.StaffUser.id.in_(ids))).all()
    return {f"staff:{staff_id}": name for staff_id, name in rows}


def set_marketing_consent(
    session: Session, customer: m.Customer, granted: bool, source: ConsentSource, actor: Actor
) -> None:
    """Record the customer's yes or no to marketing, with when and where; unchanged answers add no row."""
    if customer.erased_at is not None:
        raise InvalidInput("this customer's personal data was erased")
    if bool(customer.consent_marketing) == granted and customer.consent_marketing_at is not None:
        return
    customer.consent_marketing, customer.consent_marketing_at = granted, clock.now()
    customer.consent_marketing_source = source.value
    session.add(
        m.ConsentEvent(
            customer_id=customer.id,
            kind=ConsentKind.MARKETING.value,
            granted=granted,
            source=source.value,
            actor=actor.name,
        )
    )
    audit.record(
        session,
        actor,
        "customer.consent",
        "customer",
        customer.id,
        kind=ConsentKind.MARKETING,
        granted=granted,
        source=source.value,
    )


def normalize_tag(text: str) -> str:
    tag = " ".join(text.strip().lower().split())
    if not TAG.match(tag):
        raise InvalidInput("a tag is 1 to 40 letters, digits, spaces or dashes", tag=text)
    return tag


def add_tag(session: Session, customer: m.Customer, text: str, actor: Actor) -> str:
    tag = normalize_tag(text)
    if insert_unless_duplicate(session, m.CustomerTag(customer_id=customer.id, tag=tag, added_by=actor.name)):
        audit.record(session, actor, "customer.tagged", "customer", customer.id, tag=tag)
    return tag


def remove_tag(session: Session, customer: m.Customer, tag_id: int, actor: Actor) -> None:
    tag = session.get(m.CustomerTag, tag_id)
    if tag is None or tag.customer_id != customer.id:
        raise NotFound(f"no tag {tag_id}")
    session.delete(tag)
    audit.record(session, actor, "customer.untagged", "customer", customer.id, tag=tag.tag)


def add_note(session: Session, customer: m.Customer, body: str, actor: Actor) -> m.CustomerNote:
    body = body.strip()
    if not body:
        raise InvalidInput("a note cannot be empty")
    if len(body) > 2000:
        raise InvalidInput("a note has at most 2000 characters")
    note = m.CustomerNote(customer_id=customer.id, body=body, author=actor.name)
    session.add(note)
    session.flush()
    audit.record(session, actor, "customer.noted", "customer", customer.id, note=note.id)
    return note
