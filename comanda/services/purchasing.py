"""Purchase orders: drafted from low-stock alerts, sent to the supplier as a PDF by e-mail, received line by line.

The life of a PO: ``draft`` (one per store and supplier, a partial unique index says so; every low item of that
supplier merges into it) → ``sent`` (e-mailed; expected on the supplier's first delivery day after its lead time)
→ ``partially_received`` → ``received``; a draft or sent PO may be ``cancelled``. Each received quantity is a
``purchase_receipt`` movement in the stock ledger; an item's alert follows its line (open while drafted, ordered
once sent, resolved when its line is in). Every change is audited.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Dict, List, Mapping, Optional, Protocol, Sequence, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate
from comanda.enums import LowStockAlertStatus, MovementReason, PurchaseOrderStatus, values_in
from comanda.errors import ComandaError, ConfigError, InvalidInput, NotFound
from comanda.i18n import language_or_default, t
from comanda.money import format_money
from comanda.services import audit
from comanda.services.audit import Actor
from comanda.services.cfdi.delivery import Mailer
from comanda.services.staff import StaffMember


class StatusConflict(ComandaError):
    """Someone else moved the PO first, or the change is not allowed from its status."""

    code = "status_conflict"


ZERO = Decimal(0)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OPEN_STATUSES = values_in((PurchaseOrderStatus.DRAFT, PurchaseOrderStatus.SENT, PurchaseOrderStatus.PARTIALLY_RECEIVED))
RECEIVABLE = values_in((PurchaseOrderStatus.SENT, PurchaseOrderStatus.PARTIALLY_RECEIVED))
CANCELLABLE = values_in((PurchaseOrderStatus.DRAFT, PurchaseOrderStatus.SENT))
SYSTEM = Actor("system")


# --- drafting from low stock ---------------------------------------------------------------------


def draft_for_alerts(session: Session, store_id: str) -> List[int]:
    """Put every open alert of a store that no PO covers yet on a purchase order; the ids of the POs touched.

    An item already on an open PO of the store (drafted, sent or on its way) only links its alert to it, so
    nothing is ordered twice; any other item becomes a line of its supplier's draft at its reorder quantity
    (the reorder point when none is set), at the supplier's price. Items without a supplier stay alerts."""
    alerts = session.execute(
        select(m.LowStockAlert, m.StockItem)
        .join(m.StockItem, m.StockItem.id == m.LowStockAlert.stock_item_id)
        .where(
            m.LowStockAlert.store_id == store_id,
            m.LowStockAlert.status == LowStockAlertStatus.OPEN.value,
            m.LowStockAlert.purchase_order_id.is_(None),
            m.StockItem.supplier_id.is_not(None),
        )
        .order_by(m.LowStockAlert.id)
    ).all()
    touched: List[int] = []
    for alert, item in alerts:
        covering = _open_line_for(session, store_id, item.id)
        if covering is None:
            po = _draft(session, store_id, item.supplier_id)
            _add_line(session, po, item)
        else:
            po = session.get(m.PurchaseOrder, covering.purchase_order_id)
        alert.purchase_order_id = po.id
        if po.status != PurchaseOrderStatus.DRAFT:
            alert.status = LowStockAlertStatus.ORDERED.value
        if po.id not in touched:
            touched.append(po.id)
    session.flush()
    return touched


def _open_line_for(session: Session, store_id: str, item_id: int) -> Optional[m.PurchaseOrderLine]:
    """The item's line on an open PO of the store that still has something to come."""
    return (
        session.execute(
            select(m.PurchaseOrderLine)
            .join(m.PurchaseOrder)
            .where(
                m.PurchaseOrder.store_id == store_id,
                m.PurchaseOrder.status.in_(OPEN_STATUSES),
                m.PurchaseOrderLine.stock_item_id == item_id,
                m.PurchaseOrderLine.quantity_received < m.PurchaseOrderLine.quantity_ordered,
            )
            .order_by(m.PurchaseOrder.id)
        )
        .scalars()
        .first()
    )


