"""The daily export: each business's reports of its previous local day as CSV files, written under
COMANDA_EXPORT_DIR and/or e-mailed (one zip) to COMANDA_EXPORT_EMAIL, for owners who keep their own
spreadsheet or BI tool.

Replica-safe: a ``report_exports`` row per business and day is the claim. The back office whose insert wins
writes the day; the others see the row and leave it. A claim holds for LEASE: a writer that dies leaves a
running row whose lease runs out, and the next round anywhere takes it over. A failure (a full disk, an SMTP
server down) is recorded and tried again later, with a growing pause, up to MAX_ATTEMPTS times. Days missed
while no back office ran (since the first export, up to CATCH_UP_DAYS back) are exported when one runs again.
"""

from __future__ import annotations

import io
import os
import socket
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.db import insert_unless_duplicate, new_session, transaction
from comanda.enums import ReportExportStatus, StaffRole
from comanda.errors import ComandaError, ConfigError, NotFound
from comanda.i18n import t
from comanda.services import reports
from comanda.services.cfdi.delivery import Mailer
from comanda.settings import setting

LEASE = timedelta(minutes=15)
RETRY = timedelta(minutes=10)  # times the attempts so far, up to 6 hours
MAX_ATTEMPTS = 5
CATCH_UP_DAYS = 7  # days missed while no back office ran are exported when one runs again, this far back
S = ReportExportStatus


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


@dataclass
class ExportResult:
    business_id: str
    day: date
    files: List[str]
    emailed_to: List[str]


def configured() -> bool:
    """Whether the daily export has somewhere to go."""
    return bool(setting("COMANDA_EXPORT_DIR") or setting("COMANDA_EXPORT_EMAIL"))


def recipients(session: Session, business_id: str) -> List[str]:
    """COMANDA_EXPORT_EMAIL: ``owners`` (the business's active owners) or a list of addresses."""
    wanted = setting("COMANDA_EXPORT_EMAIL").strip()
    if wanted.lower() == "owners":
        return list(
            session.execute(
                select(m.StaffUser.email)
                .where(
                    m.StaffUser.business_id == business_id,
                    m.StaffUser.role == StaffRole.OWNER.value,
                    m.StaffUser.active.is_(True),
                )
                .order_by(m.StaffUser.email)
            ).scalars()
        )
    return [address.strip() for address in wanted.split(",") if address.strip()]


# --- the claim -----------------------------------------------------------------------------------------------


def claim(session: Session, business_id: str, day: date, owner: str, force: bool = False) -> bool:
    """Take the day's export for ``owner``: a new row, or one whose holder died or whose retry is due (any row
    with ``force``). False when someone else has it or it is done."""
    now = clock.now()
    row = m.ReportExport(
        business_id=business_id, day=day, status=S.RUNNING.value, claimed_by=owner, lease_until=now + LEASE, files=[]
    )
    if insert_unless_duplicate(session, row) is not None:
        return True
    table = m.ReportExport.__table__
    conditions = [table.c.business_id == business_id, table.c.day == day]
    if not force:
        conditions.append(
            or_(
                and_(table.c.status == S.RUNNING.value, table.c.lease_until < now),
                and_(table.c.status == S.FAILED.value, table.c.lease_until < now, table.c.attempts < MAX_ATTEMPTS),
            )
        )
    taken = session.execute(
        update(table)
        .where(*conditions)
        .values(
            status=S.RUNNING.value, claimed_by=owner, attempts=table.c.attempts + 1, lease_until=now + LEASE, error=None
        )
    ).rowcount
    return taken == 1


def _settle(business_id: str, day: date, owner: str, **values: object) -> None:
    table = m.ReportExport.__table__
    with transaction() as session:
        session.execute(
            update(table)
            .where(table.c.business_id == business_id, table.c.day == day, table.c.claimed_by == owner)
            .values(**values)
        )


# --- the files ---------------------------------------------------------------------------------------------


def day_files(session: Session, business_id: str, day: date) -> Dict[str, str]:
    """Every report table of the day as CSV: ``all/…`` for the whole business, ``<store>/…`` for each store."""
    stores = list(
        session.execute(
            select(m.Store.id).where(m.Store.business_id == business_id, m.Store.active.is_(True)).order_by(m.Store.id)
        ).scalars()
    )
    if not stores:
        raise NotFound(f"business {business_id!r} has no active store")
    files: Dict[str, str] = {}
    for scope, store_ids in [("all", stores), *((s, [s]) for s in stores)]:
        period = reports.period(session, store_ids, day, day)
        for kind in reports.REPORTS:
            for name, text in reports.csv_files(reports.build(session, kind, period)).items():
                files[f"{scope}/{name}"] = text
    return files


