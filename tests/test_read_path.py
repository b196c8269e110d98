"""The audited read's fast path (issue 13, parts 2 and 4): how many statements one read runs, and
that nothing it keeps between requests lets a read through that the live state refuses.

A vendor staff member's ``GET /api/v1/items/{id}/content`` reads, in one statement, the live
account behind its bearer token with the policy version, and the item with its wrapped key, its
agreement, the NDA and the need-to-know; then appends its audit entry (the trail's own
statements) and commits. The same read again in the same process is one statement: the entry's
insert, which writes it only where the database still holds the row the process remembered.
Counted with a ``before_cursor_execute`` listener on the app's real engine, on every store, so
that a statement added back to this path fails here.

Every "same worker" test below reads twice through one app (one process: one policy enforcer, one
decision cache, one connection pool) with a change committed in between, as a second request
would meet it in a gunicorn worker that served the first.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from govern import create_app, db, policy, tokens
from govern.actions import Action
from govern.clock import OfficeClock
from govern.context import Ctx, Principal
from govern.models import Nda, NeedToKnow, User
from govern.services.accounts import AlongAccount, Remembered
from tests.conftest import PASSWORD, Api, as_operator
from tests.pages import Reader
from tests.test_vendor import change, nda, ntk

# Before the audit entry, one statement: the live account with the policy version, and the item
# with its wrapped key, its agreement, the NDA and the need-to-know. (Before issue 13: 9
# statements in all, 6 of them lookups: account, policy version, item, agreement, NDA,
# need-to-know; then 2 lookups, the account and the item's facts.)
READ_LOOKUPS = 1
# The trail's append, counted apart, so that a change to it shows as one, not as a lookup crept
# back. On both stores (group commit): the entry queued with the read, and nothing else; the
# process's integrator thread moves it into the chain after the response (govern.integrator).
# Before that, SQLite appended it in the read's own transaction: the head taken, the entry
# inserted, the tree's new nodes inserted, the head moved (4); PostgreSQL's request integrated it
# itself after its commit, a second transaction (5 in all).
TRAIL_STATEMENTS = 1
# The same read again (same caller, item and day, in the same process): no lookup; the entry's
# insert checks, in its own statement, that the database would read the same row now.
READ_AGAIN = 1
# What that insert compares: everything the decision was taken on.
TABLES = ("FROM users", "policy_state", "FROM items", "agreements", "ndas", "need_to_know")


def read_statements(runtime) -> int:
    return READ_LOOKUPS + TRAIL_STATEMENTS


@pytest.fixture
def readable(office):
    """An item the staff member may read: NDA and need-to-know given. Answers its content URL."""
    agreement = office.agreement()
    item = office.item(agreement["id"], content=b"design v3")
    assert nda(office, agreement["id"]).status_code == 201
    granted = ntk(office, agreement["id"], [item["id"]])
    assert granted.status_code == 201
    office.ids = {
        "agreement": agreement["id"],
        "item": item["id"],
        "ntk": granted.get_json()["need_to_know"][0]["id"],
    }
    return f"/api/v1/items/{item['id']}/content"


def engines(runtime) -> list[sa.Engine]:
    """The app's engines: its own, and the one whose connections are in autocommit from the
    start, for the units of work that only read (Runtime.autocommit_engine)."""
    return [e for e in (runtime.engine, runtime.autocommit_engine) if e is not None]


def autocommit(dbapi) -> bool:
    """Is this driver connection outside a transaction between statements?"""
    return getattr(dbapi, "autocommit", False) is True or (
        isinstance(dbapi, sqlite3.Connection) and dbapi.isolation_level is None
    )


class Statements:
    """Every statement the app's engines send for the request, as SQLAlchemy hands it to the
    driver. Only the calling thread's: the test client serves the request in it, while the
    integrator thread's statements are the trail's work after the response, not the read's."""

    def __init__(self, runtime):
        self.engines = engines(runtime)
        self.seen: list[str] = []
        self.thread = threading.get_ident()

    def __enter__(self):
        for engine in self.engines:
            sa.event.listen(engine, "before_cursor_execute", self._count)
        return self.seen

    def __exit__(self, *exc):
        for engine in self.engines:
            sa.event.remove(engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == self.thread:
            self.seen.append(" ".join(statement.split()))


def read(office, url, as_="staff"):
    return office.get(url, as_)


def test_an_audited_read_runs_one_lookup_and_the_trails_statements(office, runtime, readable):
    office.login("staff")
    # The enforcer and the pool are warmed by a read of another item, so this item's first
    # read is not one the process remembers.
    other = office.item(office.ids["agreement"], content=b"other")["id"]
    assert ntk(office, office.ids["agreement"], [other]).status_code == 201
    assert read(office, f"/api/v1/items/{other}/content").status_code == 200
    entries = len(office.audit_entries())
    with Statements(runtime) as seen:
        response = read(office, readable)
    assert response.status_code == 200 and response.data == b"design v3"
    lookups = [s for s in seen if "audit_" not in s]
    trail = [s for s in seen if "audit_" in s]
    assert len(lookups) == READ_LOOKUPS and seen[:READ_LOOKUPS] == lookups, "\n".join(seen)
    assert len(trail) == TRAIL_STATEMENTS, "\n".join(seen)
    assert len(seen) == read_statements(runtime)
    assert all(t in lookups[0] for t in TABLES), lookups[0]
    # One entry per read, with the rule that allowed it and the bytes it let out.
    assert len(office.audit_entries()) == entries + 1
    (entry,) = office.audit_entries()[-1:]
    assert entry["action"] == "item:read" and entry["decision"] == "allow"
    assert entry["actor"] == "staff" and entry["rule"].startswith("p, vendor_staff")
    assert entry["details"]["size"] == len(b"design v3")


def test_the_same_read_again_is_one_statement_that_checks_what_it_remembers(
    office, runtime, readable
):
    office.login("staff")
    assert read(office, readable).status_code == 200
    first = office.audit_entries()[-1]
    with Statements(runtime) as seen:
        response = read(office, readable)
    assert response.status_code == 200 and response.data == b"design v3"
    assert len(seen) == READ_AGAIN, "\n".join(seen)
    (insert,) = seen
    assert insert.startswith("INSERT INTO audit_queue") and " WHERE EXISTS " in insert, insert
    assert all(t in insert for t in TABLES), insert
    # The same entry as a read that looked everything up: only its place and time differ.
    again = office.audit_entries()[-1]
    assert again["seq"] == first["seq"] + 1
    same = ("actor", "role", "action", "target", "decision", "rule", "details")
    assert {k: again[k] for k in same} == {k: first[k] for k in same}


def test_the_count_does_not_grow_with_more_reads_items_or_accounts(office, runtime, readable):
    for n in range(5):
        office.user(f"staff{n}", "vendor_staff")
        office.item(office.ids["agreement"], title=f"other {n}")
    office.login("staff")
    assert read(office, readable).status_code == 200
    for _ in range(3):
        with Statements(runtime) as seen:
            assert read(office, readable).status_code == 200
        assert len(seen) == READ_AGAIN, "\n".join(seen)


def test_a_served_reads_entry_is_flushed_to_disk_before_its_bytes_leave(
    office, runtime, readable, monkeypatch
):
    """A served read's entry survives power loss, not only a killed process (issue 13, part 2).

    On both stores the lookups and the entry's insert run outside a transaction: no BEGIN, no
    COMMIT, and the insert is committed as it runs. SQLite: the write-ahead log is flushed
    (fdatasync) after that commit, with the write lock already handed on, and before the
    response. PostgreSQL: the commit is flushed by the server (synchronous_commit)."""
    office.login("staff")
    assert read(office, readable).status_code == 200
    events: list[str] = []
    flush = os.fdatasync
    me = threading.get_ident()  # the integrator thread's statements and flushes are not the read's

    def fdatasync(fd):
        if threading.get_ident() == me:
            events.append("flush " + os.readlink(f"/proc/self/fd/{fd}"))
        flush(fd)

    def statement(conn, cursor, sql, parameters, context, executemany):
        if threading.get_ident() != me:
            return
        mode = "autocommit" if autocommit(conn.connection.dbapi_connection) else "in a transaction"
        events.append(f"{' '.join(sql.split())[:40]} ({mode})")

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    for engine in engines(runtime):
        sa.event.listen(engine, "before_cursor_execute", statement)
    try:
        response = read(office, readable)
        sent = len(events)
    finally:
        for engine in engines(runtime):
            sa.event.remove(engine, "before_cursor_execute", statement)
    assert response.status_code == 200
    events = events[:sent]
    statements = [e for e in events if not e.startswith("flush ")]
    assert statements and all(e.endswith("(autocommit)") for e in statements), events
    assert statements[-1].startswith("INSERT INTO audit_queue"), events
    if runtime.engine.dialect.name == "sqlite":
        wal = runtime.engine.url.database + "-wal"
        assert events[-2:] == [statements[-1], f"flush {os.path.realpath(wal)}"], events
        with runtime.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            # The commit itself does not wait for the disk: the flush after it does.
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    else:
        assert events[-1] == statements[-1], events
        with runtime.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() in (
                "on",
                "remote_apply",
            )


def test_a_sqlite_transaction_that_only_read_flushes_nothing(runtime, monkeypatch):
    """Only a commit that wrote pays for the flush; a statement that committed by itself (DDL
    outside a transaction) is flushed too."""
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite connection's own flush")
    flushed: list[int] = []
    flush = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (flushed.append(fd), flush(fd)))
    with runtime.engine.connect() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM users").scalar()
        conn.commit()
        assert flushed == []
        conn.exec_driver_sql("CREATE TABLE scratch_flush (x INTEGER)")
        conn.commit()
        assert len(flushed) == 1
        conn.exec_driver_sql("INSERT INTO scratch_flush VALUES (1)")
        conn.commit()
        assert len(flushed) == 2
        conn.exec_driver_sql("DROP TABLE scratch_flush")
        conn.commit()


