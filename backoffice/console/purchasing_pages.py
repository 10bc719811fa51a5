"""`/console/purchasing` (purchase orders: review and send a draft, receive a delivery line by line on a phone at
the back door) and `/console/stock/count` (a stock count). Owners and managers change and send orders; everyone
receives and counts. Every query is limited to the member's stores."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Dict, Optional

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.console.pages import bp, page, store_names
from backoffice.console.web import Visit, error_page, field, staff_only
from backoffice.http_errors import status_of
from comanda import clock
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session, transaction
from comanda.enums import PurchaseOrderStatus, StaffRole, StockAdjustmentReason
from comanda.errors import ComandaError, InvalidInput, NotFound
from comanda.i18n import t
from comanda.services import purchasing, staff, stock_counts
from integrations.email.smtp import mailer_from_settings
from integrations.purchasing.pdf import WeasyPrinter

BUYERS = (StaffRole.OWNER, StaffRole.MANAGER)
OPEN = [s.value for s in (PurchaseOrderStatus.DRAFT, PurchaseOrderStatus.SENT, PurchaseOrderStatus.PARTIALLY_RECEIVED)]


def _quantity(request: Request, name: str, what: str) -> Optional[Decimal]:
    """A typed quantity, or None when the field was left blank."""
    text = field(request, name).strip()
    return purchasing.parse_quantity(text, what) if text else None


def shown(quantity: Decimal) -> str:
    """A quantity as people write it: 4000, 2.5 (never 4E+3)."""
    return format(quantity.normalize(), "f")


# --- purchase orders -------------------------------------------------------------------------------


def orders_view(visit: Visit, store: Optional[str], tab: str) -> Dict[str, Any]:
    """The purchase orders of ``tab``: a status, or "open" (not yet received in full) or "all"."""
    stores = staff.store_filter(visit.member, store)
    statuses = OPEN if tab == "open" else None if tab == "all" else [tab]
    with new_session() as session:
        orders = purchasing.list_orders(session, stores, statuses)
        levels = {
            (level.store_id, level.stock_item_id): level.on_hand
            for level in session.execute(select(m.StockLevel).where(m.StockLevel.store_id.in_(stores))).scalars()
        }
        on_time = purchasing.supplier_on_time(session, stores)
        suppliers = dict(session.execute(select(m.Supplier.id, m.Supplier.name)).all())
        names = dict(session.execute(select(m.Store.id, m.Store.name).where(m.Store.id.in_(stores))).all())
        cards = [
            {
                "id": po.id,
                "number": purchasing.po_number(po),
                "store": names.get(po.store_id, po.store_id),
                "supplier": po.supplier.name,
                "supplier_email": po.supplier.email,
                "status": po.status,
                "expected_on": po.expected_on,
                "sent_to": po.sent_to,
                "total": purchasing.order_total(po),
                "lines": [
                    {
                        "id": line.id,
                        "code": line.stock_item.code,
                        "name": line.stock_item.name,
                        "unit": line.stock_item.unit,
                        "ordered": shown(line.quantity_ordered),
                        "received": shown(line.quantity_received),
                        "outstanding": shown(line.quantity_ordered - line.quantity_received),
                        "complete": line.quantity_received >= line.quantity_ordered,
                        "unit_cost": line.unit_cost,
                        "on_hand": shown(levels.get((po.store_id, line.stock_item_id), Decimal(0))),
                    }
                    for line in po.lines
                ],
            }
            for po in orders
        ]
    return {
        "orders": cards,
        "on_time": [(suppliers.get(s, s), ok, total) for s, (ok, total) in sorted(on_time.items())],
        "store": store or "",
        "shown": tab,
        "statuses": ["open", *PurchaseOrderStatus.values(), "all"],
        "buyer": visit.member.role in BUYERS,
    }


def purchasing_page(
    request: Request, flash: Optional[str] = None, warn: bool = False, status: int = 200
) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    store = field(request, "store") or None
    shown = field(request, "status") or "open"
    if shown not in ("open", "all") and PurchaseOrderStatus.parse(shown) is None:
        shown = "open"
    try:
        view = orders_view(visit, store, shown)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    return page(request, "purchasing.html", status, flash=flash, warn=warn, stores=store_names(visit.member), **view)


async def po_change(request: Request, po_id: int, work: Callable[[Session, m.PurchaseOrder], str]) -> HTTPResponse:
    """Run a change on one of the member's POs; the page again, with what happened (or why not)."""
    visit: Visit = request.ctx.visit

    def run() -> str:
        with transaction() as session:
            return work(session, purchasing.get_order(session, po_id, visit.member))

    try:
        flash = await in_thread(run)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    except ComandaError as exc:
        message = t("console.error.refused", visit.lang, reason=exc.message)
        return await in_thread(purchasing_page, request, message, True, status_of(exc))
    return await in_thread(purchasing_page, request, flash)


