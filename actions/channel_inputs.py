"""What customers send besides text: a shared location, a WhatsApp catalog order, a photo or voice note."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import language
from actions.replies import utter_add_result, utter_cart
from comanda.db import transaction
from comanda.errors import NotFound
from comanda.services.carts import add_skus, cart_view, open_cart, set_delivery_location
from comanda.services.handoff import open_ticket
from comanda.services.stores import get_store


def entity(tracker: Tracker, name: str) -> Any:
    return next(tracker.get_latest_entity_values(name), None)


class ActionReceiveLocation(Action):
    """A shared location becomes the delivery location of the conversation's cart."""

    def name(self) -> str:
        return "action_receive_location"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        latitude, longitude = entity(tracker, "latitude"), entity(tracker, "longitude")
        try:
            with transaction() as session:
                cart = open_cart(session, tracker.sender_id)
                set_delivery_location(session, cart, float(latitude), float(longitude))
                store = get_store(session, cart.store_id)
                delivers, store_name, address = store.delivery_available, store.name, store.address
        except (NotFound, TypeError, ValueError):
            dispatcher.utter_message(response="utter_location_not_saved")
            return []
        if delivers:
            dispatcher.utter_message(response="utter_location_saved")
        else:
            dispatcher.utter_message(response="utter_location_no_delivery", store_name=store_name, address=address)
        return []


class ActionAddCatalogOrder(Action):
    """A cart sent from the WhatsApp catalog: its lines join the conversation's cart."""

    def name(self) -> str:
        return "action_add_catalog_order"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        items = list(tracker.get_latest_entity_values("catalog_items"))  # Rasa splits a list into one entity per item
        lang = language(tracker)
        try:
            with transaction() as session:
                cart = open_cart(session, tracker.sender_id)
                result = add_skus(
                    session,
                    cart,
                    [(i.get("sku"), int(i.get("quantity", 0))) for i in items if isinstance(i, dict)],
                    lang,
                )
                lines, total = cart_view(session, cart, lang)
                store_name = get_store(session, cart.store_id).name
        except (NotFound, TypeError, ValueError):
            dispatcher.utter_message(response="utter_catalog_order_failed")
            return []
        if not lines and not result.unknown and not result.short and not result.ask_variant:
            dispatcher.utter_message(response="utter_catalog_order_failed")
            return []
        offered = utter_add_result(dispatcher, result, lang, store_name)
        if lines:
            utter_cart(dispatcher, lines, total)
        return [SlotSet("offered_items", offered or None)]


class ActionReceivedMedia(Action):
    """The bot reads text only: it says so, and a person on the team gets a ticket to look at the file."""

    def name(self) -> str:
        return "action_received_media"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[EventType]:
        with transaction() as session:
            open_ticket(session, tracker.sender_id, "media", summary=f"customer sent {entity(tracker, 'media_type')}")
        dispatcher.utter_message(response="utter_received_media")
        return []
