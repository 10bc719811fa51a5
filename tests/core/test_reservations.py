"""Stock reservations on real SQL (SQLite, and PostgreSQL when COMANDA_TEST_DATABASE_URL is set):
all or nothing, idempotent, expiring, never overselling under concurrent checkouts, and a ledger
that explains every stock level after each scenario."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, List, Sequence, Tuple

import pytest
from sqlalchemy import func, select

from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.errors import InvalidInput, NotFound, OutOfStock
from comanda.services.catalog_loader import load_catalog, read_catalog
from comanda.services.products import find_sku
from comanda.services.reservations import (
    commit,
    expire_due,
    ledger_mismatches,
    needs_for_cart,
    release,
    reserve,
    stock_report,
)
from tests.helpers.cli import comanda
from tests.helpers.paths import DEMO_CATALOG
from tests.helpers.stock import item_id, level, set_on_hand
from tests.helpers.threads import run_together

T0 = datetime(2026, 3, 2, 18, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def real_clock_after():
    yield
    set_clock(None)


def make_carts(store: str, items: Sequence[Tuple[Any, ...]], count: int = 1) -> List[int]:
    """Carts holding these (SKU, quantity[, modifiers]) lines as they are, even beyond the stock:
    reserving is what is tested here, not the cart's own check when a customer adds a line."""
    with transaction() as session:
        ids = []
        for _ in range(count):
            customer = m.Customer(name="Cliente")
            session.add(customer)
            session.flush()
            cart = m.Cart(store_id=store, customer_id=customer.id, status="open")
            session.add(cart)
            session.flush()
            for sku, quantity, *modifiers in items:
                product, variant = find_sku(session, "cafe-esquina", sku)
                chosen = modifiers[0] if modifiers else {}
                cart.lines.append(m.CartLine(product=product, variant=variant, quantity=quantity, modifiers=chosen))
            session.flush()
            ids.append(cart.id)
    return ids


def reserve_cart(cart_id: int, **kwargs) -> int:
    with transaction() as session:
        cart = session.get(m.Cart, cart_id)
        return reserve(session, cart.store_id, cart, **kwargs).id


def state():
    """Everything a failed reservation must leave untouched."""
    with new_session() as session:
        levels = session.execute(
            select(
                m.StockLevel.store_id, m.StockLevel.stock_item_id, m.StockLevel.on_hand, m.StockLevel.reserved
            ).order_by(m.StockLevel.store_id, m.StockLevel.stock_item_id)
        ).all()
        count = lambda model: session.execute(select(func.count()).select_from(model)).scalar()  # noqa: E731
        return levels, count(m.StockMovement), count(m.Reservation), count(m.ReservationLine)


def movements(reservation_id: int) -> List[Tuple[str, str, Decimal, Decimal, str]]:
    with new_session() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(
                    m.StockItem.code,
                    m.StockMovement.reason,
                    m.StockMovement.on_hand_delta,
                    m.StockMovement.reserved_delta,
                    m.StockMovement.note,
                )
                .join(m.StockItem, m.StockItem.id == m.StockMovement.stock_item_id)
                .where(
                    m.StockMovement.reference_type == "reservation", m.StockMovement.reference_id == str(reservation_id)
                )
                .order_by(m.StockMovement.id)
            )
        ]


def status(reservation_id: int) -> str:
    with new_session() as session:
        return session.get(m.Reservation, reservation_id).status


def report(sku: str, store: str = "centro") -> Dict[str, object]:
    with new_session() as session:
        return stock_report(session, store, sku)


def assert_ledger_balanced() -> None:
    with new_session() as session:
        assert ledger_mismatches(session) == []
        assert (
            session.execute(
                select(func.count()).select_from(m.StockLevel).where(m.StockLevel.reserved > m.StockLevel.on_hand)
            ).scalar()
            == 0
        )


# --- what a cart needs ---------------------------------------------------------------------------


