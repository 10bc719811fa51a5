""" "Lo de siempre" / "the usual" / "repite mi último pedido": the last order at this store back in the cart, as
the store can sell it now, with what changed in price or stock said plainly."""

from __future__ import annotations

from typing import List

from rasa_sdk.events import EventType, SlotSet

from actions.base import ComandaAction, Turn
from actions.cart import OFFERED
from actions.replies import utter_add_result, utter_cart
from comanda.i18n import join_words
from comanda.money import format_money
from comanda.services import carts
from comanda.services.usual import repeat_last_order


class ActionRepeatLastOrder(ComandaAction):
    def name(self) -> str:
        return "action_repeat_last_order"

    def act(self, turn: Turn) -> List[EventType]:
        usual = repeat_last_order(turn.session, turn.conversation_id, turn.language)
        if usual.order is None:
            turn.say("utter_usual_none", store_name=turn.store.name)
            return [SlotSet(OFFERED, None)]
        order = usual.order
        turn.say(
            "utter_usual_found", ticket=order.ticket_code or f"#{order.id}", day=order.created_at.strftime("%d/%m")
        )
        for change in usual.price_changes:
            response = "utter_usual_price_up" if change.now > change.before else "utter_usual_price_down"
            turn.say(response, item=change.name, before=format_money(change.before), now=format_money(change.now))
        if usual.gone:
            turn.say("utter_usual_gone", items=join_words(usual.gone, turn.language))
        offered = utter_add_result(turn, usual.result)
        if usual.result.added:
            utter_cart(turn, *carts.cart_view(turn.session, turn.open_cart(), turn.language))
            if not offered and not usual.result.ask_variant:
                turn.say("utter_cart_next")
        return [SlotSet(OFFERED, offered or None)]
