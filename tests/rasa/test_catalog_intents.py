"""The catalog reading corrects the intent classifier where it knows better, and only there."""

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message

from nlu_components.catalog_intents import CatalogIntentRefiner

LINE = {"entity": "order_line", "value": {"sku": "COCA-600", "quantity": 1, "quantity_stated": True}}
PRODUCT = {"entity": "product", "value": "COCA-600"}


def refine(text, intent, confidence, entities, tmp_path):
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
    message.set("entities", entities)
    [message] = refiner.process([message])
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
