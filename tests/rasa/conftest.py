"""The Rasa venv's fixtures: the demo catalog's order parser, shared by the modules that read order lines."""

from __future__ import annotations

import pytest

from comanda.db import new_session
from comanda.services.catalog_snapshot import catalog_snapshot
from nlu_components.order_parsing import OrderParser
from tests.helpers.databases import seed_demo


@pytest.fixture(scope="module")
def parser(tmp_path_factory) -> OrderParser:
    """The parser on the demo catalog, read from a database seeded as the ``demo`` fixture does, once
    for the whole sentence table (``demo`` migrates a new database for every test)."""
    url = seed_demo(f"sqlite:///{tmp_path_factory.mktemp('orders') / 'comanda.db'}")
    with new_session(url) as session:
        return OrderParser(catalog_snapshot(session))
