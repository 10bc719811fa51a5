"""The fake Cloud API's timeout fault: a send that gets no answer in time is not accepted (chaos tests)."""

from __future__ import annotations

import time

import pytest
import requests

from tests.helpers.graph import TEXT, TOKEN, arm, sent
from tests.helpers.simulator import CENTRO


def test_a_hanging_send_answers_504_after_its_delay_and_is_not_accepted(graph, backoffice):
    before = len(sent(backoffice))
    assert arm(backoffice, {"hang": 2}).status_code == 200
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{graph.base}/{CENTRO}/messages",
            json=TEXT,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=0.5,
        )
    started = time.monotonic()
    assert graph.send(TEXT).status_code == 200  # the fault was used by the send that timed out
    assert time.monotonic() - started < 2
    assert len(sent(backoffice)) == before + 1


def test_a_hang_answers_504_with_a_graph_error(graph, backoffice):
    arm(backoffice, {"hang": 1})
    started = time.monotonic()
    answer = graph.send(TEXT)
    assert answer.status_code == 504 and answer.json()["error"]["code"] == 131000
    assert time.monotonic() - started >= 1


@pytest.mark.parametrize("fault", [{"hang": 0}, {"hang": 121}, {"hang": 5, "status": 500}, {"hang": True}])
def test_nonsense_hangs_are_refused(backoffice, fault):
    assert arm(backoffice, fault).status_code == 400
