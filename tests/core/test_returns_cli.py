"""`comanda returns` against a real database: the list as the API shapes it, and staff's steps from the
command line (audited as cli:<user>), with errors as one `error:` line and exit status 2."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session
from tests.helpers.cli import comanda
from tests.helpers.returns import ask, sold, status

pytestmark = pytest.mark.usefixtures("sandbox_settings")


def test_list_approve_receive_and_refund_from_the_command_line(demo):
    return_id = ask(sold("TERMO", 2), reason_code="defective", declared_condition="unused")
    listed = comanda("returns", "list", "--status", "requested", "--json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    assert (item["id"], item["lines"], item["outcome"]) == (
        return_id,
        [{"sku": "TERMO", "quantity": 2, "amount": "640.00"}],
        "refund",
    )
    assert comanda("returns", "approve", str(return_id)).stdout.strip() == f"return {return_id}: approved"
    again = comanda("returns", "approve", str(return_id))
    assert again.returncode == 2 and again.stderr.startswith("error: return")
    done = comanda("returns", "receive", str(return_id), "--condition", "good")
    assert done.stdout.strip() == f"return {return_id}: refunded" and status(return_id) == "refunded"
    with new_session() as session:
        actors = (
            session.execute(select(m.AuditEvent.actor).where(m.AuditEvent.action == "return.approved")).scalars().all()
        )
    assert len(actors) == 1 and actors[0].startswith("cli:")
    assert comanda("returns", "show", "999").returncode == 2


def test_a_cash_sale_is_refunded_by_hand_with_its_reference(demo):
    return_id = ask(sold("TAZA", method="cash"), declared_condition="unused")
    shown = comanda("returns", "receive", str(return_id), "--condition", "good")
    assert "comanda returns refund ID --reference" in shown.stdout and status(return_id) == "received"
    assert comanda("returns", "refund", str(return_id), "--reference", "RECIBO-0042").returncode == 0
    assert status(return_id) == "refunded"