def _draft(session: Session, store_id: str, supplier_id: str) -> m.PurchaseOrder:
    """The store's draft for a supplier, made when there is none (two sales at once make one: the index)."""
    query = select(m.PurchaseOrder).where(
        m.PurchaseOrder.store_id == store_id,
        m.PurchaseOrder.supplier_id == supplier_id,
        m.PurchaseOrder.status == PurchaseOrderStatus.DRAFT.value,
    )
    found = session.execute(query).scalar_one_or_none()
    if found is not None:
        return found
    row = m.PurchaseOrder(
        store_id=store_id, supplier_id=supplier_id, status=PurchaseOrderStatus.DRAFT.value, created_by=SYSTEM.name
    )
    if insert_unless_duplicate(session, row) is not None:
        audit.record(session, SYSTEM, "purchase_order.drafted", "purchase_order", row.id, store=store_id)
        return row
    return session.execute(query).scalar_one()


def _add_line(session: Session, po: m.PurchaseOrder, item: m.StockItem) -> None:
    quantity = item.reorder_qty or item.reorder_point
    if not quantity or quantity <= 0:
        return
    cost = session.get(m.SupplierPrice, (po.supplier_id, item.id))
    insert_unless_duplicate(
        session,
        m.PurchaseOrderLine(
            purchase_order_id=po.id,
            stock_item_id=item.id,
            quantity_ordered=quantity,
            quantity_received=ZERO,
            unit_cost=cost.unit_cost if cost else None,
        ),
    )
    session.expire(po, ["lines"])


# --- reading ---------------------------------------------------------------------------------------


def get_order(session: Session, po_id: int, who: Optional[StaffMember] = None) -> m.PurchaseOrder:
    """A PO by id; with ``who``, only one of their stores' (another store's is NotFound, like an unknown one)."""
    query = select(m.PurchaseOrder).where(m.PurchaseOrder.id == po_id)
    if who is not None:
        query = query.where(m.PurchaseOrder.store_id.in_(sorted(who.store_ids)))
    po = session.execute(query).scalar_one_or_none()
    if po is None:
        raise NotFound(f"no purchase order {po_id}", purchase_order_id=po_id)
    return po


def list_orders(
    session: Session, stores: Optional[Sequence[str]] = None, statuses: Optional[Sequence[str]] = None
) -> List[m.PurchaseOrder]:
    for status in statuses or ():
        if PurchaseOrderStatus.parse(status) is None:
            raise InvalidInput(
                f"unknown purchase order status {status!r}: one of {', '.join(PurchaseOrderStatus.values())}"
            )
    query = select(m.PurchaseOrder).options(
        selectinload(m.PurchaseOrder.lines).selectinload(m.PurchaseOrderLine.stock_item),
        selectinload(m.PurchaseOrder.supplier),
    )
    if stores is not None:
        query = query.where(m.PurchaseOrder.store_id.in_(list(stores)))
    if statuses:
        query = query.where(m.PurchaseOrder.status.in_(list(statuses)))
    return list(session.execute(query.order_by(m.PurchaseOrder.id.desc())).scalars())


def quantity_json(value: Decimal) -> object:
    """A quantity as a JSON number: whole numbers as integers, others as they are written."""
    return int(value) if value == value.to_integral_value() else float(value)


def as_json(po: m.PurchaseOrder) -> Dict[str, object]:
    """The shape of `comanda purchasing list --json` (issue 16)."""
    return {
        "id": po.id,
        "supplier": po.supplier_id,
        "store": po.store_id,
        "status": po.status,
        "lines": [
            {
                "sku": line.stock_item.code,
                "quantity": quantity_json(line.quantity_ordered),
                "received": quantity_json(line.quantity_received),
            }
            for line in po.lines
        ],
        "expected_at": po.expected_on.isoformat() if po.expected_on else None,
    }


