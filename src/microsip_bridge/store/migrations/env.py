"""Alembic's environment for the bridge's migrations: runs them on the connection it is given."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from microsip_bridge.store.engine import make_engine, parse_url
from microsip_bridge.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    """Use the connection that :func:`microsip_bridge.store.engine.upgrade` passes in
    ``config.attributes``; the ``alembic`` command line may give ``sqlalchemy.url`` instead."""
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    """``--sql`` mode: write the migration as an SQL script for ``sqlalchemy.url``'s dialect,
    for an administrator to review and run by hand."""
    url = parse_url(context.config.get_main_option("sqlalchemy.url") or "")
    context.configure(
        url=url,
        target_metadata=metadata,
        render_as_batch=url.drivername.startswith("sqlite"),
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations()
