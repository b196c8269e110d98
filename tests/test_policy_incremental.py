"""Issue 13 part 5: after the first load, a worker reads only what changed in the rule table and
derives its next enforcer from the last one. Whatever path a change takes (one added row, one
removed row, several changes at once, an id SQLite hands out again), the decisions are the ones
a fresh load, and pycasbin's own role manager, would make."""

from __future__ import annotations

import itertools
import random

import casbin
import pytest
import sqlalchemy as sa

from govern import create_app, policy
from govern.config import POLICY_DIR
from govern.db import make_engine
from govern.models import CasbinRule
from govern.policy import PolicyEngine
from tests.conftest import VENDOR, Api

AGREEMENT = {
    "title": "t",
    "owner": "o",
    "vendor": "v",
    "signed_on": "2022-06-27",
    "term_years": 5,
    "contract_value": 1,
}


@pytest.fixture
def other(settings_overrides):
    """A second app instance on the same database: another worker, with its own enforcer."""
    app = create_app(settings_overrides)
    yield Api(app.test_client(), app.extensions["govern"])
    app.extensions["govern"].engine.dispose()


def role_rule(office: Api, values: list[str]) -> int:
    response = office.post("/api/v1/policies", "sec", json={"ptype": "g", "values": values})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_a_role_given_and_taken_away_through_one_worker_binds_the_other_at_once(office, other):
    office.user("sec", "security_admin")
    office.user("wei", None)
    first = office.agreement()
    path = f"/api/v1/agreements/{first['id']}"
    assert other.get(path, "wei").status_code == 403  # the other worker has loaded the rules
    given = role_rule(office, ["wei", "office_handler", "*"])
    assert other.get(path, "wei").status_code == 200
    assert office.delete(f"/api/v1/policies/{given}", "sec").status_code == 200
    assert other.get(path, "wei").status_code == 403
    # A role in one agreement only: the other worker honours its domain too.
    role_rule(office, ["wei", "office_handler", f"agreement:{first['id']}"])
    second = office.agreement(title="another")
    assert other.get(path, "wei").status_code == 200
    assert other.get(f"/api/v1/agreements/{second['id']}", "wei").status_code == 403


def test_an_account_created_through_one_worker_acts_through_the_other(office, other):
    office.user("sysadmin", "system_admin")
    assert other.get("/api/v1/agreements", "staff").status_code == 200
    created = office.post(
        "/api/v1/users",
        "sysadmin",
        json={"username": "newlead", "role": "vendor_lead", "org": VENDOR},
    )
    assert created.status_code == 201, created.get_json()
    assert office.set_password(created.get_json()["set_password_url"]).status_code == 200
    assert other.get("/api/v1/agreements", "newlead").status_code == 200


def _rule_id(office, values) -> int:
    rules = office.get("/api/v1/policies", "sec").get_json()["rules"]
    return next(r["id"] for r in rules if r["values"] == values)


def test_several_changes_between_two_requests_all_arrive(office, other):
    office.user("sec", "security_admin")
    office.user("wei", None)
    lead_lists = ["vendor_lead", "*", "agreement", "list"]
    removed = office.delete(f"/api/v1/policies/{_rule_id(office, lead_lists)}", "sec")
    assert removed.status_code == 200
    assert other.get("/api/v1/agreements", "lead").status_code == 403
    assert other.get("/api/v1/agreements", "wei").status_code == 403
    staff_rule = _rule_id(office, ["vendor_staff", "*", "agreement", "list"])
    # Three changes land before the other worker's next request: a rule added, a role given,
    # a rule taken away.
    added = office.post("/api/v1/policies", "sec", json={"ptype": "p", "values": lead_lists})
    assert added.status_code == 201, added.get_json()
    role_rule(office, ["wei", "office_handler", "*"])
    assert office.delete(f"/api/v1/policies/{staff_rule}", "sec").status_code == 200
    assert other.get("/api/v1/agreements", "lead").status_code == 200
    assert other.get("/api/v1/agreements", "wei").status_code == 200
    assert other.get("/api/v1/agreements", "staff").status_code == 403


