"""The database: the declarative base with stable constraint names, engines and sessions.

SQLite is the embedded default (WAL with synchronous=FULL, foreign keys on, a busy timeout so
concurrent writers wait instead of failing); PostgreSQL through psycopg 3 is the production store.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections import namedtuple
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import count as numbers
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, sessionmaker

try:  # PostgreSQL's driver (an extra: SQLite needs none)
    from psycopg import errors as psycopg_errors
    from psycopg.pq import ConnStatus, DiagnosticField, ExecStatus, TransactionStatus
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    _PQ_IDLE = TransactionStatus.IDLE
    _PQ_CONNECTION_OK = ConnStatus.OK
    _PQ_OK = (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK)
    _SQLSTATE = DiagnosticField.SQLSTATE
    _NO_SUCH_STATEMENT = b"26000"  # invalid_sql_statement_name
    # Statements compiled for libpq itself: $1, $2... in place of psycopg's %(name)s.
    _NUMBERED = PGDialect_psycopg(paramstyle="numeric_dollar")
except ImportError:  # pragma: no cover
    psycopg_errors = None

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
        connect_args = {"timeout": 30, "check_same_thread": False}
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            connect_args["factory"] = _writer_locked(database)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 10)
            kwargs.setdefault("max_overflow", 20)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "checkin", _checked_in)
        event.listen(engine, "checkout", _pinger(engine.dialect))
    return engine


def in_memory(engine: Engine) -> bool:
    """An SQLite database that lives in its connection: a second engine would open another."""
    database = engine.url.database
    return engine.dialect.name == "sqlite" and (
        not database or database == ":memory:" or "mode=memory" in database
    )


# A pooled PostgreSQL connection that sat idle this long is pinged before use (the server may
# have restarted, a firewall may have dropped it); one in steady use is not: a ping on every
# checkout (pool_pre_ping) is a round trip on every request, as much as a statement.
IDLE_PING_SECONDS = 5.0

# The names of statements prepared on a libpq connection by Prepared (one per statement), and
# which of them each connection holds: a connection closed takes its set with it.
_STATEMENT_NAMES = numbers(1)
_PREPARED_ON: WeakKeyDictionary = WeakKeyDictionary()


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


def on_cursor(conn, call, sql: str, values, many: bool = False):
    """Run ``call(cursor)`` on the driver's own cursor of ``conn`` (so in its transaction), for
    ``sql`` with ``values``. Whoever watches the connection's statements (a tracer, a test
    counting them) still sees it: the event costs nothing when nobody listens. A driver error is
    raised as the SQL layer would raise it, so that a unit of work fails closed the same way."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        if conn.dispatch.before_cursor_execute:
            conn.dispatch.before_cursor_execute(conn, cursor, sql, values, None, many)
        return call(cursor)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError(sql, None, exc) from exc
    finally:
        cursor.close()


@contextmanager
def driver_transaction(conn):
    """A transaction of its own on ``conn``'s driver connection, which is in autocommit: its
    statements commit together when the block ends, or roll back when it raises."""
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name != "sqlite":
        with dbapi.transaction():
            yield
        return
    # IMMEDIATE: the write lock first. A deferred transaction that reads first (the denial
    # counters) and writes afterwards fails at once (SQLITE_BUSY, no retry) when another
    # connection committed in between: its snapshot can no longer become a writer's.
    dbapi.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        dbapi.rollback()
        raise
    dbapi.commit()


def _idle_autocommit_pgconn(conn):
    """psycopg's libpq connection under ``conn`` where a statement may go to libpq directly: on
    PostgreSQL, in autocommit, with no transaction open (so the statement commits as it runs,
    as it would through psycopg's cursor). None elsewhere."""
    if conn.dialect.driver != "psycopg":
        return None
    dbapi = conn.connection.dbapi_connection
    if not dbapi.autocommit:
        return None
    pgconn = dbapi.pgconn
    return pgconn if pgconn.transaction_status == _PQ_IDLE else None


def _libpq_encoder(column_type) -> tuple:
    """How a value of ``column_type`` goes to libpq (None is NULL, whatever the type): a function
    to its bytes, and 0 for the text format or 1 for the binary one (bytes as they are)."""
    for kind, encoder in _LIBPQ_ENCODERS:
        if isinstance(column_type, kind):
            return encoder
    raise TypeError(f"no libpq encoding for {column_type!r}")


def _text(value) -> bytes:
    return str(value).encode()


_LIBPQ_ENCODERS = (
    (Boolean, ({True: b"t", False: b"f"}.__getitem__, 0)),
    (Integer, (_text, 0)),
    (String, (str.encode, 0)),
    (Date, (lambda day: day.isoformat().encode(), 0)),
    (LargeBinary, (bytes, 1)),
)