# Ways around what the read path keeps (the policy snapshot and its verdicts, the pool): each
# change between two reads in the same worker is seen by the second read.


def refused(office, url, status, *words):
    response = read(office, url)
    assert response.status_code == status, response.get_json()
    message = response.get_json()["error"]["message"]
    assert all(w in message for w in words), message
    return response


def test_a_disabled_account_reads_no_more(office, readable):
    office.user("sysadm", "system_admin")
    assert read(office, readable).status_code == 200
    staff_id = next(
        u["id"]
        for u in office.get("/api/v1/users", "sysadm").get_json()["users"]
        if u["username"] == "staff"
    )
    assert office.post(f"/api/v1/users/{staff_id}/disable", "sysadm").status_code == 200
    refused(office, readable, 401, "no longer valid")
    (entry,) = office.audit_entries(action="auth:bearer")
    assert entry["rule"].endswith("account disabled")


def test_a_changed_password_ends_the_token_at_once(office, readable):
    assert read(office, readable).status_code == 200
    changed = office.post(
        "/api/v1/auth/password",
        json={"username": "staff", "current_password": PASSWORD, "new_password": PASSWORD + "!"},
    )
    assert changed.status_code == 200, changed.get_json()
    refused(office, readable, 401, "no longer valid")
    (entry,) = office.audit_entries(action="auth:bearer")
    assert entry["rule"].endswith("credentials changed")


