"""The language detector, trained on the real training data, judged on the held-out set."""

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from nlu_components.language import LanguageDetector
from tests.helpers.paths import ROOT


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> LanguageDetector:
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    resource = Resource("language")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {**LanguageDetector.get_default_config()}
    trained = LanguageDetector.create(config, storage, resource, context)
    trained.train(load_data(str(ROOT / "data" / "nlu")))
    return LanguageDetector.load(config, storage, resource, context)


def language_of(detector: LanguageDetector, text: str):
    [message] = detector.process([Message.build(text=text)])
    found = [e for e in message.get("entities", []) if e["entity"] == "language"]
    return found[0]["value"] if found else None


@pytest.mark.parametrize(
    "text,expected",
    [
        ("hola, ¿qué tienen?", "es"),
        ("hi, what's on the menu?", "en"),
        ("me das 3 de pastor y una coca porfa", "es"),
        ("a que hora cierran hoy", "es"),
        ("do you guys deliver", "en"),
    ],
)
def test_clear_messages_get_their_language(detector, text, expected):
    assert language_of(detector, text) == expected


@pytest.mark.parametrize("text", ["ok", "👍", "2", "", "xd"])
def test_ambiguous_messages_leave_the_language_alone(detector, text):
    assert language_of(detector, text) is None


def test_product_names_are_not_evidence(detector):
    """ "taro" alone reads Spanish to the model; inside an order, the product span is left out."""
    text = "one large taro milk tea, half sugar"
    product = {"entity": "product", "value": "TARO-MT", "start": 10, "end": 23}
    [message] = detector.process([Message.build(text=text, entities=[product])])
    assert [e["value"] for e in message.get("entities") if e["entity"] == "language"] == ["en"]


def test_held_out_set(detector):
    """Of held-out messages, nearly all get a language, and almost never the wrong one."""
    judged = wrong = total = 0
    for lang in ("es", "en"):
        for example in load_data(str(ROOT / "tests" / "nlu" / f"{lang}.yml")).training_examples:
            total += 1
            found = language_of(detector, example.get("text"))
            judged += found is not None
            wrong += found not in (None, lang)
    assert wrong / total <= 0.02, f"{wrong} of {total} held-out messages got the wrong language"
    assert judged / total >= 0.85, f"only {judged} of {total} held-out messages got a language"