def _libpq_result(sql: str, result, pgconn):
    """``result`` if the statement succeeded; else its error, raised as on_cursor raises one."""
    if result.status in _PQ_OK:
        return result
    if pgconn.status != _PQ_CONNECTION_OK:
        # The connection is gone: psycopg sees it closed, and the pool drops it.
        message = pgconn.get_error_message()
        if isinstance(message, bytes):
            message = message.decode(errors="replace")
        exc = psycopg_errors.OperationalError(message or "the connection is lost")
    else:
        exc = psycopg_errors.error_from_result(result, encoding="utf-8")
    raise DBAPIError(sql, None, exc) from exc


def _fixed(compiled) -> dict:
    """Values written into the statement (``id == 1``), which are bound parameters too."""
    return {name: b.effective_value for name, b in compiled.binds.items() if not b.required}


class Prepared:
    """A statement on the audited read's path, compiled once per dialect and run on the driver's
    own cursor of the caller's connection (so in its transaction).

    Through the SQL layer, each execution pays for its parameters, its result and its events more
    than the database pays for the statement (a quarter of an audited read went there). The
    statement is still written with SQLAlchemy, against the models; bound values still pass
    through their column types (a date on SQLite). Rows come back as the driver gives them, as
    named tuples: only statements whose columns need no conversion belong here (integers, text,
    bytes, flags read as truthy), and errors are raised as the SQL layer would raise them.
    ``count`` outside a transaction on PostgreSQL skips the cursor too (``_count_on_libpq``).
    """

    def __init__(self, statement):
        self.statement = statement
        self._by_dialect: dict[str, tuple] = {}
        self._on_libpq: tuple | None = None

    def _compiled(self, dialect) -> tuple:
        compiled = self.statement.compile(dialect=dialect)
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        processors = {
            name: compiled.binds[name].type.bind_processor(dialect) for name in compiled.binds
        }
        done = (compiled.string, compiled.positional, names, processors, {}, _fixed(compiled))
        self._by_dialect[dialect.name] = done
        return done

    def _bound(self, dialect, given: dict):
        sql, positional, names, processors, _, fixed = self._by_dialect.get(
            dialect.name
        ) or self._compiled(dialect)
        values = {}
        for name in names:
            value = given[name] if name in given else fixed[name]
            process = processors.get(name)
            values[name] = process(value) if process is not None and value is not None else value
        return sql, ([values[n] for n in names] if positional else values)

    def first(self, conn, given: dict):
        """The first row (a named tuple), or None."""
        sql, values = self._bound(conn.dialect, given)

        def call(cursor):
            cursor.execute(sql, values)
            row = cursor.fetchone()
            if row is None:
                return None
            return self._row_type(conn.dialect.name, cursor)(*row)

        return on_cursor(conn, call, sql, values)

    def count(self, conn, given: dict) -> int:
        """Run the statement once; answers how many rows it wrote (an insert of a SELECT)."""
        pgconn = _idle_autocommit_pgconn(conn)
        if pgconn is not None:
            return self._count_on_libpq(conn, pgconn, given)
        sql, values = self._bound(conn.dialect, given)

        def call(cursor):
            cursor.execute(sql, values)
            return cursor.rowcount

        return on_cursor(conn, call, sql, values)

    def many(self, conn, rows: list[dict]) -> None:
        """Run the statement once per row (an insert of a batch)."""
        bound = [self._bound(conn.dialect, row) for row in rows]
        sql, values = bound[0][0], [v for _, v in bound]
        if len(values) == 1:  # (psycopg runs executemany as a pipeline: more round trips)
            on_cursor(conn, lambda cursor: cursor.execute(sql, values[0]), sql, values[0])
        else:
            on_cursor(conn, lambda cursor: cursor.executemany(sql, values), sql, values, True)

    def _count_on_libpq(self, conn, pgconn, given: dict) -> int:
        """``count`` on PostgreSQL outside a transaction: one call into libpq, which sends the
        values to the statement the server holds prepared and waits for its result without the
        GIL. psycopg's cursor around the same round trip (its query conversion, one dumper per
        value, its result handling) cost more than the rest of an audited read's statement in
        the worker. Values go in the text format, bytes in the binary one; the server takes
        their types from the statement."""
        name, sql, encoders, formats, fixed = self._on_libpq or self._compile_for_libpq()
        values = []
        for key, encode in encoders.items():
            value = given[key] if key in given else fixed[key]
            values.append(None if value is None else encode(value))
        if conn.dispatch.before_cursor_execute:
            conn.dispatch.before_cursor_execute(conn, None, sql, values, None, False)
        prepared = _PREPARED_ON.get(pgconn)
        if prepared is None:  # (not setdefault: that would make a set on every read)
            prepared = _PREPARED_ON[pgconn] = set()
        if name not in prepared:
            _libpq_result(sql, pgconn.prepare(name, sql.encode()), pgconn)
            prepared.add(name)
        result = pgconn.exec_prepared(name, values, formats)
        if result.error_field(_SQLSTATE) == _NO_SUCH_STATEMENT:
            # Deallocated on the server since (DISCARD ALL, DEALLOCATE): prepared again.
            _libpq_result(sql, pgconn.prepare(name, sql.encode()), pgconn)
            result = pgconn.exec_prepared(name, values, formats)
        return int(_libpq_result(sql, result, pgconn).command_tuples or 0)

    def _compile_for_libpq(self) -> tuple:
        """The statement with $n parameters, its name on the server, and per parameter (in
        order) the encoder of its column type and libpq's format for it."""
        compiled = self.statement.compile(dialect=_NUMBERED)
        encoders, formats = {}, []
        for key in compiled.positiontup:
            encode, binary = _libpq_encoder(compiled.binds[key].type)
            encoders[key] = encode
            formats.append(binary)
        if len(encoders) != len(formats):
            raise ValueError("a parameter used twice is bound once: $n per name expected")
        name = f"govern_{next(_STATEMENT_NAMES)}".encode()
        self._on_libpq = (name, compiled.string, encoders, formats, _fixed(compiled))
        return self._on_libpq

    def _row_type(self, dialect: str, cursor):
        kinds = self._by_dialect[dialect][4]
        kind = kinds.get("row")
        if kind is None:
            # The cursor's description is read once: psycopg builds it anew on every access.
            names = [d[0] for d in cursor.description]
            kind = kinds["row"] = namedtuple("Row", names, rename=True)
        return kind


