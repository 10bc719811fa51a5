"""Staff accounts and what they may see: passwords (argon2id), console sessions, personal API tokens,
login throttling, and the per-store scope every staff query goes through.

Sessions, tokens and login attempts live in the database, so every back-office replica agrees on who
is logged in and how many wrong passwords an account or an address has tried. Secrets never are stored
as given: a password as its argon2id hash, a session or API token as its SHA-256 (they are long random
strings, so a fast hash is enough, as for GitHub's tokens).

Access: owners see every store of their business; managers and staff the stores they are given. A
record of another store is ``NotFound`` (404), never "forbidden": a person cannot learn that it exists.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, FrozenSet, Iterable, List, Optional, Sequence, Tuple, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from comanda import clock
from comanda import models as m
from comanda.enums import Language, LoginOutcome, SessionEndReason, StaffRole, values_in
from comanda.errors import ComandaError, InvalidInput, NotFound
from comanda.services import audit
from comanda.services.audit import Actor
from comanda.settings import setting_int

PASSWORD_MIN_LENGTH = 10
TOKEN_PREFIX = "cst_"  # "Comanda staff token": recognisable in logs and secret scanners
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at / last_used_at are written at most this often
LOGIN_ATTEMPTS_KEPT = timedelta(days=30)
COUNTED_FAILURES = values_in((LoginOutcome.WRONG_PASSWORD, LoginOutcome.UNKNOWN_ACCOUNT))
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
Q = TypeVar("Q", bound=Select)


class AccountExists(ComandaError):
    code = "account_exists"


class Forbidden(ComandaError):
    """The person's role does not allow the action (their stores are another matter: NotFound)."""

    code = "forbidden"


@dataclass(frozen=True)
class StaffMember:
    """A logged-in (or token-holding) staff member, as every access check sees them."""

    id: int
    email: str
    name: str
    role: StaffRole
    business_id: str
    store_ids: FrozenSet[str]
    language: str
    sound_on: bool

    @property
    def is_owner(self) -> bool:
        return self.role == StaffRole.OWNER

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.split() else self.email

    def actor(self, ip: Optional[str] = None) -> Actor:
        return Actor(f"staff:{self.id}", ip)

    def sees(self, store_id: Optional[str]) -> bool:
        return store_id in self.store_ids


def member(session: Session, user: m.StaffUser) -> StaffMember:
    if user.role == StaffRole.OWNER:
        stores = session.execute(select(m.Store.id).where(m.Store.business_id == user.business_id)).scalars()
    else:
        stores = session.execute(
            select(m.StaffStoreAccess.store_id).where(m.StaffStoreAccess.staff_id == user.id)
        ).scalars()
    return StaffMember(
        id=user.id,
        email=user.email,
        name=user.name,
        role=StaffRole(user.role),
        business_id=user.business_id,
        store_ids=frozenset(stores),
        language=user.language,
        sound_on=user.sound_on,
    )


# --- access: every staff query is scoped by the member's stores -------------------------------------


def scoped(query: Q, store_column: Any, who: StaffMember) -> Q:
    """``query`` limited to the rows of the stores ``who`` works at."""
    return query.where(store_column.in_(sorted(who.store_ids)))


def visible_store(who: StaffMember, store_id: str) -> str:
    """The store id when ``who`` works there; NotFound otherwise (an unknown store looks the same)."""
    if not who.sees(store_id):
        raise NotFound(f"no store {store_id!r}", store_id=store_id)
    return store_id


def store_filter(who: StaffMember, store_id: Optional[str]) -> List[str]:
    """The stores a list shows: the one asked for (when visible), else all of the member's."""
    return [visible_store(who, store_id)] if store_id else sorted(who.store_ids)


def visible_order(session: Session, who: StaffMember, order_id: int, lock: bool = False) -> m.Order:
    query = scoped(select(m.Order).where(m.Order.id == order_id), m.Order.store_id, who)
    order = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id}", order_id=order_id)
    return order


def visible_conversation(session: Session, who: StaffMember, conversation_id: str) -> m.Conversation:
    query = scoped(select(m.Conversation).where(m.Conversation.id == conversation_id), m.Conversation.store_id, who)
    conversation = session.execute(query).scalar_one_or_none()
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id!r}", conversation_id=conversation_id)
    return conversation