def order_total(po: m.PurchaseOrder) -> Optional[Decimal]:
    """The PO's cost at the supplier's prices; None while a line has no price."""
    if any(line.unit_cost is None for line in po.lines):
        return None
    return sum(((line.unit_cost * line.quantity_ordered).quantize(Decimal("0.01")) for line in po.lines), ZERO)


# --- editing a draft -----------------------------------------------------------------------------


def _line_by_code(po: m.PurchaseOrder, code: str) -> m.PurchaseOrderLine:
    for line in po.lines:
        if line.stock_item.code == code:
            return line
    raise InvalidInput(f"purchase order {po.id} has no line {code!r}", sku=code)


def set_quantity(session: Session, po: m.PurchaseOrder, code: str, quantity: Decimal, actor: Actor) -> None:
    """Change a draft line's quantity; 0 takes the line off (its alert is resolved: the owner chose not to order)."""
    if po.status != PurchaseOrderStatus.DRAFT:
        raise StatusConflict(f"purchase order {po.id} is {po.status}: only a draft can be changed")
    if quantity < 0:
        raise InvalidInput(f"{code}: a quantity cannot be negative")
    line = _line_by_code(po, code)
    before = line.quantity_ordered
    if quantity == 0:
        po.lines.remove(line)
        _close_alerts(session, po.id, [line.stock_item_id])
    else:
        line.quantity_ordered = quantity
    session.flush()
    audit.record(
        session,
        actor,
        "purchase_order.line_changed",
        "purchase_order",
        po.id,
        sku=code,
        before=str(before),
        after=str(quantity),
    )


# --- sending ---------------------------------------------------------------------------------------


def expected_delivery(today: date, lead_time_days: int, delivery_days: Sequence[str]) -> date:
    """The first day the supplier delivers once its lead time has passed (any day when it lists none)."""
    day = today + timedelta(days=max(lead_time_days, 0))
    days = {d for d in delivery_days if d in WEEKDAYS}
    while days and WEEKDAYS[day.weekday()] not in days:
        day += timedelta(days=1)
    return day


@dataclass(frozen=True)
class DocumentLine:
    code: str
    name: str
    unit: str
    quantity: str
    unit_cost: str
    total: str


@dataclass(frozen=True)
class PurchaseOrderDocument:
    """Everything the printed PO shows, already in the supplier's language."""

    language: str
    title: str
    number: str
    business: str
    rfc: str
    deliver_to: str
    supplier: str
    dated: str
    expected: str
    headings: Tuple[str, ...]
    lines: Tuple[DocumentLine, ...]
    total: str
    footer: str
    labels: Dict[str, str] = field(default_factory=dict)


class PurchaseOrderPrinter(Protocol):
    def render_pdf(self, document: PurchaseOrderDocument) -> bytes:
        """The PO as a PDF (integrations.purchasing.pdf)."""


def po_number(po: m.PurchaseOrder) -> str:
    return f"OC-{po.id:05d}"


def document(session: Session, po: m.PurchaseOrder, expected_on: date) -> PurchaseOrderDocument:
    supplier = po.supplier
    lang = language_or_default(supplier.language)
    store = session.get(m.Store, po.store_id)
    business = session.get(m.Business, store.business_id)
    lines = []
    for line in po.lines:
        item = line.stock_item
        cost = line.unit_cost
        lines.append(
            DocumentLine(
                code=item.code,
                name=item.name,
                unit=item.unit,
                quantity=format(line.quantity_ordered.normalize(), "f"),
                unit_cost=format_money(cost) if cost is not None else "—",
                total=format_money((cost * line.quantity_ordered).quantize(Decimal("0.01")))
                if cost is not None
                else "—",
            )
        )
    total = order_total(po)
    return PurchaseOrderDocument(
        language=lang,
        title=t("purchasing.pdf.title", lang),
        number=po_number(po),
        business=business.name,
        rfc=f"{business.issuer_rfc} · {business.issuer_legal_name or business.name}" if business.issuer_rfc else "",
        deliver_to=f"{store.name} — {store.address}, C.P. {store.postal_code}",
        supplier=supplier.name,
        dated=clock.local_date(business.timezone).isoformat(),
        expected=expected_on.isoformat(),
        headings=tuple(
            t(f"purchasing.pdf.{h}", lang) for h in ("code", "item", "unit", "quantity", "unit_cost", "line_total")
        ),
        lines=tuple(lines),
        total=format_money(total) if total is not None else "—",
        footer=t("purchasing.pdf.footer", lang, business=business.name),
        labels={
            key: t(f"purchasing.pdf.{key}", lang)
            for key in ("number", "date", "supplier", "deliver_to", "expected", "total", "rfc")
        },
    )