class BulkInsert:
    """Rows into one table in one statement, where the driver allows it: on PostgreSQL by COPY,
    the server's own bulk load (no statement to parse and plan, and each value goes in the
    column's text form, which psycopg writes in C), where executemany pays for a statement per
    row in the driver, and a JSON document of the rows cost the worker its encoding (a tenth of an
    integration batch's time in-process) and the server its parsing: with COPY an integrated
    entry's CPU, worker and server together, fell from 158 to 150 µs.
    A few rows go in one INSERT with a VALUES list instead: a COPY is two round trips (the
    server's go-ahead, then the data), and its setup costs the worker more than a few rows'
    parameters. Measured in-process (the worker's CPU per batch, medians of 3, VALUES against
    COPY): 2 tree nodes 35 against 64 µs, 16 nodes 50 against 78, 32 nodes 187 against 97;
    2 entries 47 against 77, 4 entries 127 against 90. Hence at most ``FEW_VALUES`` values by
    VALUES: a request's own append (two entries, a few nodes) and a light load's small batches
    go by VALUES, a busy batch by COPY.
    Elsewhere executemany (SQLite's is a loop in C). Rows are tuples in ``columns`` order of
    integers, text and bytes. In the caller's transaction."""

    FEW_VALUES = 48

    def __init__(self, table, columns: tuple[str, ...]):
        # Names from the model's own table: nothing from outside goes into the statement's text.
        self.columns = tuple(table.c[c].name for c in columns)
        names = ", ".join(self.columns)
        into = f"INSERT INTO {table.name} ({names})"
        self._sqlite = f"{into} VALUES ({', '.join('?' for _ in columns)})"
        self._postgresql = f"COPY {table.name} ({names}) FROM STDIN"
        row = f"({', '.join('%s' for _ in columns)})"
        # The INSERT of n rows by a VALUES list, at index n, for every n up to the few.
        few = self.FEW_VALUES // len(columns)
        self._values = tuple(f"{into} VALUES {', '.join([row] * n)}" for n in range(few + 1))

    def run(self, conn, rows: list[tuple]) -> None:
        if not rows:
            return
        if conn.dialect.name != "postgresql":
            sql = self._sqlite
            on_cursor(conn, lambda cursor: cursor.executemany(sql, rows), sql, rows, True)
            return
        if len(rows) < len(self._values):
            sql, values = self._values[len(rows)], [v for row in rows for v in row]
            on_cursor(conn, lambda cursor: cursor.execute(sql, values), sql, values)
            return
        sql = self._postgresql

        def load(cursor):
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)

        on_cursor(conn, load, sql, rows, True)


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
    # An audited read's entry is committed before its bytes leave, and must survive power loss,
    # not only a killed process: the WAL is synced at every commit that wrote. FULL has SQLite do
    # it inside the commit, holding the database's write lock through the disk's flush, so two
    # workers' commits queue behind each other's flushes. A connection of a database file syncs
    # the WAL itself right after the commit, with the lock already handed on (_LockingConnection):
    # SQLite needs only NORMAL there, and flushes of several writers overlap (one flush covers
    # every commit written before it: group commit). Other connections keep FULL.
    synchronous = "NORMAL" if isinstance(dbapi_conn, _LockingConnection) else "FULL"
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.close()


