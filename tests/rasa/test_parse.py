"""`comanda parse` as an owner runs it: the trained model (from `make train`), the live catalog of a
fresh demo database, one JSON object per message; a product added to the database is read at once."""

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from comanda import models as m
from comanda.db import dispose_engines, transaction
from nlu_components.parse import message_of, reading
from tests.helpers.databases import seed_demo
from tests.helpers.paths import ROOT


@pytest.fixture(scope="module")
def catalog_db(tmp_path_factory):
    if not (ROOT / "models" / "comanda.tar.gz").exists():
        pytest.fail("no trained model: run `make train` first", pytrace=False)
    yield seed_demo(f"sqlite:///{tmp_path_factory.mktemp('parse') / 'comanda.db'}")
    dispose_engines()


def parse(url: str, *args: str, stdin: str = None):
    done = subprocess.run(
        [sys.executable, "-m", "cli", "parse", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        # No Rasa server there: the model of `make train` is loaded in process, on this test's database.
        env={**os.environ, "COMANDA_DATABASE_URL": url, "COMANDA_RASA_URL": "http://127.0.0.1:9"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


ORDERS = ("me das 3 de pastor y una coca porfa", "one large taro milk tea, half sugar", "y 2 tamales verdes")
ISSUE_11 = ("kiero 2 tacos d pastr y un orchata bien fria xfa", "a 3rd latte pls", "👍", "👎", "¿tienen pozole?")


@pytest.fixture(scope="module")
def readings(catalog_db):
    """The readings of the Centro tests' messages by one `comanda parse` (one model load, not one per test),
    after a product was added to the database: the model was trained without it."""
    with transaction(catalog_db) as session:
        business = session.get(m.Business, "cafe-esquina")
        product = m.Product(
            business_id=business.id,
            sku="TAMAL-VERDE",
            name_es="Tamal verde",
            name_en="Green tamale",
            category_id="antojitos",
            price=Decimal("30"),
            sat_prod_serv="90101503",
            sat_unit="H87",
        )
        product.synonyms.append(m.ProductSynonym(text="tamal de salsa verde"))
        session.add(product)
    read = parse(catalog_db, *ORDERS, *ISSUE_11)
    assert [r["text"] for r in read] == [*ORDERS, *ISSUE_11]
    return {r["text"]: r for r in read}


def test_parse_reads_orders_in_both_languages_and_new_products_without_retraining(readings):
    es, en, new = (readings[text] for text in ORDERS)
    assert es == {
        "text": "me das 3 de pastor y una coca porfa",
        "intent": "add_items",
        "confidence": es["confidence"],
        "language": "es",
        "items": [
            {"sku": "TACO-PASTOR", "quantity": 3, "modifiers": {}, "variant": {}},
            {"sku": "COCA-600", "quantity": 1, "modifiers": {}, "variant": {}},
        ],
    }
    assert es["confidence"] > 0.5
    assert (en["intent"], en["language"]) == ("add_items", "en")
    assert en["items"] == [
        {"sku": "TARO-MT", "quantity": 1, "modifiers": {"size": "large", "sugar": "50"}, "variant": {}}
    ]
    assert [(i["sku"], i["quantity"]) for i in new["items"]] == [("TAMAL-VERDE", 2)]


def test_parse_reads_one_message_per_line_with_jsonl(catalog_db):
    lines = parse(
        catalog_db, "--jsonl", "--store", "roma", stdin='quiero una playera negra talla M\n"¿tienen matcha?"\n'
    )
    assert [line["text"] for line in lines] == ["quiero una playera negra talla M", "¿tienen matcha?"]
    assert lines[0]["items"] == [
        {"sku": "PLAYERA-M-NEGRO", "quantity": 1, "modifiers": {}, "variant": {"size": "M", "color": "negro"}}
    ]
    assert lines[1]["intent"] == "product_question" and lines[1]["items"] == []


def test_the_reading_keeps_to_the_stores_business():
    parse_data = {
        "intent": {"name": "add_items", "confidence": 0.9},
        "entities": [
            {"entity": "order_line", "value": {"sku": "TACO-PASTOR", "quantity": 2, "modifiers": {}, "variant": {}}},
            {"entity": "order_line", "value": {"sku": "OTHER-SHOP", "quantity": 1}},
            {"entity": "language", "value": "es"},
        ],
    }
    assert reading("2 de pastor", parse_data, {"TACO-PASTOR"})["items"] == [
        {"sku": "TACO-PASTOR", "quantity": 2, "modifiers": {}, "variant": {}}
    ]
    assert message_of('{"text": "hola"}\n') == "hola" and message_of("hola\n") == "hola"


def test_the_trained_bot_keeps_every_part_of_an_order_and_never_guesses_a_removal(readings):
    """Issue 11: the misspelt order, "a 3rd latte", 👍, and a product the shop lacks, on the real model."""
    order, third, yes, no, pozole = (readings[text] for text in ISSUE_11)
    assert order["intent"] == "add_items"
    assert [(i["sku"], i["quantity"], i.get("note")) for i in order["items"]] == [
        ("TACO-PASTOR", 2, None),
        ("HORCHATA", 1, "bien fria"),
    ]
    assert third["intent"] == "add_items" and [(i["sku"], i["quantity"]) for i in third["items"]] == [("CAFE-LATTE", 1)]
    assert (yes["intent"], yes["confidence"], no["intent"]) == ("affirm", 1.0, "deny")
    assert pozole["intent"] == "product_question" and pozole["items"] == []
    assert pozole["unplaced"] == [{"text": "pozole", "suggestions": [], "asked": True}]
