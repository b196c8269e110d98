"""Issue 6: the vendor's pages (NDAs, need-to-know, subcontractors) and the office's breach page,
on the same services and decisions as the API."""

from __future__ import annotations

import hashlib
import io
import re

from tests.conftest import PASSWORD
from tests.pages import Reader, field_error, text


def _setup(office):
    agreement = office.agreement(signed_on=office.day(-30))
    item = office.item(
        agreement["id"],
        content=b"name,phone,id\nwang,123,9\n",
        media_type="text/csv",
        fields=["name", "phone", "id"],
    )
    return agreement["id"], item["id"]


def test_lead_registers_an_nda_and_need_to_know_and_staff_can_then_read(office, app):
    aid, item_id = _setup(office)
    lead = Reader(app).login("lead")
    path = f"/agreements/{aid}/staff"
    backwards = lead.submit(
        path,
        {
            "which": "nda",
            "nda-username": "staff",
            "nda-signed_on": office.day(-1),
            "nda-expires_on": office.day(-2),
            "nda-document_sha256": "a" * 64,
        },
        csrf_field="nda-csrf_token",
    )
    assert backwards.status_code == 400
    assert field_error(backwards, "nda-expires_on")
    pdf = b"%PDF-1.4 signed NDA"
    done = lead.submit(
        path,
        {
            "which": "nda",
            "nda-username": "staff",
            "nda-signed_on": office.day(-1),
            "nda-expires_on": office.day(365),
            "nda-document": (io.BytesIO(pdf), "nda.pdf", "application/pdf"),
        },
        csrf_field="nda-csrf_token",
        content_type="multipart/form-data",
    )
    assert done.status_code == 303
    listed = office.get(f"/api/v1/agreements/{aid}/ndas", "lead").get_json()["ndas"]
    assert listed[0]["document_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert listed[0]["document_stored"] is True

    staff = Reader(app).login("staff")
    assert staff.get(f"/items/{item_id}/content").status_code == 403  # no need-to-know yet
    no_items = lead.submit(
        path,
        {"which": "ntk", "ntk-username": "staff", "ntk-reason": "maintenance"},
        csrf_field="ntk-csrf_token",
    )
    assert no_items.status_code == 400 and field_error(no_items, "ntk-item_ids")
    granted = lead.submit(
        path,
        {
            "which": "ntk",
            "ntk-username": "staff",
            "ntk-item_ids": str(item_id),
            "ntk-reason": "maintenance of the platform",
        },
        csrf_field="ntk-csrf_token",
    )
    assert granted.status_code == 303
    assert staff.get(f"/items/{item_id}/content").data.startswith(b"name,phone")

    ntk_id = office.get(f"/api/v1/agreements/{aid}/need-to-know", "lead").get_json()[
        "need_to_know"
    ][0]["id"]
    revoked = lead.submit(
        f"/agreements/{aid}/need-to-know/{ntk_id}/revoke",
        {"reason": "left the project"},
        form_on=path,
    )
    assert revoked.status_code == 303
    assert staff.get(f"/items/{item_id}/content").status_code == 403
    page = text(lead.get(path))
    assert "left the project" in page and "Renew" in page


def test_nda_renewal_page(office, app):
    aid, _item = _setup(office)
    office.post(
        f"/api/v1/agreements/{aid}/ndas",
        "lead",
        json={
            "username": "staff",
            "signed_on": office.day(-10),
            "expires_on": office.day(10),
            "document_sha256": "b" * 64,
        },
    )
    nda_id = office.get(f"/api/v1/agreements/{aid}/ndas", "lead").get_json()["ndas"][0]["id"]
    lead = Reader(app).login("lead")
    path = f"/agreements/{aid}/ndas/{nda_id}/renew"
    assert "ends in 10 days" in text(lead.get(f"/agreements/{aid}/staff"))
    bad = lead.submit(path, {"expires_on": office.day(400), "document_sha256": "xyz"})
    assert bad.status_code == 400 and "64 hexadecimal" in field_error(bad, "document_sha256")
    good = lead.submit(path, {"expires_on": office.day(400), "document_sha256": "c" * 64})
    assert good.status_code == 303
    listed = office.get(f"/api/v1/agreements/{aid}/ndas", "lead").get_json()["ndas"]
    assert [n["renews_id"] for n in listed] == [None, nda_id]


def test_subcontractor_token_shown_once_works_rotates_and_is_revoked(office, app):
    aid, item_id = _setup(office)
    lead = Reader(app).login("lead")
    path = f"/agreements/{aid}/subcontractors"
    record = {
        "name": "短信平台",
        "service": "SMS notices",
        "dsa_signed_on": office.day(-5),
        "dsa_expires_on": office.day(200),
        "dsa_sha256": "d" * 64,
        "purpose": "send notices",
        "fields": "name, phone",
        "until": office.day(100),
    }
    missing = lead.submit(path, record)
    assert missing.status_code == 400 and field_error(missing, "item_ids")
    filed = lead.submit(path, {**record, "item_ids": str(item_id)})
    assert filed.status_code == 303, re.findall(r"class=\"error[^>]*>([^<]*)", text(filed))
    sub_id = office.get(f"/api/v1/agreements/{aid}/subcontractors", "lead").get_json()[
        "subcontractors"
    ][0]["id"]
    waiting = text(lead.get(path))
    assert "state-submitted" in waiting and f"{path}/{sub_id}/token" not in waiting
    # The office's two steps, on the page (in Chinese for the handler), by two people.
    handler = Reader(app, "zh-CN").login("handler")
    assert f'id="subcontractor-{sub_id}"' in text(handler.get("/queue"))
    assert "初审通过并转交" in text(handler.get(path))
    assert lead.submit(f"{path}/{sub_id}/review", form_on=path).status_code == 403
    assert handler.submit(f"{path}/{sub_id}/review", form_on=path).status_code == 303
    approver = Reader(app).login("approver")
    assert (
        approver.submit(
            f"{path}/{sub_id}/approve", {"password": PASSWORD}, form_on=path
        ).status_code
        == 303
    )
    assert "state-approved" in text(lead.get(path))
    posted = lead.submit(f"{path}/{sub_id}/token", form_on=path)
    assert posted.status_code == 303
    made = lead.get(posted.headers["Location"])
    assert made.status_code == 200
    token = re.search(r'id="once"[^>]*>([^<]+)</textarea>', text(made)).group(1)
    assert token not in str(office.audit_entries())
    assert made.headers["Cache-Control"] == "no-store"
    shared = office.get(
        f"/api/v1/shared/items/{item_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert shared.status_code == 200 and b"id" not in shared.data.split(b"\n")[0]
    sub_id = office.get(f"/api/v1/agreements/{aid}/subcontractors", "lead").get_json()[
        "subcontractors"
    ][0]["id"]
    rotated = lead.get(lead.submit(f"{path}/{sub_id}/rotate", form_on=path).headers["Location"])
    new = re.search(r'id="once"[^>]*>([^<]+)</textarea>', text(rotated)).group(1)
    assert rotated.headers["Cache-Control"] == "no-store"
    assert new != token
    old = office.get(
        f"/api/v1/shared/items/{item_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert old.status_code in (401, 403)
    report = text(lead.get(f"{path}/{sub_id}/report"))
    assert "短信平台" in report and "name, phone" in report
    revoked = lead.submit(f"{path}/{sub_id}/revoke", {"reason": "contract ended"}, form_on=path)
    assert revoked.status_code == 303
    assert "contract ended" in text(lead.get(path))


def test_breach_page_for_the_approver_only(office, app):
    aid, item_id = _setup(office)
    office.get(f"/api/v1/items/{item_id}/content", "staff")
    seq = office.audit_entries(action="item:read", decision="deny")[-1]["seq"]
    approver = Reader(app).login("approver")
    path = f"/agreements/{aid}/breaches"
    assert f'value="{seq}"' in text(approver.get(f"{path}?seq={seq}"))
    body = {
        "description": "tried to read without an NDA",
        "responsible_kind": "staff",
        "responsible": "staff",
        "audit_seqs": "999999",
    }
    bad = approver.submit(path, {**body, "confirmed": "y"})
    assert bad.status_code in (400, 404) and field_error(bad, "audit_seqs")
    asked = approver.submit(path, {**body, "audit_seqs": str(seq)})
    # First the confirmation page, saying what it costs; nothing is recorded yet.
    assert asked.status_code == 200 and "3,985,000.00 CNY" in text(asked)
    assert not office.audit_entries(action="breach:create", decision="allow")
    good = approver.submit(path, {**body, "audit_seqs": str(seq), "confirmed": "y"})
    assert good.status_code == 303
    listed = text(approver.get(path))
    assert "3,985,000.00 CNY" in listed and "上海今点软件有限公司" in listed
    assert Reader(app).login("lead").get(path).status_code == 403


def test_a_breach_may_terminate_at_once_with_the_manifest(office, app):
    aid, item_id = _setup(office)
    office.get(f"/api/v1/items/{item_id}/content", "staff")
    seq = office.audit_entries(action="item:read", decision="deny")[-1]["seq"]
    approver = Reader(app).login("approver")
    done = approver.submit(
        f"/agreements/{aid}/breaches",
        {
            "description": "泄露",
            "responsible_kind": "staff",
            "responsible": "staff",
            "audit_seqs": str(seq),
            "terminate": "y",
            "confirmed": "y",
        },
    )
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/{aid}/recalls")
    assert office.get(f"/api/v1/agreements/{aid}", "approver").get_json()["status"] == "terminated"