def test_needs_add_up_products_variants_and_recipes(demo):
    (cart_id,) = make_carts("centro", [("COCA-600", 2), ("PLAYERA-M-NEGRO", 1), ("TARO-MT", 2), ("BROWN-SUGAR", 1)])
    with transaction() as session:
        cart = session.get(m.Cart, cart_id)
        product = session.execute(select(m.Product).where(m.Product.sku == "COCA-600")).scalar_one()
        cart.lines.append(m.CartLine(product_id=product.id, quantity=1, modifiers={"note": "fría"}))
        session.flush()
        needs = {session.get(m.StockItem, i).code: q for i, q in needs_for_cart(session, cart).items()}
    assert needs == {
        "COCA-600": 3,
        "PLAYERA-M-NEGRO": 1,
        "tapioca": 2 * 60 + 80,
        "taro_powder": 60,
        "milk": 3 * 250,
        "brown_sugar": 40,
    }


def test_a_product_sold_by_variant_needs_its_variant(demo):
    with transaction() as session:
        customer = m.Customer(name="Cliente")
        session.add(customer)
        session.flush()
        shirt = session.execute(select(m.Product).where(m.Product.sku == "PLAYERA")).scalar_one()
        cart = m.Cart(
            store_id="centro",
            customer_id=customer.id,
            lines=[m.CartLine(product_id=shirt.id, quantity=1, modifiers={})],
        )
        session.add(cart)
        session.flush()
        with pytest.raises(InvalidInput, match="PLAYERA is sold by variant"):
            needs_for_cart(session, cart)


# --- reserve, release, commit --------------------------------------------------------------------


def test_reserve_and_release_a_finished_product(demo):
    set_clock(lambda: T0)
    (cart_id,) = make_carts("centro", [("COCA-600", 3)])
    reservation_id = reserve_cart(cart_id)
    assert level("COCA-600") == (48, 3)
    assert report("COCA-600") == {
        "sku": "COCA-600",
        "store": "centro",
        "unit": "pz",
        "on_hand": 48,
        "reserved": 3,
        "available": 45,
    }
    with new_session() as session:
        reservation = session.get(m.Reservation, reservation_id)
        assert reservation.status == "active" and reservation.expires_at == T0 + timedelta(minutes=15)
        assert [(line.quantity, line.stock_item_id) for line in reservation.lines] == [
            (3, item_id(session, "COCA-600"))
        ]
    assert movements(reservation_id) == [("COCA-600", "reservation", 0, 3, None)]

    set_clock(lambda: T0 + timedelta(minutes=5))
    with transaction() as session:
        released = release(session, reservation_id)
        assert released.status == "released" and released.closed_at == T0 + timedelta(minutes=5)
    assert level("COCA-600") == (48, 0)
    assert movements(reservation_id)[-1] == ("COCA-600", "release", 0, -3, "release")

    before = state()
    for again in (
        lambda s: release(s, reservation_id),
        lambda s: release(s, reservation_id, reason="expired"),
        lambda s: expire_due(s, now=T0 + timedelta(days=1)),
    ):
        with transaction() as session:
            again(session)
    assert state() == before and status(reservation_id) == "released"
    assert_ledger_balanced()


def test_commit_sells_a_variant_once(demo):
    (cart_id,) = make_carts("centro", [("PLAYERA-M-NEGRO", 3)])
    reservation_id = reserve_cart(cart_id)
    assert report("PLAYERA-M-NEGRO")["available"] == 1
    assert report("PLAYERA") == {
        "sku": "PLAYERA",
        "store": "centro",
        "unit": "pz",
        "on_hand": 32,
        "reserved": 3,
        "available": 29,
    }
    with transaction() as session:
        assert commit(session, reservation_id, reference=("order", 7)).status == "committed"
    assert level("PLAYERA-M-NEGRO") == (1, 0)
    with new_session() as session:
        sale = session.execute(select(m.StockMovement).where(m.StockMovement.reason == "sale")).scalar_one()
        assert (sale.on_hand_delta, sale.reserved_delta, sale.reference_type, sale.reference_id) == (
            -3,
            -3,
            "order",
            "7",
        )

    before = state()
    for again in (commit, release):
        with transaction() as session:
            assert again(session, reservation_id).status == "committed"
    assert state() == before
    assert_ledger_balanced()


