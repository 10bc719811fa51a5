"""The review inbox: the customers' messages the bot was unsure about, and the owner's decisions on them.

Collecting: the Rasa server hands every saved user message (its parse data: intent ranking, order lines,
unplaced words) and the one before it to ``collect``. A message is kept when its intent's confidence is
under COMANDA_REVIEW_CONFIDENCE, it fell back, its two likeliest intents are within COMANDA_REVIEW_MARGIN,
its order text had words the catalog could not place or the classifier and the catalog disagreed; the
message *before* a customer's correction ("no, eso no", "that's not what I said") or request for a person
is kept too. Identical texts (case and spaces aside) are one item per business; each message counts once
however often its tracker is saved (``review_sightings`` is unique per conversation, message and reason).

Deciding (console, WhatsApp, `comanda review accept/ignore`): where each fix lands is the right kind —
an intent becomes a training example (comanda.services.training_data, versioned like all training data),
a product word the catalog reading missed becomes a ``product_synonyms`` row (read live by the NLU within
seconds, no retraining), a new FAQ topic becomes examples and a response in both languages. Every
decision is audited.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from comanda import clock
from comanda import models as m
from comanda.conversations import parse_conversation_id
from comanda.db import savepoint
from comanda.enums import ReviewReason, ReviewStatus, StaffRole
from comanda.errors import InvalidInput, NotFound
from comanda.services import audit, training_data
from comanda.services.audit import Actor
from comanda.services.staff import StaffMember
from comanda.settings import setting

HANDOFF_INTENT = "human_handoff"
FALLBACK_INTENT = "nlu_fallback"
MAX_TEXT = 1000  # longer messages are not training material
# A customer telling the bot it misread the message before ("no, eso no", "that's not what I said").
CORRECTION = re.compile(
    r"^\W*(no+[,.!\s]+)?(eso no\b|as[ií] no\b|no (es|era|fue) (eso|lo que (dije|ped[ií]|quer[ií]a|quise decir))"
    r"|no (dije|ped[ií]) (eso|es[oa])|no te ped[ií]|no me entendiste|no entendiste|te equivocaste|est[aá] mal\b"
    r"|that'?s not what i (said|meant|asked|ordered|wanted)|not what i (said|meant|asked|ordered|wanted)"
    r"|i didn'?t (say|ask for|order|mean) that|you got it wrong|that'?s wrong|wrong\b|you misunderstood)",
    re.IGNORECASE,
)


def text_key(text: str) -> str:
    """Identical texts group: case, accents' composition and runs of spaces aside."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())[:400]


