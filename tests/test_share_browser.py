"""Issue 12 parts 6 and 8 in a real browser (Debian's Chromium, Playwright, a served app): every
table on a 390 px wide screen keeps readable columns, and a third party opens its items from a
link that carries the token after the #, which never reaches the server."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import PASSWORD
from tests.disclosure_flow import approved_request, issue_grant
from tests.test_browser import settle_click

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def in_a_browser(drive) -> None:
    """Run ``drive(browser)`` with a Chromium of its own, in a thread of its own: Playwright's
    sync API refuses to start while another one (test_browser.py's, kept for the whole session)
    holds the main thread's event loop. What the thread raises is raised here."""
    outcome: dict = {}

    def run():
        try:
            with sync_api.sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=str(CHROMIUM),
                    headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
                )
                try:
                    drive(browser)
                finally:
                    browser.close()
        except BaseException as exc:  # handed to the test's own thread, raised there
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]


class Logged:
    """The served app, with every request line it answered (what an access log would keep)."""

    def __init__(self, app):
        self.lines: list[str] = []
        self.app = app

    def __call__(self, environ, start_response):
        self.lines.append(
            f"{environ['REQUEST_METHOD']} {environ.get('RAW_URI') or ''}"
            f"{environ.get('PATH_INFO')}?{environ.get('QUERY_STRING')}"
        )
        return self.app(environ, start_response)


@pytest.fixture
def served(app):
    logged = Logged(app)
    server = make_server("127.0.0.1", 0, logged, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", logged
    server.shutdown()
    thread.join()


def _world(office):
    agreement = office.agreement(signed_on=office.day(-60))
    aid = agreement["id"]
    first = office.item(aid, content=b"design", title="政务服务平台系统设计说明书")
    office.item(aid, content=b"data", title="办件数据字典", sensitivity="secret")
    approved = approved_request(
        office, aid, [first["id"]], third_party="江苏省大数据中心", purpose="等级保护测评"
    )
    grant = issue_grant(office, approved["id"])
    return aid, first["id"], approved["id"], grant


def _sign_in(context, base: str, name: str):
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    settle_click(page, "button[type=submit].primary")
    return page


def test_tables_on_a_390_px_screen_keep_readable_columns(office, served):
    base, _log = served
    aid, _item, rid, _grant = _world(office)
    shots = ARTIFACTS / "narrow-390"
    shots.mkdir(parents=True, exist_ok=True)
    pages = {
        "approver": [
            f"/agreements/{aid}",
            f"/requests/{rid}",
            f"/agreements/{aid}/recalls",
            "/agreements",
            "/",
        ],
        "audit": ["/audit"],
        "lead": [f"/agreements/{aid}/requests", f"/requests/{rid}"],
    }

    def drive(browser):
        seen = 0
        for name, paths in pages.items():
            context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
            page = _sign_in(context, base, name)
            for path in paths:
                page.goto(base + path)
                page.screenshot(path=shots / f"{name}{path.replace('/', '_')}.png", full_page=True)
                cells = page.eval_on_selector_all(
                    "main td, main th",
                    "els => els.map(e => [e.getBoundingClientRect().width, e.innerText.trim()])",
                )
                seen += len(cells)
                # A cell with a word in it is at least two characters wide (no column of one-char
                # lines); the table scrolls sideways instead.
                squeezed = [(w, t) for w, t in cells if len(t) >= 2 and w < 36]
                assert squeezed == [], (name, path, squeezed[:5])
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390 + 1, (name, path, width)
            context.close()
        assert seen > 50

    in_a_browser(drive)


def test_a_third_party_opens_its_items_from_a_link_with_the_token_after_the_hash(office, served):
    base, log = served
    _aid, item_id, _rid, grant = _world(office)
    token = grant["token"]

    def drive(browser):
        context = browser.new_context(
            locale="zh-CN", viewport={"width": 390, "height": 844}, accept_downloads=True
        )
        page = context.new_page()
        page.goto(f"{base}/shared#{token}")
        page.wait_for_selector("#shared-items")
        assert "政务服务平台系统设计说明书" in page.inner_text("#shared-items")
        assert "办件数据字典" not in page.content()
        assert re.search(r"当日结束（GMT\+08:00）", page.inner_text("#expires"))
        # The address bar no longer holds the token; the server never saw it in a URL.
        assert token not in page.url
        with page.expect_download() as download:
            page.click(f"#shared-item-{item_id} button")
        assert Path(download.value.path()).read_bytes() == b"design"
        assert all(token not in line for line in log.lines), log.lines
        assert any(line.startswith("POST") and "/shared" in line for line in log.lines)
        context.close()

    in_a_browser(drive)
