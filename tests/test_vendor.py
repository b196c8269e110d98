"""Issue 4: staff NDAs (clause 3.8), need-to-know (clause 3.5), subcontractors and their
minimisation records (clause 3.7), breaches (clauses 7, 3.9) and the warnings ahead of end dates.

Everything goes through the real app with real tokens; where a test needs time to have passed (an
NDA lapsed, a record ended, an agreement terminated by another issue's code), it moves the date
in the database, the way a later day would find it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from jose import jwt

from govern.cli import main
from govern.demo import CASES, CSV
from govern.messages import Msg
from govern.models import Agreement, Item, Nda, NeedToKnow, Subcontractor
from govern.services.shared import DENIED

shared_denied = Msg(DENIED)

SHA = "ab" * 32


@dataclass(frozen=True)
class Days:
    """A day ``offset`` days from the office's today, for test parameters: they are built at
    import, so the day is read from the app's clock inside the test (``resolve``)."""

    offset: int

    @staticmethod
    def resolve(office, body: dict) -> dict:
        return {k: office.day(v.offset) if isinstance(v, Days) else v for k, v in body.items()}


FIELDS = ["applicant", "id_number", "service", "status"]


def change(runtime, model, ident, **values):
    """Move the world on (a date passed, another issue's state change) directly in the DB."""
    with runtime.sessions() as db:
        row = db.get(model, ident)
        for name, value in values.items():
            setattr(row, name, value)
        db.commit()


def nda(office, agreement_id, username="staff", start=-10, end=300, as_="lead", **extra):
    body = {
        "username": username,
        "signed_on": office.day(start),
        "expires_on": office.day(end),
        "document_sha256": SHA,
        **extra,
    }
    return office.post(f"/api/v1/agreements/{agreement_id}/ndas", as_, json=body)


def ntk(office, agreement_id, item_ids, username="staff", as_="lead", **extra):
    body = {"username": username, "item_ids": item_ids, "reason": "maintenance", **extra}
    return office.post(f"/api/v1/agreements/{agreement_id}/need-to-know", as_, json=body)


def data_items(office, agreement_id):
    as_json = office.item(
        agreement_id,
        content=json.dumps(CASES, ensure_ascii=False).encode(),
        title="cases (JSON)",
        category="data",
        fields=FIELDS,
        media_type="application/json",
    )
    as_csv = office.item(
        agreement_id,
        content=CSV.encode(),
        title="cases (CSV)",
        category="data",
        fields=FIELDS,
        media_type="text/csv",
    )
    return as_json, as_csv


def sub_body(office, item_ids, **extra):
    return {
        "name": "SLA statistics SaaS",
        "service": "monthly statistics",
        "dsa_signed_on": office.day(-10),
        "dsa_expires_on": office.day(200),
        "dsa_sha256": SHA,
        "purpose": "count cases per service and status",
        "item_ids": item_ids,
        "fields": ["service", "status"],
        "until": office.day(100),
        **extra,
    }


def subcontractor(office, agreement_id, item_ids, **extra):
    """A record filed by the lead, reviewed by the handler, approved by the approver (clause 3.5
    + 3.7), and its client token taken by the lead: the record with ``client_token``."""
    response = office.post(
        f"/api/v1/agreements/{agreement_id}/subcontractors",
        "lead",
        json=sub_body(office, item_ids, **extra),
    )
    assert response.status_code == 201, response.get_json()
    filed = response.get_json()
    assert filed["state"] == "submitted" and "client_token" not in filed
    for verb, who in (("review", "handler"), ("approve", "approver")):
        moved = office.post(f"/api/v1/subcontractors/{filed['id']}/{verb}", who)
        assert moved.status_code == 200, moved.get_json()
    issued = office.post(f"/api/v1/subcontractors/{filed['id']}/token", "lead")
    assert issued.status_code == 201, issued.get_json()
    return {**moved.get_json(), "client_token": issued.get_json()["client_token"]}


def shared(office, item_id, token):
    return office.get(
        f"/api/v1/shared/items/{item_id}", headers={"Authorization": f"Bearer {token}"}
    )


# Staff NDAs (clause 3.8).