def order_email(doc: PurchaseOrderDocument, to: str, pdf: bytes) -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = t("purchasing.email.subject", doc.language, business=doc.business, number=doc.number)
    message.set_content(
        t(
            "purchasing.email.body",
            doc.language,
            supplier=doc.supplier,
            business=doc.business,
            number=doc.number,
            expected=doc.expected,
            deliver_to=doc.deliver_to,
        )
    )
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{doc.number}.pdf")
    return message


def send_order(
    session: Session,
    po_id: int,
    actor: Actor,
    *,
    mailer: Optional[Mailer],
    printer: Optional[PurchaseOrderPrinter],
    email: bool = True,
    who: Optional[StaffMember] = None,
) -> m.PurchaseOrder:
    """Send a draft: e-mail the PDF to the supplier (``email=False``: sent by other means, e.g. by phone) and
    mark it ``sent`` with its expected date. The status is claimed before the mail goes out and the whole
    transaction rolls back when the mail fails, so a PO is never ``sent`` without its e-mail, nor sent twice."""
    po = get_order(session, po_id, who)
    if po.status != PurchaseOrderStatus.DRAFT:
        raise StatusConflict(f"purchase order {po.id} is {po.status}: only a draft can be sent")
    if not po.lines:
        raise InvalidInput(f"purchase order {po.id} has no lines: nothing to send")
    supplier = po.supplier
    store = session.get(m.Store, po.store_id)
    business = session.get(m.Business, store.business_id)
    expected_on = expected_delivery(
        clock.local_date(business.timezone), supplier.lead_time_days, supplier.delivery_days
    )
    message = None
    if email:
        if not supplier.email:
            raise InvalidInput(
                f"supplier {supplier.id} has no e-mail address: add one to the catalog, or send it by other means"
            )
        if mailer is None or printer is None:
            raise ConfigError(
                "COMANDA_SMTP_HOST is empty: purchase orders cannot be e-mailed (set it, or send by other means)"
            )
        doc = document(session, po, expected_on)
        message = order_email(doc, supplier.email, printer.render_pdf(doc))
    _claim(session, po, (PurchaseOrderStatus.DRAFT.value,), PurchaseOrderStatus.SENT)
    po.sent_at, po.expected_on, po.sent_to = clock.now(), expected_on, supplier.email if email else None
    for alert in _alerts_of(session, po.id, LowStockAlertStatus.OPEN):
        alert.status = LowStockAlertStatus.ORDERED.value
    audit.record(
        session,
        actor,
        "purchase_order.sent",
        "purchase_order",
        po.id,
        to=po.sent_to,
        expected_on=expected_on.isoformat(),
    )
    session.flush()
    if message is not None and mailer is not None:  # a message is only made with a mailer
        mailer.send(message)  # last: an EmailFailed undoes everything above
    return po


def _claim(session: Session, po: m.PurchaseOrder, allowed: Sequence[str], target: PurchaseOrderStatus) -> None:
    """Conditional UPDATE of the status: of two people acting on one PO, one wins and the other gets a conflict.
    It also takes the row's write lock for the rest of the transaction."""
    table = m.PurchaseOrder.__table__
    done = session.execute(
        update(table).where(table.c.id == po.id, table.c.status.in_(list(allowed))).values(status=target.value)
    )
    if done.rowcount != 1:
        session.refresh(po, ["status"])
        raise StatusConflict(f"purchase order {po.id} is {po.status} now: reload it")
    session.refresh(po, ["status"])


