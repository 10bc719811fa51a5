"""A question mark at the end of an order is politeness, not a question (issue 11 item 3: "…sin cebolla y
con piña?" kept only one extra, "…no ice, extra hot?" lost its last note)."""

import pytest


@pytest.mark.parametrize(
    "text, modifiers, note",
    [
        ("me regalas 3 de pastor sin cebolla y con piña?", {"taco_extras": ["no_onion", "with_pineapple"]}, None),
        ("¿me das 2 de suadero con salsa extra y sin cilantro?", {"taco_extras": ["no_cilantro", "extra_salsa"]}, None),
        ("could I get an americano, no ice, extra hot?", {}, "no ice, extra hot"),
    ],
)
def test_options_after_an_order_ending_in_a_question_mark_are_kept(parser, text, modifiers, note):  # noqa: F811
    [line] = parser.parse(text).lines
    assert (line.modifiers, line.note) == (modifiers, note)


@pytest.mark.parametrize("text", ["el matcha lleva azúcar?", "un taco de pastor. ¿es picante?"])
def test_a_question_stays_a_question(parser, text):  # noqa: F811
    parsed = parser.parse(text)
    assert all(line.note is None and not line.modifiers for line in parsed.lines)
    assert len(parsed.lines) <= 1
