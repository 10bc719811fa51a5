"""Alembic environment: migrates Comanda's tables and leaves Rasa's tracker table alone."""

from typing import Optional

from alembic import context
from sqlalchemy.schema import SchemaItem

from comanda.db import get_engine
from comanda.models import Base

config = context.config


def include_object(
    obj: SchemaItem, name: Optional[str], type_: str, reflected: bool, compare_to: Optional[SchemaItem]
) -> bool:
    # The database also holds Rasa's tracker store (table "events"): not ours to migrate.
    if type_ == "table" and reflected and compare_to is None:
        return False
    return True


def run_migrations_online() -> None:
    engine = get_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode re-creates a table to alter it; with foreign keys enforced, dropping a table other rows
            # point at fails (Alembic's advice: off for the migration, outside its transaction).
            connection.connection.execute("PRAGMA foreign_keys=OFF")  # DB-API level: no transaction begun
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            include_object=include_object,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            connection.connection.execute("PRAGMA foreign_keys=ON")


run_migrations_online()
