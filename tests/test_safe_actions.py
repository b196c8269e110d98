"""Issue 12, safe actions: a confirmation page (plain GET, no script) before every irreversible or
sealing step, saying which object and what will happen; its form posts with CSRF. Sealing asks the
approver's password again. Every page POST answers 303, so a reload repeats nothing; a token or a
set-password link is shown on a GET page reached once. system_admin re-enables and unlocks (never
its own account); everyone changes their own password."""

from __future__ import annotations

import re

import sqlalchemy as sa

from govern.accesslog import redact
from govern.models import User
from tests.conftest import PASSWORD, VENDOR
from tests.disclosure_flow import approved_request, file_request, move, state
from tests.pages import Reader, text


def _agreement(office) -> tuple[int, int]:
    agreement = office.agreement(signed_on=office.day(-60))
    item = office.item(agreement["id"], content=b"the design", title="系统设计说明书")
    return agreement["id"], item["id"]


def _reviewed(office, aid: int, item_id: int) -> int:
    filed = file_request(office, aid, [item_id], third_party="测评中心")
    move(office, filed["id"], "submit", "lead")
    move(office, filed["id"], "review", "handler")
    return filed["id"]


def _allowed(office, action: str) -> int:
    return len(office.audit_entries(action=action, decision="allow"))


def _asks(reader: Reader, path: str, *names: str) -> str:
    """The confirmation page of ``path``: a GET, a form posting back to it, the object named."""
    page = reader.get(path)
    assert page.status_code == 200, (path, page.status_code)
    body = text(page)
    assert 'id="consequence"' in body and f'action="{path}"' in body, path
    assert 'name="csrf_token"' in body and 'method="post"' in body
    for name in names:
        assert name in body, (path, name)
    return body


def test_every_step_has_a_confirmation_page_that_names_its_object_and_changes_nothing(office, app):
    aid, item_id = _agreement(office)
    rid = _reviewed(office, aid, item_id)
    with office.runtime.sessions() as db:
        db.execute(sa.update(User).where(User.username == "lead").values(display_name="张伟"))
        db.commit()
    approver = Reader(app, "zh-CN").login("approver")
    before = len(office.audit_entries(decision="allow"))
    # The request page's buttons are links to the confirmation pages.
    page = text(approver.get(f"/requests/{rid}"))
    assert f'href="/requests/{rid}/approve"' in page and f'href="/requests/{rid}/deny"' in page
    assert 'method="post" action="/requests/' not in page
    # The request is named by its third party, items and filer (by name, not username).
    sealing = _asks(
        approver, f"/requests/{rid}/approve", "测评中心", "系统设计说明书", "电子签章", "张伟"
    )
    assert 'type="password"' in sealing
    _asks(approver, f"/requests/{rid}/deny", "测评中心", 'name="reason"')
    _asks(approver, f"/agreements/{aid}/items/{item_id}/destroy", "系统设计说明书")
    _asks(approver, f"/agreements/{aid}/items/{item_id}/declassify", "系统设计说明书")
    _asks(approver, f"/agreements/{aid}/terminate", 'name="understood"')
    # A GET, however often, changed nothing (reads are audited, no step is).
    approver.get(f"/requests/{rid}/approve")
    assert state(office, rid) == "reviewed"
    assert office.get(f"/api/v1/agreements/{aid}", "approver").get_json()["status"] == "active"
    steps = {e["action"] for e in office.audit_entries(decision="allow")[before:]}
    assert not steps & {
        "disclosure:approve",
        "disclosure:deny",
        "item:destroy",
        "agreement:terminate",
    }
    # The lead's steps on its own request, the grant, and the admin's steps on accounts and rules.
    lead = Reader(app).login("lead")
    draft = file_request(office, aid, [item_id], third_party="另一中心")["id"]
    _asks(lead, f"/requests/{draft}/submit", "另一中心")
    _asks(lead, f"/requests/{draft}/withdraw", "另一中心", "for good")
    done = approved_request(office, aid, [item_id], third_party="第三中心")["id"]
    _asks(lead, f"/requests/{done}/grants", "第三中心", "shown to you once")
    office.user("sysadm", "system_admin")
    office.user("secadm", "security_admin")
    zhao = office.user("zhao", "vendor_staff", org=VENDOR)
    admin = Reader(app).login("sysadm")
    for step in ("disable", "reset", "unlock"):
        _asks(admin, f"/admin/users/{zhao}/{step}", "zhao")
    rule = office.get("/api/v1/policies", "secadm").get_json()["rules"][0]
    _asks(Reader(app).login("secadm"), f"/admin/policies/{rule['id']}/remove", rule["values"][0])


def test_a_post_needs_its_csrf_token_and_works_without_the_confirmation_page(office, app):
    aid, item_id = _agreement(office)
    filed = file_request(office, aid, [item_id])["id"]
    lead = Reader(app).login("lead")
    path = f"/requests/{filed}/withdraw"
    forged = lead.client.post(path)
    assert forged.status_code == 400 and state(office, filed, "lead") == "draft"
    # With the token of any page of the session (a script, a second tab) it is still the step.
    done = lead.submit(path, form_on=f"/requests/{filed}")
    assert done.status_code == 303 and state(office, filed, "lead") == "withdrawn"


