"""Issue 13 part 6: a page costs one decision. A dashboard, the review queue and a request list make
one audited decision for the page and fetch their rows with set-based queries, so what one view
writes to the trail and the statements it runs do not grow with the data it shows."""

from __future__ import annotations

import re
import threading
from collections import Counter
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from govern import create_app
from govern.audit import AuditEntry
from govern.services import warnings
from tests.conftest import VENDOR, Api, as_operator
from tests.disclosure_flow import file_request, issue_grant, move, window
from tests.pages import Reader, text

OTHER = "另一家软件公司"
SHA = "a" * 64
# Every role lands on its own dashboard.
ROLES = {
    "lead": "vendor_lead",
    "staff": "vendor_staff",
    "handler": "office_handler",
    "approver": "office_approver",
    "audit": "auditor",
    "sec": "security_admin",
    "sysadm": "system_admin",
}


@pytest.fixture
def cast(api):
    for name, role in ROLES.items():
        api.user(name, role)
    # Another vendor with its own lead: its agreements and requests must never be counted for ours.
    api.user("lead-b", "vendor_lead", org=OTHER)
    return api


def _nda(api, aid: int, who: str, as_: str = "lead") -> None:
    span = window(api, -10, 20)
    body = {"username": who, "signed_on": span["starts_on"], "expires_on": span["ends_on"]}
    made = api.post(f"/api/v1/agreements/{aid}/ndas", as_, json={**body, "document_sha256": SHA})
    assert made.status_code == 201, made.get_json()


def _subcontractor(api, aid: int, item_id: int) -> None:
    dsa = window(api, -10, 20)
    body = {
        "name": "统计云服务",
        "service": "statistics",
        "dsa_signed_on": dsa["starts_on"],
        "dsa_expires_on": dsa["ends_on"],
        "dsa_sha256": SHA,
        "purpose": "monthly report",
        "item_ids": [item_id],
        "whole_items": [item_id],
        "fields": [],
        "until": window(api, 0, 8)["ends_on"],
    }
    made = api.post(f"/api/v1/agreements/{aid}/subcontractors", "lead", json=body)
    assert made.status_code == 201, made.get_json()


# The states the requests of one agreement go through, in turn: every kind of row a dashboard counts.
STEPS = ["submitted", "reviewed", "approved", "draft", "denied"]


def _request(api, aid: int, item_id: int, state: str, lead: str = "lead") -> int:
    rid = file_request(api, aid, [item_id], as_=lead, **window(api, 0, 20))["id"]
    if state == "draft":
        return rid
    move(api, rid, "submit", lead)
    if state == "submitted":
        return rid
    move(api, rid, "review", "handler")
    if state == "reviewed":
        return rid
    if state == "denied":
        move(api, rid, "deny", "approver", json={"reason": "不必要"})
        return rid
    move(api, rid, "approve", "approver")
    issue_grant(api, rid, as_=lead)
    return rid


def fill(api, aid: int, requests: int, start: int = 0) -> None:
    """``requests`` more requests in agreement ``aid``, in turn through STEPS from ``start``."""
    item = api.item(aid, title="设计")["id"]
    for k in range(start, start + requests):
        _request(api, aid, item, STEPS[k % len(STEPS)])


def grow(api, agreements: int, requests: int) -> list[int]:
    """``agreements`` agreements of our vendor, each with ``requests`` requests in turn through
    STEPS, a staff NDA and a subcontractor ending soon, and a recall waiting for a confirmation;
    the first time, also one agreement of another vendor with a request of its own."""
    made = []
    for n in range(agreements):
        aid = api.agreement(title=f"保密协议 {n}", signed_on=api.day(-60))["id"]
        item = api.item(aid, title=f"设计 {n}")["id"]
        held = api.item(aid, title=f"数据 {n}")["id"]
        _nda(api, aid, "staff")
        ntk = {"username": "staff", "item_ids": [held], "reason": "maintenance"}
        assert api.post(f"/api/v1/agreements/{aid}/need-to-know", "lead", json=ntk).status_code
        _subcontractor(api, aid, item)
        fill(api, aid, requests)
        recalled = api.post(
            f"/api/v1/agreements/{aid}/recalls",
            "approver",
            json={"item_ids": [held], "reason": "no longer needed"},
        )
        assert recalled.status_code == 201, recalled.get_json()
        made.append(aid)
    return made