def visible_customers(query: Q, who: StaffMember) -> Q:
    """Customers are the business's, not a store's: staff see those who talked to or bought at one of
    their stores."""
    stores = sorted(who.store_ids)
    talked = select(m.Conversation.id).where(
        m.Conversation.customer_id == m.Customer.id, m.Conversation.store_id.in_(stores)
    )
    bought = select(m.Order.id).where(m.Order.customer_id == m.Customer.id, m.Order.store_id.in_(stores))
    return query.where(or_(talked.exists(), bought.exists()))


def visible_customer(session: Session, who: StaffMember, customer_id: int) -> m.Customer:
    customer = session.execute(
        visible_customers(select(m.Customer).where(m.Customer.id == customer_id), who)
    ).scalar_one_or_none()
    if customer is None:
        raise NotFound(f"no customer {customer_id}", customer_id=customer_id)
    return customer


def require_role(who: StaffMember, *roles: StaffRole) -> None:
    if who.role not in roles:
        raise Forbidden(f"{who.email} is {who.role.value}: this needs {' or '.join(r.value for r in roles)}")


# --- passwords -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's RFC 9106 defaults


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked against when the account does not exist, so a wrong e-mail costs as long as a wrong password."""
    return _hasher().hash(secrets.token_urlsafe(16))


def generate_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 random bits


def check_new_password(password: str) -> str:
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(f"a password needs at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidInput("a password may have at most 1024 characters")
    return password


def _verify(password_hash: Optional[str], password: str) -> bool:
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False


# --- accounts ------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_staff(session: Session, email: str) -> m.StaffUser:
    user = session.execute(select(m.StaffUser).where(m.StaffUser.email == normalize_email(email))).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no staff account {normalize_email(email)!r}", email=email)
    return user


def _business_of(session: Session, business_id: Optional[str], store_ids: Sequence[str]) -> str:
    if business_id:
        if session.get(m.Business, business_id) is None:
            raise NotFound(f"no business {business_id!r}")
        return business_id
    if store_ids:
        store = session.get(m.Store, store_ids[0])
        if store is None:
            raise InvalidInput(f"no store {store_ids[0]!r}")
        return store.business_id
    businesses = session.execute(select(m.Business.id).limit(2)).scalars().all()
    if len(businesses) != 1:
        raise InvalidInput("say which business (there is none, or more than one)")
    return businesses[0]


def _stores(session: Session, business_id: str, role: StaffRole, store_ids: Sequence[str]) -> List[m.Store]:
    if role == StaffRole.OWNER:
        if store_ids:
            raise InvalidInput("owners see every store: leave the stores out")
        return []
    if not store_ids:
        raise InvalidInput("managers and staff work at one store at least: say which (e.g. centro,roma)")
    found = {
        s.id: s
        for s in session.execute(
            select(m.Store).where(m.Store.business_id == business_id, m.Store.id.in_(list(store_ids)))
        ).scalars()
    }
    unknown = [s for s in store_ids if s not in found]
    if unknown:
        raise InvalidInput(f"no store {', '.join(unknown)} in this business")
    return [found[s] for s in dict.fromkeys(store_ids)]


def parse_role(role: str) -> StaffRole:
    parsed = StaffRole.parse(role)
    if parsed is None:
        raise InvalidInput(f"role must be one of {', '.join(StaffRole.values())}, not {role!r}")
    return parsed


def parse_language(language: str) -> str:
    if Language.parse(language) is None:
        raise InvalidInput(f"language must be one of {', '.join(Language.values())}, not {language!r}")
    return language


def add_staff(
    session: Session,
    actor: Actor,
    email: str,
    name: str,
    role: str,
    store_ids: Sequence[str] = (),
    password: Optional[str] = None,
    language: Optional[str] = None,
    business_id: Optional[str] = None,
) -> Tuple[m.StaffUser, Optional[str]]:
    """A new account, and the password generated for it (None when one was given)."""
    email = normalize_email(email)
    if not EMAIL.fullmatch(email) or len(email) > 320:
        raise InvalidInput(f"{email!r} is not an e-mail address")
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise InvalidInput("a name is needed (at most 200 characters)")
    parsed_role = parse_role(role)
    business = _business_of(session, business_id, store_ids)
    stores = _stores(session, business, parsed_role, store_ids)
    if session.execute(select(m.StaffUser.id).where(m.StaffUser.email == email)).first():
        raise AccountExists(f"there is an account for {email} already", email=email)
    generated = None if password else generate_password()
    user = m.StaffUser(
        business_id=business,
        email=email,
        name=name,
        role=parsed_role.value,
        password_hash=_hasher().hash(check_new_password(password) if password else str(generated)),
        active=True,
        language=parse_language(language or session.get(m.Business, business).default_language),
        sound_on=True,
    )
    user.stores = stores
    session.add(user)
    session.flush()
    audit.record(
        session, actor, "staff.added", "staff_user", user.id, email=email, role=user.role, stores=list(store_ids)
    )
    return user, generated


def create_demo_owner(session: Session, actor: Actor) -> Optional[Tuple[str, str]]:
    """The first account of a database that has a business and no staff yet: an owner with a generated
    password, as (e-mail, password); None when there are accounts already (or no business)."""
    if session.execute(select(m.StaffUser.id).limit(1)).first():
        return None
    business = session.execute(select(m.Business).order_by(m.Business.created_at).limit(1)).scalar_one_or_none()
    if business is None:
        return None
    user, password = add_staff(
        session, actor, f"owner@{business.id}.example", "Demo Owner", StaffRole.OWNER.value, business_id=business.id
    )
    assert password is not None  # none was given: one was generated
    return user.email, password


def list_staff(session: Session, business_id: Optional[str] = None) -> List[m.StaffUser]:
    rank = case({role.value: position for position, role in enumerate(StaffRole)}, value=m.StaffUser.role)
    query = select(m.StaffUser).order_by(rank, m.StaffUser.email)
    if business_id:
        query = query.where(m.StaffUser.business_id == business_id)
    return list(session.execute(query).scalars())


def _check_not_last_owner(session: Session, user: m.StaffUser) -> None:
    if user.role != StaffRole.OWNER or not user.active:
        return
    owners = session.execute(
        select(func.count())
        .select_from(m.StaffUser)
        .where(
            m.StaffUser.business_id == user.business_id,
            m.StaffUser.role == StaffRole.OWNER.value,
            m.StaffUser.active.is_(True),
        )
    ).scalar_one()
    if owners <= 1:
        raise InvalidInput(f"{user.email} is the business's last active owner: add another owner first")


def end_sessions(session: Session, staff_id: int, reason: SessionEndReason) -> int:
    return session.execute(
        update(m.StaffSession)
        .where(m.StaffSession.staff_id == staff_id, m.StaffSession.ended_at.is_(None))
        .values(ended_at=clock.now(), end_reason=reason.value)
    ).rowcount


def disable_staff(session: Session, actor: Actor, user: m.StaffUser) -> m.StaffUser:
    """The account can no longer log in nor use its tokens; its open sessions end now."""
    if not user.active:
        return user
    _check_not_last_owner(session, user)
    user.active, user.disabled_at = False, clock.now()
    ended = end_sessions(session, user.id, SessionEndReason.DISABLED)
    audit.record(session, actor, "staff.disabled", "staff_user", user.id, email=user.email, sessions_ended=ended)
    return user


def enable_staff(session: Session, actor: Actor, user: m.StaffUser) -> m.StaffUser:
    if user.active:
        return user
    user.active, user.disabled_at = True, None
    audit.record(session, actor, "staff.enabled", "staff_user", user.id, email=user.email)
    return user


def set_password(session: Session, actor: Actor, user: m.StaffUser, password: Optional[str] = None) -> Optional[str]:
    """A new password (generated and returned when none is given); the account's sessions end."""
    generated = None if password else generate_password()
    user.password_hash = _hasher().hash(check_new_password(password) if password else str(generated))
    end_sessions(session, user.id, SessionEndReason.PASSWORD_CHANGED)
    audit.record(session, actor, "staff.password_set", "staff_user", user.id, email=user.email)
    return generated


