"""The pages in a real browser: Debian's Chromium driven by Playwright against a served app.

Each test serves the app (werkzeug, in a thread) on a free loopback port over a freshly migrated
database (SQLite, and PostgreSQL when configured), and keeps screenshots under test-artifacts/.
Without /usr/bin/chromium these tests are skipped, saying so; no browser is ever downloaded.
"""

from __future__ import annotations

import itertools
import re
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import CHROMIUM, PASSWORD
from tests.disclosure_flow import approved_subcontractor

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture
def served(app):
    """The real app on a free port, served by werkzeug in a thread, until the test ends."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


# Whether a click on the element leads to another page: a link to another address, or a submit
# button of a form the browser will send (with JavaScript off, its own validation still stops one).
_LEADS_AWAY = """e => {
    if (e.closest('a[href]:not([href^="#"]):not([download])')) return true;
    return !!(e.form && e.type === 'submit' && e.form.checkValidity());
}"""


def settle_click(page, target, *, download: bool = False, **kwargs) -> None:
    """Click the first element ``target`` (a selector or a locator) names; when that leads to
    another page, return once that page has loaded.

    Playwright's click returns once a navigation it started is under way, before the new page has
    committed, and wait_for_load_state() then answers for the page still showing; count() does not
    wait either: a count right after a click could read the old page (0 rows, and a "count() == 0"
    that proves nothing). So the navigation is awaited explicitly. A click that starts a download
    (``download=True``) or leads nowhere returns at once.
    """
    raw = getattr(page, "_page", page)
    element = (raw.locator(target) if isinstance(target, str) else target).first
    if download or not element.evaluate(_LEADS_AWAY):
        element.click(**kwargs)
        return
    with raw.expect_navigation(wait_until="load"):
        element.click(**kwargs)


class _Settled:
    """A page whose click returns once the page it led to has loaded (settle_click)."""

    def __init__(self, page):
        self._page = page

    def __getattr__(self, name):
        return getattr(self._page, name)

    def click(self, selector: str, **kwargs) -> None:
        settle_click(self._page, selector, **kwargs)


class Person:
    """One user in their own browser context (own cookies, own language)."""

    def __init__(self, browser, base: str, name: str, shots: Path, counter, locale: str = "en-US"):
        # No page needs JavaScript: the browser runs without it, so every form is proven to work
        # without it.
        self.context = browser.new_context(
            locale=locale, viewport={"width": 1280, "height": 900}, java_script_enabled=False
        )
        self.page = _Settled(self.context.new_page())
        self.base, self.name, self.shots, self.counter = base, name, shots, counter
        # Anything the Content-Security-Policy blocked (an inline style, a foreign image) shows
        # up on the console; the test fails on it when the person leaves.
        self.blocked: list[str] = []
        self.page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.blocked.append(message.text)

    def go(self, path: str):
        self.page.goto(self.base + path)
        return self.page

    def login(self, password: str = PASSWORD):
        page = self.go("/login")
        page.fill("#username", self.name)
        page.fill("#password", password)
        page.click("button[type=submit].primary")
        return page

    def shot(self, what: str) -> None:
        """A screenshot, numbered in the order of the whole test (across people)."""
        number = next(self.counter)
        self.shots.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(
            path=self.shots / f"{number:02d}-{self.name}-{what}.png", full_page=True
        )

    def close(self):
        self.context.close()
        assert self.blocked == [], self.blocked


@pytest.fixture
def people(browser, served, request, database_url):
    backend = "pg" if database_url.startswith("postgresql") else "sqlite"
    shots = ARTIFACTS / f"{request.node.originalname}-{backend}"
    shutil.rmtree(shots, ignore_errors=True)
    opened: list[Person] = []
    counter = itertools.count(1)

    def person(name: str, locale: str = "en-US") -> Person:
        opened.append(Person(browser, served, name, shots, counter, locale))
        return opened[-1]

    yield person
    for p in opened:
        p.close()


def test_sign_in_shows_the_dashboard_and_a_bad_password_is_shown_at_the_field(office, people):
    lead = people("lead")
    page = lead.go("/")
    assert "/login" in page.url
    page.fill("#username", "lead")
    page.fill("#password", "wrong password!")
    page.click("button[type=submit].primary")
    assert page.locator(".field.has-error .error").inner_text() == "Bad username or password."
    lead.shot("bad-password")
    lead.login()
    assert page.locator("h1").inner_text() == "Dashboard"
    assert "vendor lead" in page.locator("header .who").inner_text()
    lead.shot("dashboard")


def test_the_language_follows_the_browser_and_the_switch(office, people):
    office.agreement()
    zh = people("approver", locale="zh-CN")
    page = zh.login()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "工作台"
    assert "2022年6月27日" in page.locator("table").inner_text()
    zh.shot("dashboard-zh")
    page.click("#lang-en")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert "Jun 27, 2022" in page.locator("table").inner_text()
    # The choice is remembered on the next pages.
    page.click("nav.side >> text=Agreements")
    assert page.locator("html").get_attribute("lang") == "en"
    zh.shot("agreements-en")
    page.click("#lang-zh")
    assert page.locator("h1").inner_text() == "保密协议"
    zh.shot("agreements-zh")


def test_the_auditor_searches_opens_an_entry_and_verifies(office, people):
    office.agreement()
    office.get("/api/v1/audit", "lead")  # a denial to find
    auditor = people("audit")
    page = auditor.login()
    page.click("nav.side >> text=Audit trail")
    page.select_option("#decision", "deny")
    page.click("form.filters button[type=submit]")
    assert "decision=deny" in page.url
    rows = page.locator("table.trail tbody tr")
    assert rows.count() >= 1
    assert all(t == "deny" for t in rows.locator("td:nth-child(6)").all_inner_texts())
    auditor.shot("denials")
    settle_click(page, rows.first.locator("a"))
    assert re.search(r"/audit/\d+$", page.url)
    assert "audit:search" in page.locator("dl.facts").inner_text()
    auditor.shot("entry")
    page.click("nav.side >> text=Audit trail")
    page.click("#verify")
    assert "Intact" in page.locator("#verify-result").inner_text()
    auditor.shot("verified")
    page.click("nav.side >> text=Charts")
    assert page.locator("svg.chart").count() == 2
    assert "no matching policy rule" in page.locator("#reasons").inner_text()
    auditor.shot("charts")


def test_the_approver_records_an_agreement_and_an_item_and_sees_the_clock(office, people, tmp_path):
    approver = people("approver", locale="zh-CN")
    page = approver.login()
    page.click("nav.side >> text=保密协议")
    page.fill("#title", "保密协议（附件2）")
    page.fill("#owner", "常州市政务服务管理办公室")
    page.fill("#vendor", "上海今点软件有限公司")
    page.fill("#signed_on", "2022-06-27")
    page.fill("#contract_value", "3,985,000")
    page.click("form.grid button[type=submit]")
    # The refusal is shown next to the field, in the reader's language; the rest is kept.
    assert page.locator("#contract_value-error").inner_text() == "须为金额，如 3985000.00"
    assert page.locator("#vendor").input_value() == "上海今点软件有限公司"
    approver.shot("agreement-error")
    page.fill("#contract_value", "3985000.00")
    page.click("form.grid button[type=submit]")
    assert page.locator("h1").inner_text().startswith("保密协议（附件2）")
    upload = tmp_path / "design.txt"
    upload.write_bytes("系统总体设计".encode())
    page.fill("#title", "系统总体设计说明书")
    page.select_option("#category", "design")
    page.set_input_files("#content", str(upload))
    page.click("form.grid button[type=submit]")
    assert "系统总体设计说明书" in page.locator("table").inner_text()
    assert page.locator("#clock svg.chart").count() == 1
    assert "1 项信息仍受保护" in page.locator("#clock svg").text_content()
    approver.shot("agreement-with-clock")


def _agreement_with_items(office) -> int:
    agreement = office.agreement(signed_on=office.day(-60))
    office.item(agreement["id"], content=b"design of the platform", title="系统设计说明书")
    office.item(
        agreement["id"], content=b"interface list", title="接口清单", category="technical_document"
    )
    return agreement["id"]


def _file_request(office, lead: Person, agreement_id: int, third_party: str) -> str:
    page = lead.go(f"/agreements/{agreement_id}/requests")
    page.fill("#third_party", third_party)
    page.fill("#purpose", "年度等级保护测评需要查阅系统设计")
    page.select_option("#form", "view")
    page.fill("#starts_on", office.day(0))
    page.fill("#ends_on", office.day(10))
    page.check("#item_ids-0")
    page.click("form.grid button[type=submit]")
    assert re.search(r"/requests/\d+$", page.url)
    page.click("text=Submit for review")
    # The button leads to its confirmation page (no script), which posts the step.
    page.click("#confirm-button")
    assert "submitted" in page.locator("h1 .state").inner_text()
    return page.url.rsplit("/", 1)[1]


def test_file_review_approve_grant_across_three_people(office, people):
    agreement_id = _agreement_with_items(office)
    lead, handler, approver = people("lead"), people("handler"), people("approver")
    lead.login()
    request_id = _file_request(office, lead, agreement_id, "常州市信息安全测评中心")
    lead.shot("submitted")

    page = handler.login()
    page.click("nav.side >> text=Review queue")
    assert page.locator(f"#request-{request_id}").count() == 1
    handler.shot("queue")
    page.click(f"#request-{request_id} a")
    # The handler may pass the review or deny, but never approve.
    assert page.locator("text=Approve and seal").count() == 0
    page.click("text=Pass the review")
    page.click("#confirm-button")
    assert "reviewed" in page.locator("h1 .state").inner_text()

    page = approver.login()
    page.click("nav.side >> text=Review queue")
    page.click(f"#request-{request_id} a")
    approver.shot("to-approve")
    page.click("text=Approve and seal")
    # Sealing asks the approver's password again on its confirmation page.
    assert page.locator("#consequence").count() == 1
    approver.shot("confirm-seal")
    page.fill("#ask-password", PASSWORD)
    page.click("#confirm-button")
    assert "approved" in page.locator("h1 .state").inner_text()
    page.click("#letter")
    assert page.locator("article.letter h1").inner_text() == "保密信息对外提供审批单"
    kid = page.locator("#kid").inner_text()
    assert kid.startswith("seal-")
    approver.shot("letter")
    pdf = approver.context.request.get(approver.base + f"/requests/{request_id}/letter.pdf")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    (approver.shots / "letter.pdf").write_bytes(pdf.body())
    # The QR code's address: anyone, signed in or not, can check the seal.
    verify_url = page.locator("#verify-link").get_attribute("href")
    stranger = people("stranger")
    assert verify_url.startswith(stranger.base + f"/verify/{request_id}?digest=")
    check = stranger.page
    check.goto(verify_url)
    assert "Genuine" in check.locator("#seal-result").inner_text()
    assert kid in check.locator("#seal-result").inner_text()
    stranger.shot("seal-check")

    page = lead.go(f"/requests/{request_id}")
    page.click("text=Hand a grant to the third party")
    page.click("#confirm-button")
    token = page.locator("#once").input_value()
    lead.shot("grant-token")
    item_id = office.get(f"/api/v1/disclosures/{request_id}", "lead").get_json()["item_ids"][0]
    shared = lead.context.request.get(
        lead.base + f"/api/v1/shared/items/{item_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert shared.ok and shared.body() == b"design of the platform"
    page = lead.go(f"/requests/{request_id}")
    assert page.locator("table.compact tr[id^=grant-] .state-allow").count() == 1
    lead.shot("grant-used")


def test_a_denial_with_its_reason(office, people):
    agreement_id = _agreement_with_items(office)
    lead, handler = people("lead", locale="zh-CN"), people("handler", locale="zh-CN")
    lead.login()
    page = lead.go(f"/agreements/{agreement_id}/requests?lang=en")
    request_id = _file_request(office, lead, agreement_id, "某咨询公司")
    page = handler.login()
    page.goto(handler.base + f"/requests/{request_id}")
    page.click("a.button.danger >> text=驳回")
    page.fill("#ask-reason", "用途与所需信息不相称")
    page.click("#confirm-button")
    assert "已驳回" in page.locator("h1 .state").inner_text()
    handler.shot("denied")
    page = lead.go(f"/requests/{request_id}")
    assert "用途与所需信息不相称" in page.locator("dl.facts").inner_text()
    assert page.locator("text=Hand a grant to the third party").count() == 0
    lead.shot("lead-sees-denial")


def _everything(office) -> dict:
    """One agreement with every kind of record, made through the API as the roles would."""
    day = office.day
    aid = _agreement_with_items(office)
    items = office.get(f"/api/v1/agreements/{aid}/items", "approver").get_json()["items"]
    table = office.item(
        aid,
        content=b"name,phone,id\nwang,139,3204\n",
        title="办件数据",
        category="data",
        media_type="text/csv",
        fields=["name", "phone", "id"],
    )
    office.post(
        f"/api/v1/agreements/{aid}/ndas",
        "lead",
        json={
            "username": "staff",
            "signed_on": day(-100),
            "expires_on": day(20),
            "document_sha256": "a" * 64,
        },
    )
    office.post(
        f"/api/v1/agreements/{aid}/need-to-know",
        "lead",
        json={"username": "staff", "item_ids": [items[0]["id"]], "reason": "运维"},
    )
    sub = approved_subcontractor(
        office,
        aid,
        {
            "name": "短信平台",
            "service": "短信通知",
            "dsa_signed_on": day(-10),
            "dsa_expires_on": day(25),
            "dsa_sha256": "b" * 64,
            "purpose": "办件结果短信通知",
            "item_ids": [table["id"]],
            "fields": ["name", "phone"],
            "until": day(25),
        },
    )
    office.get(
        f"/api/v1/shared/items/{table['id']}",
        headers={"Authorization": f"Bearer {sub['client_token']}"},
    )
    body = {
        "third_party": "常州市信息安全测评中心",
        "purpose": "等级保护测评",
        "form": "view",
        "item_ids": [items[0]["id"]],
        "starts_on": day(0),
        "ends_on": day(14),
    }
    ids = [
        office.post(f"/api/v1/agreements/{aid}/disclosures", "lead", json=body).get_json()["id"]
        for _ in range(3)
    ]
    for rid in ids[:2]:
        office.post(f"/api/v1/disclosures/{rid}/submit", "lead")
    office.post(f"/api/v1/disclosures/{ids[0]}/review", "handler")
    office.post(f"/api/v1/disclosures/{ids[0]}/approve", "approver")
    office.post(f"/api/v1/disclosures/{ids[1]}/deny", "handler", json={"reason": "用途不明确"})
    token = office.post(f"/api/v1/disclosures/{ids[0]}/grants", "lead").get_json()["token"]
    office.get(
        f"/api/v1/shared/items/{items[0]['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    office.get(f"/api/v1/items/{items[1]['id']}/content", "staff")
    denied = office.audit_entries(action="item:read", decision="deny")[-1]["seq"]
    office.post(
        f"/api/v1/agreements/{aid}/breaches",
        "approver",
        json={
            "description": "无知悉权限读取",
            "responsible_kind": "staff",
            "responsible": "staff",
            "audit_seqs": [denied],
        },
    )
    office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [table["id"]], "reason": "项目调整"},
    )
    office.user("sysadm", "system_admin")
    office.user("sec", "security_admin")
    return {"agreement": aid, "sub": sub["id"], "approved": ids[0], "denied": ids[1], "seq": denied}


WALK = {
    "lead": [
        "/",
        "/agreements/{a}",
        "/agreements/{a}/staff",
        "/agreements/{a}/subcontractors",
        "/agreements/{a}/subcontractors/{s}/report",
        "/agreements/{a}/requests",
        "/requests/{r}",
        "/agreements/{a}/recalls",
    ],
    "handler": ["/", "/queue", "/requests/{d}", "/agreements/{a}/subcontractors"],
    "approver": [
        "/",
        "/agreements/{a}",
        "/requests/{r}",
        "/requests/{r}/letter",
        "/agreements/{a}/breaches",
        "/agreements/{a}/recalls",
    ],
    "staff": ["/", "/agreements/{a}", "/account/password"],
    "audit": ["/", "/audit", "/audit/{q}", "/audit/charts"],
    "sysadm": ["/admin/users"],
    "sec": ["/admin/policies", "/admin/confirmations"],
}


def test_walk_through_every_page_in_both_languages(office, people, database_url):
    """Every role's pages open (200) in Chinese and in English; the screenshots are kept."""
    if database_url.startswith("postgresql"):
        pytest.skip("the walk-through's screenshots are taken once, on SQLite")
    made = _everything(office)
    values = {
        "a": made["agreement"],
        "s": made["sub"],
        "r": made["approved"],
        "d": made["denied"],
        "q": made["seq"],
    }
    for locale, lang in (("zh-CN", "zh-CN"), ("en-US", "en")):
        for name, paths in WALK.items():
            person = people(name, locale=locale)
            person.login()
            for path in paths:
                url = path.format(**values)
                response = person.page.goto(person.base + url)
                assert response.status == 200, (name, url, response.status)
                assert person.page.locator("html").get_attribute("lang") == lang
                slug = re.sub(r"[^a-z0-9]+", "-", url).strip("-") or "dashboard"
                person.shot(f"{lang}-{slug}")
            person.close()
