"""A shared location beyond the store's delivery radius is said to be too far when it is shared (it was
"📍 ¡Listo! Entregamos en esa ubicación", and the order failed at its confirmation), and is not kept."""

import uuid

import pytest
from sqlalchemy import select

from actions.cart import ActionAddItems
from actions.channel_inputs import ActionReceiveLocation
from comanda import models as m
from comanda.db import new_session
from tests.helpers.actions import entity, line, responses, run, said, text_of, tracker, user_event

COYOACAN, BELLAS_ARTES = (19.3500, -99.1620), (19.4352, -99.1412)


def share(latitude: float, longitude: float, **slots):
    """As the action server runs it for a logged message: its answer is kept (as JSON) for a retry."""
    location = said("share_location", entity("latitude", latitude), entity("longitude", longitude))
    logged = [user_event(location, f"wamid.{uuid.uuid4().hex}")]
    return run(ActionReceiveLocation(), tracker(location, slots=slots, events=logged))


def cart_location():
    with new_session() as session:
        cart = session.execute(select(m.Cart)).scalar_one()
        return cart.delivery_latitude, cart.delivery_longitude


@pytest.mark.parametrize("slots", [{}, {"fulfilment": "delivery"}])
def test_a_location_too_far_is_said_at_once_and_not_kept(demo, slots):
    run(ActionAddItems(), tracker(said("add_items", line("CHILAQUILES", 2))))
    messages, _ = share(*COYOACAN, **slots)
    assert responses(messages) == ["utter_too_far"]
    assert text_of(messages[0]) == "Tu ubicación está a 9.6 km y solo entregamos hasta 2.5 km 😔. ¿Pasas a recoger?"
    assert cart_location() == (None, None)


def test_a_location_within_the_radius_is_kept(demo):
    messages, _ = share(*BELLAS_ARTES)
    assert responses(messages) == ["utter_location_kept"]
    assert [str(c) for c in cart_location()] == ["19.435200", "-99.141200"]
