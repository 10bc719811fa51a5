"""/console/review over real HTTP in the back-office process, on SQLite and PostgreSQL: who sees what (owners
and managers of the item's stores; staff 403; another store's item 404), CSRF, each decision landing (a
training example in the project's data, a live synonym, a FAQ topic), a conversation's transcript, the
member's WhatsApp number, and a training run's progress streamed live."""

from __future__ import annotations

import json
import stat
import sys

import pytest
import yaml
from sqlalchemy import text

from comanda import models as m
from comanda.db import new_session, transaction
from comanda.services import review
from tests.helpers.console import ConsoleClient, EventStream, add_staff
from tests.helpers.review import parse, project_copy

CENTRO = "centro:whatsapp:+525511110000"
ROMA = "roma:whatsapp:+525522220000"


def kept(conversation: str, message: str, message_id: str, **reading) -> int:
    with transaction() as session:
        review.collect(session, conversation, review.Said(message, message_id, parse(**reading)))
    with new_session() as session:
        return session.execute(text("SELECT id FROM review_items WHERE text = :t"), {"t": message}).scalar_one()


@pytest.fixture
def home(tmp_path):
    return project_copy(tmp_path)


@pytest.fixture
def console(demo, offices, home):
    add_staff("dueno@cafe.mx", role="owner")
    add_staff("mara@cafe.mx", role="manager", stores=["roma"], language="en")
    add_staff("ana@cafe.mx", stores=["centro"])
    return offices.start(COMANDA_HOME=str(home))


def client(base: str, email: str) -> ConsoleClient:
    c = ConsoleClient(base)
    assert c.login(email, next_path="/console/review").status_code == 303
    return c


def test_owners_and_managers_review_their_stores_items(console):
    centro = kept(CENTRO, "me da unas gringas", "w1", intent="add_items", confidence=0.4, unplaced=["gringas"])
    kept(ROMA, "what's good here", "w2", intent="greet", confidence=0.3, language="en")
    owner = client(console, "dueno@cafe.mx")
    page = owner.get("/console/review")
    assert page.status_code == 200 and "«me da unas gringas»" in page.text and "«what&#39;s good here»" in page.text
    assert "gringas" in page.text and "Pedir productos" in page.text
    manager = client(console, "mara@cafe.mx")
    seen = manager.get("/console/review").text
    assert "what&#39;s good here" in seen and "gringas" not in seen
    assert manager.post(f"/console/review/{centro}/ignore", htmx=False).status_code == 404
    assert manager.get("/console/review?store=centro").status_code == 404
    assert client(console, "ana@cafe.mx").get("/console/review").status_code == 403
    assert owner.post(f"/console/review/{centro}/ignore", csrf=None, htmx=False).status_code == 403


def test_each_decision_lands_where_it_belongs(console, home):
    thanks = kept(CENTRO, "ps nomas eso gracias", "a", intent="thank", confidence=0.41)
    order = kept(CENTRO, "me da 3 gringas", "b", intent="add_items", confidence=0.9, unplaced=["gringas"])
    parking = kept(CENTRO, "hay donde dejar el carro?", "c", intent="product_question", confidence=0.3)
    junk = kept(CENTRO, "jajaja", "d", intent="greet", confidence=0.2)
    owner = client(console, "dueno@cafe.mx")
    done = owner.post(f"/console/review/{thanks}/accept", {"what": "correct"}, htmx=False)
    assert done.status_code == 200 and "Guardado como ejemplo" in done.text
    bad = owner.post(f"/console/review/{order}/accept", {"what": "order", "sku": "NOPE", "quantity": "3"}, htmx=False)
    assert bad.status_code == 400 and "NOPE" in bad.text
    fixed = owner.post(
        f"/console/review/{order}/accept",
        {
            "what": "order",
            "sku": ["TACO-PASTOR", ""],
            "quantity": ["3", "1"],
            "word": "gringas",
            "means": "TACO-PASTOR",
        },
        htmx=False,
    )
    assert fixed.status_code == 200 and "Pedido arreglado" in fixed.text
    faq = {
        "what": "faq",
        "topic": "parking",
        "examples_es": "hay donde dejar el carro?\ntienen estacionamiento",
        "examples_en": "is there parking?",
        "answer_es": "Sí, en la esquina.",
        "answer_en": "Yes, at the corner.",
    }
    assert owner.post(f"/console/review/{parking}/accept", faq, htmx=False).status_code == 200
    assert owner.post(f"/console/review/{junk}/ignore", htmx=False).status_code == 200
    assert "Nada por revisar" in owner.get("/console/review").text
    nlu = yaml.safe_load((home / "data" / "nlu" / "es" / "reviewed.yml").read_text(encoding="utf-8"))
    blocks = {b["intent"]: b["examples"] for b in nlu["nlu"]}
    assert blocks["thank"] == "- ps nomas eso gracias\n" and blocks["add_items"] == "- me da 3 gringas\n"
    assert "- tienen estacionamiento" in blocks["faq/parking"]
    assert "utter_faq/parking" in (home / "domain" / "faq_reviewed.yml").read_text(encoding="utf-8")
    with new_session() as session:
        words = session.execute(
            text(
                "SELECT s.text FROM product_synonyms s JOIN products p ON p.id = s.product_id "
                "WHERE p.sku = 'TACO-PASTOR'"
            )
        ).scalars()
        assert "gringas" in list(words)
        statuses = dict(session.execute(text("SELECT id, status FROM review_items")).all())
    assert statuses == {thanks: "correct", order: "fixed", parking: "changed", junk: "ignored"}


