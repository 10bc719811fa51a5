"""A message that is only a thumbs up (or down) answers the bot's question: 👍 is ``affirm``, 👎 ``deny``.

Customers answer "¿Te pongo 3?" or "¿Confirmamos?" with an emoji as often as with "sí". Emoji are
rare in training data and the character n-grams of a single pictograph carry little, so a rule
settles it: when every character of the message (skin tones, variation selectors and joiners aside)
is an affirming emoji, the intent is ``affirm`` at full confidence; when every one denies, ``deny``.
A mix ("👍👎"), or an emoji with words, is left to the classifier.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

AFFIRMING = frozenset("👍👌✅✔☑🆗🙆💯🤝🫡")
DENYING = frozenset("👎❌✖🙅🚫⛔❎")
# Parts of an emoji that change how it looks, not what it says: skin tones, VS16, ZWJ, gender signs.
DECORATION = frozenset({chr(c) for c in range(0x1F3FB, 0x1F400)} | {"\ufe0f", "\u200d", "♀", "♂"})


def emoji_answer(text: str) -> Optional[str]:
    """ "affirm" or "deny" for a message of only such emoji, else None."""
    symbols = {c for c in text if not c.isspace() and c not in DECORATION}
    if symbols and symbols <= AFFIRMING:
        return "affirm"
    if symbols and symbols <= DENYING:
        return "deny"
    return None


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class EmojiAnswerClassifier(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {}

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EmojiAnswerClassifier:
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            answer = emoji_answer(message.get(TEXT) or "")
            if answer is None:
                continue
            top = {INTENT_NAME_KEY: answer, "confidence": 1.0}
            ranking = message.get(INTENT_RANKING_KEY) or []
            message.set(INTENT, top, add_to_output=True)
            message.set(
                INTENT_RANKING_KEY, [top] + [r for r in ranking if r.get(INTENT_NAME_KEY) != answer], add_to_output=True
            )
        return messages
