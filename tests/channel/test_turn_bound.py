"""One turn, however much the bot says, sends at most six WhatsApp messages (issue 10 item 5): the first
go out as they come, the rest are merged at the end of the turn, the last question keeps its buttons,
and what cannot fit is counted, never dropped in silence. On SQLite and PostgreSQL."""

import asyncio

from sqlalchemy import select

from comanda import models as m
from comanda.db import new_session, transaction
from connectors.whatsapp.channel import MAX_MESSAGES_PER_TURN, WhatsAppOutput
from integrations.whatsapp.messages import TEXT_LIMIT, merged_text
from tests.helpers.documents import conversation


class Channel:
    """What the output needs of the input channel."""

    def wake_sender(self) -> None:
        pass

    async def language_of(self, conversation_id: str) -> str:
        return "en"


def queued(recipient):
    with new_session() as session:
        query = select(m.OutboundMessage).where(m.OutboundMessage.recipient == recipient).order_by(m.OutboundMessage.id)
        return [(row.dedupe_key, row.payload) for row in session.execute(query).scalars()]


def test_a_turn_of_sixty_notes_and_a_question_is_six_messages_at_most(demo):
    with transaction() as session:
        conversation_id = conversation(session, "+525511110020")

    async def turn():
        output = WhatsAppOutput(Channel(), reply_to="wamid.turn")
        for n in range(60):
            await output.send_text_message(conversation_id, f"Ya no nos queda el producto {n} 😔")
        await output.send_text_with_buttons(
            conversation_id, "Anything else?", [{"title": "That's all, pay", "payload": "/checkout"}]
        )
        assert len(queued("525511110020")) == 3  # the first ones went out as they came
        await output.flush(conversation_id)

    asyncio.run(turn())
    rows = queued("525511110020")
    assert len(rows) <= MAX_MESSAGES_PER_TURN
    assert [key for key, _ in rows] == [f"wamid.turn:{n}" for n in range(len(rows))]
    merged, question = rows[-2][1], rows[-1][1]
    assert merged["type"] == "text" and "producto 3 " in merged["text"]["body"]
    assert "more messages I left out" in merged["text"]["body"] or "producto 59" in merged["text"]["body"]
    assert question["type"] == "interactive" and question["interactive"]["body"]["text"] == "Anything else?"


def test_a_short_turn_is_sent_as_it_is(demo):
    with transaction() as session:
        conversation_id = conversation(session, "+525511110021")

    async def turn():
        output = WhatsAppOutput(Channel(), reply_to="wamid.short")
        for text in ("✅ Added: 2 × Taco al pastor", "🛒 Your cart: …", "Paid with card", "Your ticket: C-042"):
            await output.send_text_message(conversation_id, text)
        await output.flush(conversation_id)

    asyncio.run(turn())
    assert [payload["text"]["body"] for _, payload in queued("525511110021")] == [
        "✅ Added: 2 × Taco al pastor",
        "🛒 Your cart: …",
        "Paid with card",
        "Your ticket: C-042",
    ]


def test_merged_text_fits_one_message_and_counts_what_it_leaves_out():
    notes = [{"type": "text", "text": {"body": f"note {n} " + "x" * 200}} for n in range(100)]
    template = {"type": "template", "template": {"name": "comanda_reengagement"}}
    text = merged_text(notes + [template], "es")
    assert len(text) <= TEXT_LIMIT and text.startswith("note 0 ")
    kept = text.count("note ")
    assert text.endswith(f"(…y {100 - kept + 1} mensajes más que omití para no saturarte.)")
    choice = {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "¿Para llevar?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "/pickup", "title": "Recoger"}}]},
        },
    }
    link = {"type": "document", "document": {"link": "https://x/f.pdf", "filename": "factura-F1.pdf"}}
    assert merged_text([choice, link], "en") == "¿Para llevar?\n• Recoger\n\n📎 factura-F1.pdf: https://x/f.pdf"


def test_a_turn_without_choices_forgets_the_numbers_of_an_earlier_one(demo):
    """ "2" answering "how many?" is a quantity, not the second button of a message two turns back."""
    with transaction() as session:
        conversation_id = conversation(session, "+525511110022")

    async def turns():
        offer = WhatsAppOutput(Channel(), reply_to="wamid.offer")
        buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
        await offer.send_text_with_buttons(conversation_id, "Anything else?", buttons)
        await offer.flush(conversation_id)
        assert options() == ["/affirm", "/deny"]
        question = WhatsAppOutput(Channel(), reply_to="wamid.question")
        await question.send_text_message(conversation_id, "How many?")
        await question.flush(conversation_id)

    def options():
        with new_session() as session:
            return session.get(m.Conversation, conversation_id).numbered_options

    asyncio.run(turns())
    assert options() is None
