"""Alembic environment of the ArkRelay store, driven by ``arkrelay_core.store.migrate``.

A caller hands over an open connection in ``config.attributes["connection"]`` so that the
engine's settings (SQLite pragmas, psycopg driver) apply to migrations too; otherwise the
``sqlalchemy.url`` option names the database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from arkrelay_core.store.engine import create_engine_for
from arkrelay_core.store.errors import StoreError
from arkrelay_core.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure_options() -> dict[str, object]:
    return {
        "target_metadata": target_metadata,
        "compare_type": True,
        # SQLite cannot ALTER most things; autogenerate must write batch (copy-and-move)
        # operations for it, which also run unchanged on PostgreSQL.
        "render_as_batch": True,
        # Opt-in: without it autogenerate never notices an added or dropped CHECK.
        "autogenerate_plugins": ["alembic.autogenerate.*", "alembic.ext.checkconstraint_byname"],
    }


def _run_on(connection: Connection) -> None:
    context.configure(connection=connection, **_configure_options())
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        **_configure_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise StoreError("no connection in config.attributes and no sqlalchemy.url option")
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            _run_on(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
