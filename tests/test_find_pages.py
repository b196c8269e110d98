"""Issue 12 parts 4 and 5: pages show only what the reader's role may do (the decision point is
asked, without writing to the trail), and every list can be paged and searched."""

from __future__ import annotations

import json
import re
import threading

import sqlalchemy as sa

from govern.models import User
from tests.disclosure_flow import approved_request, file_request, issue_grant, move, shared
from tests.pages import Reader, text
from tests.test_subcontractor_approval import _body, _file, _items
from tests.test_vendor import nda as register_nda


def _agreement_with_item(office):
    agreement = office.agreement(signed_on=office.day(-30))
    item = office.item(agreement["id"], title="platform design")
    return agreement["id"], item["id"]


def _trail_size(office) -> int:
    return len(office.audit_entries())


def test_a_tab_is_drawn_only_for_a_reader_its_page_would_let_in(office, app):
    aid, _item = _agreement_with_item(office)
    staff_tab = f'href="/agreements/{aid}/staff"'
    for who, drawn in [("handler", False), ("approver", True), ("lead", True), ("audit", True)]:
        reader = Reader(app).login(who)
        page = reader.get(f"/agreements/{aid}")
        assert page.status_code == 200
        assert (staff_tab in text(page)) is drawn, who
        # The tab says what its page answers: it leads somewhere, never to a 403.
        assert (reader.get(f"/agreements/{aid}/staff").status_code == 200) is drawn, who


def test_drawing_a_page_writes_no_trail_entry_per_link(office, app):
    aid, _item = _agreement_with_item(office)
    for n in range(5):
        office.item(aid, title=f"item {n}")
    reader = Reader(app).login("audit")
    reader.get(f"/agreements/{aid}")
    before = _trail_size(office)
    reader.get(f"/agreements/{aid}")
    entries = office.audit_entries()[before:]
    # The page's own decisions (agreement, clock, items), none for any tab or "open" link.
    assert not [e for e in entries if e["action"] == "item:read"]
    assert len(entries) <= 4


def _ndas_and_need_to_know(office, aid, item_id):
    response = office.post(
        f"/api/v1/agreements/{aid}/ndas",
        "lead",
        json={
            "username": "staff",
            "signed_on": office.day(-1),
            "expires_on": office.day(100),
            "document_sha256": "a" * 64,
        },
    )
    assert response.status_code == 201, response.get_json()
    response = office.post(
        f"/api/v1/agreements/{aid}/need-to-know",
        "lead",
        json={"username": "staff", "item_ids": [item_id], "reason": "maintenance"},
    )
    assert response.status_code == 201, response.get_json()


def test_open_links_only_on_items_the_reader_may_open(office, app):
    aid, item_id = _agreement_with_item(office)
    other = office.item(aid, title="tender")["id"]
    open_link = 'href="/items/{}/content"'
    # The auditor lists items but never reads content: no "open" link at all.
    auditor = text(Reader(app).login("audit").get(f"/agreements/{aid}"))
    assert open_link.format(item_id) not in auditor and open_link.format(other) not in auditor
    approver = text(Reader(app).login("approver").get(f"/agreements/{aid}"))
    assert open_link.format(item_id) in approver and open_link.format(other) in approver

    # Staff without an NDA: told so, and no link.
    staff = Reader(app).login("staff")
    page = text(staff.get(f"/agreements/{aid}"))
    assert 'id="standing"' in page and "no valid NDA" in page
    assert open_link.format(item_id) not in page

    # With an NDA and need-to-know for one item: that one link, which works; not the other.
    _ndas_and_need_to_know(office, aid, item_id)
    page = text(staff.get(f"/agreements/{aid}"))
    assert "Your NDA is valid today" in page
    assert open_link.format(item_id) in page and open_link.format(other) not in page
    assert staff.get(f"/items/{item_id}/content").status_code == 200
    assert staff.get(f"/items/{other}/content").status_code == 403


def test_a_lapsed_nda_hides_the_link_and_says_why(office, app):
    aid, item_id = _agreement_with_item(office)
    response = office.post(
        f"/api/v1/agreements/{aid}/ndas",
        "lead",
        json={
            "username": "staff",
            "signed_on": office.day(-20),
            "expires_on": office.day(-2),
            "document_sha256": "b" * 64,
        },
    )
    assert response.status_code == 201
    page = text(Reader(app).login("staff").get(f"/agreements/{aid}"))
    assert "no valid NDA" in page and "lapsed" in page
    assert f'href="/items/{item_id}/content"' not in page


