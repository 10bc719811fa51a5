"""The cart, checkout rules and orders on real SQL (SQLite, and PostgreSQL when configured): what a
customer can add, what checkout accepts, placing orders with their stock held, tickets, cancelling."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backoffice import queue_api
from comanda import models as m
from comanda.clock import set_clock
from comanda.db import new_session, transaction
from comanda.errors import OutOfStock
from comanda.services import answers, carts, checkout, orders
from comanda.services.checkout import CheckoutDetails, CheckoutProblem
from comanda.services.customers import conversation_for
from comanda.services.reservations import ledger_mismatches, stock_report
from tests.helpers.stock import level, set_on_hand
from tests.helpers.threads import run_together

ANA = "centro:whatsapp:+525511112222"
PICKUP_CASH = CheckoutDetails(fulfilment="pickup", customer_name="Ana", payment_method="cash")


@pytest.fixture(autouse=True)
def real_clock_after():
    yield
    set_clock(None)


def add(conversation: str, *lines: carts.Wanted, language: str = "es") -> carts.AddResult:
    with transaction() as session:
        return carts.add_items(session, carts.open_cart(session, conversation), lines, language)


def view(conversation: str, language: str = "es"):
    with transaction() as session:
        lines, total = carts.cart_view(session, carts.open_cart(session, conversation), language)
        return [(cl.sku, cl.name, cl.quantity, cl.line_total) for cl in lines], total


def place(conversation: str, details: CheckoutDetails = PICKUP_CASH) -> int:
    with transaction() as session:
        return orders.place_order(session, conversation, details, actor="test").id


def order(order_id: int) -> m.Order:
    with new_session() as session:
        found = session.get(m.Order, order_id)
        _ = found.lines
        return found


W = carts.Wanted


# --- the cart ------------------------------------------------------------------------------------


def test_lines_get_their_options_defaults_and_prices_and_add_up(demo):
    result = add(
        ANA,
        W("TARO-MT", 1, {"size": "large", "sugar": "0", "milk": "oat"}),
        W("TACO-PASTOR", 3),
        W("TARO-MT", 1, {"size": "large", "sugar": "0", "milk": "oat"}),
        W("TARO-MT", 1),
    )
    assert result.added[0] == "1 × Té de taro con leche (grande, sin azúcar, leche de avena)"
    lines, total = view(ANA)
    assert lines == [
        ("TARO-MT", "Té de taro con leche (grande, sin azúcar, leche de avena)", 2, Decimal("214.00")),  # 75+20+12
        ("TACO-PASTOR", "Taco al pastor", 3, Decimal("66.00")),
        ("TARO-MT", "Té de taro con leche (mediano)", 1, Decimal("85.00")),  # the default size costs 10 more
    ]
    assert total == Decimal("365.00")
    assert view(ANA, "en")[0][0][1] == "Taro milk tea (large, no sugar, oat milk)"


def test_options_a_product_does_not_take_are_dropped(demo):
    add(ANA, W("COCA-600", 1, {"size": "large"}), W("TACO-PASTOR", 1, {"taco_extras": "no_onion", "milk": "oat"}))
    assert [name for _, name, _, _ in view(ANA)[0]] == ["Coca-Cola 600 ml", "Taco al pastor (sin cebolla)"]


def test_a_group_that_takes_several_options_keeps_every_one(demo):
    """Taco extras take several ("sin cebolla y con piña"), kept in the catalog's order, priced and
    named; a group that takes one keeps one."""
    result = add(
        ANA,
        W("TACO-PASTOR", 3, {"taco_extras": ["with_pineapple", "no_onion", "with_pineapple"]}),
        W("TACO-PASTOR", 1, {"taco_extras": ["no_onion", "with_pineapple"]}),
        W("TACO-SUADERO", 2, {"taco_extras": "extra_salsa"}),
        W("TARO-MT", 1, {"size": ["large", "small"], "taco_extras": ["no_onion"]}),
    )
    assert result.added == [
        "3 × Taco al pastor (sin cebolla, con piña)",
        "1 × Taco al pastor (sin cebolla, con piña)",
        "2 × Taco de suadero (con salsa extra)",
        "1 × Té de taro con leche (grande)",
    ]
    lines, total = view(ANA, "en")
    assert lines[:2] == [
        ("TACO-PASTOR", "Al pastor taco (no onion, with pineapple)", 4, Decimal("88.00")),
        ("TACO-SUADERO", "Suadero taco (extra salsa)", 2, Decimal("44.00")),
    ]
    with new_session() as session:
        stored = [line.modifiers for line in session.execute(select(m.CartLine).order_by(m.CartLine.id)).scalars()]
    assert stored == [
        {"taco_extras": ["no_onion", "with_pineapple"]},
        {"taco_extras": ["extra_salsa"]},
        {"size": "large", "sugar": "100", "milk": "whole", "boba": "yes"},
    ]
    placed = order(place(ANA))
    assert placed.lines[0].modifiers == {"taco_extras": ["no_onion", "with_pineapple"]}
    assert placed.lines[0].description == "Taco al pastor (sin cebolla, con piña)"


def test_a_note_for_the_kitchen_goes_with_its_line_to_the_order_and_the_queue(demo):
    """What no option says ("bien fría") is kept on the line, shown with it, and reaches the kitchen;
    invoices keep the catalog's description."""
    entity = {"sku": "HORCHATA", "quantity": 2, "modifiers": {}, "note": "  bien   fría "}
    result = add(ANA, W.from_entity(entity), W("HORCHATA", 1), W.from_entity(entity))
    assert result.added == [
        "2 × Agua de horchata (500 ml) — nota: bien fría",
        "1 × Agua de horchata (500 ml)",
        "2 × Agua de horchata (500 ml) — nota: bien fría",
    ]
    assert [(name, q) for _, name, q, _ in view(ANA, "en")[0]] == [
        ("Horchata (500 ml) — note: bien fría", 4),
        ("Horchata (500 ml)", 1),
    ]
    placed = order(place(ANA))
    assert [(cl.description, cl.note, cl.quantity) for cl in placed.lines] == [
        ("Agua de horchata (500 ml)", "bien fría", 4),
        ("Agua de horchata (500 ml)", None, 1),
    ]
    with new_session() as session:
        line = session.get(m.OrderLine, placed.lines[0].id)
        assert orders.line_name(session, line, "en") == "Horchata (500 ml) — note: bien fría"
        queued = queue_api.summary(session, session.get(m.Order, placed.id))
    assert [(q["description"], q["note"]) for q in queued["lines"]] == [
        ("Agua de horchata (500 ml)", "bien fría"),
        ("Agua de horchata (500 ml)", None),
    ]
    assert W.from_entity({"sku": "HORCHATA", "note": "x" * 500}).note == "x" * carts.MAX_NOTE_LENGTH


