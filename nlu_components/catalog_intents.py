"""Corrects the intent classifier with what the live catalog reading found in the message.

The classifier learns intents from training sentences and knows nothing of the catalog; the order
reader (nlu_components.order_lines, earlier in the pipeline) knows the catalog and nothing of
intents. Three confusions are settled by the reader, which also keeps working for a product added
to the database after training:

- the message orders items (``order_line`` entities: products with their quantities, not asked
  about) but was classed as a question, the menu, small talk or out of scope → ``add_items``
  ("also a water", "seis de pastor sin cilantro", "2 tamales" for a product the model never saw);
- it names products only in a question (``product`` entities, no order lines) but was classed as
  ordering, removing or the menu → ``product_question`` ("¿tienen taro?", "are there still churros?");
- it names a product but was classed as emptying the whole cart → ``remove_items`` ("borra el
  matcha de mi orden");
- it was classed as changing a quantity, but its order lines state none: a quantity cannot change
  to nothing, so it orders → ``add_items`` ("taro tea, no boba, less sugar");
- it was classed as a cart change but orders nothing and carries a number too long to be a quantity
  (a postal code, a phone number): it answers a question → ``inform`` ("06700").

The corrected intent goes to the top of the ranking with the classifier's top confidence, and at
least ``min_confidence``: the catalog's reading is the evidence the classifier lacked. For the same
reason a cart intent the reading bears out (order lines for adding or changing quantities, a named
product for removing or asking) gets at least ``min_confidence`` too, so the FallbackClassifier does
not ask "¿me lo dices de otra forma?" about "seis de pastor sin cilantro".
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from nlu_components.order_lines import ORDER_LINE, PRODUCT

# Four digits or more is never how many (order quantities stop at 999): a postal code, a phone number.
LONG_NUMBER = re.compile(r"(?<!\d)\d{4,}(?!\d)")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class CatalogIntentRefiner(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            "min_confidence": 0.8,
            # intents an order line overrides: what the classifier says when it misses an order
            "ordered_instead_of": [
                "product_question",
                "show_menu",
                "greet",
                "goodbye",
                "thank",
                "out_of_scope",
                "inform",
                "affirm",
                "faq",
            ],
            "asked_instead_of": ["add_items", "show_menu", "remove_items", "change_quantity"],
            "removed_instead_of": ["clear_cart"],
            "informed_instead_of": ["change_quantity", "add_items", "remove_items"],
        }

    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CatalogIntentRefiner:
        return cls(config)

    def refined(self, intent: Optional[str], entities: List[Dict[str, Any]], text: str = "") -> Optional[str]:
        """The intent the catalog reading calls for (maybe the classifier's own), or None when the
        reading says nothing about it."""
        orders = any(e.get("entity") == ORDER_LINE for e in entities)
        names = any(e.get("entity") == PRODUCT for e in entities)
        if not orders and intent in self.config["informed_instead_of"] and LONG_NUMBER.search(text):
            return "inform"
        if orders and intent in self.config["ordered_instead_of"]:
            return "add_items"
        if names and not orders and intent in self.config["asked_instead_of"]:
            return "product_question"
        if names and intent in self.config["removed_instead_of"]:
            return "remove_items"
        lines = [e.get("value") or {} for e in entities if e.get("entity") == ORDER_LINE]
        if intent == "change_quantity" and lines and not any(line.get("quantity_stated") for line in lines):
            return "add_items"
        borne_out = {
            "add_items": orders,
            "change_quantity": orders,
            "remove_items": names,
            "product_question": names and not orders,
        }
        return intent if borne_out.get(intent) else None

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text, intent = message.get(TEXT) or "", message.get(INTENT) or {}
            if text.startswith(INTENT_MESSAGE_PREFIX) or not intent:
                continue
            target = self.refined(intent.get(INTENT_NAME_KEY), message.get(ENTITIES, []), text)
            if target is None:
                continue
            ranking = message.get(INTENT_RANKING_KEY) or [intent]
            confidence = max(float(intent.get("confidence") or 0), self.config["min_confidence"])
            top = {INTENT_NAME_KEY: target, "confidence": confidence}
            message.set(INTENT, top, add_to_output=True)
            message.set(
                INTENT_RANKING_KEY, [top] + [r for r in ranking if r.get(INTENT_NAME_KEY) != target], add_to_output=True
            )
        return messages
