"""Messages are keys with parameters (issue 12): every key has its Chinese, pages say refusals,
notices, error pages and the trail's actions and reasons in the reader's language, the API keeps
its English ``message`` and adds ``key`` and ``params``, and the trail keeps the key."""

from __future__ import annotations

import json
import re

from babel.messages.pofile import read_po

from govern import audit
from govern.context import Principal, Target
from govern.messages import CATALOG, Msg, placeholders, read
from govern.runtime import unit_of_work
from govern.web.i18n import TRANSLATIONS
from tests.disclosure_flow import file_request, move, request_body
from tests.pages import Reader, field_error, text

PO = TRANSLATIONS / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
# Templates whose Chinese is rightly the same text (nothing but a placeholder).
SAME_IN_BOTH = {"error.text", "rule.because"}
HAN = re.compile(r"[\u4e00-\u9fff]")


def _chinese() -> dict[str, str]:
    with PO.open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id}


def test_every_message_key_renders_in_both_languages(app):
    """Each key: its Chinese exists, uses exactly the English placeholders, and renders (through
    the pages' own renderer) with sample parameters in both languages."""
    from flask_babel import force_locale

    from govern.web.words import say

    chinese = _chinese()
    problems = []
    with app.test_request_context("/"):
        for key, template in sorted(CATALOG.items()):
            zh = chinese.get(template)
            if not zh:
                problems.append(f"{key}: no Chinese for {template!r}")
                continue
            if placeholders(zh) != placeholders(template):
                problems.append(f"{key}: placeholders differ: {zh!r}")
                continue
            if key not in SAME_IN_BOTH and not HAN.search(zh):
                problems.append(f"{key}: the 'Chinese' has no Chinese: {zh!r}")
            params = {name: f"<{name}>" for name in placeholders(template)}
            msg = Msg(key, **params)
            with force_locale("en"):
                if say(msg) != str(msg):
                    problems.append(f"{key}: English renders as {say(msg)!r}")
            with force_locale("zh_CN"):
                shown = say(msg)
            if any(value not in shown for value in params.values()):
                problems.append(f"{key}: a parameter is lost in {shown!r}")
            if key not in SAME_IN_BOTH and not HAN.search(shown):
                problems.append(f"{key}: renders without Chinese: {shown!r}")
    assert not problems, "\n".join(problems)


def test_a_message_reads_back_from_its_english_text():
    made = Msg("nda.overlaps", id=3, name="wang", starts="2026-01-01", ends="2026-12-31")
    back = read(str(made))
    assert back is not None and back.key == "nda.overlaps"
    assert back.params["name"] == "wang"
    assert read("something nobody ever said") is None


