"""Reading what providers send, strictly: a signed body is authentic, not necessarily sane.

A webhook that cannot be read is answered 400 (WebhookRejected), never a 500 the provider would retry
forever: JSON that is not UTF-8 or not JSON, ``NaN`` / ``Infinity`` / numbers too large for a float
(``1e999999``), nesting deeper than any provider's event, and amounts that are not whole cents.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any, List, Tuple

from comanda.errors import InvalidInput
from comanda.money import positive_money
from comanda.services.payment_provider import WebhookRejected

MAX_DEPTH = 32  # Stripe's deepest events are about 8 levels; Mercado Pago's notifications 3


def load_json(body: bytes, provider: str) -> Any:
    """The body as JSON, or WebhookRejected(400)."""
    try:
        found = json.loads(body.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise WebhookRejected(400, f"not a {provider} event: nested too deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected(400, f"not a {provider} event: {exc}"[:300]) from None
    if _depth(found) > MAX_DEPTH:
        raise WebhookRejected(400, f"not a {provider} event: nested deeper than {MAX_DEPTH} levels")
    return found


def amount(value: object, provider: str) -> Decimal:
    """An amount a provider wrote as text ("36.00") or as a JSON number (36.5): exact to the cent, above 0."""
    if isinstance(value, float):
        value = repr(value)  # the shortest text that reads back as this float: 36.001 stays 36.001
    try:
        return positive_money(value)
    except InvalidInput as exc:
        raise WebhookRejected(400, f"{provider} sent an amount that is not money: {exc.message}"[:300]) from None


def cents(value: object, provider: str) -> Decimal:
    """An amount a provider counts in centavos (a JSON integer)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise WebhookRejected(400, f"{provider} sent an amount in cents that is not a whole number: {value!r}"[:300])
    return amount(Decimal(value) / 100, provider)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a provider sends")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is too large for a number")
    return number


def _depth(value: Any) -> int:
    """How deeply lists and objects nest (iteratively: a deep value cannot exhaust the stack)."""
    deepest = 0
    pending: List[Tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest
