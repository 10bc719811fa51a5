"""Signed bodies that are not plain JSON are refused as invalid input (a 400), never a 500 that the
sender retries for days: deep nesting, NaN and infinities, numbers no float or int holds, bad UTF-8."""

import json

import pytest

from comanda.errors import InvalidInput
from comanda.strict_json import loads


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": ' * 70 + b"1" + b"}" * 70,
        b'{"entry": [], "x": Infinity}',
        b'{"entry": [], "x": -Infinity}',
        b'{"entry": [], "x": NaN}',
        b'{"entry": [], "x": 1e999999}',
        b'{"entry": [], "x": ' + b"9" * 5000 + b"}",
        b'{"entry": [\xff]}',
        b"",
    ],
    ids=["deep-list", "deep-object", "infinity", "minus-infinity", "nan", "huge-float", "huge-int", "utf8", "empty"],
)
def test_what_is_not_plain_json_is_invalid_input(body):
    with pytest.raises(InvalidInput):
        loads(body)


def test_plain_json_reads_as_usual():
    payload = {"entry": [{"changes": [{"value": {"messages": [{"id": "w", "n": 1.5, "ok": True, "none": None}]}}]}]}
    assert loads(json.dumps(payload).encode()) == payload