def test_another_vendors_staff_sees_nothing_of_this_agreement(office, app):
    aid, _item = _agreement_with_item(office)
    office.user("rival", "vendor_staff", org="Rival Ltd")
    assert Reader(app).login("rival").get(f"/agreements/{aid}").status_code == 404


def test_the_approver_picks_a_breachs_entries_from_those_about_the_agreement(office, app):
    aid, item_id = _agreement_with_item(office)
    other_aid, other_item = _agreement_with_item(office)
    office.get(f"/api/v1/items/{item_id}/content", "staff")
    office.get(f"/api/v1/items/{other_item}/content", "staff")
    denied = office.audit_entries(action="item:read", decision="deny")
    here, there = denied[-2]["seq"], denied[-1]["seq"]
    login = office.audit_entries(action="auth:token")[-1]["seq"]
    approver = Reader(app).login("approver")
    path = f"/agreements/{aid}/breaches"
    page = text(approver.get(path))
    # The entries about this agreement, with names: the item's title, no other agreement's.
    assert f'name="entries" value="{here}"' in page
    assert f'name="entries" value="{there}"' not in page
    assert f'name="entries" value="{login}"' not in page
    assert "platform design" in page and "item " + str(item_id) in page
    body = {
        "description": "read without an NDA",
        "responsible_kind": "staff",
        "responsible": "staff",
    }
    # An entry of another agreement, or of the rest of the trail, cannot be named.
    for seq in (there, login):
        refused = approver.submit(path, {**body, "audit_seqs": str(seq)})
        assert refused.status_code == 400, seq
    # Its confirmation page first (nothing recorded yet), which posts it with confirmed=y.
    assert approver.submit(path, {**body, "entries": str(here)}).status_code == 200
    done = approver.submit(path, {**body, "audit_seqs": str(here), "confirmed": "y"})
    assert done.status_code == 303
    breaches = office.get(f"/api/v1/agreements/{aid}/breaches", "approver").get_json()
    assert breaches["breaches"][0]["audit_seqs"] == [here]


def test_the_breach_pickers_older_page_and_its_bad_cursor(office, app):
    aid, item_id = _agreement_with_item(office)
    for _ in range(55):
        office.get(f"/api/v1/items/{item_id}/content", "staff")
    approver = Reader(app).login("approver")
    path = f"/agreements/{aid}/breaches"
    first = text(approver.get(path))
    older = re.search(r'href="([^"]*before=(\d+))"', first)
    assert older, "no link to older entries"
    second = text(approver.get(older.group(1).replace("&amp;", "&")))
    shown = re.findall(r'name="entries" value="(\d+)"', second)
    assert shown and all(int(s) < int(older.group(2)) for s in shown)
    for bad in ("x", "-1", "9" * 30):
        assert approver.get(f"{path}?before={bad}").status_code == 400


def test_a_picked_entry_that_is_no_number_is_refused_not_a_bug(office, app):
    aid, _item = _agreement_with_item(office)
    approver = Reader(app).login("approver")
    body = {"description": "x", "responsible_kind": "staff", "responsible": "staff"}
    for bad in ("abc", "9" * 40, "-3"):
        response = approver.submit(f"/agreements/{aid}/breaches", {**body, "entries": bad})
        assert response.status_code == 400, bad


# Part 5: paging and search.


def _requests(office, aid, item_ids, n, **fields):
    return [
        file_request(office, aid, item_ids, third_party=f"third party {k:02d}", **fields)["id"]
        for k in range(1, n + 1)
    ]


def _row_ids(page: str, prefix: str = "request") -> list[int]:
    return [int(x) for x in re.findall(rf'<tr id="{prefix}-(\d+)"', page)]


