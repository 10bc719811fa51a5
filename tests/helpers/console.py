"""Staff accounts, personal tokens and orders waiting in the queue, as the console's tests need them."""

from __future__ import annotations

import re
import socket
import threading
from decimal import Decimal
from typing import Any, Callable, List, Optional, Sequence, Tuple

import requests

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.enums import OrderPaymentStatus, PaymentMethod, PaymentProviderName, PaymentStatus
from comanda.services import carts, orders, staff
from comanda.services.audit import Actor
from comanda.services.checkout import CheckoutDetails
from tests.helpers.waiting import wait_for

ANA = "centro:whatsapp:+525511112222"
TEST_ACTOR = Actor("test")
PASSWORD = "correct horse battery"


def add_staff(
    email: str, role: str = "staff", stores: Sequence[str] = ("centro",), password: str = PASSWORD, language: str = "es"
) -> int:
    with transaction() as session:
        user, _ = staff.add_staff(
            session,
            TEST_ACTOR,
            email,
            email.split("@")[0].title(),
            role,
            [] if role == "owner" else list(stores),
            password=password,
            language=language,
        )
        return user.id


def personal_token(email: str) -> str:
    with transaction() as session:
        return staff.create_token(session, TEST_ACTOR, staff.find_staff(session, email))[1]


def member(email: str) -> staff.StaffMember:
    with new_session() as session:
        return staff.member(session, staff.find_staff(session, email))


def queued_order(
    conversation: str = ANA,
    items: Sequence[Tuple[str, int]] = (("CONCHA", 2),),
    method: str = PaymentMethod.CARD.value,
    name: str = "Ana López",
    fulfilment: str = "pickup",
    address: Optional[str] = None,
    postal_code: Optional[str] = None,
    location: Optional[Tuple[str, str]] = None,
    note: Optional[str] = None,
    line_note: Optional[str] = None,
    modifiers: Optional[dict] = None,
) -> int:
    """An order in the queue as ``received``: cash goes there on its own; a card order is recorded as paid
    (the payment flow itself is tested elsewhere)."""
    with transaction() as session:
        cart = carts.open_cart(session, conversation)
        carts.add_items(
            session, cart, [carts.Wanted(sku, quantity, modifiers=modifiers or {}) for sku, quantity in items], "es"
        )
        if location:
            cart.delivery_latitude, cart.delivery_longitude = Decimal(location[0]), Decimal(location[1])
    with transaction() as session:
        details = CheckoutDetails(fulfilment, name, method, postal_code=postal_code, address=address)
        order = orders.place_order(session, conversation, details, actor="test")
        order.note = note
        if line_note:
            order.lines[0].note = line_note
        if method != PaymentMethod.CASH:
            session.add(
                m.Payment(
                    order_id=order.id,
                    provider=PaymentProviderName.SANDBOX.value,
                    method=method,
                    status=PaymentStatus.PAID.value,
                    amount=order.total,
                    paid_at=clock.now(),
                )
            )
            order.payment_status, order.paid_at = OrderPaymentStatus.PAID.value, clock.now()
            orders.enter_queue(session, order, "test")
        return order.id


def order_row(order_id: int) -> m.Order:
    with new_session() as session:
        return session.get(m.Order, order_id)


class ConsoleClient:
    """A browser without JavaScript: cookies, the login form and its CSRF token, htmx-style posts."""

    def __init__(self, base: str, **headers: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers.update(headers)

    def login(self, email: str, password: str = PASSWORD, next_path: str = "/console/queue") -> requests.Response:
        form = self.http.get(f"{self.base}/console/login", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text
        data = {"email": email, "password": password, "csrf_token": token.group(1), "next": next_path}
        return self.http.post(f"{self.base}/console/login", data=data, allow_redirects=False, timeout=30)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.base}{path}", allow_redirects=False, timeout=10, **kwargs)

    def csrf(self) -> str:
        """The session's token, as a logged-in page gives it to htmx."""
        page = self.get("/console/queue")
        found = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page.text)
        assert found, page.text[:500]
        return found.group(1)

    def post(
        self, path: str, data: Optional[dict] = None, csrf: Optional[str] = "auto", htmx: bool = True
    ) -> requests.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        if csrf == "auto":
            csrf = self.csrf()
        if csrf:
            headers["X-CSRF-Token"] = csrf
        return self.http.post(f"{self.base}{path}", data=data or {}, headers=headers, allow_redirects=False, timeout=30)


class EventStream:
    """A server-sent events stream read in a thread, as a browser's EventSource would."""

    def __init__(self, url: str, http: Optional[requests.Session] = None) -> None:
        self.events: List[Tuple[str, str]] = []
        self.lock = threading.Lock()
        self.response = (http or requests.Session()).get(
            url, stream=True, timeout=(5, 60), headers={"Accept": "text/event-stream"}
        )
        self.status = self.response.status_code
        self.thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self.thread.start()

    def _read(self) -> None:
        name: str = "message"
        data: List[str] = []
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line == "":
                    if data:
                        with self.lock:
                            self.events.append((name, "\n".join(data)))
                    name, data = "message", []
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" ") if line.startswith("data: ") else line[5:])
        except (requests.RequestException, AttributeError, ValueError):
            return  # closed

    def wait_for(self, match: Callable[[str, str], bool], timeout: float = 15) -> str:
        """The data of the first event (name, data) that matches, waiting for it to arrive."""

        def matching() -> List[str]:
            with self.lock:
                return [data for name, data in self.events if match(name, data)]

        found = wait_for(matching, timeout=timeout, interval=0.05)
        assert found, f"no matching event; got {[n for n, _ in self.events]}"
        return found[0]

    def close(self) -> None:
        """Shut the socket down first: a bare close waits for the reading thread's blocked read, that is for
        the server's next heartbeat (15 s), before it can close the stream."""
        connection = self.response.raw.connection
        if connection is not None and connection.sock is not None:
            connection.sock.shutdown(socket.SHUT_RDWR)
        self.response.close()


def whatsapp_ticket(
    wa_id: str = "5215511112222",
    store: str = "centro",
    name: str = "Ana López",
    reason: str = "requested",
    summary: str = "quiero hablar con una persona",
    minutes_ago: int = 0,
) -> Tuple[int, str]:
    """A WhatsApp customer who wrote now and a ticket opened ``minutes_ago``: (ticket id, conversation id)."""
    from datetime import timedelta

    from comanda.services import handoff
    from comanda.services.customers import find_or_create_customer, normalize_phone, touch_conversation

    with transaction() as session:
        customer = find_or_create_customer(session, normalize_phone(wa_id), None, name)
        conversation = touch_conversation(session, store, customer, "whatsapp", wa_id)
        ticket = handoff.open_ticket(session, conversation.id, reason, summary).ticket
        ticket.created_at = clock.now() - timedelta(minutes=minutes_ago)
        return ticket.id, conversation.id
