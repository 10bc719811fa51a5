"""The catalog reading corrects the intent classifier where it knows better, and only there."""

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message

from nlu_components.catalog_intents import CatalogIntentRefiner

LINE = {"entity": "order_line", "value": {"sku": "COCA-600", "quantity": 1, "quantity_stated": True}}
PRODUCT = {"entity": "product", "value": "COCA-600"}


def refine_message(text, intent, confidence, entities, tmp_path, cues=()) -> Message:
    """The message after the refiner, as the order reader left it: entities and cart cues."""
    refiner = CatalogIntentRefiner.create(
        CatalogIntentRefiner.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("refiner"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    message = Message.build(text=text)
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set(
        "intent_ranking", [{"name": intent, "confidence": confidence}, {"name": "add_items", "confidence": 0.1}]
    )
    message.set("entities", list(entities))
    message.set("order_cues", list(cues))
    [message] = refiner.process([message])
    return message


def refine(text, intent, confidence, entities, tmp_path):
    message = refine_message(text, intent, confidence, entities, tmp_path, cues=["remove", "change"])
    return message.get("intent"), [r["name"] for r in message.get("intent_ranking")]


def test_an_order_line_makes_small_talk_an_order(tmp_path):
    intent, ranking = refine("also a coke", "goodbye", 0.41, [PRODUCT, LINE], tmp_path)
    assert intent == {"name": "add_items", "confidence": 0.8} and ranking == ["add_items", "goodbye"]


def test_products_only_asked_about_make_a_question(tmp_path):
    assert refine("are there still cokes?", "add_items", 0.93, [PRODUCT], tmp_path)[0] == {
        "name": "product_question",
        "confidence": 0.93,
    }


def test_a_quantity_change_without_a_quantity_is_an_order(tmp_path):
    unstated = {"entity": "order_line", "value": {"sku": "TARO-MT", "quantity": 1, "quantity_stated": False}}
    assert refine("taro tea, no boba", "change_quantity", 0.5, [PRODUCT, unstated], tmp_path)[0]["name"] == "add_items"
    stated = {"entity": "order_line", "value": {"sku": "TARO-MT", "quantity": 3, "quantity_stated": True}}
    assert (
        refine("make it 3 taros", "change_quantity", 0.5, [PRODUCT, stated], tmp_path)[0]["name"] == "change_quantity"
    )


def test_a_postal_code_is_an_answer_not_a_cart_change(tmp_path):
    assert refine("06700", "change_quantity", 0.6, [], tmp_path)[0] == {"name": "inform", "confidence": 0.8}
    assert refine("mi cp es 06010", "add_items", 0.5, [], tmp_path)[0]["name"] == "inform"
    assert refine("mejor 3", "change_quantity", 0.6, [], tmp_path)[0]["name"] == "change_quantity"


def test_a_named_product_is_removed_not_the_whole_cart(tmp_path):
    assert refine("borra la coca de mi orden", "clear_cart", 0.7, [PRODUCT], tmp_path)[0]["name"] == "remove_items"


def test_a_cart_intent_the_reading_bears_out_is_not_a_fallback(tmp_path):
    for text, intent, entities in [
        ("quita la coca", "remove_items", [PRODUCT, LINE]),
        ("mejor 3 cocas", "change_quantity", [PRODUCT, LINE]),
        ("seis cocas sin hielo", "add_items", [PRODUCT, LINE]),
        ("la coca es de vidrio?", "product_question", [PRODUCT]),
    ]:
        assert refine(text, intent, 0.3, entities, tmp_path)[0] == {"name": intent, "confidence": 0.8}


def test_everything_else_is_left_alone(tmp_path):
    for text, intent, entities in [
        ("borra todo", "clear_cart", []),
        ("hola", "greet", []),
        ("/add_items", "add_items", [PRODUCT]),
        ("2 cocas", "add_items", []),
        ("mejor 3", "change_quantity", []),
        ("gracias por la coca", "thank", [PRODUCT]),
    ]:
        assert refine(text, intent, 0.6, entities, tmp_path)[0] == {"name": intent, "confidence": 0.6}


def test_an_ordinal_or_one_more_adds_instead_of_removing(tmp_path):
    """ "a 3rd latte pls" with a latte in the cart was read as a removal and emptied the cart."""
    latte = {"entity": "order_line", "value": {"sku": "CAFE-LATTE", "quantity": 1, "quantity_stated": True}}
    for intent in ("remove_items", "clear_cart"):
        message = refine_message("a 3rd latte pls", intent, 0.9, [PRODUCT, latte], tmp_path, cues=["add"])
        assert message.get("intent")["name"] == "add_items"
        assert [e["entity"] for e in message.get("entities")] == ["product", "order_line"]


def test_a_removal_without_a_removal_verb_is_flagged_for_the_action_to_ask(tmp_path):
    uncounted = {**LINE, "value": {**LINE["value"], "quantity_stated": False}}
    message = refine_message("latte pls", "remove_items", 0.9, [PRODUCT, uncounted], tmp_path, cues=[])
    assert message.get("intent")["name"] == "remove_items"
    [conflict] = [e for e in message.get("entities") if e["entity"] == "intent_conflict"]
    assert conflict["value"] == {"intent": "remove_items", "reading": "add_items"}
    empty = refine_message("empezamos?", "clear_cart", 0.9, [], tmp_path, cues=[])
    assert [e["value"] for e in empty.get("entities")] == [{"intent": "clear_cart", "reading": None}]
    for text, intent, entities in [
        ("quita la coca", "remove_items", [PRODUCT, LINE]),
        ("ya no quiero", "clear_cart", []),
    ]:
        message = refine_message(text, intent, 0.9, entities, tmp_path, cues=["remove"])
        assert message.get("intent")["name"] == intent
        assert not [e for e in message.get("entities") if e["entity"] == "intent_conflict"]


def test_a_counted_order_or_one_corrected_in_the_message_is_no_removal(tmp_path):
    counted = refine_message("5 taquitos de suadero", "remove_items", 0.9, [PRODUCT, LINE], tmp_path, cues=[])
    assert counted.get("intent")["name"] == "add_items"
    corrected = refine_message(
        "a coke, scratch that, a water", "remove_items", 0.9, [PRODUCT, LINE], tmp_path, cues=["remove", "corrected"]
    )
    assert corrected.get("intent")["name"] == "add_items"
    asked = refine_message("an order of churros has how many?", "clear_cart", 0.9, [PRODUCT], tmp_path, cues=["asks"])
    assert asked.get("intent")["name"] == "product_question"
    changed = refine_message(
        "una jamaica, no, mejor dos", "change_quantity", 0.9, [PRODUCT, LINE], tmp_path, ["change", "corrected"]
    )
    assert changed.get("intent")["name"] == "add_items"
    denied = refine_message(
        "una jamaica, no, mejor dos", "deny", 0.9, [PRODUCT, LINE], tmp_path, ["change", "corrected"]
    )
    assert denied.get("intent")["name"] == "add_items"
    uncounted = {**LINE, "value": {**LINE["value"], "quantity_stated": False}}
    only = refine_message("no, sólo la coca", "deny", 0.9, [PRODUCT, uncounted], tmp_path, ["change"])
    assert only.get("intent")["name"] == "deny"


def test_a_plain_order_is_not_a_quantity_change(tmp_path):
    plain = refine_message("3 de pastor y 2 cocas", "change_quantity", 0.7, [PRODUCT, LINE], tmp_path, cues=[])
    assert plain.get("intent")["name"] == "add_items"
    message = refine_message("mejor que sean 3 cocas", "change_quantity", 0.7, [PRODUCT, LINE], tmp_path, ["change"])
    assert message.get("intent")["name"] == "change_quantity"


UNKNOWN_ASKED = {"entity": "unplaced", "value": {"text": "pozole", "suggestions": [], "asked": True}}
UNKNOWN = {"entity": "unplaced", "value": {"text": "pozoles", "suggestions": [], "asked": False}}


def test_a_question_about_a_product_the_shop_lacks_is_a_product_question(tmp_path):
    message = refine_message("¿tienen pozole?", "show_menu", 0.7, [UNKNOWN_ASKED], tmp_path)
    assert message.get("intent")["name"] == "product_question" and message.get("entities") == [UNKNOWN_ASKED]
    assert refine("¿qué tienen?", "show_menu", 0.7, [], tmp_path)[0]["name"] == "show_menu"


def test_unplaced_words_are_kept_only_where_the_message_is_about_products(tmp_path):
    kept = refine_message("2 pozoles y una coca", "add_items", 0.9, [PRODUCT, LINE, UNKNOWN], tmp_path)
    assert UNKNOWN in kept.get("entities")
    dropped = refine_message("i want to talk to a person", "human_handoff", 0.9, [UNKNOWN], tmp_path)
    assert dropped.get("entities") == []


def test_an_answer_to_a_checkout_question_is_inform_and_a_question_about_paying_the_faq(tmp_path):
    """A postal code, an address, a way to pay or to get the order, said and not asked, answers the form."""
    for text, intent in [
        ("06050", "out_of_scope"),
        ("send it to 06080 please", "faq"),
        ("el código postal es 06020", "order_status"),
        ("Calle Madero 12, depto 4, timbre rojo", "add_items"),
        ("te pago con transferencia", "faq"),
        ("bring it to my house", "faq"),
    ]:
        assert refine_message(text, intent, 0.4, [], tmp_path).get("intent") == {"name": "inform", "confidence": 0.8}
    for text, intent in [
        ("¿llegan al 06700?", "faq"),  # asked: the FAQ
        ("do you deliver to 06700", "faq"),
        ("¿aceptan tarjeta?", "faq"),
        ("a las 3 paso por él", "inform"),
    ]:
        assert refine_message(text, intent, 0.6, [], tmp_path).get("intent")["name"] == intent
    asked = refine_message("can i pay by card when i pick it up?", "inform", 0.9, [], tmp_path)
    assert asked.get("intent")["name"] == "faq"
    asked = refine_message("¿tienen entrega a domicilio en la Condesa?", "inform", 0.9, [], tmp_path)
    assert asked.get("intent")["name"] == "faq"
    told = refine_message("que me lo manden a domicilio", "inform", 0.9, [], tmp_path)  # "que …" asks nothing
    assert told.get("intent")["name"] == "inform"


def test_removing_everything_without_naming_a_product_empties_the_cart(tmp_path):
    for intent in ("remove_items", "checkout"):
        message = refine_message("quítame todo lo que llevo", intent, 0.4, [], tmp_path, cues=["remove"])
        assert message.get("intent")["name"] == "clear_cart"
    named = refine_message("quita todas las cocas", "remove_items", 0.9, [PRODUCT, LINE], tmp_path, cues=["remove"])
    assert named.get("intent")["name"] == "remove_items"


def test_a_question_naming_a_product_is_a_product_question_not_small_talk(tmp_path):
    message = refine_message("¿todavía hay cocas?", "greet", 0.34, [PRODUCT], tmp_path, cues=["asks"])
    assert message.get("intent") == {"name": "product_question", "confidence": 0.8}
    thanks = refine_message("gracias por la coca", "thank", 0.9, [PRODUCT], tmp_path, cues=[])
    assert thanks.get("intent")["name"] == "thank"


def test_the_count_it_had_beside_the_count_it_should_have_is_a_change(tmp_path):
    message = refine_message("let's do 2 cokes, not 3", "add_items", 0.8, [PRODUCT, LINE], tmp_path, ["change"])
    assert message.get("intent")["name"] == "change_quantity"
    corrected = refine_message(
        "2 cokes, not 3, sorry", "add_items", 0.8, [PRODUCT, LINE], tmp_path, ["change", "corrected"]
    )
    assert corrected.get("intent")["name"] == "add_items"


def test_an_rfc_or_an_email_given_as_a_statement_answers_the_invoice_form(tmp_path):
    assert refine("my RFC is CHLA900415K21", "human_handoff", 0.6, [], tmp_path)[0]["name"] == "inform"
    assert refine("el correo es compras@xenon.example.com", "greet", 0.5, [], tmp_path)[0]["name"] == "inform"
    assert refine("factúrame a CHLA900415K21", "request_invoice", 0.7, [], tmp_path)[0]["name"] == "request_invoice"
    assert refine("is CHLA900415K21 my RFC?", "human_handoff", 0.6, [], tmp_path)[0]["name"] == "human_handoff"


def test_an_address_whose_words_name_a_product_without_a_count_is_an_answer(tmp_path):
    unstated = {"entity": "order_line", "value": {"sku": "CAFE-AMER", "quantity": 1, "quantity_stated": False}}
    address = "Calle Regina 48, depto 5, portón café"
    assert refine(address, "add_items", 0.7, [PRODUCT, unstated], tmp_path)[0]["name"] == "inform"
    assert refine(address, "inform", 0.7, [PRODUCT, unstated], tmp_path)[0]["name"] == "inform"
    stated = {"entity": "order_line", "value": {"sku": "CAFE-AMER", "quantity": 2, "quantity_stated": True}}
    assert refine("2 cafés a Calle Regina 48", "add_items", 0.7, [PRODUCT, stated], tmp_path)[0]["name"] == "add_items"


def test_a_question_about_a_product_not_sold_is_no_bot_challenge(tmp_path):
    pozole = {"entity": "unplaced", "value": {"text": "machaca burritos", "suggestions": [], "asked": True}}
    intent = refine("are there any machaca burritos?", "bot_challenge", 0.5, [pozole], tmp_path)[0]
    assert intent["name"] == "product_question"


def test_a_ticket_code_in_a_message_that_orders_nothing_asks_about_the_placed_order(tmp_path):
    assert refine("¿mi pedido C-004 ya está listo?", "checkout", 0.6, [], tmp_path)[0]["name"] == "order_status"
    assert refine("any update on order C-031?", "change_quantity", 0.5, [], tmp_path)[0]["name"] == "order_status"
    assert refine("factura del pedido C-004", "request_invoice", 0.8, [], tmp_path)[0]["name"] == "request_invoice"


def test_how_the_order_is_fetched_said_as_a_statement_answers_the_checkout_form(tmp_path):
    assert refine("paso yo por él", "checkout", 0.3, [], tmp_path)[0]["name"] == "inform"
    assert refine("I'll swing by and grab it myself", "add_items", 0.6, [], tmp_path)[0]["name"] == "inform"
    assert refine("¿puedo pasar por él?", "faq", 0.6, [], tmp_path)[0]["name"] == "faq"
    assert refine("ya voy por mi pedido", "order_status", 0.6, [], tmp_path)[0]["name"] == "order_status"


def test_the_usual_with_more_counted_is_an_order(tmp_path):
    churros = {"entity": "order_line", "value": {"sku": "CHURROS", "quantity": 1, "quantity_stated": False}}
    usual = "lo de siempre pero esta vez agrégale unos churros"
    message = refine_message(usual, "repeat_last_order", 0.9, [PRODUCT, churros], tmp_path, cues=["add"])
    assert message.get("intent")["name"] == "add_items"
    assert refine("the usual please", "repeat_last_order", 0.9, [], tmp_path)[0]["name"] == "repeat_last_order"


def test_a_name_or_a_way_to_pay_given_as_a_statement_answers_the_form(tmp_path):
    assert refine("a nombre de Maite", "greet", 0.3, [], tmp_path)[0]["name"] == "inform"
    assert refine("tarjeta, como siempre", "repeat_last_order", 0.6, [], tmp_path)[0]["name"] == "inform"
    assert refine("me llamo Tom y quiero hablar con alguien", "human_handoff", 0.9, [], tmp_path)[0]["name"] == (
        "human_handoff"
    )


def test_a_question_about_delivery_or_paying_is_the_faq(tmp_path):
    assert refine("do y'all do delivery", "inform", 0.6, [], tmp_path)[0]["name"] == "faq"
    assert (
        refine("¿cuánto me sale que me lo traigan a la Guerrero?", "show_cart", 0.6, [], tmp_path)[0]["name"] == "faq"
    )
    assert refine("a domicilio?", "inform", 0.6, [], tmp_path)[0]["name"] == "inform"


def test_an_rfc_alone_is_the_answer_even_when_read_as_asking_for_the_invoice(tmp_path):
    assert refine("my RFC is MELM8305281H0", "request_invoice", 0.4, [], tmp_path)[0]["name"] == "inform"


def test_a_product_not_sold_asked_about_is_no_faq(tmp_path):
    frappes = {"entity": "unplaced", "value": {"text": "frappes", "suggestions": [], "asked": True}}
    assert refine("do you guys make frappes?", "faq", 0.5, [frappes], tmp_path)[0]["name"] == "product_question"