def test_a_role_taken_away_between_two_reads_is_seen(office, runtime, readable):
    assert read(office, readable).status_code == 200
    version = runtime.policy.version
    with as_operator(runtime) as ctx:
        policy.unassign_role(ctx.db, "staff", "vendor_staff")
    refused(office, readable, 403, "denied")
    assert runtime.policy.version > version
    entry = office.audit_entries(action="item:read")[-1]
    assert entry["decision"] == "deny" and entry["actor"] == "staff"


def test_a_policy_rule_removed_between_two_reads_is_seen(office, runtime, readable):
    """The decision cache holds verdicts of one policy version only: a removed rule is gone for
    the next read, though the account's row did not change at all."""
    assert read(office, readable).status_code == 200
    rule = (
        sa.select(policy.CasbinRule)
        .where(policy.CasbinRule.ptype == "p", policy.CasbinRule.v0 == "vendor_staff")
        .where(policy.CasbinRule.v2 == "item", policy.CasbinRule.v3 == "read")
    )
    with as_operator(runtime) as ctx:
        rows = list(ctx.db.scalars(rule))
        assert rows
        for row in rows:
            ctx.db.delete(row)
        policy.bump_version(ctx.db)
    response = read(office, readable)
    assert response.status_code == 403, response.get_json()
    entry = office.audit_entries(action="item:read")[-1]
    assert entry["decision"] == "deny" and "no matching policy rule" in entry["rule"]


