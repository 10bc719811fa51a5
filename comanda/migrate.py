"""Schema migrations with Alembic (scripts in comanda/migrations/versions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from comanda.db import ensure_reachable, get_engine
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
    ensure_reachable(url)
    command.upgrade(alembic_config(url), revision)


def ensure_migrated(url: Optional[str] = None) -> None:
    """A reachable database at the schema this code expects, or one clear error saying what to run."""
    ensure_reachable(url)
    expected = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    with get_engine(url).connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if not current:
        raise ConfigError("the database has no schema yet: run `comanda migrate`")
    if current != expected:
        raise ConfigError(
            f"the database schema is at {', '.join(sorted(current))}, this code expects "
            f"{', '.join(sorted(expected))}: run `comanda migrate`"
        )


def revision(message: str, url: Optional[str] = None) -> None:
    """Write a new migration from the difference between the models and the database (developers)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
