"""What customers send besides text: a shared location, a WhatsApp catalog order, a photo or voice note."""

from __future__ import annotations

from typing import List

from rasa_sdk.events import EventType, SlotSet

from actions.base import ComandaAction, Turn, utter_checkout_problem
from actions.replies import utter_add_result, utter_cart
from actions.support import hand_over
from comanda.enums import Fulfilment, HandoffReason
from comanda.services.carts import add_skus, cart_view, forget_delivery_location, set_delivery_location
from comanda.services.checkout import place_problem


def _coordinate(value: object) -> float:
    return float(str(value))


class ActionReceiveLocation(ComandaAction):
    """A shared location becomes the delivery location of the conversation's cart. In checkout, for a
    delivery, it answers where to deliver (the form then asks only for the interior and references);
    anywhere else it is kept for when the customer checks out. One beyond the store's radius is said to
    be too far at once, and not kept."""

    def name(self) -> str:
        return "action_receive_location"

    def act(self, turn: Turn) -> List[EventType]:
        try:
            latitude, longitude = _coordinate(turn.entity("latitude")), _coordinate(turn.entity("longitude"))
        except (TypeError, ValueError):
            return turn.say("utter_location_not_saved")
        cart, store = turn.open_cart(), turn.store
        set_delivery_location(turn.session, cart, latitude, longitude)
        if not store.delivery_available:
            return turn.say("utter_location_no_delivery", store_name=store.name, address=store.address)
        problem = place_problem(store, cart)
        if problem is not None:  # beyond the store's radius: said now, and not kept as the delivery place
            forget_delivery_location(turn.session, cart)
            utter_checkout_problem(problem, turn)
            return []
        if turn.in_form("checkout_form") and turn.slot("fulfilment") == Fulfilment.DELIVERY:
            return turn.say("utter_location_saved")
        return turn.say("utter_location_kept")


class ActionAddCatalogOrder(ComandaAction):
    """A cart sent from the WhatsApp catalog: its lines join the conversation's cart."""

    def name(self) -> str:
        return "action_add_catalog_order"

    def act(self, turn: Turn) -> List[EventType]:
        items = [i for i in turn.entities("catalog_items") if isinstance(i, dict)]  # one entity per item
        try:
            lines = [(str(i.get("sku")), int(i.get("quantity", 0))) for i in items]
        except (TypeError, ValueError):
            return turn.say("utter_catalog_order_failed")
        cart = turn.open_cart()
        result = add_skus(turn.session, cart, lines, turn.language)
        cart_lines, total = cart_view(turn.session, cart, turn.language)
        if not cart_lines and not result.unknown and not result.short and not result.ask_variant:
            return turn.say("utter_catalog_order_failed")
        offered = utter_add_result(turn, result)
        if cart_lines:
            utter_cart(turn, cart_lines, total)
        return [SlotSet("offered_items", offered or None)]


class ActionReceivedMedia(ComandaAction):
    """The bot reads text only: it says so, and a person on the team gets a ticket to look at the file."""

    def name(self) -> str:
        return "action_received_media"

    def act(self, turn: Turn) -> List[EventType]:
        turn.say("utter_received_media")
        return hand_over(turn, HandoffReason.MEDIA, f"customer sent {turn.entity('media_type')}")