def test_lead_registers_lists_and_renews_an_nda(office, runtime):
    agreement = office.agreement()
    pdf = b"%PDF-1.7 signed NDA of staff"
    created = nda(
        office,
        agreement["id"],
        document_sha256=hashlib.sha256(pdf).hexdigest(),
        document_b64=base64.b64encode(pdf).decode(),
    )
    assert created.status_code == 201, created.get_json()
    first = created.get_json()
    assert first["status"] == "valid" and first["document_stored"] is True
    with runtime.sessions() as db:
        row = db.get(Nda, first["id"])
        assert pdf not in row.document_ciphertext and b"signed" not in row.document_ciphertext

    renewed = office.post(
        f"/api/v1/ndas/{first['id']}/renew",
        "lead",
        json={"expires_on": office.day(700), "document_sha256": "cd" * 32},
    )
    assert renewed.status_code == 201, renewed.get_json()
    assert renewed.get_json()["renews_id"] == first["id"]
    assert renewed.get_json()["signed_on"] == office.day(0)
    again = office.post(
        f"/api/v1/ndas/{first['id']}/renew",
        "lead",
        json={"expires_on": office.day(900), "document_sha256": "cd" * 32},
    )
    assert again.status_code == 409
    shorter = office.post(
        f"/api/v1/ndas/{renewed.get_json()['id']}/renew",
        "lead",
        json={"expires_on": office.day(600), "document_sha256": "cd" * 32},
    )
    assert shorter.status_code == 400 and shorter.get_json()["error"]["field"] == "expires_on"

    listed = office.get(f"/api/v1/agreements/{agreement['id']}/ndas", "audit").get_json()["ndas"]
    assert [n["username"] for n in listed] == ["staff", "staff"]
    assert [n["renews_id"] for n in listed] == [None, first["id"]]
    entries = office.audit_entries(action="nda:create", decision="allow")
    assert entries[-1]["target"] == f"nda:{first['id']}"
    assert office.audit_entries(action="nda:renew", decision="allow")
    assert "signed NDA" not in str(office.audit_entries())


