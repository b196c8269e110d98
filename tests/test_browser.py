"""The pages in a real browser: Debian's Chromium driven by Playwright against a served app.

Each test serves the app (werkzeug, in a thread) on a free loopback port over a freshly migrated
database (SQLite, and PostgreSQL when configured), and keeps screenshots under test-artifacts/.
Without /usr/bin/chromium these tests are skipped, saying so; no browser is ever downloaded.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="session")
def browser():
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def served(app):
    """The real app on a free port, served by werkzeug in a thread, until the test ends."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


class Person:
    """One user in their own browser context (own cookies, own language)."""

    def __init__(self, browser, base: str, name: str, shots: Path, locale: str = "en-US"):
        self.context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.base, self.name, self.shots, self.count = base, name, shots, 0

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
        self.count += 1
        self.shots.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(
            path=self.shots / f"{self.count:02d}-{self.name}-{what}.png", full_page=True
        )

    def close(self):
        self.context.close()


@pytest.fixture
def people(browser, served, request, database_url):
    backend = "pg" if database_url.startswith("postgresql") else "sqlite"
    shots = ARTIFACTS / f"{request.node.originalname}-{backend}"
    opened: list[Person] = []

    def person(name: str, locale: str = "en-US") -> Person:
        opened.append(Person(browser, served, name, shots, locale))
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
    rows = page.locator("table.trail tbody tr")
    assert rows.count() >= 1
    assert all(t == "deny" for t in rows.locator("td:nth-child(6)").all_inner_texts())
    auditor.shot("denials")
    rows.first.locator("a").first.click()
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
