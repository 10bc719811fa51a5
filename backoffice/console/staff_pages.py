"""`/console/staff`: owners manage the business's accounts (add, role and stores, disable, new password).
A generated password is shown once, on the page that made it, and never again."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.console.pages import bp, page
from backoffice.console.web import Visit, error_page, field, staff_only
from backoffice.http_errors import status_of
from comanda import models as m
from comanda.concurrency import in_thread
from comanda.db import new_session, transaction
from comanda.enums import StaffRole
from comanda.errors import ComandaError, NotFound
from comanda.i18n import t
from comanda.services import staff


def account(session: Session, visit: Visit, staff_id: int) -> m.StaffUser:
    """An account of the owner's business (another business's is NotFound)."""
    user = session.get(m.StaffUser, staff_id)
    if user is None or user.business_id != visit.member.business_id:
        raise NotFound(f"no staff account {staff_id}")
    return user


def listing(visit: Visit) -> Dict[str, Any]:
    with new_session() as session:
        accounts = [
            {
                "id": u.id,
                "email": u.email,
                "name": u.name,
                "role": u.role,
                "stores": [s.id for s in u.stores],
                "language": u.language,
                "active": u.active,
                "last_login_at": u.last_login_at,
                "is_me": u.id == visit.member.id,
            }
            for u in staff.list_staff(session, visit.member.business_id)
        ]
        stores = [
            (s.id, s.name)
            for s in session.execute(
                select(m.Store).where(m.Store.business_id == visit.member.business_id).order_by(m.Store.id)
            ).scalars()
        ]
    return {"accounts": accounts, "stores": stores}


def staff_page(
    request: Request, flash: Optional[str] = None, status: int = 200, password: Optional[Dict[str, str]] = None
) -> HTTPResponse:
    return page(request, "staff.html", status, flash=flash, password=password, **listing(request.ctx.visit))


async def change(request: Request, work: Callable[[Session], Any], done: str) -> HTTPResponse:
    """Run an account change; the page again, with what happened (or why not)."""
    visit: Visit = request.ctx.visit

    def run() -> Any:
        with transaction() as session:
            return work(session)

    try:
        result = await in_thread(run)
    except NotFound:
        return error_page(visit, visit.lang, 404, t("console.error.not_found", visit.lang))
    except ComandaError as exc:
        return staff_page(request, t("console.error.refused", visit.lang, reason=exc.message), status_of(exc))
    email, password = result
    shown = {"email": email, "password": password} if password else None
    return staff_page(request, t(done, visit.lang, email=email), password=shown)


def chosen_stores(request: Request) -> List[str]:
    return [s for s in (request.form.getlist("stores") or []) if s] if request.form else []


@bp.get("/staff")
@staff_only(StaffRole.OWNER)
async def staff_list(request: Request) -> HTTPResponse:
    return await in_thread(staff_page, request)


@bp.post("/staff")
@staff_only(StaffRole.OWNER)
async def staff_add(request: Request) -> HTTPResponse:
    visit: Visit = request.ctx.visit

    def work(session: Session) -> Any:
        user, password = staff.add_staff(
            session,
            visit.actor,
            field(request, "email"),
            field(request, "name"),
            field(request, "role"),
            chosen_stores(request) if field(request, "role") != StaffRole.OWNER else [],
            language=field(request, "language") or None,
            business_id=visit.member.business_id,
        )
        return user.email, password

    return await change(request, work, "console.staff.added")


@bp.post("/staff/<staff_id:int>/access")
@staff_only(StaffRole.OWNER)
async def staff_access(request: Request, staff_id: int) -> HTTPResponse:
    visit: Visit = request.ctx.visit
    role = field(request, "role")

    def work(session: Session) -> Any:
        user = account(session, visit, staff_id)
        staff.change_access(session, visit.actor, user, role, chosen_stores(request) if role != StaffRole.OWNER else [])
        return user.email, None

    return await change(request, work, "console.staff.saved")


@bp.post("/staff/<staff_id:int>/<what:(disable|enable|password)>")
@staff_only(StaffRole.OWNER)
async def staff_state(request: Request, staff_id: int, what: str) -> HTTPResponse:
    visit: Visit = request.ctx.visit

    def work(session: Session) -> Any:
        user = account(session, visit, staff_id)
        if what == "disable":
            staff.disable_staff(session, visit.actor, user)
            return user.email, None
        if what == "enable":
            staff.enable_staff(session, visit.actor, user)
            return user.email, None
        return user.email, staff.set_password(session, visit.actor, user)

    done = {
        "disable": "console.staff.disabled",
        "enable": "console.staff.enabled",
        "password": "console.staff.password_set",
    }
    return await change(request, work, done[what])
