"""A new clerk's walk: every role signs in, in Chinese and in English, and opens every page its
navigation, tiles, tabs and links lead to (GET only, no action taken), in Debian's Chromium.

What it checks on every page it reaches:
- no link the page offers ends in a refusal or an error (403/404/5xx): a role sees only what
  the decision point lets it open (issue 12, part 4);
- on a Chinese page, no English sentence in what the page itself says (data the users typed is
  Chinese here; codes, product names, code samples and the English beside the language switch
  are allowed) (part 1);
- every table fits a 390 px screen without one-character columns (part 8).
Screenshots of every page are kept under test-artifacts/walk-<role>-<lang>/ (of the SQLite walk).
"""

from __future__ import annotations

import re
import shutil
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import CHROMIUM, PASSWORD
from tests.disclosure_flow import approved_request, file_request, issue_grant, move
from tests.test_browser import ARTIFACTS, served, settle_click, sync_api  # noqa: F401

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium")

SHA = "a" * 64
# Words that stay as they are on a Chinese page: product names, codes, formats, algorithms.
ALLOWED = re.compile(
    r"\b(govern|SHA-?256|ES256|Ed25519|JWS|JWK|JSON|JSONL|CSV|PDF|QR|UTC|GMT|NDA|API|URL|"
    r"curl|Bearer|HTTP|HTTPS|ID|OK|English|zh_CN|en)\b"
)
# Three or more English words in a row is a sentence (or a fragment of one) left untranslated.
SENTENCE = re.compile(r"[A-Za-z][a-z]+(?:[ ,'’-]+[A-Za-z][a-z]+){2,}")
# Links the walk does not follow: leaving, files, the language switch, and state-changing forms.
SKIP = re.compile(r"^/(logout|static/)|/content$|/export|\.pdf$|/letter\.pdf|[?&]lang=|/download")
ROLES = {
    "approver": "office_approver",
    "handler": "office_handler",
    "lead": "vendor_lead",
    "staff": "vendor_staff",
    "audit": "auditor",
    "secadmin": "security_admin",
    "sysadmin": "system_admin",
}
MAX_PAGES = 60


def _seed(office) -> None:
    """An agreement in Chinese with items, NDAs, need-to-know, requests in every state, a grant,
    a subcontractor, a recall and a few refusals: the day of an office, in the office's words."""
    office.user("secadmin", "security_admin")
    office.user("sysadmin", "system_admin")
    agreement = office.agreement(title="一体化政务服务平台运维保密协议", signed_on=office.day(-60))
    aid = agreement["id"]
    design = office.item(aid, content=b"design", title="系统总体设计说明书")["id"]
    cases = office.item(
        aid,
        content="申请人,事项,状态\n张三,营业执照,办结\n".encode(),
        title="办件数据",
        category="data",
        fields=["申请人", "事项", "状态"],
        media_type="text/csv",
    )["id"]
    interfaces = office.item(
        aid, content=b"interfaces", title="接口清单", category="technical_document"
    )["id"]
    for who, by in (("lead", "approver"), ("staff", "lead")):
        created = office.post(
            f"/api/v1/agreements/{aid}/ndas",
            by,
            json={
                "username": who,
                "signed_on": office.day(-30),
                "expires_on": office.day(300),
                "document_sha256": SHA,
            },
        )
        assert created.status_code == 201, created.get_json()
    ntk = office.post(
        f"/api/v1/agreements/{aid}/need-to-know",
        "lead",
        json={"username": "staff", "item_ids": [design], "reason": "平台日常运维"},
    )
    assert ntk.status_code == 201, ntk.get_json()
    zh = {"third_party": "常州市信息安全测评中心", "purpose": "年度等级保护测评需要查阅系统设计"}
    file_request(office, aid, [design], **zh)  # a draft
    submitted = file_request(office, aid, [design], **zh)
    move(office, submitted["id"], "submit", "lead")
    reviewed = file_request(office, aid, [interfaces], **zh)
    move(office, reviewed["id"], "submit", "lead")
    move(office, reviewed["id"], "review", "handler")
    approved = approved_request(office, aid, [design, interfaces], **zh)
    issue_grant(office, approved["id"])
    denied = file_request(office, aid, [cases], **zh)
    move(office, denied["id"], "submit", "lead")
    move(office, denied["id"], "deny", "handler", json={"reason": "超出协议约定的用途"})
    sub = office.post(
        f"/api/v1/agreements/{aid}/subcontractors",
        "lead",
        json={
            "name": "工单统计云服务",
            "service": "月度服务统计",
            "dsa_signed_on": office.day(-10),
            "dsa_expires_on": office.day(200),
            "dsa_sha256": SHA,
            "purpose": "按事项和状态统计办件量",
            "item_ids": [cases],
            "fields": ["事项", "状态"],
            "until": office.day(100),
        },
    )
    assert sub.status_code == 201, sub.get_json()
    recall = office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [interfaces], "reason": "接口清单已更新，旧版收回"},
    )
    assert recall.status_code == 201, recall.get_json()
    # Refusals the auditor will find: the staff member reaching beyond the need-to-know.
    office.get(f"/api/v1/items/{cases}/content", "staff")
    office.get("/api/v1/audit", "lead")


