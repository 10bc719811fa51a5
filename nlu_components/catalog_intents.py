"""Corrects the intent classifier with what the live catalog reading found in the message.

The classifier learns intents from training sentences and knows nothing of the catalog; the order
reader (nlu_components.order_lines, earlier in the pipeline) knows the catalog and the cart verbs of
the message (its ``order_cues``) and nothing of intents. These confusions are settled by the reader,
which also keeps working for a product added to the database after training:

- the message orders items (``order_line`` entities: products with their quantities, not asked
  about) but was classed as a question, the menu, small talk or out of scope → ``add_items``
  ("also a water", "seis de pastor sin cilantro", "2 tamales" for a product the model never saw);
  classed as a "no", when it counts them or corrects itself ("no, 2 cocas", "una jamaica, no, mejor
  dos"; "no, sólo la coca" answers "¿algo más?");
- it names products only in a question (``product`` entities, no order lines) but was classed as
  ordering, removing or the menu → ``product_question`` ("¿tienen taro?", "are there still churros?");
  so does a question about a product the shop does not sell (an asked ``unplaced``: "¿tienen pozole?")
  classed as the menu, small talk, a complaint or an order ("do you have cold brew?"); a category
  named by a product's word to see the menu ("let me see the coffee options") → ``show_menu``;
- a removal is never guessed. Classed as removing or emptying the cart, a message that says to add
  ("a 3rd latte pls", "otro taro", "one more coke") and has no removal verb, or that counts what it
  orders with no word of a removal or a change ("5 taquitos de suadero"), or corrects its own order
  ("a coke, scratch that, a water") → ``add_items``; a question about a product → ``product_question``
  ("an order of churros has how many?"); one that
  has neither a removal verb nor an add cue keeps its intent but carries an ``intent_conflict``
  entity (``{"intent": "remove_items", "reading": "add_items"}``), so the action asks before taking
  anything out. A named product in "borra …" classed as emptying the cart → ``remove_items``;
- it was classed as changing a quantity, but its order lines state none, or it has no word of a
  change ("mejor", "que sean", "instead", "make it"), or the change corrects an item the message
  itself ordered: a plain order → ``add_items`` ("taro tea, no boba, less sugar", "3 de pastor y 2
  cocas", "una jamaica, no, mejor dos");
- it was classed as a cart change but orders nothing and carries a number too long to be a quantity
  (a postal code, a phone number): it answers a question → ``inform`` ("06700"). So does, classed as
  anything about orders, the FAQ or out of scope, a statement (no question mark, no opening question
  word) that orders nothing and gives what only an answer to the checkout form gives: a postal code,
  an address with a street word, a way to pay or to get the order ("delivery to 06060", "Calle
  Donceles 55, depto 3", "te pago por transferencia", "i want it delivered"; the readers of
  ``comanda.services.answers``, which the form uses too); a question about paying or getting the
  order classed as an answer is the FAQ ("can i pay cash on pickup?");
- a removal that names no product but everything ("quítame todo lo que llevo") → ``clear_cart``; a
  counted order that says the count it had ("2 suadero, not 3") → ``change_quantity``; a question
  naming a product classed as small talk ("¿todavía hay churros?") → ``product_question``;
- what only the checkout and invoice forms ask for, said as a statement, answers them → ``inform``: an
  RFC or an e-mail ("my RFC is CHLA900415K21"), a name ("a nombre de Maite"), pickup ("paso yo por
  él"), an address whose words name a product without a count ("Calle Regina 48, portón café");
- a queue ticket in a message that orders nothing ("¿mi pedido C-004 ya está listo?") →
  ``order_status``; "lo de siempre pero agrégale unos churros" (the usual with more, counted or
  added) → ``add_items``; a question about delivering or paying classed as the cart or checkout →
  ``faq``.

``unplaced`` entities are kept only where the final intent is about products (adding, a quantity
change, a product question): in "i want to talk to a person" there is nothing to say back.

The corrected intent goes to the top of the ranking with the classifier's top confidence, and at
least ``min_confidence``: the catalog's reading is the evidence the classifier lacked. For the same
reason a cart intent the reading bears out (order lines for adding or changing quantities, a named
product for removing or asking) gets at least ``min_confidence`` too, so the FallbackClassifier does
not ask "¿me lo dices de otra forma?" about "seis de pastor sin cilantro".
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from comanda.services.answers import (
    NO_EMAIL,
    gives_name,
    has_street_word,
    opens_as_question,
    read_address,
    read_email,
    read_fulfilment,
    read_payment_method,
    read_rfc,
)
from comanda.services.products import fold
from nlu_components.order_lines import ORDER_CUES, ORDER_LINE, PRODUCT, UNPLACED

# Four digits or more is never how many (order quantities stop at 999): a postal code, a phone number.
LONG_NUMBER = re.compile(r"(?<!\d)\d{4,}(?!\d)")
# A queue ticket as the bot gives it ("C-004"): the message is about an order already placed.
TICKET_CODE = re.compile(r"(?<![\w-])[A-Za-z]{1,3}-\d{3,}(?![\w-])")
INTENT_CONFLICT = "intent_conflict"
ASKING_OPENINGS = ("do ", "does ", "what", "how ")
# Words that ask for the invoice itself ("factúrame a CHLA900415K21"), not just give its data
INVOICE_WORDS = frozenset({"factura", "facturame", "facturar", "facturen", "invoice", "bill", "cfdi"})
DESTRUCTIVE = ("remove_items", "clear_cart")
# "quítame todo", "remove all the stuff": a removal that names no product but all of them empties the cart
EVERYTHING = frozenset({"todo", "toda", "todos", "todas", "everything", "all"})
# "2 suadero, not 3", "en vez de 4": the count it had, said beside the count it should have
COUNT_BEFORE = re.compile(
    r"\b(?:not|instead of|rather than|en vez de|en lugar de)\s+"
    r"(?:\d+|one|two|three|four|five|six|dos|tres|cuatro|cinco|seis)\b"
)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class CatalogIntentRefiner(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            "min_confidence": 0.8,
            "ranking_margin": 0.1,  # above the FallbackClassifier's ambiguity_threshold
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
            # what it says of a question naming a product when it misses the product ("are there still churros?")
            "asked_instead_of_small_talk": ["greet", "goodbye", "thank", "affirm", "deny", "out_of_scope", "inform"],
            # where "quítame todo lo que llevo" lands when the classifier misses the emptying
            "emptied_instead_of": ["remove_items", "checkout", "show_cart", "add_items", "change_quantity"],
            # what the classifier says of a question about a product the shop does not sell
            "asked_unknown_instead_of": [
                "show_menu",
                "complaint",
                "add_items",
                "inform",
                "checkout",
                "bot_challenge",
                "faq",
            ],
            # what it says of "let me see the coffee options" (a category named by a product's word)
            "menu_instead_of": ["product_question", "add_items", "inform", "show_cart"],
            # what it says of a question about how the shop takes payment or delivers ("do y'all do delivery")
            "shop_asked_instead_of": ["inform", "show_cart", "checkout", "repeat_last_order"],
            "removed_instead_of": ["clear_cart"],
            "informed_instead_of": ["change_quantity", "add_items", "remove_items"],
            # what it says of an answer to a checkout question that is not a question itself: a postal
            # code ("delivery to 06060"), an address ("Calle Donceles 55, depto 3")
            "answered_instead_of": [
                "change_quantity",
                "add_items",
                "remove_items",
                "order_status",
                "faq",
                "checkout",
                "out_of_scope",
                "product_question",
                "show_menu",
            ],
            # what it says of an RFC or an e-mail given as a statement ("my RFC is CHLA900415K21")
            "identified_instead_of": [
                "human_handoff",
                "bot_challenge",
                "greet",
                "goodbye",
                "thank",
                "affirm",
                "deny",
                "out_of_scope",
                "faq",
                "checkout",
                "order_status",
                "product_question",
                "show_menu",
                "change_quantity",
                "add_items",
                "remove_items",
            ],
            # what it says of a question about a placed order named by its ticket ("¿mi pedido C-004 ya está?")
            "ticket_instead_of": ["checkout", "change_quantity", "add_items", "remove_items", "show_cart", "inform"],
            # intents whose actions tell the customer about product words the catalog did not place
            "unplaced_for": ["add_items", "change_quantity", "product_question"],
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

    def refined(
        self, intent: Optional[str], entities: List[Dict[str, Any]], text: str = "", cues: Sequence[str] = ()
    ) -> Optional[str]:
        """The intent the catalog reading calls for (maybe the classifier's own), or None when the
        reading says nothing about it."""
        orders = any(e.get("entity") == ORDER_LINE for e in entities)
        names = any(e.get("entity") == PRODUCT for e in entities)
        asked_unknown = any(e.get("entity") == UNPLACED and (e.get("value") or {}).get("asked") for e in entities)
        if not orders and intent in self.config["informed_instead_of"] and LONG_NUMBER.search(text):
            return "inform"
        asked = opens_as_question(text) or "?" in text
        statement = not orders and not asked
        if statement and intent in self.config["answered_instead_of"] + ["inform"] and gives_place(text):
            return "inform"  # "06050", "delivery to 06060", "Calle Donceles 55, depto 3"
        identifies = read_rfc(text) or read_email(text) not in (None, NO_EMAIL)
        invoice_asked = bool(INVOICE_WORDS & set(re.findall(r"\w+", fold(text))))
        identified = intent in self.config["identified_instead_of"] or intent == "request_invoice" and not invoice_asked
        if statement and identifies and identified:
            return "inform"  # "my RFC is CHLA900415K21", "facturas a compras@xenon.mx": the invoice form's answers
        if not orders and not names and intent in self.config["ticket_instead_of"] and TICKET_CODE.search(text):
            return "order_status"  # "¿mi pedido C-004 ya está listo?", "any update on order C-031?"
        lines = [e.get("value") or {} for e in entities if e.get("entity") == ORDER_LINE]
        counted = any(line.get("quantity_stated") for line in lines)
        uncounted_place = orders and not counted and not asked
        if uncounted_place and intent in ("add_items", "inform") and has_street_word(text) and read_address(text):
            return "inform"  # "Calle Regina 48, depto 5, portón café": a brown gate, not a coffee
        fetched = [i for i in self.config["answered_instead_of"] if i != "order_status"] + ["repeat_last_order"]
        if statement and not names and intent in fetched and read_fulfilment(text):
            return "inform"  # "paso yo por él", "I'll swing by and grab it myself": how this order is fetched
        if statement and not names and intent == "repeat_last_order" and read_payment_method(text):
            return "inform"  # "tarjeta, como siempre": how this order is paid
        if statement and intent not in ("inform", "human_handoff", "privacy_request") and gives_name(text):
            return "inform"  # "a nombre de Maite"
        if statement and intent in ("faq", "inform") and (read_payment_method(text) or read_fulfilment(text)):
            return "inform"  # "te pago por transferencia", "i want it delivered": how this order is paid, fetched
        # an answer may end with "?" ("a domicilio?") or open like a question ("puedo pagar en efectivo"):
        # as `inform` it takes both, or an English question's opening ("do y'all do delivery")
        asks = "?" in text or fold(text).startswith(ASKING_OPENINGS)
        asked_shop = not orders and (
            opens_as_question(text) and asks if intent == "inform" else opens_as_question(text) or "?" in text
        )
        if asked_shop and intent in self.config["shop_asked_instead_of"]:
            if read_payment_method(text) or read_fulfilment(text):
                return "faq"  # "can i pay cash on pickup?", "¿tienen servicio a domicilio?": what the shop does
        if intent in DESTRUCTIVE and "add" in cues and "remove" not in cues and (orders or names):
            return "add_items"  # "a 3rd latte pls", "otro taro": never a removal
        plain = counted and not {"remove", "change"} & set(cues)
        if intent in DESTRUCTIVE and orders and (plain or "corrected" in cues):
            return "add_items"  # "5 taquitos de suadero", "a coke, scratch that, a water": orders
        if intent == "deny" and orders and (counted or "corrected" in cues):
            return "add_items"  # "no, 2 cocas", "una jamaica, no, mejor dos"; "no, sólo la coca" stays a no
        if names and not orders and "asks" in cues and intent in self.config["removed_instead_of"]:
            return "product_question"  # "an order of churros has how many?"
        if intent == "repeat_last_order" and orders and (counted or "add" in cues):
            return "add_items"  # "lo de siempre pero agrégale unos churros", "like last time, 2 matchas"
        if orders and intent in self.config["ordered_instead_of"]:
            return "add_items"
        if "menu" in cues and not orders and intent in self.config["menu_instead_of"] + ["show_menu"]:
            return "show_menu"  # "quiero ver qué tienen de café"
        if names and not orders and intent in self.config["asked_instead_of"]:
            return "product_question"
        if names and not orders and "asks" in cues and intent in self.config["asked_instead_of_small_talk"]:
            return "product_question"  # "¿todavía hay churros?"
        if asked_unknown and not orders and intent in self.config["asked_unknown_instead_of"]:
            return "product_question"  # "¿tienen pozole?"
        if names and intent in self.config["removed_instead_of"]:
            return "remove_items"
        emptied = "remove" in cues and not names and not orders and EVERYTHING & set(re.findall(r"\w+", fold(text)))
        if emptied and intent in self.config["emptied_instead_of"]:
            return "clear_cart"  # "quítame absolutamente todo lo que llevo", "remove all the stuff from the cart"
        if intent == "add_items" and counted and "change" in cues and "corrected" not in cues:
            if COUNT_BEFORE.search(fold(text)):
                return "change_quantity"  # "let's do 2 suadero, not 3": a count the cart had
        if intent == "change_quantity" and lines:
            if not any(line.get("quantity_stated") for line in lines) or not {"change", "remove"} & set(cues):
                return "add_items"  # a quantity cannot change to nothing; "3 de pastor" orders
            if "corrected" in cues:
                return "add_items"  # "una jamaica, no, mejor dos": the message corrects its own order
        borne_out = {
            "add_items": orders,
            "change_quantity": orders,
            "remove_items": names,
            "product_question": names and not orders or asked_unknown,
        }
        return intent if intent is not None and borne_out.get(intent) else None

    def conflict(
        self, intent: Optional[str], entities: List[Dict[str, Any]], cues: Sequence[str]
    ) -> Optional[Dict[str, Any]]:
        """A removal or emptying without a removal verb: the reading would add (products named) or
        do nothing; the action asks instead of guessing."""
        if intent not in DESTRUCTIVE or "remove" in cues:
            return None
        named = any(e.get("entity") in (ORDER_LINE, PRODUCT) for e in entities)
        return {"intent": intent, "reading": "add_items" if named else None}

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text, intent = message.get(TEXT) or "", message.get(INTENT) or {}
            if text.startswith(INTENT_MESSAGE_PREFIX) or not intent:
                continue
            entities = message.get(ENTITIES, [])
            cues = message.get(ORDER_CUES) or []
            target = self.refined(intent.get(INTENT_NAME_KEY), entities, text, cues)
            if target is not None:
                ranking = message.get(INTENT_RANKING_KEY) or [intent]
                confidence = max(float(intent.get("confidence") or 0), self.config["min_confidence"])
                top = {INTENT_NAME_KEY: target, "confidence": confidence}
                # The intents the reading overruled stay below it by the margin, so the FallbackClassifier
                # does not call "seis de pastor" ambiguous between the order and the classifier's guess.
                ceiling = max(confidence - self.config["ranking_margin"], 0.0)
                rest = [
                    {**r, "confidence": min(float(r.get("confidence") or 0), ceiling)}
                    for r in ranking
                    if r.get(INTENT_NAME_KEY) != target
                ]
                message.set(INTENT, top, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [top] + rest, add_to_output=True)
            final = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            message.set(ENTITIES, self._entities(final, entities, cues, len(text)), add_to_output=True)
        return messages

    def _entities(
        self, intent: Optional[str], entities: List[Dict[str, Any]], cues: Sequence[str], length: int
    ) -> List[Dict[str, Any]]:
        kept = [e for e in entities if e.get("entity") != UNPLACED or intent in self.config["unplaced_for"]]
        conflict = self.conflict(intent, entities, cues)
        if conflict is not None:
            kept.append(_entity(INTENT_CONFLICT, conflict, (0, length)))
        return kept


def gives_place(text: str) -> bool:
    """A postal code (or a longer number), or an address with a street word: what only an answer to
    the checkout form's questions says."""
    return bool(LONG_NUMBER.search(text) or has_street_word(text) and read_address(text))


def _entity(name: str, value: Any, span: Tuple[int, int]) -> Dict[str, Any]:
    return {"entity": name, "value": value, "start": span[0], "end": span[1], "extractor": "CatalogIntentRefiner"}