def test_recipe_reserves_and_sells_its_ingredients(demo):
    (cart_id,) = make_carts("roma", [("TARO-MT", 2)])
    assert report("TARO-MT", "roma") == {
        "sku": "TARO-MT",
        "store": "roma",
        "unit": "pz",
        "on_hand": 25,
        "reserved": 0,
        "available": 25,
    }  # 1500 g tapioca / 60
    reservation_id = reserve_cart(cart_id)
    assert [level(code, "roma") for code in ("tapioca", "taro_powder", "milk")] == [
        (1500, 120),
        (900, 60),
        (12000, 500),
    ]
    assert report("TARO-MT", "roma")["available"] == 23 and report("TARO-MT", "roma")["reserved"] == 2
    assert report("BROWN-SUGAR", "roma")["available"] == (1500 - 120) // 80  # the shared tapioca counts
    with transaction() as session:
        commit(session, reservation_id)
    assert [level(code, "roma") for code in ("tapioca", "taro_powder", "milk")] == [(1380, 0), (840, 0), (11500, 0)]
    assert report("TARO-MT", "roma") == {
        "sku": "TARO-MT",
        "store": "roma",
        "unit": "pz",
        "on_hand": 23,
        "reserved": 0,
        "available": 23,
    }
    with new_session() as session:
        sales = session.execute(
            select(m.StockMovement.reference_type, m.StockMovement.reference_id).where(m.StockMovement.reason == "sale")
        ).all()
    assert sales == [("reservation", str(reservation_id))] * 3  # no order yet: the reservation is the reference
    assert_ledger_balanced()


def test_options_that_leave_out_or_swap_an_ingredient_change_what_is_held_and_sold(demo):
    """ "sin perlas" reserves no tapioca; oat or almond milk is held instead of milk, in the recipe's
    quantity; the default options change nothing."""
    (cart_id,) = make_carts(
        "roma",
        [
            ("TARO-MT", 2, {"boba": "no", "milk": "oat"}),
            ("TARO-MT", 1, {"boba": "yes", "milk": "whole", "size": "large"}),
            ("MATCHA-LT", 1, {"milk": "almond", "boba": "no"}),
        ],
    )
    codes = ("tapioca", "taro_powder", "milk", "oat_milk", "almond_milk", "matcha_powder")
    before = {code: level(code, "roma")[0] for code in codes}
    reservation_id = reserve_cart(cart_id)
    held = {code: level(code, "roma")[1] for code in codes}
    assert held == {
        "tapioca": 60,  # only the one taro with pearls
        "taro_powder": 90,
        "milk": 250,
        "oat_milk": 500,
        "almond_milk": 250,
        "matcha_powder": 8,
    }
    assert {code for code, *_ in movements(reservation_id)} == set(codes)
    with transaction() as session:
        commit(session, reservation_id)
    assert {code: level(code, "roma") for code in codes} == {code: (before[code] - held[code], 0) for code in codes}
    assert_ledger_balanced()


