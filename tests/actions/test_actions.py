"""Actions run as the action server runs them: a tracker in, responses and events out."""

from rasa_sdk.events import SessionStarted, SlotSet

from actions.faq import ActionAnswerFaq
from actions.menu import ActionGreet, ActionShowMenu
from actions.session import ActionSessionStart
from tests.helpers.actions import ROMA_ANA, entity, run, tracker


def test_the_menu_starts_with_the_stores_categories_as_a_list(demo):
    messages, _ = run(ActionShowMenu(), tracker(slots={"language": "es"}, sender="default"))
    [msg] = messages
    assert msg["response"] == "utter_menu_categories" and msg["store_name"] == "Café Esquina Centro"
    titles = [b["title"] for b in msg["buttons"]]
    assert titles[:2] == ["Bubble tea", "Café"] and "Tacos" in titles and titles[-1] == "Todo el menú"
    assert msg["buttons"][0]["payload"] == '/show_menu{"category":"bubble_tea"}'


def test_a_category_lists_its_products_and_a_tap_adds_one(demo):
    latest = {"entities": [entity("category", "tacos")]}
    [msg], _ = run(ActionShowMenu(), tracker(slots={"language": "en"}, latest=latest))
    assert msg["response"] == "utter_menu_category" and msg["category"] == "Tacos"
    assert msg["buttons"][0] == {
        "title": "Al pastor taco",
        "description": "$22.00",
        "payload": '/add_items{"order_line":{"sku":"TACO-PASTOR","quantity":1,"quantity_stated":true}}',
    }


def test_the_whole_menu_in_spanish_from_the_database(demo):
    latest = {"entities": [entity("category", "all")]}
    [msg], _ = run(ActionShowMenu(), tracker(slots={"language": "es"}, latest=latest))
    assert msg["response"] == "utter_menu" and msg["store_name"] == "Café Esquina Centro"
    assert "*Bubble tea*\n• Té de taro con leche — $75.00" in msg["menu"]
    assert "Taco al pastor — $22.00" in msg["menu"]


def test_a_branch_without_kitchen_lists_no_tacos(demo):
    [msg], _ = run(ActionShowMenu(), tracker(sender="roma:whatsapp:+5215511112222", slots={"language": "en"}))
    assert msg["store_name"] == "Café Esquina Roma"
    assert "Tacos" not in [b["title"] for b in msg["buttons"]]


def test_faq_answer_uses_the_topic_the_response_selector_chose(demo):
    latest = {"response_selector": {"faq": {"response": {"intent_response_key": "faq/hours"}}}}
    messages, _ = run(ActionAnswerFaq(), tracker(slots={"language": "en"}, latest=latest))
    assert messages[0]["response"] == "utter_faq/hours"
    assert messages[0]["hours"] == "Mon–Fri 07:30–21:00\nSat–Sun 09:00–20:00"


def test_faq_without_a_topic_asks_to_rephrase(demo):
    messages, _ = run(ActionAnswerFaq(), tracker(slots={"language": "es"}, sender="default"))
    assert messages[0]["response"] == "utter_please_rephrase"


def test_session_start_speaks_the_business_language_until_the_customer_shows_theirs(demo):
    _, events = run(ActionSessionStart(), tracker(slots={"language": None}, sender="default"))
    assert events[0] == SessionStarted() and SlotSet("language", "es") in events
    _, events = run(ActionSessionStart(), tracker(slots={"language": "en"}, sender="default"))
    assert SlotSet("language", "en") in events and SlotSet("language", "es") not in events


def test_the_greeting_suggests_only_what_that_store_sells(demo):
    """Issue 11: Roma, which has no kitchen, suggested "2 de pastor"."""
    [centro], _ = run(ActionGreet(), tracker(slots={"language": "es"}))
    [roma], _ = run(ActionGreet(), tracker(slots={"language": "en"}, sender=ROMA_ANA))
    assert centro["response"] == roma["response"] == "utter_greet"
    roma_menu, _ = run(
        ActionShowMenu(),
        tracker(slots={"language": "en"}, sender=ROMA_ANA, latest={"entities": [entity("category", "all")]}),
    )
    assert roma["first"] in roma_menu[0]["menu"] and roma["second"] in roma_menu[0]["menu"]
    assert "taco" not in (roma["first"] + roma["second"]).lower()
    assert roma["store_name"] == "Café Esquina Roma"
