"""Bot messages → WhatsApp messages within the documented limits."""

from integrations.whatsapp.messages import (
    choice_messages,
    custom_message,
    media_message,
    split_text,
    template_message,
    text_messages,
)


def test_long_text_is_split_on_paragraphs_within_4096():
    paragraphs = [f"p{i} " * 300 for i in range(6)]
    text = "\n\n".join(paragraphs)
    pieces = split_text(text)
    assert len(pieces) > 1 and all(len(p) <= 4096 for p in pieces)
    assert "\n\n".join(pieces).split() == text.split()
    assert all(p.strip().startswith("p") for p in pieces)
    assert split_text("x" * 9000) == ["x" * 4096, "x" * 4096, "x" * 808]


def test_up_to_three_choices_are_reply_buttons():
    out = choice_messages(
        "521",
        "¿Para llevar?",
        [
            {"title": "Recoger en tienda ahora mismo", "payload": "/pickup"},
            {"title": "Recoger en tienda ahora mismo!", "payload": "/pickup2"},
            {"title": "Envío", "payload": "/delivery"},
        ],
        "es",
    )
    [message] = out.messages
    buttons = message["interactive"]["action"]["buttons"]
    titles = [b["reply"]["title"] for b in buttons]
    assert message["interactive"]["type"] == "button"
    assert all(len(t) <= 20 for t in titles) and len(set(titles)) == 3
    assert [b["reply"]["id"] for b in buttons] == ["/pickup", "/pickup2", "/delivery"]
    assert out.options == ["/pickup", "/pickup2", "/delivery"]


def test_four_to_ten_choices_are_a_list_with_the_customers_language():
    buttons = [{"title": f"Opción con un nombre bastante largo {i}", "payload": f'/pick{{"n": {i}}}'} for i in range(7)]
    [message] = choice_messages("521", "Elige", buttons, "en").messages
    action = message["interactive"]["action"]
    rows = action["sections"][0]["rows"]
    assert message["interactive"]["type"] == "list" and action["button"] == "See options"
    assert len(rows) == 7 and all(len(r["title"]) <= 24 and len(r.get("description", "")) <= 72 for r in rows)
    assert rows[0]["description"].startswith("Opción con un nombre")


def test_more_than_ten_choices_are_numbered_text():
    buttons = [{"title": f"Producto {i}", "payload": f"/p{i}"} for i in range(12)]
    out = choice_messages("521", "Menú", buttons, "es")
    [message] = out.messages
    body = message["text"]["body"]
    assert "1. Producto 0" in body and "12. Producto 11" in body and "Responde con el número" in body
    assert out.options[11] == "/p11"


def test_long_payloads_become_references():
    payload = "/add_items" + "x" * 300
    [message] = choice_messages("521", "?", [{"title": "a", "payload": payload}], "es").messages
    assert message["interactive"]["action"]["buttons"][0]["reply"]["id"] == "#1"


def test_long_question_text_goes_before_the_buttons():
    out = choice_messages("521", "x " * 700, [{"title": "a", "payload": "/a"}], "es")
    assert out.messages[0]["type"] == "text" and out.messages[-1]["interactive"]["body"]["text"] == "Elige una opción:"


def test_media_custom_and_templates():
    assert media_message("521", "image", link="https://x/y.png")["image"] == {"link": "https://x/y.png"}
    doc = media_message("521", "document", media_id="123", filename="factura.pdf", caption="Tu factura")
    assert doc["document"] == {"id": "123", "caption": "Tu factura", "filename": "factura.pdf"}
    custom = custom_message("521", {"whatsapp": {"type": "reaction", "reaction": {"message_id": "w", "emoji": "👍"}}})
    assert custom["to"] == "521" and custom["messaging_product"] == "whatsapp" and custom["type"] == "reaction"
    assert custom_message("521", {"foo": 1}) is None
    template = template_message("521", "comanda_reengagement", "es_MX", ["Café Esquina Centro"])
    assert template["template"]["language"] == {"code": "es_MX"}
    assert template["template"]["components"][0]["parameters"][0]["text"] == "Café Esquina Centro"
    assert text_messages("521", "hola")[0]["text"] == {"body": "hola", "preview_url": False}
