"""IVA-included prices to CFDI amounts: golden totals and SAT's rounding limits, exhaustively."""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comanda.services.cfdi.taxes import IVA_RATE, split_iva_included, totals

CENT = Decimal("0.01")


def within_sat_limits(base: Decimal, tax: Decimal) -> bool:
    """Anexo 20: a traslado's Importe lies in [(Base − ½¢)·Tasa truncated, (Base + ½¢)·Tasa rounded up]."""
    low = ((base - Decimal("0.005")) * IVA_RATE).quantize(CENT, ROUND_FLOOR)
    high = ((base + Decimal("0.005")) * IVA_RATE).quantize(CENT, ROUND_CEILING)
    return low <= tax <= high


def test_three_tacos_and_a_horchata_add_up_to_what_was_paid():
    tacos, horchata = split_iva_included(Decimal("66.00"), 3), split_iva_included(Decimal("35.00"))
    assert (tacos.unit_value, tacos.base, tacos.tax) == (Decimal("18.966667"), Decimal("56.90"), Decimal("9.10"))
    assert (horchata.unit_value, horchata.base, horchata.tax) == (Decimal("30.17"), Decimal("30.17"), Decimal("4.83"))
    invoice = totals([tacos, horchata])
    assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("87.07"), Decimal("13.93"), Decimal("101.00"))


# A 17-line order where rounding each line's IVA on its own base would not add up to the amount paid.
SEVENTEEN_LINES = [
    (1, "75.00"),
    (2, "85.00"),
    (1, "70.00"),
    (3, "80.00"),
    (1, "35.00"),
    (2, "35.00"),
    (1, "40.00"),
    (4, "65.00"),
    (2, "30.00"),
    (1, "20.00"),
    (5, "22.00"),
    (3, "22.00"),
    (2, "25.00"),
    (1, "40.00"),
    (1, "85.00"),
    (6, "18.00"),
    (1, "45.00"),
]


def test_seventeen_lines_golden_totals():
    amounts = [split_iva_included(Decimal(price) * quantity, quantity) for quantity, price in SEVENTEEN_LINES]
    paid = sum(Decimal(price) * quantity for quantity, price in SEVENTEEN_LINES)
    invoice = totals(amounts)
    assert paid == Decimal("1544.00")
    assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("1331.02"), Decimal("212.98"), paid)
    assert all(within_sat_limits(a.base, a.tax) for a in amounts)
    # The naive way (IVA = round(Base × 0.16) per line) misses the amount paid by a cent here.
    naive = sum(a.base + (a.base * IVA_RATE).quantize(CENT) for a in amounts)
    assert naive != paid
    # Cantidad × ValorUnitario rounds back to each line's Importe.
    assert all((a.unit_value * a.quantity).quantize(CENT) == a.base for a in amounts)


def test_every_amount_up_to_2000_pesos_splits_within_sat_limits():
    for cents in range(1, 200_001):
        gross = Decimal(cents).scaleb(-2)
        amount = split_iva_included(gross)
        assert amount.total == gross and within_sat_limits(amount.base, amount.tax), gross


@given(st.integers(min_value=1, max_value=10_000_000_00), st.integers(min_value=1, max_value=9_999))
def test_any_amount_and_quantity_splits_exactly(cents, quantity):
    gross = Decimal(cents).scaleb(-2)
    amount = split_iva_included(gross, quantity)
    assert amount.total == gross
    assert within_sat_limits(amount.base, amount.tax)
    assert (amount.unit_value * quantity).quantize(CENT) == amount.base


def test_floats_are_refused():
    with pytest.raises(TypeError):
        split_iva_included(66.0)