@pytest.mark.parametrize(
    ("change_body", "status", "field"),
    [
        ({"username": "nobody"}, 400, "username"),
        ({"username": "approver"}, 400, "username"),
        ({"signed_on": Days(10), "expires_on": Days(5)}, 400, "expires_on"),
        ({"document_sha256": "xyz"}, 400, "document_sha256"),
        ({"document_sha256": "a" * 63}, 400, "document_sha256"),
        ({"document_b64": base64.b64encode(b"another file").decode()}, 400, "document_sha256"),
        ({"signed_on": "2026-02-30"}, 400, "signed_on"),
        ({"signed_on": Days(100), "expires_on": Days(400)}, 409, "signed_on"),
    ],
)
def test_bad_nda_input_is_refused_and_changes_nothing(office, change_body, status, field):
    change_body = Days.resolve(office, change_body)
    agreement = office.agreement()
    assert nda(office, agreement["id"], start=-10, end=200).status_code == 201
    body = {
        "username": "staff",
        "signed_on": office.day(300),
        "expires_on": office.day(600),
        "document_sha256": SHA,
        **change_body,
    }
    response = office.post(f"/api/v1/agreements/{agreement['id']}/ndas", "lead", json=body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["field"] == field
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/ndas", "lead").get_json()["ndas"]
    assert len(listed) == 1


def test_the_lead_registers_its_staff_and_the_office_registers_the_lead(office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    for who in ("staff", "approver", "audit"):
        assert nda(office, agreement["id"], as_=who).status_code == 403, who
        assert ntk(office, agreement["id"], [item["id"]], as_=who).status_code == 403, who
    assert office.audit_entries(action="nda:create", decision="deny")
    # Nobody grants access to themselves: the lead's own NDA and need-to-know come from the office.
    own = nda(office, agreement["id"], username="lead")
    assert own.status_code == 403, own.get_json()
    assert "own NDA" in own.get_json()["error"]["message"]
    denied = office.audit_entries(action="nda:create", actor="lead", decision="deny")
    assert "own NDA" in denied[-1]["rule"] and "p, vendor_lead" in denied[-1]["rule"]
    leads = nda(office, agreement["id"], username="lead", as_="approver")
    assert leads.status_code == 201
    renew = {"expires_on": office.day(700), "document_sha256": SHA}
    own_renewal = office.post(f"/api/v1/ndas/{leads.get_json()['id']}/renew", "lead", json=renew)
    assert own_renewal.status_code == 403
    assert (
        office.post(
            f"/api/v1/ndas/{leads.get_json()['id']}/renew", "approver", json=renew
        ).status_code
        == 201
    )
    mine = ntk(office, agreement["id"], [item["id"]], username="lead")
    assert mine.status_code == 403, mine.get_json()
    ok = ntk(office, agreement["id"], [item["id"]], username="lead", as_="approver")
    assert ok.status_code == 201, ok.get_json()
    # Another lead of the same vendor does not register a lead either.
    office.user("lead2", "vendor_lead")
    assert nda(office, agreement["id"], username="lead2").status_code == 403


# Need-to-know (clause 3.5).


def test_need_to_know_is_granted_listed_and_revoked(office):
    agreement = office.agreement()
    a, b = office.item(agreement["id"]), office.item(agreement["id"], title="second")
    assert nda(office, agreement["id"]).status_code == 201
    granted = ntk(office, agreement["id"], [a["id"], b["id"]], ends_on=office.day(30))
    assert granted.status_code == 201, granted.get_json()
    rows = granted.get_json()["need_to_know"]
    assert [r["item_id"] for r in rows] == [a["id"], b["id"]]
    assert all(r["status"] == "active" and r["ends_on"] == office.day(30) for r in rows)
    revoked = office.post(
        f"/api/v1/need-to-know/{rows[0]['id']}/revoke", "lead", json={"reason": "moved on"}
    )
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "revoked"
    twice = office.post(
        f"/api/v1/need-to-know/{rows[0]['id']}/revoke", "lead", json={"reason": "again"}
    )
    assert twice.status_code == 409
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/need-to-know", "approver")
    assert [r["status"] for r in listed.get_json()["need_to_know"]] == ["revoked", "active"]
    assert office.audit_entries(action="ntk:revoke", decision="allow")[0]["details"]["reason"] == (
        "moved on"
    )


def test_bad_need_to_know_input_is_refused_and_changes_nothing(office):
    agreement = office.agreement()
    other = office.agreement(title="another agreement")
    item = office.item(agreement["id"])
    foreign = office.item(other["id"])
    assert nda(office, agreement["id"]).status_code == 201
    assert ntk(office, agreement["id"], [item["id"]]).status_code == 201
    office.user("staff2", "vendor_staff")
    assert nda(office, agreement["id"], username="staff2", end=40).status_code == 201
    office.user("staff3", "vendor_staff")
    office.user("elsewhere", "vendor_staff", org="Vendor B Ltd")
    cases = [
        ({"item_ids": [9999]}, 400, "item_ids"),
        ({"item_ids": [foreign["id"]]}, 400, "item_ids"),
        ({"item_ids": []}, 400, "item_ids"),
        ({"item_ids": [item["id"]]}, 409, "item_ids"),
        ({"username": "nobody"}, 400, "username"),
        ({"username": "handler"}, 400, "username"),
        ({"ends_on": office.day(-1)}, 400, "ends_on"),
        ({"ends_on": "soon"}, 400, "ends_on"),
        ({"username": "elsewhere"}, 400, "username"),
    ]
    for change_body, status, field in cases:
        body = {"username": "staff2", "item_ids": [item["id"]], "reason": "why", **change_body}
        if change_body.get("item_ids") == [item["id"]]:
            body["username"] = "staff"
        response = office.post(
            f"/api/v1/agreements/{agreement['id']}/need-to-know", "lead", json=body
        )
        assert response.status_code == status, (change_body, response.get_json())
        assert response.get_json()["error"]["field"] == field, change_body
    # Need-to-know needs an NDA over its whole span (clause 3.8): 409 naming why, audited.
    for body, why in [
        ({"username": "staff3"}, "no valid NDA today"),
        ({"username": "staff2", "ends_on": office.day(100)}, f"NDA ends on {office.day(40)}"),
    ]:
        body = {"item_ids": [item["id"]], "reason": "why", **body}
        response = office.post(
            f"/api/v1/agreements/{agreement['id']}/need-to-know", "lead", json=body
        )
        assert response.status_code == 409, response.get_json()
        assert why in response.get_json()["error"]["message"]
        assert why in office.audit_entries(action="ntk:grant", decision="deny")[-1]["rule"]
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/need-to-know", "lead").get_json()
    assert len(listed["need_to_know"]) == 1


# Reading an item's content as vendor staff: every condition, each denial saying which failed.


def _setup_reader(office, runtime, case):
    agreement = office.agreement()
    item = office.item(agreement["id"], content=b"design v3")
    aid, iid = agreement["id"], item["id"]
    registered = nda(office, aid)
    assert registered.status_code == 201
    if case != "no need-to-know":
        granted = ntk(office, aid, [iid]).get_json()["need_to_know"][0]
        if case == "need-to-know revoked":
            office.post(
                f"/api/v1/need-to-know/{granted['id']}/revoke", "lead", json={"reason": "x"}
            )
        if case == "need-to-know ended":
            change(runtime, NeedToKnow, granted["id"], ends_on=date(2024, 1, 1))
    # The NDA's dates move after need-to-know was given, as a later day (or a correction) would.
    start, end = {"nda not started": (5, 300), "nda lapsed": (-400, -10)}.get(case, (-10, 300))
    change(
        runtime,
        Nda,
        registered.get_json()["id"],
        signed_on=date.fromisoformat(office.day(start)),
        expires_on=date.fromisoformat(office.day(end)),
    )
    if case == "agreement terminated":
        change(runtime, Agreement, aid, status="terminated", terminated_on=date(2024, 1, 1))
    if case == "item not protected":
        change(runtime, Item, iid, status="recalled")
    return iid


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("allowed", None),
        ("nda not started", "no valid NDA: it starts on"),
        ("nda lapsed", "no valid NDA: it lapsed on"),
        ("no need-to-know", "no need-to-know for item"),
        ("need-to-know revoked", "it was revoked"),
        ("need-to-know ended", "it ended on 2024-01-01"),
        ("agreement terminated", "is terminated"),
        ("item not protected", "is recalled"),
    ],
)
def test_staff_read_needs_nda_need_to_know_active_agreement_and_protected_item(
    office, runtime, case, reason
):
    item_id = _setup_reader(office, runtime, case)
    response = office.get(f"/api/v1/items/{item_id}/content", "staff")
    last = office.audit_entries(action="item:read", actor="staff")[-1]
    if reason is None:
        assert response.status_code == 200 and response.data == b"design v3"
        assert last["decision"] == "allow"
        return
    assert response.status_code == 403
    assert reason in response.get_json()["error"]["message"]
    assert last["decision"] == "deny" and reason in last["rule"]
    assert last["target"] == f"item:{item_id}"