def other_vendor(api) -> int:
    other = api.agreement(title="B 的协议", vendor=OTHER)["id"]
    _request(api, other, api.item(other)["id"], "submitted", lead="lead-b")
    return other


@contextmanager
def counted(runtime):
    """The SQL statements the app sends for the request while the block runs (the real engine,
    every connection), from the calling thread only: the test client serves the request in it,
    and the trail's integrator thread works after the response, not for the page."""
    seen: list[str] = []
    thread = threading.get_ident()

    def count(_conn, _cursor, statement, _params, _context, _many):
        if threading.get_ident() == thread:
            seen.append(statement)

    sa.event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", count)


def _last_seq(runtime) -> int:
    """The trail's last seq, once what is queued has joined it (as every read of it does)."""
    with as_operator(runtime) as ctx:
        ctx.settle_trail()
    with runtime.sessions() as db:
        return db.scalar(sa.select(sa.func.max(AuditEntry.seq))) or 0


def cost(app, reader: Reader, path: str) -> tuple[int, int, str]:
    """One view of ``path``: the trail entries it wrote, the statements it ran, the page. The page
    is viewed once before, so that what is loaded once per process is not counted."""
    runtime = app.extensions["govern"]
    assert reader.get(path).status_code == 200
    before = _last_seq(runtime)
    with counted(runtime) as statements:
        shown = reader.get(path)
    assert shown.status_code == 200, text(shown)[:300]
    return _last_seq(runtime) - before, len(statements), text(shown)


def _views(app, first: int) -> dict[tuple[str, str], tuple[int, int, str]]:
    """Every role's dashboard; the office's queue; the lead's requests of one agreement."""
    pages = [(name, "/") for name in ROLES]
    pages += [("handler", "/queue"), ("approver", "/queue"), ("lead", "/queue?state=draft")]
    pages += [
        ("lead", f"/agreements/{first}/requests"),
        ("handler", f"/agreements/{first}/requests"),
    ]
    return {(name, path): cost(app, Reader(app).login(name), path) for name, path in pages}


# The statements one view may run (the session's account, the policy version, the page's
# queries, the trail append): a ceiling, so that a query per row cannot creep back.
MOST_STATEMENTS = 16
# A request list also lists the agreement's items for the filing form, and reads the agreement:
# three decisions, however many requests it shows.
REQUEST_LIST_ENTRIES = 3


def test_a_page_is_one_decision_and_the_same_statements_whatever_the_data(cast, app):
    first = grow(cast, 1, 1)[0]
    other_vendor(cast)
    small = _views(app, first)
    # From 1 agreement x 1 request to 4 agreements x 5 requests (with their grants, NDAs,
    # subcontractors, recalls and notices).
    fill(cast, first, 4, start=1)
    grow(cast, 3, 5)
    large = _views(app, first)
    for (name, path), (entries, statements, _page) in large.items():
        before = small[name, path]
        # An empty list names nobody, so it skips the one query that reads people's names.
        empty = '<tr id="request-' not in before[2] and '<tr id="request-' in _page
        assert (entries, statements) == (before[0], before[1] + empty), (name, path, before[:2])
        assert statements <= MOST_STATEMENTS, (name, path)
        expected = REQUEST_LIST_ENTRIES if path.endswith("/requests") else 1
        assert entries == expected, (name, path)
    # The pages do show the larger data.
    lead = large["lead", "/"][2]
    assert len(re.findall(r'id="open-returns-\d+"', lead)) == 4
    assert _tile(lead, "submitted") == 4 and _tile(lead, "approved") == 4
    assert len(re.findall(r'<tr id="request-\d+">', large["handler", "/queue"][2])) == 9
    assert len(re.findall(r'<tr id="request-\d+">', large["lead", "/queue?state=draft"][2])) == 4


def _tile(page: str, state: str) -> int | None:
    found = re.search(rf'id="tile-{state}"><strong>(\d+)</strong>', page)
    return int(found.group(1)) if found else None


def _decision(api, actor: str) -> dict:
    return api.audit_entries(actor=actor, action="agreement:list")[-1]