def _alerts_of(session: Session, po_id: int, status: LowStockAlertStatus) -> List[m.LowStockAlert]:
    return list(
        session.execute(
            select(m.LowStockAlert).where(
                m.LowStockAlert.purchase_order_id == po_id, m.LowStockAlert.status == status.value
            )
        ).scalars()
    )


def _close_alerts(session: Session, po_id: int, item_ids: Sequence[int]) -> None:
    if not item_ids:
        return
    session.execute(
        update(m.LowStockAlert)
        .where(
            m.LowStockAlert.purchase_order_id == po_id,
            m.LowStockAlert.stock_item_id.in_(list(item_ids)),
            m.LowStockAlert.status != LowStockAlertStatus.RESOLVED.value,
        )
        .values(status=LowStockAlertStatus.RESOLVED.value, resolved_at=clock.now())
        .execution_options(synchronize_session=False)
    )


def cancel_order(session: Session, po_id: int, actor: Actor, who: Optional[StaffMember] = None) -> m.PurchaseOrder:
    """Cancel a draft or a sent PO (nothing received yet); its alerts are resolved: the next sale at or under
    the reorder point opens a new one."""
    po = get_order(session, po_id, who)
    _claim(session, po, CANCELLABLE, PurchaseOrderStatus.CANCELLED)
    po.cancelled_at = clock.now()
    _close_alerts(session, po.id, [line.stock_item_id for line in po.lines])
    audit.record(session, actor, "purchase_order.cancelled", "purchase_order", po.id)
    return po


# --- receiving -------------------------------------------------------------------------------------


def parse_quantity(text: str, what: str) -> Decimal:
    try:
        value = Decimal(str(text).strip().replace(",", "."))
    except ArithmeticError:
        raise InvalidInput(f"{what}: {text!r} is not a quantity") from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"{what}: {text!r} is not a quantity")
    if value != value.quantize(Decimal("0.001")):
        raise InvalidInput(f"{what}: at most three decimals, not {text!r}")
    return value


def receive(
    session: Session,
    po_id: int,
    quantities: Mapping[str, Decimal],
    actor: Actor,
    note: Optional[str] = None,
    who: Optional[StaffMember] = None,
) -> m.PurchaseReceipt:
    """Take in a delivery: ``{stock item code: quantity}`` for some lines (0 or absent: nothing of it came).

    Each quantity goes on the shelf as a ``purchase_receipt`` movement; a line never takes more than is still
    outstanding. The PO becomes ``partially_received``, or ``received`` (with ``received_at``) when every line
    is in; each line that is complete resolves its alert. The audit row keeps expected against actual."""
    po = get_order(session, po_id, who)
    wanted = {code: q for code, q in quantities.items() if q != 0}
    if not wanted:
        raise InvalidInput("nothing received: give at least one quantity")
    if po.status not in RECEIVABLE:
        raise StatusConflict(f"purchase order {po.id} is {po.status}: only a sent order is received")
    _claim(session, po, RECEIVABLE, PurchaseOrderStatus(po.status))  # the row's lock: receipts queue up
    session.refresh(po)
    receipt = m.PurchaseReceipt(purchase_order_id=po.id, actor=actor.name, note=note or None)
    session.add(receipt)
    session.flush()
    lines = []
    for code, quantity in sorted(wanted.items()):
        line = _line_by_code(po, code)
        outstanding = line.quantity_ordered - line.quantity_received
        if quantity < 0:
            raise InvalidInput(f"{code}: a received quantity cannot be negative")
        if quantity > outstanding:
            raise InvalidInput(
                f"{code}: {quantity.normalize():f} received but only {outstanding.normalize():f} outstanding",
                sku=code,
            )
        lines.append((line, quantity))
    for line, quantity in sorted(lines, key=lambda pair: pair[0].stock_item_id):  # the ledger's lock order
        line.quantity_received = line.quantity_received + quantity
        receipt.lines.append(m.PurchaseReceiptLine(purchase_order_line_id=line.id, quantity=quantity))
        _add_to_shelf(session, po.store_id, line.stock_item_id, quantity, po, receipt, actor)
    complete = [line.stock_item_id for line, _ in lines if line.quantity_received >= line.quantity_ordered]
    _close_alerts(session, po.id, complete)
    finished = all(line.quantity_received >= line.quantity_ordered for line in po.lines)
    target = PurchaseOrderStatus.RECEIVED if finished else PurchaseOrderStatus.PARTIALLY_RECEIVED
    po.status = target.value
    lateness: Dict[str, object] = {}
    if finished:
        po.received_at = receipt.received_at
        store = session.get(m.Store, po.store_id)
        received_on = clock.local_date(session.get(m.Business, store.business_id).timezone)
        lateness = {
            "expected_on": po.expected_on.isoformat() if po.expected_on else None,
            "received_on": received_on.isoformat(),
        }
        if po.expected_on:
            lateness["days_late"] = (received_on - po.expected_on).days
    session.flush()
    audit.record(
        session,
        actor,
        "purchase_order.received" if finished else "purchase_order.partially_received",
        "purchase_order",
        po.id,
        receipt=receipt.id,
        supplier=po.supplier_id,
        lines={line.stock_item.code: str(q) for line, q in lines},
        **lateness,
    )
    return receipt