def _english_sentences(page) -> list[str]:
    """English sentences in what the page says, leaving out code samples and user data marked
    as such (``<code>``, ``<pre>``, ``[data-raw]``) and the language switch."""
    text = page.evaluate(
        """() => {
            const root = document.body.cloneNode(true);
            root.querySelectorAll('code, pre, [data-raw], [lang=en], script, style, #lang-en')
                .forEach(e => e.remove());
            return root.innerText;
        }"""
    )
    found = []
    for match in SENTENCE.finditer(text):
        words = ALLOWED.sub("", match.group(0))
        if len(re.findall(r"[A-Za-z]{2,}", words)) >= 3:
            found.append(match.group(0))
    return found


def _narrow_columns(page) -> list[str]:
    """Table cells squeezed to one character's width on the current viewport."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('table td, table th'))
            .filter(c => c.offsetParent !== null && c.innerText.trim().length > 2
                         && c.getBoundingClientRect().width < 24)
            .map(c => c.innerText.trim().slice(0, 30))"""
    )


def _links(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    found = []
    for href in hrefs:
        if not href or href.startswith(("#", "mailto:", "javascript:")):
            continue
        url = urljoin(page.url, href)
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != base:
            continue
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if SKIP.search(path):
            continue
        found.append(path)
    return found


def _walk(browser, base: str, username: str, locale: str, shots) -> dict:  # noqa: F811
    context = browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 900}, java_script_enabled=True
    )
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    settle_click(page, "button[type=submit].primary")
    seen: dict[str, int] = {}
    english: dict[str, list[str]] = {}
    narrow: dict[str, list[str]] = {}
    queue = ["/"]
    kinds: dict[str, int] = {}
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        # Two pages of each kind are enough (/audit/41 and /audit/42 say the same things).
        kind = re.sub(r"\d+", "N", path)
        if path in seen or kinds.get(kind, 0) >= 2:
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        try:
            response = page.goto(base + path)
        except sync_api.Error as exc:  # a link to a file: the browser downloads it
            seen[path] = 200 if "Download is starting" in str(exc) else 0
            continue
        seen[path] = response.status if response else 0
        if seen[path] != 200:
            continue
        name = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-") or "home"
        if shots is not None:
            page.screenshot(path=shots / f"{len(seen):02d}-{name}.png", full_page=True)
        if locale.startswith("zh"):
            sentences = _english_sentences(page)
            if sentences:
                english[path] = sentences
        page.set_viewport_size({"width": 390, "height": 844})
        squeezed = _narrow_columns(page)
        if squeezed:
            narrow[path] = squeezed
        page.set_viewport_size({"width": 1280, "height": 900})
        queue.extend(link for link in _links(page, base) if link not in seen)
    context.close()
    return {
        "refused": {p: s for p, s in seen.items() if s != 200},
        "english": english,
        "narrow": narrow,
        "pages": len(seen),
    }


@pytest.mark.parametrize("username", list(ROLES))
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_every_role_walks_every_page_it_is_offered(
    office,
    browser,  # noqa: F811
    served,  # noqa: F811
    database_url,
    username,
    locale,
):
    # On PostgreSQL the walk is taken in Chinese only: what the store changes is which links
    # answer and how, and a page offers the same links in both languages (the English of every
    # page is walked on SQLite). The English walks on PostgreSQL took 128 of the walks' 551
    # worker-seconds in a full run.
    if locale != "zh-CN" and database_url.startswith("postgresql"):
        pytest.skip("on PostgreSQL the pages are walked in Chinese; English is walked on SQLite")
    _seed(office)
    # Screenshots are kept of the SQLite walks only (the pages are the same on both stores, and
    # a full-page screenshot is over a third of a walk's time).
    shots = None
    if not database_url.startswith("postgresql"):
        shots = ARTIFACTS / f"walk-{username}-{locale}"
        shutil.rmtree(shots, ignore_errors=True)
        shots.mkdir(parents=True)
    found = _walk(browser, served, username, locale, shots)
    assert found["pages"] >= 2, found
    assert found["refused"] == {}, f"links that lead nowhere: {found['refused']}"
    assert found["english"] == {}, f"English on Chinese pages: {found['english']}"
    assert found["narrow"] == {}, f"one-character columns at 390 px: {found['narrow']}"