def test_a_recalled_item_is_refused_on_the_next_read(office, readable):
    assert read(office, readable).status_code == 200
    recalled = office.post(
        f"/api/v1/agreements/{office.ids['agreement']}/recalls",
        "approver",
        json={"item_ids": [office.ids["item"]], "reason": "security review"},
    )
    assert recalled.status_code == 201, recalled.get_json()
    refused(office, readable, 403, "is recalled")


def test_a_destroyed_item_is_refused_on_the_next_read(office, readable):
    assert read(office, readable).status_code == 200
    done = office.post(
        f"/api/v1/items/{office.ids['item']}/destroy", "approver", json={"reason": "retention"}
    )
    assert done.status_code == 200, done.get_json()
    refused(office, readable, 403, "is destroyed")


def test_an_nda_that_lapses_between_two_reads_is_seen(office, runtime, readable):
    assert read(office, readable).status_code == 200
    yesterday = runtime.clock.today() - timedelta(days=1)
    with runtime.sessions() as db:
        (nda_id,) = db.scalars(sa.select(Nda.id))
    change(runtime, Nda, nda_id, expires_on=yesterday)
    refused(office, readable, 403, "no valid NDA: it lapsed on", yesterday.isoformat())


def test_need_to_know_revoked_between_two_reads_is_seen(office, readable):
    assert read(office, readable).status_code == 200
    revoked = office.post(
        f"/api/v1/need-to-know/{office.ids['ntk']}/revoke", "lead", json={"reason": "moved on"}
    )
    assert revoked.status_code == 200
    refused(office, readable, 403, "it was revoked")


def test_an_agreement_terminated_between_two_reads_is_seen(office, runtime, readable):
    from govern.models import Agreement

    assert read(office, readable).status_code == 200
    today = runtime.clock.today()
    change(runtime, Agreement, office.ids["agreement"], status="terminated", terminated_on=today)
    refused(office, readable, 403, "is terminated")


class _TomorrowClock(OfficeClock):
    """The office's clock a day on: the office's midnight has passed."""

    def now(self):
        return super().now() + timedelta(days=1)


def test_a_read_remembered_yesterday_is_not_todays(office, runtime, readable, monkeypatch):
    """What a process remembers is a row for one day: an NDA that ends today lets the read
    through today, and tomorrow the same request is decided on tomorrow's facts."""
    with runtime.sessions() as db:
        (nda_id,) = db.scalars(sa.select(Nda.id))
    change(runtime, Nda, nda_id, expires_on=runtime.clock.today())
    assert read(office, readable).status_code == 200
    assert read(office, readable).status_code == 200  # remembered, and still true today
    ends = runtime.clock.today().isoformat()
    monkeypatch.setattr(runtime, "clock", _TomorrowClock(runtime.clock.name))
    refused(office, readable, 403, "no valid NDA: it lapsed on", ends)


def test_a_remembered_row_that_no_longer_holds_writes_nothing_and_the_route_decides(
    office, runtime, readable, caplog
):
    """Another worker's change (here straight in the database) between two reads of one process:
    the remembered read writes no entry of its own and is not logged as a fault; the route
    decides on what the database holds and records one refusal."""
    assert read(office, readable).status_code == 200
    assert read(office, readable).status_code == 200  # now from what the process remembers
    before = office.audit_entries()
    change(runtime, NeedToKnow, office.ids["ntk"], revoked_at=db.utcnow())
    with caplog.at_level("WARNING", "govern.api.direct"):
        refused(office, readable, 403, "it was revoked")
    assert [r for r in caplog.records if r.name == "govern.api.direct"] == []
    after = office.audit_entries()
    assert len(after) == len(before) + 1
    assert after[-1]["action"] == "item:read" and after[-1]["decision"] == "deny"
    # And the next read is not let through by anything kept from before either.
    refused(office, readable, 403, "it was revoked")


