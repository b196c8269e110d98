"""Issue 10, part 5: a subcontractor is a third party (clause 3.5), so its minimisation record
(clause 3.7) goes through the office like a disclosure request: filed ``submitted``, reviewed by
a handler, approved under the office's seal or denied by an approver, by two people none of whom
filed it; its client token exists only once it is approved; a whole item is named as such."""

from __future__ import annotations

import json

from govern import policy
from govern.approvals import verify_approval
from tests.conftest import as_operator
from tests.disclosure_flow import move_subcontractor, window

SHA = "cd" * 32
FIELDS = ["applicant", "id_number", "service", "status"]


def _items(office):
    agreement = office.agreement()
    records = office.item(
        agreement["id"],
        content=json.dumps(
            [{"applicant": "张三", "id_number": "3204", "service": "营业执照"}]
        ).encode(),
        title="cases",
        category="data",
        fields=["applicant", "id_number", "service"],
        media_type="application/json",
    )
    runbook = office.item(agreement["id"], content=b"runbook", title="runbook")
    return agreement["id"], records, runbook


def _body(api, item_ids, **extra):
    dsa = window(api, -10, 200)
    return {
        "name": "工单统计云服务",
        "service": "statistics",
        "dsa_signed_on": dsa["starts_on"],
        "dsa_expires_on": dsa["ends_on"],
        "dsa_sha256": SHA,
        "purpose": "monthly SLA report",
        "item_ids": item_ids,
        "fields": ["service"],
        "until": window(api, 0, 100)["ends_on"],
        **extra,
    }


