"""Issue 10: whatever the security_admin and the system_admin do, in any order, through the real API
on the real database, no account reads item content or the trail outside its duty, none holds
roles of two duties, and no administrator acts on its own account.

Each example starts from the starting rules and the usual cast; its steps are random policy edits,
role assignments, account creations, resets, disables, re-enables, confirmations and refusals, some by the
wrong administrator. The invariants are checked after every step against the live decision point.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govern import duties, policy
from govern.actions import Action, Duty
from govern.models import CasbinRule, PasswordLink, User
from tests.conftest import VENDOR

CAST = [
    ("approver", "office_approver"),
    ("handler", "office_handler"),
    ("lead", "vendor_lead"),
    ("staff", "vendor_staff"),
    ("audit", "auditor"),
    ("sec", "security_admin"),
    ("sysadm", "system_admin"),
]
NEWCOMERS = ["u0", "u1", "u2"]
PEOPLE = [name for name, _ in CAST] + NEWCOMERS
DOMAINS = ["*", "agreement:1", "agreement:2"]
ROLES = sorted(policy.ROLES)
ACCOUNT_ROLES = sorted(policy.ACCOUNT_ROLES)
PAIRS = sorted({(a.kind, a.verb) for a in Action}) + [("*", "read"), ("item", "*")]

# What each duty alone may reach, as the decision point answers it (one telling action of each:
# the rule table itself is checked for every action after every step).
REACH = {
    "item content": ([("item", "read")], {Duty.VENDOR, Duty.OFFICE}),
    "the trail": ([("audit", "search"), ("audit", "export")], {Duty.AUDIT}),
    "rules and roles": ([("policy", "add"), ("role", "assign")], {Duty.SECURITY}),
    "accounts and credentials": ([("user", "create"), ("user", "reset")], {Duty.SYSTEM}),
}
REACH_DOMAINS = ["*", "agreement:1"]


steps = st.one_of(
    st.tuples(
        st.just("p"),
        st.sampled_from(ROLES),
        st.sampled_from(DOMAINS),
        st.sampled_from(PAIRS),
    ),
    st.tuples(
        st.just("g"),
        st.sampled_from(PEOPLE + ["office_approver", "auditor"]),
        st.sampled_from(ACCOUNT_ROLES),
        st.sampled_from(DOMAINS),
    ),
    st.tuples(st.just("remove"), st.integers(0, 200)),
    st.tuples(st.just("create"), st.sampled_from(NEWCOMERS), st.sampled_from(ACCOUNT_ROLES)),
    st.tuples(st.sampled_from(["reset", "disable", "enable"]), st.sampled_from(PEOPLE)),
    st.tuples(st.sampled_from(["confirm", "refuse"]), st.integers(0, 10)),
    # The wrong administrator tries the other's work.
    st.tuples(st.just("sysadm-policy"), st.sampled_from(ROLES), st.sampled_from(PAIRS)),
    st.tuples(st.just("sec-create"), st.sampled_from(NEWCOMERS), st.sampled_from(ACCOUNT_ROLES)),
)


def _restore(api) -> None:
    """The starting rules, the cast's roles, every cast account enabled, no newcomer, no link."""
    with api.runtime.sessions() as db:
        db.execute(sa.delete(CasbinRule))
        policy.seed_rules(db)
        for name, role in CAST:
            policy.assign_role(db, name, role)
        db.execute(sa.delete(PasswordLink))
        db.execute(sa.delete(User).where(User.username.in_(NEWCOMERS)))
        db.execute(sa.update(User).values(active=True))
        db.commit()
    # Both administrators sign in before any step, so one disabled midway answers 401 after.
    api.tokens.clear()
    api.login("sec")
    api.login("sysadm")


def _user_id(api, username) -> int | None:
    with api.runtime.sessions() as db:
        return db.scalar(sa.select(User.id).where(User.username == username))