def test_a_drink_without_pearls_is_sold_when_the_pearls_run_out(demo):
    set_on_hand("tapioca", "0")
    result = add(ANA, W("TARO-MT", 1), W("TARO-MT", 1, {"boba": "no", "milk": "oat"}))
    assert [(short.sku, short.left) for short in result.short] == [("TARO-MT", 0)]
    assert result.added == ["1 × Té de taro con leche (mediano, leche de avena, sin perlas)"]
    place(ANA)
    assert level("tapioca") == (Decimal("0"), Decimal("0"))
    assert level("oat_milk") == (Decimal("7750"), Decimal("0")) and level("milk")[0] == Decimal("20000")
    assert_ledger_balanced()


def test_short_stock_says_how_many_are_left_and_adds_nothing(demo):
    set_on_hand("COCA-600", "3")
    result = add(ANA, W("COCA-600", 5), W("CONCHA", 2))
    [short] = result.short
    assert (short.sku, short.left, short.elsewhere, short.alternatives) == ("COCA-600", 3, [], [])
    assert view(ANA)[0] == [("CONCHA", "Concha", 2, Decimal("36.00"))]
    add(ANA, W("COCA-600", 2))
    assert add(ANA, W("COCA-600", 2)).short[0].left == 1  # what the cart holds counts


