from decimal import Decimal

import pytest

from comanda.money import format_money, money


def test_money_rounds_half_up_to_the_cent():
    assert money("2.345") == Decimal("2.35")
    assert money(3) == Decimal("3.00")
    assert money(Decimal("0.005")) == Decimal("0.01")


def test_money_refuses_floats_and_garbage():
    with pytest.raises(TypeError):
        money(0.1)
    with pytest.raises(ValueError):
        money("doce")


def test_format_money():
    assert format_money(Decimal("1234.5")) == "$1,234.50"
    assert format_money(Decimal("75")) == "$75.00"
