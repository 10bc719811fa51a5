"""The back office's OpenAPI description (/api/openapi.json) and schemathesis run against a started back
office (on SQLite and PostgreSQL): no 5xx, every status and body as described, bad input refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from backoffice import openapi, queue_api
from backoffice.app import API_PARTS
from comanda.errors import ConfigError
from tests.helpers.console import add_staff, personal_token
from tests.helpers.payments import place
from tests.helpers.routes import backoffice_routes

ST = Path(sys.executable).with_name("st")
# Staff routes and providers' webhooks are the JSON API; pages, the simulator (Meta's stand-in) and the
# console's own endpoints (CSRF forms and streams) are not.
JSON_PREFIXES = (*openapi.JSON_PREFIXES, "/health")


@pytest.fixture
def api(offices, monkeypatch):
    add_staff("api@cafe.mx", role="owner", stores=("centro", "roma"))
    token = personal_token("api@cafe.mx")
    for sku in ("CONCHA", "CONCHA"):  # orders for the operations on one order to find
        place(sku=sku)
    url = offices.start(COMANDA_PAYMENT_PROVIDER="sandbox", COMANDA_SANDBOX_WEBHOOK_SECRET="openapi-secret")
    return url, token


def test_the_description_names_every_json_route_of_the_app():
    spec = openapi.document([openapi.HEALTH, *API_PARTS])
    described = {path.replace("{", "<").split("<")[0] for path in spec["paths"]}
    routes = {"/" + pattern.split("<")[0] for _, pattern in backoffice_routes()}
    json_routes = {r.rstrip("/") or "/" for r in routes if r.startswith(JSON_PREFIXES)}
    missing = {r for r in json_routes if not any(d.rstrip("/") == r for d in described)}
    assert not missing, f"JSON routes without an OpenAPI entry: {sorted(missing)}"


def test_two_parts_describing_one_path_are_refused():
    with pytest.raises(ConfigError):
        openapi.document([queue_api.OPENAPI, queue_api.OPENAPI])


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_description(api, tmp_path):
    url, token = api
    spec = requests.get(f"{url}/api/openapi.json", timeout=10)
    assert spec.status_code == 200 and spec.json()["openapi"] == "3.0.3"
    run = subprocess.run(
        [
            str(ST),
            "run",
            f"{url}/api/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            os.environ.get("COMANDA_SCHEMATHESIS_EXAMPLES", "30"),
            "--workers",
            "2",
            "--seed",
            "17",
            "--request-timeout",
            "20",
            "--generation-database",
            "none",
            "--no-color",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