def test_a_second_process_on_the_same_database_is_seen_by_the_first(
    office, settings_overrides, readable
):
    """Two processes (two apps, each with its own memory, pool and enforcer) on one database:
    an account disabled through the second is refused at once by the first, which remembered
    its last read."""
    assert read(office, readable).status_code == 200
    assert read(office, readable).status_code == 200
    other = create_app(settings_overrides)
    try:
        second = Api(other.test_client(), other.extensions["govern"])
        second.user("sysadm", "system_admin")
        listed = second.get("/api/v1/users", "sysadm").get_json()["users"]
        staff_id = next(u["id"] for u in listed if u["username"] == "staff")
        assert second.post(f"/api/v1/users/{staff_id}/disable", "sysadm").status_code == 200
    finally:
        other.extensions["govern"].engine.dispose()
    refused(office, readable, 401, "no longer valid")


def test_what_a_process_remembers_is_bounded():
    along = AlongAccount(sa.select(sa.literal(1).label("x")))
    held = Remembered(rows=3, kept_bytes=800)
    for n in range(5):
        held.keep(along, n, {"item_id": n}, (n,), (b"x" * 10,))
    assert len(held) == 3 and held.get(along, 0, {"item_id": 0}) is None
    assert held.get(along, 4, {"item_id": 4}) == ((4,), (b"x" * 10,))
    held.keep(along, 9, {"item_id": 9}, (9,), (b"x" * 101,))  # over an eighth of the bytes
    assert held.get(along, 9, {"item_id": 9}) is None
    for n in range(10, 13):
        held.keep(along, n, {"item_id": n}, (n,), (b"x" * 100,))
    held.keep(along, 13, {"item_id": 13}, (13,), (b"x" * 100,))
    assert len(held) == 3
    held.forget(along, 13, {"item_id": 13})
    assert len(held) == 2 and held.get(along, 13, {"item_id": 13}) is None


def test_another_vendors_staff_with_a_valid_token_learns_nothing(office, readable):
    """The agreement's vendor is read with the item on every read: another vendor's staff, even
    with an NDA row of its own in this agreement, hears 404 as if the item did not exist."""
    office.user("rival", "vendor_staff", org="另一家软件公司")
    response = read(office, readable, as_="rival")
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == f"item {office.ids['item']} does not exist"


