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
