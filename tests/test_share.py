"""Issue 12 parts 2, 6, 7 and 8 through the real app: the letter (embedded CJK font, no seal QR
without a seal, GOVERN_PUBLIC_URL), one verdict on the public verify page, the termination
manifest's real states, 密级 in the Chinese order, the CSV export for Chinese Excel, and what a
token holder sees."""

from __future__ import annotations

import csv
import io
import json
import re

import pypdf
import pytest

from govern import create_app
from tests.disclosure_flow import approved_request, file_request, issue_grant, move
from tests.pages import Reader, text


def _item(office, **fields) -> tuple[int, int]:
    agreement = office.agreement(signed_on=office.day(-60))
    item = office.item(agreement["id"], content=b"the design", title="系统设计说明书", **fields)
    return agreement["id"], item["id"]


def _pdf_text(data: bytes) -> tuple[str, set[str]]:
    """The PDF's extracted text and the names of the fonts embedded in it as TrueType."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    embedded = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for descendant in font.get("/DescendantFonts", [font]):
                descriptor = descendant.get_object().get("/FontDescriptor")
                if descriptor and "/FontFile2" in descriptor.get_object():
                    embedded.add(str(descendant.get_object()["/BaseFont"]))
    return "\n".join(p.extract_text() for p in reader.pages), embedded


# Part 7: the letter.


def test_the_pdf_embeds_a_font_with_every_glyph_it_prints(office, app):
    aid, item_id = _item(office)
    approved = approved_request(office, aid, [item_id], third_party="测评中心")
    approver = Reader(app, "zh-CN").login("approver")
    pdf = approver.get(f"/requests/{approved['id']}/letter.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    extracted, embedded = _pdf_text(pdf.data)
    # The Chinese and the "·" come back out of the PDF as text: the font has their glyphs (a
    # missing glyph extracts as nothing or a box), and the font travels inside the PDF.
    for words in ("保密信息对外提供审批单", "测评中心", "系统设计说明书", "审批专用章", "·"):
        assert words in extracted, words
    assert "\u25a1" not in extracted and "\ufffd" not in extracted
    assert embedded, "no TrueType font is embedded"
    # The window is on the office's days and says so (part 2).
    assert f"{approved['ends_on']} 当日结束 end of day (GMT+08:00)" in extracted.replace("\n", " ")
    page = text(approver.get(f"/requests/{approved['id']}/letter"))
    assert f'{approved["ends_on"]} 当日结束 <span lang="en">end of day (GMT+08:00)</span>' in page


def test_a_denied_letter_has_no_seal_qr_only_its_state(office, app):
    aid, item_id = _item(office)
    filed = file_request(office, aid, [item_id])
    move(office, filed["id"], "submit", "lead")
    move(office, filed["id"], "review", "handler")
    move(office, filed["id"], "deny", "approver", json={"reason": "范围过大"})
    approver = Reader(app).login("approver")
    letter = text(approver.get(f"/requests/{filed['id']}/letter"))
    assert 'class="qr"' not in letter and "verify?digest" not in letter
    assert "/verify/" not in letter and 'id="no-seal"' in letter
    assert "不予批准 denied" in letter and "已拒绝" in letter or "denied" in letter
    extracted, _fonts = _pdf_text(approver.get(f"/requests/{filed['id']}/letter.pdf").data)
    assert "/verify/" not in extracted and "digest=-" not in extracted
    assert "无签章" in extracted


def test_a_denial_at_the_first_review_is_printed_on_the_handlers_line(office, app):
    """The handler denied at the first-level review; the letter printed that denial (and the
    handler's name) on the approver's line and left the handler's line empty."""
    aid, item_id = _item(office)
    filed = file_request(office, aid, [item_id])
    move(office, filed["id"], "submit", "lead")
    move(office, filed["id"], "deny", "handler", json={"reason": "超出协议约定的用途"})
    letter = text(Reader(app).login("approver").get(f"/requests/{filed['id']}/letter"))
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>.*?</td><td>(.*?)</td></tr>", letter)
    by_role = {re.sub(r"<[^>]+>", "", role): (who, words) for role, who, words in rows}
    handler = next(v for k, v in by_role.items() if k.startswith("经办人"))
    approver = next(v for k, v in by_role.items() if k.startswith("分管负责人"))
    assert handler[0] == "handler" and "超出协议约定的用途" in handler[1], handler
    assert approver == ("—", "—"), approver
    # Denied by the approver after a review: the approver's line, as before.
    other = file_request(office, aid, [item_id])
    move(office, other["id"], "submit", "lead")
    move(office, other["id"], "review", "handler")
    move(office, other["id"], "deny", "approver", json={"reason": "范围过大"})
    letter = text(Reader(app).login("approver").get(f"/requests/{other['id']}/letter"))
    assert re.search(r"分管负责人.*?</td><td>approver</td>.*?范围过大", letter, re.S)


@pytest.fixture
def public_app(settings_overrides):
    app = create_app({**settings_overrides, "public_url": "https://govern.example.gov.cn/"})
    yield app
    app.extensions["govern"].engine.dispose()


def test_links_and_qr_codes_use_the_public_url(public_app):
    from tests.conftest import Api

    api = Api(public_app.test_client(), public_app.extensions["govern"])
    for name, role in [("approver", "office_approver"), ("handler", "office_handler")]:
        api.user(name, role)
    api.user("lead", "vendor_lead")
    aid, item_id = _item(api)
    approved = approved_request(api, aid, [item_id])
    approver = Reader(public_app).login("approver")
    letter = text(approver.get(f"/requests/{approved['id']}/letter"))
    url = re.search(r'href="([^"]+)" id="verify-link"', letter).group(1)
    assert url.startswith(f"https://govern.example.gov.cn/verify/{approved['id']}?digest=")
    assert "localhost" not in letter
    extracted, _fonts = _pdf_text(approver.get(f"/requests/{approved['id']}/letter.pdf").data)
    assert "https://govern.example.gov.cn/verify/" in extracted.replace("\n", "")
    api.user("sysadm", "system_admin")
    made = api.post("/api/v1/users", "sysadm", json={"username": "wang", "role": "auditor"})
    assert made.get_json()["set_password_url"].startswith("https://govern.example.gov.cn/")


def test_the_verify_page_gives_one_verdict(office, app, client):
    aid, item_id = _item(office)
    approved = approved_request(office, aid, [item_id])
    rid = approved["id"]
    approval = office.get(f"/api/v1/disclosures/{rid}/approval", "approver").get_json()
    letter = text(Reader(app).login("approver").get(f"/requests/{rid}/letter"))
    path = re.search(r'href="http://[^"/]+(/verify/[^"]+)" id="verify-link"', letter).group(1)
    path = path.replace("&amp;", "&")

    def verdicts(page: str) -> list[str]:
        return re.findall(r'class="(ok|error) banner" id="(?:seal|pasted)-result"', page)

    assert verdicts(text(client.get(path))) == ["ok"]
    forged = re.sub(r"digest=[0-9a-f]{64}", "digest=" + "0" * 64, path)
    assert verdicts(text(client.get(forged))) == ["error"]
    # Pasting the genuine approval, on the bare page or on the letter's link: one green verdict,
    # never a red "not the office's" banner above it.
    for where in (f"/verify/{rid}", path):
        token = re.search(
            r'name="csrf_token" type="hidden" value="([^"]+)"', text(client.get(where))
        )
        good = client.post(
            where, data={"csrf_token": token.group(1), "approval": json.dumps(approval)}
        )
        assert verdicts(text(good)) == ["ok"], where
        assert "No sealed approval" not in text(good)
    bare = text(client.get(f"/verify/{rid}"))
    assert verdicts(bare) == [] and "No sealed approval" not in bare
    # A letter printed with "digest=-" (unsealed, before such letters lost their QR code) is
    # said to approve nothing, not to be forged.
    old = text(client.get(f"/verify/{rid}?digest=-"))
    assert "carries no seal" in old and "not the office's" not in old


# Part 8: fixes.


def test_sensitivities_read_in_the_chinese_order(office, app):
    aid, _item_id = _item(office, sensitivity="secret")
    office.item(aid, title="说明", sensitivity="confidential")
    office.item(aid, title="通讯录", sensitivity="internal")
    page = text(Reader(app, "zh-CN").login("approver").get(f"/agreements/{aid}"))
    row = {
        title: re.search(rf"<td>{title}</td><td>[^<]*</td><td>([^<]*)</td>", page).group(1)
        for title in ("系统设计说明书", "说明", "通讯录")
    }
    # internal < confidential < secret is 内部 < 秘密 < 机密.
    assert row == {"通讯录": "内部", "说明": "秘密", "系统设计说明书": "机密"}
    options = re.findall(r'<option[^>]*value="(internal|confidential|secret)"[^>]*>([^<]*)<', page)
    assert [o[1] for o in options] == ["内部", "秘密", "机密"]


def test_the_termination_manifest_shows_each_confirmations_real_state(office, app):
    aid, item_id = _item(office)
    other = office.item(aid, content=b"other", title="接口文档")["id"]
    approved = approved_request(office, aid, [item_id, other])
    grant = issue_grant(office, approved["id"])
    for ident in (item_id, other):
        shared = office.client.get(
            f"/api/v1/shared/items/{ident}", headers={"Authorization": f"Bearer {grant['token']}"}
        )
        assert shared.status_code == 200
    approver = Reader(app, "zh-CN").login("approver")
    lead = Reader(app, "zh-CN").login("lead")
    path = f"/agreements/{aid}/recalls"
    # The recall form shows its confirmation page first; that page posts it (confirmed=y).
    form = {"item_ids": str(item_id), "reason": "项目调整"}
    assert approver.submit(path, form).status_code == 200
    assert approver.submit(path, {**form, "confirmed": "y"}).status_code == 303
    confirmation = int(re.search(r'id="confirmation-(\d+)"', text(lead.get(path))).group(1))
    confirm = f"/agreements/{aid}/confirmations/{confirmation}"
    done = lead.submit(confirm, {"outcome": "destroyed"}, form_on=confirm)
    # A destruction is confirmed as a destruction, not as a return.
    flashed = text(lead.get(path))
    assert done.status_code == 303 and "已确认销毁" in flashed and "已确认归还" not in flashed
    terminate = f"/agreements/{aid}/terminate"
    ended = approver.submit(terminate, {"understood": "y"}, form_on=terminate)
    assert ended.status_code == 303
    listed = office.get(f"/api/v1/agreements/{aid}/recalls", "lead").get_json()["recalls"]
    (termination,) = [r for r in listed if r["kind"] == "termination"]
    assert len(termination["open_confirmations"]) == 1
    # The termination's manifest on the recalls page: each confirmation's real state (the
    # destruction confirmed under the recall shows as destroyed, not pending) and one count.
    page = text(lead.get(path))
    card = page.split(f'id="recall-{termination["id"]}"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'id="confirmation-(\d+)"', card)
    assert len(rows) == 2 and {str(c["id"]) for c in termination["confirmations"]} == set(rows)
    cell = card.split(f'id="confirmation-{confirmation}"', 1)[1].split("</tr>", 1)[0]
    assert "已销毁" in cell and "待" not in cell
    assert "清单共 2 项，待确认 1 项" in card
    entry = office.audit_entries(action="agreement:terminate", decision="allow")[-1]
    assert entry["details"]["confirmations"] == 2 and entry["details"]["to_confirm"] == 1
    notices = office.get("/api/v1/outbox", "lead")
    assert notices.status_code == 200
    assert "(1 to confirm)" in json.dumps(notices.get_json(), ensure_ascii=False)


def test_the_csv_export_opens_in_chinese_excel(office, app):
    office.agreement()
    auditor = Reader(app, "zh-CN").login("audit")
    link = re.search(r'href="([^"]*format=csv[^"]*)"', text(auditor.get("/audit"))).group(1)
    assert "headers=zh_CN" in link
    exported = auditor.get(link.replace("&amp;", "&"))
    assert exported.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["序号", "时间（UTC）", "操作人"] and rows[0][-1] == "办公室时区"
    assert any(r[4] == "agreement:create" for r in rows[1:])
    english = Reader(app, "en").login("audit")
    link = re.search(r'href="([^"]*format=csv[^"]*)"', text(english.get("/audit"))).group(1)
    assert "headers=en" in link
    # The API's default stays the trail's own column names, without a byte-order mark.
    plain = office.get("/api/v1/audit/export?format=csv", "audit")
    assert plain.data.startswith(b"seq,at,actor,")
    bad = office.get("/api/v1/audit/export?format=csv&headers=fr", "audit")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "headers"


# Part 6: token holders.


def _sub_body(office, item_ids: list[int], fields: list[str]) -> dict:
    return {
        "name": "云监控服务",
        "service": "monitoring",
        "dsa_signed_on": office.day(-10),
        "dsa_expires_on": office.day(300),
        "dsa_sha256": "ab" * 32,
        "purpose": "monitoring",
        "item_ids": item_ids,
        "fields": fields,
        "until": office.day(200),
    }


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_grant_token_lists_what_it_covers(office):
    aid, item_id = _item(office)
    office.item(aid, content=b"not shared", title="未提供的信息")
    approved = approved_request(office, aid, [item_id], third_party="测评中心")
    grant = issue_grant(office, approved["id"])
    listed = office.client.get("/api/v1/shared/items", headers=_bearer(grant["token"]))
    assert listed.status_code == 200, listed.get_json()
    body = listed.get_json()
    assert body["holder"] == "third_party" and body["request_id"] == approved["id"]
    assert body["items"] == [
        {
            "id": item_id,
            "title": "系统设计说明书",
            "media_type": "application/octet-stream",
            "available": True,
        }
    ]
    assert body["ends_on"] == approved["ends_on"] and body["office_zone"] == "Asia/Shanghai"
    assert body["expires_at"] == grant["expires_at"] and body["state"] == "live"
    entry = office.audit_entries(action="shared:read", actor=f"grant:{grant['grant_id']}")[-1]
    assert entry["decision"] == "allow" and entry["details"]["listing"] is True
    # Revoked: the holder sees the state, never who revoked it or why.
    office.post(f"/api/v1/grants/{grant['grant_id']}/revoke", "lead")
    after = office.client.get("/api/v1/shared/items", headers=_bearer(grant["token"]))
    assert after.status_code == 200 and after.get_json()["state"] == "revoked"
    assert after.get_json()["items"][0]["available"] is False
    assert "lead" not in after.get_data(as_text=True)
    refused = office.client.get(f"/api/v1/shared/items/{item_id}", headers=_bearer(grant["token"]))
    assert refused.status_code == 403 and "lead" not in refused.get_data(as_text=True)
    assert "rule" not in refused.get_json()["error"]
    # No token, a bad one, an account's token: 401, each kept in the trail.
    assert office.client.get("/api/v1/shared/items").status_code == 401
    assert office.client.get("/api/v1/shared/items", headers=_bearer("x.y.z")).status_code == 401
    account = office.login("lead")
    assert office.client.get("/api/v1/shared/items", headers=_bearer(account)).status_code == 401
    denied = office.audit_entries(action="shared:read", target="shared:items", decision="deny")
    # (Repeats of one anonymous refusal within a minute are counted on one entry.)
    assert {e["rule"] for e in denied} == {"no token", "not a grant token or a client token"}


def test_a_client_token_lists_its_items_and_fields(office):
    from tests.disclosure_flow import approved_subcontractor

    agreement = office.agreement()
    rows = office.item(
        agreement["id"],
        content=b'[{"name": "a", "id_no": "1"}]',
        fields=["name", "id_no"],
        title="办件记录",
        media_type="application/json",
    )
    created = approved_subcontractor(
        office, agreement["id"], _sub_body(office, [rows["id"]], ["name"])
    )
    listed = office.client.get("/api/v1/shared/items", headers=_bearer(created["client_token"]))
    assert listed.status_code == 200, listed.get_json()
    body = listed.get_json()
    assert body["holder"] == "subcontractor" and body["until"] == office.day(200)
    assert body["items"] == [
        {
            "id": rows["id"],
            "title": "办件记录",
            "fields": ["name"],
            "whole_item": False,
            "available": True,
        }
    ]


def test_the_openapi_document_describes_the_list(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    listing = doc["paths"]["/api/v1/shared/items"]["get"]
    assert listing["security"] == [{"bearer": []}] and "covers" in listing["summary"]


def test_the_holders_page_lists_and_downloads_without_the_token_in_any_url(office, app):
    aid, item_id = _item(office)
    approved = approved_request(office, aid, [item_id], third_party="测评中心")
    lead = Reader(app, "zh-CN").login("lead")
    grants = f"/requests/{approved['id']}/grants"
    issued = lead.submit(grants, form_on=grants)
    assert issued.status_code == 303
    page = text(lead.client.get(issued.headers["Location"], headers=lead.headers))
    token = re.search(r'id="once"[^>]*>([^<]+)</textarea>', page).group(1)
    # The instructions are whole: the placeholders are text, the link carries the token after #.
    assert "Bearer &lt;token&gt;" in page and "/api/v1/shared/items/&lt;id&gt;" in page
    assert re.search(rf'id="holder-link"[^>]*>http://localhost/shared#{re.escape(token)}<', page)
    assert "当日结束（GMT+08:00）" in page
    holder = Reader(app, "zh-CN")
    csrf = holder.token("/shared")
    shown = holder.client.post(
        "/shared", data={"csrf_token": csrf, "token": token}, headers=holder.headers
    )
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert "系统设计说明书" in text(shown) and "测评中心" in text(shown)
    assert re.search(r'id="expires">[^<]*当日结束（GMT\+08:00）', text(shown))
    got = holder.client.post(
        f"/shared/items/{item_id}",
        data={"csrf_token": csrf, "token": token},
        headers=holder.headers,
    )
    assert got.status_code == 200 and got.data == b"the design"
    assert got.headers["Content-Disposition"].startswith("attachment")
    # Refused in the reader's language, without the office's reasons.
    office.post(f"/api/v1/grants/{lead_grant(office, approved['id'])}/revoke", "lead")
    refused = holder.client.post(
        f"/shared/items/{item_id}",
        data={"csrf_token": csrf, "token": token},
        headers=holder.headers,
    )
    assert refused.status_code == 403 and "此令牌目前不能访问该信息" in text(refused)
    assert "lead" not in text(refused) and token not in text(refused)
    bad = holder.client.post(
        "/shared", data={"csrf_token": csrf, "token": "nonsense"}, headers=holder.headers
    )
    assert bad.status_code == 401 and "此令牌无效或已过期" in text(bad)
    # The token never went into a URL: no trail entry names it, no link carries it.
    assert token not in json.dumps(office.audit_entries())


def lead_grant(office, request_id: int) -> int:
    grants = office.get(f"/api/v1/disclosures/{request_id}/grants", "lead").get_json()["grants"]
    return grants[0]["grant_id"]


def test_the_subcontractor_token_page_has_whole_instructions(office, app):
    agreement = office.agreement()
    item = office.item(agreement["id"], content=b"runbook", title="运维手册")
    body = {**_sub_body(office, [item["id"]], []), "whole_items": [item["id"]]}
    filed = office.post(f"/api/v1/agreements/{agreement['id']}/subcontractors", "lead", json=body)
    sid = filed.get_json()["id"]
    move_sub = "/api/v1/subcontractors/{}/{}"
    assert office.post(move_sub.format(sid, "review"), "handler").status_code == 200
    assert office.post(move_sub.format(sid, "approve"), "approver").status_code == 200
    lead = Reader(app).login("lead")
    where = f"/agreements/{agreement['id']}/subcontractors"
    issued = lead.submit(f"{where}/{sid}/token", form_on=f"{where}/{sid}/token")
    assert issued.status_code == 303
    page = text(lead.client.get(issued.headers["Location"], headers=lead.headers))
    assert "Authorization: Bearer &lt;token&gt;" in page
    assert "http://localhost/api/v1/shared/items/&lt;id&gt;" in page
    assert "end of day (GMT+08:00)" in page
    token = re.search(r'id="once"[^>]*>([^<]+)</textarea>', page).group(1)
    holder = Reader(app)
    csrf = holder.token("/shared")
    shown = holder.client.post("/shared", data={"csrf_token": csrf, "token": token})
    assert "运维手册" in text(shown) and "whole item" in text(shown)


# Part 7: the reviewer's opinion (审核意见).


def test_the_handler_and_the_approver_write_their_opinions(office, app):
    aid, item_id = _item(office)
    filed = file_request(office, aid, [item_id])
    move(office, filed["id"], "submit", "lead")
    page = f"/requests/{filed['id']}"
    handler = Reader(app, "zh-CN").login("handler")
    # The review's confirmation page asks for the opinion (审核意见).
    assert 'id="ask-opinion"' in text(handler.get(f"{page}/review"))
    reviewed = handler.submit(
        f"{page}/review", {"opinion": "范围合理，同意提交"}, form_on=f"{page}/review"
    )
    assert reviewed.status_code == 303
    approver = Reader(app, "zh-CN").login("approver")
    shown = text(approver.get(page))
    assert "审核意见： 范围合理，同意提交" in shown or "审核意见：范围合理，同意提交" in shown
    # The API takes the approver's opinion; an empty or overlong one is refused, nothing moves.
    url = f"/api/v1/disclosures/{filed['id']}/approve"
    too_long = office.post(url, "approver", json={"opinion": "长" * 2001})
    assert too_long.status_code == 400 and too_long.get_json()["error"]["field"] == "opinion"
    approved = office.post(url, "approver", json={"opinion": "同意，限期查看"})
    assert approved.status_code == 200, approved.get_json()
    body = approved.get_json()
    assert body["review_opinion"] == "范围合理，同意提交"
    assert body["decision_opinion"] == "同意，限期查看"
    # Sealed with the decision, and the seal still verifies.
    approval = office.get(f"/api/v1/disclosures/{filed['id']}/approval", "approver").get_json()
    document = json.loads(approval["document"])
    assert document["reviewed"]["opinion"] == "范围合理，同意提交"
    assert document["approved"]["opinion"] == "同意，限期查看"
    letter = text(approver.get(f"{page}/letter"))
    assert "审核意见 opinion：范围合理，同意提交" in letter and "同意，限期查看" in letter
    assert 'id="decision-opinion-shown"' in text(approver.get(page))
    extracted, _fonts = _pdf_text(approver.get(f"{page}/letter.pdf").data)
    flat = extracted.replace("\n", "")
    assert "范围合理，同意提交" in flat and "同意，限期查看" in flat
    checked = text(
        Reader(app).get(
            re.search(r'href="http://[^"/]+(/verify/[^"]+)"', letter).group(1).replace("&amp;", "&")
        )
    )
    assert "Genuine" in checked
    # Without an opinion the shapes stay as before: no key in the sealed document.
    other = approved_request(office, aid, [item_id])
    plain = office.get(f"/api/v1/disclosures/{other['id']}/approval", "approver").get_json()
    assert "opinion" not in json.loads(plain["document"])["approved"]


def test_without_a_font_that_prints_the_letter_the_pdf_is_refused_clearly(office, app, monkeypatch):
    from govern.web import letter

    aid, item_id = _item(office)
    approved = approved_request(office, aid, [item_id])
    approver = Reader(app).login("approver")
    # A machine with none of the fonts (a CI image without the dependency or the package).
    monkeypatch.setattr(letter, "CJK_FONTS", (("/nonexistent/font.ttc", 0),))
    letter.cjk_font.cache_clear()
    try:
        refused = approver.get(f"/requests/{approved['id']}/letter.pdf")
        assert refused.status_code == 503 and "no Chinese font is installed" in text(refused)
        # The printable page does not need the font.
        assert approver.get(f"/requests/{approved['id']}/letter").status_code == 200
    finally:
        letter.cjk_font.cache_clear()


def test_a_subcontractors_record_carries_the_reviewers_opinions(office, app):
    agreement = office.agreement()
    item = office.item(agreement["id"], content=b"runbook", title="运维手册")
    body = {**_sub_body(office, [item["id"]], []), "whole_items": [item["id"]]}
    filed = office.post(f"/api/v1/agreements/{agreement['id']}/subcontractors", "lead", json=body)
    sid = filed.get_json()["id"]
    where = f"/agreements/{agreement['id']}/subcontractors"
    handler = Reader(app, "zh-CN").login("handler")
    review = f"{where}/{sid}/review"
    assert 'id="ask-opinion"' in text(handler.get(review))
    done = handler.submit(review, {"opinion": "服务商资质齐全"}, form_on=review)
    assert done.status_code == 303
    approved = office.post(
        f"/api/v1/subcontractors/{sid}/approve", "approver", json={"opinion": "同意，仅限整项"}
    )
    assert approved.status_code == 200, approved.get_json()
    shown = approved.get_json()
    assert (shown["review_opinion"], shown["decision_opinion"]) == (
        "服务商资质齐全",
        "同意，仅限整项",
    )
    document = json.loads(
        office.get(f"/api/v1/subcontractors/{sid}/approval", "approver").get_json()["document"]
    )
    assert document["reviewed"]["opinion"] == "服务商资质齐全"
    approver = Reader(app, "zh-CN").login("approver")
    page = text(approver.get(where))
    assert "服务商资质齐全" in page and "同意，仅限整项" in page
    letter = text(approver.get(f"{where}/{sid}/letter"))
    assert (
        "审核意见 opinion：服务商资质齐全" in letter
        and "审核意见 opinion：同意，仅限整项" in letter
    )
    # A bare review (no body) still works, as before.
    other = office.post(f"/api/v1/agreements/{agreement['id']}/subcontractors", "lead", json=body)
    bare = office.post(f"/api/v1/subcontractors/{other.get_json()['id']}/review", "handler")
    assert bare.status_code == 200 and bare.get_json()["review_opinion"] is None
