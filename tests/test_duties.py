"""Issue 10: separation of duties (三员分立) as invariants no policy edit or role assignment undoes,
and the administrators' accounts flow: one-time set-password links, two people for office and
admin accounts, nobody acting on its own account."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from govern import duties, policy
from govern.actions import ACTION_DUTIES, ROLE_DUTY, Action
from govern.context import Principal
from govern.errors import Conflict
from govern.models import PasswordLink
from govern.runtime import unit_of_work
from govern.services import policies
from tests.conftest import PASSWORD, VENDOR
from tests.pages import Reader, field_error, text


@pytest.fixture
def admins(office):
    for name, role in [
        ("sysadm", "system_admin"),
        ("sec", "security_admin"),
        ("sec2", "security_admin"),
    ]:
        office.user(name, role)
    return office


def _rule(api, who, ptype, *values):
    return api.post("/api/v1/policies", who, json={"ptype": ptype, "values": list(values)})


def _rule_id(api, *values) -> int:
    rules = api.get("/api/v1/policies", "sec").get_json()["rules"]
    return next(r["id"] for r in rules if r["values"] == list(values))


def _user_id(api, username) -> int:
    users = api.get("/api/v1/users", "sysadm").get_json()["users"]
    return next(u["id"] for u in users if u["username"] == username)


def _confirm_pending(api, who, username):
    pending = api.get("/api/v1/users/confirmations", who).get_json()["confirmations"]
    link = next(p for p in pending if p["username"] == username)
    return api.post(f"/api/v1/users/confirmations/{link['id']}/confirm", who)


# The table itself.


def test_every_role_and_every_action_has_its_duties_and_the_starting_rules_keep_them(runtime):
    assert set(ROLE_DUTY) == policy.ROLES
    assert set(ACTION_DUTIES) == set(Action)
    with runtime.sessions() as db:
        assert duties.all_violations(db) == []
    # Content only to the vendor and office duties (and token holders inside their grant); the
    # trail only to audit; rules and role assignments only to security; accounts to system.
    readers = {a: {str(d) for d in ds} for a, ds in ACTION_DUTIES.items()}
    assert readers[Action.ITEM_READ] == {"vendor", "office"}
    assert all(readers[a] == {"audit"} for a in Action if a.kind == "audit")
    assert all(readers[a] == {"security"} for a in Action if a.kind in ("role",))
    assert readers[Action.POLICY_ADD] == readers[Action.POLICY_REMOVE] == {"security"}
    for action in (Action.USER_CREATE, Action.USER_RESET, Action.USER_DISABLE):
        assert readers[action] == {"system"}


# The escalations of issue 10, each refused with 409 naming the invariant, and audited.

ESCALATIONS = [
    (("g", "audit", "office_approver", "*"), duties.ONE_DUTY),
    (("g", "approver", "auditor", "*"), duties.ONE_DUTY),
    (("g", "lead", "office_approver", "agreement:1"), duties.ONE_DUTY),
    (("g", "sysadm", "security_admin", "*"), duties.ONE_DUTY),
    (("p", "security_admin", "*", "user", "reset"), duties.ROLE_IN_DUTY),
    (("p", "security_admin", "*", "audit", "search"), duties.ROLE_IN_DUTY),
    (("p", "security_admin", "*", "item", "read"), duties.ROLE_IN_DUTY),
    (("p", "auditor", "*", "policy", "add"), duties.ROLE_IN_DUTY),
    (("p", "auditor", "*", "item", "read"), duties.ROLE_IN_DUTY),
    (("p", "auditor", "agreement:1", "disclosure", "approve"), duties.ROLE_IN_DUTY),
    (("p", "system_admin", "*", "role", "assign"), duties.ROLE_IN_DUTY),
    (("p", "system_admin", "*", "shared", "read"), duties.ROLE_IN_DUTY),
    (("p", "office_approver", "*", "audit", "export"), duties.ROLE_IN_DUTY),
    (("p", "office_approver", "*", "user", "create"), duties.ROLE_IN_DUTY),
    (("p", "vendor_lead", "*", "disclosure", "approve"), duties.ROLE_IN_DUTY),
    (("p", "vendor_staff", "*", "policy", "list"), duties.ROLE_IN_DUTY),
    (("p", "third_party", "*", "item", "read"), duties.ROLE_IN_DUTY),
    # Role inheritance: the model is RBAC with domains, so a role could be made a member of
    # another role and inherit its rules. Only accounts hold roles.
    (("g", "office_approver", "auditor", "*"), duties.ACCOUNTS_HOLD_ROLES),
    (("g", "auditor", "office_approver", "*"), duties.ACCOUNTS_HOLD_ROLES),
    (("g", "security_admin", "system_admin", "*"), duties.ACCOUNTS_HOLD_ROLES),
]


@pytest.mark.parametrize(("rule", "invariant"), ESCALATIONS, ids=lambda v: ",".join(v))
def test_escalations_are_refused_naming_the_invariant_and_audited(admins, rule, invariant):
    admins.agreement()
    response = _rule(admins, "sec", *rule)
    assert response.status_code == 409, response.get_json()
    error = response.get_json()["error"]
    assert error["invariant"] == invariant and "separation of duties" in error["message"]
    denial = admins.audit_entries(actor="sec", decision="deny")[-1]
    assert denial["rule"] == invariant and denial["details"]["values"] == list(rule[1:])
    # Nothing was added.
    values = [r["values"] for r in admins.get("/api/v1/policies", "sec").get_json()["rules"]]
    assert list(rule[1:]) not in values


@pytest.mark.parametrize(
    "values",
    [
        ["vendor_staff", "*", "*", "read"],
        ["vendor_staff", "*", "item", "*"],
        ["*", "*", "item", "read"],
        ["auditor", "*", "item", ".*"],
        ["auditor", "agreement:*", "audit", "search"],
        ["auditor", "*", "audit", "search", "extra"],
    ],
)
def test_wildcards_and_patterns_are_no_rule(admins, values):
    """The matcher compares kind and action for equality; a "*" would read as a literal, and is
    refused rather than stored as a rule that looks like it means everything."""
    assert _rule(admins, "sec", "p", *values).status_code == 400


def test_the_keepers_keep_their_rules(admins):
    for values in (
        ("auditor", "*", "audit", "search"),
        ("auditor", "*", "audit", "verify"),
        ("security_admin", "*", "policy", "add"),
        ("security_admin", "*", "role", "assign"),
        ("security_admin", "*", "user", "confirm"),
    ):
        rule_id = _rule_id(admins, *values)
        response = admins.delete(f"/api/v1/policies/{rule_id}", "sec")
        assert response.status_code == 409, values
        assert response.get_json()["error"]["invariant"] == duties.KEEPERS_KEEP_RULES
    assert admins.get("/api/v1/audit", "audit").status_code == 200
    refusals = [e for e in admins.audit_entries(actor="sec", decision="deny")]
    assert [e["action"] for e in refusals] == ["policy:remove"] * 5
    # Rules of other roles, and an agreement-scoped rule of the security_admin, still come off.
    other = _rule_id(admins, "auditor", "*", "breach", "list")
    assert admins.delete(f"/api/v1/policies/{other}", "sec").status_code == 200
    assert (
        _rule(admins, "sec", "p", "security_admin", "agreement:7", "policy", "list").status_code
        == 201
    )
    scoped = _rule_id(admins, "security_admin", "agreement:7", "policy", "list")
    assert admins.delete(f"/api/v1/policies/{scoped}", "sec").status_code == 200


def test_security_admin_never_changes_its_own_roles(admins):
    assert _rule(admins, "sec", "g", "sec", "security_admin", "agreement:1").status_code == 403
    own = _rule_id(admins, "sec", "security_admin", "*")
    response = admins.delete(f"/api/v1/policies/{own}", "sec")
    assert response.status_code == 403
    assert response.get_json()["error"]["invariant"] == duties.NOT_ONESELF
    denials = admins.audit_entries(actor="sec", decision="deny")
    assert [(d["action"], d["rule"]) for d in denials] == [
        ("role:assign", duties.NOT_ONESELF),
        ("role:unassign", duties.NOT_ONESELF),
    ]
    # Another security_admin may.
    assert admins.delete(f"/api/v1/policies/{own}", "sec2").status_code == 200


def test_roles_within_one_duty_are_assigned(admins):
    admins.user("wei", "office_handler")
    assert _rule(admins, "sec", "g", "wei", "office_approver", "agreement:3").status_code == 201
    assert _rule(admins, "sec", "g", "staff", "vendor_lead", "*").status_code == 201
    assert (
        _rule(admins, "sec", "p", "office_handler", "*", "agreement", "create").status_code == 201
    )


def test_the_invariants_hold_whoever_calls_even_the_local_operator(admins, runtime):
    with unit_of_work(runtime, Principal.system()) as ctx:
        with pytest.raises(Conflict) as refused:
            policies.add_rule(ctx, "p", ["auditor", "*", "item", "read"])
        assert refused.value.extra["invariant"] == duties.ROLE_IN_DUTY
        with pytest.raises(Conflict):
            policies.add_rule(ctx, "g", ["audit", "office_approver", "*"])
    page = Reader(admins.client.application).login("sec")
    refused = page.submit(
        "/admin/policies", {"ptype": "g", "v0": "audit", "v1": "office_approver", "v2": "*"}
    )
    assert refused.status_code == 409 and duties.ONE_DUTY in field_error(refused, "v0")


# Accounts: links, not passwords; two people for office and admin accounts.


def test_a_new_office_account_waits_for_a_second_person(admins):
    created = admins.post(
        "/api/v1/users", "sysadm", json={"username": "qian", "role": "office_approver"}
    )
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) >= {"id", "set_password_url"} and "password" not in body
    assert body["awaiting_confirmation"] and body["expires_at"] is None
    url = body["set_password_url"]
    # Unusable until confirmed, and nobody can sign in to it meanwhile.
    refused = admins.set_password(url, "qian's own password")
    assert refused.status_code == 409 and "confirmation" in refused.get_json()["error"]["message"]
    assert _confirm_pending(admins, "sec", "qian").status_code == 200
    assert admins.set_password(url, "qian's own password").status_code == 200
    admins.login("qian", "qian's own password")
    # Single use.
    again = admins.set_password(url, "someone else's pw")
    assert again.status_code == 409
    assert admins.get("/api/v1/users/confirmations", "sec").get_json()["confirmations"] == []
    confirmed = admins.audit_entries(action="user:confirm", target="user:qian")
    assert [(e["actor"], e["decision"]) for e in confirmed] == [("sec", "allow")]
    chosen = admins.audit_entries(action="auth:set-password")
    assert [(e["actor"], e["decision"]) for e in chosen] == [
        ("anonymous", "deny"),
        ("qian", "allow"),
        ("anonymous", "deny"),
    ]
    token = url.rsplit("/", 1)[1]
    assert token not in str(admins.audit_entries()) and "qian's own" not in str(
        admins.audit_entries()
    )


def test_the_system_admin_cannot_confirm_and_a_vendor_account_needs_no_confirmation(admins):
    created = admins.post(
        "/api/v1/users", "sysadm", json={"username": "sun", "role": "vendor_staff", "org": VENDOR}
    ).get_json()
    assert not created["awaiting_confirmation"] and created["expires_at"]
    assert admins.set_password(created["set_password_url"]).status_code == 200
    admins.login("sun")
    admins.post("/api/v1/users", "sysadm", json={"username": "li", "role": "auditor"})
    assert admins.get("/api/v1/users/confirmations", "sysadm").status_code == 403
    link_id = admins.get("/api/v1/users/confirmations", "sec").get_json()["confirmations"][0]["id"]
    assert (
        admins.post(f"/api/v1/users/confirmations/{link_id}/confirm", "sysadm").status_code == 403
    )


def test_resetting_the_auditor_waits_for_a_security_admin_and_never_shows_a_password(admins):
    auditor = _user_id(admins, "audit")
    old_token = admins.login("audit")
    reset = admins.post(f"/api/v1/users/{auditor}/reset", "sysadm").get_json()
    assert "password" not in reset and reset["awaiting_confirmation"]
    # Until confirmed, nothing changed: the auditor keeps working.
    assert admins.get("/api/v1/audit?limit=1", "audit").status_code == 200
    assert admins.set_password(reset["set_password_url"], "taken over!!").status_code == 409
    assert _confirm_pending(admins, "sec", "audit").status_code == 200
    # Confirmed: the old password and every token end; only the link's holder chooses the next.
    assert (
        admins.client.get(
            "/api/v1/audit", headers={"Authorization": f"Bearer {old_token}"}
        ).status_code
        == 401
    )
    refused = admins.client.post(
        "/api/v1/auth/token", json={"username": "audit", "password": PASSWORD}
    )
    assert refused.status_code == 401
    assert admins.set_password(reset["set_password_url"], "the auditor's own").status_code == 200
    admins.login("audit", "the auditor's own")


def test_a_security_admin_never_confirms_its_own_reset(admins):
    reset = admins.post(f"/api/v1/users/{_user_id(admins, 'sec')}/reset", "sysadm").get_json()
    assert reset["awaiting_confirmation"]
    refused = _confirm_pending(admins, "sec", "sec")
    assert refused.status_code == 403
    assert refused.get_json()["error"]["invariant"] == duties.NOT_ONESELF
    assert admins.audit_entries(actor="sec", action="user:confirm", decision="deny")
    assert _confirm_pending(admins, "sec2", "sec").status_code == 200


def test_a_link_expires_after_a_day_and_a_newer_link_replaces_it(admins, runtime):
    first = admins.post(
        "/api/v1/users", "sysadm", json={"username": "zhou", "role": "vendor_staff", "org": VENDOR}
    ).get_json()
    second = admins.post(f"/api/v1/users/{first['id']}/reset", "sysadm").get_json()
    assert admins.set_password(first["set_password_url"]).status_code == 409
    # A day later (the link's clock moved back rather than the test waiting).
    with runtime.sessions() as db:
        link = db.scalars(
            sa.select(PasswordLink).where(
                PasswordLink.user_id == first["id"], PasswordLink.revoked_at.is_(None)
            )
        ).one()
        link.expires_at = link.created_at
        db.commit()
    expired = admins.set_password(second["set_password_url"])
    assert expired.status_code == 409 and "expired" in expired.get_json()["error"]["message"]
    unknown = admins.set_password("http://localhost/set-password/nonsense")
    assert unknown.status_code == 404


def test_no_administrator_acts_on_its_own_account(admins):
    me = _user_id(admins, "sysadm")
    for action in ("reset", "disable"):
        response = admins.post(f"/api/v1/users/{me}/{action}", "sysadm")
        assert response.status_code == 403, action
        assert response.get_json()["error"]["invariant"] == duties.NOT_ONESELF
    denials = admins.audit_entries(actor="sysadm", decision="deny")
    assert [d["action"] for d in denials] == ["user:reset", "user:disable"]


def test_disable_and_enable_again(admins):
    staff = _user_id(admins, "staff")
    assert admins.post(f"/api/v1/users/{staff}/disable", "sysadm").status_code == 200
    assert admins.post(f"/api/v1/users/{staff}/disable", "sysadm").status_code == 409
    assert (
        admins.client.post(
            "/api/v1/auth/token", json={"username": "staff", "password": PASSWORD}
        ).status_code
        == 401
    )
    assert admins.post(f"/api/v1/users/{staff}/enable", "sec").status_code == 403
    assert admins.post(f"/api/v1/users/{staff}/enable", "sysadm").status_code == 200
    admins.login("staff")


def test_a_password_is_given_only_by_the_local_operator(admins):
    response = admins.post(
        "/api/v1/users",
        "sysadm",
        json={"username": "he", "role": "vendor_staff", "org": VENDOR, "password": "x" * 12},
    )
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "password"


def test_a_user_changes_its_own_password_and_its_other_sessions_end(admins, app):
    old_token = admins.login("staff")
    wrong = admins.post(
        "/api/v1/auth/password",
        json={"username": "staff", "current_password": "not it at all", "new_password": "n" * 12},
    )
    assert wrong.status_code == 401
    short = admins.post(
        "/api/v1/auth/password",
        json={"username": "staff", "current_password": PASSWORD, "new_password": "short"},
    )
    assert short.status_code == 400 and short.get_json()["error"]["field"] == "new_password"
    changed = admins.post(
        "/api/v1/auth/password",
        json={"username": "staff", "current_password": PASSWORD, "new_password": "staff's new one"},
    )
    assert changed.status_code == 200
    assert (
        admins.client.get(
            "/api/v1/agreements", headers={"Authorization": f"Bearer {old_token}"}
        ).status_code
        == 401
    )
    admins.login("staff", "staff's new one")
    # On the page: the current password is needed; this session goes on, others end.
    other = Reader(app).login("handler")
    mine = Reader(app).login("handler")
    bad = mine.submit(
        "/account/password", {"current": "wrong", "password": "h" * 12, "again": "h" * 12}
    )
    assert bad.status_code == 401 and field_error(bad, "current")
    done = mine.submit(
        "/account/password",
        {"current": PASSWORD, "password": "handler's new one", "again": "handler's new one"},
    )
    assert done.status_code == 303
    assert mine.get("/").status_code == 200
    assert other.get("/").status_code == 302
    entries = admins.audit_entries(action="auth:change-password")
    assert [e["actor"] for e in entries] == ["staff", "handler"]


def test_the_security_admin_confirms_on_its_page(admins, app):
    admins.post("/api/v1/users", "sysadm", json={"username": "wang", "role": "office_handler"})
    sec = Reader(app).login("sec")
    page = text(sec.get("/admin/confirmations"))
    assert "wang" in page and "sysadm" in page
    link_id = admins.get("/api/v1/users/confirmations", "sec").get_json()["confirmations"][0]["id"]
    done = sec.submit(f"/admin/confirmations/{link_id}/confirm", form_on="/admin/confirmations")
    assert done.status_code == 303
    assert "Nothing waits for confirmation." in text(sec.get("/admin/confirmations"))
    zh = Reader(app, "zh-CN").login("sec2")
    assert "没有待确认的事项" in text(zh.get("/admin/confirmations"))
    assert Reader(app).login("sysadm").get("/admin/confirmations").status_code == 403


def test_a_security_admin_refuses_a_reset_and_nothing_changes(admins, app):
    reset = admins.post(f"/api/v1/users/{_user_id(admins, 'approver')}/reset", "sysadm").get_json()
    link_id = admins.get("/api/v1/users/confirmations", "sec").get_json()["confirmations"][0]["id"]
    assert admins.post(f"/api/v1/users/confirmations/{link_id}/refuse", "sysadm").status_code == 403
    sec = Reader(app).login("sec")
    refused = sec.submit(f"/admin/confirmations/{link_id}/refuse", form_on="/admin/confirmations")
    assert refused.status_code == 303
    assert admins.set_password(reset["set_password_url"]).status_code == 409
    admins.login("approver")
    assert admins.post(f"/api/v1/users/confirmations/{link_id}/confirm", "sec").status_code == 409
    entry = admins.audit_entries(action="user:confirm", target="user:approver", decision="allow")
    assert [(e["actor"], e["details"]["outcome"]) for e in entry] == [("sec", "refused")]
