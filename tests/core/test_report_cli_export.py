"""`comanda report …` as an operator runs it (a real process: JSON, CSV, one-line errors) and the daily export:
files of the previous day, one e-mail with a zip to the owners, a row per day claimed once across replicas."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta
from typing import Iterator

import pytest
from sqlalchemy import select, update

from comanda import clock
from comanda import models as m
from comanda.db import new_session, transaction
from comanda.enums import ReportExportStatus
from comanda.services import report_export
from integrations.email.smtp import mailer_from_settings
from tests.helpers.cli import comanda
from tests.helpers.console import add_staff
from tests.helpers.reports import DAY, LATER, scripted_dataset
from tests.helpers.smtp import smtp_server

AFTER_THE_DAY = DAY + timedelta(days=1)
NEXT_MORNING = LATER.replace(day=21, hour=8)  # 02:00 in Mexico City on the 21st: the 20th is over


@pytest.fixture
def dataset(demo) -> Iterator[None]:
    scripted_dataset()
    yield


def test_json_csv_and_text_give_the_same_figures(dataset, tmp_path):
    found = comanda("report", "sales", "--store", "centro", "--from", "2026-11-20", "--by", "payment_method", "--json")
    assert found.returncode == 0, found.stderr
    data = json.loads(found.stdout)
    assert data["summary"]["net"] == "388.00" and data["stores"] == ["centro"]
    assert data["tables"] == {
        "payment_method": [
            {"payment_method": "card", "orders": 3, "gross": "406.00", "share": "1.0000", "average_ticket": "135.33"}
        ]
    }
    target = tmp_path / "hours.csv"
    text = comanda(
        "report", "sales", "--from", "2026-11-20", "--to", "2026-11-20", "--by", "hour", "--csv", str(target)
    )
    assert text.returncode == 0 and "net                          442.00" in text.stdout
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")  # a BOM: spreadsheets read the accents right
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 24 and rows[13] == {
        "hour": "13",
        "orders": "1",
        "gross": "275.00",
        "discounts": "0.00",
        "refunds": "0.00",
        "net": "275.00",
        "average_ticket": "275.00",
        "previous_gross": "0.00",
    }
    assert rows[0]["average_ticket"] == ""
    summary = tmp_path / "summary.csv"
    assert comanda("report", "customers", "--from", "2026-11-20", "--csv", str(summary)).returncode == 0
    assert "repeat_rate,0.3333" in summary.read_text(encoding="utf-8-sig")


def test_bad_input_is_one_line(dataset):
    for args, message in (
        (
            ("report", "customers", "--from", "2026-11-20", "--by", "product"),
            "error: the customers report has no --by product: choose day, customer\n",
        ),
        (
            ("report", "sales", "--from", "20/11/2026"),
            "error: --from must be YYYY-MM-DD, today or yesterday, not '20/11/2026'\n",
        ),
        (
            ("report", "sales", "--from", "2026-11-20", "--to", "2026-11-01"),
            "error: the range ends (2026-11-01) before it starts (2026-11-20)\n",
        ),
        (("report", "stock", "--store", "norte"), "error: no store 'norte'\n"),
    ):
        found = comanda(*args)
        assert (found.returncode, found.stderr) == (2, message), found.stderr


def exported_row() -> m.ReportExport:
    with new_session() as session:
        return session.execute(select(m.ReportExport)).scalar_one()


def test_the_daily_export_writes_the_previous_day_and_mails_the_owners_once(dataset, tmp_path, monkeypatch):
    add_staff("duena@cafe.mx", role="owner")
    add_staff("gerente@cafe.mx", role="manager")
    folder = tmp_path / "exports"
    with smtp_server() as (inbox, port):
        for name, value in {
            "COMANDA_EXPORT_DIR": str(folder),
            "COMANDA_EXPORT_EMAIL": "owners",
            "COMANDA_SMTP_HOST": "127.0.0.1",
            "COMANDA_SMTP_PORT": str(port),
            "COMANDA_SMTP_SECURITY": "none",
            "COMANDA_SMTP_FROM": "reportes@cafe.mx",
        }.items():
            monkeypatch.setenv(name, value)
        clock.set_clock(lambda: NEXT_MORNING)
        try:
            assert report_export.export_due(mailer_from_settings(), owner="replica-a") == 1
            assert report_export.export_due(mailer_from_settings(), owner="replica-b") == 0  # done: nothing due
        finally:
            clock.set_clock(None)
    day = folder / "cafe-esquina" / "2026-11-20"
    assert sorted(p.name for p in day.iterdir()) == ["all", "centro", "roma"]
    sales = list(csv.DictReader(io.StringIO((day / "all" / "sales-summary.csv").read_text(encoding="utf-8-sig"))))
    assert {r["figure"]: r["value"] for r in sales}["net"] == "442.00"
    assert "CAFE-GRANO-250" in (day / "centro" / "stock-low_stock.csv").read_text(encoding="utf-8-sig")
    assert len(list(day.rglob("*.csv"))) == 3 * 18 and not list(day.rglob("*.part"))
    assert inbox.envelopes == [("reportes@cafe.mx", ["duena@cafe.mx"])]  # owners only
    message = inbox.messages[0]
    assert message["Subject"] == "Reportes de Café Esquina del 2026-11-20"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "comanda-cafe-esquina-2026-11-20.zip"
    with zipfile.ZipFile(io.BytesIO(attachment.get_content())) as zipped:
        assert "roma/customers-top.csv" in zipped.namelist() and len(zipped.namelist()) == 54
    row = exported_row()
    assert (row.day, row.status, row.claimed_by, row.emailed_to) == (DAY, "done", "replica-a", "duena@cafe.mx")
    assert len(row.files) == 54


def test_a_claim_is_taken_once_and_taken_over_when_its_holder_died(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("COMANDA_EXPORT_DIR", str(tmp_path))
    clock.set_clock(lambda: NEXT_MORNING)
    try:
        with transaction() as session:
            assert report_export.claim(session, "cafe-esquina", DAY, "replica-a")
        with transaction() as session:
            assert not report_export.claim(session, "cafe-esquina", DAY, "replica-b")  # replica-a holds it
        assert report_export.run_export("cafe-esquina", DAY, None, "replica-b") is None
        clock.set_clock(lambda: NEXT_MORNING + report_export.LEASE + timedelta(seconds=1))  # replica-a died
        assert report_export.export_due(None, owner="replica-b") == 1
    finally:
        clock.set_clock(None)
    row = exported_row()
    assert (row.status, row.claimed_by, row.attempts) == ("done", "replica-b", 2)


def test_a_failed_export_is_recorded_and_tried_again_later(dataset, tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    monkeypatch.setenv("COMANDA_EXPORT_DIR", str(blocked))
    clock.set_clock(lambda: NEXT_MORNING)
    try:
        with pytest.raises(OSError):
            report_export.export_due(None, owner="replica-a")
        row = exported_row()
        assert row.status == ReportExportStatus.FAILED and "NotADirectoryError" in row.error
        with new_session() as session:
            assert report_export.due(session) == []  # not before its retry time
        monkeypatch.setenv("COMANDA_EXPORT_DIR", str(tmp_path / "exports"))
        clock.set_clock(lambda: NEXT_MORNING + report_export.RETRY + timedelta(seconds=1))
        assert report_export.export_due(None, owner="replica-a") == 1
    finally:
        clock.set_clock(None)
    assert exported_row().status == ReportExportStatus.DONE


def test_the_command_exports_a_given_day_and_again_only_when_forced(dataset, tmp_path):
    env = {"COMANDA_EXPORT_DIR": str(tmp_path)}
    first = comanda("report", "export", "--date", "2026-11-20", env=env)
    assert first.returncode == 0 and first.stdout == f"cafe-esquina 2026-11-20: 54 files under {tmp_path}\n"
    again = comanda("report", "export", "--date", "2026-11-20", env=env)
    assert "already exported" in again.stdout
    forced = comanda("report", "export", "--date", "2026-11-20", "--force", env=env)
    assert "54 files" in forced.stdout and exported_row().attempts == 2
    nowhere = comanda("report", "export", "--date", "2026-11-19")
    assert nowhere.returncode == 2 and "COMANDA_EXPORT_DIR" in nowhere.stderr


def test_days_missed_while_no_back_office_ran_are_caught_up(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("COMANDA_EXPORT_DIR", str(tmp_path))
    with transaction() as session:  # exported up to the 17th, then every back office was down
        assert report_export.claim(session, "cafe-esquina", DAY - timedelta(days=3), "replica-a")
        session.execute(update(m.ReportExport).values(status=ReportExportStatus.DONE.value))
    clock.set_clock(lambda: NEXT_MORNING)
    try:
        with new_session() as session:
            assert report_export.due(session) == [
                ("cafe-esquina", DAY - timedelta(days=2)),
                ("cafe-esquina", DAY - timedelta(days=1)),
                ("cafe-esquina", DAY),
            ]
        assert report_export.export_due(None, owner="replica-a") == 3
        with new_session() as session:
            assert report_export.due(session) == []
    finally:
        clock.set_clock(None)
    assert sorted(p.name for p in (tmp_path / "cafe-esquina").iterdir()) == [
        "2026-11-18",
        "2026-11-19",
        "2026-11-20",
    ]  # the 17th was exported before (elsewhere)
