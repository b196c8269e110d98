"""Items know their shape (JSON records, CSV with a header, otherwise opaque bytes), are served as
inert downloads, and can be destroyed by the office for good (crypto-shredding).

Everything goes through the real app with real tokens, on both stores; the one thing read
directly is the item's database row, to see that no key material is left in it.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import urllib.request

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from govern.demo import CASES, CSV
from govern.models import Item
from tests.disclosure_flow import approved_request, file_request, issue_grant, request_body
from tests.disclosure_flow import shared as granted_read
from tests.pages import Reader, field_error, text
from tests.test_vendor import change, nda, ntk, shared, sub_body, subcontractor

RECORDS = json.dumps(CASES, ensure_ascii=False).encode()
FIELDS = ["applicant", "id_number", "service", "status"]


def register(office, agreement_id, content: bytes, **body):
    payload = {
        "title": "办件数据",
        "category": "data",
        "fields": [],
        "content_b64": base64.b64encode(content).decode(),
        **body,
    }
    return office.post(f"/api/v1/agreements/{agreement_id}/items", "approver", json=payload)


# Items know their shape.

DEEP = b"[" * 100_000 + b"]" * 100_000
# (content, body beside it, the media type recorded) — or, for a refusal, the missing fields.
SHAPES = [
    pytest.param(RECORDS, {"fields": FIELDS}, "application/json", id="json-records"),
    pytest.param(
        b'[{"name": "wang"}, {"name": "li", "phone": "139"}]',
        {"fields": ["name", "phone"]},
        "application/json",
        id="json-records-with-a-key-left-out",
    ),
    pytest.param(CSV.encode(), {"fields": ["service", "status"]}, "text/csv", id="csv-header"),
    pytest.param(
        "\ufeffname, phone\r\nwang, 139\r\n".encode(),
        {"fields": ["name", "phone"]},
        "text/csv",
        id="csv-with-bom-crlf-and-spaces",
    ),
    pytest.param(b"name\nwang\nli\n", {"fields": ["name"]}, "text/csv", id="csv-one-column"),
    pytest.param(CSV.encode(), {}, "text/csv", id="csv-no-fields-declared"),
    pytest.param(b"just a note\nof two lines", {}, "application/octet-stream", id="prose"),
    pytest.param(
        b"Dear sir, hello.\nRegards\n", {}, "application/octet-stream", id="prose-with-a-comma"
    ),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00", {}, "application/octet-stream", id="binary"),
    pytest.param(b'{"name": "wang"}', {}, "application/octet-stream", id="json-not-a-list"),
    pytest.param(DEEP, {}, "application/octet-stream", id="json-nested-100000-deep"),
    pytest.param(b"<h1>x</h1>", {"media_type": "text/html"}, "text/html", id="given-type-kept"),
]
REFUSALS = [
    pytest.param(RECORDS, {"fields": ["service", "phone"]}, ["phone"], "JSON records", id="json"),
    pytest.param(CSV.encode(), {"fields": ["name", "status"]}, ["name"], "CSV header", id="csv"),
    pytest.param(b"name,phone\nwang\n", {"fields": ["name"]}, ["name"], "cannot", id="ragged"),
    pytest.param(b"a note", {"fields": ["name"]}, ["name"], "octet-stream", id="prose"),
    pytest.param(b"\xff\xfe\x00", {"fields": ["name"]}, ["name"], "octet-stream", id="binary"),
    pytest.param(b'{"name": 1}', {"fields": ["name"]}, ["name"], "cannot", id="json-object"),
    pytest.param(
        b"<td>name</td>",
        {"fields": ["name"], "media_type": "text/html"},
        ["name"],
        "text/html",
        id="given-html",
    ),
    pytest.param(
        b"name\nwang\n",
        {"fields": ["name"], "media_type": "application/json"},
        ["name"],
        "not JSON records",
        id="given-json-not-records",
    ),
]


@pytest.mark.parametrize(("content", "body", "media_type"), SHAPES)
def test_the_media_type_is_detected_when_not_given(office, content, body, media_type):
    agreement = office.agreement()
    created = register(office, agreement["id"], content, **body)
    assert created.status_code == 201, created.get_json()
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/items", "approver").get_json()
    assert listed["items"][0]["media_type"] == media_type
    assert listed["items"][0]["fields"] == body.get("fields", [])


@pytest.mark.parametrize(("content", "body", "missing", "says"), REFUSALS)
def test_declared_fields_the_content_does_not_have_are_refused(
    office, content, body, missing, says
):
    agreement = office.agreement()
    refused = register(office, agreement["id"], content, **body)
    assert refused.status_code == 400
    error = refused.get_json()["error"]
    assert error["field"] == "fields"
    # The message names the missing fields and what the content turned out to be.
    assert re.search(rf"[:(] ?{', '.join(missing)}\)?[;]?", error["message"])
    assert says in error["message"]
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/items", "approver").get_json()
    assert listed["items"] == []


@pytest.mark.parametrize(
    ("content", "served"),
    [
        (
            RECORDS,
            json.dumps(
                [{"service": c["service"], "status": c["status"]} for c in CASES],
                ensure_ascii=False,
            ),
        ),
        (CSV.encode(), "service,status\n营业执照,办结\n户籍迁移,受理\n"),
    ],
    ids=["json", "csv"],
)
def test_a_subcontractor_scoped_to_two_fields_of_an_item_registered_without_a_type(
    office, content, served
):
    # The contract's own body: title, category, fields, content_b64 and no media_type.
    agreement = office.agreement()
    created = register(office, agreement["id"], content, fields=FIELDS)
    assert created.status_code == 201, created.get_json()
    item_id = created.get_json()["id"]
    record = subcontractor(office, agreement["id"], [item_id], fields=["service", "status"])
    response = shared(office, item_id, record["client_token"])
    assert response.status_code == 200, response.get_json()
    assert response.data.decode() == served
    assert "320402" not in response.data.decode() and "张三" not in response.data.decode()
    entry = office.audit_entries(action="shared:read", decision="allow")[-1]
    assert entry["details"]["fields"] == ["service", "status"]


# Served inert.


@pytest.fixture
def served(app):
    """The real app on a free port, served by werkzeug in a thread, until the test ends."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def fetch(url: str, token: str):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as response:  # noqa: S310 (our own served app)
        return response.headers, response.read()


