from decimal import Decimal

import pytest

from comanda.errors import InvalidInput
from comanda.money import MAX_AMOUNT, format_money, money, positive_money, round_money


def test_money_takes_exact_amounts_of_whole_cents():
    assert money("70.10") == Decimal("70.10") and money("70.100") == Decimal("70.10")
    assert money(3) == Decimal("3.00") and money(Decimal("0.5")) == Decimal("0.50")
    assert money("-12.50") == Decimal("-12.50")  # a price delta may lower a price
    assert money(MAX_AMOUNT) == Decimal("9999999999.99")


@pytest.mark.parametrize(
    "value",
    [
        "70.001",  # more than two decimals: never rounded silently
        Decimal("2.345"),
        "0.005",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        "1e999999",
        Decimal("1E+999999"),
        Decimal("1E-999999"),
        "10000000000",  # beyond what a money column holds
        -(10**10),
        "doce",
        "",
        " ",
        "1_000",
        "36,00",
        "$36",
        True,
        None,
        [36],
    ],
)
def test_money_refuses_what_is_not_an_exact_amount_with_the_cores_error(value):
    with pytest.raises(InvalidInput) as refused:
        money(value)
    assert refused.value.code == "invalid_input" and repr(value)[:20] in refused.value.message


def test_a_float_is_a_bug_in_the_caller_not_an_amount():
    for value in (0.1, 36.0):
        for read in (money, round_money, positive_money):
            with pytest.raises(TypeError):
                read(value)


def test_a_computed_amount_is_rounded_half_up_to_the_cent_on_purpose():
    assert round_money(Decimal("2.345")) == Decimal("2.35")
    assert round_money(Decimal("0.005")) == Decimal("0.01")
    assert round_money(Decimal("100") / Decimal("1.16")) == Decimal("86.21")
    for value in (Decimal("NaN"), Decimal("Infinity"), "doce"):
        with pytest.raises(InvalidInput):
            round_money(value)


def test_an_amount_someone_gives_is_positive():
    assert positive_money("0.01") == Decimal("0.01")
    for value in ("0", "0.00", "-36.00", "-0.01"):
        with pytest.raises(InvalidInput) as refused:
            positive_money(value)
        assert "more than 0" in refused.value.message


def test_format_money():
    assert format_money(Decimal("1234.5")) == "$1,234.50"
    assert format_money(Decimal("75")) == "$75.00"
