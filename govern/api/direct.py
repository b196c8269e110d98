"""The audited read of an item's content over a bearer token, served without Flask's request
cycle: the hottest route of the API, answered by the same services in the same unit of work.

``GET /api/v1/items/{id}/content`` with ``Authorization: Bearer`` is what a vendor's tools call
for every file they open. Through Flask that request pays for a request context, routing, the
cookie session's hooks, the response object and its after-request hooks: about a third of the
read's CPU, for nothing the read needs. Here the same steps run in the same order on the same
code: the token and the live account (accounts.user_for_token, read in one statement with the
item's facts), the role check (require_role_for), the decision with its rule, the NDA and
need-to-know, the decryption (items.read_content), and the entry committed durably before the
bytes leave (Ctx.commit); the answer carries the same headers (content_headers, API_HEADERS).

The same read again (same caller, item and office day) in the same process is decided on the
row this process remembers from the last allowed one (accounts.Remembered), and its entry is
written by one statement that inserts it only where the database still holds that very row: one
statement per read, not two, and nothing is served that the database's state at the insert would
refuse (a changed row writes nothing, and the route decides on what the database holds).

Only an allowed read is answered here. Anything else — no token, a stale or forged one, a denial,
an item that is missing or destroyed, a trail that cannot be written — is handed whole to the
Flask route, before anything was written: the unit of work here is dropped uncommitted (its
statements only read; read-only units refuse changes), so the route decides again, records its
decision and answers with its own error envelope, in the reader's language. A query string
(``?lang=``) goes to the route too. ``GOVERN_DIRECT_READ=0`` sends every request to the route.
"""

from __future__ import annotations

import logging
import os
import re

from govern import API_HEADERS, audit, logs, missing_headers
from govern.actions import Action
from govern.api.agreements import content_headers
from govern.context import Ctx, Principal, Runtime, require_role_for
from govern.db import MAX_ID
from govern.errors import GovernError
from govern.http import request_id_from
from govern.services import accounts, items

log = logging.getLogger(__name__)

_PATH = re.compile(r"/api/v1/items/([1-9][0-9]{0,9})/content")


class DirectRead:
    """WSGI middleware in front of the Flask app (inside ProxyFix, so the client address is the
    one the trail records for every other request)."""

    def __init__(self, runtime: Runtime, app):
        self.runtime = runtime
        self.app = app
        # What this process read for earlier allowed reads (accounts.Remembered): a read again
        # of the same item by the same caller on the same day is one statement, the entry's
        # insert, which writes it only while the database still holds what was remembered.
        self.remembered = accounts.Remembered()
        # A connection kept between reads (ReadConnection), with the process it belongs to: a
        # sync worker reads one request at a time, and a checkout from the pool and a check-in
        # around every read cost as much in the worker as a fifth of the read (in-process, on
        # PostgreSQL: 55 µs of 250 µs of CPU). One at most: a thread that finds it taken (a
        # threaded server) uses the pool. (list.pop and append are atomic: no lock needed.)
        self.held: list[tuple[int, object]] = []

    def __call__(self, environ, start_response):
        answer = self._plain_read(environ)
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _plain_read(self, environ):
        """(status, headers, body) for an allowed read, or None: the route answers it."""
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING"):
            return None
        found = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if found is None or authorization[:7].lower() != "bearer ":
            return None
        item_id, token = int(found.group(1)), authorization[7:].strip()
        if item_id > MAX_ID or not token:
            return None
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        client = (environ.get("REMOTE_ADDR") or "-")[:64]
        with logs.request_id_as(request_id):
            return self._read(item_id, token, request_id, client)

    def _unit(self):
        """What the read runs on: one autocommit connection where the store queues the trail
        (``ReadConnection``), else an ORM session (the entry then joins the chain in the read's
        own transaction)."""
        runtime = self.runtime
        engine = runtime.autocommit_engine
        if engine is not None and runtime.settings.trail_queue and audit.queues_on(engine.dialect):
            return ReadConnection(engine, self.held)
        return runtime.sessions()

    def _read(self, item_id: int, token: str, request_id: str, client: str):
        runtime = self.runtime
        unit = self._unit()
        # (only where the entry is queued by one insert, which can carry the condition)
        remembered = self.remembered if isinstance(unit, ReadConnection) else None
        ctx = Ctx(runtime, unit, Principal.anonymous(), request_id, client)
        user = None
        try:
            ctx.read_only()
            today = ctx.today()
            along = items.read_along(item_id, today)
            try:
                user = accounts.user_for_token(ctx, token, along, remembered)
                row = ctx.along[1]
                ctx.principal = accounts.principal_for(user)
                require_role_for(ctx, Action.ITEM_READ)
                item, content = items.read_content(ctx, item_id, today)
                ctx.commit()
            except Exception as exc:
                # Nothing was written: the route decides again, records and answers (a bug or
                # a lost database is met there again, and answered and logged as the API does).
                if not isinstance(exc, GovernError | HandOff | audit.Unsettled):
                    log.warning("direct read handed to the route: %s", exc.__class__.__name__)
                if remembered is not None and user is not None:
                    remembered.forget(along[0], user.id, along[1])
                if isinstance(ctx.db, ReadConnection):
                    ctx.db.drop()  # it may be what failed: the next read takes a fresh one
                ctx.pending.clear()
                ctx.kept.clear()
                ctx.db.rollback()
                return None
        finally:
            ctx.db.close()
        if remembered is not None and ctx.known is None:
            remembered.keep(along[0], user.id, along[1], user, row)
        headers = [*content_headers(item), ("Content-Length", str(len(content)))]
        headers += missing_headers(headers, API_HEADERS, request_id)
        return "200 OK", headers, content