def test_out_of_stock_offers_the_same_category_and_other_branches(demo):
    set_on_hand("TORTA-MILA", "0")
    [short] = add(ANA, W("TORTA-MILA", 1)).short
    assert short.left == 0 and short.elsewhere == []
    assert [sku for sku, _ in short.alternatives] == ["QUESADILLA", "CHILAQUILES"]
    [roma] = add("roma:whatsapp:+525511112222", W("TACO-PASTOR", 2), language="en").short
    assert roma.name == "Al pastor taco" and roma.left == 0 and roma.elsewhere == ["Café Esquina Centro"]
    assert roma.alternatives == []  # Roma has no kitchen: no taco at all


def test_a_variant_product_without_size_and_colour_asks_for_one_in_stock(demo):
    set_on_hand("PLAYERA-M-NEGRO", "0")
    [question] = add(ANA, W("PLAYERA", 1, variant={"color": "negro"}), language="en").ask_variant
    assert question.quantity == 1
    assert question.options == [
        ("PLAYERA-CH-NEGRO", "S / black"),
        ("PLAYERA-G-NEGRO", "L / black"),
        ("PLAYERA-XG-NEGRO", "XL / black"),
    ]
    assert view(ANA)[0] == []
    add(ANA, W("PLAYERA-G-NEGRO", 2))
    assert view(ANA)[0] == [("PLAYERA-G-NEGRO", "Playera Café Esquina (G / negro)", 2, Decimal("500.00"))]


def test_unknown_skus_and_other_businesses_products_are_not_added(demo):
    assert add(ANA, W("NOPE", 1)).unknown == ["NOPE"]


def test_remove_takes_what_was_said_or_the_whole_product(demo):
    add(ANA, W("TACO-PASTOR", 3), W("TACO-PASTOR", 1, {"taco_extras": "no_onion"}), W("COCA-600", 2))
    with transaction() as session:
        cart = carts.open_cart(session, ANA)
        assert carts.remove_items(session, cart, [W("TACO-PASTOR", 2)]) == (["TACO-PASTOR"], [])
    assert [(sku, q) for sku, _, q, _ in view(ANA)[0]] == [("TACO-PASTOR", 2), ("COCA-600", 2)]
    with transaction() as session:
        cart = carts.open_cart(session, ANA)
        removed = carts.remove_items(session, cart, [W("COCA-600", 1, quantity_stated=False), W("CHURROS", 1)])
        assert removed == (["COCA-600"], ["CHURROS"])
    assert [(sku, q) for sku, _, q, _ in view(ANA)[0]] == [("TACO-PASTOR", 2)]


def test_change_quantity_sets_the_total_within_the_stock(demo):
    add(ANA, W("TACO-PASTOR", 2), W("TACO-PASTOR", 3, {"taco_extras": "with_pineapple"}))
    with transaction() as session:
        cart = carts.open_cart(session, ANA)
        assert carts.set_quantity(session, cart, W("TACO-PASTOR", 4), "es").added == ["4 × Taco al pastor"]
    assert [(sku, q) for sku, _, q, _ in view(ANA)[0]] == [("TACO-PASTOR", 4)]
    set_on_hand("COCA-600", "5")
    add(ANA, W("COCA-600", 2))
    with transaction() as session:
        cart = carts.open_cart(session, ANA)
        [short] = carts.set_quantity(session, cart, W("COCA-600", 9), "es").short
        assert short.left == 5
        assert carts.set_quantity(session, cart, W("CHURROS", 2), "es").added == ["2 × Churros (3 piezas)"]
        assert carts.clear_cart(session, cart) == 3
    assert view(ANA)[0] == []


def test_the_cart_waits_hours_but_not_days(demo):
    now = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
    set_clock(lambda: now)
    add(ANA, W("CONCHA", 2))
    set_clock(lambda: now + timedelta(hours=carts.CART_IDLE_HOURS - 1))
    assert view(ANA)[0][0][0] == "CONCHA"
    set_clock(lambda: now + timedelta(hours=2 * carts.CART_IDLE_HOURS))
    assert view(ANA)[0] == []
    with new_session() as session:
        assert [c.status for c in session.execute(select(m.Cart).order_by(m.Cart.id)).scalars()] == [
            "abandoned",
            "open",
        ]


