"""The shared SQL store on SQLite and PostgreSQL: schema, types, seed, ledger."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from comanda import models as m
from comanda.db import get_engine, new_session, transaction
from comanda.services.catalog_loader import load_catalog, read_catalog
from tests.helpers.paths import DEMO_CATALOG


def test_migrations_create_exactly_the_models(migrated):
    engine = get_engine()
    assert set(m.Base.metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), m.Base.metadata)
    assert diff == [], f"models and migrations disagree; write a migration: {diff}"


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_money_and_time_round_trip_exactly(demo):
    when = datetime(2026, 11, 22, 12, 30, tzinfo=timezone(timedelta(hours=-6)))
    with transaction() as session:
        store = session.get(m.Store, "centro")
        customer = m.Customer(phone="+5215512345678")
        session.add(customer)
        session.flush()
        order = m.Order(
            business_id=store.business_id,
            store_id="centro",
            customer_id=customer.id,
            channel="rest",
            subtotal=Decimal("0.10") + Decimal("0.20"),
            total=Decimal("1234567.89"),
            created_at=when,
        )
        session.add(order)
        session.flush()
        order_id = order.id
    with new_session() as session:
        order = session.get(m.Order, order_id)
        assert order.subtotal == Decimal("0.30") and str(order.subtotal) == "0.30"
        assert order.total == Decimal("1234567.89")
        assert order.created_at == when and order.created_at.tzinfo is not None
        total = session.execute(select(func.sum(m.Order.total))).scalar()
        assert Decimal(str(total)).quantize(Decimal("0.01")) == Decimal("1234567.89")


def test_float_money_is_refused(demo):
    with pytest.raises(Exception) as info:
        with transaction() as session:
            session.get(m.Product, 1).price = 75.5
    assert "float" in str(info.value)


def test_demo_seed_loads_the_whole_business(demo):
    with new_session() as session:
        count = lambda model: session.execute(select(func.count()).select_from(model)).scalar()  # noqa: E731
        assert count(m.Store) == 2
        assert count(m.Product) == 23
        assert count(m.ProductVariant) == 8  # 4 sizes × 2 colours
        assert count(m.Supplier) == 3
        centro = session.get(m.Store, "centro")
        assert centro.whatsapp_phone_number_id == "106540352242922"
        assert centro.delivery_fee == Decimal("35.00")
        assert [pc.postal_code for pc in centro.delivery_postal_codes][:2] == ["06000", "06010"]
        assert session.get(m.Store, "roma").delivery_available is False
        taro = session.execute(select(m.Product).where(m.Product.sku == "TARO-MT")).scalar_one()
        assert taro.price == Decimal("75.00") and taro.name("en") == "Taro milk tea"
        assert {line.stock_item.code: line.quantity for line in taro.recipe} == {
            "tapioca": Decimal("60"),
            "taro_powder": Decimal("30"),
            "milk": Decimal("250"),
        }
        assert [g.group_id for g in taro.modifier_groups] == ["size", "sugar", "milk", "boba"]
        assert "taro tea" in {s.text for s in taro.synonyms}
        shirt = session.execute(select(m.ProductVariant).where(m.ProductVariant.sku == "PLAYERA-G-NEGRO")).scalar_one()
        assert shirt.attributes == {"size": "G", "color": "negro"}
        level = session.get(m.StockLevel, ("roma", shirt.stock_item_id))
        assert level.on_hand == Decimal("2")
        large = session.execute(
            select(m.ModifierOption).where(m.ModifierOption.group_id == "size", m.ModifierOption.code == "large")
        ).scalar_one()
        assert large.price_delta == Decimal("20.00")


def _snapshot():
    with get_engine().connect() as conn:
        return {
            table: sorted(map(repr, conn.execute(text(f'SELECT * FROM "{table}"')).all()))
            for table in m.Base.metadata.tables
        }


def test_seed_is_idempotent(demo):
    before = _snapshot()
    with transaction() as session:
        report = load_catalog(session, read_catalog(DEMO_CATALOG))
    assert not report.changed
    assert _snapshot() == before


def test_seed_updates_definitions_but_never_resets_live_stock(demo):
    with transaction() as session:
        coca = session.execute(select(m.StockItem).where(m.StockItem.code == "COCA-600")).scalar_one()
        level = session.get(m.StockLevel, ("centro", coca.id))
        level.on_hand -= 5
        session.add(
            m.StockMovement(
                store_id="centro",
                stock_item_id=coca.id,
                reason="sale",
                on_hand_delta=Decimal(-5),
                reference_type="order",
                reference_id="1",
            )
        )
    data = read_catalog(DEMO_CATALOG)
    next(p for p in data["products"] if p["sku"] == "COCA-600")["price_mxn"] = 32
    with transaction() as session:
        report = load_catalog(session, data)
    assert report.updated == {"products": 1} and report.created == {}
    with new_session() as session:
        assert session.execute(select(m.Product.price).where(m.Product.sku == "COCA-600")).scalar() == Decimal("32.00")
        assert session.get(m.StockLevel, ("centro", coca.id)).on_hand == Decimal("43")


def test_ledger_explains_every_stock_level(demo):
    with new_session() as session:
        sums = dict(
            ((store, item), on_hand)
            for store, item, on_hand in session.execute(
                select(
                    m.StockMovement.store_id, m.StockMovement.stock_item_id, func.sum(m.StockMovement.on_hand_delta)
                ).group_by(m.StockMovement.store_id, m.StockMovement.stock_item_id)
            )
        )
        levels = session.execute(select(m.StockLevel)).scalars().all()
        assert len(levels) == 64  # (12 ingredients + 12 products + 8 variants) × 2 stores
        for level in levels:
            assert Decimal(str(sums.get((level.store_id, level.stock_item_id), 0))) == level.on_hand


def test_stock_cannot_go_negative(demo):
    with pytest.raises(IntegrityError):
        with transaction() as session:
            level = session.execute(select(m.StockLevel)).scalars().first()
            level.on_hand = Decimal(-1)


def test_a_row_inserted_first_in_a_transaction_goes_away_with_its_rollback(demo):
    from comanda.db import insert_unless_duplicate

    with pytest.raises(RuntimeError):
        with transaction() as session:
            assert insert_unless_duplicate(session, m.Customer(phone="+525500001111")) is not None
            raise RuntimeError("the work after the insert fails")
    with new_session() as session:
        assert session.execute(select(m.Customer).where(m.Customer.phone == "+525500001111")).first() is None


def test_only_a_unique_conflict_is_a_duplicate_other_integrity_errors_are_raised(demo):
    from sqlalchemy.exc import IntegrityError

    from comanda.db import insert_unless_duplicate

    with transaction() as session:
        assert insert_unless_duplicate(session, m.Customer(phone="+525500002222")) is not None
        assert insert_unless_duplicate(session, m.Customer(phone="+525500002222")) is None  # a replay
    with pytest.raises(IntegrityError):  # a conversation of no store is a bug, not a replay
        with transaction() as session:
            customer_id = session.execute(select(m.Customer.id).where(m.Customer.phone == "+525500002222")).scalar()
            insert_unless_duplicate(
                session,
                m.Conversation(
                    id="nowhere:rest:+525500002222", store_id="nowhere", customer_id=customer_id, channel="rest"
                ),
            )