def write_files(folder: Path, business_id: str, day: date, files: Dict[str, str]) -> List[str]:
    """Write under ``<folder>/<business>/<day>/``, each file whole (written aside, then renamed into place)."""
    written = []
    for name, text in sorted(files.items()):
        path = folder / business_id / day.isoformat() / name
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.part")
        draft.write_text(text, encoding=reports.CSV_ENCODING, newline="")
        os.replace(draft, path)
        written.append(str(path))
    return written


def export_email(business: m.Business, day: date, files: Dict[str, str], to: List[str]) -> EmailMessage:
    language = business.default_language
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, text in sorted(files.items()):
            zipped.writestr(name, text.encode(reports.CSV_ENCODING))
    message = EmailMessage()
    message["To"] = ", ".join(to)
    message["Subject"] = t("reports.email.subject", language, business=business.name, day=day.isoformat())
    message.set_content(
        t("reports.email.body", language, business=business.name, day=day.isoformat(), files=len(files))
    )
    message.add_attachment(
        archive.getvalue(),
        maintype="application",
        subtype="zip",
        filename=f"comanda-{business.id}-{day.isoformat()}.zip",
    )
    return message


# --- one export, and the loop's round ----------------------------------------------------------------------


def run_export(
    business_id: str, day: date, mailer: Optional[Mailer], owner: str, force: bool = False
) -> Optional[ExportResult]:
    """Export one business's day when this process wins its claim (None when another has it or it is done).
    A failure is recorded on the row (tried again later) and raised."""
    folder = setting("COMANDA_EXPORT_DIR")
    with transaction() as session:
        business = session.get(m.Business, business_id)
        if business is None:
            raise NotFound(f"no business {business_id!r}")
        to = recipients(session, business_id)
        if not folder and not to:
            raise ConfigError("set COMANDA_EXPORT_DIR and/or COMANDA_EXPORT_EMAIL: the export has nowhere to go")
        if to and mailer is None:
            raise ConfigError("COMANDA_EXPORT_EMAIL needs COMANDA_SMTP_HOST: no SMTP server is set")
        if not claim(session, business_id, day, owner, force):
            return None
    try:
        with new_session() as session:
            files = day_files(session, business_id, day)
            business = session.get(m.Business, business_id)
            message = export_email(business, day, files, to) if to else None
        written = write_files(Path(folder), business_id, day, files) if folder else []
        if message is not None and mailer is not None:
            mailer.send(message)
    except Exception as exc:
        with new_session() as session:
            attempts = session.execute(
                select(m.ReportExport.attempts).where(
                    m.ReportExport.business_id == business_id, m.ReportExport.day == day
                )
            ).scalar_one()
        reason = exc.message if isinstance(exc, ComandaError) else f"{type(exc).__name__}: {exc}"
        _settle(
            business_id,
            day,
            owner,
            status=S.FAILED.value,
            error=reason[:1000],
            lease_until=clock.now() + min(RETRY * attempts, timedelta(hours=6)),
        )
        raise
    _settle(
        business_id,
        day,
        owner,
        status=S.DONE.value,
        files=written,
        emailed_to=", ".join(to)[:1000] or None,
        finished_at=clock.now(),
    )
    return ExportResult(business_id, day, written, to)


def due(session: Session) -> List[Tuple[str, date]]:
    """Each business's finished days not exported yet, oldest first: yesterday, and the days missed since the
    first export while no back office ran (up to CATCH_UP_DAYS back); a day that is done or that someone is
    on is left out."""
    found = []
    now = clock.now()
    for business_id, zone in session.execute(select(m.Business.id, m.Business.timezone).order_by(m.Business.id)):
        yesterday = clock.local_date(zone) - timedelta(days=1)
        rows = {
            row.day: row
            for row in session.execute(
                select(m.ReportExport).where(
                    m.ReportExport.business_id == business_id,
                    m.ReportExport.day >= yesterday - timedelta(days=CATCH_UP_DAYS - 1),
                )
            ).scalars()
        }
        first = min(rows, default=yesterday)
        for offset in range((yesterday - first).days, -1, -1):
            day = yesterday - timedelta(days=offset)
            row = rows.get(day)
            if row is None or (
                row.lease_until < now
                and (row.status == S.RUNNING or (row.status == S.FAILED and row.attempts < MAX_ATTEMPTS))
            ):
                found.append((business_id, day))
    return found


def export_due(mailer: Optional[Mailer], owner: Optional[str] = None) -> int:
    """The background loop's round: export every finished day not exported yet; how many this process wrote."""
    if not configured():
        return 0
    with new_session() as session:
        days = due(session)
    done = 0
    for business_id, day in days:
        if run_export(business_id, day, mailer, owner or process_name()) is not None:
            done += 1
    return done