def test_the_one_decision_names_every_rule_and_the_organisation(cast, app):
    grow(cast, 1, 2)
    other_vendor(cast)
    cost(app, Reader(app).login("lead"), "/")
    entry = _decision(cast, "lead")
    assert entry["decision"] == "allow" and entry["target"] == "agreement:*"
    assert entry["rule"] == "p, vendor_lead, *, agreement, list"
    details = entry["details"]
    assert details["page"] == "dashboard" and details["organisation"] == VENDOR
    assert details["shown"] == {
        f"{kind}:list": f"p, vendor_lead, *, {kind}, list"
        for kind in ("disclosure", "grant", "nda", "subcontractor", "recall", "outbox")
    }
    cost(app, Reader(app).login("handler"), "/")
    assert _decision(cast, "handler")["details"]["shown"] == {
        "disclosure:list": "p, office_handler, *, disclosure, list",
        "outbox:list": "p, office_handler, *, outbox, list",
    }


def test_a_vendor_counts_only_its_own_and_the_office_counts_every_vendor(cast, app):
    grow(cast, 1, 1)
    other = other_vendor(cast)
    lead = text(Reader(app).login("lead").get("/"))
    assert _tile(lead, "submitted") == 1 and "B 的协议" not in lead
    assert f"/agreements/{other}" not in lead
    theirs = text(Reader(app).login("lead-b").get("/"))
    assert _tile(theirs, "submitted") == 1 and "保密协议 0" not in theirs
    assert 'id="open-returns-' not in theirs and 'id="ending"' not in theirs
    handler = text(Reader(app).login("handler").get("/"))
    assert re.search(r'id="tile-submitted"><strong>2</strong>', handler)
    # The queue too: the other vendor's lead finds its own request there, and nothing of ours.
    queue = text(Reader(app).login("lead-b").get("/queue"))
    assert len(re.findall(r'<tr id="request-\d+">', queue)) == 1 and "保密协议 0" not in queue
    assert (
        len(re.findall(r'<tr id="request-\d+">', text(Reader(app).login("handler").get("/queue"))))
        == 2
    )


def _rule_id(api, values: list[str]) -> int:
    rules = api.get("/api/v1/policies", "sec").get_json()["rules"]
    return next(r["id"] for r in rules if r["values"] == values)


def test_a_part_whose_rule_is_removed_is_not_shown(cast, app):
    grow(cast, 1, 3)
    lead = Reader(app).login("lead")
    assert "统计云服务" in text(lead.get("/"))
    gone = _rule_id(cast, ["vendor_lead", "*", "subcontractor", "list"])
    assert cast.delete(f"/api/v1/policies/{gone}", "sec").status_code == 200
    page = text(lead.get("/"))
    assert "统计云服务" not in page and _tile(page, "approved") == 1
    shown = _decision(cast, "lead")["details"]["shown"]
    assert shown["subcontractor:list"] == "no matching policy rule"


def test_a_role_in_one_agreement_shows_that_agreement_only(cast, app):
    """A role held in one agreement's domain only: the page is decided once, over that domain."""
    first, second = grow(cast, 2, 1)
    cast.user("wei", None)
    role = {"ptype": "g", "values": ["wei", "office_handler", f"agreement:{first}"]}
    assert cast.post("/api/v1/policies", "sec", json=role).status_code == 201
    entries, _statements, page = cost(app, Reader(app).login("wei"), "/")
    assert entries == 1 and _tile(page, "submitted") == 1
    assert f"/agreements/{first}" in page and f'/agreements/{second}"' not in page
    entry = _decision(cast, "wei")
    assert entry["rule"] == f"p, office_handler, *, agreement, list in agreement:{first}"
    assert entry["details"]["agreements"] == [first]


def test_tiles_and_notices_lead_to_their_object(cast, app):
    aid = grow(cast, 1, 2)[0]
    handler = Reader(app).login("handler")
    page = text(handler.get("/"))
    tile = re.search(r'<a href="([^"]+)" id="tile-reviewed">', page).group(1)
    assert tile == "/queue?state=reviewed"
    queue = text(handler.get(tile))
    assert 'id="queue-filter"' in queue
    assert len(re.findall(r'<tr id="request-\d+">', queue)) == 1
    assert len(re.findall(r'<tr id="request-\d+">', text(handler.get("/queue")))) == 2
    assert handler.get("/queue?state=nonsense").status_code == 400
    # A notice of a request waiting leads to that request's page.
    notices = re.search(r'id="panel-notices">(.*?)</section>', page, re.S).group(1)
    links = re.findall(r'<a href="(/requests/\d+)">', notices)
    assert links and handler.get(links[0]).status_code == 200
    lead = text(Reader(app).login("lead").get("/"))
    assert re.search(
        rf'<a href="/agreements/{aid}/requests\?state=submitted" id="tile-submitted">', lead
    )
    assert f'href="/agreements/{aid}/recalls" id="open-returns-{aid}"' in lead
    recall_notice = re.search(rf'<a href="(/agreements/{aid}/recalls#recall-\d+)">', lead)
    assert recall_notice