@bp.get("/purchasing")
@staff_only()
async def purchasing_list(request: Request) -> HTTPResponse:
    return await in_thread(purchasing_page, request)


@bp.post("/purchasing/<po_id:int>/lines")
@staff_only(*BUYERS)
async def purchasing_lines(request: Request, po_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit

    def work(session: Session, po: m.PurchaseOrder) -> str:
        for line in list(po.lines):
            quantity = _quantity(request, f"line-{line.id}", line.stock_item.code)
            if quantity is not None and quantity != line.quantity_ordered:
                purchasing.set_quantity(session, po, line.stock_item.code, quantity, visit.actor)
        return t("console.purchasing.saved_flash", visit.lang)

    return await po_change(request, po_id, work)


@bp.post("/purchasing/<po_id:int>/send")
@staff_only(*BUYERS)
async def purchasing_send(request: Request, po_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    by_email = field(request, "by") != "other"

    def work(session: Session, po: m.PurchaseOrder) -> str:
        sent = purchasing.send_order(
            session,
            po.id,
            visit.actor,
            mailer=mailer_from_settings() if by_email else None,
            printer=WeasyPrinter() if by_email else None,
            email=by_email,
            who=visit.member,
        )
        expected = sent.expected_on.isoformat()
        number = purchasing.po_number(sent)
        if by_email:
            return t("console.purchasing.sent_flash", visit.lang, number=number, to=sent.sent_to, expected=expected)
        return t("console.purchasing.sent_other_flash", visit.lang, number=number, expected=expected)

    return await po_change(request, po_id, work)


@bp.post("/purchasing/<po_id:int>/cancel")
@staff_only(*BUYERS)
async def purchasing_cancel(request: Request, po_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit

    def work(session: Session, po: m.PurchaseOrder) -> str:
        purchasing.cancel_order(session, po.id, visit.actor, who=visit.member)
        return t("console.purchasing.cancelled_flash", visit.lang, number=purchasing.po_number(po))

    return await po_change(request, po_id, work)


@bp.post("/purchasing/<po_id:int>/receive")
@staff_only()
async def purchasing_receive(request: Request, po_id: int) -> HTTPResponse:
    """The delivery at the back door: the typed quantities, or everything outstanding ("all arrived")."""
    visit: Visit = request.ctx.visit
    everything = field(request, "all") == "1"

    def work(session: Session, po: m.PurchaseOrder) -> str:
        if everything:
            quantities = {code: q for code, q in purchasing.outstanding_by_line(po).items() if q > 0}
        else:
            quantities = {}
            for line in po.lines:
                quantity = _quantity(request, f"line-{line.id}", line.stock_item.code)
                if quantity:
                    quantities[line.stock_item.code] = quantity
        purchasing.receive(
            session, po.id, quantities, visit.actor, note=field(request, "note") or None, who=visit.member
        )
        state = t(f"console.purchasing.status.{po.status}", visit.lang)
        return t("console.purchasing.received_flash", visit.lang, number=purchasing.po_number(po), status=state)

    return await po_change(request, po_id, work)


def po_pdf(visit: Visit, po_id: int) -> bytes:
    with new_session() as session:
        po = purchasing.get_order(session, po_id, visit.member)
        business = session.get(m.Business, session.get(m.Store, po.store_id).business_id)
        expected = po.expected_on or purchasing.expected_delivery(
            clock.local_date(business.timezone), po.supplier.lead_time_days, po.supplier.delivery_days
        )
        return WeasyPrinter().render_pdf(purchasing.document(session, po, expected))


@bp.get("/purchasing/<po_id:int>/pdf")
@staff_only(*BUYERS)
async def purchasing_pdf(request: Request, po_id: int) -> HTTPResponse:
    """The PO as the supplier gets it (a draft shows the date it would be expected if sent today)."""
    visit: Visit = request.ctx.visit
    try:
        pdf = await in_thread(po_pdf, visit, po_id)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    return response.raw(
        pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="OC-{po_id:05d}.pdf"', "Cache-Control": "no-store"},
    )


# --- stock counts ----------------------------------------------------------------------------------


def count_view(visit: Visit, store: str) -> Dict[str, Any]:
    staff.visible_store(visit.member, store)
    with new_session() as session:
        rows = session.execute(
            select(m.StockItem, m.StockLevel.on_hand)
            .join(m.StockLevel, m.StockLevel.stock_item_id == m.StockItem.id)
            .where(m.StockLevel.store_id == store)
            .order_by(m.StockItem.kind, m.StockItem.name)
        ).all()
        items = [
            {"id": item.id, "code": item.code, "name": item.name, "unit": item.unit, "on_hand": shown(on_hand)}
            for item, on_hand in rows
        ]
    return {"items": items, "store": store, "reasons": StockAdjustmentReason.values()}


def count_page(request: Request, flash: Optional[str] = None, warn: bool = False, status: int = 200) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    stores = store_names(visit.member)
    store = field(request, "store") or (stores[0][0] if stores else "")
    try:
        view = count_view(visit, store)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    return page(request, "stock_count.html", status, flash=flash, warn=warn, stores=stores, **view)


@bp.get("/stock/count")
@staff_only()
async def stock_count_form(request: Request) -> HTTPResponse:
    return await in_thread(count_page, request)


@bp.post("/stock/count")
@staff_only()
async def stock_count_save(request: Request) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    store = field(request, "store")

    def run() -> str:
        with transaction() as session:
            staff.visible_store(visit.member, store)
            items = session.execute(
                select(m.StockItem.id, m.StockItem.code)
                .join(m.StockLevel, m.StockLevel.stock_item_id == m.StockItem.id)
                .where(m.StockLevel.store_id == store)
            ).all()
            counted: Dict[str, Decimal] = {}
            reasons: Dict[str, StockAdjustmentReason] = {}
            for item_id, code in items:
                quantity = _quantity(request, f"item-{item_id}", code)
                if quantity is not None:
                    counted[code] = quantity
                    reasons[code] = stock_counts.parse_reason(field(request, f"reason-{item_id}") or None)
            if not counted:
                raise InvalidInput(t("console.stock.hint", visit.lang))
            count = stock_counts.count_stock(
                session, store, counted, visit.actor, reasons=reasons, note=field(request, "note") or None
            )
            changed = sum(1 for line in count.lines if line.counted != line.expected)
            return t("console.stock.saved_flash", visit.lang, changed=changed, lines=len(count.lines))

    try:
        flash = await in_thread(run)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    except ComandaError as exc:
        message = t("console.error.refused", visit.lang, reason=exc.message)
        return await in_thread(count_page, request, message, True, status_of(exc))
    return await in_thread(count_page, request, flash)