def _file(office, aid, body, as_="lead"):
    response = office.post(f"/api/v1/agreements/{aid}/subcontractors", as_, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_filed_reviewed_approved_sealed_then_the_token(office, runtime):
    aid, records, runbook = _items(office)
    filed = _file(
        office, aid, _body(office, [records["id"], runbook["id"]], whole_items=[runbook["id"]])
    )
    assert filed["state"] == "submitted" and "client_token" not in filed
    assert filed["whole_items"] == [runbook["id"]] and filed["filed_by"] == "lead"
    sid = filed["id"]
    # No token before the office has approved, and no step out of order.
    early = office.post(f"/api/v1/subcontractors/{sid}/token", "lead")
    assert early.status_code == 409 and "submitted" in early.get_json()["error"]["message"]
    move_subcontractor(office, sid, "approve", "approver", expect=409)
    move_subcontractor(office, sid, "review", "lead", expect=403)
    move_subcontractor(office, sid, "approve", "handler", expect=403)
    reviewed = move_subcontractor(office, sid, "review", "handler")
    assert reviewed["state"] == "reviewed" and reviewed["reviewed_by"] == "handler"
    approved = move_subcontractor(office, sid, "approve", "approver")
    assert approved["state"] == "approved" and approved["sealed"] is True
    # The seal: the office's key over the exact record, checkable offline with the public keys.
    approval = office.get(f"/api/v1/subcontractors/{sid}/approval", "lead").get_json()
    document = verify_approval(approval, office.get("/api/v1/keys").get_json())
    assert document["type"] == "govern.subcontractor-approval"
    assert document["items"] == [
        {
            "id": records["id"],
            "sha256": records["sha256"],
            "fields": ["service"],
            "whole_item": False,
        },
        {"id": runbook["id"], "sha256": runbook["sha256"], "fields": [], "whole_item": True},
    ]
    assert [document[k]["by"] for k in ("filed", "reviewed", "approved")] == [
        "lead",
        "handler",
        "approver",
    ]
    issued = office.post(f"/api/v1/subcontractors/{sid}/token", "lead")
    assert issued.status_code == 201 and set(issued.get_json()) >= {"client_token", "expires_at"}
    token = issued.get_json()["client_token"]
    got = office.get(
        f"/api/v1/shared/items/{records['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert got.status_code == 200 and json.loads(got.data) == [{"service": "营业执照"}]
    whole = office.get(
        f"/api/v1/shared/items/{runbook['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert whole.data == b"runbook"
    steps = [
        (e["action"], e["actor"], e["decision"])
        for e in office.audit_entries()
        if e["target"] == f"subcontractor:{sid}" and e["decision"] == "allow"
    ]
    assert ("subcontractor:approve", "approver", "allow") in steps
    assert ("subcontractor:token", "lead", "allow") in steps
    assert token not in str(office.audit_entries())
    # The office was told at each step, and the lead of the outcome.
    kinds = {m["kind"] for m in office.get("/api/v1/outbox", "lead").get_json()["messages"]}
    assert "subcontractor_decided" in kinds


def test_the_filer_never_reviews_and_the_reviewer_never_approves(office, runtime):
    aid, records, _ = _items(office)
    office.user("dual", "office_handler")
    with as_operator(runtime) as ctx:
        # Accounts holding a vendor and an office role may no longer be made; the service
        # refuses them all the same.
        policy.assign_role(ctx.db, "dual", "office_approver")
        policy.assign_role(ctx.db, "lead", "office_handler")
    mine = _file(office, aid, _body(office, [records["id"]]))
    own = move_subcontractor(office, mine["id"], "review", "lead", expect=403)
    assert "filer" in own["error"]["message"]
    move_subcontractor(office, mine["id"], "review", "dual")
    twice = move_subcontractor(office, mine["id"], "approve", "dual", expect=403)
    assert "two people" in twice["error"]["message"]
    denials = office.audit_entries(action="subcontractor:approve", decision="deny")
    assert denials and "two people" in denials[-1]["rule"]
    assert move_subcontractor(office, mine["id"], "approve", "approver")["state"] == "approved"


def test_a_denied_record_never_gets_a_token(office):
    aid, records, _ = _items(office)
    sid = _file(office, aid, _body(office, [records["id"]]))["id"]
    move_subcontractor(office, sid, "deny", "approver", expect=400, json={})
    denied = move_subcontractor(
        office, sid, "deny", "approver", json={"reason": "the purpose needs no personal data"}
    )
    assert denied["state"] == "denied" and denied["scopes"][0]["ended"] is True
    assert denied["deny_reason"] == "the purpose needs no personal data"
    assert office.post(f"/api/v1/subcontractors/{sid}/token", "lead").status_code == 409
    move_subcontractor(office, sid, "review", "handler", expect=409)
    assert office.get(f"/api/v1/subcontractors/{sid}/approval", "lead").status_code == 404


def test_a_whole_item_is_named_as_such(office):
    aid, records, runbook = _items(office)
    cases = [
        # An item with no field of the record, not named whole: refused, naming the field.
        (_body(office, [records["id"], runbook["id"]]), "fields"),
        (_body(office, [records["id"]], fields=[]), "fields"),
        (_body(office, [records["id"]], whole_items=[runbook["id"]]), "whole_items"),
        (_body(office, [records["id"]], whole_items=[records["id"]], fields=["service"]), "fields"),
    ]
    for body, field in cases:
        response = office.post(f"/api/v1/agreements/{aid}/subcontractors", "lead", json=body)
        assert response.status_code == 400, (body, response.get_json())
        assert response.get_json()["error"]["field"] == field
    listed = office.get(f"/api/v1/agreements/{aid}/subcontractors", "lead").get_json()
    assert listed["subcontractors"] == []


def test_the_office_sees_and_the_vendor_cannot_decide(office):
    aid, records, _ = _items(office)
    sid = _file(office, aid, _body(office, [records["id"]]))["id"]
    for who in ("staff", "audit"):
        move_subcontractor(office, sid, "review", who, expect=403)
    listed = office.get(f"/api/v1/agreements/{aid}/subcontractors", "handler").get_json()
    assert [s["state"] for s in listed["subcontractors"]] == ["submitted"]
    assert office.get(f"/api/v1/subcontractors/{sid}", "approver").get_json()["id"] == sid


def test_the_approval_letter_and_its_public_seal_check(office, app, client):
    import re

    from tests.pages import Reader, text

    aid, records, runbook = _items(office)
    sid = _file(
        office, aid, _body(office, [records["id"], runbook["id"]], whole_items=[runbook["id"]])
    )["id"]
    move_subcontractor(office, sid, "review", "handler")
    move_subcontractor(office, sid, "approve", "approver")
    approver = Reader(app, "zh-CN").login("approver")
    page = text(approver.get(f"/agreements/{aid}/subcontractors/{sid}/letter"))
    assert "分包方数据最小化记录审批单" in page and "已批准 approved" in page
    assert "整项 whole item" in page and "service" in page and "<svg" in page
    pdf = approver.get(f"/agreements/{aid}/subcontractors/{sid}/letter.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    url = re.search(r'href="http://[^"]*(/verify/subcontractors/\d+\?digest=[0-9a-f]{64})"', page)
    genuine = text(client.get(url.group(1)))
    assert (
        'id="seal-result"' in genuine and "ok banner" in genuine.split('id="seal-result"')[0][-40:]
    )
    forged = client.get(f"/verify/subcontractors/{sid}?digest={'0' * 64}")
    assert "error banner" in text(forged).split('id="seal-result"')[0][-40:]
    assert office.audit_entries(action="seal:check", decision="deny")[-1]["target"] == (
        f"subcontractor:{sid}"
    )
    # Like the record itself, the letter is not for another vendor.
    office.user("lead-b", "vendor_lead", org="Vendor B Ltd")
    other = Reader(app).login("lead-b")
    assert other.get(f"/agreements/{aid}/subcontractors/{sid}/letter").status_code == 404


def _letter_lines(app, aid: int, sid: int) -> dict[str, tuple[str, str]]:
    """Each role's line of the record's letter: who signed it and what they decided."""
    import re

    from tests.pages import Reader, text

    page = text(Reader(app).login("approver").get(f"/agreements/{aid}/subcontractors/{sid}/letter"))
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>.*?</td><td>(.*?)</td></tr>", page)
    return {re.sub(r"<[^>]+>", "", role).split()[0]: (who, words) for role, who, words in rows}


def test_a_denial_at_the_first_review_is_printed_on_the_handlers_line(office, app):
    """The handler denied the record at the first-level review; its letter printed that denial
    (and the handler's name) on the approver's line and left the handler's line empty."""
    aid, records, _ = _items(office)
    sid = _file(office, aid, _body(office, [records["id"]]))["id"]
    move_subcontractor(office, sid, "deny", "handler", json={"reason": "用途无须个人信息"})
    lines = _letter_lines(app, aid, sid)
    assert lines["经办人"][0] == "handler" and "用途无须个人信息" in lines["经办人"][1], lines
    assert lines["分管负责人"] == ("—", "—"), lines
    # Denied by the approver after a review: the approver's line, as before.
    other = _file(office, aid, _body(office, [records["id"]]))["id"]
    move_subcontractor(office, other, "review", "handler")
    move_subcontractor(office, other, "deny", "approver", json={"reason": "范围过大"})
    lines = _letter_lines(app, aid, other)
    assert lines["经办人"] == ("handler", "初审通过 reviewed"), lines
    assert lines["分管负责人"][0] == "approver" and "范围过大" in lines["分管负责人"][1], lines


def test_the_database_refuses_an_unknown_state_or_an_unsealed_approval(office, runtime):
    import pytest
    import sqlalchemy as sa

    from govern.models import Subcontractor

    aid, records, _ = _items(office)
    sid = _file(office, aid, _body(office, [records["id"]]))["id"]
    for values in ({"state": "waved_through"}, {"state": "approved"}):
        with runtime.sessions() as db:
            with pytest.raises(sa.exc.IntegrityError):
                db.execute(sa.update(Subcontractor).where(Subcontractor.id == sid).values(**values))
                db.commit()
            db.rollback()
    assert office.get(f"/api/v1/subcontractors/{sid}", "lead").get_json()["state"] == "submitted"