def test_uploaded_html_is_served_as_an_inert_download_to_every_reader(office, app, runtime, served):
    page = b"<html><body><script>fetch('/api/v1/audit')</script><svg onload=alert(1)>"
    agreement = office.agreement()
    item = office.item(agreement["id"], content=page, title="页面gpj.html", media_type="text/html")
    # Registration refuses a right-to-left override in a title (test_input_bounds.py); a row from
    # before that check may still hold one, and the download's name must not carry it.
    change(runtime, Item, item["id"], title="页面\u202egpj.html")
    approved = approved_request(office, agreement["id"], [item["id"]], form="view")
    grant = issue_grant(office, approved["id"])["token"]
    api_headers, body = fetch(
        f"{served}/api/v1/items/{item['id']}/content", office.login("approver")
    )
    shared_headers, shared_body = fetch(f"{served}/api/v1/shared/items/{item['id']}", grant)
    assert body == shared_body == page
    for headers in (api_headers, shared_headers):
        assert headers["Content-Type"].startswith("text/html")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Security-Policy"].split(";")[0] == "sandbox"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["Cache-Control"] == "no-store"
        # A download, never a page: the right-to-left override is gone from the name and the
        # real extension follows the title.
        assert headers["Content-Disposition"] == (
            f'attachment; filename="item-{item["id"]}-gpj.html.html"; '
            "filename*=UTF-8''%E9%A1%B5%E9%9D%A2gpj.html.html"
        )
    # The office's page link gives the same download.
    reader = Reader(app).login("approver")
    from_page = reader.get(f"/items/{item['id']}/content")
    assert from_page.data == page
    assert from_page.headers["Content-Disposition"] == api_headers["Content-Disposition"]
    assert from_page.headers["Content-Security-Policy"] == api_headers["Content-Security-Policy"]


# Destroying an item.


def staff_reads(office, agreement_id, item_id):
    assert nda(office, agreement_id).status_code == 201
    assert ntk(office, agreement_id, [item_id]).status_code == 201


def row_of(runtime, item_id) -> dict:
    """The item's row as the database holds it, every column."""
    with runtime.engine.connect() as conn:
        return dict(
            conn.execute(sa.text("SELECT * FROM items WHERE id = :id"), {"id": item_id})
            .mappings()
            .one()
        )