def test_requests_page_two_shows_the_21st_and_a_search_narrows(office, app):
    aid, item_id = _agreement_with_item(office)
    other = office.item(aid, title="tender")["id"]
    ids = _requests(office, aid, [item_id], 21)
    tender = file_request(office, aid, [other], third_party="江苏省大数据中心")["id"]
    lead = Reader(app).login("lead")
    path = f"/agreements/{aid}/requests"
    first = text(lead.get(path))
    assert _row_ids(first) == ids[:20]
    assert "page 1 of 2" in first and "?page=2" in first
    second = text(lead.get(f"{path}?page=2"))
    assert _row_ids(second) == [ids[20], tender]
    # Third party: any part of its name, in any case; item: the requests naming it.
    assert _row_ids(text(lead.get(f"{path}?third_party=PARTY 07"))) == [ids[6]]
    assert _row_ids(text(lead.get(f"{path}?third_party=大数据"))) == [tender]
    assert _row_ids(text(lead.get(f"{path}?item={other}"))) == [tender]
    assert _row_ids(text(lead.get(f"{path}?third_party=%25"))) == []
    # The state filter and the search keep each other across pages.
    narrowed = text(lead.get(f"{path}?state=draft&third_party=party&per_page=5"))
    assert _row_ids(narrowed) == ids[:5]
    assert "page=2" in narrowed and "third_party=party" in narrowed and "state=draft" in narrowed


def test_bad_paging_and_search_arguments_are_a_400(office, app):
    aid, _item = _agreement_with_item(office)
    lead = Reader(app).login("lead")
    path = f"/agreements/{aid}/requests"
    for query in (
        "page=0",
        "page=-1",
        "page=x",
        "page=" + "9" * 30,
        "per_page=0",
        "per_page=100000",
        "item=abc",
        "item=" + "9" * 20,
        "state=nonsense",
        "third_party=" + "x" * 400,
    ):
        assert lead.get(f"{path}?{query}").status_code == 400, query
    # A page past the end is an empty page, not an error.
    assert lead.get(f"{path}?page=99").status_code == 200


def test_the_queue_pages_past_twenty_and_searches(office, app):
    aid, item_id = _agreement_with_item(office)
    ids = _requests(office, aid, [item_id], 22)
    for rid in ids:
        move(office, rid, "submit", "lead")
    handler = Reader(app).login("handler")
    first = text(handler.get("/queue"))
    assert len(_row_ids(first)) == 20
    second = text(handler.get("/queue?page=2"))
    assert _row_ids(second) == ids[20:]
    assert _row_ids(text(handler.get("/queue?third_party=party 22"))) == [ids[21]]
    assert handler.get("/queue?page=abc").status_code == 400


def _rule_ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="rule-(\d+)"', page)]


def test_policies_are_paged_searched_and_the_filter_survives_a_removal(office, app):
    office.user("sec", "security_admin")
    sec = Reader(app).login("sec")
    everything = text(sec.get("/admin/policies"))
    assert len(_rule_ids(everything)) == 50 and "?page=2" in everything
    # Searched: rules of one role, containing a word, of one kind.
    path = "/admin/policies?who=auditor&q=SUBcontractor"
    shown = text(sec.get(path))
    rows = re.findall(r'<tr id="rule-\d+">.*?</tr>', shown, re.S)
    assert rows and all("auditor, *, subcontractor," in r for r in rows)
    assert len(rows) == 2  # list, report
    accounts = text(sec.get("/admin/policies?ptype=g&who=handler"))
    assert len(_rule_ids(accounts)) == 1 and "office_handler" in accounts
    # Removing a rule leads back to the same filtered list.
    first = _rule_ids(shown)[0]
    kept = "who=auditor&q=SUBcontractor"
    assert f'href="/admin/policies/{first}/remove?{kept.replace("&", "&amp;")}"' in shown
    confirm = f"/admin/policies/{first}/remove?{kept}"
    removed = sec.submit(confirm, {"who": "auditor", "q": "SUBcontractor"}, form_on=confirm)
    assert removed.status_code == 303
    assert removed.headers["Location"].endswith(f"/admin/policies?{kept}")
    after = text(sec.get(removed.headers["Location"]))
    assert first not in _rule_ids(after) and len(_rule_ids(after)) == 1
    for bad in ("ptype=x", "page=0", "who=" + "a" * 300, "per_page=x"):
        assert sec.get(f"/admin/policies?{bad}").status_code == 400, bad


