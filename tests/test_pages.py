"""Issue 6: the pages through the Flask test client: languages, CSRF, errors at the field, 403
pages, and the same decisions and audit as the API."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from govern.web import PAGES, PUBLIC_PAGES
from tests.conftest import VENDOR
from tests.pages import Reader, field_error, text

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "govern/web/translations/zh_Hans_CN/LC_MESSAGES"


# Languages.


@pytest.mark.parametrize(
    "accept, lang, title",
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN", "登录"),
        ("zh", "zh-CN", "登录"),
        ("en-US,en;q=0.9", "en", "Sign in"),
        ("fr-FR,de;q=0.5", "en", "Sign in"),
        ("", "en", "Sign in"),
    ],
)
def test_the_browser_preference_picks_the_language(client, accept, lang, title):
    page = client.get("/login", headers={"Accept-Language": accept})
    assert f'<html lang="{lang}">' in text(page)
    assert f"<h1>{title}</h1>" in text(page)


def test_the_switch_overrides_the_browser_and_is_remembered(client):
    chinese = {"Accept-Language": "zh-CN"}
    switched = client.get("/login?lang=en", headers=chinese)
    assert "<h1>Sign in</h1>" in text(switched)
    assert "lang=en" in switched.headers["Set-Cookie"]
    assert "<h1>Sign in</h1>" in text(client.get("/login", headers=chinese))
    # An unknown choice is ignored, never stored.
    odd = client.get("/login?lang=xx", headers=chinese)
    assert "Set-Cookie" not in odd.headers or "lang=xx" not in odd.headers["Set-Cookie"]
    back = client.get("/login?lang=zh_CN")
    assert "<h1>登录</h1>" in text(back)
    # The switch keeps the page's other arguments.
    assert 'href="/login?next=%2Faudit&amp;lang=en"' in text(client.get("/login?next=/audit"))


def test_dates_are_in_the_readers_form(office, app):
    office.agreement()
    zh = Reader(app, "zh-CN").login("approver")
    en = Reader(app, "en").login("approver")
    assert "2022年6月27日" in text(zh.get("/agreements")) and "2027年6月27日" in text(zh.get("/"))
    assert "Jun 27, 2022" in text(en.get("/agreements"))


def test_every_message_of_the_pages_has_its_chinese_and_the_mo_is_current():
    """The catalog covers every message the pages show, and the compiled .mo matches the .po."""
    method_map = [
        ("govern/web/**.py", "python"),
        ("govern/web/templates/**.html", "jinja2"),
    ]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
    found = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            str(ROOT), method_map, keywords=keywords
        )
    }
    with open(CATALOG / "messages.po", "rb") as fh:
        po = read_po(fh)
    translated = {m.id: m.string for m in po if m.id}
    missing = sorted(m for m in found if not translated.get(m))
    assert missing == [], "run `make translations` and translate these"
    with open(CATALOG / "messages.mo", "rb") as fh:
        mo = read_mo(fh)
    assert {m.id: m.string for m in mo if m.id} == translated, "run `make translations`"


# Every page goes through @page, with its security headers.


def test_every_page_route_is_declared_with_page_and_anonymous_readers_go_to_sign_in(app, client):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("web.")]
    assert rules
    for rule in rules:
        assert rule.endpoint in PAGES, f"{rule.rule} bypasses @page"
        if rule.endpoint in PUBLIC_PAGES or "GET" not in rule.methods:
            continue
        # A step among several (<any(submit, review):move>) is reached by its first name.
        path = re.sub(r"<any\(([^,)]+)[^>]*>", r"\1", rule.rule)
        path = re.sub(r"<[^>]+>", "1", path)
        response = client.get(path)
        assert response.status_code == 302 and "/login?next=" in response.headers["Location"]
    assert {
        "static",
        "web.login",
        "web.seal_check",
        "web.subcontractor_seal_check",
        "web.set_password",
        # Token holders have no account: the token they post is the credential.
        "web.shared_page",
        "web.shared_download",
    } == PUBLIC_PAGES


def test_templates_have_no_inline_script_or_style():
    # The CSP allows scripts and styles from 'self' only; inline ones would be blocked. (A script
    # file of govern's own, e.g. static/shared.js, is allowed: no page needs it to work.)
    for path in (ROOT / "govern/web/templates").rglob("*.html"):
        body = path.read_text(encoding="utf-8")
        inline_script = re.search(r"<script(?![^>]*\bsrc=)", body)
        assert not inline_script and "style=" not in body and "<style" not in body, path


def test_signed_in_pages_send_the_security_headers(office, app):
    reader = Reader(app).login("audit")
    for path in ("/", "/audit", "/audit/charts", "/agreements"):
        response = reader.get(path)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


# Forms: CSRF, errors next to the field, the same services as the API.


def test_a_form_without_its_csrf_token_changes_nothing(office, app):
    reader = Reader(app).login("approver")
    response = reader.client.post("/agreements", data={"title": "x"})
    assert response.status_code == 400
    assert "please send it again" in text(response)
    assert office.get("/api/v1/agreements", "approver").get_json()["agreements"] == []


def test_agreement_form_shows_the_error_next_to_the_field_then_records(office, app):
    reader = Reader(app).login("approver")
    good = {
        "title": "保密协议",
        "owner": "常州市政务服务管理办公室",
        "vendor": "上海今点软件有限公司",
        "signed_on": "2022-06-31",
        "term_years": "5",
        "contract_value": "3985000.00",
        "currency": "CNY",
    }
    bad = reader.submit("/agreements", good)
    assert bad.status_code == 400
    assert field_error(bad, "signed_on") == "is not a real calendar date"
    assert 'value="上海今点软件有限公司"' in text(bad), "the reader's input is kept"
    assert office.get("/api/v1/agreements", "approver").get_json()["agreements"] == []

    zh = Reader(app, "zh-CN").login("approver")
    missing = zh.submit("/agreements", {**good, "title": ""})
    assert field_error(missing, "title") == "不能为空"

    created = reader.submit("/agreements", {**good, "signed_on": "2022-06-27"})
    assert created.status_code == 303
    listed = office.get("/api/v1/agreements", "approver").get_json()["agreements"]
    assert [a["term_ends_on"] for a in listed] == ["2027-06-27"]
    entry = office.audit_entries(action="agreement:create")[-1]
    assert entry["actor"] == "approver" and entry["decision"] == "allow"


def test_registering_an_item_by_upload_encrypts_it_and_it_reads_back(office, app, runtime):
    agreement = office.agreement()
    path = f"/agreements/{agreement['id']}"
    reader = Reader(app).login("approver")
    form = {"title": "户籍数据", "category": "data", "sensitivity": "secret", "fields": "name, id"}
    no_file = reader.submit(path, form)
    assert no_file.status_code == 400
    assert field_error(no_file, "content") == "is required"
    upload = {**form, "content": (io.BytesIO(b"name,id\nwang,1\n"), "people.csv", "text/csv")}
    done = reader.submit(path, upload, content_type="multipart/form-data")
    assert done.status_code == 303
    page = text(reader.get(path))
    assert "户籍数据" in page and "name, id" in page
    item_id = office.get(f"{'/api/v1/agreements/'}{agreement['id']}/items", "approver").get_json()[
        "items"
    ][0]["id"]
    content = reader.get(f"/items/{item_id}/content")
    assert content.status_code == 200 and content.data == b"name,id\nwang,1\n"
    # A download named after the title (RFC 5987 for the Chinese, an ASCII stand-in beside it).
    assert content.headers["Content-Disposition"] == (
        f'attachment; filename="item-{item_id}.csv"; '
        "filename*=UTF-8''%E6%88%B7%E7%B1%8D%E6%95%B0%E6%8D%AE.csv"
    )
    assert content.headers["Content-Security-Policy"].startswith("sandbox")


def test_the_vendor_without_nda_gets_the_403_page_and_it_is_audited(office, app):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    staff = Reader(app).login("staff")
    refused = staff.get(f"/items/{item['id']}/content")
    assert refused.status_code == 403
    assert re.search(r'id="error-message">no valid NDA[^<]*</p>', text(refused))
    # The casbin rule is said as a sentence (issue 12), not as its tuple.
    assert "<code>vendor staff may read an item&#39;s content in every agreement</code>" in text(
        refused
    )
    assert office.audit_entries(action="item:read", decision="deny")[-1]["actor"] == "staff"
    # A vendor cannot open the trail or the administration either.
    for path in ("/audit", "/audit/charts", "/admin/users", "/admin/policies"):
        assert staff.get(path).status_code == 403, path
    # And the form on a page a role may see but not use is refused by the service.
    assert staff.submit("/agreements", {"title": "x"}).status_code == 403


# The auditor.


def test_the_trail_search_filters_pages_and_names_a_bad_filter(office, app):
    for _ in range(3):
        office.get("/api/v1/audit", "lead")  # denials
    auditor = Reader(app).login("audit")
    denied = text(auditor.get("/audit?decision=deny&actor=lead"))
    assert denied.count('class="decision-deny"') == 3
    bad = auditor.get("/audit?since=yesterday")
    assert bad.status_code == 400
    assert "must be an ISO-8601 date or time" in field_error(bad, "since")
    # Newest first, 50 a page, with a link to the older ones.
    for _ in range(60):
        office.get("/api/v1/agreements", "staff")
    first = text(auditor.get("/audit"))
    older = re.search(r'href="(/audit\?cursor=\d+)" rel="next"', first).group(1)
    second = text(auditor.get(older))
    seqs = [int(s) for s in re.findall(r'href="/audit/(\d+)"', first + second)]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(set(seqs))


def test_entry_detail_verify_and_export(office, app):
    office.agreement()
    auditor = Reader(app).login("audit")
    seq = office.audit_entries(action="agreement:create")[0]["seq"]
    detail = text(auditor.get(f"/audit/{seq}"))
    assert "agreement:create" in detail and "approver" in detail
    assert auditor.get("/audit/999999").status_code == 404
    verified = auditor.submit("/audit/verify", form_on="/audit")
    assert verified.status_code == 200 and "Intact" in text(verified)
    assert office.audit_entries(action="audit:verify")[-1]["details"]["ok"] is True
    export = re.search(r'href="([^"]*format=csv[^"]*)"', text(auditor.get("/audit?actor=approver")))
    csv = auditor.get(export.group(1).replace("&amp;", "&"))
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = text(csv).strip().splitlines()
    assert len(lines) > 1 and all(",approver," in line for line in lines[1:])


def test_charts_count_decisions_per_day_and_denials_by_reason(office, app):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    office.get(f"/api/v1/items/{item['id']}/content", "staff")
    office.get(f"/api/v1/items/{item['id']}/content", "staff")
    office.get("/api/v1/audit", "lead")
    page = text(Reader(app).login("audit").get("/audit/charts?days=7"))
    assert page.count("<svg") == 2
    reasons = re.search(r'<table class="compact" id="reasons">(.*?)</table>', page, re.S).group(1)
    assert re.search(r"<td>no valid NDA[^<]*</td><td>2</td>", reasons)
    assert re.search(r"<td>no matching policy rule</td><td>1</td>", reasons)


def test_the_reasons_chart_keeps_its_counts_and_chinese_reasons_inside_the_picture():
    """The longest bar's count ended past the picture's right edge (cut off: "1" showed as a
    sliver); a long Chinese reason, cut by its number of characters, ran off the left edge."""
    from govern.web.charts import denials_by_reason

    long_reason = (
        "不在保密信息 2 的知悉范围内（乙方工作人员只能在有效的知悉范围内执行“读取保密信息内容”）"
    )
    svg = str(denials_by_reason([(long_reason, 1234), ("短", 1)], "t", "none"))
    width = int(re.search(r'viewBox="0 0 (\d+) ', svg).group(1))
    texts = re.findall(r'<text x="([\d.]+)"[^>]*text-anchor="(\w+)"[^>]*>([^<]*)</text>', svg)

    def drawn(s: str) -> float:  # a generous estimate: a Han character a full em, others 0.65 em
        return sum(12 if c >= "\u2e80" else 7.8 for c in s)

    for x, anchor, shown in texts:
        left = float(x) - (drawn(shown) if anchor == "end" else 0)
        right = left + drawn(shown)
        assert left >= 0 and right <= width, (shown, left, right, width)
    assert any(shown.endswith("…") and shown.startswith("不在保密信息") for _x, _a, shown in texts)
    assert any(shown == "1234" for _x, _a, shown in texts)


# Administration.


def _link_on(page) -> str:
    found = re.search(r'value="([^"]+)" id="once"', text(page))
    assert found, text(page)[:2000]
    return found.group(1)


def test_system_admin_creates_disables_and_resets_with_links_shown_once(office, app):
    office.user("sysadm", "system_admin")
    admin = Reader(app).login("sysadm")
    clash = admin.submit("/admin/users", {"username": "audit", "role": "auditor"})
    assert clash.status_code == 409 and "is taken" in field_error(clash, "username")
    orgless = admin.submit("/admin/users", {"username": "zhao", "role": "vendor_staff"})
    assert orgless.status_code == 400 and "vendor organisation" in field_error(orgless, "org")
    posted = admin.submit(
        "/admin/users", {"username": "zhao", "role": "vendor_staff", "org": VENDOR}
    )
    # The POST answers a redirect; the link is on the GET page it leads to, once.
    assert posted.status_code == 303
    made = admin.get(posted.headers["Location"])
    assert made.status_code == 200 and 'id="awaiting"' not in text(made)
    assert admin.get(posted.headers["Location"]).status_code == 410
    assert made.headers["Cache-Control"] == "no-store"
    link = _link_on(made)
    assert link.startswith("http://localhost/set-password/")
    page = text(admin.get("/admin/users"))
    assert re.search(r'id="user-zhao".*?awaiting password', page, re.S)
    # The holder, not the administrator, chooses the password on the public page.
    holder = Reader(app)
    mismatch = holder.submit(
        link,
        {"password": "p" * 12, "again": "q" * 12},
        form_on=link.replace("http://localhost", ""),
    )
    assert mismatch.status_code == 400 and "differ" in field_error(mismatch, "again")
    chosen = holder.submit(
        link, {"password": "zhao's own password", "again": "zhao's own password"}
    )
    assert chosen.status_code == 303
    Reader(app).login("zhao", "zhao's own password")
    assert holder.get(link).status_code == 409
    users = office.get("/api/v1/users", "sysadm").get_json()["users"]
    zhao = next(u for u in users if u["username"] == "zhao")
    reset_path = f"/admin/users/{zhao['id']}/reset"
    reset = admin.get(admin.submit(reset_path, form_on=reset_path).headers["Location"])
    # A link is shown once: no cache may keep the page that shows it.
    assert reset.headers["Cache-Control"] == "no-store"
    relink = _link_on(reset)
    assert relink != link and relink.rsplit("/", 1)[1] not in str(office.audit_entries())
    gone = Reader(app).submit("/login", {"username": "zhao", "password": "zhao's own password"})
    assert gone.status_code == 401
    Reader(app).submit(relink, {"password": "another password", "again": "another password"})
    Reader(app).login("zhao", "another password")
    disabled = admin.submit(f"/admin/users/{zhao['id']}/disable", form_on="/admin/users")
    assert disabled.status_code == 303
    refused = Reader(app).submit("/login", {"username": "zhao", "password": "another password"})
    assert refused.status_code == 401
    enabled = admin.submit(f"/admin/users/{zhao['id']}/enable", form_on="/admin/users")
    assert enabled.status_code == 303
    Reader(app).login("zhao", "another password")


def test_security_admin_adds_and_removes_rules_with_errors_at_the_field(office, app):
    office.user("sec", "security_admin")
    sec = Reader(app).login("sec")
    bad = sec.submit(
        "/admin/policies", {"ptype": "p", "v0": "nobody", "v1": "*", "v2": "item", "v3": "read"}
    )
    assert bad.status_code == 400 and "is not a role" in field_error(bad, "v0")
    refused = sec.submit(
        "/admin/policies", {"ptype": "p", "v0": "auditor", "v1": "*", "v2": "item", "v3": "read"}
    )
    assert refused.status_code == 409 and "separation of duties" in field_error(refused, "v0")
    added = sec.submit(
        "/admin/policies", {"ptype": "p", "v0": "auditor", "v1": "*", "v2": "outbox", "v3": "list"}
    )
    assert added.status_code == 303
    rule_id = office.audit_entries(action="policy:add", decision="allow")[-1]["target"]
    rule_id = int(rule_id.split(":")[1])
    # The list is paged: adding leads to the rules of the role the new one is about.
    assert added.headers["Location"].endswith("/admin/policies?who=auditor")
    assert f'id="rule-{rule_id}"' in text(sec.get(added.headers["Location"]))
    removed = sec.submit(f"/admin/policies/{rule_id}/remove", form_on="/admin/policies")
    assert removed.status_code == 303
    assert f'id="rule-{rule_id}"' not in text(sec.get("/admin/policies?who=auditor"))
    # The security administrator sees the accounts but cannot create one.
    assert sec.get("/admin/users").status_code == 200
    assert sec.submit("/admin/users", {"username": "x1", "role": "vendor_staff"}).status_code == 403


def test_the_switch_on_a_post_only_answer_leads_to_the_dashboard(office, app):
    office.agreement()
    auditor = Reader(app).login("audit")
    verified = auditor.submit("/audit/verify", form_on="/audit")
    assert 'href="/?lang=zh_CN"' in text(verified)
    assert 'href="/audit?lang=zh_CN"' in text(auditor.get("/audit"))


def test_policy_rules_filter_by_role(office, app):
    office.user("sec", "security_admin")
    sec = Reader(app).login("sec")
    page = text(sec.get("/admin/policies?who=auditor"))
    rows = re.findall(r'<tr id="rule-\d+">.*?</tr>', page, re.S)
    assert rows and all("auditor" in row for row in rows)


def test_the_auditor_reads_the_policy_but_gets_no_editing_controls(office, app):
    page = text(Reader(app).login("audit").get("/admin/policies"))
    assert 'id="rule-1"' in page
    assert "Add a rule" not in page and "/remove" not in page


def test_a_term_that_is_over_is_drawn_and_said(office, app):
    agreement = office.agreement(signed_on="2015-03-01")
    office.item(agreement["id"])
    page = text(Reader(app).login("approver").get(f"/agreements/{agreement['id']}"))
    assert "The term is over; the 1 protected items stay protected (clause 5.2)." in page
    assert "Mar 1, 2020" in page and 'class="chart"' in page


def test_a_new_account_needs_a_role_chosen(office, app):
    office.user("sysadm", "system_admin")
    admin = Reader(app).login("sysadm")
    page = text(admin.get("/admin/users"))
    assert re.search(r"<option[^>]*value=\"\"[^>]*>choose a role</option>", page)
    missing = admin.submit("/admin/users", {"username": "li", "role": ""})
    assert missing.status_code == 400 and "must be one of" in field_error(missing, "role")
