"""The audited read served without Flask's request cycle (govern.api.direct, issue 13 part 2).

An allowed ``GET /api/v1/items/{id}/content`` over a bearer token is answered before Flask sees
the request; everything else (a refusal, a query string, another method) goes to the route. Both
run the same services: these tests hold the two answers and their trail entries side by side, and
check that a refusal handed on is decided and recorded once, by the route.

Which of the two answered is told by Flask's own ``request_started`` signal (sent for every
request Flask handles), not by anything of govern's.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import request_started

from govern import create_app
from govern.api.direct import DirectRead
from tests.conftest import Api
from tests.pages import Reader
from tests.test_read_path import readable  # noqa: F401 - the fixture

# What differs between two answers to the same read, whoever serves it.
PER_REQUEST = {"x-request-id", "date"}
PER_ENTRY = {"seq", "at", "prev_hash", "hash", "request_id"}


@contextmanager
def flask_requests(app):
    """How many requests Flask itself handled inside the block."""
    seen: list[str] = []

    def started(sender, **_):
        seen.append("started")

    request_started.connect(started, app)
    try:
        yield seen
    finally:
        request_started.disconnect(started, app)


def headers_of(response) -> dict:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in PER_REQUEST}


def entry_of(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in PER_ENTRY}


def test_an_allowed_read_is_answered_without_flask_and_as_the_route_answers(
    app,
    office,
    settings_overrides,
    readable,  # noqa: F811
):
    office.login("staff")
    with flask_requests(app) as handled:
        direct = office.get(readable, "staff", headers={"X-Request-Id": "direct-1"})
    assert direct.status_code == 200 and direct.data == b"design v3"
    assert handled == [], "an allowed read went through Flask's request cycle"
    # The same read through the route (GOVERN_DIRECT_READ=0), on the same database and token.
    routed_app = create_app({**settings_overrides, "direct_read": False})
    try:
        routed_api = Api(routed_app.test_client(), routed_app.extensions["govern"])
        routed_api.tokens = office.tokens
        with flask_requests(routed_app) as handled:
            routed = routed_api.get(readable, "staff", headers={"X-Request-Id": "routed-1"})
        assert handled == ["started"]
    finally:
        routed_app.extensions["govern"].engine.dispose()
    assert routed.status_code == 200 and routed.data == direct.data
    assert headers_of(direct) == headers_of(routed)
    assert direct.headers["X-Request-Id"] == "direct-1"
    assert direct.headers["Content-Disposition"].startswith("attachment;")
    assert direct.headers["Cache-Control"] == "no-store"
    # One entry each, alike but for their place in the chain and the request's id.
    first, second = office.audit_entries(action="item:read")[-2:]
    assert (first["request_id"], second["request_id"]) == ("direct-1", "routed-1")
    assert entry_of(first) == entry_of(second)
    assert first["decision"] == "allow" and first["details"]["size"] == len(b"design v3")


def test_a_refused_read_is_decided_and_recorded_once_by_the_route(
    app,
    office,
    caplog,
    readable,  # noqa: F811
):
    office.user("newcomer", "vendor_staff")  # same vendor, no NDA, no need-to-know
    before = office.audit_entries(action="item:read")
    office.login("newcomer")
    with flask_requests(app) as handled, caplog.at_level("WARNING", "govern.api.direct"):
        refused = office.get(readable, "newcomer")
    assert refused.status_code == 403
    assert handled == ["started"]
    # Explaining the refusal needs an ORM lookup, which the direct read's connection does not
    # make: handed on quietly, as a refusal, not logged as a fault.
    assert [r for r in caplog.records if r.name == "govern.api.direct"] == []
    # The route's envelope with its reason (the direct path answers no refusal).
    error = refused.get_json()["error"]
    assert error["code"] == "forbidden" and error["key"] == "denied"
    assert "no valid NDA" in error["message"]
    after = office.audit_entries(action="item:read")
    assert len(after) == len(before) + 1
    assert after[-1]["decision"] == "deny" and after[-1]["actor"] == "newcomer"


def test_a_stale_token_is_refused_and_recorded_once(app, office, readable):  # noqa: F811
    office.user("sysadm", "system_admin")
    staff_id = next(
        u["id"]
        for u in office.get("/api/v1/users", "sysadm").get_json()["users"]
        if u["username"] == "staff"
    )
    assert office.get(readable, "staff").status_code == 200
    assert office.post(f"/api/v1/users/{staff_id}/disable", "sysadm").status_code == 200
    with flask_requests(app) as handled:
        assert office.get(readable, "staff").status_code == 401
    assert handled == ["started"]
    assert len(office.audit_entries(action="auth:bearer")) == 1


@pytest.mark.parametrize(
    "how",
    ["query", "head", "cookie"],
)
def test_what_is_not_a_plain_bearer_read_goes_to_the_route(
    app,
    office,
    readable,  # noqa: F811
    how,
):
    before = len(office.audit_entries(action="item:read"))
    office.login("staff")
    with flask_requests(app) as handled:
        if how == "query":
            response = office.get(readable + "?lang=zh", "staff")
        elif how == "head":
            response = office.call("HEAD", readable, "staff")
        else:
            # A signed-in page's cookie session, no token: the route's cross-site rule applies.
            reader = Reader(app).login("staff")
            handled.clear()
            response = reader.client.get(readable, headers={"Sec-Fetch-Site": "cross-site"})
    assert handled == ["started"]
    if how == "cookie":
        assert response.status_code == 403
        assert office.audit_entries(action="item:read")[-1]["decision"] == "deny"
    else:
        assert response.status_code == 200
        assert len(office.audit_entries(action="item:read")) == before + 1


def test_a_trail_that_cannot_be_written_lets_nothing_out_either_way(
    app,
    office,
    runtime,
    readable,  # noqa: F811
):
    from tests.test_policy_audit import _break_appends, _mend_appends

    assert office.get(readable, "staff").status_code == 200
    before = len(office.audit_entries())
    _break_appends(runtime)
    try:
        with flask_requests(app) as handled:
            response = office.get(readable, "staff")
    finally:
        _mend_appends(runtime)
    # Handed to the route, which tried again and answered 503 with the envelope, no bytes.
    assert handled == ["started"]
    assert response.status_code == 503 and b"design v3" not in response.data
    assert response.get_json()["error"]["code"] == "audit_unavailable"
    assert len(office.audit_entries()) == before


def _direct_read(app):
    wsgi = app.wsgi_app
    while not isinstance(wsgi, DirectRead):
        wsgi = wsgi.app
    return wsgi


def test_a_held_connection_the_server_dropped_costs_one_read_to_the_route(
    app,
    office,
    runtime,
    readable,  # noqa: F811
):
    """The direct read keeps its connection between reads (no pool checkout per read). One that
    the server dropped meanwhile fails the next read's first statement, before anything was
    written: that read is served by the route (and recorded once), and the read after it is
    direct again, on a fresh connection."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to lose")
    office.login("staff")

    def backend() -> int:
        ((_pid, held),) = _direct_read(app).held
        return held.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    with flask_requests(app) as handled:
        assert office.get(readable, "staff").status_code == 200
        first = backend()
        assert office.get(readable, "staff").status_code == 200
    assert handled == []
    assert backend() == first  # the same connection, held between the reads
    before = len(office.audit_entries(action="item:read"))
    killer = sa.create_engine(runtime.engine.url, poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({first})").scalar()
    killer.dispose()
    with flask_requests(app) as handled:
        response = office.get(readable, "staff")
    assert response.status_code == 200 and response.data == b"design v3"
    assert handled == ["started"]
    with flask_requests(app) as handled:
        assert office.get(readable, "staff").status_code == 200
    assert handled == []
    assert backend() != first
    reads = office.audit_entries(action="item:read")[before:]
    assert [(e["actor"], e["decision"]) for e in reads] == [("staff", "allow")] * 2


def test_a_read_whose_prepared_statement_the_server_forgot_is_still_direct(
    app,
    office,
    runtime,
    readable,  # noqa: F811
):
    """The entry's insert is prepared once per connection. A connection whose prepared statements
    were dropped on the server (DISCARD ALL, as a pooler may send) prepares it again: the read is
    still direct, served, and recorded once."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("statements are prepared by name on PostgreSQL only")
    office.login("staff")
    assert office.get(readable, "staff").status_code == 200
    assert office.get(readable, "staff").status_code == 200  # the remembered read's insert
    before = len(office.audit_entries(action="item:read"))
    ((_pid, held),) = _direct_read(app).held
    held.exec_driver_sql("DEALLOCATE ALL")
    with flask_requests(app) as handled:
        assert office.get(readable, "staff").status_code == 200
    assert handled == []
    assert len(office.audit_entries(action="item:read")) == before + 1


def test_two_reads_at_once_keep_one_connection_and_leak_none(
    app,
    office,
    runtime,
    readable,  # noqa: F811
):
    """In a threaded server two reads run at once: each has a connection of its own, both are
    served and recorded, and afterwards one connection is kept for the next read and the other
    is back in the pool (none left checked out by a thread that is gone)."""
    import threading

    engine = runtime.autocommit_engine
    token = office.login("staff")
    before = len(office.audit_entries(action="item:read"))
    first_inside, second_done = threading.Event(), threading.Event()
    first: list[int] = []

    def hold(conn, cursor, statement, parameters, context, executemany):
        # The first statement of the first reader waits until the second reader is done.
        if not first:
            first.append(threading.get_ident())
            first_inside.set()
            assert second_done.wait(20)

    answers: dict[str, int] = {}

    def read(name: str) -> None:
        client = app.test_client()
        response = client.get(readable, headers={"Authorization": f"Bearer {token}"})
        answers[name] = response.status_code

    sa.event.listen(engine, "before_cursor_execute", hold)
    try:
        one = threading.Thread(target=read, args=("one",))
        one.start()
        assert first_inside.wait(20)
        read("two")  # while the first read is inside its first statement
        second_done.set()
        one.join(20)
    finally:
        sa.event.remove(engine, "before_cursor_execute", hold)
    assert answers == {"one": 200, "two": 200}
    assert len(office.audit_entries(action="item:read")) == before + 2
    assert len(_direct_read(app).held) == 1
    assert engine.pool.checkedout() == 1  # the one kept; the other went back
