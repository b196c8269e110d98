"""Issue 2: packaging, configuration, storage, accounts, agreements, items, errors, OpenAPI."""

from __future__ import annotations

import base64
import hashlib
import stat

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from jose import jwt

from govern.cli import main
from govern.db import Base, make_engine
from govern.models import Item


def test_models_and_migrations_agree(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert diff == []


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_init_creates_owner_only_keys_and_a_user(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("GOVERN_HOME", str(home))
    runner = CliRunner()
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    for path in (home / "keys").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "govern.db").stat().st_mode) & 0o077 == 0
    # init is idempotent: it upgrades, it never replaces keys.
    before = (home / "keys" / "kek-1.key").read_bytes()
    assert runner.invoke(main, ["init"]).exit_code == 0
    assert (home / "keys" / "kek-1.key").read_bytes() == before

    created = runner.invoke(
        main,
        ["user", "create", "wang", "--role", "auditor", "--password-stdin"],
        input="a long enough password\n",
    )
    assert created.exit_code == 0, created.output
    assert created.output.strip().isdigit()
    short = runner.invoke(
        main, ["user", "create", "li", "--role", "auditor", "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0 and "password" in short.output


def test_demo_loads_the_real_agreement(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVERN_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    result = runner.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "approver" in result.output and "office_approver" in result.output
    again = runner.invoke(main, ["demo"])
    assert "already" in again.output
    assert runner.invoke(main, ["audit", "verify"]).exit_code == 0


def test_help_explains_each_command():
    result = CliRunner().invoke(main, ["--help"])
    for command in ("init", "user", "demo", "serve", "audit"):
        assert command in result.output


# Accounts.


def test_separation_of_duties_refuses_a_second_admin_role(api, runtime):
    from govern import policy
    from tests.conftest import as_operator

    api.user("wu", "security_admin")
    with as_operator(runtime) as ctx:
        assert sorted(policy.roles_in_table(ctx.db, "wu")) == ["security_admin"]
    api.user("sysadm", "system_admin")
    response = api.post("/api/v1/users", "sysadm", json={"username": "zhao", "role": "auditor"})
    assert response.status_code == 201
    api.user("sec", "security_admin")
    assign = api.post(
        "/api/v1/policies", "sec", json={"ptype": "g", "values": ["zhao", "system_admin", "*"]}
    )
    assert assign.status_code == 409
    error = assign.get_json()["error"]
    assert "separation of duties" in error["message"]
    assert error["invariant"] == "an account holds roles of one duty"


def test_token_has_the_claims_and_stops_working_on_disable_or_password_change(office, runtime):
    token = office.login("staff")
    claims = jwt.get_unverified_claims(token)
    assert {"exp", "iat", "iss", "aud", "jti", "sub"} <= set(claims)
    assert claims["exp"] - claims["iat"] <= 900
    assert office.get("/api/v1/agreements", "staff").status_code == 200

    office.user("sysadm", "system_admin")
    staff_id = office.get("/api/v1/users", "sysadm").get_json()["users"]
    staff_id = next(u["id"] for u in staff_id if u["username"] == "staff")
    reset = office.post(f"/api/v1/users/{staff_id}/reset", "sysadm").get_json()
    # A vendor account's reset needs no second person: the old credentials end at once, and the
    # administrator gets a link for the holder, never a password.
    assert "password" not in reset and not reset["awaiting_confirmation"]
    assert office.get("/api/v1/agreements", "staff").status_code == 401
    new_password = "a new staff password"
    assert office.set_password(reset["set_password_url"], new_password).status_code == 200
    office.login("staff", new_password)
    assert office.get("/api/v1/agreements", "staff").status_code == 200
    assert office.post(f"/api/v1/users/{staff_id}/disable", "sysadm").status_code == 200
    assert office.get("/api/v1/agreements", "staff").status_code == 401
    # Neither the link's token nor the chosen password ever reaches the trail.
    token = reset["set_password_url"].rsplit("/", 1)[1]
    assert new_password not in str(office.audit_entries())
    assert token not in str(office.audit_entries())


def test_a_token_for_another_audience_or_algorithm_is_refused(office, runtime):
    keys = runtime.keys
    forged = jwt.encode(
        {
            "sub": "1",
            "aud": "govern-grant",
            "iss": "govern",
            "exp": 9999999999,
            "iat": 1,
            "jti": "x",
            "cv": 1,
        },
        keys.api_token_secret,
        algorithm="HS256",
    )
    assert (
        office.get("/api/v1/agreements", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )
    unsigned = jwt.encode({"sub": "1"}, "", algorithm="HS256").rsplit(".", 1)[0] + "."
    assert (
        office.get(
            "/api/v1/agreements", headers={"Authorization": f"Bearer {unsigned}"}
        ).status_code
        == 401
    )


def test_failed_logins_are_throttled_per_account_and_audited(office):
    for _ in range(5):
        assert (
            office.post(
                "/api/v1/auth/token", json={"username": "staff", "password": "wrong password!"}
            ).status_code
            == 401
        )
    blocked = office.post(
        "/api/v1/auth/token", json={"username": "staff", "password": "correct horse battery staple"}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    denials = office.audit_entries(action="auth:login", decision="deny")
    assert len(denials) == 6
    assert all("wrong password" not in str(e) for e in denials)
    # Another account from another address is not affected.
    assert (
        office.post(
            "/api/v1/auth/token",
            json={"username": "lead", "password": "correct horse battery staple"},
            environ_base={"REMOTE_ADDR": "10.0.0.9"},
        ).status_code
        == 200
    )


def test_failed_logins_are_throttled_per_address(office):
    for i in range(20):
        office.post(
            "/api/v1/auth/token", json={"username": f"nobody{i}", "password": "wrong password!"}
        )
    assert (
        office.post(
            "/api/v1/auth/token",
            json={"username": "lead", "password": "correct horse battery staple"},
        ).status_code
        == 429
    )


def test_login_page_sets_safe_cookies_and_needs_csrf(office, app):
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 200
    assert b"csrf_token" in page.data
    assert (
        client.post(
            "/login", data={"username": "staff", "password": "correct horse battery staple"}
        ).status_code
        == 400
    )
    app.config["WTF_CSRF_ENABLED"] = True
    token = page.data.split(b'name="csrf_token" type="hidden" value="')[1].split(b'"')[0].decode()
    response = client.post(
        "/login",
        data={"username": "staff", "password": "correct horse battery staple", "csrf_token": token},
    )
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "remember_token" not in str(response.headers)
    assert client.get("/").status_code == 200
    # The cookie session reads through the API but cannot change anything there.
    assert client.get("/api/v1/agreements").status_code == 200
    assert client.post("/api/v1/agreements", json={}).status_code == 401
    assert office.audit_entries(action="auth:login", decision="allow")[-1]["actor"] == "staff"


def test_every_page_sends_security_headers(client):
    response = client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# Agreements and the clock.


def test_agreement_create_list_get_and_clock(office):
    created = office.agreement()
    assert created["term_ends_on"] == "2027-06-27"
    assert created["contract_value"] == "3985000.00"
    assert (
        office.get("/api/v1/agreements", "staff").get_json()["agreements"][0]["id"] == created["id"]
    )
    assert office.get(f"/api/v1/agreements/{created['id']}", "handler").status_code == 200
    office.item(created["id"])
    office.item(created["id"], title="public guide", public=True)
    clock = office.get(f"/api/v1/agreements/{created['id']}/clock", "approver").get_json()
    assert clock["signed_on"] == "2022-06-27"
    assert clock["term_ends_on"] == "2027-06-27"
    assert clock["protected_items"] == 1
    assert clock["term_over"] is False and clock["days_left"] > 0


def test_term_from_29_february_ends_on_28_february(office):
    created = office.agreement(signed_on="2024-02-29", term_years=5)
    assert created["term_ends_on"] == "2029-02-28"
    clock = office.get(f"/api/v1/agreements/{created['id']}/clock", "approver").get_json()
    assert clock["term_ends_on"] == "2029-02-28"
    leap = office.agreement(signed_on="2024-02-29", term_years=4)
    assert leap["term_ends_on"] == "2028-02-29"


def test_a_term_that_is_over_still_protects_items(office):
    created = office.agreement(signed_on="2015-01-01", term_years=5)
    office.item(created["id"])
    clock = office.get(f"/api/v1/agreements/{created['id']}/clock", "approver").get_json()
    assert clock["term_over"] is True and clock["days_left"] == 0
    assert clock["protected_items"] == 1  # clause 5.2


def test_only_the_approver_creates_agreements(office):
    for who in ("handler", "lead", "staff", "audit"):
        response = office.post("/api/v1/agreements", who, json={})
        assert response.status_code == 403, who


# Items.


def test_item_is_stored_encrypted_and_read_back_by_the_office(office, runtime):
    agreement = office.agreement()
    content = "办件数据 secret".encode() * 50
    created = office.item(agreement["id"], content=content)
    assert created["status"] == "protected"
    assert created["sha256"] == hashlib.sha256(content).hexdigest()
    with runtime.sessions() as db:
        row = db.get(Item, created["id"])
        assert content not in row.ciphertext and b"secret" not in row.ciphertext
    response = office.get(f"/api/v1/items/{created['id']}/content", "approver")
    assert response.status_code == 200 and response.data == content
    assert response.headers["Cache-Control"] == "no-store"
    read = office.audit_entries(action="item:read")[-1]
    assert read["decision"] == "allow" and read["target"] == f"item:{created['id']}"
    assert "办件数据" not in str(office.audit_entries())


def test_ciphertext_moved_to_another_row_does_not_decrypt(office, runtime):
    agreement = office.agreement()
    first = office.item(agreement["id"], content=b"first")
    second = office.item(agreement["id"], content=b"second")
    with runtime.sessions() as db:
        a, b = db.get(Item, first["id"]), db.get(Item, second["id"])
        b.nonce, b.ciphertext, b.wrapped_key = a.nonce, a.ciphertext, a.wrapped_key
        db.commit()
    response = office.get(f"/api/v1/items/{second['id']}/content", "approver")
    assert response.status_code == 409
    assert response.data != b"first" and b"first" not in response.data


def test_nobody_outside_the_office_reads_without_the_conditions(office):
    agreement = office.agreement()
    created = office.item(agreement["id"])
    for who in ("lead", "staff", "audit"):
        response = office.get(f"/api/v1/items/{created['id']}/content", who)
        assert response.status_code == 403, who
        assert response.get_json()["error"]["code"] == "forbidden"
    denials = office.audit_entries(action="item:read", decision="deny")
    assert {d["actor"] for d in denials} == {"lead", "staff", "audit"}
    assert all(d["rule"] for d in denials)
    assert any("no valid NDA" in d["rule"] for d in denials)


def test_item_too_large_is_413(office, app):
    agreement = office.agreement()
    runtime = app.extensions["govern"]
    limit = runtime.settings.max_content_bytes
    body = {
        "title": "big",
        "category": "data",
        "content_b64": base64.b64encode(b"x" * (limit + 1)).decode(),
    }
    response = office.post(f"/api/v1/agreements/{agreement['id']}/items", "approver", json=body)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


# Errors.


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "title": "x",
                "owner": "o",
                "vendor": "v",
                "signed_on": "2022-02-30",
                "term_years": 5,
                "contract_value": 1,
            },
            "signed_on",
        ),
        (
            {
                "title": "x",
                "owner": "o",
                "vendor": "v",
                "signed_on": "27/06/2022",
                "term_years": 5,
                "contract_value": 1,
            },
            "signed_on",
        ),
        (
            {
                "title": "x",
                "owner": "o",
                "vendor": "v",
                "signed_on": "2022-06-27",
                "term_years": "5",
                "contract_value": 1,
            },
            "term_years",
        ),
        (
            {
                "title": "x",
                "owner": "o",
                "vendor": "v",
                "signed_on": "2022-06-27",
                "term_years": 5,
                "contract_value": "lots",
            },
            "contract_value",
        ),
        (
            {
                "title": "x" * 100_000,
                "owner": "o",
                "vendor": "v",
                "signed_on": "2022-06-27",
                "term_years": 5,
                "contract_value": 1,
            },
            "title",
        ),
        (
            {"title": "x", "owner": "o", "vendor": "v", "signed_on": "2022-06-27", "term_years": 5},
            "contract_value",
        ),
        (
            {
                "title": "x",
                "owner": "o",
                "vendor": "v",
                "signed_on": "2022-06-27",
                "term_years": 5,
                "contract_value": 1,
                "color": "red",
            },
            "color",
        ),
        (["not", "an", "object"], "body"),
    ],
)
def test_bad_agreement_input_is_400_naming_the_field(office, body, field):
    response = office.post("/api/v1/agreements", "approver", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field
    assert office.get("/api/v1/agreements", "approver").get_json()["agreements"] == []


def test_bad_item_input_names_the_field(office):
    agreement = office.agreement()
    url = f"/api/v1/agreements/{agreement['id']}/items"
    bad_enum = office.post(
        url, "approver", json={"title": "t", "category": "gossip", "content_b64": "eA=="}
    )
    assert bad_enum.status_code == 400 and bad_enum.get_json()["error"]["field"] == "category"
    bad_b64 = office.post(
        url, "approver", json={"title": "t", "category": "data", "content_b64": "***"}
    )
    assert bad_b64.status_code == 400 and bad_b64.get_json()["error"]["field"] == "content_b64"


def test_malformed_json_unknown_routes_and_methods(office):
    response = office.post(
        "/api/v1/agreements", "approver", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "body"
    assert office.get("/api/v1/nothing-here", "approver").get_json()["error"]["code"] == "not_found"
    assert office.call("PUT", "/api/v1/agreements", "approver").status_code == 405
    assert office.get("/api/v1/agreements/999", "approver").status_code == 404
    html = office.client.get("/no-such-page")
    assert html.status_code == 404 and b"<html" in html.data


def test_openapi_covers_every_api_route(client, app):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    import re

    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)
    schema = doc["components"]["schemas"]["ItemCreate"]
    assert "design" in schema["properties"]["category"]["enum"]


def test_the_database_refuses_edits_to_the_trail(office, runtime):
    office.agreement()
    assert office.audit_entries()  # in the chain, not only queued: there are rows to refuse
    with runtime.engine.connect() as conn, pytest.raises(sa.exc.DBAPIError):
        conn.execute(sa.text("UPDATE audit_entries SET actor = 'nobody'"))
        conn.commit()


def test_session_cookie_is_secure_when_served_over_https(settings_overrides):
    from govern import create_app

    app = create_app({**settings_overrides, "https": True})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    app.extensions["govern"].engine.dispose()