def test_the_lead_needs_an_nda_and_need_to_know_too(office):
    agreement = office.agreement()
    item = office.item(agreement["id"], content=b"design v3")
    assert office.get(f"/api/v1/items/{item['id']}/content", "lead").status_code == 403
    nda(office, agreement["id"], username="lead", as_="approver")
    assert office.get(f"/api/v1/items/{item['id']}/content", "lead").status_code == 403
    ntk(office, agreement["id"], [item["id"]], username="lead", as_="approver")
    assert office.get(f"/api/v1/items/{item['id']}/content", "lead").data == b"design v3"


# Subcontractors and minimisation (clause 3.7).


def test_subcontractor_receives_only_its_fields_from_json_and_csv(office):
    agreement = office.agreement()
    as_json, as_csv = data_items(office, agreement["id"])
    created = subcontractor(office, agreement["id"], [as_json["id"], as_csv["id"]])
    token = created["client_token"]
    claims = jwt.get_unverified_claims(token)
    assert claims["aud"] == "govern-subcontractor" and claims["sub"] == str(created["id"])
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert created["scopes"] == [
        {"item_id": as_json["id"], "fields": ["service", "status"], "ended": False},
        {"item_id": as_csv["id"], "fields": ["service", "status"], "ended": False},
    ]

    got_json = shared(office, as_json["id"], token)
    assert got_json.status_code == 200, got_json.get_json()
    assert json.loads(got_json.data) == [
        {"service": "营业执照", "status": "办结"},
        {"service": "户籍迁移", "status": "受理"},
    ]
    got_csv = shared(office, as_csv["id"], token)
    assert got_csv.status_code == 200
    assert got_csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert got_csv.data.decode() == "service,status\n营业执照,办结\n户籍迁移,受理\n"
    for response in (got_json, got_csv):
        assert "320402" not in response.data.decode() and "张三" not in response.data.decode()

    served = office.audit_entries(action="shared:read", decision="allow")
    assert [e["actor"] for e in served] == [f"subcontractor:{created['id']}"] * 2
    assert served[0]["details"]["fields"] == ["service", "status"]
    # The client token itself never reaches the trail.
    assert token not in str(office.audit_entries())


