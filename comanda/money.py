"""The one money type: ``Decimal`` with 2 places, in MXN. Never float.

``money()`` reads an amount someone gave (a catalog, staff, a provider, a caller): it must already be
whole cents, so "70.001", NaN or Infinity is refused (InvalidInput), never rounded. A float is a bug in
the caller, not an amount (TypeError): floats are not exact.
``round_money()`` is for arithmetic (a tax base, a share of a line): the result is rounded to the cent
on purpose. ``positive_money()`` is an amount someone pays or gives back: more than zero.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Union

from comanda.errors import InvalidInput

CURRENCY = "MXN"
CENT = Decimal("0.01")
# What a money column holds (12 digits, 2 of them decimals): anything larger is a mistake, not a price.
MAX_AMOUNT = Decimal("9999999999.99")
WRITTEN_AMOUNT = re.compile(r"[+-]?\d+(\.\d+)?")  # "96", "96.00", "-5.50": no exponent, separator or sign soup

MoneyLike = Union[Decimal, int, str]


def money(value: object) -> Decimal:
    """An exact amount of whole cents, as a 2-place Decimal; InvalidInput for anything else."""
    amount = _decimal(value)
    cents = amount.quantize(CENT)
    if cents != amount:
        raise InvalidInput(f"an amount has at most two decimals, not {value!r}", value=str(value))
    return cents


def round_money(value: object) -> Decimal:
    """A computed amount rounded half-up to the cent (for arithmetic, never for what someone typed)."""
    return _decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def positive_money(value: object) -> Decimal:
    """An amount someone pays or gives back: exact, whole cents, more than 0."""
    amount = money(value)
    if amount <= 0:
        raise InvalidInput(f"an amount must be more than 0, not {value!r}", value=str(value))
    return amount


def _decimal(value: object) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"money must not be a float ({value!r}); pass a Decimal, int or str")
    if isinstance(value, str) and WRITTEN_AMOUNT.fullmatch(value.strip()):
        amount = Decimal(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    else:  # text that is not a plain number, or something that is not a number at all
        raise InvalidInput(f"not an amount of money: {value!r}", value=str(value))
    try:
        if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
            raise InvalidOperation
    except InvalidOperation:
        raise InvalidInput(f"not an amount of money (up to {MAX_AMOUNT}): {value!r}", value=str(value)) from None
    return amount


def format_money(amount: Decimal) -> str:
    """``$1,234.50``: how prices read in Mexico and the US alike."""
    return f"${round_money(amount):,.2f}"