class HandOff(AttributeError):
    """The read asked its unit for something only an ORM session does: the route serves it."""


class ReadConnection:
    """The direct read's unit of work, in place of an ORM session: one connection from the
    runtime's autocommit pool, and nothing else. The connection is kept (``held``) for the next
    read, unless the read failed: a connection that may be broken goes back to the
    pool, which checks one that was idle before it hands it out again (db.IDLE_PING_SECONDS).
    One the server dropped while it was held fails its read's first statement, before anything
    was written: that read goes to the route, and the next takes a fresh connection.

    The read loads and changes no object. Its two statements (the account with the item's facts,
    and the trail's queue insert) are ``Prepared`` ones, and each commits as it runs: on the
    driver's cursor, but for a read again's insert on PostgreSQL, which goes to libpq itself
    (``Prepared.count``). A session made, bound, transacted and closed around them cost a fifth of the
    read's instructions in the worker (callgrind, on PostgreSQL: 1,061k a read with it, 839k
    without). This offers the part of the session that ``Ctx`` and the services on this path
    use. Any other use (an ORM lookup, which only a denial's explanation makes) raises
    ``HandOff``; nothing was written by then, and the route decides again on a session of its
    own.
    """

    new = dirty = deleted = ()  # no object is ever added, changed or deleted here
    autoflush = False

    def __init__(self, engine, held: list):
        self.bind = engine
        self.held = held
        self.info: dict = {}
        self._conn = None

    def connection(self, **_options):
        # Taken at the first statement, inside the read's error handling: a pool that cannot
        # connect hands the request to the route, which answers it as the API does (503).
        if self._conn is None:
            try:
                pid, kept = self.held.pop()
            except IndexError:
                pid = kept = None
            # (a connection held by the process this one was forked from is never used here)
            self._conn = kept if pid == os.getpid() else self.bind.connect()
        return self._conn

    def drop(self) -> None:
        """Give the connection back to the pool, not to be kept; one that is lost (the
        driver saw it go) is discarded instead."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if getattr(conn.connection.dbapi_connection, "closed", False):
                conn.invalidate()
            else:
                conn.close()
        except Exception:  # noqa: BLE001 - the read goes to the route whatever this connection does
            conn.invalidate()

    def get_bind(self, *_args, **_kw):
        return self.bind

    def in_transaction(self) -> bool:
        return False  # autocommit: each statement committed (or not) as it ran

    def flush(self) -> None:
        pass  # no objects, nothing to send

    def rollback(self) -> None:
        pass  # nothing is pending outside a transaction

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if self.held:
                conn.close()  # another thread's is kept already
            else:
                self.held.append((os.getpid(), conn))

    def __getattr__(self, name):
        raise HandOff(name)