def test_every_request_beyond_the_record_is_denied_and_audited(office, runtime):
    agreement = office.agreement()
    as_json, as_csv = data_items(office, agreement["id"])
    outside = office.item(agreement["id"], content=b"not for them")
    # Registration refuses fields on content that has none (see test_items.py); a row from before
    # that check, declaring fields over plain text, is still never served whole.
    text_with_fields = office.item(
        agreement["id"], content=b'[{"service": "x"}]', fields=["service"], title="older row"
    )
    change(runtime, Item, text_with_fields["id"], media_type="text/plain")
    whole = office.item(agreement["id"], content=b"runbook", media_type="text/plain")
    created = subcontractor(
        office,
        agreement["id"],
        [as_json["id"], text_with_fields["id"], whole["id"]],
        whole_items=[whole["id"]],
    )
    token, actor = created["client_token"], f"subcontractor:{created['id']}"
    # An item named in the record's whole_items comes back whole.
    assert shared(office, whole["id"], token).data == b"runbook"

    expected = {
        outside["id"]: "not in the minimisation record",
        as_csv["id"]: "not in the minimisation record",
        99999: "not in the minimisation record",
        text_with_fields["id"]: "cannot be cut down to fields",
    }
    for item_id, reason in expected.items():
        response = shared(office, item_id, token)
        assert response.status_code == 403, item_id
        # The holder is told nothing of why (clause 3.7's record stays the office's); the trail is.
        assert response.get_json()["error"]["message"] == shared_denied
        entry = office.audit_entries(action="shared:read", actor=actor)[-1]
        assert entry["decision"] == "deny" and reason in entry["rule"]
        assert entry["target"] == f"item:{item_id}"

    # A bad or foreign token is refused (and the attempt is in the trail).
    assert shared(office, as_json["id"], token[:-4] + "AAAA").status_code == 401
    assert shared(office, as_json["id"], office.login("lead")).status_code == 401
    assert office.audit_entries(action="shared:read", actor="anonymous")


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("record ended", "minimisation record ended"),
        # A DSA cannot lapse while its record runs (the database holds until <= dsa_expires_on),
        # so the DSA's own dates are seen through its start.
        ("dsa not started", "data-security agreement starts on"),
        ("agreement terminated", "is terminated"),
        ("item recalled", "is recalled"),
    ],
)
def test_live_state_is_checked_on_every_use(office, runtime, when, reason):
    agreement = office.agreement()
    as_json, _ = data_items(office, agreement["id"])
    created = subcontractor(office, agreement["id"], [as_json["id"]])
    token = created["client_token"]
    assert shared(office, as_json["id"], token).status_code == 200
    past = date(2024, 1, 1)
    if when == "record ended":
        change(runtime, Subcontractor, created["id"], until=past)
    elif when == "dsa not started":
        change(
            runtime, Subcontractor, created["id"], dsa_signed_on=date.fromisoformat(office.day(1))
        )
    elif when == "agreement terminated":
        change(
            runtime,
            Agreement,
            agreement["id"],
            status="terminated",
            terminated_on=date(2024, 1, 1),
        )
    else:
        change(runtime, Item, as_json["id"], status="recalled")
    response = shared(office, as_json["id"], token)
    assert response.status_code == 403 and response.get_json()["error"]["message"] == shared_denied
    entry = office.audit_entries(action="shared:read")[-1]
    assert entry["decision"] == "deny" and reason in entry["rule"]