def change_access(
    session: Session, actor: Actor, user: m.StaffUser, role: str, store_ids: Sequence[str]
) -> m.StaffUser:
    """A new role and list of stores (owners: none, they see all)."""
    parsed = parse_role(role)
    if parsed != StaffRole.OWNER:
        _check_not_last_owner(session, user)
    user.stores = _stores(session, user.business_id, parsed, store_ids)
    user.role = parsed.value
    session.flush()
    audit.record(
        session, actor, "staff.access_changed", "staff_user", user.id, role=parsed.value, stores=list(store_ids)
    )
    return user


def set_preferences(
    session: Session, who: StaffMember, actor: Actor, language: Optional[str] = None, sound_on: Optional[bool] = None
) -> None:
    user = session.get(m.StaffUser, who.id)
    if language is not None:
        user.language = parse_language(language)
    if sound_on is not None:
        user.sound_on = sound_on
    audit.record(session, actor, "staff.preferences", "staff_user", who.id, language=language, sound_on=sound_on)


# --- console sessions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    token: Optional[str] = None  # the session cookie's value, on success
    member: Optional[StaffMember] = None
    retry_after_seconds: int = 0  # when throttled


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The session's CSRF token: derived from the cookie, which page scripts cannot read (HttpOnly)."""
    return hmac.new(session_token.encode(), b"comanda-console-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, presented: Optional[str]) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(session_token), str(presented))


def _throttle_window() -> timedelta:
    return timedelta(minutes=setting_int("COMANDA_LOGIN_THROTTLE_MINUTES"))


def _failures(session: Session, column: Any, value: str, since: datetime) -> Tuple[int, Optional[datetime]]:
    count, oldest = session.execute(
        select(func.count(), func.min(m.LoginAttempt.created_at)).where(
            column == value, m.LoginAttempt.outcome.in_(COUNTED_FAILURES), m.LoginAttempt.created_at >= since
        )
    ).one()
    return count, oldest


def throttled_for(session: Session, email: str, ip: str) -> int:
    """Seconds until this account or address may try again (0: now). Counted in the database, so all
    replicas share one count; a handful of attempts racing in at the same moment may pass together."""
    now, window = clock.now(), _throttle_window()
    limits = (
        (m.LoginAttempt.email, email, setting_int("COMANDA_LOGIN_MAX_FAILURES_PER_ACCOUNT")),
        (m.LoginAttempt.ip, ip, setting_int("COMANDA_LOGIN_MAX_FAILURES_PER_ADDRESS")),
    )
    wait = 0
    for column, value, limit in limits:
        count, oldest = _failures(session, column, value, now - window)
        if count >= limit and oldest is not None:
            wait = max(wait, int((oldest + window - now).total_seconds()) + 1)
    return wait


def _attempt(session: Session, email: str, ip: str, outcome: LoginOutcome) -> None:
    now = clock.now()
    session.execute(delete(m.LoginAttempt).where(m.LoginAttempt.created_at < now - LOGIN_ATTEMPTS_KEPT))
    session.add(m.LoginAttempt(email=email[:320], ip=ip[:45], outcome=outcome.value, created_at=now))


def attempt_login(session: Session, email: str, password: str, ip: str, user_agent: str = "") -> LoginResult:
    """Check a password and open a session. Every attempt is recorded (the caller commits it whatever the
    outcome); wrong passwords and unknown accounts count towards the per-account and per-address limits,
    and a throttled attempt is refused before the password is even checked."""
    email = normalize_email(email)
    wait = throttled_for(session, email, ip)
    if wait:
        _attempt(session, email, ip, LoginOutcome.THROTTLED)
        return LoginResult(LoginOutcome.THROTTLED, retry_after_seconds=wait)
    user = session.execute(select(m.StaffUser).where(m.StaffUser.email == email)).scalar_one_or_none()
    if not _verify(user.password_hash if user else None, password) or user is None:
        outcome = LoginOutcome.WRONG_PASSWORD if user else LoginOutcome.UNKNOWN_ACCOUNT
        _attempt(session, email, ip, outcome)
        return LoginResult(outcome)
    if not user.active:
        _attempt(session, email, ip, LoginOutcome.DISABLED)
        return LoginResult(LoginOutcome.DISABLED)
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
    _attempt(session, email, ip, LoginOutcome.SUCCEEDED)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        m.StaffSession(
            id=_digest(token),
            staff_id=user.id,
            ip=ip[:45],
            user_agent=user_agent[:300],
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=setting_int("COMANDA_CONSOLE_SESSION_HOURS")),
        )
    )
    user.last_login_at = now
    audit.record(session, Actor(f"staff:{user.id}", ip), "staff.login", "staff_user", user.id)
    return LoginResult(LoginOutcome.SUCCEEDED, token=token, member=member(session, user))


