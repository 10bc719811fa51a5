"""The database keeps statuses, kinds and methods inside their enums (CHECK constraints, migration 0017), and the
business's payment methods are its configuration, not FAQ data."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import Callable, Dict, List

import pytest
from alembic import command
from sqlalchemy import CheckConstraint, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.clock import now
from comanda.db import dispose_engines, get_engine, new_session, transaction
from comanda.errors import InvalidInput
from comanda.migrate import alembic_config, upgrade
from comanda.services import checkout
from comanda.services.catalog_loader import load_catalog, read_catalog
from comanda.services.faq import faq_response
from tests.helpers.paths import DEMO_CATALOG


def _values(sql: str) -> List[str]:
    """The quoted values of a CHECK's SQL, however the database spells the rest of it."""
    return sorted(re.findall(r"'([^']*)'", sql))


def test_the_migrated_check_constraints_are_the_models(migrated):
    inspector = inspect(get_engine())
    for table in m.Base.metadata.sorted_tables:
        wanted = {c.name: _values(str(c.sqltext)) for c in table.constraints if isinstance(c, CheckConstraint)}
        found = {c["name"]: _values(c["sqltext"]) for c in inspector.get_check_constraints(table.name)}
        assert found == wanted, f"{table.name}: the migrations' CHECK constraints differ from the models'"


def _customer(session: Session) -> int:
    customer = m.Customer()
    session.add(customer)
    session.flush()
    return customer.id


def _order(session: Session, **values: str) -> m.Order:
    fields = dict(status="received", payment_status="unpaid", payment_method="cash", fulfilment="pickup")
    return m.Order(
        business_id="cafe-esquina",
        store_id="centro",
        customer_id=_customer(session),
        channel=values.pop("channel", "whatsapp"),
        subtotal=Decimal("10.00"),
        total=Decimal("10.00"),
        **{**fields, **values},
    )


ROWS: Dict[str, Callable[[Session, str], object]] = {
    "orders.status": lambda s, v: _order(s, status=v),
    "orders.payment_status": lambda s, v: _order(s, payment_status=v),
    "orders.payment_method": lambda s, v: _order(s, payment_method=v),
    "orders.fulfilment": lambda s, v: _order(s, fulfilment=v),
    "orders.channel": lambda s, v: _order(s, channel=v),
    "carts.status": lambda s, v: m.Cart(store_id="centro", customer_id=_customer(s), status=v),
    "reservations.status": lambda s, v: m.Reservation(store_id="centro", status=v, expires_at=now()),
    "stock_items.kind": lambda s, v: m.StockItem(business_id="cafe-esquina", code="X-1", kind=v, name="x"),
    "privacy_requests.status": lambda s, v: m.PrivacyRequest(customer_id=_customer(s), kind="access", status=v),
}
GOOD = {
    "orders.status": "preparing",
    "orders.payment_status": "paid",
    "orders.payment_method": "card",
    "orders.fulfilment": "delivery",
    "orders.channel": "twilio",
    "carts.status": "ordered",
    "reservations.status": "committed",
    "stock_items.kind": "ingredient",
    "privacy_requests.status": "done",
}


@pytest.mark.parametrize("column", sorted(ROWS))
def test_a_value_outside_its_enum_is_refused_by_the_database(demo, column):
    with transaction() as session:  # the same row with a value of the enum is fine
        session.add(ROWS[column](session, GOOD[column]))
    with pytest.raises(IntegrityError, match=r"(?i)check"):
        with transaction() as session:
            session.add(ROWS[column](session, "bogus"))
            session.flush()


def test_a_bad_status_written_around_the_orm_is_refused_too(demo):
    with pytest.raises(IntegrityError):
        with transaction() as session:
            session.execute(update(m.Business).values(default_language="fr"))
    with pytest.raises(IntegrityError):
        with transaction() as session:
            session.execute(text("UPDATE stock_movements SET reason = 'gift'"))


# --- payment methods: the business's configuration ---------------------------------------------------


def test_payment_methods_come_from_the_business_for_checkout_and_the_faq(demo, monkeypatch):
    monkeypatch.setenv("COMANDA_SPEI_CLABE", "012180001234567897")
    with transaction() as session:
        business = session.get(m.Business, "cafe-esquina")
        assert business.payment_methods == ["card", "oxxo", "spei", "cash"]
        assert "payment_methods" not in business.faq
        business.payment_methods = ["cash", "card"]
    with new_session() as session:
        store = session.get(m.Store, "centro")
        assert checkout.payment_choices(store, "pickup") == ["cash", "card"]
        assert checkout.payment_choices(store, "delivery") == ["card"]
        assert faq_response(session, "centro", "payment_methods", "es")["methods"] == (
            "efectivo al recoger y tarjeta de crédito o débito (link de pago)"
        )


def test_the_catalog_names_known_payment_methods_or_loading_stops(demo):
    catalog = read_catalog(DEMO_CATALOG)
    for wrong, said in (
        (["card", "bitcoin"], "unknown payment method 'bitcoin'; the codes are card, oxxo, spei, cash"),
        (["store_credit"], "unknown payment method 'store_credit'"),
        ([], "must be a list of payment method codes"),
        ("cash", "must be a list of payment method codes"),
    ):
        catalog["business"]["payment_methods"] = wrong
        with pytest.raises(InvalidInput, match=re.escape(said)):
            with transaction() as session:
                load_catalog(session, catalog)
    catalog["business"].pop("payment_methods")
    with transaction() as session:
        load_catalog(session, catalog)
    with new_session() as session:
        assert session.get(m.Business, "cafe-esquina").payment_methods == ["cash"]  # none listed: cash only


def test_migration_0017_moves_payment_methods_out_of_the_faq_and_back(database_url):
    upgrade(database_url, "0016")
    with get_engine(database_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO businesses (id, name, timezone, currency, default_language, reservation_hold_minutes, "
                "payment_link_expiry_minutes, return_window_days, invoice_deadline, auto_approve_refund_up_to, "
                "return_refund_on, handoff_after_consecutive_fallbacks, handoff_unanswered_minutes, faq, created_at) "
                "VALUES (:id, 'B', 'America/Mexico_City', 'MXN', 'es', 15, 15, 30, 'same_month', 0, 'received', 2, "
                "10, :faq, :at)"
            ),
            [
                {"id": "listed", "faq": '{"payment_methods": ["spei", "card", "bogus"], "wifi": true}', "at": now()},
                {"id": "unlisted", "faq": "{}", "at": now() - timedelta(days=1)},
            ],
        )
    dispose_engines()
    upgrade(database_url)
    with new_session(database_url) as session:
        found = {b.id: (b.payment_methods, b.faq) for b in session.execute(select(m.Business)).scalars()}
    assert found == {"listed": (["spei", "card"], {"wifi": True}), "unlisted": (["cash"], {})}

    dispose_engines()
    command.downgrade(alembic_config(database_url), "0016")
    with get_engine(database_url).connect() as conn:
        assert "payment_methods" not in {c["name"] for c in inspect(conn).get_columns("businesses")}
        assert not inspect(conn).get_check_constraints("orders")
        faqs = dict(conn.execute(text("SELECT id, faq FROM businesses")).all())
    assert {k: v if isinstance(v, dict) else json.loads(v) for k, v in faqs.items()} == {
        "listed": {"wifi": True, "payment_methods": ["spei", "card"]},
        "unlisted": {"payment_methods": ["cash"]},
    }
    dispose_engines()
    upgrade(database_url)