def test_rotating_and_revoking_the_client_token(office):
    agreement = office.agreement()
    as_json, _ = data_items(office, agreement["id"])
    created = subcontractor(office, agreement["id"], [as_json["id"]])
    old = created["client_token"]
    rotated = office.post(f"/api/v1/subcontractors/{created['id']}/rotate", "lead")
    assert rotated.status_code == 200
    new = rotated.get_json()["client_token"]
    refused = shared(office, as_json["id"], old)
    assert refused.status_code == 403 and refused.get_json()["error"]["message"] == shared_denied
    assert "replaced" in office.audit_entries(action="shared:read")[-1]["rule"]
    assert shared(office, as_json["id"], new).status_code == 200
    assert office.post(f"/api/v1/subcontractors/{created['id']}/rotate", "staff").status_code == 403

    revoked = office.post(
        f"/api/v1/subcontractors/{created['id']}/revoke", "lead", json={"reason": "contract over"}
    )
    assert revoked.status_code == 200
    assert revoked.get_json()["revoked_at"] and revoked.get_json()["scopes"][0]["ended"] is True
    gone = shared(office, as_json["id"], new)
    assert gone.status_code == 403 and gone.get_json()["error"]["message"] == shared_denied
    assert "revoked" in office.audit_entries(action="shared:read")[-1]["rule"]
    assert (
        office.post(
            f"/api/v1/subcontractors/{created['id']}/revoke", "lead", json={"reason": "again"}
        ).status_code
        == 409
    )
    assert office.post(f"/api/v1/subcontractors/{created['id']}/rotate", "lead").status_code == 409


def test_the_client_token_expires_with_the_record(office, clock, today):
    agreement = office.agreement()
    as_json, _ = data_items(office, agreement["id"])
    created = subcontractor(office, agreement["id"], [as_json["id"]], until=office.day(10))
    claims = jwt.get_unverified_claims(created["client_token"])
    end = clock.end_of_day(today + timedelta(days=10))
    assert claims["exp"] == int(end.timestamp())


def _short_term_agreement(office):
    """An agreement whose five-year term ends in 10 days."""
    signed = datetime.fromisoformat(office.day(10)).date()
    return office.agreement(signed_on=signed.replace(year=signed.year - 5).isoformat())


@pytest.mark.parametrize(
    ("change_body", "status", "field"),
    [
        ({"dsa_signed_on": Days(-400), "dsa_expires_on": Days(-1)}, 400, "dsa_expires_on"),
        ({"dsa_signed_on": Days(3)}, 400, "dsa_signed_on"),
        ({"dsa_signed_on": Days(10), "dsa_expires_on": Days(5)}, 400, "dsa_expires_on"),
        ({"fields": ["service", "password"]}, 400, "fields"),
        ({"fields": []}, 400, "fields"),
        ({"whole_items": [99999]}, 400, "whole_items"),
        ({"until": Days(300)}, 400, "until"),
        ({"until": Days(-1)}, 400, "until"),
        ({"until": Days(20), "term": "short"}, 400, "until"),
        ({"item_ids": [99999]}, 400, "item_ids"),
        ({"item_ids": "foreign"}, 400, "item_ids"),
        ({"dsa_sha256": "not-a-hash"}, 400, "dsa_sha256"),
        ({"name": ""}, 400, "name"),
    ],
)
def test_bad_subcontractor_records_are_refused_and_change_nothing(
    office, change_body, status, field
):
    change_body = Days.resolve(office, change_body)
    agreement = (
        _short_term_agreement(office) if change_body.pop("term", None) else office.agreement()
    )
    as_json, _ = data_items(office, agreement["id"])
    if change_body.get("item_ids") == "foreign":
        other = office.agreement(title="other")
        change_body["item_ids"] = [office.item(other["id"])["id"]]
    body = {**sub_body(office, [as_json["id"]]), **change_body}
    response = office.post(
        f"/api/v1/agreements/{agreement['id']}/subcontractors", "lead", json=body
    )
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["field"] == field
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/subcontractors", "lead").get_json()
    assert listed["subcontractors"] == []


def test_only_the_lead_registers_subcontractors(office):
    agreement = office.agreement()
    as_json, _ = data_items(office, agreement["id"])
    for who in ("staff", "approver", "audit"):
        response = office.post(
            f"/api/v1/agreements/{agreement['id']}/subcontractors",
            who,
            json=sub_body(office, [as_json["id"]]),
        )
        assert response.status_code == 403, who


