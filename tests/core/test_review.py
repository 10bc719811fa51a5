"""The review inbox: what is collected and how it groups, each kind of decision landing where it belongs
(training examples, live synonyms, FAQ topics), per-store access, and `comanda review` as run."""

from __future__ import annotations

import json

import pytest
import yaml
from sqlalchemy import func, select

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.enums import ReviewReason, ReviewStatus, StaffRole
from comanda.errors import InvalidInput, NotFound
from comanda.services import review, staff
from comanda.services.audit import Actor
from comanda.services.catalog_snapshot import catalog_snapshot, catalog_version
from tests.helpers.cli import comanda
from tests.helpers.review import parse, project_copy

OWNER = Actor("staff:1")
CENTRO = "centro:whatsapp:+5215511111111"
ROMA = "roma:whatsapp:+5215522222222"


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = project_copy(tmp_path)
    monkeypatch.setenv("COMANDA_HOME", str(folder))
    return folder


def said(text, message_id, **kwargs):
    return review.Said(text, message_id, parse(**kwargs))


def collect(conversation, latest, before=None):
    with transaction() as session:
        return review.collect(session, conversation, latest, before)


def items(store=None):
    with new_session() as session:
        found = review.visible_items(session, None, store)
        seen = review.where_seen(session, [i.id for i in found])
        return [review.as_json(i, seen.get(i.id)) for i in found]


def test_uncertain_messages_are_kept_and_identical_texts_grouped(demo):
    unsure = dict(intent="add_items", confidence=0.41, ranking=[("add_items", 0.41), ("show_menu", 0.2)])
    assert collect(CENTRO, said("Quiero unas  kesadías", "m1", **unsure)) == 1
    assert collect(CENTRO, said("Quiero unas  kesadías", "m1", **unsure)) == 0  # the tracker saved again
    english = dict(unsure, language="en")
    assert collect(ROMA, said("quiero unas kesadías", "m2", **english)) == 1
    assert collect(CENTRO, said("hola", "m3", intent="greet", confidence=0.98)) == 0  # sure: not kept
    assert collect(CENTRO, said("/affirm", "m4", intent="affirm", confidence=0.2)) == 0  # a button
    [item] = items()
    assert item["count"] == 2 and item["stores"] == ["centro", "roma"] and item["languages"] == ["en", "es"]
    assert item["intent"] == "add_items" and item["runner_up"] == "show_menu" and item["reason"] == "low_confidence"
    assert item["first_seen"] <= item["last_seen"]
    assert [i["text"] for i in items("roma")] == ["quiero unas kesadías"]


def test_each_reason(demo):
    collect(CENTRO, said("asdf qwer", "a", intent="nlu_fallback", confidence=0.3))
    collect(
        CENTRO,
        said(
            "y el de siempre", "b", intent="add_items", confidence=0.8, ranking=[("add_items", 0.5), ("inform", 0.45)]
        ),
    )
    collect(
        CENTRO,
        said(
            "2 pozoles y una coca",
            "c",
            intent="add_items",
            confidence=0.99,
            lines=[{"sku": "COCA-600", "quantity": 1}],
            unplaced=["pozoles"],
        ),
    )
    first = said("me das la cuenta", "d", intent="show_cart", confidence=0.9)
    collect(CENTRO, first)
    collect(CENTRO, said("no, eso no", "e", intent="deny", confidence=0.9), first)
    asked = said("quiero factura de lo de ayer", "f", intent="order_status", confidence=0.95)
    collect(ROMA, asked)
    collect(ROMA, said("pásame con alguien", "g", intent="human_handoff", confidence=0.99), asked)
    reasons = {i["text"]: i["reason"] for i in items()}
    assert reasons == {
        "asdf qwer": ReviewReason.FALLBACK,
        "y el de siempre": ReviewReason.AMBIGUOUS,
        "2 pozoles y una coca": ReviewReason.UNPLACED,
        "me das la cuenta": ReviewReason.CORRECTED,
        "quiero factura de lo de ayer": ReviewReason.HANDOFF,
    }
    lines = next(i for i in items() if i["text"] == "2 pozoles y una coca")
    assert lines["items"] == [{"sku": "COCA-600", "quantity": 1}] and lines["unplaced"] == ["pozoles"]
    assert (
        review.afterthought(said("that's not what I said", "x", intent="deny", confidence=0.9))
        == ReviewReason.CORRECTED
    )


