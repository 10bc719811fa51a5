"""A thumbs up answers yes, a thumbs down no; emoji with words are the classifier's."""

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message

from nlu_components.emoji_answers import EmojiAnswerClassifier


def classify(text: str, tmp_path) -> Message:
    component = EmojiAnswerClassifier.create(
        {}, LocalModelStorage(tmp_path), Resource("emoji"), ExecutionContext(GraphSchema({}), "t")
    )
    message = Message.build(text=text)
    message.set("intent", {"name": "out_of_scope", "confidence": 0.4})
    message.set("intent_ranking", [{"name": "out_of_scope", "confidence": 0.4}, {"name": "affirm", "confidence": 0.3}])
    [message] = component.process([message])
    return message


@pytest.mark.parametrize("text", ["👍", "👍🏽", " 👍👍 ", "👌", "✅", "✔️", "🆗", "🙆‍♀️"])
def test_affirming_emoji_are_affirm(text, tmp_path):
    message = classify(text, tmp_path)
    assert message.get("intent") == {"name": "affirm", "confidence": 1.0}
    assert [r["name"] for r in message.get("intent_ranking")] == ["affirm", "out_of_scope"]


@pytest.mark.parametrize("text", ["👎", "👎🏻👎", "❌", "🙅‍♂️"])
def test_denying_emoji_are_deny(text, tmp_path):
    assert classify(text, tmp_path).get("intent")["name"] == "deny"


@pytest.mark.parametrize("text", ["👍👎", "👍 gracias", "🌮🌮", "ok", ""])
def test_anything_else_is_left_to_the_classifier(text, tmp_path):
    assert classify(text, tmp_path).get("intent") == {"name": "out_of_scope", "confidence": 0.4}
