"""The chat page renders the stores' numbers from the database and its assets load."""

from __future__ import annotations

import requests

from tests.helpers.backoffice import backoffice_env, start, stop
from tests.helpers.net import free_port


def test_the_page_lists_the_demo_stores(backoffice):
    page = requests.get(f"{backoffice}/simulator", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "Café Esquina Centro · +52 55 1234 5678" in html and "Café Esquina Roma · +52 55 8765 4321" in html
    assert 'value="106540352242922"' in html and 'value="+52 1 55 1234 5678"' in html
    for asset, kind in (("simulator.js", "javascript"), ("simulator.css", "text/css")):
        answer = requests.get(f"{backoffice}/simulator/static/{asset}", timeout=5)
        assert answer.status_code == 200 and kind in answer.headers["Content-Type"]


def test_the_stores_are_read_on_every_database(demo, tmp_path):
    """SQLite, and PostgreSQL when COMANDA_TEST_DATABASE_URL is set (the `demo` fixture runs on both)."""
    port = free_port()
    proc = start(port, backoffice_env(demo, port, "http://127.0.0.1:9"), tmp_path / "bo.log")
    try:
        assert (
            "Café Esquina Roma · +52 55 8765 4321" in requests.get(f"http://127.0.0.1:{port}/simulator", timeout=5).text
        )
    finally:
        stop(proc)