def _add_to_shelf(
    session: Session,
    store_id: str,
    item_id: int,
    quantity: Decimal,
    po: m.PurchaseOrder,
    receipt: m.PurchaseReceipt,
    actor: Actor,
) -> None:
    add_on_hand(session, store_id, item_id, quantity)
    session.add(
        m.StockMovement(
            store_id=store_id,
            stock_item_id=item_id,
            reason=MovementReason.PURCHASE_RECEIPT.value,
            on_hand_delta=quantity,
            reserved_delta=ZERO,
            reference_type="purchase_order",
            reference_id=str(po.id),
            actor=actor.name,
            note=f"receipt {receipt.id}",
        )
    )


def add_on_hand(session: Session, store_id: str, item_id: int, delta: Decimal) -> None:
    """on_hand += delta in one UPDATE (a first delivery of an item creates its level); the caller writes the
    movement that explains it."""
    table = m.StockLevel.__table__
    done = session.execute(
        update(table)
        .where(table.c.store_id == store_id, table.c.stock_item_id == item_id)
        .values(on_hand=func.round(table.c.on_hand + delta, 3), updated_at=clock.now())
    )
    if done.rowcount == 0:
        session.add(m.StockLevel(store_id=store_id, stock_item_id=item_id, on_hand=delta, reserved=ZERO))
        session.flush()


def outstanding_by_line(po: m.PurchaseOrder) -> Dict[str, Decimal]:
    return {line.stock_item.code: line.quantity_ordered - line.quantity_received for line in po.lines}


def supplier_on_time(session: Session, store_ids: Sequence[str]) -> Dict[str, Tuple[int, int]]:
    """Per supplier: (POs received on or before their expected date, POs received), for the purchasing page."""
    counts: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    rows = session.execute(
        select(
            m.PurchaseOrder.supplier_id, m.PurchaseOrder.expected_on, m.PurchaseOrder.received_at, m.Business.timezone
        )
        .join(m.Store, m.Store.id == m.PurchaseOrder.store_id)
        .join(m.Business, m.Business.id == m.Store.business_id)
        .where(m.PurchaseOrder.store_id.in_(list(store_ids)), m.PurchaseOrder.received_at.is_not(None))
    )
    for supplier_id, expected_on, received_at, tz in rows:
        counts[supplier_id][1] += 1
        if expected_on is None or received_at.astimezone(ZoneInfo(tz)).date() <= expected_on:
            counts[supplier_id][0] += 1
    return {supplier: (c[0], c[1]) for supplier, c in counts.items()}
