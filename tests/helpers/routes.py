"""The back office's routes as the app registers them (simulator included), built once per test run: Sanic
refuses a second app of the same name in one process."""

from __future__ import annotations

import functools
import os
import tempfile
from typing import FrozenSet, Tuple
from unittest import mock


@functools.cache
def backoffice_routes() -> FrozenSet[Tuple[str, str]]:
    """(method, path pattern as Sanic writes it, without the leading /) of every route."""
    from backoffice.app import create_app

    with (
        tempfile.TemporaryDirectory() as folder,
        mock.patch.dict(
            os.environ, {"COMANDA_DATABASE_URL": f"sqlite:///{folder}/routes.db", "COMANDA_SIMULATOR": "1"}
        ),
    ):
        app = create_app()
    return frozenset((method, route.path) for route in app.router.routes for method in route.methods)