def test_users_are_paged_and_searched(office, app):
    office.user("sysadm", "system_admin")
    for n in range(1, 22):
        office.user(f"clerk{n:02d}", "office_handler")
    admin = Reader(app).login("sysadm")
    first = text(admin.get("/admin/users"))
    ids = re.findall(r'<tr id="user-([^"]+)"', first)
    assert len(ids) == 20 and ids[0] == "approver"
    second = re.findall(r'<tr id="user-([^"]+)"', text(admin.get("/admin/users?page=2")))
    assert second == ["clerk15", "clerk16", "clerk17", "clerk18", "clerk19", "clerk20", "clerk21"]
    found = re.findall(r'<tr id="user-([^"]+)"', text(admin.get("/admin/users?q=CLERK2")))
    assert found == ["clerk20", "clerk21"]
    assert admin.get("/admin/users?page=x").status_code == 400


# Audit filters by item, request, grant and third party; names instead of ids.


def _trail_setup(office):
    aid, item_id = _agreement_with_item(office)
    other = office.item(aid, title="tender")["id"]
    approved = approved_request(office, aid, [item_id], third_party="江苏省大数据中心")
    other_request = file_request(office, aid, [other], third_party="Wuxi archive")["id"]
    grant = issue_grant(office, approved["id"])
    assert shared(office, item_id, grant["token"]).status_code == 200
    office.get(f"/api/v1/items/{other}/content", "staff")
    return aid, item_id, other, approved["id"], other_request, grant["grant_id"]


def _api_entries(office, query: str) -> list[dict]:
    response = office.get(f"/api/v1/audit?{query}", "audit")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entries"]


def test_audit_api_filters_by_item_request_grant_and_third_party(office):
    _aid, item_id, other, request_id, other_request, grant_id = _trail_setup(office)
    by_item = _api_entries(office, f"item={other}")
    assert by_item and {e["target"] for e in by_item} == {f"item:{other}"}
    by_request = _api_entries(office, f"request={request_id}")
    targets = {e["target"] for e in by_request}
    # The request's own steps, its grant, and what the grant's holder did with it.
    assert f"disclosure:{request_id}" in targets and f"grant:{grant_id}" in targets
    assert any(
        e["actor"] == f"grant:{grant_id}" and e["action"] == "shared:read" for e in by_request
    )
    assert f"disclosure:{other_request}" not in targets
    by_grant = _api_entries(office, f"grant={grant_id}")
    assert by_grant and all(f"grant:{grant_id}" in (e["actor"], e["target"]) for e in by_grant)
    by_party = _api_entries(office, "third_party=大数据")
    assert {e["target"] for e in by_party} == targets
    assert _api_entries(office, "third_party=nobody at all") == []
    # Filters narrow together, and keep the SPEC's own.
    reads = _api_entries(office, f"request={request_id}&action=shared:read&decision=allow")
    assert reads and all(e["action"] == "shared:read" for e in reads)
    for bad in ("item=x", "request=0", "grant=" + "9" * 30, "third_party=" + "x" * 400):
        assert office.get(f"/api/v1/audit?{bad}", "audit").status_code == 400, bad
    exported = office.get(f"/api/v1/audit/export?format=jsonl&item={other}", "audit")
    assert exported.status_code == 200
    assert {json.loads(line)["target"] for line in exported.data.decode().splitlines()} == {
        f"item:{other}"
    }


def test_the_trail_page_filters_and_shows_names_with_ids_as_details(office, app):
    _aid, item_id, _other, request_id, _o, grant_id = _trail_setup(office)
    auditor = Reader(app).login("audit")
    page = text(auditor.get(f"/audit?grant={grant_id}"))
    # The holder of grant 3 is shown as its third party, with "grant 3" as the detail.
    assert "江苏省大数据中心" in page and f"grant {grant_id}" in page
    assert f">grant:{grant_id}<" not in page
    # The item is shown by its title, and links to its own entries.
    assert "platform design" in page and f"item {item_id}" in page
    assert f'href="/audit?item={item_id}"' in page
    by_request = text(auditor.get(f"/audit?request={request_id}"))
    assert "shared:read" in by_request and "disclosure:approve" in by_request
    assert auditor.get("/audit?item=abc").status_code == 400
    assert auditor.get("/audit?cursor=-5").status_code == 400