def _run(api, step) -> tuple[str, object]:
    """One step through the API; returns (actor, response)."""
    kind = step[0]
    if kind == "p":
        _, role, domain, (obj, act) = step
        body = {"ptype": "p", "values": [role, domain, obj, act]}
        return "sec", api.post("/api/v1/policies", "sec", json=body)
    if kind == "g":
        body = {"ptype": "g", "values": list(step[1:])}
        return "sec", api.post("/api/v1/policies", "sec", json=body)
    if kind == "remove":
        with api.runtime.sessions() as db:
            ids = list(db.scalars(sa.select(CasbinRule.id).order_by(CasbinRule.id)))
        return "sec", api.delete(f"/api/v1/policies/{ids[step[1] % len(ids)]}", "sec")
    if kind in ("create", "sec-create"):
        who = "sysadm" if kind == "create" else "sec"
        body = {"username": step[1], "role": step[2]}
        if step[2] in policy.VENDOR_ROLES:
            body["org"] = VENDOR
        return who, api.post("/api/v1/users", who, json=body)
    if kind in ("reset", "disable", "enable"):
        user_id = _user_id(api, step[1]) or 999_999
        return "sysadm", api.post(f"/api/v1/users/{user_id}/{kind}", "sysadm")
    if kind in ("confirm", "refuse"):
        listing = api.get("/api/v1/users/confirmations", "sec")
        pending = listing.get_json().get("confirmations") if listing.status_code == 200 else None
        if not pending:
            return "sec", listing
        link = pending[step[1] % len(pending)]
        return "sec", api.post(f"/api/v1/users/confirmations/{link['id']}/{kind}", "sec")
    _, role, (obj, act) = step
    body = {"ptype": "p", "values": [role, "*", obj, act]}
    return "sysadm", api.post("/api/v1/policies", "sysadm", json=body)


def _expect(api, step, actor, response) -> None:
    assert response.status_code < 500, (step, response.get_json())
    kind = step[0]
    if kind in ("sysadm-policy", "sec-create"):
        assert response.status_code in (401, 403), step
    # An administrator acting on its own account is refused, and says why.
    on_itself = (kind == "g" and step[1] == actor) or (
        kind in ("reset", "disable", "enable") and step[1] == actor
    )
    if on_itself:
        assert response.status_code in (401, 403), (step, response.get_json())


def _check_table(api, sysadm_version: int) -> None:
    """After every step: the rule table breaks no invariant, the keepers kept their rules, and
    neither administrator's own account was touched."""
    with api.runtime.sessions() as db:
        assert duties.all_violations(db) == []
        rules = {
            tuple(v for v in (r.v0, r.v1, r.v2, r.v3) if v is not None)
            for r in db.scalars(sa.select(CasbinRule))
        }
        for verb in ("search", "verify", "export", "checkpoint"):
            assert ("auditor", "*", "audit", verb) in rules
        for obj, verb in [("policy", "add"), ("policy", "remove"), ("role", "assign")]:
            assert ("security_admin", "*", obj, verb) in rules
        assert policy.roles_in_table(db, "sec") == {"security_admin"}
        sysadm = db.scalar(sa.select(User).where(User.username == "sysadm"))
        assert sysadm.active and sysadm.credential_version == sysadm_version


def _check_reach(api) -> None:
    """After the sequence: what every account may do, as the live decision point says it."""
    engine = api.runtime.policy
    with api.runtime.sessions() as db:
        engine.refresh(db)
        held = {
            name: policy.roles_in_table(db, name) for name in db.scalars(sa.select(User.username))
        }
    for name, roles in held.items():
        mine = {duties.duty_of(r) for r in roles}
        assert len(mine) <= 1, (name, roles)
        for what, (pairs, owners) in REACH.items():
            for obj, act in pairs:
                for domain in REACH_DOMAINS:
                    if engine.check(name, domain, obj, act).allowed:
                        assert mine and mine <= owners, (name, roles, what, obj, act, domain)


def _nobody_acted_on_itself(api) -> None:
    for entry in api.audit_entries(decision="allow"):
        if entry["action"].startswith("user:") and entry["actor"] != "system":
            assert entry["target"] != f"user:{entry['actor']}", entry
        if entry["action"] in ("role:assign", "role:unassign"):
            values = entry["details"].get("values") or []
            assert not values or values[0] != entry["actor"], entry
    assert json.dumps(api.audit_entries()).count("set-password/") == 0


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(steps, min_size=1, max_size=15))
def test_no_sequence_of_admin_edits_breaks_the_separation_of_duties(office, sequence):
    if _user_id(office, "sec") is None:
        office.user("sec", "security_admin")
        office.user("sysadm", "system_admin")
    _restore(office)
    with office.runtime.sessions() as db:
        version = db.scalar(sa.select(User.credential_version).where(User.username == "sysadm"))
    for step in sequence:
        actor, response = _run(office, step)
        _expect(office, step, actor, response)
        _check_table(office, version)
    _check_reach(office)
    _nobody_acted_on_itself(office)
