"""Alembic environment: the URL comes from govern's settings (or the caller's config)."""

from __future__ import annotations

from alembic import context

from govern import models  # noqa: F401  (registers every table)
from govern.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def render_item(kind, obj, autogen_context):
    """Render govern's column types as the plain SQLAlchemy types they store as."""
    from govern.db import UTCDateTime

    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)  # fmt: skip
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table to change it on SQLite (copy, drop, rename). With foreign
        # keys on, dropping a table others refer to would fail or cascade; they are off while
        # migrating (a pragma that only takes effect outside a transaction) and checked after.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True, render_item=render_item)  # fmt: skip
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if sqlite:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken after migrating: {broken[:10]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
