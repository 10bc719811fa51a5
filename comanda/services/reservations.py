"""Stock reservations that never oversell: stock is held while the customer pays, then sold, or
given back when the customer cancels or the hold runs out.

Every change is one guarded UPDATE of one stock level (the database, not an earlier read, decides
whether the stock is there) plus its row in the stock movement ledger. Levels are always updated in
(store, stock item id) order, so concurrent checkouts on PostgreSQL wait for each other instead of
deadlocking. Nothing here commits: when OutOfStock is raised, part of the work may already be in the
session and the caller's transaction must roll back (comanda.db.transaction() does when the error
leaves it).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from comanda import clock
from comanda import models as m
from comanda.enums import MovementReason, ReservationStatus
from comanda.errors import InvalidInput, NotFound, OutOfStock
from comanda.services import stock_alerts
from comanda.services.products import chosen_options
from comanda.services.stock import available_by_item, sellable_units
from comanda.services.stores import get_store
from comanda.types import Quantity

ZERO = Decimal(0)
LEVEL = m.StockLevel.__table__.c
# Why a hold ends early (release's reason) → the reservation's status: the customer let it go, or it ran out.
RELEASED_AS: Dict[str, ReservationStatus] = {
    MovementReason.RELEASE: ReservationStatus.RELEASED,
    ReservationStatus.EXPIRED: ReservationStatus.EXPIRED,
}
ACTIVE = ReservationStatus.ACTIVE
Needs = Dict[int, Decimal]  # stock item id -> quantity in the item's unit


class Mismatch(NamedTuple):
    store_id: str
    stock_item_id: int
    on_hand: Decimal
    reserved: Decimal
    ledger_on_hand: Decimal
    ledger_reserved: Decimal


def _exact(expression: Any) -> Any:
    """Round to Quantity's 3 places in SQL. SQLite keeps quantities as REAL, whose arithmetic drifts
    (0.7 + 0.1 - 0.8 < 0): a drifted level must fail neither a CHECK nor a guard."""
    return func.round(expression, 3, type_=Quantity)


def _level_update(guard: Any = None) -> Any:
    """UPDATE one stock level by deltas, only where ``guard`` holds."""
    statement = (
        update(m.StockLevel.__table__)
        .where(LEVEL.store_id == bindparam("store"), LEVEL.stock_item_id == bindparam("item"))
        .values(
            on_hand=_exact(LEVEL.on_hand + bindparam("on_hand_delta", type_=Quantity)),
            reserved=_exact(LEVEL.reserved + bindparam("reserved_delta", type_=Quantity)),
        )
    )
    return statement if guard is None else statement.where(guard)


# The hot path's statements, built once: a checkout then skips building them and their cache keys,
# and SQLAlchemy reuses their compiled SQL.
_NEEDED = bindparam("needed", type_=Quantity)
_TAKE = _level_update(_exact(LEVEL.on_hand - LEVEL.reserved) >= _NEEDED)  # hold only what is available
_SELL = _level_update(LEVEL.on_hand >= _NEEDED)
_GIVE_BACK = _level_update()
_MOVEMENTS = insert(m.StockMovement.__table__)
_RESERVATION_LINES = insert(m.ReservationLine.__table__)
_HOLD_MINUTES = (
    select(m.Business.reservation_hold_minutes)
    .join(m.Store)
    .where(m.Store.id == bindparam("store"), m.Store.active.is_(True))
)


def needs_for(
    product: m.Product,
    variant: Optional[m.ProductVariant],
    quantity: int,
    modifiers: Optional[Mapping[str, Any]] = None,
) -> Needs:
    """Stock items that ``quantity`` units of a product consume: its variant's, its recipe's or its own.

    A recipe follows the line's options: an option that removes an ingredient ("sin perlas": no
    tapioca) leaves it out, one that replaces it (oat milk for milk) takes the replacement instead,
    in the recipe's quantity."""
    if variant is not None:
        return {variant.stock_item_id: Decimal(quantity)}
    if product.recipe:
        swaps = ingredient_swaps(product, modifiers or {})
        needs: Dict[int, Decimal] = defaultdict(Decimal)
        for line in product.recipe:
            item_id = swaps.get(line.stock_item_id, line.stock_item_id)
            if item_id is not None:
                needs[item_id] += line.quantity * quantity
        return dict(needs)
    if product.stock_item_id is None:
        problem = "is sold by variant: say which one" if product.variants else "has no stock item"
        raise InvalidInput(f"{product.sku} {problem}", sku=product.sku)
    return {product.stock_item_id: Decimal(quantity)}