def test_a_missing_item_is_404_and_a_forged_token_is_401(office, readable):
    missing = office.get("/api/v1/items/999999/content", "staff")
    assert missing.status_code == 404
    token = office.login("staff")
    head, payload, signature = token.split(".")
    # The same claims signed by someone else, and a token saying "no algorithm".
    forged = f"{head}.{payload}.{base64.urlsafe_b64encode(b'x' * 32).decode().rstrip('=')}"
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    for bad in (forged, f"{none_head}.{payload}.", token + "x", token[:-1] + "!"):
        response = office.client.get(readable, headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad


def test_an_idle_postgresql_connection_that_died_is_replaced_before_use(runtime, monkeypatch):
    """No ping per request (it was a round trip on every read), but a pooled connection idle for
    IDLE_PING_SECONDS is pinged first: one the server dropped is replaced, never handed out."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to lose")
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # every checkout counts as idle
    with runtime.engine.connect() as conn:
        first = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    killer = sa.create_engine(runtime.engine.url, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(first)})").scalar()
    killer.dispose()
    with runtime.engine.connect() as conn:
        second = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert second != first


def test_a_bearer_request_is_the_tokens_holder_whatever_cookie_rides_along(office, app, readable):
    """Bearer API requests skip the cookie session (not even read): the token says who calls, and
    the answer neither sets nor varies on a cookie. The approver's signed-in browser session sent
    with the staff member's token reads as the staff member, under the staff member's rules."""
    reader = Reader(app).login("approver")
    token = office.login("staff")
    response = reader.client.get(readable, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.vary
    entry = office.audit_entries(action="item:read")[-1]
    assert entry["actor"] == "staff" and entry["rule"].startswith("p, vendor_staff")
    # The same browser without the token is the approver (cookie sessions still work on GETs).
    assert reader.get(readable).status_code == 200
    assert office.audit_entries(action="item:read")[-1]["actor"] == "approver"
    # A bearer token that fails is refused, not answered from the cookie.
    refused = reader.client.get(readable, headers={"Authorization": "Bearer nonsense"})
    assert refused.status_code == 401


def test_the_token_check_refuses_what_python_jose_refused(office, runtime, readable):
    """The read path keeps python-jose's verified claims per token and re-checks only the time
    window: every claim jose insists on is still insisted on (audience, issuer, exp, nbf, iat,
    jti, the algorithm), also for a token first seen while it was valid."""
    from jose import jwt

    assert read(office, readable).status_code == 200
    with runtime.sessions() as session:
        staff_id = session.scalar(sa.select(User.id).where(User.username == "staff"))
    secret, issuer = runtime.keys.api_token_secret, runtime.settings.issuer
    now = int(runtime.clock.now().timestamp())
    good = {
        "iss": issuer,
        "aud": tokens.API_AUDIENCE,
        "sub": str(staff_id),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "j1",
        "cv": 1,
    }

    def status(claims, key=secret, algorithm="HS256"):
        token = jwt.encode(claims, key, algorithm=algorithm)
        return office.client.get(readable, headers={"Authorization": f"Bearer {token}"}).status_code

    assert status(good) == 200  # the control: a token built here is accepted
    drop = {k: {n: v for n, v in good.items() if n != k} for k in ("exp", "iat", "jti", "aud")}
    bad = {
        "expired": {**good, "exp": now - 1},
        "not yet valid": {**good, "nbf": now + 60},
        "another audience": {**good, "aud": tokens.GRANT_AUDIENCE},
        "another issuer": {**good, "iss": "https://elsewhere.example"},
        "exp as text": {**good, "exp": str(now + 300)},
        "old credentials": {**good, "cv": 0},
        "no such account": {**good, "sub": "999999"},
        "no exp": drop["exp"],
        "no iat": drop["iat"],
        "no jti": drop["jti"],
        "no aud": drop["aud"],
    }
    for why, claims in bad.items():
        assert status(claims) == 401, why
    assert status(good, key=secret + "x") == 401
    assert status(good, algorithm="HS512") == 401


def test_with_the_queue_off_a_read_appends_inside_its_transaction(
    office, settings_overrides, readable
):
    """With the queue off (GOVERN_TRAIL_QUEUE=0), the entry joins the chain in the read's own
    transaction, under the head's row lock (SELECT ... FOR UPDATE), which must span the append's
    statements: there a read is not run outside a transaction (without one, each statement
    would let the lock go at once and two workers could take the same seq)."""
    app = create_app({**settings_overrides, "trail_queue": False})
    try:
        runtime = app.extensions["govern"]
        api = Api(app.test_client(), runtime)
        api.login("staff")
        assert api.get(readable, "staff").status_code == 200
        modes: list[tuple[str, bool]] = []

        def statement(conn, cursor, sql, parameters, context, executemany):
            dbapi = conn.connection.dbapi_connection
            modes.append((" ".join(sql.split())[:50], bool(getattr(dbapi, "autocommit", False))))

        sa.event.listen(runtime.engine, "before_cursor_execute", statement)
        try:
            assert api.get(readable, "staff").status_code == 200
        finally:
            sa.event.remove(runtime.engine, "before_cursor_execute", statement)
        assert any("audit_head" in sql for sql, _ in modes), modes  # the head taken
        assert not any(autocommit for _, autocommit in modes), modes
        entries = office.audit_entries()
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    finally:
        app.extensions["govern"].engine.dispose()


def test_a_read_only_unit_that_changes_an_object_writes_nothing(office, runtime):
    """Outside a transaction every flush would commit at once: a read-only unit of work keeps a
    change pending (no autoflush, even when it queries afterwards) and refuses it whole at
    commit, its trail entries with it."""
    ctx = Ctx(runtime, runtime.sessions(), Principal.system())
    try:
        ctx.read_only()
        user = ctx.db.scalar(sa.select(User).where(User.username == "staff"))
        user.display_name = "changed by a read"
        ctx.record(Action.ITEM_READ, "item:1")
        ctx.db.scalar(sa.select(sa.func.count()).select_from(User))  # would autoflush
        with pytest.raises(RuntimeError):
            ctx.commit()
    finally:
        ctx.db.close()
    with runtime.engine.connect() as conn:
        shown = conn.scalar(sa.select(User.display_name).where(User.username == "staff"))
    assert shown != "changed by a read"
    refused = [
        e for e in office.audit_entries() if (e["actor"], e["action"]) == ("system", "item:read")
    ]
    assert refused == []
