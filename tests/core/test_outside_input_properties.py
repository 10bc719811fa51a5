"""Property tests (hypothesis) for the parsers of outside input in the action server's environment: payment
providers' webhooks (signed or not, any bytes, any JSON, any header) and their amounts, and what a PAC
answers (any status, any body). Each either reads the input or refuses it with Comanda's own error (a
clear 4xx for a webhook, a refusal or "stamp unconfirmed" for a PAC); nothing else ever escapes. The
WhatsApp parser's own fuzz test is in tests/channel/, Twilio's and the order text's in tests/rasa/."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comanda.errors import ComandaError
from comanda.services.cfdi.documents import CancellationRequest, Receiver
from comanda.services.payment_provider import ProviderEvent, WebhookRejected
from integrations.cfdi import facturapi
from integrations.payments import parsing
from integrations.payments.sandbox import SIGNATURE_HEADER, SandboxProvider, sign

SECRET = "property-secret"
SANDBOX = SandboxProvider("http://bo.test", SECRET, 300)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "type", "data", "link", "payment", "reference", "currency", "amount", "status"])
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)
# Events shaped like the sandbox's, with any values: the parser's checks past the first key lookups.
sandbox_events = st.fixed_dictionaries(
    {
        "id": scalars,
        "type": st.sampled_from(["payment.succeeded", "payment.declined", "payment.other"]) | scalars,
        "data": st.fixed_dictionaries(
            {k: scalars for k in ("link", "payment", "reference", "currency")},
            optional={"amount": scalars | st.decimals(allow_nan=False).map(str)},
        )
        | json_values,
    }
)


def read_sandbox(body: bytes, header: Any) -> Any:
    headers = {} if header is None else {SIGNATURE_HEADER: header}
    try:
        return SANDBOX.parse_webhook(body, headers, {})
    except WebhookRejected as refused:
        assert 400 <= refused.status < 500 and refused.message
        return refused


@FUZZ
@given(st.binary(max_size=300), st.none() | st.text(max_size=80))
def test_any_bytes_with_any_signature_header_are_refused_with_a_4xx(body, header):
    assert isinstance(read_sandbox(body, header), WebhookRejected)


@FUZZ
@given(json_values | sandbox_events)
def test_any_signed_json_is_an_event_nothing_or_a_4xx(event):
    body = json.dumps(event).encode()
    found = read_sandbox(body, sign(body, SECRET, int(time.time())))
    assert found is None or isinstance(found, (ProviderEvent, WebhookRejected))
    if isinstance(found, ProviderEvent):
        assert found.amount > 0 and found.amount == found.amount.quantize(Decimal("0.01"))


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_a_webhook_body_is_json_or_a_400(body):
    try:
        parsing.load_json(body, "test")
    except WebhookRejected as refused:
        assert refused.status == 400


@FUZZ
@given(json_values | st.decimals().map(str))
def test_an_amount_is_money_or_a_400(value):
    for read in (parsing.amount, parsing.cents):
        try:
            found = read(value, "test")
        except WebhookRejected as refused:
            assert refused.status == 400
        else:
            assert found > 0 and found == found.quantize(Decimal("0.01"))


# --- what a PAC answers ------------------------------------------------------------------------------

RECEIVER = Receiver("XIA190128J61", "XENON INDUSTRIAL ARTICLES", "76343", "601", "G03")
answers = st.tuples(
    st.sampled_from([200, 201, 202, 400, 401, 404, 409, 422, 429, 500, 503]),
    json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=100),
)


def answering(monkeypatch, replies):
    """Facturapi's HTTP answered by ``replies`` (status, body) in turn, whatever the request was."""
    queue = list(replies)

    def request(method, url, **kwargs):
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        reply = requests.Response()
        reply.status_code, reply._content, reply.url = status, body, url
        reply.headers["Content-Type"] = "application/json"
        return reply

    monkeypatch.setattr(facturapi.requests, "request", request)
    monkeypatch.setattr(facturapi, "invoice_body", lambda document: {})


@FUZZ
@given(st.lists(answers, min_size=1, max_size=2))
def test_whatever_the_pac_answers_stamping_is_a_stamp_a_refusal_or_unconfirmed(monkeypatch, replies):
    answering(monkeypatch, replies)
    issuer = facturapi.FacturapiIssuer("sk_test", "http://pac.test/v2", timeout=5)
    try:
        issuer.issue(SimpleNamespace(receiver=RECEIVER))
    except ComandaError as refused:
        assert refused.message


@FUZZ
@given(st.lists(answers, min_size=1, max_size=2))
def test_whatever_the_pac_answers_a_cancellation_is_an_answer_or_comandas_error(monkeypatch, replies):
    answering(monkeypatch, replies)
    issuer = facturapi.FacturapiIssuer("sk_test", "http://pac.test/v2", timeout=5)
    request = CancellationRequest("UUID", "EKU9003173C9", "csd", "inv_1", "02")
    try:
        issuer.cancel(request)
    except ComandaError as refused:
        assert refused.message


def test_the_properties_see_real_events_too():
    """The generators reach the parser's success path: a well-formed signed event is read."""
    event = {
        "id": "evt_1",
        "type": "payment.succeeded",
        "data": {"link": "l", "payment": "p", "reference": "1", "currency": "MXN", "amount": "36.00"},
    }
    body = json.dumps(event).encode()
    found = read_sandbox(body, sign(body, SECRET, int(time.time())))
    assert isinstance(found, ProviderEvent) and found.amount == Decimal("36.00")


@pytest.mark.parametrize("header", ["t=²,v1=ab", "t=١٢,v1=00", "t=99999999999999999999999,v1=0"])
def test_odd_digits_in_the_signature_header_are_a_403(header):
    refused = read_sandbox(b"{}", header)
    assert isinstance(refused, WebhookRejected) and refused.status == 403