def test_sealing_asks_the_password_again_and_a_wrong_one_seals_nothing(office, app):
    aid, item_id = _agreement(office)
    rid = _reviewed(office, aid, item_id)
    approver = Reader(app).login("approver")
    path = f"/requests/{rid}/approve"
    for guess in ("", "not my password"):
        refused = approver.submit(path, {"password": guess})
        assert refused.status_code == 401 and 'id="confirm-error"' in text(refused)
        assert "nothing was sealed" in text(refused)
    assert state(office, rid) == "reviewed" and _allowed(office, "disclosure:approve") == 0
    denials = office.audit_entries(action="disclosure:approve", decision="deny")
    assert len(denials) == 2 and all(e["rule"] == "password not confirmed" for e in denials)
    assert all(e["actor"] == "approver" for e in denials)
    assert "not my password" not in str(office.audit_entries())
    sealed = approver.submit(path, {"password": PASSWORD})
    assert sealed.status_code == 303 and state(office, rid) == "approved"
    assert _allowed(office, "disclosure:approve") == 1


def test_wrong_sealing_passwords_count_toward_the_lockout(office, app):
    aid, item_id = _agreement(office)
    rid = _reviewed(office, aid, item_id)
    approver = Reader(app).login("approver")
    path = f"/requests/{rid}/approve"
    limit = app.extensions["govern"].settings.login_max_failures_account
    for _ in range(limit):
        approver.submit(path, {"password": "guess"})
    # Locked: even the right password seals nothing now, and the sign-in page is locked too.
    locked = approver.submit(path, {"password": PASSWORD})
    assert locked.status_code == 401 and "Too many wrong passwords" in text(locked)
    assert state(office, rid) == "reviewed"
    assert (
        Reader(app).submit("/login", {"username": "approver", "password": PASSWORD}).status_code
        == 429
    )


def test_a_subcontractor_seal_asks_the_password_again(office, app):
    aid, item_id = _agreement(office)
    body = {
        "name": "短信平台",
        "service": "SMS notices",
        "dsa_signed_on": office.day(-5),
        "dsa_expires_on": office.day(200),
        "dsa_sha256": "d" * 64,
        "purpose": "send notices",
        "item_ids": [item_id],
        "fields": [],
        "whole_items": [item_id],
        "until": office.day(100),
    }
    filed = office.post(f"/api/v1/agreements/{aid}/subcontractors", "lead", json=body)
    assert filed.status_code == 201, filed.get_json()
    sub_id = filed.get_json()["id"]
    assert office.post(f"/api/v1/subcontractors/{sub_id}/review", "handler").status_code == 200
    approver = Reader(app).login("approver")
    path = f"/agreements/{aid}/subcontractors/{sub_id}/approve"
    _asks(approver, path, "短信平台", "系统设计说明书")
    assert approver.submit(path, {"password": "wrong"}).status_code == 401
    assert _allowed(office, "subcontractor:approve") == 0
    assert office.audit_entries(action="subcontractor:approve", decision="deny")
    assert approver.submit(path, {"password": PASSWORD}).status_code == 303
    assert _allowed(office, "subcontractor:approve") == 1


def _kept(runtime) -> list[dict]:
    with runtime.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT * FROM shown_once")).mappings()]


def test_a_grant_token_is_shown_on_one_get_and_a_reload_issues_nothing(office, app, runtime):
    aid, item_id = _agreement(office)
    rid = approved_request(office, aid, [item_id])["id"]
    lead = Reader(app).login("lead")
    posted = lead.submit(f"/requests/{rid}/grants")
    assert posted.status_code == 303 and "/shown/" in posted.headers["Location"]
    where = posted.headers["Location"]
    # Another account cannot open it (and does not use it up).
    (row,) = _kept(runtime)
    handle = where.rsplit("/", 1)[1]
    assert handle not in str(row) and b"eyJ" not in bytes(row["ciphertext"])
    office.user("lead2", "vendor_lead")
    assert Reader(app).login("lead2").get(where).status_code == 410
    shown = lead.get(where)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    token = re.search(r'id="once"[^>]*>([^<]+)</textarea>', text(shown)).group(1)
    assert not _kept(runtime)
    again = lead.get(where)
    assert again.status_code == 410 and token not in text(again)
    assert again.headers["Cache-Control"] == "no-store"
    grants = office.get(f"/api/v1/disclosures/{rid}/grants", "lead").get_json()["grants"]
    assert len(grants) == 1 and _allowed(office, "grant:issue") == 1
    assert token not in str(office.audit_entries())
    # The handle is cut from the access log.
    assert redact(f"GET {where} HTTP/1.1") == "GET /shown/[redacted] HTTP/1.1"