def session_member(session: Session, token: Optional[str]) -> Optional[StaffMember]:
    """The staff member a session cookie belongs to, or None: unknown, ended, idle too long, past its
    absolute lifetime, or its account disabled. Using a session keeps it alive (idle expiry)."""
    if not token:
        return None
    row = session.get(m.StaffSession, _digest(token))
    if row is None or row.ended_at is not None:
        return None
    now = clock.now()
    idle = timedelta(minutes=setting_int("COMANDA_CONSOLE_SESSION_IDLE_MINUTES"))
    ended = (
        SessionEndReason.EXPIRED
        if row.expires_at <= now
        else SessionEndReason.IDLE
        if row.last_seen_at + idle <= now
        else None
    )
    user = session.get(m.StaffUser, row.staff_id)
    if ended is None and not user.active:
        ended = SessionEndReason.DISABLED
    if ended is not None:
        row.ended_at, row.end_reason = now, ended.value
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return member(session, user)


def end_session(session: Session, token: str, actor: Actor) -> None:
    row = session.get(m.StaffSession, _digest(token))
    if row is None or row.ended_at is not None:
        return
    row.ended_at, row.end_reason = clock.now(), SessionEndReason.LOGOUT.value
    audit.record(session, actor, "staff.logout", "staff_user", row.staff_id)


