"""JSON from outside, read strictly: what Python's json accepts but no JSON standard allows is refused.

The standard library reads ``NaN``, ``Infinity`` and numbers too large for a float (``1e999999`` becomes
``inf``), which the database's JSON type and every other reader refuse later, and it recurses once per
nesting level, so a deeply nested body raises RecursionError rather than ValueError. ``loads`` turns
each of these into InvalidInput, which HTTP handlers answer with 400: a 5xx would make the sender
(Meta, a payment provider) retry the same body for days.
"""

from __future__ import annotations

import json
import math
from typing import Any, List, Tuple, Union

from comanda.errors import InvalidInput

MAX_DEPTH = 64  # Meta's webhooks nest 8 levels deep, payment providers' about as much


def loads(raw: Union[bytes, str], max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in ``raw``, or InvalidInput saying why it is not plain JSON."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidInput("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, an integer with more digits than Python reads
        raise InvalidInput(f"not JSON: {exc}") from None
    if _depth(value) > max_depth:
        raise InvalidInput(f"JSON nested more than {max_depth} levels deep")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} does not fit a number")
    return number


def _depth(value: Any) -> int:
    """How deeply lists and objects nest, walked without recursion."""
    deepest = 0
    stack: List[Tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