def test_rest_and_shell_conversations_are_made_on_first_use(demo):
    with transaction() as session:
        anonymous = conversation_for(session, "default")
        known = conversation_for(session, "roma:rest:+5215599998888")
        assert (anonymous.store_id, anonymous.channel) == ("centro", "rest")
        assert (known.store_id, session.get(m.Customer, known.customer_id).phone) == ("roma", "+525599998888")
        assert conversation_for(session, "default").id == "default"


# --- reading answers and checkout rules ----------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("paso a recogerlo", "pickup"),
        ("Para recoger en tienda", "pickup"),
        ("I'll pick it up", "pickup"),
        ("a domicilio porfa", "delivery"),
        ("envíamelo", "delivery"),
        ("que me lo lleven a la casa", "delivery"),
        ("deliver it please", "delivery"),
        ("azul", None),
    ],
)
def test_reading_pickup_or_delivery(text, expected):
    assert answers.read_fulfilment(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a nombre de Ana López", "Ana López"),
        ("soy Jorge", "Jorge"),
        ("my name is Kim", "Kim"),
        ("Ana", "Ana"),
        ("  maría   fernanda ", "maría fernanda"),
        ("06010", None),
        ("", None),
        ("Ana 2", None),
        ("x" * 80, None),
    ],
)
def test_reading_a_name(text, expected):
    assert answers.read_name(text) == expected


def test_reading_payment_and_postal_code():
    assert answers.read_payment_method("con tarjeta de débito") == "card"
    assert answers.read_payment_method("pago en el OXXO") == "oxxo"
    assert answers.read_payment_method("por transferencia") == "spei"
    assert answers.read_payment_method("efectivo") == "cash"
    assert answers.read_payment_method("con lo que sea") is None
    assert answers.read_postal_code("mi cp es 06010, gracias") == "06010"
    assert answers.read_postal_code("tel 5512345678") is None


def test_delivery_by_postal_code_radius_and_minimum(demo, monkeypatch):
    monkeypatch.setenv("COMANDA_SPEI_CLABE", "012180001234567897")
    add(ANA, W("CAFE-GRANO-250", 1))  # 180, above the 150 minimum
    with transaction() as session:
        store, cart = session.get(m.Store, "centro"), carts.open_cart(session, ANA)
        assert checkout.delivery_problem(session, store, cart, "06010") is None
        assert checkout.delivery_problem(session, store, cart, "06700").reason == "postal_code_not_served"
        assert checkout.delivery_problem(session, store, cart).reason == "no_delivery_place"
        carts.set_delivery_location(session, cart, 19.4270, -99.1677)  # the Ángel, about 3.3 km away
        problem = checkout.delivery_problem(session, store, cart)
        assert problem.reason == "too_far" and problem.params["distance_km"] > 3
        carts.set_delivery_location(session, cart, 19.4326, -99.1332)  # the Zócalo, 0.4 km
        assert checkout.delivery_problem(session, store, cart) is None
        carts.clear_cart(session, cart)
        carts.add_items(session, cart, [W("CONCHA", 2)], "es")
        problem = checkout.delivery_problem(session, store, cart, "06010")
        assert problem.reason == "below_minimum" and problem.params["missing"] == Decimal("114.00")
        roma = session.get(m.Store, "roma")
        assert checkout.delivery_problem(session, roma, cart).reason == "no_delivery"
        assert checkout.payment_choices(store, "delivery") == ["card", "oxxo", "spei"]
        assert checkout.payment_choices(store, "pickup") == ["card", "oxxo", "spei", "cash"]
        monkeypatch.delenv("COMANDA_SPEI_CLABE")
        monkeypatch.setenv("COMANDA_PAYMENT_PROVIDER", "stripe")  # a real provider has no demo CLABE
        assert checkout.payment_choices(store, "pickup") == ["card", "oxxo", "cash"]  # no CLABE, no SPEI


