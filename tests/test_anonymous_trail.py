"""What callers without an account leave in the trail: every refused token and every failed
login is accounted for, never the token in clear, and repeating the same refusal cannot grow
the trail without bound (the repeats are counted and summarised)."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from govern import create_app
from govern.db import utcnow
from govern.models import DenialCounter
from tests.conftest import PASSWORD, Api


def _counters(runtime) -> list[DenialCounter]:
    with runtime.sessions() as db:
        return list(db.scalars(sa.select(DenialCounter)))


def _age_windows(runtime, minutes: int = 2) -> None:
    """Move every counting window into the past (the counters are not the trail)."""
    with runtime.engine.begin() as conn:
        conn.execute(
            sa.update(DenialCounter).values(window_start=utcnow() - timedelta(minutes=minutes))
        )


def _repeated(entries: list[dict]) -> int:
    return sum(e["details"].get("repeated", 0) for e in entries)


def test_refused_bearer_grant_and_client_tokens_are_audited_without_the_token(office):
    garbage = "not.a.token-" + "x" * 40
    forged_api = office.client.get(
        "/api/v1/agreements", headers={"Authorization": f"Bearer {garbage}"}
    )
    assert forged_api.status_code == 401
    shared = office.client.get(
        "/api/v1/shared/items/1", headers={"Authorization": f"Bearer {garbage}"}
    )
    assert shared.status_code == 401
    nothing = office.client.get("/api/v1/shared/items/1")
    assert nothing.status_code == 401
    trail = office.audit_entries(decision="deny")
    bearer = [e for e in trail if e["action"] == "auth:bearer"]
    assert len(bearer) == 1 and bearer[0]["rule"] == "invalid or expired bearer token"
    assert bearer[0]["details"]["token_sha256"] == hashlib.sha256(garbage.encode()).hexdigest()[:12]
    rules = {e["rule"] for e in trail if e["action"] == "shared:read"}
    assert rules == {"not a grant token or a client token", "no token"}
    assert garbage not in str(office.audit_entries())


def test_a_token_of_a_disabled_account_is_refused_and_audited(office):
    office.user("sysadm", "system_admin")
    token = office.login("staff")
    staff_id = next(
        u["id"]
        for u in office.get("/api/v1/users", "sysadm").get_json()["users"]
        if u["username"] == "staff"
    )
    assert office.post(f"/api/v1/users/{staff_id}/disable", "sysadm").status_code == 200
    refused = office.client.get("/api/v1/agreements", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
    (entry,) = office.audit_entries(action="auth:bearer")
    assert "no longer valid" in entry["rule"] and token not in str(office.audit_entries())


def test_a_burst_of_identical_bad_tokens_is_counted_not_written_one_by_one(office, runtime):
    before = len(office.audit_entries())
    for _ in range(100):
        response = office.client.get(
            "/api/v1/shared/items/7", headers={"Authorization": "Bearer garbage"}
        )
        assert response.status_code == 401
    written = office.audit_entries()[before:]
    assert len(written) == 1 and written[0]["rule"] == "not a grant token or a client token"
    (counter,) = _counters(runtime)
    assert counter.suppressed == 99 and counter.client == "127.0.0.1"
    # Once the minute has passed, the next identical refusal brings the count into the trail.
    _age_windows(runtime)
    office.client.get("/api/v1/shared/items/7", headers={"Authorization": "Bearer garbage"})
    summary, again = office.audit_entries()[before + 1 :]
    assert summary["details"]["repeated"] == 99 and summary["rule"].startswith("99 more identical")
    assert summary["target"] == "item:7" and summary["client"] == "127.0.0.1"
    assert again["rule"] == "not a grant token or a client token"
    assert office.get("/api/v1/audit/verify", "audit").get_json()["ok"] is True


def test_a_count_left_behind_reaches_the_trail_with_the_next_checkpoint(office, runtime):
    for _ in range(5):
        office.client.get("/api/v1/shared/items/3", headers={"Authorization": "Bearer x"})
    _age_windows(runtime)
    from govern.runtime import unit_of_work
    from govern.services import trail

    with unit_of_work(runtime) as ctx:
        trail.checkpoint(ctx)
    entries = office.audit_entries(action="shared:read")
    assert len(entries) == 2 and _repeated(entries) == 4
    assert _counters(runtime)[0].suppressed == 0


def test_different_targets_and_addresses_are_counted_apart(office, runtime):
    for item in (1, 2):
        for address in ("10.0.0.1", "10.0.0.2"):
            for _ in range(3):
                office.client.get(
                    f"/api/v1/shared/items/{item}",
                    headers={"Authorization": "Bearer x"},
                    environ_base={"REMOTE_ADDR": address},
                )
    entries = office.audit_entries(action="shared:read")
    assert len(entries) == 4
    assert sorted(c.suppressed for c in _counters(runtime)) == [2, 2, 2, 2]


def test_sixty_parallel_bad_logins_are_each_answered_and_accounted_for(settings_overrides):
    """Real threads against the served app: the failure counters' first insert races."""
    app = create_app(settings_overrides)
    runtime = app.extensions["govern"]
    api = Api(app.test_client(), runtime)
    api.user("target", "office_handler")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/api/v1/auth/token"
    statuses: list[int] = []
    start = threading.Barrier(60)

    def attempt():
        start.wait()
        response = requests.post(url, json={"username": "target", "password": "wrong" * 3})
        statuses.append(response.status_code)

    workers = [threading.Thread(target=attempt) for _ in range(60)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        server.shutdown()
        thread.join()
    try:
        assert len(statuses) == 60 and set(statuses) <= {401, 429}, sorted(statuses)
        bad = [e for e in api.audit_entries(action="auth:login") if e["decision"] == "deny"]
        guesses = [e for e in bad if e["rule"] == "bad username or password"]
        assert len(guesses) == statuses.count(401)
        # Refusals while locked out are counted; the count joins the trail once the minute is
        # over, so every attempt is accounted for: one entry each, or within a summary.
        _age_windows(runtime)
        from govern.runtime import unit_of_work
        from govern.services import trail

        with unit_of_work(runtime) as ctx:
            trail.checkpoint(ctx)
        bad = [e for e in api.audit_entries(action="auth:login") if e["decision"] == "deny"]
        locked = [e for e in bad if "too many failed logins" in e["rule"]]
        one_each = [e for e in locked if "repeated" not in e["details"]]
        assert len(one_each) + _repeated(locked) == statuses.count(429)
        good = api.client.post(
            "/api/v1/auth/token", json={"username": "target", "password": PASSWORD}
        )
        assert good.status_code == 429  # still locked out: the failures were all counted
    finally:
        runtime.engine.dispose()
