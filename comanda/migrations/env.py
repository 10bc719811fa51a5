"""Alembic environment: migrates Comanda's tables and leaves Rasa's tracker table alone."""

from alembic import context

from comanda.db import get_engine
from comanda.models import Base

config = context.config


def include_object(obj, name, type_, reflected, compare_to):
    # The database also holds Rasa's tracker store (table "events"): not ours to migrate.
    if type_ == "table" and reflected and compare_to is None:
        return False
    return True


def run_migrations_online() -> None:
    engine = get_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
