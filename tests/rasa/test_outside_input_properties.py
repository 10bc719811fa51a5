"""Property tests (hypothesis) for the outside input the Rasa server reads: Twilio's webhook form and the
order text customers type. Whatever arrives, the reading is bounded and never raises (a raise would fail
the customer's turn, or Twilio's webhook with a 500 it retries). The WhatsApp payload's own fuzz test is
in tests/channel/test_webhook_parsing.py; providers' webhooks and PAC answers in tests/core/."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.twilio_whatsapp import MAX_MEDIA, bot_text, media_count
from nlu_components.order_parsing import MAX_LINES, MAX_QUANTITY

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FIELDS = ["Body", "Latitude", "Longitude", "NumMedia", "MediaContentType0", "ButtonPayload", "ButtonText"]
odd_numbers = st.sampled_from(["", "nan", "inf", "-1", "1e309", "²", "١٢", "10" * 30, "0x1f", " 3 "])
forms = st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=40) | odd_numbers, max_size=len(FIELDS))


@FUZZ
@given(forms, st.none() | st.lists(st.text(max_size=10), max_size=5))
def test_any_twilio_form_is_read_as_text_or_nothing(form, options):
    read = bot_text(form, options)
    assert read is None or isinstance(read, str)
    assert 0 <= media_count(form) <= MAX_MEDIA


def test_a_location_with_a_number_that_is_not_one_is_read_as_the_text():
    assert bot_text({"Latitude": "nan", "Longitude": "1", "Body": "aquí"}, None) == "aquí"
    assert bot_text({"Latitude": "19.4", "Longitude": "-99.1"}, None).startswith("/share_location")
    assert media_count({"NumMedia": "²"}) == 0 and media_count({"NumMedia": "99"}) == MAX_MEDIA


words = st.sampled_from(
    ["dos", "tres", "de", "pastor", "latte", "horchata", "sin", "cebolla", "y", "½", "mitad", "2", "100000", ","]
)
order_texts = st.text(max_size=300) | st.lists(words | st.text(max_size=6), max_size=40).map(" ".join)


@FUZZ
@given(order_texts)
def test_any_order_text_reads_to_bounded_lines(parser, text):  # noqa: F811 - the imported fixture
    read = parser.parse(text)
    assert len(read.lines) <= MAX_LINES
    assert all(1 <= line.quantity <= MAX_QUANTITY for line in read.lines)