def test_the_catalog_file_links_options_to_the_ingredients_they_change(demo):
    def effects():
        """(group, option, ingredient, replacement or None) for every link in the database."""
        with new_session() as session:
            codes = dict(session.execute(select(m.StockItem.id, m.StockItem.code)).all())
            rows = session.execute(
                select(
                    m.ModifierOption.group_id,
                    m.ModifierOption.code,
                    m.ModifierOptionIngredient.stock_item_id,
                    m.ModifierOptionIngredient.replacement_id,
                )
                .join(m.ModifierOptionIngredient, m.ModifierOptionIngredient.option_id == m.ModifierOption.id)
                .order_by(m.ModifierOption.group_id, m.ModifierOption.code)
            ).all()
        return [(group, code, codes[item], codes.get(replacement)) for group, code, item, replacement in rows]

    assert effects() == [
        ("boba", "no", "tapioca", None),
        ("milk", "almond", "milk", "almond_milk"),
        ("milk", "oat", "milk", "oat_milk"),
    ]
    with new_session() as session:
        extras = session.get(m.ModifierGroup, "taco_extras")
        assert (extras.max_choices, session.get(m.ModifierGroup, "size").max_choices) == (4, 1)
    data = read_catalog(DEMO_CATALOG)
    data["modifier_groups"]["milk"]["options"][1].pop("replaces")
    with transaction() as session:
        assert load_catalog(session, data).updated == {"modifier_option_ingredients": 1}
    assert [row[:2] for row in effects()] == [("boba", "no"), ("milk", "almond")]
    data["modifier_groups"]["boba"]["options"][1]["removes"] = ["leche_de_coco"]
    with pytest.raises(InvalidInput, match="leche_de_coco"):
        with transaction() as session:
            load_catalog(session, data)
    data["modifier_groups"]["boba"]["options"][1]["removes"] = ["tapioca"]
    data["modifier_groups"]["taco_extras"]["max_choices"] = 0
    with pytest.raises(InvalidInput, match="max_choices"):
        with transaction() as session:
            load_catalog(session, data)


def test_mixed_cart_and_raw_needs(demo):
    (cart_id,) = make_carts("centro", [("TACO-PASTOR", 3), ("COCA-600", 2), ("PLAYERA-G-BLANCO", 1), ("CAFE-LATTE", 1)])
    reservation_id = reserve_cart(cart_id, hold_minutes=60)
    assert level("tortilla") == (600, 6) and level("pastor") == (6000, 240) and level("milk") == (20000, 200)
    assert level("COCA-600") == (48, 2) and level("PLAYERA-G-BLANCO") == (4, 1) and level("coffee_beans") == (5000, 18)
    with transaction() as session:
        raw = reserve(session, "centro", {item_id(session, "tortilla"): Decimal("1.5")}).id
        commit(session, raw)
    with transaction() as session:
        commit(session, reservation_id)
    assert level("tortilla") == (Decimal("592.5"), 0) and level("COCA-600") == (46, 0)
    assert_ledger_balanced()


def test_fractional_quantities_stay_exact(demo):
    """On SQLite quantities are REAL: 0.3 - 0.1 < 0.2 there unless the SQL rounds to 3 places."""
    set_on_hand("milk", "0.3")
    with transaction() as session:
        milk = item_id(session, "milk")
        first = reserve(session, "centro", {milk: Decimal("0.1")}).id
        second = reserve(session, "centro", {milk: Decimal("0.2")}).id
    assert level("milk") == (Decimal("0.3"), Decimal("0.3"))
    with pytest.raises(OutOfStock):
        with transaction() as session:
            reserve(session, "centro", {milk: Decimal("0.001")})
    with transaction() as session:
        release(session, first)
        commit(session, second)
    assert level("milk") == (Decimal("0.1"), 0)
    assert_ledger_balanced()


# --- all or nothing ------------------------------------------------------------------------------


def test_roma_has_no_tacos_and_nothing_is_held(demo):
    (cart_id,) = make_carts("roma", [("COCA-600", 1), ("TACO-PASTOR", 2)])
    before = state()
    with pytest.raises(OutOfStock) as info:
        reserve_cart(cart_id)
    assert info.value.code == "out_of_stock" and info.value.available == {"TACO-PASTOR": 0}
    assert info.value.message == "not enough stock at roma: TACO-PASTOR (0 left)"
    assert state() == before
    with pytest.raises(OutOfStock) as info:
        with transaction() as session:
            reserve(session, "roma", {item_id(session, "tortilla"): Decimal(2)})
    assert info.value.available == {"tortilla": 0}
    assert state() == before
    assert_ledger_balanced()


