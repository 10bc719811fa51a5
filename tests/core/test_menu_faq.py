from decimal import Decimal

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services.faq import faq_response, format_hours
from comanda.services.menu import store_menu


def _skus(sections):
    return [i.sku for s in sections for i in s.items]


def test_menu_is_in_the_customers_language_with_prices(demo):
    with new_session() as session:
        es = store_menu(session, "centro", "es")
        en = store_menu(session, "centro", "en")
    assert es[0].title == "Bubble tea" and es[1].title == "Café" and en[1].title == "Coffee"
    taro_es = es[0].items[0]
    assert (taro_es.sku, taro_es.name, taro_es.price) == ("TARO-MT", "Té de taro con leche", Decimal("75.00"))
    assert en[0].items[0].name == "Taro milk tea"
    assert _skus(es) == _skus(en)


def test_a_branch_without_kitchen_does_not_offer_tacos(demo):
    with new_session() as session:
        roma = _skus(store_menu(session, "roma", "es"))
        centro = _skus(store_menu(session, "centro", "es"))
    assert "TACO-PASTOR" in centro and "CHILAQUILES" in centro
    assert not {"TACO-PASTOR", "TACO-SUADERO", "QUESADILLA", "TORTA-MILA", "CHILAQUILES"} & set(roma)
    assert "TARO-MT" in roma


def test_menu_follows_stock_and_prices_in_the_database(demo):
    with transaction() as session:
        coca = session.execute(select(m.Product).where(m.Product.sku == "COCA-600")).scalar_one()
        session.get(m.StockLevel, ("centro", coca.stock_item_id)).reserved = Decimal(48)
        session.execute(select(m.Product).where(m.Product.sku == "CONCHA")).scalar_one().price = Decimal("19.50")
    with new_session() as session:
        items = {i.sku: i for s in store_menu(session, "centro", "es") for i in s.items}
    assert "COCA-600" not in items
    assert items["CONCHA"].price == Decimal("19.50")


def test_hours_read_naturally_in_both_languages():
    hours = {"mon-fri": "07:30-21:00", "sat-sun": "09:00-20:00"}
    assert format_hours(hours, "es") == "lun–vie 07:30–21:00\nsáb–dom 09:00–20:00"
    assert format_hours(hours, "en") == "Mon–Fri 07:30–21:00\nSat–Sun 09:00–20:00"


def test_faq_answers_come_from_the_store(demo):
    with new_session() as session:
        delivery = faq_response(session, "centro", "delivery", "es")
        no_delivery = faq_response(session, "roma", "delivery", "en")
        payment = faq_response(session, "centro", "payment_methods", "en")
        location = faq_response(session, "roma", "location", "es")
    assert delivery["response"] == "utter_faq/delivery"
    assert delivery["fee"] == "$35.00" and delivery["minimum"] == "$150.00"
    assert delivery["postal_codes"].endswith("06060 y 06080")
    assert no_delivery == {
        "response": "utter_faq_no_delivery",
        "store_name": "Café Esquina Roma",
        "address": "Calle Orizaba 101, Roma Norte, CDMX",
    }
    assert payment["methods"].startswith("credit or debit card") and payment["methods"].endswith("and cash on pickup")
    assert location["address"] == "Calle Orizaba 101, Roma Norte, CDMX"