def test_recall_orders_are_paged_newest_first_with_holders_by_name(office, app):
    aid, item_id = _agreement_with_item(office)
    office.user("wang", "vendor_staff")
    with office.runtime.sessions() as db:
        db.query(User).filter_by(username="wang").update({"display_name": "王工程师"})
        db.commit()
    office.post(
        f"/api/v1/agreements/{aid}/ndas",
        "lead",
        json={
            "username": "wang",
            "signed_on": office.day(-1),
            "expires_on": office.day(100),
            "document_sha256": "c" * 64,
        },
    )
    office.post(
        f"/api/v1/agreements/{aid}/need-to-know",
        "lead",
        json={"username": "wang", "item_ids": [item_id], "reason": "maintenance"},
    )
    ids = []
    for n in range(11):
        target = item_id if n == 0 else office.item(aid, title=f"item {n}")["id"]
        made = office.post(
            f"/api/v1/agreements/{aid}/recalls",
            "approver",
            json={"item_ids": [target], "reason": f"recall {n}"},
        )
        assert made.status_code == 201, made.get_json()
        ids.append(made.get_json()["id"])
    approver = Reader(app).login("approver")
    path = f"/agreements/{aid}/recalls"
    first = [
        int(x)
        for x in re.findall(r'<section class="card" id="recall-(\d+)"', text(approver.get(path)))
    ]
    assert first == ids[::-1][:10]
    second = text(approver.get(f"{path}?page=2"))
    assert re.findall(r'id="recall-(\d+)"', second) == [str(ids[0])]
    assert "王工程师" in second and "wang" in second
    assert approver.get(f"{path}?page=nope").status_code == 400


def _buttons(page: str) -> set[str]:
    found = set(
        re.findall(r'href="/requests/\d+/(submit|review|approve|withdraw|deny|grants)"', page)
    )
    return found | ({"edit"} if re.search(r'href="/requests/\d+/edit"', page) else set())


def test_a_requests_buttons_are_the_moves_the_decision_point_allows(office, app):
    aid, item_id = _agreement_with_item(office)
    office.user("lead2", "vendor_lead")
    # One office account holding both office roles: it may review, then never approve.
    office.user("both", "office_approver")
    office.user("sec", "security_admin")
    added = office.post(
        "/api/v1/policies", "sec", json={"ptype": "g", "values": ["both", "office_handler", "*"]}
    )
    assert added.status_code == 201, added.get_json()
    rid = file_request(office, aid, [item_id])["id"]
    path = f"/requests/{rid}"
    lead, other_lead = Reader(app).login("lead"), Reader(app).login("lead2")
    handler, approver = Reader(app).login("handler"), Reader(app).login("approver")
    assert _buttons(text(lead.get(path))) == {"edit", "submit", "withdraw"}
    # Only the filer edits, submits or withdraws (a rule of the service, not of the template).
    assert _buttons(text(other_lead.get(path))) == set()
    move(office, rid, "submit", "lead")
    assert _buttons(text(lead.get(path))) == {"withdraw"}
    assert _buttons(text(handler.get(path))) == {"review", "deny"}
    assert _buttons(text(approver.get(path))) == {"deny"}
    before = len(office.audit_entries())
    handler.get(path)
    drawn = office.audit_entries()[before:]
    assert not [
        e for e in drawn if e["action"].startswith(("disclosure:review", "disclosure:deny"))
    ]
    both = Reader(app).login("both")
    assert _buttons(text(both.get(path))) == {"review", "deny"}
    move(office, rid, "review", "both")
    # Another handler may still deny a reviewed request (as the service lets it); the reviewer
    # may neither approve nor deny what it reviewed.
    assert _buttons(text(handler.get(path))) == {"deny"}
    assert _buttons(text(both.get(path))) == set()
    assert _buttons(text(approver.get(path))) == {"approve", "deny"}
    move(office, rid, "approve", "approver")
    assert _buttons(text(lead.get(path))) == {"grants"}
    assert _buttons(text(other_lead.get(path))) == {"grants"}
    assert _buttons(text(approver.get(path))) == set()