def test_a_shortage_late_in_the_cart_undoes_what_was_held_before_it(demo):
    # ingredients have lower ids than COCA-600, so the taro powder is held before COCA-600 fails
    (cart_id,) = make_carts("centro", [("TARO-MT", 50), ("COCA-600", 49)])
    before = state()
    with pytest.raises(OutOfStock) as info:
        reserve_cart(cart_id)
    assert info.value.available == {"COCA-600": 48}  # taro powder for 50 was there: not reported short
    assert state() == before and level("taro_powder") == (1500, 0)
    assert_ledger_balanced()


def test_products_sharing_an_ingredient_are_both_reported_short(demo):
    (cart_id,) = make_carts("centro", [("TARO-MT", 30), ("BROWN-SUGAR", 30), ("CONCHA", 1)])  # tapioca 4200 > 4000
    before = state()
    with pytest.raises(OutOfStock) as info:
        reserve_cart(cart_id)
    assert info.value.available == {"TARO-MT": 50, "BROWN-SUGAR": 50}
    assert state() == before
    assert_ledger_balanced()


def test_bad_requests_are_refused(demo):
    (cart_id,) = make_carts("centro", [("COCA-600", 1)])
    with transaction() as session:
        with pytest.raises(InvalidInput, match="belongs to store 'centro'"):
            reserve(session, "roma", session.get(m.Cart, cart_id))
        with pytest.raises(InvalidInput, match="positive"):
            reserve(session, "centro", {item_id(session, "COCA-600"): Decimal(0)})
        with pytest.raises(InvalidInput, match="positive"):
            reserve(session, "centro", {})
        with pytest.raises(NotFound):
            reserve(session, "nowhere", {item_id(session, "COCA-600"): Decimal(1)})
        with pytest.raises(NotFound):
            release(session, 999)
        with pytest.raises(InvalidInput, match="release reason"):
            release(session, 999, reason="cancelled")
    assert_ledger_balanced()


# --- expiry --------------------------------------------------------------------------------------


def test_expired_holds_go_back_to_the_shelf(demo):
    set_clock(lambda: T0)
    short_id, long_id = make_carts("centro", [("COCA-600", 2)], count=2)
    short = reserve_cart(short_id)
    long = reserve_cart(long_id, hold_minutes=60)
    with transaction() as session:
        assert expire_due(session) == []
    assert level("COCA-600") == (48, 4)

    set_clock(lambda: T0 + timedelta(minutes=15))
    with transaction() as session:
        assert expire_due(session) == [short]
    assert status(short) == "expired" and status(long) == "active" and level("COCA-600") == (48, 2)
    assert movements(short)[-1] == ("COCA-600", "release", 0, -2, "expired")
    with transaction() as session:
        assert expire_due(session) == []
        assert expire_due(session, now=T0 + timedelta(hours=2)) == [long]
    assert level("COCA-600") == (48, 0)
    assert_ledger_balanced()


def test_late_payment_holds_the_stock_again_or_is_out_of_stock(demo):
    set_clock(lambda: T0)
    late_id, gone_id, rival_id = make_carts("centro", [("PLAYERA-M-NEGRO", 2)], count=3)
    late, gone = reserve_cart(late_id), reserve_cart(gone_id)
    set_clock(lambda: T0 + timedelta(minutes=20))
    with transaction() as session:
        assert expire_due(session) == [late, gone]
        release(session, gone)  # already closed: nothing happens
    assert status(gone) == "expired"

    with transaction() as session:
        commit(session, late)  # 4 on the shelf: held again, then sold
    assert status(late) == "committed" and level("PLAYERA-M-NEGRO") == (2, 0)
    assert [row[1:] for row in movements(late)] == [
        ("reservation", 0, 2, None),
        ("release", 0, -2, "expired"),
        ("reservation", 0, 2, "held again at commit after expired"),
        ("sale", -2, -2, None),
    ]

    reserve_cart(rival_id)  # someone else takes the last two
    before = state()
    with pytest.raises(OutOfStock) as info:
        with transaction() as session:
            commit(session, gone)
    assert info.value.available == {"PLAYERA-M-NEGRO": 0}
    assert state() == before and status(gone) == "expired"
    assert_ledger_balanced()