def test_the_administrators_dashboards_count_their_tasks_under_one_decision(cast, app):
    made = cast.post("/api/v1/users", "sysadm", json={"username": "wang", "role": "auditor"})
    assert made.status_code == 201, made.get_json()
    sec = text(Reader(app).login("sec").get("/"))
    assert re.search(r'href="/admin/confirmations" id="tile-confirmations"><strong>1</strong>', sec)
    entry = _decision_of(cast, "sec", "user:confirm")
    assert entry["rule"] == "p, security_admin, *, user, confirm"
    staff = next(
        u["id"]
        for u in cast.get("/api/v1/users", "sysadm").get_json()["users"]
        if u["username"] == "staff"
    )
    assert cast.post(f"/api/v1/users/{staff}/disable", "sysadm").status_code == 200
    sysadm = text(Reader(app).login("sysadm").get("/"))
    assert re.search(r'id="tile-disabled"><strong>1</strong>', sysadm)
    assert _decision_of(cast, "sysadm", "user:list")["details"] == {"page": "dashboard"}


def _decision_of(api, actor: str, action: str) -> dict:
    return api.audit_entries(actor=actor, action=action)[-1]


def test_the_counts_by_state_say_what_each_request_says(cast, app, settings_overrides):
    """The dashboard counts requests by their state as of now in SQL; each request's page says
    it in Python. With no day to decide, every submitted or reviewed request has expired: both
    must say so, alike."""
    aid = grow(cast, 1, 5)[0]
    hurried = create_app({**settings_overrides, "request_expiry_days": 0})
    try:
        lead = Reader(hurried).login("lead")
        page = text(lead.get("/"))
        states = Counter(
            r["state"]
            for r in Api(hurried.test_client(), hurried.extensions["govern"])
            .get(f"/api/v1/agreements/{aid}/disclosures", "lead")
            .get_json()["disclosures"]
        )
        assert states == {"expired": 2, "approved": 1, "draft": 1, "denied": 1}
        for state, n in states.items():
            assert _tile(page, state) == n, state
        assert _tile(page, "submitted") is None and _tile(page, "reviewed") is None
        queue = text(Reader(hurried).login("handler").get("/queue"))
        assert "Nothing is waiting." in queue
    finally:
        hurried.extensions["govern"].engine.dispose()


def test_every_notice_leads_to_a_page_its_reader_may_open(cast, app, runtime):
    """After the daily sweep of warnings (NDA, subcontractor, grant, window ends) and the
    notices of requests and recalls, each notice on a dashboard links to its object's page."""
    grow(cast, 1, 5)
    with as_operator(runtime) as ctx:
        assert warnings.sweep_warnings(ctx, ctx.today()) > 0
        ctx.commit()
    seen = set()
    for name in ("lead", "approver", "handler"):
        reader = Reader(app).login(name)
        page = text(reader.get("/"))
        notices = re.search(r'id="panel-notices">(.*?)</section>', page, re.S).group(1)
        rows = re.findall(r"<tr><td>.*?</td><td>(.*?)</td></tr>", notices, re.S)
        assert rows, name
        for row in rows:
            href = re.fullmatch(r'<a href="([^"]+)">[^<]+</a>', row)
            assert href, (name, row)
            assert reader.get(href.group(1).split("#")[0]).status_code == 200, (name, href)
            seen.add(re.sub(r"\d+", "N", href.group(1)))
    assert {
        "/requests/N",
        "/agreements/N/staff#nda-N",
        "/agreements/N/subcontractors#sub-N",
        "/agreements/N/recalls#recall-N",
    } <= seen, seen


def test_the_api_lists_requests_in_the_same_statements_whatever_their_number(cast, app):
    first = grow(cast, 1, 1)[0]
    path = f"/api/v1/agreements/{first}/disclosures"
    runtime = app.extensions["govern"]

    def statements() -> int:
        assert cast.get(path, "lead").status_code == 200
        with counted(runtime) as seen:
            listed = cast.get(path, "lead").get_json()["disclosures"]
        return len(seen), len(listed)

    few = statements()
    fill(cast, first, 9, start=1)
    many = statements()
    assert (few[1], many[1]) == (1, 10) and few[0] == many[0]