def test_lists_name_people_by_display_name_with_the_username_as_detail(office, app):
    aid, item_id = _agreement_with_item(office)
    with office.runtime.sessions() as db:
        db.query(User).filter_by(username="lead").update({"display_name": "李项目经理"})
        db.commit()
    rid = file_request(office, aid, [item_id])["id"]
    move(office, rid, "submit", "lead")
    for who, path in [
        ("lead", f"/agreements/{aid}/requests"),
        ("lead", f"/requests/{rid}"),
        ("handler", "/queue"),
    ]:
        page = text(Reader(app).login(who).get(path))
        assert '李项目经理 <small class="muted">lead</small>' in page, path


def test_the_request_list_api_takes_the_same_search(office):
    aid, item_id = _agreement_with_item(office)
    other = office.item(aid, title="tender")["id"]
    first = file_request(office, aid, [item_id], third_party="Wuxi archive")["id"]
    second = file_request(office, aid, [other], third_party="江苏省大数据中心")["id"]
    path = f"/api/v1/agreements/{aid}/disclosures"

    def ids(query):
        response = office.get(f"{path}?{query}", "lead")
        assert response.status_code == 200, response.get_json()
        return [d["id"] for d in response.get_json()["disclosures"]]

    assert ids("third_party=wuxi") == [first]
    assert ids(f"item={other}") == [second]
    assert ids("state=draft&third_party=大数据") == [second]
    for bad in ("item=x", "item=0", "third_party=" + "y" * 400):
        assert office.get(f"{path}?{bad}", "lead").status_code == 400, bad


def _sub_buttons(page: str, sub_id: int) -> set[str]:
    section = re.search(rf'<section class="card" id="sub-{sub_id}">.*?</section>', page, re.S)
    verbs = r"review|approve|deny|token|revoke"
    found = re.findall(rf'href="/agreements/\d+/subcontractors/{sub_id}/({verbs})"', section[0])
    return set(found)


def test_a_subcontractor_records_buttons_follow_the_decision_point(office, app):
    aid, records, _runbook = _items(office)
    sub = _file(office, aid, _body(office, [records["id"]]))["id"]
    path = f"/agreements/{aid}/subcontractors"
    readers = {who: Reader(app).login(who) for who in ("lead", "handler", "approver", "audit")}

    def buttons(who):
        return _sub_buttons(text(readers[who].get(path)), sub)

    assert buttons("lead") == {"revoke"}
    assert buttons("handler") == {"review", "deny"}
    assert buttons("approver") == {"deny"}
    assert buttons("audit") == set()
    assert office.post(f"/api/v1/subcontractors/{sub}/review", "handler").status_code == 200
    assert buttons("handler") == set()  # the reviewer neither approves nor denies
    assert buttons("approver") == {"approve", "deny"}
    assert office.post(f"/api/v1/subcontractors/{sub}/approve", "approver").status_code == 200
    assert buttons("lead") == {"token", "revoke"}
    assert buttons("approver") == set()


def test_a_page_past_the_end_links_back_to_the_last_one(office, app):
    aid, item_id = _agreement_with_item(office)
    _requests(office, aid, [item_id], 3)
    page = text(Reader(app).login("lead").get(f"/agreements/{aid}/requests?page=7"))
    assert _row_ids(page) == []
    assert f'rel="prev" href="/agreements/{aid}/requests?page=1"' in page


def _statements(runtime, reader, path) -> int:
    """The statements one view sends, from the calling thread (the request's, in the test
    client; the trail's integrator thread works after the response, not for the page)."""
    count = [0]
    thread = threading.get_ident()

    def one(*_args, **_kw):
        if threading.get_ident() == thread:
            count[0] += 1

    sa.event.listen(runtime.engine, "before_cursor_execute", one)
    try:
        assert reader.get(path).status_code == 200
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", one)
    return count[0]


def test_drawing_open_links_costs_the_same_for_5_or_25_items(office, app, runtime):
    aid, item_id = _agreement_with_item(office)
    _ndas_and_need_to_know(office, aid, item_id)
    staff = Reader(app).login("staff")
    for _ in range(4):
        office.item(aid, title="more")
    few = _statements(runtime, staff, f"/agreements/{aid}")
    for _ in range(20):
        office.item(aid, title="more")
    assert _statements(runtime, staff, f"/agreements/{aid}") == few


