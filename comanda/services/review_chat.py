"""Review from the phone: an owner or manager whose staff account has their WhatsApp number writes
"revisar" / "review" to a store's number and gets the waiting items one at a time, each with buttons for
the two likeliest intents and "Otro" (a list of the others, and "Ignorar"). A tap is a review decision,
audited as that staff member's, and the next item follows.

A button's payload names the item and the choice ("review:12:intent:add_items"), so no state is kept
between messages; a payload from anyone but a reviewer of that item's stores is not a decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.db import savepoint
from comanda.enums import ReviewStatus, StaffRole
from comanda.errors import ComandaError, NotFound
from comanda.i18n import t
from comanda.services import review, staff
from comanda.services.customers import normalize_phone
from comanda.services.staff import StaffMember
from comanda.services.training_data import known_intents

START = re.compile(r"^\W*(revisar|review)\W*$", re.IGNORECASE)
PAYLOAD = re.compile(r"^review:(\d+):(intent:[\w/]+|other|ignore)$")
MAX_OTHERS = 9  # a WhatsApp list shows ten rows: the other intents and "Ignorar"


@dataclass
class Reply:
    text: str
    buttons: List[Tuple[str, str]] = field(default_factory=list)  # (title, payload)


def reviewer(session: Session, store_id: str, phone: Optional[str]) -> Optional[StaffMember]:
    """The active owner or manager of this store whose WhatsApp number this is, else None."""
    if not phone:
        return None
    try:
        phone = normalize_phone(phone)
    except ComandaError:
        return None
    user = session.execute(
        select(m.StaffUser).where(m.StaffUser.whatsapp_phone == phone, m.StaffUser.active.is_(True))
    ).scalar_one_or_none()
    if user is None or user.role not in (StaffRole.OWNER, StaffRole.MANAGER):
        return None
    member = staff.member(session, user)
    return member if member.sees(store_id) else None


def is_review_message(text: Optional[str]) -> bool:
    return bool(text) and bool(START.match(text or "") or PAYLOAD.match(text or ""))


def answer(session: Session, member: StaffMember, store_id: str, text: str) -> List[Reply]:
    """What the reviewer reads after this message (a start or a tap), deciding what a tap decides."""
    lang = member.language
    replies: List[Reply] = []
    tapped = PAYLOAD.match(text)
    if tapped:
        item_id, choice = int(tapped.group(1)), tapped.group(2)
        try:
            item = review.get_item(session, item_id, member)
        except NotFound:
            return [Reply(t("review.wa.gone", lang))]
        if item.status != ReviewStatus.WAITING:
            replies.append(Reply(t("review.wa.gone", lang)))
        elif choice == "other":
            return [_others(item, lang)]
        else:
            replies.append(_decide(session, member, item, choice, lang))
    replies.append(_next(session, member, store_id, lang))
    return replies


def _decide(session: Session, member: StaffMember, item: m.ReviewItem, choice: str, lang: str) -> Reply:
    actor = member.actor()
    try:
        with savepoint(session):
            if choice == "ignore":
                review.ignore(session, actor, item)
                return Reply(t("review.wa.ignored", lang, text=item.text))
            intent = choice.split(":", 1)[1]
            review.accept(session, actor, item, review.Decision(intent=intent))
    except ComandaError as exc:
        return Reply(t("review.wa.refused", lang, reason=exc.message))
    return Reply(t("review.wa.saved", lang, text=item.text, intent=intent_label(intent, lang)))


def _next(session: Session, member: StaffMember, store_id: str, lang: str) -> Reply:
    waiting = review.visible_items(session, member, store_id)
    if not waiting:
        return Reply(t("review.wa.done", lang))
    item = waiting[0]
    ranking = [r["name"] for r in item.ranking or [] if r.get("name")]
    likeliest = (ranking or ([item.intent] if item.intent else []))[:2]
    buttons = [(intent_label(i, lang), f"review:{item.id}:intent:{i}") for i in likeliest]
    buttons.append((t("review.wa.other", lang), f"review:{item.id}:other"))
    return Reply(_describe(item, 1, len(waiting), lang), buttons)


def _others(item: m.ReviewItem, lang: str) -> Reply:
    ranked = [r["name"] for r in item.ranking or [] if r.get("name")]
    rest = ranked[2:] + sorted(i for i in known_intents() if i not in ranked)
    buttons = [(intent_label(i, lang), f"review:{item.id}:intent:{i}") for i in rest[:MAX_OTHERS]]
    buttons.append((t("review.wa.ignore", lang), f"review:{item.id}:ignore"))
    return Reply(t("review.wa.pick_other", lang, text=item.text), buttons)


def _describe(item: m.ReviewItem, position: int, total: int, lang: str) -> str:
    singular, plural = t("review.wa.times", lang).split("|")
    runner_up = (
        t(
            "review.wa.runner_up",
            lang,
            intent=intent_label(item.runner_up, lang),
            confidence=_pct(item.runner_up_confidence),
        )
        if item.runner_up
        else ""
    )
    lines = ", ".join(f"{line.get('quantity')} × {line.get('sku')}" for line in item.items or [])
    return t(
        "review.wa.item",
        lang,
        position=position,
        total=total,
        count=item.count,
        times=singular if item.count == 1 else plural,
        text=item.text,
        intent=intent_label(item.intent, lang),
        confidence=_pct(item.confidence),
        runner_up=runner_up,
        lines=t("review.wa.lines", lang, lines=lines) if lines else "",
    )


def intent_label(intent: Optional[str], lang: str) -> str:
    """An intent as an owner reads it ("Pedir productos"; "Pregunta frecuente: hours")."""
    if not intent:
        return "–"
    if intent.startswith("faq/"):
        return t("intent.faq", lang, topic=intent.split("/", 1)[1])
    try:
        return t(f"intent.{intent}", lang)
    except KeyError:
        return intent


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.0%}"