# --- personal API tokens -------------------------------------------------------------------------


def create_token(
    session: Session, actor: Actor, user: m.StaffUser, label: Optional[str] = None
) -> Tuple[m.StaffApiToken, str]:
    """A new token for ``user``: the row, and the token itself (shown once, never stored)."""
    if not user.active:
        raise InvalidInput(f"{user.email} is disabled: enable the account first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = m.StaffApiToken(
        staff_id=user.id,
        label=(label or "").strip()[:100] or None,
        token_hash=_digest(token),
        prefix=token[:12],
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "staff.token_created", "staff_api_token", row.id, staff=user.email, label=row.label)
    return row, token


def list_tokens(session: Session, user: m.StaffUser) -> List[m.StaffApiToken]:
    return list(
        session.execute(
            select(m.StaffApiToken).where(m.StaffApiToken.staff_id == user.id).order_by(m.StaffApiToken.id)
        ).scalars()
    )


def revoke_tokens(session: Session, actor: Actor, user: m.StaffUser, token_ids: Iterable[int]) -> List[int]:
    """Revoke some of the user's tokens (each id must be theirs); the ids revoked now."""
    wanted = set(token_ids)
    rows = {t.id: t for t in list_tokens(session, user)}
    unknown = sorted(wanted - set(rows))
    if unknown:
        raise NotFound(f"{user.email} has no token {', '.join(map(str, unknown))}")
    revoked = []
    for token_id in sorted(wanted):
        if rows[token_id].revoked_at is None:
            rows[token_id].revoked_at = clock.now()
            revoked.append(token_id)
            audit.record(session, actor, "staff.token_revoked", "staff_api_token", token_id, staff=user.email)
    return revoked


def token_member(session: Session, token: Optional[str]) -> Optional[StaffMember]:
    """Who a bearer token acts for, or None: unknown, revoked, or its account disabled."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    row = session.execute(
        select(m.StaffApiToken).where(m.StaffApiToken.token_hash == _digest(token))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(m.StaffUser, row.staff_id)
    if not user.active:
        return None
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    return member(session, user)


# --- WhatsApp number (review from the phone: comanda.services.review_chat) ------------------------


def set_whatsapp_phone(session: Session, actor: Actor, user: m.StaffUser, phone: Optional[str]) -> Optional[str]:
    """The member's WhatsApp number (E.164), or none; one account per number. Audited."""
    from comanda.services.customers import normalize_phone

    number = normalize_phone(phone) if phone and phone.strip() else None
    if number is not None:
        taken = session.execute(
            select(m.StaffUser.id).where(m.StaffUser.whatsapp_phone == number, m.StaffUser.id != user.id)
        ).first()
        if taken is not None:
            raise InvalidInput(f"{number} is another account's WhatsApp number", field="whatsapp_phone")
    user.whatsapp_phone = number
    audit.record(session, actor, "staff.whatsapp_phone", "staff_user", user.id, whatsapp_phone=number or "")
    return number
