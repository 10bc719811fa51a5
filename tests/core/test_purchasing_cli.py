"""`comanda purchasing …` and `comanda stock count` as an operator runs them: the Rasa environment's `comanda`
(sending re-runs in the actions environment, which has WeasyPrint), the issue's JSON shape, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
from typing import List

from comanda.db import new_session
from comanda.services.reservations import ledger_mismatches
from tests.helpers.paths import ROOT
from tests.helpers.purchasing import on_hand, sell_coffee_down_to_the_reorder_points


def comanda(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "comanda"), *args], capture_output=True, text=True, env=os.environ, timeout=120
    )


def listed(*args: str) -> List[dict]:
    done = comanda("purchasing", "list", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_list_send_receive_and_count_from_the_command_line(demo_sqlite, smtp):
    sell_coffee_down_to_the_reorder_points()
    [po] = listed("--store", "centro", "--status", "draft")
    assert po == {
        "id": po["id"],
        "supplier": "chiapas",
        "store": "centro",
        "status": "draft",
        "lines": [
            {"sku": "coffee_beans", "quantity": 5000, "received": 0},
            {"sku": "CAFE-GRANO-250", "quantity": 20, "received": 0},
        ],
        "expected_at": None,
    }
    assert listed("--store", "roma") == []

    sent = comanda("purchasing", "send", str(po["id"]))
    assert sent.returncode == 0, sent.stderr
    assert f"purchase order {po['id']} (OC-{po['id']:05d}) e-mailed to ventas@cafetaleros.example" in sent.stdout
    assert len(smtp.messages) == 1 and smtp.messages[0].get_content_type() == "multipart/mixed"
    [row] = listed("--status", "sent,partially_received")
    assert row["status"] == "sent" and row["expected_at"]

    before = on_hand("coffee_beans")
    part = comanda("purchasing", "receive", str(po["id"]), "--line", "coffee_beans:2000")
    assert part.returncode == 0 and "partially_received: coffee_beans 2000/5000" in part.stdout, part.stderr
    too_much = comanda("purchasing", "receive", str(po["id"]), "--line", "CAFE-GRANO-250:21")
    assert (
        too_much.returncode == 2 and too_much.stderr == "error: CAFE-GRANO-250: 21 received but only 20 outstanding\n"
    )
    rest = comanda("purchasing", "receive", str(po["id"]), "--all")
    assert rest.returncode == 0 and f"purchase order {po['id']} received" in rest.stdout, rest.stderr
    assert on_hand("coffee_beans") == before + 5000
    assert listed()[0]["lines"][0] == {"sku": "coffee_beans", "quantity": 5000, "received": 5000}

    counted = comanda("stock", "count", "--store", "centro", "CONCHA=27", "milk=19000", "--line-reason", "milk=waste")
    assert counted.returncode == 0, counted.stderr
    assert (
        "CONCHA: 30 → 27  -3 (count_correction)" in counted.stdout
        and "milk: 20000 → 19000  -1000 (waste)" in counted.stdout
    )
    with new_session() as session:
        assert ledger_mismatches(session) == []

    bad = comanda("stock", "count", "--store", "centro", "CONCHA=lots")
    assert bad.returncode == 2 and bad.stderr == "error: CONCHA: 'lots' is not a quantity\n"
    unknown = comanda("purchasing", "list", "--status", "open")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: unknown purchase order status 'open'")
    missing = comanda("purchasing", "send", "999")
    assert missing.returncode == 2 and missing.stderr == "error: no purchase order 999\n"
