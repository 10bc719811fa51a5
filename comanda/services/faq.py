"""Answers to frequent questions, from the store's own data (hours, address, delivery, payment)."""

from __future__ import annotations

from typing import Dict

from sqlalchemy.orm import Session

from comanda import models as m
from comanda.errors import NotFound
from comanda.i18n import join_words, t
from comanda.money import format_money
from comanda.services.stores import get_store

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOPICS = ("hours", "location", "delivery", "payment_methods", "wifi", "pets")


def format_hours(hours: Dict[str, str], language: str) -> str:
    """{"mon-fri": "07:30-21:00"} → "lun–vie 07:30–21:00" (or "Mon–Fri ..." in English)."""
    parts = []
    for days, span in hours.items():
        labels = [t(f"weekday.{d}", language) for d in days.split("-") if d in WEEKDAYS]
        parts.append(f"{'–'.join(labels)} {span.replace('-', '–')}")
    return "\n".join(parts)


def faq_response(session: Session, store_id: str, topic: str, language: str) -> Dict[str, str]:
    """The domain response to utter and the values that fill it, for one FAQ topic."""
    if topic not in TOPICS:
        raise NotFound(f"no FAQ topic {topic!r}", topic=topic)
    store = get_store(session, store_id)
    business: m.Business = store.business
    faq = business.faq or {}
    params = {"store_name": store.name}
    response = f"utter_faq/{topic}"
    if topic == "hours":
        params["hours"] = format_hours(store.hours, language)
    elif topic == "location":
        params["address"] = store.address
    elif topic == "delivery":
        if store.delivery_available:
            params.update(
                fee=format_money(store.delivery_fee),
                minimum=format_money(store.delivery_min_order),
                postal_codes=join_words([pc.postal_code for pc in store.delivery_postal_codes], language),
            )
        else:
            response = "utter_faq_no_delivery"
            params["address"] = store.address
    elif topic == "payment_methods":
        methods = [t(f"payment_method.{code}", language) for code in business.payment_methods]
        params["methods"] = join_words(methods, language)
    elif topic == "wifi":
        response = "utter_faq/wifi" if faq.get("wifi") else "utter_faq_no_wifi"
    elif topic == "pets":
        response = "utter_faq/pets" if faq.get("pets_allowed") else "utter_faq_no_pets"
    return {"response": response, **params}