# --- orders --------------------------------------------------------------------------------------


def test_cash_on_pickup_is_sold_at_once_with_the_days_next_ticket(demo):
    set_clock(lambda: datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc))  # 11:00 in Mexico City
    add(ANA, W("TACO-PASTOR", 3, {"taco_extras": "with_pineapple"}), W("COCA-600", 1))
    first = order(place(ANA))
    assert (first.status, first.ticket_code, first.payment_method, first.total) == (
        "received",
        "C-001",
        "cash",
        Decimal("96.00"),
    )
    assert first.ticket_day.isoformat() == "2026-12-01"
    assert [(cl.sku, cl.description, cl.quantity, cl.unit_price, cl.sat_prod_serv) for cl in first.lines] == [
        ("TACO-PASTOR", "Taco al pastor (con piña)", 3, Decimal("22.00"), "90101503"),
        ("COCA-600", "Coca-Cola 600 ml", 1, Decimal("30.00"), "50202306"),
    ]
    assert stock_report_of("COCA-600") == (Decimal("47"), Decimal("0"))
    assert level("pastor") == (Decimal("5760"), Decimal("0"))  # 3 tacos × 80 g sold
    assert view(ANA)[0] == []  # the cart became the order
    add(ANA, W("CONCHA", 1))
    assert order(place(ANA)).ticket_code == "C-002"
    add("roma:whatsapp:+525511112222", W("CONCHA", 1))
    assert order(place("roma:whatsapp:+525511112222")).ticket_code == "R-001"
    set_clock(lambda: datetime(2026, 12, 2, 7, 0, tzinfo=timezone.utc))  # 01:00 the next local day
    add(ANA, W("CONCHA", 1))
    assert order(place(ANA)).ticket_code == "C-001"
    with new_session() as session:
        changes = session.execute(
            select(m.OrderStatusChange.from_status, m.OrderStatusChange.to_status)
            .where(m.OrderStatusChange.order_id == first.id)
            .order_by(m.OrderStatusChange.id)
        ).all()
    assert changes == [(None, "pending_payment"), ("pending_payment", "received")]
    assert_ledger_balanced()


def stock_report_of(sku: str):
    with new_session() as session:
        report = stock_report(session, "centro", sku)
        return report["on_hand"], report["reserved"]


def test_a_paid_method_holds_the_stock_until_paid(demo):
    add(ANA, W("CAFE-GRANO-250", 1))
    delivery = CheckoutDetails(
        fulfilment="delivery",
        customer_name="Ana",
        payment_method="card",
        postal_code="06010",
        address="Madero 25, depto 3",
    )
    placed = order(place(ANA, delivery))
    assert (placed.status, placed.ticket_code, placed.delivery_fee, placed.total) == (
        "pending_payment",
        None,
        Decimal("35.00"),
        Decimal("215.00"),
    )
    assert stock_report_of("CAFE-GRANO-250") == (Decimal("12"), Decimal("1"))
    with transaction() as session:
        orders.enter_queue(session, session.get(m.Order, placed.id), "test")
        orders.enter_queue(session, session.get(m.Order, placed.id), "test")  # idempotent
    assert order(placed.id).ticket_code == "C-001" and stock_report_of("CAFE-GRANO-250") == (Decimal("11"), 0)
    assert_ledger_balanced()


def test_checkout_refuses_what_the_rules_refuse_and_keeps_the_cart(demo):
    with pytest.raises(orders.EmptyCart):
        place(ANA)
    add(ANA, W("CONCHA", 1))
    for details, reason in [
        (CheckoutDetails("delivery", "Ana", "card", "06010", "Madero 25"), "below_minimum"),
        (CheckoutDetails("pickup", "", "cash"), "name_missing"),
        (CheckoutDetails("pickup", "Ana", "bitcoin"), "payment_not_offered"),
    ]:
        with pytest.raises(CheckoutProblem) as info:
            place(ANA, details)
        assert info.value.reason == reason
    set_on_hand("CONCHA", "0")
    with pytest.raises(OutOfStock) as info:
        place(ANA)
    assert info.value.available == {"CONCHA": 0}
    with new_session() as session:
        assert session.execute(select(func.count()).select_from(m.Order)).scalar() == 0
    assert view(ANA)[0][0][0] == "CONCHA"
    with transaction() as session:
        assert carts.fit_to_stock(session, carts.open_cart(session, ANA), info.value.available, "es") == ["Concha"]
    assert view(ANA)[0] == []


