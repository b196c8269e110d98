"""The database: the declarative base with stable constraint names, engines and sessions.

SQLite is the embedded default (WAL with synchronous=FULL, foreign keys on, a busy timeout so
concurrent writers wait instead of failing); PostgreSQL through psycopg 3 is the production store.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Row ids are INTEGER primary keys; PostgreSQL's integer is 32-bit, so a larger number names no
# row (and the database would refuse it as an error rather than find nothing).
MAX_ID = 2**31 - 1


def as_id(text: str) -> int | None:
    """The row id written in ``text`` (ASCII digits, 1 to MAX_ID), or None: no row has it."""
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    return int(text) if 1 <= int(text) <= MAX_ID else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def one_of(column: str, values: tuple[str, ...]) -> str:
    """The SQL of a CHECK that ``column`` holds one of ``values``. Models and migrations build
    their CHECKs with it from the same tuples of allowed values, so both state the same rule."""
    listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({listed})"


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """Let people write postgresql:// and still get the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs) -> Engine:
    # Bound values (password hashes, item content, tokens) never appear in an error or a log.
    kwargs.setdefault("hide_parameters", True)
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 10)
            kwargs.setdefault("max_overflow", 20)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "checkin", _checked_in)
        event.listen(engine, "checkout", _pinger(engine.dialect))
    return engine


# A pooled PostgreSQL connection that sat idle this long is pinged before use (the server may
# have restarted, a firewall may have dropped it); one in steady use is not: a ping on every
# checkout (pool_pre_ping) is a round trip on every request, as much as a statement.
IDLE_PING_SECONDS = 5.0


def _checked_in(_dbapi_conn, record) -> None:
    record.info["checked_in"] = time.monotonic()


def _pinger(dialect):
    def ping_if_idle(dbapi_conn, record, _proxy) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # new, or in steady use
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out another (as pool_pre_ping would).
            raise DisconnectionError("an idle connection no longer answers") from exc

    return ping_if_idle


def upsert(session, table, values: dict, keys: list[str], changes: dict, returning=()):
    """INSERT ... ON CONFLICT (keys) DO UPDATE: one statement, so two callers inserting the same
    key at once never collide (SQLite and PostgreSQL both speak it)."""
    if session.connection().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**values).on_conflict_do_update(index_elements=keys, set_=changes)
    if returning:
        stmt = stmt.returning(*returning)
    return session.execute(stmt)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # An audited read's entry is committed before its bytes leave: FULL syncs the WAL at every
    # commit, so a served read's entry survives power loss, not only a killed process.
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC and always handed back timezone-aware (UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)
