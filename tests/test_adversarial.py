"""Issue 10, part 6: every path to an item's bytes, tried every way around it an adversarial user
found or might. Four paths are legitimate: the office reads its own item; vendor staff read with a
valid NDA and need-to-know; a third party reads with the grant of an approved request; an approved
subcontractor reads its record's fields with its client token. Every other attempt is refused with
the right status (404 across vendors, 401 for a dead credential, 403/409 otherwise) and leaves a
denial in the audit trail. Runs on SQLite and PostgreSQL like every database test.

A destroyed item (crypto-shredded) and an account locked after failed logins are rows too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest

from govern import policy
from tests.conftest import PASSWORD, as_operator
from tests.disclosure_flow import (
    approved_request,
    approved_subcontractor,
    file_request,
    issue_grant,
    move,
    office_today,
    request_body,
    window,
)

OTHER = "Vendor B Ltd"
SHA = "ef" * 32
RECORDS = [{"applicant": "张三", "id_number": "320402199001011234", "service": "营业执照"}]


@dataclass
class World:
    """Agreement A with a protected item reachable by all four legitimate paths, and agreement B
    of another vendor with its own lead and staff (who may read B's item)."""

    api: object
    runtime: object
    a: int
    b: int
    item: int
    b_item: int
    grant_token: str
    client_token: str
    request_id: int


def _span(api, start=-10, length=300) -> dict:
    w = window(api, start, length)
    return {"signed_on": w["starts_on"], "expires_on": w["ends_on"], "document_sha256": SHA}


def _nda(api, aid, who, as_="lead", **span):
    return api.post(
        f"/api/v1/agreements/{aid}/ndas", as_, json={"username": who, **(span or _span(api))}
    )


def _ntk(api, aid, who, item_ids, as_="lead"):
    return api.post(
        f"/api/v1/agreements/{aid}/need-to-know",
        as_,
        json={"username": who, "item_ids": item_ids, "reason": "maintenance"},
    )


def _sub_body(api, item_id: int, **extra) -> dict:
    dsa = window(api, -10, 200)
    return {
        "name": "统计云服务",
        "service": "statistics",
        "dsa_signed_on": dsa["starts_on"],
        "dsa_expires_on": dsa["ends_on"],
        "dsa_sha256": SHA,
        "purpose": "monthly report",
        "item_ids": [item_id],
        "fields": ["service"],
        "until": window(api, 0, 100)["ends_on"],
        **extra,
    }


@pytest.fixture
def world(office, runtime) -> World:
    office.user("lead2", "vendor_lead")
    office.user("lead-b", "vendor_lead", org=OTHER)
    office.user("staff-b", "vendor_staff", org=OTHER)
    a = office.agreement()["id"]
    b = office.agreement(title="B", vendor=OTHER)["id"]
    item = office.item(
        a,
        content=json.dumps(RECORDS, ensure_ascii=False).encode(),
        title="case records",
        category="data",
        fields=["applicant", "id_number", "service"],
        media_type="application/json",
    )["id"]
    b_item = office.item(b, content=b"B's item")["id"]
    assert _nda(office, a, "staff").status_code == 201
    assert _ntk(office, a, "staff", [item]).status_code == 201
    assert _nda(office, b, "staff-b", as_="lead-b").status_code == 201
    assert _ntk(office, b, "staff-b", [b_item], as_="lead-b").status_code == 201
    request = approved_request(office, a, [item])
    grant = issue_grant(office, request["id"])
    sub = approved_subcontractor(office, a, _sub_body(office, item))
    return World(
        office, runtime, a, b, item, b_item, grant["token"], sub["client_token"], request["id"]
    )


# The four paths to the bytes.


def office_read(w: World, who="approver"):
    return w.api.get(f"/api/v1/items/{w.item}/content", who)


def staff_read(w: World, who="staff"):
    return w.api.get(f"/api/v1/items/{w.item}/content", who)


def grant_read(w: World, token=None):
    return w.api.client.get(
        f"/api/v1/shared/items/{w.item}",
        headers={"Authorization": f"Bearer {token or w.grant_token}"},
    )


def sub_read(w: World, token=None):
    return w.api.client.get(
        f"/api/v1/shared/items/{w.item}",
        headers={"Authorization": f"Bearer {token or w.client_token}"},
    )


PATHS = {"office": office_read, "staff": staff_read, "grant": grant_read, "subcontractor": sub_read}


# Ways around. Each prepares the world, makes its attempts, and returns the responses that must
# all be refused, with (action, actor) of the denial each must leave in the trail.


def other_vendor_reads_as_office(w):
    return [(w.api.get(f"/api/v1/items/{w.item}/content", "lead-b"), ("item:read", "lead-b"))]


def other_vendors_staff_reads(w):
    # B's staff member holds a valid NDA and need-to-know, but in B's agreement only.
    assert w.api.get(f"/api/v1/items/{w.b_item}/content", "staff-b").status_code == 200
    return [(w.api.get(f"/api/v1/items/{w.item}/content", "staff-b"), ("item:read", "staff-b"))]


def other_vendor_grants_itself(w):
    return [
        (
            w.api.post(f"/api/v1/disclosures/{w.request_id}/grants", "lead-b"),
            ("grant:issue", "lead-b"),
        ),
        (
            w.api.post(
                f"/api/v1/agreements/{w.a}/disclosures",
                "lead-b",
                json=request_body(w.api, [w.item]),
            ),
            ("disclosure:create", "lead-b"),
        ),
    ]


def other_vendor_registers_a_subcontractor(w):
    sub = w.api.get(f"/api/v1/agreements/{w.a}/subcontractors", "lead").get_json()
    sub_id = sub["subcontractors"][0]["id"]
    return [
        (
            w.api.post(
                f"/api/v1/agreements/{w.a}/subcontractors", "lead-b", json=_sub_body(w.api, w.item)
            ),
            ("subcontractor:create", "lead-b"),
        ),
        (
            w.api.post(f"/api/v1/subcontractors/{sub_id}/token", "lead-b"),
            ("subcontractor:token", "lead-b"),
        ),
    ]


def lead_grants_itself(w):
    return [
        (_nda(w.api, w.a, "lead"), ("nda:create", "lead")),
        (_ntk(w.api, w.a, "lead", [w.item]), ("ntk:grant", "lead")),
        (staff_read(w, "lead"), ("item:read", "lead")),
    ]


def leads_grant_each_other(w):
    return [
        (_nda(w.api, w.a, "lead2"), ("nda:create", "lead")),
        (_ntk(w.api, w.a, "lead2", [w.item]), ("ntk:grant", "lead")),
        (staff_read(w, "lead2"), ("item:read", "lead2")),
    ]


def need_to_know_without_nda(w):
    w.api.user("newbie", "vendor_staff")
    return [
        (_ntk(w.api, w.a, "newbie", [w.item]), ("ntk:grant", "lead")),
        (staff_read(w, "newbie"), ("item:read", "newbie")),
    ]


def subcontractor_without_the_office(w):
    # Every field, or none (once "the whole item"): filed, but no token without the office.
    every = _sub_body(w.api, w.item, fields=["applicant", "id_number", "service"])
    filed = w.api.post(f"/api/v1/agreements/{w.a}/subcontractors", "lead", json=every)
    assert filed.status_code == 201 and filed.get_json()["state"] == "submitted"
    sub_id = filed.get_json()["id"]
    none = w.api.post(
        f"/api/v1/agreements/{w.a}/subcontractors", "lead", json=_sub_body(w.api, w.item, fields=[])
    )
    assert none.status_code == 400 and none.get_json()["error"]["field"] == "fields"
    return [
        (
            w.api.post(f"/api/v1/subcontractors/{sub_id}/token", "lead"),
            ("subcontractor:token", "lead"),
        ),
        (
            w.api.post(f"/api/v1/subcontractors/{sub_id}/review", "lead"),
            ("subcontractor:review", "lead"),
        ),
        (
            w.api.post(f"/api/v1/subcontractors/{sub_id}/rotate", "lead"),
            ("subcontractor:rotate", "lead"),
        ),
    ]


def stacked_roles(w):
    # A vendor account given an office role too (the issue's "evil corp" account). Account rules
    # elsewhere refuse to make it; the services refuse it whatever happens.
    w.api.user("evil", "vendor_lead")
    with as_operator(w.runtime) as ctx:
        policy.assign_role(ctx.db, "evil", "office_approver")
        policy.assign_role(ctx.db, "evil", "office_handler")
    draft = file_request(w.api, w.a, [w.item])
    evil_edit = {"third_party": "evil corp", "form": "transfer"}
    own = file_request(w.api, w.a, [w.item], as_="evil", third_party="evil corp", form="transfer")
    move(w.api, own["id"], "submit", "evil")
    return [
        (
            w.api.post(f"/api/v1/disclosures/{draft['id']}", "evil", json=evil_edit),
            ("disclosure:edit", "evil"),
        ),
        (
            w.api.post(f"/api/v1/disclosures/{draft['id']}/submit", "evil"),
            ("disclosure:submit", "evil"),
        ),
        (
            w.api.post(f"/api/v1/disclosures/{own['id']}/review", "evil"),
            ("disclosure:review", "evil"),
        ),
        (office_read(w, "evil"), ("item:read", "evil")),
    ]


def another_lead_edits_the_draft(w):
    draft = file_request(w.api, w.a, [w.item])
    return [
        (
            w.api.post(f"/api/v1/disclosures/{draft['id']}", "lead2", json={"form": "transfer"}),
            ("disclosure:edit", "lead2"),
        ),
        (
            w.api.post(f"/api/v1/disclosures/{draft['id']}/submit", "lead2"),
            ("disclosure:submit", "lead2"),
        ),
        (
            w.api.post(f"/api/v1/disclosures/{draft['id']}/withdraw", "lead2"),
            ("disclosure:withdraw", "lead2"),
        ),
    ]


def nda_lapsed(w):
    with w.runtime.sessions() as db:
        from govern.models import Nda

        for nda in db.query(Nda):
            nda.expires_on = office_today(w.api) - timedelta(days=1)
        db.commit()
    return [(staff_read(w), ("item:read", "staff"))]


def account_disabled(w):
    w.api.user("sysadm", "system_admin")
    w.api.login("staff")  # a token taken while the account was live
    staff_id = next(
        u["id"]
        for u in w.api.get("/api/v1/users", "sysadm").get_json()["users"]
        if u["username"] == "staff"
    )
    assert w.api.post(f"/api/v1/users/{staff_id}/disable", "sysadm").status_code == 200
    w.api.user("staff3", "vendor_staff")
    assert _nda(w.api, w.a, "staff3").status_code == 201
    staff3 = next(
        u["id"]
        for u in w.api.get("/api/v1/users", "sysadm").get_json()["users"]
        if u["username"] == "staff3"
    )
    assert w.api.post(f"/api/v1/users/{staff3}/disable", "sysadm").status_code == 200
    return [
        (staff_read(w), ("auth:bearer", "anonymous")),
        (_ntk(w.api, w.a, "staff3", [w.item]), ("ntk:grant", "lead")),
    ]


def item_recalled(w):
    recalled = w.api.post(
        f"/api/v1/agreements/{w.a}/recalls",
        "approver",
        json={"item_ids": [w.item], "reason": "over"},
    )
    assert recalled.status_code == 201, recalled.get_json()
    return [
        (staff_read(w), ("item:read", "staff")),
        (grant_read(w), ("shared:read", None)),
        (sub_read(w), ("shared:read", None)),
    ]


def agreement_terminated(w):
    assert w.api.post(f"/api/v1/agreements/{w.a}/terminate", "approver").status_code == 200
    return [
        (staff_read(w), ("item:read", "staff")),
        (grant_read(w), ("shared:read", None)),
        (sub_read(w), ("shared:read", None)),
        (w.api.post(f"/api/v1/disclosures/{w.request_id}/grants", "lead"), ("grant:issue", "lead")),
    ]


def item_destroyed(w):
    destroyed = w.api.post(
        f"/api/v1/items/{w.item}/destroy", "approver", json={"reason": "end of use"}
    )
    assert destroyed.status_code == 200, destroyed.get_json()
    return [
        (staff_read(w), ("item:read", "staff")),
        (grant_read(w), ("shared:read", None)),
        (sub_read(w), ("shared:read", None)),
        # Not even the owner: its data key is gone (409, the item's state).
        (office_read(w), ("item:read", "approver")),
    ]


def account_locked(w):
    """Guessing a password locks the account: the right password no longer yields a token."""
    for _ in range(w.runtime.settings.login_max_failures_account):
        wrong = w.api.client.post(
            "/api/v1/auth/token", json={"username": "staff", "password": "guess-guess-guess"}
        )
        assert wrong.status_code == 401
    right = w.api.client.post(
        "/api/v1/auth/token", json={"username": "staff", "password": PASSWORD}
    )
    return [(right, ("auth:login", None))]


# (way around, the status each attempt must get)
WAYS = [
    (other_vendor_reads_as_office, [404]),
    (other_vendors_staff_reads, [404]),
    (other_vendor_grants_itself, [404, 404]),
    (other_vendor_registers_a_subcontractor, [404, 404]),
    (lead_grants_itself, [403, 403, 403]),
    (leads_grant_each_other, [403, 403, 403]),
    (need_to_know_without_nda, [409, 403]),
    (subcontractor_without_the_office, [409, 403, 409]),
    (stacked_roles, [403, 403, 403, 403]),
    (another_lead_edits_the_draft, [403, 403, 403]),
    (nda_lapsed, [403]),
    (account_disabled, [401, 409]),
    (item_recalled, [403, 403, 403]),
    (agreement_terminated, [403, 403, 403, 409]),
    (item_destroyed, [403, 403, 403, 409]),
    (account_locked, [429]),
]


@pytest.mark.parametrize("path", sorted(PATHS))
def test_the_four_legitimate_paths_read_the_bytes(world, path):
    response = PATHS[path](world)
    assert response.status_code == 200, response.get_json()
    entry = world.api.audit_entries(decision="allow")[-1]
    assert (
        entry["action"] in ("item:read", "shared:read") and entry["target"] == f"item:{world.item}"
    )


@pytest.mark.parametrize(("way", "statuses"), WAYS, ids=[w.__name__ for w, _ in WAYS])
def test_every_way_around_is_refused_and_audited(world, way, statuses):
    before = world.api.audit_entries()[-1]["seq"]
    attempts = way(world)
    assert [r.status_code for r, _ in attempts] == statuses, [
        (r.status_code, r.get_json()) for r, _ in attempts
    ]
    denials = [e for e in world.api.audit_entries(decision="deny") if e["seq"] > before]
    for response, (action, actor) in attempts:
        matching = [
            e for e in denials if e["action"] == action and (actor is None or e["actor"] == actor)
        ]
        assert matching, (way.__name__, action, actor, response.get_json())
    # None of the bytes leaked in any refusal.
    for response, _ in attempts:
        assert b"320402199001011234" not in response.data


def test_the_owner_still_reads_its_own_item_after_recall_and_termination(world):
    """A recall and a termination take the data back from the vendor side (clauses 3.10, 5.3);
    the office keeps reading what it owns."""
    item_recalled(world)
    assert office_read(world).status_code == 200
    agreement_terminated(world)
    assert office_read(world).status_code == 200