def test_a_reused_id_is_not_mistaken_for_the_rule_it_replaced(office, other, database_url):
    # SQLite gives a new row max(rowid) + 1: once the newest rule is deleted, the next insert
    # takes its id. The other worker must read the new row as what it is, whether the deletion
    # and the insertion came as two changes (through the API) or as one (by hand).
    office.user("sec", "security_admin")
    for name in ("wei", "li", "zhao"):
        office.user(name, None)
    path = "/api/v1/agreements"
    newest = role_rule(office, ["wei", "office_handler", "*"])
    assert other.get(path, "wei").status_code == 200
    assert office.delete(f"/api/v1/policies/{newest}", "sec").status_code == 200
    newest = role_rule(office, ["li", "office_handler", "*"])
    assert [other.get(path, who).status_code for who in ("wei", "li")] == [403, 200]
    engine = make_engine(database_url)
    with sa.orm.Session(engine) as db:
        db.execute(sa.delete(CasbinRule).where(CasbinRule.id == newest))
        db.add(CasbinRule(ptype="g", v0="zhao", v1="office_handler", v2="*"))
        policy.bump_version(db)
        db.commit()
    engine.dispose()
    assert [other.get(path, who).status_code for who in ("li", "zhao")] == [403, 200]


# Decisions identical to a fresh load and to pycasbin's own DomainManager, step after step.

USERS = ["ann", "bo", "cy", "di"]
ROLES = ["office_handler", "vendor_lead", "vendor_staff", "auditor"]
DOMAINS = ["*", "agreement:1", "agreement:2"]
KINDS = [("agreement", "read"), ("item", "read"), ("nda", "list"), ("agreement", "create")]


def pycasbin_verdicts(lines: list[tuple[str, ...]], requests) -> list[tuple[bool, str]]:
    """What pycasbin alone (its own role manager) answers over the same rules."""
    enforcer = casbin.Enforcer(str(POLICY_DIR / "model.conf"))
    for line in lines:
        enforcer.get_model().model[line[0]][line[0]].policy.append(list(line[1:]))
    enforcer.build_role_links()
    answers = []
    for request in requests:
        allowed, explain = enforcer.enforce_ex(*request)
        answers.append((True, "p, " + ", ".join(explain)) if allowed else (False, ""))
    return answers


def verdicts(engine: PolicyEngine, requests) -> list[tuple[bool, str]]:
    return [
        (v.allowed, v.rule if v.allowed else "") for v in map(lambda r: engine.check(*r), requests)
    ]


def change_at_random(db, rnd: random.Random) -> None:
    """One committed change: a rule or role removed, a role given, or a rule added."""
    existing = db.scalars(sa.select(CasbinRule)).all()
    if existing and rnd.random() < 0.4:
        db.delete(rnd.choice(existing))
    elif rnd.random() < 0.7:
        role = [rnd.choice(USERS), rnd.choice(ROLES), rnd.choice(DOMAINS)]
        db.add(CasbinRule(ptype="g", **{f"v{i}": v for i, v in enumerate(role)}))
    else:
        kind, act = rnd.choice(KINDS)
        rule = [rnd.choice(ROLES), rnd.choice(DOMAINS), kind, act]
        db.add(CasbinRule(ptype="p", **{f"v{i}": v for i, v in enumerate(rule)}))
    try:
        db.flush()
    except sa.exc.IntegrityError:  # that rule exists already: nothing changes
        db.rollback()
        return
    policy.bump_version(db)
    db.commit()


def test_decisions_match_a_fresh_load_and_pycasbin_after_every_change(database_url):
    engine = make_engine(database_url)
    rnd = random.Random(13)
    requests = [
        (s, d, k, a) for s, d in itertools.product(USERS + ROLES, DOMAINS) for k, a in KINDS
    ]
    live = PolicyEngine(engine)
    try:
        with sa.orm.Session(engine) as db:
            live.refresh(db)
            for step in range(25):
                # One to three changes between two looks: several take the comparison path.
                for _ in range(rnd.choice([1, 1, 1, 2, 3])):
                    change_at_random(db, rnd)
                live.refresh(db)
                fresh = PolicyEngine(engine)
                fresh.refresh(db)
                lines = [
                    tuple(v for v in row if v is not None)
                    for row in db.execute(
                        sa.select(
                            CasbinRule.ptype,
                            CasbinRule.v0,
                            CasbinRule.v1,
                            CasbinRule.v2,
                            CasbinRule.v3,
                        ).order_by(CasbinRule.id)
                    )
                ]
                answers = verdicts(live, requests)
                assert answers == verdicts(fresh, requests), step
                assert answers == pycasbin_verdicts(lines, requests), step
                for user, domain in itertools.product(USERS, DOMAINS):
                    expected = {
                        line[2]
                        for line in lines
                        if line[:2] == ("g", user) and line[3] in (policy.GLOBAL, domain)
                    }
                    assert live.roles(user, domain) == tuple(sorted(expected)), step
                    assert live.may_ever(user, "item", "read") == fresh.may_ever(
                        user, "item", "read"
                    ), step
    finally:
        engine.dispose()
