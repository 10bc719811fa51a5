"""Reads order lines ("2 de pastor y una coca porfa") against the live catalog, as entities.

Nothing about products is learnt at training time: the catalog is read from the database
(COMANDA_DATABASE_URL) and kept in memory, and at most every ``reload_seconds`` a cheap version
query tells whether it changed, so a product added in the database is understood by the running
bot without retraining. The reading itself is ``nlu_components.order_parsing``.

For each message it adds:
- one ``order_line`` entity per item, value ``{"sku", "quantity", "modifiers": {group: code, or
  [codes] for a group that takes several}, "variant": {axis: option}, "variant_sku",
  "quantity_stated", "note"}`` (``sku`` is the product's, ``variant_sku`` the variant's once every
  axis is given; ``note`` what the kitchen should know that no option says, "bien fría"), over the
  item's words: quantity, name and options;
- one ``product`` entity per product named (value: its SKU), over the name's words only — also
  for questions like "do you have matcha?" — so that the LanguageDetector, which runs after this
  component, can leave product names out of its evidence;
- one ``unplaced`` entity per product-like word the catalog could not place, value ``{"text",
  "suggestions": [SKU, ...], "asked"}``: "2 pozoles", "¿tienen pozole?", "pastr" (the bot says
  "No encontré «pastr»: ¿quisiste decir Taco al pastor?"). CatalogIntentRefiner keeps them only
  where the message is about products;
- an ``order_lines_truncated`` entity, value ``{"kept": N}``, when the message held more than
  ``max_order_lines`` items or more than ``max_text_chars`` of text (only that much is read), so the
  bot can say it read the first N;
- the same lines under ``order_lines`` and the cart cues under ``order_cues`` ("add": an ordinal,
  "otro", "agrega"; "remove": "quita", "borra"; "change": "mejor", "instead") in the message data.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from sqlalchemy.exc import SQLAlchemyError

from comanda.db import new_session
from comanda.services.catalog_snapshot import CatalogSnapshot, catalog_snapshot, catalog_version
from nlu_components.order_parsing import MAX_CHARS, MAX_LINES, OrderParser, ParsedMessage

logger = logging.getLogger(__name__)

ORDER_LINE = "order_line"
PRODUCT = "product"
UNPLACED = "unplaced"
TRUNCATED = "order_lines_truncated"
ORDER_LINES = "order_lines"
ORDER_CUES = "order_cues"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class OrderLineExtractor(GraphComponent):
    """Emits ``order_line`` and ``product`` entities read against the catalog in the database."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"reload_seconds": 5, "max_order_lines": MAX_LINES, "max_text_chars": MAX_CHARS}

    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = {**self.get_default_config(), **config}
        self._lock = threading.Lock()  # Rasa may run NLU for several conversations on threads
        self._parser = self._new_parser(CatalogSnapshot(products=[], shop_names=[]))
        self._version: Optional[str] = None
        self._checked_at = -math.inf

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> OrderLineExtractor:
        extractor = cls(config)
        extractor.parser()  # read the catalog when the model loads, not on the first customer's message
        return extractor

    def parser(self) -> OrderParser:
        """The parser of the catalog as it is now; reads the catalog again only when its version changed."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at >= self.config["reload_seconds"]:
                self._checked_at = now
                self._reload()
            return self._parser

    def _new_parser(self, catalog: CatalogSnapshot) -> OrderParser:
        return OrderParser(catalog, self.config["max_order_lines"], self.config["max_text_chars"])

    def _reload(self) -> None:
        """A database that cannot be read costs the bot its order reading, not the conversation: the
        catalog read before (or none) stays in use and the next check tries again."""
        try:
            with new_session() as session:
                version = catalog_version(session)
                if version != self._version:
                    self._parser = self._new_parser(catalog_snapshot(session))
                    self._version = version
                    logger.info("catalog %s loaded: %d products", version[:8], len(self._parser.products))
        except SQLAlchemyError as exc:
            logger.warning("cannot read the catalog, orders are read against the previous one: %s", exc)

    def process(self, messages: List[Message]) -> List[Message]:
        parser = self.parser()
        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith(INTENT_MESSAGE_PREFIX):
                continue  # button payloads ("/faq{...}"): Rasa's RegexMessageHandler sets their entities
            parsed = parser.parse(text)
            message.set(ENTITIES, message.get(ENTITIES, []) + self._entities(parsed, len(text)), add_to_output=True)
            message.set(ORDER_LINES, [line.as_dict() for line in parsed.lines], add_to_output=True)
            message.set(ORDER_CUES, sorted(parsed.cues), add_to_output=True)
        return messages

    def _entities(self, parsed: ParsedMessage, length: int) -> List[Dict[str, Any]]:
        extractor = type(self).__name__
        products = [
            {"entity": PRODUCT, "value": m.sku, "start": m.start, "end": m.end, "extractor": extractor}
            for m in parsed.mentions
        ]
        lines = [
            {
                "entity": ORDER_LINE,
                "value": line.as_dict(),
                "start": line.start,
                "end": line.end,
                "extractor": extractor,
            }
            for line in parsed.lines
        ]
        unplaced = [
            {"entity": UNPLACED, "value": u.as_dict(), "start": u.start, "end": u.end, "extractor": extractor}
            for u in parsed.unplaced
        ]
        truncated = (
            [
                {
                    "entity": TRUNCATED,
                    "value": {"kept": len(parsed.lines)},
                    "start": 0,
                    "end": length,
                    "extractor": extractor,
                }
            ]
            if parsed.truncated
            else []
        )
        return products + lines + unplaced + truncated