def test_cancelling_gives_the_stock_back_or_needs_a_person(demo):
    add(ANA, W("COCA-600", 2))
    pending = place(ANA, CheckoutDetails("pickup", "Ana", "card"))
    add(ANA, W("COCA-600", 3))
    cash = place(ANA)
    assert stock_report_of("COCA-600") == (Decimal("45"), Decimal("2"))
    with transaction() as session:
        orders.cancel_order(session, session.get(m.Order, pending), "test")
        orders.cancel_order(session, session.get(m.Order, cash), "test")
    assert stock_report_of("COCA-600") == (Decimal("48"), Decimal("0"))
    assert (order(pending).status, order(cash).status) == ("cancelled", "cancelled")
    add(ANA, W("COCA-600", 1))
    preparing = place(ANA)
    with transaction() as session:
        orders.set_status(session, session.get(m.Order, preparing), "preparing", "staff:1")
        with pytest.raises(orders.CannotCancel):
            orders.cancel_order(session, session.get(m.Order, preparing), "test")
        with pytest.raises(orders.StatusConflict):
            orders.set_status(session, session.get(m.Order, preparing), "received", "staff:1")
    with new_session() as session:
        movements = session.execute(
            select(m.StockMovement.reason, m.StockMovement.on_hand_delta).where(
                m.StockMovement.reference_type == "order", m.StockMovement.reference_id == str(cash)
            )
        ).all()
    assert sorted(movements) == [("return", Decimal("3")), ("sale", Decimal("-3"))]
    assert_ledger_balanced()


def test_fifty_concurrent_checkouts_for_five_units_place_five_orders(demo):
    set_on_hand("COCA-600", "5")
    customers = [f"centro:whatsapp:+5255100000{n:02d}" for n in range(50)]
    for conversation in customers:
        add(conversation, W("COCA-600", 1))

    def checkout_one(n: int) -> int:
        return place(customers[n])

    outcomes = run_together(50, checkout_one)
    won = [o for o in outcomes if isinstance(o, int)]
    assert len(won) == 5 and all(isinstance(o, OutOfStock) for o in outcomes if not isinstance(o, int)), outcomes
    with new_session() as session:
        tickets = session.execute(select(m.Order.ticket_number).order_by(m.Order.ticket_number)).scalars().all()
    assert tickets == [1, 2, 3, 4, 5]
    assert stock_report_of("COCA-600") == (Decimal("0"), Decimal("0"))
    assert_ledger_balanced()


def assert_ledger_balanced() -> None:
    with new_session() as session:
        assert ledger_mismatches(session) == []


def test_a_cash_order_handed_over_is_paid_and_can_be_invoiced(demo):
    from comanda.services import payments
    from comanda.services.cfdi.invoicing import invoiceable_orders

    add(ANA, W("CONCHA", 2))
    placed = place(ANA)
    with transaction() as session:
        cash_order = session.get(m.Order, placed)
        assert invoiceable_orders(session, cash_order.customer_id) == []  # not paid yet: cash is paid at the counter
        orders.set_status(session, cash_order, "ready", "staff:1")
        orders.set_status(session, cash_order, "picked_up", "staff:1")
        payment = payments.collect_cash(session, cash_order, "staff:1")
        assert (payment.method, payment.status, payment.amount) == ("cash", "paid", Decimal("36.00"))
        assert payments.collect_cash(session, cash_order, "staff:1") is None  # once
        assert [o.order_id for o in invoiceable_orders(session, cash_order.customer_id)] == [placed]