def decide(item_id, decision):
    with transaction() as session:
        return review.accept(session, OWNER, review.get_item(session, item_id), decision).status


def reviewed(home, language):
    data = yaml.safe_load((home / "data" / "nlu" / language / "reviewed.yml").read_text(encoding="utf-8"))
    return {b["intent"]: (b["metadata"]["language"], b["examples"].splitlines()) for b in data["nlu"]}


def test_intent_decisions_become_training_examples(demo, home):
    collect(CENTRO, said("ps nomas eso gracias", "a", intent="thank", confidence=0.4))
    collect(ROMA, said("I'd wanna grab a bite", "b", intent="greet", confidence=0.3, language="en"))
    collect(CENTRO, said("asdf", "c", intent="nlu_fallback", confidence=0.2))
    first, second, third = sorted(i["id"] for i in items())
    assert decide(first, review.Decision()) == ReviewStatus.CORRECT
    assert decide(second, review.Decision(intent="show_menu")) == ReviewStatus.CHANGED
    assert reviewed(home, "es") == {"thank": ("es", ["- ps nomas eso gracias"])}
    assert reviewed(home, "en") == {"show_menu": ("en", ["- I'd wanna grab a bite"])}
    with pytest.raises(InvalidInput, match="no intent"):
        decide(third, review.Decision(intent="order_pizza"))
    with pytest.raises(InvalidInput, match="found no intent"):
        decide(third, review.Decision())
    with pytest.raises(InvalidInput, match="already decided"):
        decide(first, review.Decision())
    with transaction() as session:
        review.ignore(session, OWNER, review.get_item(session, third))
    assert items() == []
    with new_session() as session:
        actions = session.execute(
            select(m.AuditEvent.action).where(m.AuditEvent.entity_type == "review_item")
        ).scalars()
        assert sorted(actions) == ["review.changed", "review.correct", "review.ignored"]


def test_a_sentence_already_trained_or_held_out_is_refused(demo, home):
    faq = yaml.safe_load((home / "data" / "nlu" / "es" / "faq.yml").read_text(encoding="utf-8"))
    trained = faq["nlu"][0]["examples"].splitlines()[0].strip()[2:]
    collect(CENTRO, said(trained.upper(), "a", intent="faq", confidence=0.3))
    [item] = items()
    with pytest.raises(InvalidInput, match="already an example of faq/hours"):
        decide(item["id"], review.Decision(intent="greet"))
    assert decide(item["id"], review.Decision(intent="faq/hours")) == ReviewStatus.CHANGED  # the same: nothing added
    assert not (home / "data" / "nlu" / "es" / "reviewed.yml").exists()


def test_a_missed_product_word_becomes_a_live_synonym(demo, home):
    collect(CENTRO, said("3 kesadiyas de las buenas", "a", intent="add_items", confidence=0.9, unplaced=["kesadiyas"]))
    [item] = items()
    with new_session() as session:
        before = catalog_version(session)
    with pytest.raises(InvalidInput, match="no product with SKU"):
        decide(item["id"], review.Decision(items=[("NOPE", 3)]))
    status = decide(item["id"], review.Decision(items=[("QUESADILLA", 3)], synonyms=[("Kesadiyas", "QUESADILLA")]))
    assert status == ReviewStatus.FIXED
    with new_session() as session:
        assert catalog_version(session) != before  # the NLU's next version check reloads the catalog
        product = next(p for p in catalog_snapshot(session).products if p.sku == "QUESADILLA")
        assert "kesadiyas" in product.synonyms
        decision = session.get(m.ReviewItem, item["id"]).decision
    assert decision["items"] == [{"sku": "QUESADILLA", "quantity": 3}] and decision["intent"] == "add_items"
    assert reviewed(home, "es") == {"add_items": ("es", ["- 3 kesadiyas de las buenas"])}