def ingredient_swaps(product: m.Product, modifiers: Mapping[str, Any]) -> Dict[int, Optional[int]]:
    """What the chosen options do to the recipe: {ingredient: its replacement, or None when left out}."""
    if not modifiers:
        return {}
    return {
        effect.stock_item_id: effect.replacement_id
        for option in chosen_options(product, modifiers)
        for effect in option.ingredients
    }


def needs_for_cart(session: Session, cart: m.Cart) -> Needs:
    """What a cart consumes per stock item; lines that use the same item add up."""
    needs: Dict[int, Decimal] = defaultdict(Decimal)
    for line in _cart_lines(session, cart):
        for item_id, quantity in needs_for(line.product, line.variant, line.quantity, line.modifiers).items():
            needs[item_id] += quantity
    return dict(needs)


def reserve(
    session: Session,
    store_id: str,
    wanted: Union[Mapping[int, Decimal], m.Cart],
    order_id: Optional[int] = None,
    hold_minutes: Optional[int] = None,
) -> m.Reservation:
    """Hold everything a cart (or a {stock item id: quantity} map) needs, or raise OutOfStock.

    The hold lasts ``hold_minutes``, by default the business's reservation_hold_minutes.
    """
    default_minutes = session.execute(_HOLD_MINUTES, {"store": store_id}).scalar_one_or_none()
    if default_minutes is None:
        raise NotFound(f"no store {store_id!r}", store_id=store_id)
    cart = wanted if isinstance(wanted, m.Cart) else None
    if cart is not None and cart.store_id != store_id:
        raise InvalidInput(f"cart {cart.id} belongs to store {cart.store_id!r}, not {store_id!r}")
    needs = needs_for_cart(session, cart) if cart is not None else {i: Decimal(q) for i, q in wanted.items()}
    if not needs or min(needs.values()) <= 0:
        raise InvalidInput("nothing to reserve: quantities must be positive")
    minutes = default_minutes if hold_minutes is None else hold_minutes
    reservation = m.Reservation(
        store_id=store_id, order_id=order_id, status=ACTIVE, expires_at=clock.now() + timedelta(minutes=minutes)
    )
    session.add(reservation)
    session.flush()
    session.execute(
        _RESERVATION_LINES,
        [
            {"reservation_id": reservation.id, "stock_item_id": item_id, "quantity": q}
            for item_id, q in sorted(needs.items())
        ],
    )
    _hold(session, reservation, needs, cart)
    return reservation


def release(session: Session, reservation_id: int, reason: str = MovementReason.RELEASE) -> m.Reservation:
    """Give the held stock back: the customer cancelled (release) or the hold ran out (expired).

    Releasing a reservation that is closed already changes nothing.
    """
    if reason not in RELEASED_AS:
        raise InvalidInput(f"release reason must be one of {sorted(RELEASED_AS)}, not {reason!r}")
    reservation = _get(session, reservation_id)
    if _claim(session, reservation, RELEASED_AS[reason], (ACTIVE,)) is not None:
        _give_back(session, [reservation], reason)
    return reservation


def commit(session: Session, reservation_id: int, reference: Optional[Tuple[str, Any]] = None) -> m.Reservation:
    """The sale: the held stock leaves the shelf (on hand and reserved drop together). Idempotent.

    ``reference`` names what sold it, by default ("order", the reservation's order). A customer may
    pay after the hold expired or was released: the stock is then held again first if it is still
    there, else OutOfStock (the payment then needs a refund or a person).
    """
    reservation = _get(session, reservation_id)
    previous = _claim(
        session,
        reservation,
        ReservationStatus.COMMITTED,
        (ACTIVE, ReservationStatus.RELEASED, ReservationStatus.EXPIRED),
    )
    if previous is None:
        return reservation
    needs = {line.stock_item_id: line.quantity for line in reservation.lines}
    if previous != ACTIVE:
        _hold(session, reservation, needs, note=f"held again at commit after {previous}")
    if reference is None:
        reference = ("order", reservation.order_id) if reservation.order_id else ("reservation", reservation.id)
    movements = []
    for item_id in sorted(needs):
        quantity = needs[item_id]
        if not _update(
            session, _SELL, reservation.store_id, item_id, on_hand=-quantity, reserved=-quantity, needed=quantity
        ):
            raise _out_of_stock(session, reservation.store_id, needs, item_id, held={})
        movements.append(
            _movement(
                reservation.store_id, item_id, MovementReason.SALE, reference, on_hand=-quantity, reserved=-quantity
            )
        )
    _record(session, movements)
    stock_alerts.check_after_sale(session, reservation.store_id, needs)
    return reservation