def test_the_conversation_and_the_whatsapp_number(console):
    item = kept(CENTRO, "me da unas gringas", "w1", intent="add_items", confidence=0.4)
    with transaction() as session:  # Rasa's tracker store table, as Rasa creates it
        session.execute(
            text(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), type_name VARCHAR(255), "
                "timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)"
            )
        )
        for n, (kind, said, intent) in enumerate(
            [("user", "me da unas gringas", "add_items"), ("bot", "No encontré «gringas»", None)]
        ):
            session.execute(
                text("INSERT INTO events VALUES (:id, :s, :k, :ts, :i, NULL, :d)"),
                {"id": n + 1, "s": CENTRO, "k": kind, "ts": 1.0 + n, "i": intent, "d": json.dumps({"text": said})},
            )
    owner = client(console, "dueno@cafe.mx")
    page = owner.get("/console/review").text
    link = f"/console/review/conversations/{CENTRO.replace(':', '%3A').replace('+', '%2B')}"
    assert link in page and item
    shown = owner.get(link)
    assert shown.status_code == 200 and "No encontré «gringas»" in shown.text and "Cliente" in shown.text
    assert client(console, "mara@cafe.mx").get(link).status_code == 404
    saved = owner.post("/console/review/whatsapp", {"whatsapp_phone": "+52 55 1234 5678"}, htmx=False)
    assert saved.status_code == 200 and 'value="+525512345678"' in saved.text
    with new_session() as session:
        assert (
            session.execute(text("SELECT whatsapp_phone FROM staff_users WHERE email = 'dueno@cafe.mx'")).scalar()
            == "+525512345678"
        )
    assert (
        client(console, "mara@cafe.mx")
        .post("/console/review/whatsapp", {"whatsapp_phone": "+525512345678"}, htmx=False)
        .status_code
        == 400
    )


FAKE_TRAINER = """#!{python}
# Stands in for `comanda train --run ID` (a real training takes minutes: tests/rasa/test_train.py runs one):
# it writes progress to the run as the real one does, then finishes it.
import sys, time
from comanda.db import transaction
from comanda.enums import TrainingRunStatus
from comanda.services import training
run_id = int(sys.argv[sys.argv.index("--run") + 1])
for step in ("training a new model", "evaluating the new model", "evaluating the active model"):
    with transaction() as session:
        training.note(session, run_id, step)
    time.sleep(0.5)  # the scenario: each step takes a while, as a real one does, and the page streams it
comparison = training.compare(
    {{"es": {{"intent_accuracy": 0.99, "order_line_exact_match": 1.0}}}},
    {{"es": {{"intent_accuracy": 0.98, "order_line_exact_match": 1.0}}}},
)
with transaction() as session:
    training.finish(session, training.get_run(session, run_id), TrainingRunStatus.ACTIVATED, comparison=comparison)
"""


def test_training_from_the_console_streams_its_progress(demo, offices, home, tmp_path):
    venv = tmp_path / "fake-venv"
    (venv / "bin").mkdir(parents=True)
    trainer = venv / "bin" / "comanda"
    trainer.write_text(FAKE_TRAINER.format(python=sys.executable))
    trainer.chmod(trainer.stat().st_mode | stat.S_IEXEC)
    add_staff("dueno@cafe.mx", role="owner")
    base = offices.start(COMANDA_HOME=str(home), COMANDA_RASA_VENV=str(venv))
    owner = client(base, "dueno@cafe.mx")
    started = owner.post("/console/review/train", htmx=False)
    assert started.status_code == 303
    run_page = started.headers["Location"]
    assert owner.post("/console/review/train", htmx=False).status_code == 400  # one at a time
    stream = EventStream(f"{base}{run_page}/stream", owner.http)
    stream.wait_for(lambda name, data: name == "progress" and "evaluating the active model" in data, timeout=30)
    final = stream.wait_for(lambda name, data: name == "progress" and 'data-status="activated"' in data, timeout=30)
    assert "98.0 %" in final and "99.0 %" in final
    stream.wait_for(lambda name, _: name == "done")
    stream.close()
    assert "activado" in owner.get(run_page).text
    with new_session() as session:
        [run] = session.query(m.TrainingRun).all()
        assert run.started_by.startswith("staff:") and "training a new model" in run.progress


def test_evaluation_reports_are_served_to_reviewers_only(console, home):
    for folder in ("comanda", "train-7/new"):
        (home / "reports" / "nlu" / folder).mkdir(parents=True)
        (home / "reports" / "nlu" / folder / "index.html").write_text(f"<h1>{folder}</h1>", encoding="utf-8")
    (home / "reports" / "secret.txt").write_text("no", encoding="utf-8")
    owner = client(console, "dueno@cafe.mx")
    assert "/console/review/reports/eval/index.html" in owner.get("/console/review").text
    latest = owner.get("/console/review/reports/eval/index.html")
    assert latest.status_code == 200 and "<h1>comanda</h1>" in latest.text
    assert "default-src 'none'" in latest.headers["Content-Security-Policy"]
    assert "<h1>train-7/new</h1>" in owner.get("/console/review/reports/7/new/index.html").text
    assert owner.get("/console/review/reports/eval/..%2F..%2Fsecret.txt").status_code == 404
    assert owner.get("/console/review/reports/7/active/index.html").status_code == 404
    assert client(console, "ana@cafe.mx").get("/console/review/reports/eval/index.html").status_code == 403