def test_a_new_faq_topic_lands_as_examples_and_answers(demo, home):
    collect(CENTRO, said("tienen estacionamiento?", "a", intent="product_question", confidence=0.35))
    [item] = items()
    faq = review.training_data.FaqTopic(
        "parking",
        {"es": ["hay donde estacionarse?", "tienen estacionamiento?"], "en": ["is there parking?"]},
        {"es": "Sí, hay estacionamiento en la esquina.", "en": "Yes, there's parking at the corner."},
    )
    with pytest.raises(InvalidInput, match="answer in en"):
        decide(item["id"], review.Decision(faq=review.training_data.FaqTopic("parking", faq.examples, {"es": "Sí"})))
    assert decide(item["id"], review.Decision(faq=faq)) == ReviewStatus.CHANGED
    es, en = reviewed(home, "es"), reviewed(home, "en")
    assert es["faq/parking"] == ("es", ["- hay donde estacionarse?", "- tienen estacionamiento?"])
    assert en["faq/parking"] == ("en", ["- is there parking?"])
    domain = yaml.safe_load((home / "domain" / "faq_reviewed.yml").read_text(encoding="utf-8"))
    answers = domain["responses"]["utter_faq/parking"]
    assert [a["condition"][0]["value"] for a in answers] == ["es", "en"]
    assert answers[1]["text"] == "Yes, there's parking at the corner."
    assert "faq/parking" in review.training_data.known_intents()


def test_managers_see_their_stores_only(demo):
    collect(CENTRO, said("algo raro", "a", intent="greet", confidence=0.2))
    with transaction() as session:
        user, _ = staff.add_staff(
            session, OWNER, "m@cafe.mx", "Mara", StaffRole.MANAGER, ["roma"], business_id="cafe-esquina"
        )
        manager = staff.member(session, user)
        clerk, _ = staff.add_staff(
            session, OWNER, "c@cafe.mx", "Cleo", StaffRole.STAFF, ["centro"], business_id="cafe-esquina"
        )
        clerk_member = staff.member(session, clerk)
    with new_session() as session:
        item_id = session.execute(select(func.max(m.ReviewItem.id))).scalar_one()
        assert review.visible_items(session, manager) == []
        with pytest.raises(NotFound):
            review.get_item(session, item_id, manager)
        with pytest.raises(NotFound):
            review.visible_items(session, manager, "centro")
        with pytest.raises(NotFound):
            review.visible_items(session, clerk_member)


def test_the_command_line(demo_sqlite, home):
    collect(
        CENTRO,
        said(
            "me das 2 tacos d pastr",
            "a",
            intent="add_items",
            confidence=0.5,
            lines=[{"sku": "TACO-PASTOR", "quantity": 2}],
        ),
    )
    collect(ROMA, said("what is this place", "b", intent="greet", confidence=0.3, language="en"))
    listed = comanda("review", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    keys = {"id", "text", "language", "intent", "confidence", "runner_up", "reason", "items", "count", "last_seen"}
    assert all(keys <= set(row) for row in rows) and len(rows) == 2
    tacos = next(r for r in rows if r["text"].startswith("me das"))
    assert tacos["items"] == [{"sku": "TACO-PASTOR", "quantity": 2}] and tacos["confidence"] == 0.5
    assert [r["text"] for r in json.loads(comanda("review", "list", "--store", "roma", "--json").stdout)] == [
        "what is this place"
    ]
    bad = comanda("review", "accept", str(tacos["id"]), "--items", "TACO-PASTOR:dos")
    assert bad.returncode == 2 and bad.stderr.startswith("error: an order line is SKU:QUANTITY")
    done = comanda("review", "accept", str(tacos["id"]), "--items", "TACO-PASTOR:2", "--synonym", "pastr=TACO-PASTOR")
    assert done.returncode == 0 and "fixed" in done.stdout and "live" in done.stdout, done.stderr
    other = next(r for r in rows if r["text"] == "what is this place")
    assert comanda("review", "accept", str(other["id"]), "--intent", "faq/location").returncode == 0
    assert comanda("review", "ignore", str(other["id"])).stderr.startswith("error: review item")
    assert comanda("review", "ignore", "999").stderr.startswith("error: no review item 999")
    assert json.loads(comanda("review", "list", "--json").stdout) == []
    assert "faq/location" in comanda("review", "intents").stdout.split()
