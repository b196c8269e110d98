"""A clerk's day in Debian's Chromium, without JavaScript, in Chinese (the key steps once more in
English): issue 12 checked item by item through the real pages of a served app.

1. The lead files a request in Chinese and submits it on its confirmation page; the handler finds
   it in the queue (filtered by state) and passes the review with a 审核意见; the approver seals it
   on the page that asks for its password again (a wrong one first: nothing sealed, a Chinese
   message); reloading the result repeats nothing.
2. The lead hands a grant: the token is shown once on a GET page, a reload shows it no more; the
   third party pastes it on /shared, sees its items with their window ("end of day" and the zone)
   and downloads one.
3. The letter and its PDF; one verdict on the public verify page; a denied request's letter has no
   QR code, only its state; the links use GOVERN_PUBLIC_URL when it is set.
4. The auditor filters the trail (by the grant's holder, by action), reads action words and reasons
   in Chinese, exports a CSV with a byte-order mark and Chinese headers.
5. The approver recalls an item and terminates (confirmation pages say what will happen); the
   recall page shows each confirmation's real state (已确认归还 / 已确认销毁); 密级 内部 < 秘密 < 机密.
6. The system administrator disables and enables an account and unlocks a locked one; anyone
   changes their own password.

On every Chinese page it stops at, the test looks for English sentences with the walk's own check
(tests/test_browser_walk.py) and keeps a screenshot under test-artifacts/<test>-<store>/.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from govern import create_app
from tests import test_browser
from tests.conftest import CHROMIUM, PASSWORD
from tests.disclosure_flow import approved_request, file_request, issue_grant, move
from tests.test_browser import ARTIFACTS, Person, settle_click
from tests.test_browser_walk import _english_sentences

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium")
# The served app and the people of tests/test_browser.py (the browser is conftest's).
served, people = test_browser.served, test_browser.people

THIRD_PARTY = "常州市信息安全测评中心"
PURPOSE = "年度等级保护测评需要查阅系统设计"


def seen(person: Person, what: str) -> None:
    """Keep a screenshot; on a Chinese page, fail on any English sentence the page says."""
    person.shot(what)
    if person.page.locator("html").get_attribute("lang") == "zh-CN":
        english = _english_sentences(person.page)
        assert english == [], (person.page.url, english)


def confirm(person: Person, what: str):
    """On a confirmation page: it says what will happen; keep it, then press its button."""
    page = person.page
    assert page.locator("#consequence").inner_text().strip(), page.url
    seen(person, f"confirm-{what}")
    page.click("#confirm-button")
    return page


def flashed(page) -> str:
    return " ".join(page.locator("p.flash").all_inner_texts())


def _agreement(office) -> tuple[int, int, int]:
    agreement = office.agreement(title="一体化政务服务平台运维保密协议", signed_on=office.day(-60))
    aid = agreement["id"]
    design = office.item(aid, content="系统总体设计".encode(), title="系统总体设计说明书")["id"]
    other = office.item(
        aid, content=b"interfaces", title="接口清单", category="technical_document"
    )["id"]
    return aid, design, other


# Part 1 (and 3): a request from filing to its seal, in Chinese.


def test_a_request_from_filing_to_seal_in_chinese(office, people):
    aid, design, _other = _agreement(office)
    lead = people("lead", "zh-CN")
    handler = people("handler", "zh-CN")
    approver = people("approver", "zh-CN")

    page = lead.login()
    seen(lead, "dashboard")
    page = lead.go(f"/agreements/{aid}/requests")
    page.fill("#third_party", THIRD_PARTY)
    page.fill("#purpose", PURPOSE)
    page.select_option("#form", "view")
    page.fill("#starts_on", office.day(0))
    page.fill("#ends_on", office.day(-1))
    page.check("#item_ids-0")
    page.click("form.grid button[type=submit]")
    # A window that ends before it starts: refused in Chinese, next to the form, the rest kept.
    assert page.locator("#third_party").input_value() == THIRD_PARTY
    errors = " ".join(page.locator(".error").all_inner_texts())
    assert errors and not re.search(r"[A-Za-z]{4,}", errors), errors
    seen(lead, "window-refused")
    page.fill("#ends_on", office.day(10))
    page.click("form.grid button[type=submit]")
    assert re.search(r"/requests/\d+$", page.url)
    rid = int(page.url.rsplit("/", 1)[1])
    assert "草稿" in page.locator("h1 .state").inner_text()
    seen(lead, "draft")
    page.click(f"a[href='/requests/{rid}/submit']")
    # The confirmation page changed nothing yet.
    assert office.get(f"/api/v1/disclosures/{rid}", "lead").get_json()["state"] == "draft"
    confirm(lead, "submit")
    assert re.search(rf"/requests/{rid}$", page.url)
    assert "已提交" in page.locator("h1 .state").inner_text()
    seen(lead, "submitted")

    # The handler finds it in the queue, filtered to the submitted requests.
    page = handler.login()
    # The dashboard's tile counts it and leads to the queue filtered to it; the notice of the
    # submission leads to the request itself.
    assert page.locator("#tile-submitted strong").inner_text() == "1"
    assert page.locator(f"#panel-notices a[href='/requests/{rid}']").count() >= 1
    seen(handler, "dashboard")
    page.click("nav.side >> text=待审队列")
    assert page.locator(f"#request-{rid}").count() == 1
    page = handler.go("/queue?state=reviewed")
    assert page.locator(f"#request-{rid}").count() == 0
    page = handler.go("/")
    page.click("#tile-submitted")
    assert page.url.endswith("/queue?state=submitted")
    assert page.locator(f"#request-{rid}").count() == 1
    assert THIRD_PARTY in page.locator(f"#request-{rid}").inner_text()
    seen(handler, "queue-submitted")
    page.click(f"#request-{rid} a")
    assert page.locator(f"a[href='/requests/{rid}/approve']").count() == 0
    page.click(f"a[href='/requests/{rid}/review']")
    page.fill("#ask-opinion", "用途明确，范围适当，同意提交审批")
    confirm(handler, "review")
    assert "已初审" in page.locator("h1 .state").inner_text()
    assert "用途明确" in page.locator("#review-opinion-shown").inner_text()
    seen(handler, "reviewed")

    # The approver seals: a wrong password first seals nothing and says so in Chinese.
    page = approver.login()
    page = approver.go(f"/requests/{rid}")
    page.click(f"a[href='/requests/{rid}/approve']")
    assert page.locator("#ask-password").count() == 1
    page.fill("#ask-opinion", "同意")
    page.fill("#ask-password", "not the password")
    confirm(approver, "seal-wrong-password")
    assert page.locator("#confirm-error").inner_text() == "密码错误：未加盖印章。"
    seen(approver, "seal-refused")
    assert office.get(f"/api/v1/disclosures/{rid}", "lead").get_json()["state"] == "reviewed"
    page.fill("#ask-password", PASSWORD)
    confirm(approver, "seal")
    assert re.search(rf"/requests/{rid}$", page.url)
    assert "已批准" in page.locator("h1 .state").inner_text()
    seen(approver, "sealed")
    # The result is a GET page: reloading it repeats nothing (one seal in the trail).
    page.reload()
    assert "已批准" in page.locator("h1 .state").inner_text()
    seals = office.audit_entries(action="disclosure:approve", decision="allow")
    assert len(seals) == 1

    # The letter: both opinions printed, one verdict on the public verify page.
    page.click("#letter")
    letter = page.locator("article.letter").inner_text()
    assert "保密信息对外提供审批单" in letter and "用途明确" in letter
    seen(approver, "letter")
    pdf = approver.context.request.get(approver.base + f"/requests/{rid}/letter.pdf")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    (approver.shots / "letter.pdf").write_bytes(pdf.body())
    verify = page.locator("#verify-link").get_attribute("href")
    stranger = people("stranger", "zh-CN")
    check = stranger.page
    check.goto(verify)
    assert check.locator("#seal-result.ok").count() == 1
    assert check.locator(".error.banner").count() == 0
    seen(stranger, "verify-genuine")
    check.goto(re.sub(r"digest=[0-9a-f]{64}", "digest=" + "0" * 64, verify))
    assert check.locator("#seal-result.error").count() == 1
    assert check.locator(".ok.banner").count() == 0
    seen(stranger, "verify-forged")


# Part 2: a grant shown once, and the third party's page.


def test_a_grant_shown_once_and_the_holders_page(office, people):
    aid, design, other = _agreement(office)
    approved = approved_request(
        office, aid, [design, other], third_party=THIRD_PARTY, purpose=PURPOSE
    )
    rid = approved["id"]
    lead = people("lead", "zh-CN")
    lead.login()
    page = lead.go(f"/requests/{rid}")
    page.click(f"a[href='/requests/{rid}/grants']")
    assert office.get(f"/api/v1/disclosures/{rid}/grants", "lead").get_json()["grants"] == []
    confirm(lead, "grant")
    assert "/shown/" in page.url
    token = page.locator("#once").input_value()
    assert token.count(".") == 2
    # The instructions name the holders' page; the placeholders are printed, not swallowed.
    assert "<token>" in page.locator("#holder-api").inner_text()
    assert "<id>" in page.locator("#holder-api").inner_text()
    seen(lead, "token-once")
    shown_at = page.url
    again = page.goto(shown_at)
    assert again.status == 410
    assert page.locator("#once").count() == 0 and token not in page.content()
    seen(lead, "token-gone")
    grants = office.get(f"/api/v1/disclosures/{rid}/grants", "lead").get_json()["grants"]
    assert len(grants) == 1

    # The third party: no account, the holders' page, the token pasted.
    holder = people("third-party", "zh-CN")
    page = holder.go("/shared")
    seen(holder, "shared-empty")
    page.fill("#token", token)
    page.click("#token-form button[type=submit]")
    covered = page.locator("#covered").inner_text()
    assert THIRD_PARTY in covered and PURPOSE in covered
    window = page.locator("#window").inner_text()
    assert "当日结束" in window and ("GMT+08:00" in window or "北京" in window), window
    assert page.locator("#shared-items tbody tr").count() == 2
    assert "系统总体设计说明书" in page.locator(f"#shared-item-{design}").inner_text()
    # The token is in no address the browser sent.
    assert token not in page.url
    seen(holder, "shared-covered")
    with page.expect_download() as download:
        page.click(f"#shared-item-{design} button[type=submit]", download=True)
    path = download.value.path()
    assert path is not None
    with open(path, "rb") as got:
        assert got.read() == "系统总体设计".encode()
    used = office.audit_entries(action="shared:read", decision="allow")
    assert any(e["target"] == f"item:{design}" for e in used)
    # A wrong token: a Chinese refusal, no internal reason.
    page = holder.go("/shared")
    page.fill("#token", "x.y.z")
    page.click("#token-form button[type=submit]")
    refusal = page.locator("#shared-error").inner_text()
    assert refusal and "rule" not in refusal and not re.search(r"[A-Za-z]{4,}", refusal)
    seen(holder, "shared-refused")


# Part 3: a denied request's letter, and the public address of the links.


def test_a_denied_letter_shows_its_state_without_a_qr(office, people):
    aid, design, _other = _agreement(office)
    filed = file_request(office, aid, [design], third_party=THIRD_PARTY, purpose=PURPOSE)
    move(office, filed["id"], "submit", "lead")
    handler = people("handler", "zh-CN")
    handler.login()
    page = handler.go(f"/requests/{filed['id']}")
    page.click(f"a[href='/requests/{filed['id']}/deny']")
    # An empty reason is refused on the same page, in Chinese; nothing is denied.
    page.fill("#ask-reason", " ")
    confirm(handler, "deny-empty")
    assert page.locator("#confirm-error").count() == 1
    assert not re.search(r"[A-Za-z]{4,}", page.locator("#confirm-error").inner_text())
    assert office.get(f"/api/v1/disclosures/{filed['id']}", "lead").get_json()["state"] == (
        "submitted"
    )
    page.fill("#ask-reason", "超出协议约定的用途")
    confirm(handler, "deny")
    assert "已驳回" in page.locator("h1 .state").inner_text()
    approver = people("approver", "zh-CN")
    approver.login()
    page = approver.go(f"/requests/{filed['id']}/letter")
    assert page.locator("#verify-link").count() == 0
    assert page.locator(".qr-box").count() == 0
    assert page.locator("#no-seal").count() == 1
    seen(approver, "denied-letter")


@pytest.fixture
def public_served(settings_overrides):
    """The app with GOVERN_PUBLIC_URL set (the address printed letters and QR codes carry)."""
    import threading

    from werkzeug.serving import make_server

    from tests.conftest import Api

    app = create_app({**settings_overrides, "public_url": "https://govern.example.gov.cn/"})
    api = Api(app.test_client(), app.extensions["govern"])
    for name, role in (("approver", "office_approver"), ("handler", "office_handler")):
        api.user(name, role)
    api.user("lead", "vendor_lead")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    app.extensions["govern"].engine.dispose()


def test_the_letters_links_use_the_public_url(public_served, browser, request, database_url):
    import itertools

    api, base = public_served
    aid, design, _other = _agreement(api)
    approved = approved_request(api, aid, [design], third_party=THIRD_PARTY)
    store = "pg" if database_url.startswith("postgresql") else "sqlite"
    shots = ARTIFACTS / f"{request.node.originalname}-{store}"
    approver = Person(browser, base, "approver", shots, itertools.count(1), "zh-CN")
    try:
        approver.login()
        page = approver.go(f"/requests/{approved['id']}/letter")
        href = page.locator("#verify-link").get_attribute("href")
        assert href.startswith(f"https://govern.example.gov.cn/verify/{approved['id']}?digest=")
        assert "127.0.0.1" not in page.locator("article.letter").inner_text()
        assert page.locator(".qr-box svg").count() == 1
        seen(approver, "letter-public-url")
        # The same address, opened on this server, gives one green verdict.
        page.goto(base + href.removeprefix("https://govern.example.gov.cn"))
        assert page.locator("#seal-result.ok").count() == 1
    finally:
        approver.close()


# Part 4: the auditor.


def test_the_auditor_follows_a_grant_in_chinese_and_exports(office, people):
    aid, design, _other = _agreement(office)
    approved = approved_request(office, aid, [design], third_party=THIRD_PARTY)
    grant = issue_grant(office, approved["id"])
    office.get(
        f"/api/v1/shared/items/{design}", headers={"Authorization": f"Bearer {grant['token']}"}
    )
    office.get("/api/v1/audit", "lead")  # a refusal with its reason
    auditor = people("audit", "zh-CN")
    page = auditor.login()
    page.click("nav.side >> text=审计日志")
    seen(auditor, "trail")
    # By the grant: its holder is an actor of the trail.
    page.fill("#actor", f"grant:{grant['grant_id']}")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**actor=grant*")
    rows = page.locator("table.trail tbody tr")
    assert rows.count() >= 1
    # (The target is the item: by its id, or by its title once names replace ids.)
    targets = rows.locator("td:nth-child(5)").all_inner_texts()
    assert all(f"item:{design}" in t or "系统总体设计说明书" in t for t in targets), targets
    seen(auditor, "trail-by-grant")
    # By the request's sealing: action words in Chinese, the code kept as the title.
    page = auditor.go("/audit?action=disclosure:approve")
    cell = page.locator("table.trail tbody tr td:nth-child(4)").first
    assert cell.get_attribute("title") == "disclosure:approve"
    assert not re.search(r"[A-Za-z]{3,}", cell.inner_text()), cell.inner_text()
    seen(auditor, "trail-by-action")
    # The office's today (Beijing's day, whatever the hour in UTC) finds today's entries.
    page = auditor.go(f"/audit?since={office.day(0)}&until={office.day(0)}")
    assert page.locator("table.trail tbody tr").count() >= 1
    assert "Asia/Shanghai" in page.locator("form.filters").inner_text()
    page = auditor.go("/audit?decision=deny")
    reasons = page.locator("table.trail tbody td.rule").all_inner_texts()
    assert reasons and all(not re.search(r"[A-Za-z]{4,} [A-Za-z]{4,}", r) for r in reasons)
    seen(auditor, "trail-denials")
    href = page.locator("a[href*='format=csv']").get_attribute("href")
    assert "headers=zh_CN" in href
    exported = auditor.context.request.get(auditor.base + href)
    assert exported.ok and exported.body().startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(exported.body().decode("utf-8-sig"))))
    assert rows[0][0] == "序号" and len(rows) > 1
    (auditor.shots / "trail.csv").write_bytes(exported.body())
    page = auditor.go("/audit/charts")
    assert "UTC" not in page.locator("main").inner_text()
    seen(auditor, "charts")


# Part 5: recall, termination, the real states, 密级.


def test_recall_and_termination_show_each_confirmations_real_state(office, people):
    aid, design, other = _agreement(office)
    office.item(aid, content=b"x", title="通讯录", sensitivity="internal")
    office.item(aid, content=b"y", title="数据字典", sensitivity="secret")
    approved = approved_request(office, aid, [design, other], third_party=THIRD_PARTY)
    grant = issue_grant(office, approved["id"])
    for ident in (design, other):
        office.get(
            f"/api/v1/shared/items/{ident}", headers={"Authorization": f"Bearer {grant['token']}"}
        )
    approver, lead = people("approver", "zh-CN"), people("lead", "zh-CN")
    page = approver.login()
    page = approver.go(f"/agreements/{aid}")
    rows = page.locator("table").first.inner_text()
    assert "内部" in rows and "机密" in rows
    options = page.locator("#sensitivity option").all_inner_texts()
    assert options == ["内部", "秘密", "机密"], options
    seen(approver, "items-sensitivity")

    page = approver.go(f"/agreements/{aid}/recalls")
    page.check(f"input[name=item_ids][value='{design}']")
    page.fill("#reason", "接口清单已更新，旧版收回")
    page.click("form.grid button[type=submit]")
    assert "系统总体设计说明书" in page.locator("#confirm dl.facts").inner_text()
    assert office.get(f"/api/v1/agreements/{aid}/recalls", "lead").get_json()["recalls"] == []
    confirm(approver, "recall")
    assert len(office.get(f"/api/v1/agreements/{aid}/recalls", "lead").get_json()["recalls"]) == 1
    seen(approver, "recalled")
    page.reload()
    assert len(office.get(f"/api/v1/agreements/{aid}/recalls", "lead").get_json()["recalls"]) == 1

    page = approver.go(f"/agreements/{aid}/recalls")
    page.click("#terminate")
    page.check("#confirm input[type=checkbox]")
    confirm(approver, "terminate")
    assert "#recall-" in page.url or "/recalls" in page.url
    seen(approver, "terminated")
    page.reload()
    recalls = office.get(f"/api/v1/agreements/{aid}/recalls", "lead").get_json()["recalls"]
    assert [r["kind"] for r in recalls].count("termination") == 1

    # The lead confirms one return as returned and another as destroyed.
    page = lead.login()
    page = lead.go(f"/agreements/{aid}/recalls")
    seen(lead, "to-confirm")
    outcomes = iter(["returned", "destroyed"])
    confirmed = {}
    for _ in range(2):
        link = page.locator("tr[id^=confirmation-] a.button").first
        cid = int(re.search(r"/confirmations/(\d+)", link.get_attribute("href")).group(1))
        settle_click(page, link)
        # The page asks which of the two happened (not "the return" of an item destroyed).
        title = page.locator("h1").inner_text()
        assert "归还" in title and "销毁" in title, title
        outcome = next(outcomes)
        page.select_option("#ask-outcome", outcome)
        confirm(lead, f"confirm-{outcome}")
        said = flashed(page)
        assert ("已确认销毁" if outcome == "destroyed" else "已确认归还") in said, said
        confirmed[cid] = outcome
        page = lead.go(f"/agreements/{aid}/recalls")
    # A confirmation asked by the recall is also a row of the termination's manifest: the same
    # real state on both cards.
    for cid, outcome in confirmed.items():
        cells = page.locator(f"#confirmation-{cid} td:nth-child(3)").all_inner_texts()
        assert cells, cid
        for cell in cells:
            assert ("已销毁" if outcome == "destroyed" else "已归还") in cell, cell
            assert "待" not in cell, cell
    left = page.locator("tr[id^=confirmation-] a.button").count()
    assert left == 0, left
    assert "解除" in page.locator("main").inner_text()
    seen(lead, "confirmed")


# Part 6: accounts.


def test_accounts_disable_enable_unlock_and_own_password(office, people):
    office.user("sysadm", "system_admin")
    office.user("wang", "vendor_staff")
    admin = people("sysadm", "zh-CN")
    staff = people("wang", "zh-CN")
    page = admin.login()
    page.click("nav.side >> text=用户与角色")
    seen(admin, "users")
    page.click("#user-wang a[href$='/disable']")
    confirm(admin, "disable")
    assert "已停用" in page.locator("#user-wang").inner_text() or "停用" in flashed(page)
    seen(admin, "disabled")
    page = staff.login()
    assert "/login" in page.url
    seen(staff, "refused-disabled")
    page = admin.go("/admin/users")
    page.click("#user-wang a[href$='/enable']")
    confirm(admin, "enable")
    assert page.locator("#user-wang a[href$='/disable']").count() == 1
    page = staff.login()
    assert "/login" not in page.url

    # Five wrong passwords lock the account; the lockout is said in Chinese.
    locked = people("wang", "zh-CN")
    for _ in range(6):
        page = locked.login("wrong password!")
    said = page.locator(".error").first.inner_text()
    assert not re.search(r"[A-Za-z]{4,} [A-Za-z]{4,}", said), said
    seen(locked, "locked")
    page = admin.go("/admin/users")
    page.click("#user-wang a[href$='/unlock']")
    confirm(admin, "unlock")
    seen(admin, "unlocked")
    page = locked.login()
    assert "/login" not in page.url

    # Own password.
    page = locked.go("/account/password")
    page.fill("#current", PASSWORD)
    page.fill("#password", "short")
    page.fill("#again", "short")
    page.click("form button[type=submit].primary")
    errors = " ".join(page.locator(".error").all_inner_texts())
    assert errors and not re.search(r"[A-Za-z]{4,}", errors), errors
    seen(locked, "password-too-short")
    new = "新的口令-correct horse 42"
    page.fill("#current", PASSWORD)
    page.fill("#password", new)
    page.fill("#again", new)
    page.click("form button[type=submit].primary")
    seen(locked, "password-changed")
    fresh = people("wang", "zh-CN")
    page = fresh.login(PASSWORD)
    assert "/login" in page.url
    page = fresh.login(new)
    assert "/login" not in page.url


# The key steps once in English.


def test_the_key_steps_in_english(office, people):
    aid, design, _other = _agreement(office)
    lead, handler, approver = people("lead"), people("handler"), people("approver")
    lead.login()
    page = lead.go(f"/agreements/{aid}/requests")
    page.fill("#third_party", "Changzhou Information Security Test Centre")
    page.fill("#purpose", "Annual security assessment")
    page.select_option("#form", "view")
    page.fill("#starts_on", office.day(0))
    page.fill("#ends_on", office.day(10))
    page.check("#item_ids-0")
    page.click("form.grid button[type=submit]")
    rid = int(page.url.rsplit("/", 1)[1])
    page.click("text=Submit for review")
    confirm(lead, "submit-en")
    assert "submitted" in page.locator("h1 .state").inner_text()
    page = handler.login()
    page.click("nav.side >> text=Review queue")
    page.click(f"#request-{rid} a")
    page.click("text=Pass the review")
    page.fill("#ask-opinion", "Scope is proportionate.")
    confirm(handler, "review-en")
    page = approver.login()
    page = approver.go(f"/requests/{rid}")
    page.click("text=Approve and seal")
    page.fill("#ask-password", "wrong password!")
    confirm(approver, "seal-wrong-en")
    assert page.locator("#confirm-error").inner_text() == (
        "The password is wrong: nothing was sealed."
    )
    page.fill("#ask-password", PASSWORD)
    confirm(approver, "seal-en")
    assert "approved" in page.locator("h1 .state").inner_text()
    page = lead.go(f"/requests/{rid}")
    page.click("text=Hand a grant to the third party")
    confirm(lead, "grant-en")
    token = page.locator("#once").input_value()
    seen(lead, "token-en")
    holder = people("third-party")
    page = holder.go("/shared")
    page.fill("#token", token)
    page.click("#token-form button[type=submit]")
    assert "end of day" in page.locator("#window").inner_text()
    seen(holder, "shared-en")


# Finding things (issue 12, part 5): search on the lists, the trail by request and grant, names
# instead of ids.


def test_finding_a_request_and_its_trail_by_name(office, people):
    aid, design, other = _agreement(office)
    found = approved_request(office, aid, [design], third_party=THIRD_PARTY, purpose=PURPOSE)
    approved_request(office, aid, [other], third_party="某咨询公司", purpose="咨询")
    grant = issue_grant(office, found["id"])
    office.get(
        f"/api/v1/shared/items/{design}", headers={"Authorization": f"Bearer {grant['token']}"}
    )
    lead = people("lead", "zh-CN")
    lead.login()
    # The lead's list, searched by third party and by item.
    page = lead.go(f"/agreements/{aid}/requests?third_party=测评中心")
    assert page.locator("table.requests tbody tr").count() == 1
    assert page.locator(f"#request-{found['id']}").count() == 1
    page = lead.go(f"/agreements/{aid}/requests?item={other}")
    assert page.locator(f"#request-{found['id']}").count() == 0
    seen(lead, "requests-by-item")
    # The auditor follows the request and its grant; the trail names the holder and the item.
    auditor = people("audit", "zh-CN")
    auditor.login()
    for query in (f"request={found['id']}", f"grant={grant['grant_id']}"):
        page = auditor.go(f"/audit?{query}")
        rows = page.locator("table.trail tbody tr")
        assert rows.count() >= 1, query
        read = rows.filter(has_text="系统总体设计说明书").filter(has_text=THIRD_PARTY)
        assert read.count() >= 1, query
        assert "某咨询公司" not in page.locator("table.trail").inner_text()
        seen(auditor, f"trail-{query.split('=')[0]}")