def test_the_api_keeps_english_and_adds_the_key_and_its_parameters(office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    body = request_body(office, [item["id"]], starts_on=office.day(5), ends_on=office.day(1))
    response = office.post(f"/api/v1/agreements/{agreement['id']}/disclosures", "lead", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["message"] == "ends_on: the window ends before it starts"
    assert error["key"] == "window.ends_before_start" and error["params"] == {}
    assert error["field"] == "ends_on"
    # A denial: the English as before, the reason as a nested key.
    refused = office.get(f"/api/v1/items/{item['id']}/content", "staff").get_json()["error"]
    rule = "p, vendor_staff, *, item, read"
    assert refused["message"] == f"denied: no valid NDA: none registered ({rule})"
    assert refused["key"] == "denied"
    because = {"reason": {"key": "nda.none", "params": {}}, "basis": rule}
    assert refused["params"] == {"rule": {"key": "rule.because", "params": because}}


def test_a_chinese_page_shows_a_validation_error_in_chinese(app, office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    reader = Reader(app, "zh-CN").login("lead")
    path = f"/agreements/{agreement['id']}/requests"
    page = reader.submit(
        path,
        {
            "third_party": "审计署",
            "purpose": "审计",
            "form": "view",
            "item_ids": [str(item["id"])],
            "starts_on": office.day(5),
            "ends_on": office.day(1),
        },
    )
    assert page.status_code == 400
    assert field_error(page, "ends_on") == "期限的结束日早于开始日"
    english = Reader(app, "en").login("lead")
    page = english.submit(
        path,
        {
            "third_party": "audit office",
            "purpose": "audit",
            "form": "view",
            "item_ids": [str(item["id"])],
            "starts_on": office.day(5),
            "ends_on": office.day(1),
        },
    )
    assert field_error(page, "ends_on") == "the window ends before it starts"


def test_a_dashboard_notice_is_in_the_readers_language(app, office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    d = file_request(office, agreement["id"], [item["id"]])
    move(office, d["id"], "submit", "lead")
    chinese = text(Reader(app, "zh-CN").login("handler").get("/"))
    assert f"对外提供申请 {d['id']} 待初审" in chinese
    assert "awaits first-level review" not in chinese
    english = text(Reader(app, "en").login("handler").get("/"))
    assert f"Disclosure request {d['id']} awaits first-level review" in english
    # The outbox keeps the key and its parameters beside the English text mail is sent with.
    messages = office.get("/api/v1/outbox", "handler").get_json()
    sent = next(m for m in messages["messages"] if m["kind"] == "disclosure_submitted")
    assert sent["subject"] == f"Disclosure request {d['id']} awaits first-level review"
    assert sent["message_keys"]["subject"] == {
        "key": "notice.disclosure_submitted",
        "params": {"id": d["id"]},
    }


def test_an_error_page_says_the_refusal_and_its_rule_in_chinese(app, office):
    agreement = office.agreement()
    # Vendor staff may not list the agreement's disclosure requests: no rule allows it.
    page = Reader(app, "zh-CN").login("staff").get(f"/agreements/{agreement['id']}/requests")
    body = text(page)
    assert page.status_code == 403, body[:300]
    message = re.search(r'id="error-message">([^<]*)<', body).group(1)
    assert HAN.search(message), message
    assert "p, " not in body and "denied:" not in body


def test_a_denial_rule_on_the_error_page_is_a_sentence(app, office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    # The staff member has no NDA: the read is denied by a fact, under a casbin rule.
    page = Reader(app, "zh-CN").login("staff").get(f"/items/{item['id']}/content")
    body = text(page)
    assert page.status_code == 403, body[:300]
    assert "没有有效的保密承诺书：尚未登记" in body
    assert "p, vendor_staff" not in body
    assert (
        "读取保密信息内容" in body
    )  # the rule said as a sentence: "... may read an item's content"


def test_the_trail_keeps_the_key_and_the_auditor_reads_it_in_chinese(app, office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    office.get(f"/api/v1/items/{item['id']}/content", "staff")
    denied = [e for e in office.audit_entries(action="item:read") if e["decision"] == "deny"][-1]
    assert denied["rule"].startswith("no valid NDA: none registered (p, vendor_staff")
    kept = (
        json.loads(denied["details"]) if isinstance(denied["details"], str) else denied["details"]
    )
    assert kept["rule_key"]["key"] == "rule.because"
    assert kept["rule_key"]["params"]["reason"] == {"key": "nda.none", "params": {}}
    auditor = Reader(app, "zh-CN").login("audit")
    page = text(auditor.get("/audit?action=item:read"))
    assert "读取保密信息内容" in page
    assert "没有有效的保密承诺书：尚未登记" in page
    entry = text(auditor.get(f"/audit/{denied['seq']}"))
    assert "没有有效的保密承诺书：尚未登记" in entry and "rule_key" not in entry
    assert "登录" in text(auditor.get("/audit?action=auth:login"))
    # The charts count denials by reason, said in the reader's language.
    charts = text(auditor.get("/audit/charts"))
    reasons = re.search(r'<table class="compact" id="reasons">(.*?)</table>', charts, re.S)
    assert "<td>没有有效的保密承诺书：尚未登记</td><td>1</td>" in reasons.group(1)
    assert "没有有效的保密承诺书：尚未登记" in charts.split('id="reasons"')[0]  # the picture too


def test_an_old_plain_text_entry_still_verifies_and_is_shown(app, office, runtime):
    """Entries written before messages had keys keep their text; they verify as before and the
    auditor's page reads a known text back to its words."""
    with unit_of_work(runtime, Principal("user", "approver", "approver")) as ctx:
        ctx.record(
            "agreement:read", Target("agreement", 1), "deny", "no matching policy rule", keep=True
        )
    plain = office.audit_entries(rule="no matching policy rule")[-1]
    assert "rule_key" not in plain["details"]
    with runtime.engine.connect() as conn:
        assert audit.verify(conn, runtime.keys).ok
    page = text(Reader(app, "zh-CN").login("audit").get(f"/audit/{plain['seq']}"))
    assert "没有匹配的策略规则" in page


def test_status_fragments_and_end_reasons_are_translated(app, office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    d = file_request(office, agreement["id"], [item["id"]])
    move(office, d["id"], "withdraw", "lead")
    page = text(Reader(app, "zh-CN").login("lead").get(f"/requests/{d['id']}"))
    assert "已由申请人撤回" in page and "withdrawn by the filer" not in page


def test_a_separation_of_duties_refusal_is_said_in_chinese(app, office):
    """A refusal built of several keys (the invariant, the duty, the owners) reads in Chinese."""
    office.user("sec", "security_admin")
    reader = Reader(app, "zh-CN").login("sec")
    page = reader.submit(
        "/admin/policies",
        {"ptype": "p", "v0": "vendor_staff", "v1": "*", "v2": "audit", "v3": "search"},
    )
    assert page.status_code == 409
    shown = field_error(page, "v0")
    assert shown.startswith("职责分离（角色只能在其职责范围内行事）：")
    assert "属于审计职责" in shown and "乙方职责" in shown
    assert not re.search(r"[A-Za-z]{4,} [A-Za-z]{4,}", shown), shown


def test_a_persons_nda_is_never_called_by_the_agreements_word():
    """保密协议 is the agreement between the office and the vendor (the side menu, every title);
    a person's NDA is their 保密承诺书. A refusal saying "没有有效的保密协议" sent clerks looking
    for the agreement."""
    chinese_of = _chinese()
    assert chinese_of["Agreements"] == "保密协议"
    wrong = {
        english: chinese
        for english, chinese in chinese_of.items()
        if re.search(r"\bNDAs?\b|\bnda\b", english) and "保密协议" in chinese
    }
    assert wrong == {}, wrong


def test_the_pages_for_a_wrong_address_or_method_speak_the_readers_language(app, office):
    """A mistyped address (404) and a form sent to a page that takes none (405) are said in
    Chinese to a Chinese reader, never in werkzeug's English."""
    zh = Reader(app, "zh-CN").login("approver")
    missing = zh.get("/no-such-page")
    assert missing.status_code == 404
    said = text(missing)
    assert "此地址下没有内容" in said and "requested URL" not in said
    wrong = zh.client.delete("/agreements", headers=zh.headers)
    assert wrong.status_code == 405
    assert "此地址不接受这种请求" in text(wrong) and "not allowed" not in text(wrong).lower()
    en = Reader(app, "en").get("/no-such-page")
    assert "There is nothing at this address" in text(en)


def _recorded_detail_keys() -> set[str]:
    """Every keyword a service of govern records with its decisions (ctx.record, Decision.record,
    decide, require, refuse): the fields an auditor can find in an entry's details."""
    import ast
    from pathlib import Path

    control = {"keep", "collapse", "decision", "rule", "target", "action"}
    keys: set[str] = set()
    for path in (Path(__file__).resolve().parents[1] / "govern").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if named and node.func.attr in ("record", "refuse", "decide", "require"):
                keys.update(k.arg for k in node.keywords if k.arg and k.arg not in control)
    return keys


def test_every_detail_an_entry_can_carry_has_a_name_in_both_languages(app):
    from govern.web.words import DETAIL_NAMES, detail_name

    assert _recorded_detail_keys() - set(DETAIL_NAMES) == set()
    with app.test_request_context(headers={"Accept-Language": "en"}):
        english = {key: detail_name(key) for key in DETAIL_NAMES}
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        for key in DETAIL_NAMES:
            said = detail_name(key)
            assert HAN.search(said) or said == english[key] == "SHA-256", (key, said)
        assert detail_name("reason") == "原因" and detail_name("unknown_key") == "unknown_key"


def test_the_auditor_reads_an_entrys_details_by_their_chinese_names(app, office):
    agreement = office.agreement()
    office.post(
        f"/api/v1/agreements/{agreement['id']}/recalls",
        "approver",
        json={"item_ids": [office.item(agreement["id"])["id"]], "reason": "旧版收回"},
    )
    entries = office.audit_entries()
    recall = next(e for e in entries if e["details"].get("reason") == "旧版收回")
    page = text(Reader(app, "zh-CN").login("audit").get(f"/audit/{recall['seq']}"))
    assert '<th>原因 <small class="muted"><code>reason</code></small></th>' in page
    assert "旧版收回" in page
