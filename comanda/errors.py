"""One error style: every failure Comanda expects is a ComandaError with a stable code.

The code names the problem for programs (actions map it to a response in the customer's language,
the CLI prints ``error: <message>`` on one line); the message explains it to an operator.
"""

from __future__ import annotations

from typing import Any, Dict


class ComandaError(Exception):
    code = "error"

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params: Dict[str, Any] = params


class ConfigError(ComandaError):
    """A setting or the environment is wrong; the operator must fix it."""

    code = "config"


class NotFound(ComandaError):
    code = "not_found"


class InvalidInput(ComandaError):
    code = "invalid_input"


class OutOfStock(ComandaError):
    """Not enough stock to reserve or sell. ``available`` maps each short SKU (a stock item code when
    no product is involved) to the whole units still available, so the bot can say "solo quedan 3"."""

    code = "out_of_stock"

    def __init__(self, store_id: str, available: Dict[str, int]) -> None:
        listed = ", ".join(f"{sku} ({units} left)" for sku, units in available.items())
        super().__init__(f"not enough stock at {store_id}: {listed}", store_id=store_id, available=available)
        self.available = available