def restock(session: Session, reservation_id: int, reference: Tuple[str, Any], note: str) -> None:
    """Put what a committed reservation sold back on the shelf (a cash order cancelled before the
    kitchen started): on hand goes up, one ``return`` movement per item. The caller makes sure this
    happens once (the order's status change is the guard)."""
    reservation = _get(session, reservation_id)
    if reservation.status != ReservationStatus.COMMITTED:
        raise InvalidInput(f"reservation {reservation_id} is {reservation.status}: only sold stock goes back")
    lines = sorted(reservation.lines, key=lambda line: line.stock_item_id)
    for line in lines:
        _update(session, _GIVE_BACK, reservation.store_id, line.stock_item_id, on_hand=line.quantity)
    _record(
        session,
        [
            _movement(
                reservation.store_id,
                line.stock_item_id,
                MovementReason.RETURN,
                reference,
                on_hand=line.quantity,
                note=note,
            )
            for line in lines
        ],
    )


def return_to_shelf(
    session: Session, store_id: str, needs: Needs, reference: Tuple[str, Any], note: str, damaged: bool = False
) -> None:
    """Returned goods arrive: a ``return`` movement puts each unit back on hand; a damaged one is then
    taken off again by a ``write_off`` movement with the note as its reason, so the ledger shows both.
    The caller makes sure this happens once (the return's status change is the guard)."""
    movements = []
    for item_id in sorted(needs):
        quantity = needs[item_id]
        _update(session, _GIVE_BACK, store_id, item_id, on_hand=quantity)
        movements.append(_movement(store_id, item_id, MovementReason.RETURN, reference, on_hand=quantity, note=note))
        if damaged:
            _update(session, _GIVE_BACK, store_id, item_id, on_hand=-quantity)
            movements.append(
                _movement(store_id, item_id, MovementReason.WRITE_OFF, reference, on_hand=-quantity, note=note)
            )
    _record(session, movements)


def expire_due(session: Session, now: Optional[datetime] = None) -> List[int]:
    """Expire every active reservation whose hold ran out; returns their ids (the bot tells those customers).

    Each one is claimed with a conditional UPDATE on its status, so several processes may run this at once.
    """
    due = (
        session.execute(
            select(m.Reservation.id)
            .where(m.Reservation.status == ACTIVE, m.Reservation.expires_at <= (now or clock.now()))
            .order_by(m.Reservation.id)
        )
        .scalars()
        .all()
    )
    expired = [r for r in due if _set_status(session, r, ACTIVE, ReservationStatus.EXPIRED)]
    reservations = (
        session.execute(
            select(m.Reservation)
            .where(m.Reservation.id.in_(expired))
            .options(selectinload(m.Reservation.lines))
            .execution_options(populate_existing=True)
        )
        .scalars()
        .all()
    )
    _give_back(session, reservations, ReservationStatus.EXPIRED)
    return expired


