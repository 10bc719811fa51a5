"""What every console page shares: templates in the staff member's language, the session cookie, the CSRF
check, the client's address, and the security headers.

A console request carries the session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS); a
state-changing one also carries the session's CSRF token, in the ``X-CSRF-Token`` header (htmx sends it
on every request: base.html) or the ``csrf_token`` form field. Without it: 403.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from functools import cache, wraps
from pathlib import Path
from typing import Any, Callable, Coroutine, Dict, List, Optional, Tuple
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from comanda import clock
from comanda.concurrency import in_thread
from comanda.db import transaction
from comanda.enums import ConsentKind, HandoffStatus, OrderStatus, PurchaseOrderStatus, ReturnStatus, StaffRole
from comanda.i18n import LANGUAGES, t
from comanda.money import format_money
from comanda.services import staff
from comanda.services.audit import Actor
from comanda.services.staff import StaffMember
from comanda.settings import setting

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SESSION_COOKIE = "comanda_session"
LOGIN_CSRF_COOKIE = "comanda_login_csrf"  # the login form's token: there is no session yet
COOKIE_PATH = "/console"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'"
)
Handler = Callable[..., Coroutine[Any, Any, Optional[HTTPResponse]]]


@cache
def static_url(name: str) -> str:
    """``/console/static/<name>?v=<content hash>``: a new file is a new URL, so browsers never mix versions."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"/console/static/{name}?v={digest}"


@pass_context
def _translate(context: Any, key: str, **params: Any) -> str:
    return t(key, context["lang"], **params)


def _local_time(iso: str, tz_name: str) -> str:
    """An ISO time as the business reads it: "14:05" today, "03/12 14:05" before."""
    when = datetime.fromisoformat(iso).astimezone(ZoneInfo(tz_name))
    return when.strftime("%H:%M" if when.date() == clock.local_date(tz_name) else "%d/%m %H:%M")


def _minutes_seconds(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), undefined=StrictUndefined
)
templates.globals.update(t=_translate, static=static_url, languages=LANGUAGES, roles=StaffRole)
# Templates compare statuses with their enums, never with bare strings (tests/core/test_vocabulary.py).
templates.globals.update(
    {enum.__name__: enum for enum in (ConsentKind, HandoffStatus, OrderStatus, PurchaseOrderStatus, ReturnStatus)}
)
templates.filters.update(
    money=format_money, clock=_minutes_seconds, local_time=_local_time, urlquote=lambda v: quote(str(v), safe="")
)


def render(name: str, **context: Any) -> str:
    return templates.get_template(name).render(now=clock.now(), **context)


def html(body: str, status: int = 200, headers: Optional[dict] = None) -> HTTPResponse:
    return response.html(body, status=status, headers={"Cache-Control": "no-store", **(headers or {})})


def security_headers(request: Request, resp: HTTPResponse) -> None:
    """Console and board pages: scripts and styles only from the back office itself, no framing of the
    console, no sniffing, no referrer leaving the site."""
    path = request.path
    if not (path.startswith("/console") or path.startswith("/board")):
        return
    resp.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    if path.startswith("/console"):
        resp.headers.setdefault("X-Frame-Options", "DENY")


# --- who is asking -------------------------------------------------------------------------------


def client_ip(request: Request) -> str:
    """The client's address: from the proxies' X-Forwarded-For when COMANDA_BACKOFFICE_PROXIES says how
    many stand in front (Sanic's PROXIES_COUNT), else the socket's peer."""
    return (request.remote_addr or request.ip or "unknown")[:45]


def secure_cookies(request: Request) -> bool:
    mode = setting("COMANDA_CONSOLE_SECURE_COOKIE")
    return mode == "1" or (mode == "auto" and request.scheme == "https")


def set_cookie(request: Request, resp: HTTPResponse, name: str, value: str, max_age: int) -> None:
    resp.cookies[name] = value
    cookie = resp.cookies[name]
    cookie["path"] = COOKIE_PATH
    cookie["httponly"] = True
    cookie["samesite"] = "Lax"
    cookie["max-age"] = max_age
    if secure_cookies(request):
        cookie["secure"] = True


def clear_cookie(request: Request, resp: HTTPResponse, name: str) -> None:
    set_cookie(request, resp, name, "", 0)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def field(request: Request, name: str, default: str = "") -> str:
    """A form field (urlencoded or multipart), else a query argument."""
    form = request.form if request.method in UNSAFE_METHODS else None
    value = (form.get(name) if form else None) or request.args.get(name)
    return str(value) if value is not None else default