@dataclass(frozen=True)
class Said:
    """A customer's message as the Rasa server saved it: its text, id and Rasa's parse data."""

    text: str
    message_id: str
    parse: Dict[str, Any] = field(default_factory=dict)

    @property
    def intent(self) -> Optional[str]:
        name = (self.parse.get("intent") or {}).get("name")
        if name == "faq":
            selector = ((self.parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}
            return selector.get("intent_response_key") or name
        return name

    @property
    def confidence(self) -> Optional[float]:
        value = (self.parse.get("intent") or {}).get("confidence")
        return round(float(value), 4) if value is not None else None

    @property
    def ranking(self) -> List[Dict[str, Any]]:
        ranked = [
            {"name": r.get("name"), "confidence": round(float(r.get("confidence") or 0), 4)}
            for r in self.parse.get("intent_ranking") or []
            if r.get("name") and r.get("name") != FALLBACK_INTENT
        ]
        return ranked[:10]

    def entities(self, name: str) -> List[Any]:
        return [e.get("value") for e in self.parse.get("entities") or [] if e.get("entity") == name]

    @property
    def language(self) -> Optional[str]:
        found = self.entities("language")
        return str(found[0]) if found else None

    @property
    def typed(self) -> bool:
        """A typed message (buttons and channel events come as "/intent" payloads)."""
        return bool(self.text.strip()) and not self.text.lstrip().startswith("/")


def reasons(said: Said) -> List[ReviewReason]:
    """Why this message alone is worth an owner's look (none: the bot was sure)."""
    if not said.typed or len(said.text) > MAX_TEXT:
        return []
    found = []
    intent = (said.parse.get("intent") or {}).get("name")
    confidence = said.confidence
    if intent == FALLBACK_INTENT:
        found.append(ReviewReason.FALLBACK)
    elif confidence is not None and confidence < float(setting("COMANDA_REVIEW_CONFIDENCE")):
        found.append(ReviewReason.LOW_CONFIDENCE)
    ranking = said.ranking
    if len(ranking) > 1 and intent != FALLBACK_INTENT:
        if ranking[0]["confidence"] - ranking[1]["confidence"] < float(setting("COMANDA_REVIEW_MARGIN")):
            found.append(ReviewReason.AMBIGUOUS)
    if said.entities("unplaced"):
        found.append(ReviewReason.UNPLACED)
    if said.entities("intent_conflict"):
        found.append(ReviewReason.CONFLICT)
    return found


def afterthought(said: Said) -> Optional[ReviewReason]:
    """What this message says about the one before it: a correction, or a request for a person."""
    if not said.typed:
        return None
    if CORRECTION.search(said.text):
        return ReviewReason.CORRECTED
    if (said.parse.get("intent") or {}).get("name") == HANDOFF_INTENT:
        return ReviewReason.HANDOFF
    return None


def collect(session: Session, conversation_id: str, latest: Said, before: Optional[Said] = None) -> int:
    """Keep what the latest message (and, after a correction or a request for a person, the one before)
    says about the bot's reading; the number of new sightings (0 when already kept)."""
    store = session.get(m.Store, parse_conversation_id(conversation_id).store_id)
    if store is None:
        return 0
    kept = sum(record(session, store, conversation_id, latest, reason) for reason in reasons(latest))
    why = afterthought(latest)
    if before is not None and why is not None and before.typed and not CORRECTION.search(before.text):
        kept += record(session, store, conversation_id, before, why)
    return kept


def record(session: Session, store: m.Store, conversation_id: str, said: Said, reason: ReviewReason) -> bool:
    """One sighting of ``said`` for ``reason`` under its text's item (made when new); False if kept before."""
    seen = session.execute(
        select(m.ReviewSighting.id).where(
            m.ReviewSighting.conversation_id == conversation_id,
            m.ReviewSighting.message_id == said.message_id[:200],
            m.ReviewSighting.reason == reason.value,
        )
    ).first()
    if seen is not None:
        return False
    try:
        with savepoint(session):
            item = _item(session, store.business_id, said)
            now = clock.now()
            ranking = said.ranking
            item.text, item.language = said.text, said.language or item.language
            item.intent, item.confidence, item.ranking = said.intent, said.confidence, ranking
            item.runner_up = ranking[1]["name"] if len(ranking) > 1 else None
            item.runner_up_confidence = ranking[1]["confidence"] if len(ranking) > 1 else None
            item.items = [_line(v) for v in said.entities("order_line") if isinstance(v, dict)]
            item.unplaced = [str(v.get("text")) for v in said.entities("unplaced") if isinstance(v, dict)]
            again = (
                item.id is not None
                and session.execute(  # the same message, kept for another reason
                    select(m.ReviewSighting.id).where(
                        m.ReviewSighting.item_id == item.id,
                        m.ReviewSighting.conversation_id == conversation_id,
                        m.ReviewSighting.message_id == said.message_id[:200],
                    )
                ).first()
            )
            item.reason, item.last_seen_at = reason.value, now
            item.count = (item.count or 0) + (0 if again else 1)
            item.last_conversation_id = conversation_id
            session.flush()
            session.add(
                m.ReviewSighting(
                    item_id=item.id,
                    store_id=store.id,
                    conversation_id=conversation_id,
                    message_id=said.message_id[:200],
                    language=said.language,
                    reason=reason.value,
                    seen_at=now,
                )
            )
            session.flush()
    except IntegrityError:  # another process kept the same message, or made the item, at the same moment
        return record(session, store, conversation_id, said, reason) if _item_exists(session, store, said) else False
    return True


def _item_exists(session: Session, store: m.Store, said: Said) -> bool:
    return _find(session, store.business_id, said.text) is not None


def _find(session: Session, business_id: str, text: str) -> Optional[m.ReviewItem]:
    return session.execute(
        select(m.ReviewItem).where(m.ReviewItem.business_id == business_id, m.ReviewItem.text_key == text_key(text))
    ).scalar_one_or_none()


def _item(session: Session, business_id: str, said: Said) -> m.ReviewItem:
    item = _find(session, business_id, said.text)
    if item is None:
        item = m.ReviewItem(
            business_id=business_id,
            text=said.text,
            text_key=text_key(said.text),
            reason=ReviewReason.LOW_CONFIDENCE.value,
            count=0,
            status=ReviewStatus.WAITING.value,
            ranking=[],
            items=[],
            unplaced=[],
        )
        session.add(item)
    return item


def _line(value: Dict[str, Any]) -> Dict[str, Any]:
    line = {"sku": value.get("variant_sku") or value.get("sku"), "quantity": value.get("quantity")}
    if value.get("modifiers"):
        line["modifiers"] = value["modifiers"]
    if value.get("note"):
        line["note"] = value["note"]
    return line


# --- reading the inbox ---------------------------------------------------------------------------


def visible_items(
    session: Session,
    member: Optional[StaffMember],
    store: Optional[str] = None,
    statuses: Sequence[str] = (ReviewStatus.WAITING.value,),
    limit: int = 200,
) -> List[m.ReviewItem]:
    """Items seen at the stores the member works at (all stores for the command line's None), newest first."""
    stores = _stores(member, store)
    query = select(m.ReviewItem).where(m.ReviewItem.status.in_(list(statuses)))
    if stores is not None:
        seen_here = select(m.ReviewSighting.item_id).where(m.ReviewSighting.store_id.in_(sorted(stores)))
        query = query.where(m.ReviewItem.id.in_(seen_here))
    if member is not None:
        query = query.where(m.ReviewItem.business_id == member.business_id)
    query = query.order_by(m.ReviewItem.last_seen_at.desc(), m.ReviewItem.id.desc()).limit(limit)
    return list(session.execute(query).scalars())


def _stores(member: Optional[StaffMember], store: Optional[str]) -> Optional[Iterable[str]]:
    if member is None:
        return [store] if store else None
    if member.role not in (StaffRole.OWNER, StaffRole.MANAGER):
        raise NotFound("the review inbox is for owners and managers")
    if store:
        if store not in member.store_ids:
            raise NotFound(f"no store {store!r}", store=store)
        return [store]
    return member.store_ids


def get_item(session: Session, item_id: int, member: Optional[StaffMember] = None) -> m.ReviewItem:
    """One item; another business's, or one never seen at the member's stores, is NotFound."""
    item = session.get(m.ReviewItem, item_id)
    if item is None:
        raise NotFound(f"no review item {item_id}", item_id=item_id)
    if member is not None:
        stores = set(_stores(member, None) or ())
        seen = set(
            session.execute(select(m.ReviewSighting.store_id).where(m.ReviewSighting.item_id == item.id)).scalars()
        )
        if item.business_id != member.business_id or not (stores & seen):
            raise NotFound(f"no review item {item_id}", item_id=item_id)
    return item


def where_seen(session: Session, item_ids: Sequence[int]) -> Dict[int, Dict[str, List[str]]]:
    """Per item: the stores and languages it was seen in."""
    rows = session.execute(
        select(m.ReviewSighting.item_id, m.ReviewSighting.store_id, m.ReviewSighting.language)
        .where(m.ReviewSighting.item_id.in_(list(item_ids)))
        .distinct()
    ).all()
    seen: Dict[int, Dict[str, set]] = {}
    for item_id, store_id, language in rows:
        entry = seen.setdefault(item_id, {"stores": set(), "languages": set()})
        entry["stores"].add(store_id)
        if language:
            entry["languages"].add(language)
    return {k: {"stores": sorted(v["stores"]), "languages": sorted(v["languages"])} for k, v in seen.items()}


def as_json(item: m.ReviewItem, seen: Optional[Dict[str, List[str]]] = None) -> Dict[str, Any]:
    """What `comanda review list --json` prints for an item."""
    return {
        "id": item.id,
        "text": item.text,
        "language": item.language,
        "intent": item.intent,
        "confidence": item.confidence,
        "runner_up": item.runner_up,
        "reason": item.reason,
        "items": item.items or [],
        "count": item.count,
        "last_seen": _iso(item.last_seen_at),
        "first_seen": _iso(item.first_seen_at),
        "stores": (seen or {}).get("stores", []),
        "languages": (seen or {}).get("languages", []),
        "unplaced": item.unplaced or [],
        "status": item.status,
        "conversation_id": item.last_conversation_id,
    }


def _iso(when: Optional[datetime]) -> Optional[str]:
    return when.isoformat(timespec="seconds") if when else None


# --- deciding ------------------------------------------------------------------------------------


@dataclass
class Decision:
    """What an owner decided about an item; the empty decision says the bot read it right."""

    intent: Optional[str] = None  # another intent, or a FAQ topic as faq/<topic>
    items: Optional[List[Tuple[str, int]]] = None  # the order as it should have been read: (SKU, quantity)
    synonyms: List[Tuple[str, str]] = field(default_factory=list)  # (word, SKU): words the catalog missed
    faq: Optional[training_data.FaqTopic] = None  # a new FAQ topic with its phrasings and answers


def parse_items(text: str) -> List[Tuple[str, int]]:
    """ "TACO-PASTOR:3,COCA-600:1" → [("TACO-PASTOR", 3), ("COCA-600", 1)]."""
    lines = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        sku, _, quantity = part.rpartition(":")
        if not sku or not quantity.strip().isdigit() or not 0 < int(quantity) <= 999:
            raise InvalidInput(f"an order line is SKU:QUANTITY (1–999), not {part!r}", field="items")
        lines.append((sku.strip().upper(), int(quantity)))
    return lines


def parse_synonyms(texts: Iterable[str]) -> List[Tuple[str, str]]:
    """["kesadía=QUESADILLA"] → [("kesadía", "QUESADILLA")]."""
    pairs = []
    for text in texts:
        word, _, sku = text.partition("=")
        word = " ".join(word.split())
        if not word or not sku.strip():
            raise InvalidInput(f"a synonym is WORD=SKU, not {text!r}", field="synonym")
        pairs.append((word, sku.strip().upper()))
    return pairs


def accept(session: Session, actor: Actor, item: m.ReviewItem, decision: Decision) -> m.ReviewItem:
    """Apply the decision where each part belongs, then close the item (audited). Checked first, so a bad
    SKU or intent changes nothing."""
    if item.status != ReviewStatus.WAITING:
        raise InvalidInput(f"review item {item.id} is already decided ({item.status})", item_id=item.id)
    language = item.language or _business_language(session, item.business_id)
    products = {sku: _product(session, item.business_id, sku) for sku in _skus(decision)}
    if any(len(word) > 200 for word, _ in decision.synonyms):
        raise InvalidInput("a synonym is at most 200 characters", field="synonym")
    intent = _intent_of(item, decision)
    if decision.faq is not None:
        training_data.add_faq_topic(decision.faq)
        intent = f"faq/{decision.faq.topic}"
    if intent is not None:
        training_data.add_example(item.text, intent, language)
    added = [_add_synonym(session, products[sku], word) for word, sku in decision.synonyms]
    item.status = (
        ReviewStatus.FIXED.value
        if decision.items is not None or decision.synonyms
        else ReviewStatus.CHANGED.value
        if (decision.intent or decision.faq) and intent != item.intent
        else ReviewStatus.CORRECT.value
    )
    item.decision = {
        "intent": intent,
        "items": [{"sku": s, "quantity": q} for s, q in decision.items] if decision.items is not None else None,
        "synonyms": [{"word": w, "sku": s} for w, s in decision.synonyms] or None,
        "faq": decision.faq.topic if decision.faq else None,
    }
    item.decided_by, item.decided_at = actor.name, clock.now()
    audit.record(session, actor, f"review.{item.status}", "review_item", item.id, text=item.text, **item.decision)
    for synonym in added:
        if synonym is not None:
            audit.record(session, actor, "catalog.synonym_added", "product", synonym.product_id, text=synonym.text)
    return item


def ignore(session: Session, actor: Actor, item: m.ReviewItem) -> m.ReviewItem:
    if item.status != ReviewStatus.WAITING:
        raise InvalidInput(f"review item {item.id} is already decided ({item.status})", item_id=item.id)
    item.status, item.decided_by, item.decided_at = ReviewStatus.IGNORED.value, actor.name, clock.now()
    audit.record(session, actor, "review.ignored", "review_item", item.id, text=item.text)
    return item


def _intent_of(item: m.ReviewItem, decision: Decision) -> Optional[str]:
    """The intent the text is an example of: the one decided, the predicted one when it was right, an
    order (add_items) when only the order's lines were fixed; None when nothing says (a synonym alone)."""
    if decision.intent:
        if decision.intent not in training_data.known_intents():
            raise InvalidInput(f"no intent {decision.intent!r} (see `comanda review intents`)", field="intent")
        return decision.intent
    if decision.items is not None:
        return "add_items"
    if decision.synonyms or decision.faq:
        return None
    if not item.intent or item.intent == FALLBACK_INTENT:
        raise InvalidInput("the bot found no intent here: say which (--intent)", field="intent")
    return item.intent


def _skus(decision: Decision) -> List[str]:
    return sorted({s for s, _ in decision.items or []} | {s for _, s in decision.synonyms})


def _product(session: Session, business_id: str, sku: str) -> m.Product:
    product = session.execute(
        select(m.Product).where(m.Product.business_id == business_id, func.upper(m.Product.sku) == sku.upper())
    ).scalar_one_or_none()
    if product is None:
        variant = session.execute(
            select(m.ProductVariant)
            .join(m.Product)
            .where(m.Product.business_id == business_id, func.upper(m.ProductVariant.sku) == sku.upper())
        ).scalar_one_or_none()
        if variant is None:
            raise InvalidInput(f"no product with SKU {sku!r}", field="sku", sku=sku)
        product = variant.product
    return product


def _add_synonym(session: Session, product: m.Product, word: str) -> Optional[m.ProductSynonym]:
    """The word as a synonym of the product (None when it already is one). The NLU's catalog reading sees
    it at its next version check (every few seconds): no retraining."""
    word = word.lower()
    exists = session.execute(
        select(m.ProductSynonym.id).where(m.ProductSynonym.product_id == product.id, m.ProductSynonym.text == word)
    ).first()
    if exists is not None:
        return None
    synonym = m.ProductSynonym(product_id=product.id, text=word)
    session.add(synonym)
    session.flush()
    return synonym


def _business_language(session: Session, business_id: str) -> str:
    business = session.get(m.Business, business_id)
    return business.default_language if business is not None else "es"
