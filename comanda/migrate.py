"""Schema migrations with Alembic (scripts in comanda/migrations/versions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import OperationalError

from comanda.db import get_engine
from comanda.errors import ConfigError
from comanda.settings import database_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: Optional[str] = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def upgrade(url: Optional[str] = None, revision: str = "head") -> None:
    """Bring the database to the latest schema; a database that cannot be reached is one clear error."""
    try:
        with get_engine(url).connect():
            pass
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())
        raise ConfigError(f"cannot reach the database at COMANDA_DATABASE_URL: {reason}") from exc
    command.upgrade(alembic_config(url), revision)


def revision(message: str, url: Optional[str] = None) -> None:
    """Write a new migration from the difference between the models and the database (developers)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