def test_destroying_erases_the_key_and_every_reader_is_told(office, runtime):
    agreement = office.agreement()
    aid = agreement["id"]
    item = register(office, aid, RECORDS, fields=FIELDS).get_json()
    kept = office.item(aid, title="kept")
    staff_reads(office, aid, item["id"])
    record = subcontractor(office, aid, [item["id"]], fields=["service", "status"])
    approved = approved_request(office, aid, [item["id"], kept["id"]], form="copy")
    grant = issue_grant(office, approved["id"])
    draft = file_request(office, aid, [item["id"]])
    content_url = f"/api/v1/items/{item['id']}/content"
    readers = {
        "office": lambda: office.get(content_url, "approver"),
        "handler": lambda: office.get(content_url, "handler"),
        "staff": lambda: office.get(content_url, "staff"),
        "third party": lambda: granted_read(office, item["id"], grant["token"]),
        "subcontractor": lambda: shared(office, item["id"], record["client_token"]),
    }
    assert {who: read().status_code for who, read in readers.items()} == dict.fromkeys(readers, 200)
    before = row_of(runtime, item["id"])
    assert before["wrapped_key"] and before["ciphertext"]

    done = office.post(
        f"/api/v1/items/{item['id']}/destroy", "approver", json={"reason": "retention ended"}
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "destroyed"

    # Crypto-shredding: no data key, no nonce, no ciphertext, nor any copy of them, in the row.
    after = row_of(runtime, item["id"])
    assert after["wrapped_key"] is None and after["nonce"] is None and after["ciphertext"] is None
    assert after["status"] == "destroyed" and after["status_reason"] == "retention ended"
    assert after["sha256"] == before["sha256"]
    for value in after.values():
        if isinstance(value, bytes | memoryview):
            pytest.fail(f"bytes left in the destroyed item's row: {value!r}")
        assert str(before["wrapped_key"]) not in str(value)

    # Every reader is told: the office with a 409, everyone else with a 403; each audited.
    expected = {"office": 409, "handler": 409, "staff": 403, "third party": 403}
    expected["subcontractor"] = 403
    for who, read in readers.items():
        response = read()
        assert response.status_code == expected[who], (who, response.get_json())
        assert f"item {item['id']} is destroyed" in response.get_json()["error"]["message"], who
    denials = [
        e
        for e in office.audit_entries(decision="deny")
        if e["target"] == f"item:{item['id']}" and e["action"] in ("item:read", "shared:read")
    ]
    assert [e["actor"] for e in denials] == [
        "approver",
        "handler",
        "staff",
        f"grant:{grant['grant_id']}",
        f"subcontractor:{record['id']}",
    ]
    assert all(f"item {item['id']} is destroyed" in e["rule"] for e in denials)

    # Every grant, need-to-know and scope over it ended, in one trail entry with the reason and
    # the holders whose copies outlive the office's.
    entry, revoked = office.audit_entries(action="item:destroy", decision="allow")[-2:]
    assert revoked["target"] == f"disclosure:{approved['id']}"
    # The reason is kept as a message key beside the English rule (issue 12).
    facts = {k: v for k, v in revoked["details"].items() if k != "rule_key"}
    assert facts == {"from": "approved", "to": "revoked"}
    details = entry["details"]
    assert entry["actor"] == "approver" and details["reason"] == "retention ended"
    assert details["from"] == "protected" and details["to"] == "destroyed"
    assert details["grants_revoked"] == [grant["grant_id"]]
    assert details["requests_revoked"] == [approved["id"]]
    assert len(details["need_to_know_revoked"]) == 1 and len(details["scopes_ended"]) == 1
    assert sorted(details["holders"]) == sorted(
        ["staff", f"subcontractor:{record['id']}", f"grant:{grant['grant_id']}"]
    )
    ntks = office.get(f"/api/v1/agreements/{aid}/need-to-know", "lead").get_json()
    assert [n["status"] for n in ntks["need_to_know"]] == ["revoked"]
    # The other item of the revoked request is out of the third party's reach too, but the
    # office still reads it: only the destroyed item lost its key.
    assert granted_read(office, kept["id"], grant["token"]).status_code == 403
    assert office.get(f"/api/v1/items/{kept['id']}/content", "approver").data == b"secret design"

    # Nothing new over it, and it cannot be brought back, destroyed again, declassified or
    # recalled (each 409).
    refusals = {
        "request": office.post(
            f"/api/v1/agreements/{aid}/disclosures",
            "lead",
            json=request_body(office, [item["id"]]),
        ),
        "draft goes on": office.post(f"/api/v1/disclosures/{draft['id']}/submit", "lead"),
        "need-to-know": ntk(office, aid, [item["id"]]),
        "subcontractor": office.post(
            f"/api/v1/agreements/{aid}/subcontractors",
            "lead",
            json=sub_body(office, [item["id"]]),
        ),
        "destroy again": office.post(
            f"/api/v1/items/{item['id']}/destroy", "approver", json={"reason": "again"}
        ),
        "declassify": office.post(
            f"/api/v1/items/{item['id']}/declassify",
            "approver",
            json={"status": "declassified", "reason": "no"},
        ),
        "recall": office.post(
            f"/api/v1/agreements/{aid}/recalls",
            "approver",
            json={"item_ids": [item["id"]], "reason": "no"},
        ),
    }
    assert {k: r.status_code for k, r in refusals.items()} == dict.fromkeys(refusals, 409)
    assert row_of(runtime, item["id"])["status"] == "destroyed"


@pytest.mark.parametrize("who", ["handler", "lead", "staff", "audit"])
def test_only_the_approver_destroys(office, runtime, who):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    refused = office.post(
        f"/api/v1/items/{item['id']}/destroy", who, json={"reason": "not mine to decide"}
    )
    assert refused.status_code == 403
    assert office.audit_entries(action="item:destroy", decision="deny")[-1]["actor"] == who
    assert row_of(runtime, item["id"])["wrapped_key"] is not None
    assert office.get(f"/api/v1/items/{item['id']}/content", "approver").status_code == 200


def test_destroying_needs_a_reason(office, runtime):
    item = office.item(office.agreement()["id"])
    for body in ({}, {"reason": "  "}):
        refused = office.post(f"/api/v1/items/{item['id']}/destroy", "approver", json=body)
        assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "reason"
    missing = office.post("/api/v1/items/99999/destroy", "approver", json={"reason": "x"})
    assert missing.status_code == 404
    assert row_of(runtime, item["id"])["status"] == "protected"


def test_destroying_from_the_agreement_page_asks_to_confirm(office, app, runtime):
    agreement = office.agreement()
    item = office.item(agreement["id"], title="旧数据")
    page = f"/agreements/{agreement['id']}"
    action = f"{page}/items/{item['id']}/destroy"
    approver = Reader(app, "zh-CN").login("approver")
    shown = text(approver.get(page))
    assert f'href="{action}"' in shown
    # The link leads to a confirmation page (a GET changes nothing) whose form posts the step.
    asked = text(approver.get(action))
    assert f'action="{action}"' in asked and "销毁该保密信息并清除其密钥" in asked
    assert "旧数据" in asked and row_of(runtime, item["id"])["status"] == "protected"

    unconfirmed = approver.submit(action, {"reason": "保存期满"}, form_on=page)
    assert unconfirmed.status_code == 303
    assert "请勾选确认框以确认销毁" in text(approver.get(page))
    assert row_of(runtime, item["id"])["status"] == "protected"
    # Without the page's CSRF token nothing happens either.
    forged = approver.client.post(action, data={"reason": "x", "understood": "y"})
    assert forged.status_code == 400 and row_of(runtime, item["id"])["status"] == "protected"

    done = approver.submit(action, {"reason": "保存期满", "understood": "y"}, form_on=page)
    assert done.status_code == 303
    after = text(approver.get(page))
    assert "保密信息 旧数据 已销毁" in after
    assert f'href="{action}"' not in after and f"/items/{item['id']}/content" not in after
    assert row_of(runtime, item["id"])["wrapped_key"] is None
    entry = office.audit_entries(action="item:destroy", decision="allow")[-1]
    assert entry["actor"] == "approver" and entry["details"]["reason"] == "保存期满"

    # Other roles see no such form, and a post of theirs is refused and audited.
    other = office.item(agreement["id"], title="另一项")
    lead = Reader(app).login("lead")
    assert "/destroy" not in text(lead.get(page))
    refused = lead.submit(
        f"{page}/items/{other['id']}/destroy", {"reason": "x", "understood": "y"}, form_on=page
    )
    assert refused.status_code == 403
    assert office.audit_entries(action="item:destroy", decision="deny")[-1]["actor"] == "lead"
    assert row_of(runtime, other["id"])["status"] == "protected"


def test_the_page_form_registers_through_the_same_shape_rules(office, app):
    agreement = office.agreement()
    page = f"/agreements/{agreement['id']}"
    approver = Reader(app).login("approver")
    form = {"title": "办件", "category": "data", "sensitivity": "secret", "fields": "name, phone"}
    # A browser that names no type (or calls a CSV file a spreadsheet) leaves it to detection.
    upload = (io.BytesIO(b'[{"name": "wang", "phone": "139"}]'), "cases.dat", "")
    done = approver.submit(page, {**form, "content": upload}, content_type="multipart/form-data")
    assert done.status_code == 303
    spreadsheet = (io.BytesIO(b"name,phone\nwang,139\n"), "c.csv", "application/vnd.ms-excel")
    done = approver.submit(
        page, {**form, "content": spreadsheet}, content_type="multipart/form-data"
    )
    assert done.status_code == 303
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/items", "approver").get_json()
    assert [i["media_type"] for i in listed["items"]] == ["application/json", "text/csv"]
    # A field the content lacks is shown next to the fields box, and nothing is registered.
    lacking = (io.BytesIO(b"name,id\nwang,1\n"), "people.csv", "text/csv")
    refused = approver.submit(
        page, {**form, "content": lacking}, content_type="multipart/form-data"
    )
    assert refused.status_code == 400
    assert field_error(refused, "fields") == "not among the CSV header: phone"
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/items", "approver").get_json()
    assert len(listed["items"]) == 2
