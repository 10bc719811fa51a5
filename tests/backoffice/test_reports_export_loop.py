"""The daily export as the back office runs it: two replicas on one database, both looking for yesterday's
export every half second; the day is written once, by one of them, and the owner gets one e-mail."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from comanda import clock
from comanda import models as m
from comanda.db import new_session
from comanda.enums import ReportExportStatus
from tests.helpers.console import add_staff
from tests.helpers.smtp import smtp_server
from tests.helpers.waiting import wait_for


def exports() -> list:
    with new_session() as session:
        return list(session.execute(select(m.ReportExport)).scalars())


def test_two_back_offices_export_yesterday_once(offices, tmp_path):
    add_staff("duena@cafe.mx", role="owner")
    yesterday = clock.local_date("America/Mexico_City") - timedelta(days=1)
    with smtp_server() as (inbox, port):
        settings = {
            "COMANDA_EXPORT_DIR": str(tmp_path / "exports"),
            "COMANDA_EXPORT_EMAIL": "owners",
            "COMANDA_EXPORT_POLL_SECONDS": "0.5",
            "COMANDA_SMTP_HOST": "127.0.0.1",
            "COMANDA_SMTP_PORT": str(port),
            "COMANDA_SMTP_SECURITY": "none",
        }
        offices.start(**settings)
        offices.start(**settings)
        assert wait_for(lambda: [row.status for row in exports()] == [ReportExportStatus.DONE], timeout=60)
        assert wait_for(lambda: len(inbox.messages) == 1, timeout=15)
        offices.stop()  # every round after the first found the day done: still one e-mail
    (row,) = exports()
    assert row.day == yesterday and row.attempts == 1 and len(row.files) == 54
    day = tmp_path / "exports" / "cafe-esquina" / yesterday.isoformat()
    assert len(list(day.rglob("*.csv"))) == 54
    assert len(inbox.messages) == 1 and inbox.envelopes[0][1] == ["duena@cafe.mx"]
