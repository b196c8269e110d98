"""Signing in to the pages: fail closed, only local redirects, sign-out that ends the session on
the server, Secure cookies over HTTPS, lockouts that say when they end and that a system
administrator can lift, and item content that a link from another site cannot fetch."""

from __future__ import annotations

import re

import pytest

from govern import create_app
from tests.conftest import PASSWORD, Api
from tests.pages import Reader, field_error, text
from tests.test_policy_audit import _break_appends, _mend_appends


def _cookie_header(response) -> str:
    return "; ".join(v for k, v in response.headers.items() if k == "Set-Cookie")


def _signed_in(reader: Reader) -> bool:
    return reader.get("/").status_code == 200


def test_a_login_that_cannot_be_audited_logs_nobody_in(office, app, runtime):
    reader = Reader(app)
    token = reader.token("/login")
    _break_appends(runtime)
    try:
        response = reader.client.post(
            "/login",
            data={"csrf_token": token, "username": "approver", "password": PASSWORD},
            headers=reader.headers,
        )
    finally:
        _mend_appends(runtime)
    assert response.status_code == 503
    # No session of a signed-in account was handed out: the next page asks to sign in.
    assert not _signed_in(reader)
    assert office.audit_entries(action="auth:login", actor="approver") == []


@pytest.mark.parametrize(
    "raw",
    [
        "/%09/evil.example",
        "/%0A/evil.example",
        "/%0d%0a/evil.example",
        "//evil.example",
        "///evil.example",
        "/%5Cevil.example",
        "%5C%5Cevil.example",
        "/%5C/evil.example",
        "/%2509/evil.example",
        "/%252F/evil.example",
        "https://evil.example/",
        "HTTPS:%2F%2Fevil.example",
        "javascript:alert(1)",
        "http://[::1",
        "evil.example",
        "%00",
    ],
)
def test_next_goes_only_to_a_local_path(office, app, raw):
    # ``raw`` is the query string as a link would carry it, before the app decodes it.
    reader = Reader(app)
    token = reader.token("/login")
    response = reader.client.post(
        "/login?next=" + raw,
        data={"csrf_token": token, "username": "approver", "password": PASSWORD},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_next_keeps_a_local_path(office, app):
    reader = Reader(app)
    token = reader.token("/login")
    response = reader.client.post(
        "/login?next=/agreements%3Fpage%3D2",
        data={"csrf_token": token, "username": "approver", "password": PASSWORD},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/agreements?page=2"


def test_sign_out_ends_a_copied_cookie_too(office, app):
    owner = Reader(app).login("approver")
    cookie = owner.client.get_cookie("session")
    thief = Reader(app)
    thief.client.set_cookie("session", cookie.value)
    assert _signed_in(thief)
    owner.submit("/logout", form_on="/")
    assert not _signed_in(owner)
    # The copy taken before the sign-out is refused by the server, not just forgotten.
    assert not _signed_in(thief)
    assert office.audit_entries(action="auth:logout", actor="approver")


def test_cookies_are_secure_over_https_and_behind_a_proxy_that_says_so(settings_overrides, office):
    direct = create_app(settings_overrides)
    proxied = create_app({**settings_overrides, "proxy_hops": 1})
    try:
        for app, base, headers, secure in [
            (direct, "http://localhost", {}, False),
            (direct, "https://localhost", {}, True),
            # Without a trusted proxy, anyone could send the header: it is not believed.
            (direct, "http://localhost", {"X-Forwarded-Proto": "https"}, False),
            (proxied, "http://localhost", {"X-Forwarded-Proto": "https"}, True),
            (proxied, "http://localhost", {}, False),
        ]:
            client = app.test_client()
            page = client.get("/login", base_url=base, headers=headers)
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', text(page)).group(1)
            signed = client.post(
                "/login",
                base_url=base,
                # The CSRF check wants a same-origin Referer on HTTPS, as a browser sends.
                headers={**headers, "Referer": "https://localhost/login"},
                data={"csrf_token": token, "username": "approver", "password": PASSWORD},
            )
            assert signed.status_code == 303, (base, headers)
            cookie = _cookie_header(signed)
            assert "session=" in cookie
            assert ("Secure" in cookie) is secure, (base, headers, cookie)
    finally:
        direct.extensions["govern"].engine.dispose()
        proxied.extensions["govern"].engine.dispose()


def _lock_out(reader: Reader, username: str, times: int = 5) -> None:
    for _ in range(times):
        reader.submit("/login", {"username": username, "password": "wrong password!"})


@pytest.mark.parametrize(
    "language, words",
    [("en", "Too many failed sign-ins. Try again after"), ("zh-CN", "登录失败次数过多")],
)
def test_a_lockout_names_its_end_in_the_readers_language_and_the_offices_time(
    office, app, language, words
):
    reader = Reader(app, language)
    _lock_out(reader, "handler")
    refused = reader.submit("/login", {"username": "handler", "password": PASSWORD})
    assert refused.status_code == 429
    shown = field_error(refused, "password")
    assert words in shown and "Asia/Shanghai" in shown
    (entry,) = [
        e
        for e in office.audit_entries(action="auth:login")
        if e["rule"] == "too many failed logins"
    ]
    # The end shown is the trail's end, read in the office's time (UTC+8, no daylight saving).
    until = entry["details"]["until"]  # e.g. 2026-11-24T14:05:07+00:00
    hour = (int(until[11:13]) + 8) % 24
    assert f"{hour:02d}:{until[14:16]}:{until[17:19]}" in shown


def test_a_system_administrator_unlocks_an_account(office, app):
    office.user("sysadm", "system_admin")
    _lock_out(Reader(app), "handler")
    listed = office.get("/api/v1/users", "sysadm").get_json()["users"]
    handler = next(u for u in listed if u["username"] == "handler")
    assert handler["locked_until"] is not None
    locked = Reader(app).submit("/login", {"username": "handler", "password": PASSWORD})
    assert locked.status_code == 429
    # Nobody else may lift it: not the security administrator, not the office.
    office.user("secadm", "security_admin")
    for who in ("secadm", "approver"):
        refused = office.post(f"/api/v1/users/{handler['id']}/unlock", who)
        assert refused.status_code == 403
    # The page shows the lock and offers the button to the system administrator.
    admin = Reader(app).login("sysadm")
    users_page = text(admin.get("/admin/users"))
    assert f"/admin/users/{handler['id']}/unlock" in users_page and "locked until" in users_page
    unlocked = admin.submit(f"/admin/users/{handler['id']}/unlock", form_on="/admin/users")
    assert unlocked.status_code == 303
    Reader(app).login("handler")
    (entry,) = [e for e in office.audit_entries(action="user:unlock") if e["decision"] == "allow"]
    assert entry["actor"] == "sysadm" and entry["target"] == "user:handler"
    assert entry["details"]["was_locked"] is True
    denied = [e for e in office.audit_entries(action="user:unlock") if e["decision"] == "deny"]
    assert {e["actor"] for e in denied} == {"secadm", "approver"}


def test_unlock_through_the_api_is_documented(api):
    spec = api.client.get("/api/v1/openapi.json").get_json()
    assert "post" in spec["paths"]["/api/v1/users/{user_id}/unlock"]


def test_item_content_over_a_cookie_goes_only_to_same_origin_requests(office, app):
    agreement = office.agreement()
    item = office.item(agreement["id"], content=b"office only")
    reader = Reader(app).login("approver")
    for path in (f"/items/{item['id']}/content", f"/api/v1/items/{item['id']}/content"):
        for site in ("cross-site", "same-site"):
            refused = reader.client.get(path, headers={"Sec-Fetch-Site": site})
            assert refused.status_code == 403 and b"office only" not in refused.data, (path, site)
        for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
            served = reader.client.get(path, headers=headers)
            assert served.status_code == 200 and served.data == b"office only", (path, headers)
    denials = [
        e
        for e in office.audit_entries(action="item:read", actor="approver")
        if e["decision"] == "deny"
    ]
    assert len(denials) == 4 and all("cross-site request" in e["rule"] for e in denials)
    # A bearer token is not sent by the browser on its own, so it is not asked where it came from.
    with_token = office.get(
        f"/api/v1/items/{item['id']}/content", "approver", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert with_token.status_code == 200


def test_an_api_client_without_cookies_is_unaffected(office, app):
    # Regression guard for the session epoch: tokens carry the credential version only, so a
    # sign-out from the pages does not end the API tokens of the same account.
    api = Api(app.test_client(), app.extensions["govern"])
    api.login("approver")
    reader = Reader(app).login("approver")
    reader.submit("/logout", form_on="/")
    assert api.get("/api/v1/agreements", "approver").status_code == 200
