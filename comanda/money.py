"""The one money type: ``Decimal`` with 2 places, in MXN. Never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Union

CURRENCY = "MXN"
CENT = Decimal("0.01")

MoneyLike = Union[Decimal, int, str]


def money(value: MoneyLike) -> Decimal:
    """Exact amount rounded half-up to the cent. Floats are refused: they are not exact."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a Decimal, int or str")
    try:
        return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not an amount of money: {value!r}") from exc


def format_money(amount: Decimal) -> str:
    """``$1,234.50``: how prices read in Mexico and the US alike."""
    return f"${money(amount):,.2f}"
