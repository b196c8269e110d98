"""Issue 6: disclosure requests, grants, the approval letter, the public seal check, recalls and
termination on the pages, through the same services and decisions as the API."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from tests.conftest import PASSWORD
from tests.pages import Reader, field_error, text


def _agreement(office) -> tuple[int, int]:
    agreement = office.agreement(signed_on=office.day(-60))
    item = office.item(agreement["id"], content=b"the design", title="系统设计说明书")
    return agreement["id"], item["id"]


def _filed(app, aid: int, item_id: int) -> tuple[Reader, int]:
    today = app.extensions["govern"].clock.today()
    lead = Reader(app).login("lead")
    made = lead.submit(
        f"/agreements/{aid}/requests",
        {
            "third_party": "测评中心",
            "purpose": "等级保护测评",
            "form": "view",
            "item_ids": str(item_id),
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=10)).isoformat(),
        },
    )
    assert made.status_code == 303, re.findall(r'class="error[^>]*>([^<]*)', text(made))
    request_id = int(made.headers["Location"].rsplit("/", 1)[1])
    return lead, request_id


def _approved(office, app) -> tuple[int, int, int]:
    aid, item_id = _agreement(office)
    lead, rid = _filed(app, aid, item_id)
    page = f"/requests/{rid}"
    assert lead.submit(f"{page}/submit", form_on=page).status_code == 303
    handler = Reader(app).login("handler")
    assert handler.submit(f"{page}/review", form_on=page).status_code == 303
    approver = Reader(app).login("approver")
    assert (
        approver.submit(f"{page}/approve", {"password": PASSWORD}, form_on=page).status_code == 303
    )
    return aid, item_id, rid


def test_filing_shows_errors_at_the_field_and_edits_a_draft(office, app):
    aid, item_id = _agreement(office)
    lead = Reader(app).login("lead")
    path = f"/agreements/{aid}/requests"
    bad = lead.submit(
        path,
        {
            "third_party": "",
            "purpose": "p",
            "form": "view",
            "starts_on": office.day(0),
            "ends_on": office.day(5),
        },
    )
    assert bad.status_code == 400 and field_error(bad, "third_party")
    no_items = lead.submit(
        path,
        {
            "third_party": "x",
            "purpose": "p",
            "form": "view",
            "starts_on": office.day(0),
            "ends_on": office.day(5),
        },
    )
    assert no_items.status_code == 400 and field_error(no_items, "item_ids")
    _lead, rid = _filed(app, aid, item_id)
    edit = f"/requests/{rid}/edit"
    assert 'value="测评中心"' in text(lead.get(edit))
    saved = lead.submit(
        edit,
        {
            "third_party": "另一家测评中心",
            "purpose": "等级保护测评",
            "form": "copy",
            "item_ids": str(item_id),
            "starts_on": office.day(0),
            "ends_on": office.day(10),
        },
    )
    assert saved.status_code == 303
    shown = office.get(f"/api/v1/disclosures/{rid}", "lead").get_json()
    assert shown["third_party"] == "另一家测评中心" and shown["form"] == "copy"


def test_moves_are_the_services_decisions(office, app):
    aid, item_id = _agreement(office)
    lead, rid = _filed(app, aid, item_id)
    page = f"/requests/{rid}"
    approver = Reader(app).login("approver")
    # Out of order: the approver cannot approve a draft (409 page), the lead cannot review (403).
    assert (
        approver.submit(f"{page}/approve", {"password": PASSWORD}, form_on=page).status_code == 409
    )
    assert lead.submit(f"{page}/review", form_on=page).status_code == 403
    assert office.audit_entries(action="disclosure:review", decision="deny")[-1]["actor"] == "lead"
    # A denial needs its reason, and it is shown to the lead.
    lead.submit(f"{page}/submit", form_on=page)
    handler = Reader(app).login("handler")
    assert handler.submit(f"{page}/deny", {"reason": ""}, form_on=page).status_code == 400
    assert handler.submit(f"{page}/deny", {"reason": "范围过大"}, form_on=page).status_code == 303
    assert "范围过大" in text(lead.get(page))
    assert office.get(f"/api/v1/disclosures/{rid}", "lead").get_json()["state"] == "denied"
    queue = text(handler.get("/queue"))
    assert f'id="request-{rid}"' not in queue.split("Decided recently")[0]


def test_grant_token_is_shown_once_and_works(office, app):
    _aid, item_id, rid = _approved(office, app)
    lead = Reader(app).login("lead")
    page = f"/requests/{rid}"
    posted = lead.submit(f"{page}/grants", form_on=page)
    assert posted.status_code == 303
    issued = lead.get(posted.headers["Location"])
    assert issued.status_code == 200
    # Shown once: no cache (browser, proxy, back button) may keep the page with the token.
    assert issued.headers["Cache-Control"] == "no-store"
    token = re.search(r'id="once"[^>]*>([^<]+)</textarea>', text(issued)).group(1)
    assert token not in str(office.audit_entries())
    assert token not in text(lead.get(page))
    read = office.get(
        f"/api/v1/shared/items/{item_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert read.status_code == 200 and read.data == b"the design"
    grant_id = office.get(f"/api/v1/disclosures/{rid}/grants", "lead").get_json()["grants"][0][
        "grant_id"
    ]
    assert lead.submit(f"/grants/{grant_id}/revoke", form_on=page).status_code == 303
    again = office.get(
        f"/api/v1/shared/items/{item_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert again.status_code in (401, 403)


def test_the_letter_page_pdf_and_the_public_seal_check(office, app, client):
    _aid, _item, rid = _approved(office, app)
    approver = Reader(app, "en").login("approver")
    letter = text(approver.get(f"/requests/{rid}/letter"))
    assert "保密信息对外提供审批单" in letter and "已批准 approved" in letter
    assert "<svg" in letter and 'class="qr"' in letter
    # The reviewers' times are on the office's clock and say so: a printed letter has no tooltip.
    assert re.search(rf"{office.day(0)} \d\d:\d\d \+08:00", letter)
    approval = office.get(f"/api/v1/disclosures/{rid}/approval", "approver").get_json()
    assert approval["key_id"] in letter
    pdf = approver.get(f"/requests/{rid}/letter.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF") and len(pdf.data) > 2000
    verify = re.search(
        r'id="verify-link"[^>]*>|href="([^"]*/verify/[^"]*)" id="verify-link"', letter
    )
    url = re.search(r'href="(http://[^"]*/verify/\d+\?digest=[0-9a-f]{64})"', letter).group(1)
    assert verify
    path = url.split("localhost", 1)[1]
    # Anyone may check, signed in or not; only the seal's facts are shown, never the content.
    checked = client.get(path)
    assert checked.status_code == 200
    assert "Genuine" in text(checked) and approval["key_id"] in text(checked)
    assert "测评中心" not in text(checked)
    forged = client.get(re.sub(r"digest=[0-9a-f]{64}", "digest=" + "0" * 64, path))
    assert "No sealed approval" in text(forged)
    assert office.audit_entries(action="seal:check", decision="deny")[-1]["actor"] == "anonymous"
    # A whole approval pasted in verifies; an altered one does not.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text(checked)).group(1)
    good = client.post(path, data={"csrf_token": token, "approval": json.dumps(approval)})
    assert "Valid: signed" in text(good)
    altered = {**approval, "document": approval["document"].replace("测评中心", "别的公司")}
    bad = client.post(path, data={"csrf_token": token, "approval": json.dumps(altered)})
    assert "Not valid" in text(bad)
    # Both pasted checks are in the trail: which request, whether it held (never the text).
    checks = office.audit_entries(action="seal:check")
    (held,) = [e for e in checks if e["rule"] == "pasted approval verified"]
    assert held["target"] == f"disclosure:{rid}" and held["decision"] == "allow"
    (failed,) = [e for e in checks if e["rule"] == "pasted approval does not verify"]
    assert failed["decision"] == "deny" and "differs" in failed["details"]["problem"]
    assert approval["jws"] not in str(office.audit_entries())


def test_the_letter_is_not_for_everyone(office, app):
    _aid, _item, rid = _approved(office, app)
    office.user("sysadm", "system_admin")
    admin = Reader(app).login("sysadm")
    assert admin.get(f"/requests/{rid}/letter").status_code == 403
    assert admin.get(f"/requests/{rid}/letter.pdf").status_code == 403


def test_recall_confirm_and_terminate_with_the_manifest(office, app):
    aid, item_id, rid = _approved(office, app)
    lead = Reader(app).login("lead")
    posted = lead.submit(f"/requests/{rid}/grants", form_on=f"/requests/{rid}")
    issued = lead.get(posted.headers["Location"])
    token = re.search(r'id="once"[^>]*>([^<]+)</textarea>', text(issued)).group(1)
    # The third party reads the item, so it holds it and must confirm its return.
    office.get(f"/api/v1/shared/items/{item_id}", headers={"Authorization": f"Bearer {token}"})
    approver = Reader(app).login("approver")
    path = f"/agreements/{aid}/recalls"
    nothing = approver.submit(path, {"reason": "项目调整"})
    assert nothing.status_code == 400 and field_error(nothing, "item_ids")
    asked = approver.submit(path, {"item_ids": str(item_id), "reason": "项目调整"})
    # First the confirmation page, naming the item; nothing is recalled yet.
    assert asked.status_code == 200 and 'id="consequence"' in text(asked)
    assert f"#{item_id} " in text(asked)
    assert not office.get(f"/api/v1/agreements/{aid}/recalls", "approver").get_json()["recalls"]
    recalled = approver.submit(
        path, {"item_ids": str(item_id), "reason": "项目调整", "confirmed": "y"}
    )
    assert recalled.status_code == 303
    page = text(lead.get(path))
    confirmation = int(re.search(r'id="confirmation-(\d+)"', page).group(1))
    done = lead.submit(
        f"/agreements/{aid}/confirmations/{confirmation}",
        {"outcome": "destroyed", "note": "已删除"},
        form_on=path,
    )
    assert done.status_code == 303 and "已删除" in text(lead.get(path))
    # Termination needs the box ticked; then everything ends and the manifest is shown.
    unticked = approver.submit(f"/agreements/{aid}/terminate", form_on=path)
    assert unticked.status_code == 303
    assert office.get(f"/api/v1/agreements/{aid}", "approver").get_json()["status"] == "active"
    ended = approver.submit(f"/agreements/{aid}/terminate", {"understood": "y"}, form_on=path)
    assert ended.status_code == 303 and "#recall-" in ended.headers["Location"]
    assert "terminated" in text(approver.get(path))
    assert office.get(f"/api/v1/agreements/{aid}", "approver").get_json()["status"] == "terminated"
    assert lead.get(path).status_code == 200


def test_declassify_from_the_agreement_page(office, app):
    aid, item_id = _agreement(office)
    approver = Reader(app).login("approver")
    page = f"/agreements/{aid}"
    done = approver.submit(
        f"{page}/items/{item_id}/declassify",
        {"status": "declassified", "reason": "已公开"},
        form_on=page,
    )
    assert done.status_code == 303
    assert (
        office.get(f"/api/v1/agreements/{aid}/items", "approver").get_json()["items"][0]["status"]
        == "declassified"
    )


def test_dashboards_by_role(office, app):
    aid, item_id = _agreement(office)
    office.post(
        f"/api/v1/agreements/{aid}/ndas",
        "lead",
        json={
            "username": "staff",
            "signed_on": office.day(-5),
            "expires_on": office.day(7),
            "document_sha256": "e" * 64,
        },
    )
    _filed(app, aid, item_id)
    lead = text(Reader(app).login("lead").get("/"))
    assert re.search(r"<strong>1</strong><span class=\"state state-draft\">", lead)
    ending = re.search(r'<table class="compact" id="ending">(.*?)</table>', lead, re.S).group(1)
    assert "staff" in ending and ">7<" in ending
    handler = text(Reader(app).login("handler").get("/"))
    assert 'id="panel-office"' in handler and 'id="panel-vendor"' not in handler


def test_the_filer_withdraws_and_nobody_else_can(office, app):
    aid, item_id = _agreement(office)
    lead, rid = _filed(app, aid, item_id)
    page = f"/requests/{rid}"
    lead.submit(f"{page}/submit", form_on=page)
    handler = Reader(app).login("handler")
    assert "Withdraw" not in text(handler.get(page))
    assert handler.submit(f"{page}/withdraw", form_on=page).status_code == 403
    assert lead.submit(f"{page}/withdraw", form_on=page).status_code == 303
    assert office.get(f"/api/v1/disclosures/{rid}", "lead").get_json()["state"] == "withdrawn"
    assert "Nothing for you to do" in text(lead.get(page))