def stock_report(session: Session, store_id: str, sku: str) -> Dict[str, Any]:
    """On hand, reserved and available of a SKU at a store, in its unit.

    A recipe product counts the units its ingredients make, a product with variants the sum of its
    variants; anything else (finished product, variant SKU, ingredient code) its stock item.
    """
    store = get_store(session, store_id)
    product = session.execute(
        select(m.Product).where(m.Product.business_id == store.business_id, m.Product.sku == sku)
    ).scalar_one_or_none()
    if product is not None and product.recipe:
        levels = _levels(session, store_id, [line.stock_item_id for line in product.recipe])
        on_hand = min(levels[line.stock_item_id][0] // line.quantity for line in product.recipe)
        available = min(
            (levels[line.stock_item_id][0] - levels[line.stock_item_id][1]) // line.quantity for line in product.recipe
        )
        return _report(sku, store_id, "pz", on_hand, on_hand - available, available)
    if product is not None and product.variants:
        items = [variant.stock_item for variant in product.variants]
    elif product is not None and product.stock_item is not None:
        items = [product.stock_item]
    else:
        items = (
            session.execute(
                select(m.StockItem).where(m.StockItem.business_id == store.business_id, m.StockItem.code == sku)
            )
            .scalars()
            .all()
        )
        if not items:
            raise NotFound(f"no product, variant or stock item {sku!r} in {store.business_id}", sku=sku)
    levels = _levels(session, store_id, [item.id for item in items])
    on_hand = sum((on_hand for on_hand, _ in levels.values()), ZERO)
    reserved = sum((reserved for _, reserved in levels.values()), ZERO)
    return _report(sku, store_id, items[0].unit, on_hand, reserved, on_hand - reserved)


def ledger_mismatches(session: Session) -> List[Mismatch]:
    """Stock levels the movement ledger does not explain; the ledger must explain every one of them."""
    mv = m.StockMovement
    ledger = {
        (store_id, item_id): (on_hand, reserved)
        for store_id, item_id, on_hand, reserved in session.execute(
            select(mv.store_id, mv.stock_item_id, func.sum(mv.on_hand_delta), func.sum(mv.reserved_delta)).group_by(
                mv.store_id, mv.stock_item_id
            )
        )
    }
    levels = {
        (store_id, item_id): (on_hand, reserved)
        for store_id, item_id, on_hand, reserved in session.execute(
            select(LEVEL.store_id, LEVEL.stock_item_id, LEVEL.on_hand, LEVEL.reserved)
        )
    }
    none = (ZERO, ZERO)
    return [
        Mismatch(*key, *levels.get(key, none), *ledger.get(key, none))
        for key in sorted(levels.keys() | ledger.keys())
        if levels.get(key, none) != ledger.get(key, none)
    ]


# --- the guarded updates -------------------------------------------------------------------------


def _update(
    session: Session,
    statement: Any,
    store_id: str,
    item_id: int,
    *,
    on_hand: Decimal = ZERO,
    reserved: Decimal = ZERO,
    needed: Decimal = ZERO,
) -> bool:
    """One UPDATE of one stock level; False when the statement's guard did not hold at that moment."""
    params = {
        "store": store_id,
        "item": item_id,
        "on_hand_delta": on_hand,
        "reserved_delta": reserved,
        "needed": needed,
    }
    return session.execute(statement, params).rowcount == 1


def _movement(
    store_id: str,
    item_id: int,
    reason: str,
    reference: Tuple[str, Any],
    *,
    on_hand: Decimal = ZERO,
    reserved: Decimal = ZERO,
    note: Optional[str] = None,
) -> Dict[str, Any]:
    return {
        "store_id": store_id,
        "stock_item_id": item_id,
        "reason": reason,
        "on_hand_delta": on_hand,
        "reserved_delta": reserved,
        "reference_type": reference[0],
        "reference_id": str(reference[1]),
        "actor": None,
        "note": note,
    }


def _record(session: Session, movements: List[Dict[str, Any]]) -> None:
    """The ledger rows of the level changes just made, in one statement."""
    if movements:
        session.execute(_MOVEMENTS, movements)


def _hold(
    session: Session,
    reservation: m.Reservation,
    needs: Needs,
    cart: Optional[m.Cart] = None,
    note: Optional[str] = None,
) -> None:
    """Reserve each item if that much is available, lowest id first; OutOfStock at the first shortage."""
    movements = []
    for item_id in sorted(needs):
        quantity = needs[item_id]
        if not _update(session, _TAKE, reservation.store_id, item_id, reserved=quantity, needed=quantity):
            held = {i: q for i, q in needs.items() if i < item_id}
            raise _out_of_stock(session, reservation.store_id, needs, item_id, held, cart)
        movements.append(
            _movement(
                reservation.store_id,
                item_id,
                MovementReason.RESERVATION,
                ("reservation", reservation.id),
                reserved=quantity,
                note=note,
            )
        )
    _record(session, movements)


def _give_back(session: Session, reservations: Iterable[m.Reservation], reason: str) -> None:
    """reserved -= held for every line, in (store, item) order like every other update here."""
    lines = sorted(
        ((r, line) for r in reservations for line in r.lines),
        key=lambda pair: (pair[0].store_id, pair[1].stock_item_id, pair[0].id),
    )
    for reservation, line in lines:
        _update(session, _GIVE_BACK, reservation.store_id, line.stock_item_id, reserved=-line.quantity)
    _record(
        session,
        [
            _movement(
                r.store_id,
                line.stock_item_id,
                MovementReason.RELEASE,
                ("reservation", r.id),
                reserved=-line.quantity,
                note=reason,
            )
            for r, line in lines
        ],
    )


def _set_status(session: Session, reservation_id: int, current: str, target: str) -> bool:
    """Conditional UPDATE on the status: of two processes closing one reservation, exactly one wins."""
    table = m.Reservation.__table__
    result = session.execute(
        update(table)
        .where(table.c.id == reservation_id, table.c.status == current)
        .values(status=target, closed_at=clock.now())
    )
    return result.rowcount == 1


def _claim(session: Session, reservation: m.Reservation, target: str, allowed: Sequence[str]) -> Optional[str]:
    """Move a reservation from a status in ``allowed`` to ``target``; the status it left, or None.

    Statuses only move forward, so retrying after losing a race ends quickly."""
    while True:
        session.refresh(reservation, ["status"])
        previous = reservation.status
        if previous not in allowed:
            return None
        if _set_status(session, reservation.id, previous, target):
            session.expire(reservation, ["status", "closed_at"])
            return previous


# --- reading -------------------------------------------------------------------------------------


def _get(session: Session, reservation_id: int) -> m.Reservation:
    reservation = session.get(m.Reservation, reservation_id)
    if reservation is None:
        raise NotFound(f"no reservation {reservation_id}", reservation_id=reservation_id)
    return reservation


def _cart_lines(session: Session, cart: m.Cart) -> List[m.CartLine]:
    return (
        session.execute(
            select(m.CartLine)
            .where(m.CartLine.cart_id == cart.id)
            .order_by(m.CartLine.id)
            .options(
                selectinload(m.CartLine.product).selectinload(m.Product.recipe),
                selectinload(m.CartLine.product)
                .selectinload(m.Product.modifier_groups)
                .selectinload(m.ProductModifierGroup.group)
                .selectinload(m.ModifierGroup.options)
                .selectinload(m.ModifierOption.ingredients),
                selectinload(m.CartLine.variant),
            )
        )
        .scalars()
        .all()
    )


def _levels(session: Session, store_id: str, item_ids: List[int]) -> Dict[int, Tuple[Decimal, Decimal]]:
    """(on hand, reserved) per item; an item never stocked at the store has none of either."""
    levels = {item_id: (ZERO, ZERO) for item_id in item_ids}
    rows = session.execute(
        select(LEVEL.stock_item_id, LEVEL.on_hand, LEVEL.reserved).where(
            LEVEL.store_id == store_id, LEVEL.stock_item_id.in_(item_ids)
        )
    )
    levels.update((item_id, (on_hand, reserved)) for item_id, on_hand, reserved in rows)
    return levels


def _report(
    sku: str, store_id: str, unit: str, on_hand: Decimal, reserved: Decimal, available: Decimal
) -> Dict[str, Any]:
    return {
        "sku": sku,
        "store": store_id,
        "unit": unit,
        "on_hand": on_hand,
        "reserved": reserved,
        "available": available,
    }


def _out_of_stock(
    session: Session, store_id: str, needs: Needs, failed: int, held: Needs, cart: Optional[m.Cart] = None
) -> OutOfStock:
    """Which SKUs are short and how many units are left, not counting what this call had held so far."""
    available = available_by_item(session, store_id)
    for item_id, quantity in held.items():
        available[item_id] += quantity
    short = {item_id for item_id, q in needs.items() if available.get(item_id, ZERO) < q} | {failed}
    if cart is None:
        codes = dict(session.execute(select(m.StockItem.id, m.StockItem.code).where(m.StockItem.id.in_(short))).all())
        return OutOfStock(store_id, {codes.get(i, str(i)): max(int(available.get(i, ZERO)), 0) for i in sorted(short)})
    left: Dict[str, int] = {}
    for line in _cart_lines(session, cart):
        if short & needs_for(line.product, line.variant, line.quantity, line.modifiers).keys():
            if line.variant is not None:
                left[line.variant.sku] = max(int(available.get(line.variant.stock_item_id, ZERO)), 0)
            else:
                left[line.product.sku] = max(sellable_units(line.product, available), 0)
    return OutOfStock(store_id, left)