def test_names_and_their_details_in_chinese(office, app):
    _aid, item_id, _other, _request_id, _o, grant_id = _trail_setup(office)
    page = text(Reader(app, "zh-CN").login("audit").get(f"/audit?grant={grant_id}"))
    assert f'江苏省大数据中心 <small class="muted">授权 {grant_id}</small>' in page
    assert f'platform design <small class="muted">保密信息 {item_id}</small>' in page


def test_the_breach_picker_shows_only_denials_when_asked(office, app):
    aid, item_id = _agreement_with_item(office)
    office.get(f"/api/v1/items/{item_id}/content", "staff")
    office.get(f"/api/v1/items/{item_id}/content", "approver")
    denied = office.audit_entries(action="item:read", decision="deny")[-1]["seq"]
    allowed = office.audit_entries(action="item:read", decision="allow")[-1]["seq"]
    approver = Reader(app).login("approver")
    path = f"/agreements/{aid}/breaches"
    page = text(approver.get(f"{path}?decision=deny"))
    assert f'value="{denied}"' in page and f'value="{allowed}"' not in page
    assert f'value="{allowed}"' in text(approver.get(path))
    assert approver.get(f"{path}?decision=maybe").status_code == 400


def test_the_breach_picker_says_actions_and_decisions_as_the_trail_does(office, app):
    aid, item_id = _agreement_with_item(office)
    office.get(f"/api/v1/items/{item_id}/content", "staff")
    approver = Reader(app, "zh-CN").login("approver")
    page = text(approver.get(f"/agreements/{aid}/breaches"))
    # The action in the reader's words with its code kept as the title (no bare code), the
    # decision as a badge that does not break one character a line.
    assert '<td title="item:read">读取保密信息内容</td>' in page
    assert "<code>item:read</code>" not in page
    assert '<span class="state state-deny">拒绝</span>' in page


def test_agreements_ndas_and_recall_orders_are_named_on_the_trail_and_the_picker(office, app):
    agreement = office.agreement(title="运维保密协议", signed_on=office.day(-30))
    aid = agreement["id"]
    item_id = office.item(aid, title="platform design")["id"]
    with office.runtime.sessions() as db:
        db.execute(sa.update(User).where(User.username == "lead").values(display_name="张伟"))
        db.commit()
    nda = register_nda(office, aid, username="lead", as_="approver")
    assert nda.status_code == 201, nda.get_json()
    recall = office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [item_id], "reason": "旧版收回"},
    )
    assert recall.status_code == 201, recall.get_json()
    nda_id, recall_id = nda.get_json()["id"], recall.get_json()["id"]
    named = {
        f"agreement:{aid}": f'运维保密协议 <small class="muted">协议 {aid}</small>',
        f"nda:{nda_id}": f'张伟 <small class="muted">保密承诺书 {nda_id}</small>',
        f"recall:{recall_id}": f'旧版收回 <small class="muted">收回令 {recall_id}</small>',
    }
    auditor = Reader(app, "zh-CN").login("audit")
    trail = text(auditor.get("/audit"))
    picker = text(Reader(app, "zh-CN").login("approver").get(f"/agreements/{aid}/breaches"))
    for target, shown in named.items():
        assert shown in trail, target
        assert shown in picker, target
        assert f">{target}<" not in trail and f">{target}<" not in picker
    # In English the detail is worded in English.
    english = text(Reader(app).login("audit").get("/audit"))
    assert f'运维保密协议 <small class="muted">agreement {aid}</small>' in english
    assert f'<small class="muted">NDA {nda_id}</small>' in english
    assert f'<small class="muted">recall order {recall_id}</small>' in english


def test_the_trail_says_its_export_format_and_an_accounts_role_in_chinese(office, app):
    """The trail page's export link read "JSON lines" on a Chinese page, and an account's
    creation entry showed the account's role as stored (office_handler) among its details."""
    auditor = Reader(app, "zh-CN").login("audit")
    page = text(auditor.get("/audit"))
    assert "JSONL（每行一条记录）</a>" in page and "JSON lines" not in page
    (created,) = office.audit_entries(action="user:create", target="user:handler")
    entry = text(auditor.get(f"/audit/{created['seq']}"))
    role = '<tr><th>角色 <small class="muted"><code>role</code></small></th><td>经办人</td></tr>'
    assert role in entry, entry