def safe_next(target: Optional[str], default: str = "/console") -> str:
    """Only a path of the console itself: a login link cannot send anyone elsewhere."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console") or target.startswith("//"):
        return default
    return target


def request_language(request: Request) -> str:
    """Before login: ?lang=, else the browser's first language we speak, else Spanish."""
    asked = request.args.get("lang") or (
        request.form.get("lang") if request.method == "POST" and request.form else None
    )
    if asked in LANGUAGES:
        return str(asked)
    for part in (request.headers.get("Accept-Language") or "").split(","):
        code = part.split(";")[0].strip()[:2].lower()
        if code in LANGUAGES:
            return code
    return "es"


@dataclass(frozen=True)
class Visit:
    """A logged-in request: the member, their session token and where they came from."""

    member: StaffMember
    token: str
    ip: str

    @property
    def csrf(self) -> str:
        return staff.csrf_token(self.token)

    @property
    def actor(self) -> Actor:
        return self.member.actor(self.ip)

    @property
    def lang(self) -> str:
        return self.member.language


def load_member(token: Optional[str]) -> Optional[StaffMember]:
    with transaction() as session:
        return staff.session_member(session, token)


def login_redirect(request: Request) -> HTTPResponse:
    target = f"/console/login?next={quote(request.path + ('?' + request.query_string if request.query_string else ''))}"
    if is_htmx(request):
        return response.empty(status=401, headers={"HX-Redirect": target})
    if request.method in UNSAFE_METHODS or request.headers.get("Accept") == "text/event-stream":
        return response.text("log in first", status=401)
    return response.redirect(target, status=303)


# The console's sections: path, the label's key, who sees it; a path of None is a page still to come.
NAV: Tuple[Tuple[str, Optional[str], Tuple[StaffRole, ...]], ...] = (
    ("inbox", "/console/inbox", tuple(StaffRole)),
    ("queue", "/console/queue", tuple(StaffRole)),
    ("returns", "/console/returns", tuple(StaffRole)),
    ("review", "/console/review", (StaffRole.OWNER, StaffRole.MANAGER)),
    ("purchasing", "/console/purchasing", tuple(StaffRole)),  # staff receive deliveries; buyers send
    ("stock", "/console/stock/count", tuple(StaffRole)),
    ("reports", "/console/reports", (StaffRole.OWNER, StaffRole.MANAGER)),
    ("customers", "/console/customers", (StaffRole.OWNER, StaffRole.MANAGER)),
    ("staff", "/console/staff", (StaffRole.OWNER,)),
)


def navigation(member: StaffMember) -> List[Dict[str, Any]]:
    return [{"key": key, "path": path} for key, path, roles in NAV if member.role in roles]


def staff_context(visit: Visit, path: str) -> Dict[str, Any]:
    """What every logged-in page's layout needs."""
    return {
        "me": visit.member,
        "visit": visit,
        "csrf": visit.csrf,
        "lang": visit.lang,
        "nav": navigation(visit.member),
        "path": path,
    }


def error_page(visit: Optional[Visit], lang: str, status: int, message: str, path: str = "") -> HTTPResponse:
    context = staff_context(visit, path) if visit else {"me": None, "lang": lang}
    return html(render("error.html", **context, message=message, status=status), status)


def staff_only(*roles: StaffRole) -> Callable[[Handler], Handler]:
    """A console handler for logged-in staff (and, when given, these roles only). Unsafe methods need the
    session's CSRF token. The handler finds the visit at ``request.ctx.visit``."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def checked(request: Request, *args: Any, **kwargs: Any) -> Optional[HTTPResponse]:
            token = request.cookies.get(SESSION_COOKIE)
            member = await in_thread(load_member, token)
            if member is None or token is None:
                return login_redirect(request)
            visit = Visit(member, token, client_ip(request))
            if request.method in UNSAFE_METHODS:
                presented = request.headers.get("X-CSRF-Token") or field(request, "csrf_token")
                if not staff.csrf_matches(token, presented):
                    return error_page(visit, visit.lang, 403, t("console.error.csrf", visit.lang))
            if roles and member.role not in roles:
                return error_page(visit, visit.lang, 403, t("console.error.forbidden", visit.lang))
            request.ctx.visit = visit
            return await handler(request, *args, **kwargs)

        return checked

    return wrap


def login_csrf_matches(request: Request) -> bool:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    presented = field(request, "csrf_token")
    return bool(expected) and bool(presented) and hmac.compare_digest(expected, presented)
