"""Issue 5: recall (clause 3.10), termination with its return manifest (clause 5.3),
declassification (clause 5.2), and the 30-day warnings for grants, windows and terms."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from govern.models import NeedToKnow, OutboxMessage, SubcontractorScope
from govern.services import warnings
from tests.conftest import as_operator
from tests.disclosure_flow import (
    approved_request,
    approved_subcontractor,
    issue_grant,
    office_today,
    shared,
    state,
)


@pytest.fixture
def held(office):
    """Two items held by every kind of holder, each set up through the vendor's own API: staff
    with an NDA and need-to-know, a subcontractor with a minimisation record, and a third party
    that read them with a grant. Each holder reads once, so the test sees access end."""
    agreement = office.agreement()
    aid = agreement["id"]
    first = office.item(aid, content=b"records", title="records")
    second = office.item(aid, content=b"design", title="design")
    spare = office.item(aid, content=b"untouched", title="untouched")
    today = office_today(office)
    nda = {
        "username": "staff",
        "signed_on": (today - timedelta(days=10)).isoformat(),
        "expires_on": (today + timedelta(days=300)).isoformat(),
        "document_sha256": "ab" * 32,
    }
    assert office.post(f"/api/v1/agreements/{aid}/ndas", "lead", json=nda).status_code == 201
    need = {"username": "staff", "item_ids": [first["id"], second["id"]], "reason": "operations"}
    response = office.post(f"/api/v1/agreements/{aid}/need-to-know", "lead", json=need)
    assert response.status_code == 201, response.get_json()
    sub = approved_subcontractor(
        office,
        aid,
        {
            "name": "云监控服务",
            "service": "monitoring",
            "dsa_signed_on": (today - timedelta(days=10)).isoformat(),
            "dsa_expires_on": (today + timedelta(days=300)).isoformat(),
            "dsa_sha256": "ab" * 32,
            "purpose": "monitoring",
            "item_ids": [first["id"]],
            "fields": [],
            "whole_items": [first["id"]],
            "until": (today + timedelta(days=200)).isoformat(),
        },
    )
    approved = approved_request(office, aid, [first["id"], second["id"]])
    grant = issue_grant(office, approved["id"])
    assert shared(office, first["id"], grant["token"]).status_code == 200
    assert shared(office, first["id"], sub["client_token"]).status_code == 200
    assert office.get(f"/api/v1/items/{first['id']}/content", "staff").status_code == 200
    return {
        "agreement": agreement,
        "first": first,
        "second": second,
        "spare": spare,
        "request": approved,
        "grant": grant,
        "subcontractor": sub["id"],
        "client_token": sub["client_token"],
    }


def holders_of(recall: dict, item_id: int) -> set[tuple[str, str]]:
    return {
        (c["holder_kind"], c["holder"]) for c in recall["confirmations"] if c["item_id"] == item_id
    }


def test_recall_ends_every_access_at_once_and_asks_each_holder(office, runtime, held):
    aid = held["agreement"]["id"]
    first, second = held["first"], held["second"]
    grant = held["grant"]
    response = office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [first["id"]], "reason": "security review of the records"},
    )
    assert response.status_code == 201, response.get_json()
    recall = response.get_json()
    assert holders_of(recall, first["id"]) == {
        ("staff", "staff"),
        ("subcontractor", f"subcontractor:{held['subcontractor']}"),
        ("third_party", f"grant:{grant['grant_id']}"),
    }
    assert len(recall["open_confirmations"]) == 3
    vendor = office.get("/api/v1/outbox", "lead").get_json()["messages"]
    assert any(m["kind"] == "recall" and "3 to confirm" in m["subject"] for m in vendor)

    # Everything over the item ended in the same unit of work.
    refused = shared(office, first["id"], grant["token"])
    assert refused.status_code == 403
    assert shared(office, first["id"], held["client_token"]).status_code == 403
    assert office.get(f"/api/v1/items/{first['id']}/content", "staff").status_code == 403
    assert office.get(f"/api/v1/items/{second['id']}/content", "staff").status_code == 200
    assert shared(office, second["id"], grant["token"]).status_code == 403
    assert state(office, held["request"]["id"]) == "revoked"
    items = office.get(f"/api/v1/agreements/{aid}/items", "approver").get_json()["items"]
    statuses = {i["id"]: i["status"] for i in items}
    assert statuses[first["id"]] == "recalled" and statuses[second["id"]] == "protected"
    with runtime.sessions() as db:
        ntk = {r.item_id: r.revoked_at for r in db.scalars(sa.select(NeedToKnow))}
        assert ntk[first["id"]] is not None and ntk[second["id"]] is None
        assert all(s.ended_at is not None for s in db.scalars(sa.select(SubcontractorScope)))
    entries = office.audit_entries(action="recall:create")
    entry = next(e for e in entries if e["target"] == f"recall:{recall['id']}")
    assert entry["details"]["grants_revoked"] == [grant["grant_id"]]
    assert entry["details"]["requests_revoked"] == [held["request"]["id"]]
    ended = next(e for e in entries if e["target"] == f"disclosure:{held['request']['id']}")
    # The reason is kept as a message key beside the English rule (issue 12).
    facts = {k: v for k, v in ended["details"].items() if k != "rule_key"}
    assert facts == {"from": "approved", "to": "revoked"}

    # The vendor confirms each return; open ones stay listed until then.
    confirmation = recall["open_confirmations"][0]
    url = f"/api/v1/return-confirmations/{confirmation['id']}/confirm"
    bad = office.post(url, "lead", json={"outcome": "lost"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "outcome"
    assert office.post(url, "approver", json={"outcome": "returned"}).status_code == 403
    done = office.post(url, "lead", json={"outcome": "destroyed", "note": "wiped, log attached"})
    assert done.status_code == 200 and done.get_json()["confirmed"] is True
    assert office.post(url, "lead", json={"outcome": "returned"}).status_code == 409
    listed = office.get(f"/api/v1/agreements/{aid}/recalls", "lead").get_json()["recalls"]
    assert len(listed[0]["open_confirmations"]) == 2
    assert confirmation["id"] not in {c["id"] for c in listed[0]["open_confirmations"]}

    # A recalled item cannot be recalled again, nor requested.
    again = office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [first["id"]], "reason": "again"},
    )
    assert again.status_code == 409


def test_recall_everything(office, held):
    aid = held["agreement"]["id"]
    response = office.post(
        f"/api/v1/agreements/{aid}/recalls", "approver", json={"all": True, "reason": "audit"}
    )
    assert response.status_code == 201
    assert response.get_json()["all"] is True
    items = office.get(f"/api/v1/agreements/{aid}/items", "approver").get_json()["items"]
    assert {i["status"] for i in items} == {"recalled"}
    assert shared(office, held["first"]["id"], held["grant"]["token"]).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x"}, "item_ids"),
        ({"item_ids": [1], "all": True, "reason": "x"}, "item_ids"),
        ({"item_ids": [99999], "reason": "x"}, "item_ids"),
        ({"item_ids": [1]}, "reason"),
        ({"all": "yes", "reason": "x"}, "all"),
    ],
)
def test_bad_recalls_are_400_and_change_nothing(office, held, body, field):
    aid = held["agreement"]["id"]
    if body.get("item_ids") == [1]:
        body = {**body, "item_ids": [held["first"]["id"]]}
    response = office.post(f"/api/v1/agreements/{aid}/recalls", "approver", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["field"] == field
    assert shared(office, held["first"]["id"], held["grant"]["token"]).status_code == 200
    assert office.get(f"/api/v1/agreements/{aid}/recalls", "approver").get_json() == {"recalls": []}


def test_the_manifest_after_a_recall_lists_each_holder_once(office, held):
    aid = held["agreement"]["id"]
    first = held["first"]
    recall = office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [first["id"]], "reason": "review"},
    ).get_json()
    asked = {c["holder"]: c["id"] for c in recall["confirmations"]}
    done = office.post(
        f"/api/v1/return-confirmations/{asked['staff']}/confirm",
        "lead",
        json={"outcome": "returned"},
    )
    assert done.status_code == 200
    manifest = office.post(f"/api/v1/agreements/{aid}/terminate", "approver").get_json()[
        "return_manifest"
    ]
    for_first = {m["holder"]: m for m in manifest if m["item"] == first["id"]}
    # Everyone the recall asked is in the manifest with that same confirmation, none twice.
    assert {h: m["confirmation_id"] for h, m in for_first.items()} == asked
    assert for_first["staff"]["confirmed"] is True
    assert sum(1 for m in manifest if m["item"] == first["id"]) == 3
    # The third party never read the second item, so it is not asked to return it.
    assert {m["holder"] for m in manifest if m["item"] == held["second"]["id"]} == {"staff"}


def test_only_the_approver_recalls_or_terminates(office, held):
    aid = held["agreement"]["id"]
    for who in ("handler", "lead", "staff", "audit"):
        recall = office.post(f"/api/v1/agreements/{aid}/recalls", who, json={"all": True})
        assert recall.status_code == 403, who
        assert office.post(f"/api/v1/agreements/{aid}/terminate", who).status_code == 403, who
    assert shared(office, held["first"]["id"], held["grant"]["token"]).status_code == 200


def test_termination_ends_all_access_and_lists_what_must_come_back(office, runtime, held):
    aid = held["agreement"]["id"]
    first, second, spare = held["first"], held["second"], held["spare"]
    grant = held["grant"]
    assert shared(office, second["id"], grant["token"]).status_code == 200
    response = office.post(f"/api/v1/agreements/{aid}/terminate", "approver")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["agreement"]["status"] == "terminated"
    assert body["agreement"]["terminated_on"] == office_today(office).isoformat()
    manifest = {(m["item"], m["holder_kind"], m["holder"]) for m in body["return_manifest"]}
    party = f"grant:{grant['grant_id']}"
    sub = f"subcontractor:{held['subcontractor']}"
    assert manifest == {
        (first["id"], "staff", "staff"),
        (first["id"], "subcontractor", sub),
        (first["id"], "third_party", party),
        (second["id"], "staff", "staff"),
        (second["id"], "third_party", party),
    }
    assert all(m["confirmation_id"] and m["confirmed"] is False for m in body["return_manifest"])

    # All access ends; the items stay protected (clause 5.2, 5.3).
    assert shared(office, first["id"], grant["token"]).status_code == 403
    assert shared(office, first["id"], held["client_token"]).status_code == 403
    assert office.get(f"/api/v1/items/{second['id']}/content", "staff").status_code == 403
    assert state(office, held["request"]["id"]) == "revoked"
    items = office.get(f"/api/v1/agreements/{aid}/items", "approver").get_json()["items"]
    assert {i["status"] for i in items} == {"protected"}
    clock = office.get(f"/api/v1/agreements/{aid}/clock", "approver").get_json()
    assert clock["protected_items"] == 3 and clock["status"] == "terminated"
    with runtime.sessions() as db:
        assert all(r.revoked_at for r in db.scalars(sa.select(NeedToKnow)))
        assert all(s.ended_at for s in db.scalars(sa.select(SubcontractorScope)))

    # Nothing new starts in a terminated agreement; it cannot end twice.
    assert office.post(f"/api/v1/agreements/{aid}/terminate", "approver").status_code == 409
    filed = office.post(
        f"/api/v1/agreements/{aid}/disclosures",
        "lead",
        json={
            "third_party": "x",
            "purpose": "y",
            "form": "view",
            "item_ids": [spare["id"]],
            "starts_on": office_today(office).isoformat(),
            "ends_on": office_today(office).isoformat(),
        },
    )
    assert filed.status_code == 409 and "terminated" in filed.get_json()["error"]["message"]
    listed = office.get(f"/api/v1/agreements/{aid}/recalls", "lead").get_json()["recalls"]
    assert listed[0]["kind"] == "termination" and len(listed[0]["open_confirmations"]) == 5
    confirmation = body["return_manifest"][0]["confirmation_id"]
    confirmed = office.post(
        f"/api/v1/return-confirmations/{confirmation}/confirm", "lead", json={"outcome": "returned"}
    )
    assert confirmed.status_code == 200

    # Only declassification ends protection, after the term as before it.
    url = f"/api/v1/items/{spare['id']}/declassify"
    assert office.post(url, "handler", json={"status": "public", "reason": "x"}).status_code == 403
    bad = office.post(url, "approver", json={"status": "forgotten", "reason": "x"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "status"
    missing = office.post(url, "approver", json={"status": "public"})
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "reason"
    done = office.post(url, "approver", json={"status": "declassified", "reason": "obsolete"})
    assert done.status_code == 200 and done.get_json()["status"] == "declassified"
    assert office.post(url, "approver", json={"status": "public", "reason": "x"}).status_code == 409
    clock = office.get(f"/api/v1/agreements/{aid}/clock", "approver").get_json()
    assert clock["protected_items"] == 2
    entry = office.audit_entries(action="item:declassify", decision="allow")[-1]
    assert entry["details"]["reason"] == "obsolete" and entry["details"]["to"] == "declassified"


def test_warnings_before_a_grant_a_window_or_the_term_ends(office, runtime):
    # An agreement whose five-year term ends in about ten days.
    soon = office_today(office) + timedelta(days=10)
    signed = date(soon.year - 5, soon.month, min(soon.day, 28))
    agreement = office.agreement(signed_on=signed.isoformat())
    item = office.item(agreement["id"])
    approved = approved_request(
        office,
        agreement["id"],
        [item["id"]],
        starts_on=office_today(office).isoformat(),
        ends_on=(office_today(office) + timedelta(days=20)).isoformat(),
    )
    grant = issue_grant(office, approved["id"])
    far = approved_request(
        office,
        agreement["id"],
        [item["id"]],
        starts_on=office_today(office).isoformat(),
        ends_on=(office_today(office) + timedelta(days=90)).isoformat(),
    )
    with as_operator(runtime) as ctx:
        queued = warnings.disclosure_warnings(ctx, ctx.today())
    with as_operator(runtime) as ctx:
        assert warnings.disclosure_warnings(ctx, ctx.today()) == 0  # each warning goes out once
    with runtime.sessions() as db:
        keys = set(db.scalars(sa.select(OutboxMessage.dedup_key)))
    assert f"grant-ends:{grant['grant_id']}" in keys
    assert f"window-ends:{approved['id']}" in keys
    assert f"window-ends:{far['id']}" not in keys
    assert f"term-ends:{agreement['id']}:office_approver" in keys
    assert queued == 5
    lead_view = office.get("/api/v1/outbox", "lead").get_json()["messages"]
    assert any(m["kind"] == "term_ends" for m in lead_view)


def test_a_recall_nobody_held_tells_the_lead_there_is_nothing_to_confirm(office, app, held):
    """The lead's notice of a recall of an item nobody had read said "0 to confirm": a task
    with nothing to do. It says there is nothing to confirm, in both languages."""
    from tests.pages import Reader, text

    aid = held["agreement"]["id"]
    body = {"item_ids": [held["spare"]["id"]], "reason": "旧版收回"}
    recall = office.post(f"/api/v1/agreements/{aid}/recalls", "approver", json=body)
    assert recall.status_code == 201 and recall.get_json()["open_confirmations"] == []
    rid = recall.get_json()["id"]
    vendor = office.get("/api/v1/outbox", "lead").get_json()["messages"]
    subject = next(m["subject"] for m in vendor if m["kind"] == "recall")
    assert subject == f"Recall order {rid}: nobody held these items, nothing to confirm"
    home = text(Reader(app, "zh-CN").login("lead").get("/"))
    assert f"收回令 {rid}：无人持有这些信息，无需确认" in home
    assert "待确认 0 项" not in home