def test_minimisation_report_shows_received_beside_allowed_and_unused_fields(office):
    agreement = office.agreement()
    as_json, as_csv = data_items(office, agreement["id"])
    created = subcontractor(office, agreement["id"], [as_json["id"], as_csv["id"]])
    token = created["client_token"]
    shared(office, as_json["id"], token)
    shared(office, as_json["id"], token)
    outside = office.item(agreement["id"])
    shared(office, outside["id"], token)
    report = office.get(f"/api/v1/subcontractors/{created['id']}/report", "approver")
    assert report.status_code == 200
    body = report.get_json()
    by_item = {row["item_id"]: row for row in body["items"]}
    assert by_item[as_json["id"]]["may_receive"] == ["service", "status"]
    assert by_item[as_json["id"]]["received"] == ["service", "status"]
    assert by_item[as_json["id"]]["reads"] == 2
    assert by_item[as_csv["id"]]["received"] == [] and by_item[as_csv["id"]]["reads"] == 0
    assert body["unused_fields"] == [
        {"item_id": as_csv["id"], "field": "service"},
        {"item_id": as_csv["id"], "field": "status"},
    ]
    assert body["denied_requests"] == 1
    assert office.get(f"/api/v1/subcontractors/{created['id']}/report", "staff").status_code == 403


# Breaches (clauses 7, 3.9).


