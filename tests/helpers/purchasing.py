"""Purchasing as its tests need it: a local SMTP server (aiosmtpd) that keeps what it receives, and the
purchase orders and alerts of the database."""

from __future__ import annotations

import email
from email import policy
from typing import Iterator, List, Tuple

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.conftest import free_port


class Inbox:
    """What the SMTP server accepted: the parsed messages and their envelopes (from, recipients)."""

    def __init__(self) -> None:
        self.messages: List[email.message.EmailMessage] = []
        self.envelopes: List[Tuple[str, List[str]]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture(name="smtp")
def smtp_fixture(monkeypatch) -> Iterator[Inbox]:
    """An SMTP server on a free local port for the test, set as COMANDA_SMTP_* (plain, no login): its inbox."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("COMANDA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("COMANDA_SMTP_PORT", str(controller.port))
    monkeypatch.setenv("COMANDA_SMTP_SECURITY", "none")
    monkeypatch.setenv("COMANDA_SMTP_FROM", "compras@cafe-esquina.example")
    yield inbox
    controller.stop()


def purchase_orders(store: str = "centro") -> List[m.PurchaseOrder]:
    with new_session() as session:
        rows = session.execute(
            select(m.PurchaseOrder).where(m.PurchaseOrder.store_id == store).order_by(m.PurchaseOrder.id)
        ).scalars()
        found = list(rows)
        for po in found:
            for line in po.lines:
                _ = line.stock_item.code
        return found


def alerts(store: str = "centro") -> List[Tuple[str, str, object]]:
    """(item code, status, purchase order id) of every alert of a store, oldest first."""
    with new_session() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(m.StockItem.code, m.LowStockAlert.status, m.LowStockAlert.purchase_order_id)
                .join(m.StockItem, m.StockItem.id == m.LowStockAlert.stock_item_id)
                .where(m.LowStockAlert.store_id == store)
                .order_by(m.LowStockAlert.id)
            )
        ]


def on_hand(code: str, store: str = "centro"):
    with new_session() as session:
        return session.execute(
            select(m.StockLevel.on_hand)
            .join(m.StockItem, m.StockItem.id == m.StockLevel.stock_item_id)
            .where(m.StockLevel.store_id == store, m.StockItem.code == code)
        ).scalar_one()