# SQLite has one writer at a time. A connection that finds the write lock taken waits in SQLite's
# busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries: with two workers that
# both append to the trail on every read, most appends slept there (p99 30 ms at 8 connections).
# So writers queue on a file lock beside the database first (flock: the kernel wakes the next
# writer the moment the last one commits), then take SQLite's lock, which is then free. Readers
# never touch it. SQLite's own lock stays the rule: a write this does not recognise as one (or a
# second connection of a thread that already writes) simply falls back to the busy handler.
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "WITH", "BEGIN I")


class _WriterLock:
    """One writing connection at a time per database file: a thread lock within the process and
    a flock between processes, both handed to the next waiter at once."""

    def __init__(self, path: str, wal: str):
        self.path = path
        # The database's write-ahead log, which each writer flushes after its commit.
        self.wal = wal
        self._setup = threading.Lock()
        self._pid: int | None = None
        self._owner: object | None = None
        self._owner_thread: int | None = None

    def _fresh(self) -> None:
        # Per process: a forked worker (gunicorn) opens its own file description, or it would
        # share the parent's flock and exclude nobody; it never reuses the parent's thread lock.
        with self._setup:
            if self._pid != os.getpid():
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._mutex = threading.Lock()
                self._owner = self._owner_thread = None
                self._pid = os.getpid()

    def acquire(self, conn: object) -> None:
        if self._pid != os.getpid():
            self._fresh()
        if self._owner is conn:
            return
        if self._owner is not None and self._owner_thread == threading.get_ident():
            return  # this thread already writes on another connection: SQLite decides
        # Bounded like SQLite's own busy timeout: past it, SQLite's busy handler takes over.
        if not self._mutex.acquire(timeout=30):
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise
        self._owner, self._owner_thread = conn, threading.get_ident()

    def release(self, conn: object) -> None:
        if self._owner is conn and self._pid == os.getpid():  # (a forked child owns nothing)
            self._owner = self._owner_thread = None
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._mutex.release()


class _LockingCursor(sqlite3.Cursor):
    def execute(self, sql, parameters=(), /):
        self.connection.before(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection.after()

    def executemany(self, sql, seq_of_parameters, /):
        self.connection.before(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection.after()


class _LockingConnection(sqlite3.Connection):
    """A sqlite3 connection that queues on the database's writer lock before its first write and
    lets it go when its transaction ends (commit, rollback, close, or a statement that ended it)."""

    writer_lock: _WriterLock

    def cursor(self, factory=_LockingCursor):
        return super().cursor(factory)

    # The connection's own shortcuts make a plain cursor: these go through the locking one.
    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        return self.cursor().executemany(sql, seq_of_parameters)

    def before(self, sql: str) -> None:
        if sql.lstrip()[:7].upper().startswith(_WRITES):
            self._wrote = True
            self.writer_lock.acquire(self)

    def after(self) -> None:
        if not self.in_transaction:
            self.writer_lock.release(self)
            self.sync_wal()  # a statement that committed by itself (DDL outside a transaction)

    def commit(self):
        try:
            super().commit()
        finally:
            self.writer_lock.release(self)
        self.sync_wal()

    # A write statement since the last flush of the WAL; and the rows this connection had
    # changed by then (sqlite3's total_changes counts every insert, update and delete since the
    # connection opened, also those of statements that went around before()).
    _wrote = False
    _synced_changes = 0

    def sync_wal(self) -> None:
        """Flush the WAL to the disk when this connection wrote since the last flush: whatever
        it committed is then durable (with everything written to the WAL before it, by any
        connection). Outside the write lock, so that others write meanwhile."""
        changes = self.total_changes
        if not self._wrote and changes == self._synced_changes:
            return
        fd = os.open(self.writer_lock.wal, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        self._wrote, self._synced_changes = False, changes

    def rollback(self):
        try:
            return super().rollback()
        finally:
            self.writer_lock.release(self)
            self._wrote, self._synced_changes = False, self.total_changes

    def close(self):
        try:
            return super().close()
        finally:
            self.writer_lock.release(self)


_LOCKS: dict[str, _WriterLock] = {}


def _writer_locked(database: str) -> type[sqlite3.Connection]:
    """The connection class for one database file, sharing that file's writer lock."""
    path = os.path.abspath(database)
    lock = _LOCKS.setdefault(path, _WriterLock(path + "-writer", path + "-wal"))
    return type("LockingConnection", (_LockingConnection,), {"writer_lock": lock})


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