def test_a_breach_is_the_vendors_with_the_contract_value_as_damages(office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    office.get(f"/api/v1/items/{item['id']}/content", "staff")
    seqs = [e["seq"] for e in office.audit_entries(action="item:read", actor="staff")]
    created = office.post(
        f"/api/v1/agreements/{agreement['id']}/breaches",
        "approver",
        json={
            "description": "tried to read the design without an NDA",
            "responsible_kind": "staff",
            "responsible": "staff",
            "audit_seqs": seqs,
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["attributed_to"] == "上海今点软件有限公司"
    assert body["liquidated_damages"] == "3985000.00" and body["currency"] == "CNY"
    assert body["termination_requested"] is False and body["audit_seqs"] == seqs

    as_json, _ = data_items(office, agreement["id"])
    sub = subcontractor(office, agreement["id"], [as_json["id"]])
    by_sub = office.post(
        f"/api/v1/agreements/{agreement['id']}/breaches",
        "approver",
        json={
            "description": "kept data after the record ended",
            "responsible_kind": "subcontractor",
            "responsible": str(sub["id"]),
            "audit_seqs": seqs[:1],
        },
    )
    assert by_sub.status_code == 201 and by_sub.get_json()["responsible"] == (
        f"subcontractor:{sub['id']}"
    )
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/breaches", "audit").get_json()
    assert [b["responsible_kind"] for b in listed["breaches"]] == ["staff", "subcontractor"]
    entry = office.audit_entries(action="breach:create", decision="allow")[0]
    assert entry["details"]["attributed_to"] == "上海今点软件有限公司"
    assert entry["details"]["termination_requested"] is False


def test_a_breach_can_lead_straight_to_termination(office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    office.get(f"/api/v1/items/{item['id']}/content", "staff")
    seqs = [e["seq"] for e in office.audit_entries(action="item:read", actor="staff")]
    created = office.post(
        f"/api/v1/agreements/{agreement['id']}/breaches",
        "approver",
        json={
            "description": "leaked the design",
            "responsible_kind": "staff",
            "responsible": "staff",
            "audit_seqs": seqs,
            "terminate": True,
        },
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["termination_requested"] is True and body["agreement_status"] == "terminated"
    assert isinstance(body["return_manifest"], list)
    assert (
        office.get(f"/api/v1/agreements/{agreement['id']}", "approver").get_json()["status"]
        == "terminated"
    )
    actions = [e["action"] for e in office.audit_entries(actor="approver")]
    assert actions[-3:-1] == ["breach:create", "agreement:terminate"]


@pytest.mark.parametrize(
    ("change_body", "status", "field"),
    [
        ({"audit_seqs": [987654]}, 400, "audit_seqs"),
        ({"audit_seqs": []}, 400, "audit_seqs"),
        ({"responsible": "nobody"}, 400, "responsible"),
        ({"responsible": "handler"}, 400, "responsible"),
        ({"responsible_kind": "subcontractor", "responsible": "42"}, 400, "responsible"),
        ({"responsible_kind": "vendor"}, 400, "responsible_kind"),
        ({"terminate": "yes"}, 400, "terminate"),
    ],
)
def test_bad_breach_input_is_refused_and_changes_nothing(office, change_body, status, field):
    agreement = office.agreement()
    seq = office.audit_entries()[-1]["seq"]
    body = {
        "description": "leak",
        "responsible_kind": "staff",
        "responsible": "staff",
        "audit_seqs": [seq],
        **change_body,
    }
    response = office.post(f"/api/v1/agreements/{agreement['id']}/breaches", "approver", json=body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["field"] == field
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/breaches", "approver").get_json()
    assert listed["breaches"] == []


def test_only_the_approver_records_breaches(office):
    agreement = office.agreement()
    for who in ("lead", "handler", "audit", "staff"):
        response = office.post(
            f"/api/v1/agreements/{agreement['id']}/breaches", who, json={"description": "x"}
        )
        assert response.status_code == 403, who


# Warnings 30 days ahead.


def test_warnings_sweep_queues_each_warning_once(office, runtime, keys_home, database_url):
    agreement = office.agreement()
    aid = agreement["id"]
    office.user("staff2", "vendor_staff")
    office.user("staff3", "vendor_staff")
    soon = nda(office, aid, "staff", start=-100, end=20).get_json()
    nda(office, aid, "staff2", start=-100, end=60)
    renewed = nda(office, aid, "staff3", start=-100, end=10).get_json()
    office.post(
        f"/api/v1/ndas/{renewed['id']}/renew",
        "lead",
        json={"expires_on": office.day(400), "document_sha256": SHA},
    )
    as_json, _ = data_items(office, aid)
    sub = subcontractor(
        office, aid, [as_json["id"]], dsa_expires_on=office.day(25), until=office.day(20)
    )

    runner = CliRunner()
    args = ["warnings", "sweep", "--database-url", database_url]
    env = {"GOVERN_HOME": str(keys_home)}
    first = runner.invoke(main, args, env=env)
    assert first.exit_code == 0, first.output
    assert "4 warning(s) queued" in first.output
    again = runner.invoke(main, args, env=env)
    assert "0 warning(s) queued" in again.output

    # The record's own steps (filed, reviewed, decided) are in the outbox too; these are warnings.
    def warnings(who):
        messages = office.get("/api/v1/outbox", who).get_json()["messages"]
        return [m for m in messages if not m["kind"].startswith("subcontractor_")]

    lead = warnings("lead")
    assert sorted(m["kind"] for m in lead) == ["dsa_ends", "nda_ends", "record_ends"]
    nda_msg = next(m for m in lead if m["kind"] == "nda_ends")
    assert "staff" in nda_msg["subject"] and office.day(20) in nda_msg["subject"]
    assert str(soon["id"]) in nda_msg["body"]
    office_msgs = warnings("approver")
    assert [m["kind"] for m in office_msgs] == ["dsa_ends"]
    assert sub["name"] in office_msgs[0]["subject"]
    assert office.get("/api/v1/outbox", "staff").status_code == 403


def test_warnings_sweep_can_look_from_another_day(office, keys_home, database_url):
    agreement = office.agreement()
    nda(office, agreement["id"], start=-10, end=100)
    runner = CliRunner()
    env = {"GOVERN_HOME": str(keys_home)}
    base = ["warnings", "sweep", "--database-url", database_url]
    assert "0 warning(s)" in runner.invoke(main, base, env=env).output
    later = runner.invoke(main, [*base, "--today", office.day(80)], env=env)
    assert "1 warning(s)" in later.output, later.output


# The demo uses the same services.


def test_demo_prints_a_working_client_token_for_two_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVERN_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    result = runner.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    token = result.output.split("client_token")[1].split()[-1]
    from govern import create_app

    app = create_app({"home": tmp_path / "home"})
    client = app.test_client()
    with app.extensions["govern"].sessions() as db:
        ids = db.scalars(sa.select(Item.id).where(Item.category == "data").order_by(Item.id)).all()
    got = client.get(f"/api/v1/shared/items/{ids[0]}", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    assert {k for r in json.loads(got.data) for k in r} == {"service", "status"}
    app.extensions["govern"].engine.dispose()
