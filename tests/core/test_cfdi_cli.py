"""`comanda cfdi` as staff run it: real processes from both environments (Rasa's re-executes in the action
server's, where satcfdi is), one-line errors with status 2."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from comanda import models as m
from comanda.clock import now
from comanda.db import transaction
from comanda.services.cfdi.invoicing import issue_invoice
from comanda.services.cfdi.problems import StampUnconfirmed
from integrations.cfdi.local import LocalIssuer
from tests.helpers.cfdi import CFDI, COMPANY, FailingIssuer, Line, assert_valid_cfdi, paid_order, reload
from tests.helpers.paths import ROOT

ACTIONS = ROOT / ".venv-actions" / "bin" / "comanda"
RASA = ROOT / ".venv" / "bin" / "comanda"
COMPANY_ARGS = [
    "--rfc",
    "EKU9003173C9",
    "--name",
    "Escuela Kemper Urgate",
    "--cp",
    "42501",
    "--regime",
    "601",
    "--use",
    "G03",
]


def comanda(program: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(program), *args], capture_output=True, cwd=cwd, env=dict(os.environ), timeout=180)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    stderr = result.stderr.decode()
    assert result.returncode == 2 and stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    return stderr


def test_issue_show_list_credit_note_and_cancel(demo_sqlite, tmp_path):
    order = paid_order([Line("TACO-PASTOR", 3), Line("HORCHATA", 1)], paid_at=now())
    issued = comanda(ACTIONS, "cfdi", "issue", "--order", str(order), *COMPANY_ARGS, "--out", str(tmp_path / "out"))
    assert issued.returncode == 0, issued.stderr.decode()
    with transaction() as session:
        invoice = session.execute(select(m.Invoice).where(m.Invoice.order_id == order)).scalar_one()
    output = issued.stdout.decode()
    assert f"invoice {invoice.id} F{invoice.folio} ingreso sealed: EKU9003173C9 $101.00" in output
    assert "test document" in output
    assert (tmp_path / "out" / f"factura-F{invoice.folio}.xml").read_text() == invoice.xml
    assert (tmp_path / "out" / f"factura-F{invoice.folio}.pdf").read_bytes() == invoice.pdf
    assert_valid_cfdi(invoice.xml)

    shown = comanda(ACTIONS, "cfdi", "show", str(invoice.id), "--xml")
    assert shown.returncode == 0 and shown.stdout == invoice.xml.encode()
    assert comanda(ACTIONS, "cfdi", "show", str(invoice.id), "--pdf", "--out", str(tmp_path / "f.pdf")).returncode == 0
    assert (tmp_path / "f.pdf").read_bytes() == invoice.pdf

    with transaction() as session:
        taco = session.execute(
            select(m.OrderLine.id).where(m.OrderLine.order_id == order, m.OrderLine.sku == "TACO-PASTOR")
        ).scalar()
    note = comanda(ACTIONS, "cfdi", "credit-note", str(invoice.id), "--line", f"{taco}:1")
    assert note.returncode == 0 and "egreso sealed: EKU9003173C9 $22.00" in note.stdout.decode()
    assert "cancel them first" in one_line_error(comanda(ACTIONS, "cfdi", "cancel", str(invoice.id), "--motive", "02"))
    note_id = invoice.id + 1
    assert comanda(ACTIONS, "cfdi", "cancel", str(note_id), "--motive", "02").returncode == 0
    cancelled = comanda(ACTIONS, "cfdi", "cancel", str(invoice.id), "--motive", "03")
    assert cancelled.returncode == 0 and "ingreso cancelled" in cancelled.stdout.decode()
    listed = comanda(ACTIONS, "cfdi", "list", "--order", str(order)).stdout.decode().splitlines()
    assert [line.split()[4] for line in listed] == ["cancelled:", "cancelled:"]


def test_rasa_environment_runs_cfdi_in_the_action_servers(demo_sqlite, tmp_path):
    order = paid_order([Line("TAZA", 1)], paid_at=now(), method="cash")
    issued = comanda(RASA, "cfdi", "issue", "--order", str(order), *COMPANY_ARGS, cwd=tmp_path)
    assert issued.returncode == 0, issued.stderr.decode()
    with transaction() as session:
        invoice = session.execute(select(m.Invoice).where(m.Invoice.order_id == order)).scalar_one()
    assert etree.fromstring(invoice.xml.encode()).get("FormaPago") == "01"
    shown = comanda(RASA, "cfdi", "show", str(invoice.id), "--xml", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout == invoice.xml.encode()
    assert "EKU9003173C9" in comanda(ACTIONS, "cfdi", "list", cwd=tmp_path).stdout.decode()


def test_global_invoice_from_the_command_line(demo_sqlite):
    november = datetime(2026, 11, 20, 18, tzinfo=timezone.utc)
    paid_order([Line("CONCHA", 2)], method="cash", paid_at=november, ticket="C-001")
    result = comanda(RASA, "cfdi", "global", "--store", "centro", "--period", "2026-11")
    assert result.returncode == 0, result.stderr.decode()
    assert "global sealed: XAXX010101000 $36.00" in result.stdout.decode()
    with transaction() as session:
        invoice = session.execute(select(m.Invoice).where(m.Invoice.kind == "global")).scalar_one()
    assert etree.fromstring(invoice.xml.encode()).find(f"{CFDI}InformacionGlobal").get("Periodicidad") == "04"
    assert "already a global invoice" in one_line_error(
        comanda(ACTIONS, "cfdi", "global", "--store", "centro", "--period", "2026-11")
    )
    assert reload(invoice.id).status == "sealed"


def test_errors_are_one_line(demo_sqlite):
    order = paid_order([Line("TAZA", 1)], paid_at=now())
    error = one_line_error(
        comanda(
            ACTIONS,
            "cfdi",
            "issue",
            "--order",
            str(order),
            "--rfc",
            "EKU9003173C8",
            "--name",
            "X",
            "--cp",
            "06000",
            "--regime",
            "601",
            "--use",
            "G03",
        )
    )
    assert "check digit" in error
    error = one_line_error(
        comanda(
            RASA,
            "cfdi",
            "issue",
            "--order",
            str(order),
            "--rfc",
            "EKU9003173C9",
            "--name",
            "ESCUELA KEMPER URGATE SA DE CV",
            "--cp",
            "17500",
            "--regime",
            "612",
            "--use",
            "D01",
        )
    )
    assert "capital regime" in error and "17500" in error
    assert "no invoice 4242" in one_line_error(comanda(ACTIONS, "cfdi", "show", "4242", "--xml"))
    assert "YYYY-MM" in one_line_error(comanda(ACTIONS, "cfdi", "global", "--store", "centro", "--period", "nov"))
    assert "no store" in one_line_error(comanda(ACTIONS, "cfdi", "global", "--store", "sur", "--period", "2026-11"))


def test_staff_release_an_unconfirmed_invoice(demo_sqlite):
    order = paid_order([Line("TAZA", 1)], paid_at=now())
    with pytest.raises(StampUnconfirmed):
        issue_invoice(order, COMPANY, issuer=FailingIssuer(StampUnconfirmed("read timeout")), actor="test")
    [held] = comanda(ACTIONS, "cfdi", "list", "--order", str(order)).stdout.decode().splitlines()
    assert held.split()[4] == "unconfirmed:"
    released = comanda(ACTIONS, "cfdi", "release", "1")
    assert released.returncode == 0 and "ingreso failed" in released.stdout.decode(), released.stderr.decode()
    assert "nothing to release" in one_line_error(comanda(ACTIONS, "cfdi", "release", "1"))
    invoice = issue_invoice(order, COMPANY, issuer=LocalIssuer(), actor="test")
    assert "--amount" in one_line_error(comanda(ACTIONS, "cfdi", "credit-note", str(invoice.id), "--amount", "nan"))
