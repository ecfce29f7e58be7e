"""Alembic environment of the site store; ``Store.open`` runs it programmatically (no ``alembic.ini``).

The caller passes an open connection in ``config.attributes["connection"]``; without one (Alembic's own
command line, for a developer writing a revision) it connects to ``sqlalchemy.url`` from the config.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from swarmfuse.client.site.store.models import Base


def _configure(connection: Connection, store_connection: bool) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        # the store emits BEGIN itself, so on SQLite too DDL rolls back with the rest of the transaction
        transactional_ddl=True if store_connection else None,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    config = context.config
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata,
                          literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection, store_connection=True)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection, store_connection=False)
    engine.dispose()


run()