def test_a_reload_after_terminate_or_reset_repeats_nothing(office, app):
    aid, _item = _agreement(office)
    approver = Reader(app).login("approver")
    path = f"/agreements/{aid}/terminate"
    ended = approver.submit(path, {"understood": "y"})
    assert ended.status_code == 303
    for _ in range(2):
        assert approver.get(ended.headers["Location"]).status_code == 200
    assert _allowed(office, "agreement:terminate") == 1
    office.user("sysadm", "system_admin")
    zhao = office.user("zhao", "vendor_staff", org=VENDOR)
    admin = Reader(app).login("sysadm")
    reset = admin.submit(f"/admin/users/{zhao}/reset")
    assert reset.status_code == 303
    link = re.search(
        r'value="([^"]*/set-password/[^"]+)"', text(admin.get(reset.headers["Location"]))
    )
    assert link and admin.get(reset.headers["Location"]).status_code == 410
    assert _allowed(office, "user:reset") == 1


def test_system_admin_re_enables_and_unlocks_others_never_itself(office, app):
    office.user("sysadm", "system_admin")
    me = office.user("sysadm2", "system_admin")
    zhao = office.user("zhao", "vendor_staff", org=VENDOR)
    admin = Reader(app).login("sysadm")
    assert admin.submit(f"/admin/users/{zhao}/disable").status_code == 303
    assert (
        Reader(app).submit("/login", {"username": "zhao", "password": PASSWORD}).status_code == 401
    )
    _asks(admin, f"/admin/users/{zhao}/enable", "zhao")
    assert admin.submit(f"/admin/users/{zhao}/enable").status_code == 303
    Reader(app).login("zhao")
    # Locked out by failed sign-ins; the administrator ends the lockout.
    limit = app.extensions["govern"].settings.login_max_failures_account
    for _ in range(limit):
        Reader(app).submit("/login", {"username": "zhao", "password": "guess"})
    assert (
        Reader(app).submit("/login", {"username": "zhao", "password": PASSWORD}).status_code == 429
    )
    assert admin.submit(f"/admin/users/{zhao}/unlock").status_code == 303
    Reader(app).login("zhao")
    for action in ("user:disable", "user:enable", "user:unlock"):
        (entry,) = office.audit_entries(action=action, decision="allow")
        assert entry["actor"] == "sysadm" and entry["target"] == "user:zhao"
    # Not oneself (separation of duties), and not another role.
    mine = Reader(app).login("sysadm2")
    for step in ("unlock", "enable", "disable"):
        assert mine.submit(f"/admin/users/{me}/{step}").status_code == 403
    assert office.audit_entries(actor="sysadm2", action="user:unlock", decision="deny")
    handler = Reader(app).login("handler")
    assert handler.get(f"/admin/users/{zhao}/unlock").status_code == 403
    assert handler.submit(f"/admin/users/{zhao}/unlock", form_on="/").status_code == 403


def test_everyone_changes_their_own_password_and_other_sessions_end(office, app):
    mine, other = Reader(app).login("staff"), Reader(app).login("staff")
    wrong = mine.submit(
        "/account/password",
        {"current": "nope", "password": "a new one here", "again": "a new one here"},
    )
    assert wrong.status_code == 401
    done = mine.submit(
        "/account/password",
        {"current": PASSWORD, "password": "a new one here", "again": "a new one here"},
    )
    assert done.status_code == 303
    assert mine.get("/").status_code == 200 and other.get("/").status_code == 302
    Reader(app).login("staff", "a new one here")
    assert office.audit_entries(actor="staff", action="auth:change-password", decision="allow")


def test_a_refused_reason_shows_the_confirmation_page_again_and_nothing_is_done(office, app):
    aid, item_id = _agreement(office)
    rid = _reviewed(office, aid, item_id)
    approver = Reader(app, "zh-CN").login("approver")
    path = f"/requests/{rid}/deny"
    blank = approver.submit(path, {"reason": "  "})
    assert blank.status_code == 400 and 'id="confirm-error"' in text(blank)
    assert "不能为空" in text(blank) and f'action="{path}"' in text(blank)
    assert state(office, rid) == "reviewed"
    assert approver.submit(path, {"reason": "范围过大"}).status_code == 303
    assert state(office, rid) == "denied"


def test_a_rules_removal_page_says_what_the_rule_allows_in_the_readers_words(office, app):
    """The page showed the bare casbin tuple: the security administrator had to know that
    "office_approver, *, agreement, create" is the approver's right to record agreements."""
    office.user("secadm", "security_admin")
    rules = office.get("/api/v1/policies", "secadm").get_json()["rules"]
    rule = next(r for r in rules if r["values"] == ["office_approver", "*", "agreement", "create"])
    page = text(Reader(app, "zh-CN").login("secadm").get(f"/admin/policies/{rule['id']}/remove"))
    assert "<dt>含义</dt><dd>分管负责人可在所有协议中执行“创建协议”</dd>" in page
    english = text(Reader(app).login("secadm").get(f"/admin/policies/{rule['id']}/remove"))
    assert "office approver may" in english
