"""IVA arithmetic for prices that include 16 % IVA, exact to the cent.

A CFDI states each concepto without tax (Importe = Base) and its IVA apart; the customer paid the
IVA-included line total G. Per line, Base = G / 1.16 rounded half up to the cent and IVA = G − Base. That IVA
is always within the limits SAT's validation (Anexo 20, "Límite inferior/superior" of Traslado Importe)
allows: G − Base = 0.16·Base + 1.16·e with |e| ≤ 0.005, and the only cent in that range is the one SAT's
[(Base − 0.005)·0.16 truncated, (Base + 0.005)·0.16 rounded up] contains. Summing lines then gives
SubTotal = Σ Base, TotalImpuestosTrasladados = Σ IVA and Total = SubTotal + IVA = Σ G: the invoice adds up to
exactly what was paid, which rounding the tax once on the whole subtotal would not guarantee.

ValorUnitario carries 6 decimals (Base / quantity), so Cantidad × ValorUnitario rounds back to Base for any
quantity below 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

from comanda.money import money, round_money

IVA_RATE = Decimal("0.160000")
UNIT_VALUE_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class TaxedAmount:
    """One concepto's amounts: ``base`` is its Importe and IVA base, ``tax`` the IVA trasladado."""

    quantity: int
    unit_value: Decimal
    base: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.base + self.tax


def split_iva_included(gross: Decimal, quantity: int = 1) -> TaxedAmount:
    """The concepto for ``quantity`` units whose IVA-included total is ``gross``."""
    gross = money(gross)
    base = round_money(gross / (1 + IVA_RATE))
    return TaxedAmount(quantity, (base / quantity).quantize(UNIT_VALUE_PLACES, ROUND_HALF_UP), base, gross - base)


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax


def totals(amounts: Iterable[TaxedAmount]) -> Totals:
    amounts = list(amounts)
    return Totals(sum((a.base for a in amounts), Decimal("0.00")), sum((a.tax for a in amounts), Decimal("0.00")))