def test_expiry_from_several_processes_releases_each_hold_once(demo):
    set_clock(lambda: T0)
    ids = [reserve_cart(cart_id) for cart_id in make_carts("centro", [("CONCHA", 1), ("TARO-MT", 1)], count=8)]
    set_clock(lambda: T0 + timedelta(hours=1))
    results = run_together(6, lambda _: _expire())
    expired = [rid for outcome in results for rid in outcome]
    assert sorted(expired) == ids  # each once, whoever claimed it
    assert level("CONCHA") == (30, 0) and level("tapioca") == (4000, 0)
    assert_ledger_balanced()


def test_payment_racing_the_expiry_sells_exactly_once(demo):
    set_clock(lambda: T0)
    ids = [reserve_cart(cart_id) for cart_id in make_carts("centro", [("CHURROS", 2)], count=6)]
    set_clock(lambda: T0 + timedelta(hours=1))

    def work(n: int):
        if n % 2:
            return _expire()
        with transaction() as session:
            return commit(session, ids[n // 2]).id

    run_together(2 * len(ids), work)
    assert {status(rid) for rid in ids} == {"committed"}
    assert level("CHURROS") == (25 - 12, 0)
    assert_ledger_balanced()


def _expire() -> List[int]:
    with transaction() as session:
        return expire_due(session)


# --- the race ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scarce, stock, skus",
    [
        ("COCA-600", "5", ["COCA-600"]),
        ("tortilla", "10", ["TACO-PASTOR", "TACO-SUADERO"]),  # 2 tortillas a taco: 5 tacos of either kind
    ],
)
def test_fifty_checkouts_for_five_units_sell_five(demo, scarce, stock, skus):
    set_on_hand(scarce, stock)
    carts = [cart for sku in skus for cart in make_carts("centro", [(sku, 1)], count=50 // len(skus))]

    def checkout(n: int) -> int:
        with transaction() as session:
            return reserve(session, "centro", session.get(m.Cart, carts[n])).id

    outcomes = run_together(len(carts), checkout)
    won = [o for o in outcomes if isinstance(o, int)]
    lost = [o for o in outcomes if isinstance(o, OutOfStock)]
    assert len(won) == 5 and len(lost) == 45, [o for o in outcomes if not isinstance(o, (int, OutOfStock))]
    assert all(set(e.available.values()) == {0} and set(e.available) <= set(skus) for e in lost)
    assert level(scarce) == (Decimal(stock), Decimal(stock))
    for sku in skus:
        assert report(sku)["available"] == 0
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.Reservation)).scalar() == 5
    assert_ledger_balanced()


# --- the command ---------------------------------------------------------------------------------


def test_stock_command(demo):
    (cart_id,) = make_carts("centro", [("TARO-MT", 2)])
    reserve_cart(cart_id)
    set_on_hand("tapioca", "1500.5", store="roma")

    text = comanda("stock", "TARO-MT", "--store", "centro")
    assert text.returncode == 0, text.stderr
    assert text.stdout == "TARO-MT at centro: on hand 50, reserved 2, available 48 (pz)\n"
    default_store = comanda("stock", "PLAYERA-M-NEGRO", env={"COMANDA_DEFAULT_STORE": "roma"})
    assert default_store.stdout == "PLAYERA-M-NEGRO at roma: on hand 2, reserved 0, available 2 (pz)\n"

    as_json = comanda("stock", "tapioca", "--store", "roma", "--json")
    assert json.loads(as_json.stdout) == {
        "sku": "tapioca",
        "store": "roma",
        "unit": "g",
        "on_hand": "1500.5",
        "reserved": "0",
        "available": "1500.5",
    }
    assert json.loads(comanda("stock", "tapioca", "--json").stdout)["reserved"] == "120"

    for args in (["stock", "NOPE"], ["stock", "COCA-600", "--store", "nowhere"]):
        failed = comanda(*args)
        assert failed.returncode == 2 and failed.stderr.startswith("error: ") and failed.stderr.count("\n") == 1
    assert_ledger_balanced()
