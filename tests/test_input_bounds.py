"""No input makes a server error: ids beyond 64 bits, lone surrogates, control and bidirectional
override characters, deeply nested JSON and bad query parameters are all refused with a 4xx
envelope naming the field, and nothing is created. A real bug gives a 500 of its own kind
(``internal_error``), logged with the request's id and without the statement's values."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from disclosure_flow import file_request, move, request_body
from sqlalchemy import text
from test_vendor import shared, subcontractor

from govern import http
from govern.schema import MAX_ID
from tests.pages import Reader

HUGE = 14689710515909567952453632


def _error(response, status: int | None = None) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.data[:300])
    if status is not None:
        assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def _raw(api, method: str, path: str, as_: str, body: str):
    """Send JSON text as written, so escapes like \\ud829 reach the server's parser unchanged."""
    return api.call(method, path, as_, data=body.encode(), content_type="application/json")


@pytest.fixture
def item(office):
    agreement = office.agreement()
    return agreement, office.item(agreement["id"])


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/agreements/{HUGE}",
        "/api/v1/disclosures/1215516588180934360760844288/approval",
        f"/api/v1/agreements/{MAX_ID + 1}/items",
        f"/api/v1/disclosures/{2**63 - 1}/grants",
        f"/api/v1/items/{'9' * 5000}/content",
        "/api/v1/agreements/0",
    ],
)
def test_path_ids_beyond_64_bits_are_not_found(office, path):
    assert _error(office.get(path, "approver"), 404)["code"] == "not_found"


def test_the_largest_id_is_a_plain_not_found(office):
    assert office.get(f"/api/v1/agreements/{MAX_ID}", "approver").status_code == 404


def test_pages_with_huge_ids_are_not_found(office, app):
    reader = Reader(app).login("approver")
    for path in (f"/agreements/{HUGE}", f"/requests/{MAX_ID + 1}", f"/verify/{HUGE}", "/audit/0"):
        assert reader.get(path).status_code == 404, path
    assert Reader(app).login("audit").get(f"/audit/{2**63 - 1}").status_code == 404


def test_huge_item_ids_in_a_body_name_the_field(office, item):
    agreement, _ = item
    for huge in (80904039920971022336, MAX_ID + 1):
        body = request_body(office, [huge])
        url = f"/api/v1/agreements/{agreement['id']}/disclosures"
        error = _error(office.post(url, "lead", json=body), 400)
        assert error["field"] == "item_ids[0]" and error["code"] == "invalid"
    listed = office.get(f"/api/v1/agreements/{agreement['id']}/disclosures", "approver")
    assert listed.get_json()["disclosures"] == []


def test_huge_int_elsewhere_names_the_field(office):
    body = {
        "title": "t",
        "owner": "o",
        "vendor": "v",
        "signed_on": "2022-06-27",
        "term_years": 2**70,
        "contract_value": "1.00",
    }
    assert _error(office.post("/api/v1/agreements", "approver", json=body))["field"] == "term_years"


@pytest.mark.parametrize("escape", [r"\ud829\udda9", r"\ud829", r"\udda9", "a\\u0007b"])
def test_surrogates_and_control_characters_in_a_reason_are_refused(office, item, escape):
    agreement, stored = item
    filed = file_request(office, agreement["id"], [stored["id"]])
    move(office, filed["id"], "submit", "lead")
    response = _raw(
        office,
        "POST",
        f"/api/v1/disclosures/{filed['id']}/deny",
        "handler",
        '{"reason": "' + escape + '"}',
    )
    error = _error(response, 400)
    assert error["field"] == "reason", error
    shown = office.get(f"/api/v1/disclosures/{filed['id']}", "approver").get_json()
    assert shown["state"] == "submitted"


def test_a_lone_surrogate_in_a_field_name_is_refused(office):
    response = _raw(office, "POST", "/api/v1/agreements", "approver", '{"\\ud800": 1}')
    assert _error(response, 400)["code"] == "invalid"
    assert office.get("/api/v1/agreements", "approver").get_json()["agreements"] == []


def test_multi_line_text_keeps_its_lines(office, item):
    agreement, stored = item
    purpose = "first line\r\nsecond line\twith a tab"
    filed = file_request(office, agreement["id"], [stored["id"]], purpose=purpose)
    assert filed["purpose"] == purpose


@pytest.mark.parametrize("bidi", ["\u202e", "\u202a", "\u2066", "\u2069"])
def test_bidirectional_overrides_are_refused_in_names_and_titles(office, item, bidi):
    agreement, stored = item
    url = f"/api/v1/agreements/{agreement['id']}/disclosures"
    body = request_body(office, [stored["id"]], third_party=f"evil{bidi}fdp.exe")
    assert _error(office.post(url, "lead", json=body), 400)["field"] == "third_party"
    assert office.get(url, "approver").get_json()["disclosures"] == []
    item_body = {"title": f"report{bidi}gpj.exe", "category": "data", "content_b64": "eA=="}
    response = office.post(
        f"/api/v1/agreements/{agreement['id']}/items", "approver", json=item_body
    )
    assert _error(response, 400)["field"] == "title"
    titles = [
        i["title"]
        for i in office.get(f"/api/v1/agreements/{agreement['id']}/items", "approver").get_json()[
            "items"
        ]
    ]
    assert titles == ["design"]


def test_control_characters_are_refused_in_single_line_fields(office):
    body = {
        "title": "a\nb",
        "owner": "o",
        "vendor": "v",
        "signed_on": "2022-06-27",
        "term_years": 5,
        "contract_value": "1.00",
    }
    assert _error(office.post("/api/v1/agreements", "approver", json=body))["field"] == "title"


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deeply_nested_json_is_refused(office, depth):
    body = "[" * depth + "]" * depth
    response = _raw(office, "POST", "/api/v1/agreements", "approver", body)
    assert _error(response, 400)["field"] == "body"
    nested = '{"title": ' + "[" * depth + "]" * depth + "}"
    response = _raw(office, "POST", "/api/v1/agreements", "approver", nested)
    assert _error(response, 400)["field"] == "body"
    assert office.get("/api/v1/agreements", "approver").get_json()["agreements"] == []


def test_nesting_inside_strings_does_not_count(office):
    title = "[[[[" * 20 + '"\\' + "{{{{" * 20
    agreement = office.agreement(title=title)
    assert agreement["title"] == title


def test_bodies_that_are_not_utf8_are_refused(office):
    response = office.call(
        "POST",
        "/api/v1/agreements",
        "approver",
        data=b'{"title": "\xff"}',
        content_type="application/json",
    )
    assert _error(response, 400)["field"] == "body"


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=99999999999999999999", "limit"),
        ("limit=0", "limit"),
        ("cursor=-1", "cursor"),
        (f"cursor={HUGE}", "cursor"),
        ("since=99999-01-01", "since"),
        ("since=9999-12-31T23:59:59-14:00", "since"),
        ("until=0001-01-01T00:00:00%2B14:00", "until"),
        ("actor=a%00b", "actor"),
        ("actor=a%E2%80%AEb", "actor"),
        ("decision=maybe", "decision"),
    ],
)
def test_bad_audit_filters_name_the_parameter(office, query, field):
    error = _error(office.get(f"/api/v1/audit?{query}", "audit"), 400)
    assert error["field"] == field


def test_bad_state_filter_names_the_parameter(office, item):
    agreement, _ = item
    url = f"/api/v1/agreements/{agreement['id']}/disclosures?state=a%00b"
    assert _error(office.get(url, "approver"), 400)["field"] == "state"


def test_bad_page_parameters_are_refused(office, app):
    reader = Reader(app).login("audit")
    for query in (
        f"cursor={HUGE}",
        "since=99999-01-01",
        "since=9999-12-31T23:59:59-14:00",
        "actor=%00",
        "actor=a%E2%80%AEb",
    ):
        page = reader.get(f"/audit?{query}")
        assert page.status_code == 400, (query, page.status_code)
    assert reader.get(f"/audit/charts?days={HUGE}").status_code < 500


def test_a_bug_is_an_internal_error_logged_with_its_request_id(app, caplog):
    """A route of this test's own app runs a failing statement with a secret value: the answer is
    a 500 of its own code, and the log says which request and never the value."""
    secret = "hunter2-never-in-logs"

    def boom():
        http.db().execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": secret})

    app.add_url_rule("/api/v1/test-only-boom", "test_only_boom", boom)
    caplog.set_level(logging.INFO)
    response = app.test_client().get("/api/v1/test-only-boom", headers={"X-Request-Id": "req-4242"})
    assert response.status_code == 500
    body = response.get_json()["error"]
    assert body["code"] == "internal_error" and body["request_id"] == "req-4242"
    assert response.headers["X-Request-Id"] == "req-4242"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and all(r.request_id == "req-4242" for r in errors)
    assert any(r.exc_info for r in errors)
    logged = caplog.text + "".join(logging.Formatter().formatException(r.exc_info) for r in errors)
    assert "no_such_table" in logged and secret not in logged


def test_a_page_bug_is_a_500_page(app, caplog):
    def boom():
        raise RuntimeError("bug")

    app.add_url_rule("/test-only-boom", "test_only_page_boom", boom)
    caplog.set_level(logging.INFO)
    response = app.test_client().get("/test-only-boom")
    assert response.status_code == 500 and b"<html" in response.data
    assert any(r.exc_info and r.request_id != "-" for r in caplog.records)


def test_every_log_line_has_a_request_id(office, caplog):
    caplog.set_level(logging.INFO)
    office.get("/api/v1/agreements", "approver", headers={"X-Request-Id": "abc-1"})
    logging.getLogger("govern.test").info("outside a request")
    assert all(hasattr(r, "request_id") for r in caplog.records)
    assert caplog.records[-1].request_id == "-"


def test_openapi_states_the_id_bounds(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    param = doc["paths"]["/api/v1/agreements/{agreement_id}"]["get"]["parameters"][0]
    assert param["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    items = doc["components"]["schemas"]["DisclosureCreate"]["properties"]["item_ids"]["items"]
    assert items["maximum"] == MAX_ID
    assert "404" in doc["info"]["description"] or "not found" in doc["info"]["description"]
    assert json.dumps(doc)  # the document itself is plain JSON


@pytest.mark.parametrize(
    "pasted",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"jws": ' + "[" * 40 + "]" * 40 + "}",
        '{"jws": 5, "document": [], "key_id": {}}',
        '{"jws": "a.b.c", "document": "x"}',
        "NaN",
        "[]",
    ],
)
def test_a_pasted_approval_of_any_shape_is_not_valid_rather_than_a_bug(office, app, pasted):
    reader = Reader(app)
    response = reader.submit("/verify/1", {"approval": pasted})
    assert response.status_code == 200, response.status_code
    assert "Not valid" in response.get_data(as_text=True)


def test_deeply_nested_item_records_are_refused_or_not_served_never_a_bug(office):
    """Records nested too deep for the parser: registered or not, a subcontractor's read of two
    fields is a refusal, not a server error."""
    agreement = office.agreement()
    deep = "[" * 100_000 + "]" * 100_000
    content = ('[{"service": ' + deep + ', "status": "x"}]').encode()
    body = {
        "title": "cases (JSON)",
        "category": "data",
        "fields": ["service", "status"],
        "content_b64": base64.b64encode(content).decode(),
        "media_type": "application/json",
    }
    created = office.post(f"/api/v1/agreements/{agreement['id']}/items", "approver", json=body)
    if created.status_code != 201:
        assert _error(created, 400)["field"] in ("content_b64", "fields")
        return
    sub = subcontractor(office, agreement["id"], [created.get_json()["id"]])
    read = shared(office, created.get_json()["id"], sub["client_token"])
    assert 400 <= read.status_code < 500, read.status_code


@pytest.mark.parametrize(
    "who", ["99999999999999999999", str(MAX_ID + 1), "subcontractor:" + "9" * 30]
)
def test_a_huge_subcontractor_number_as_responsible_names_the_field(office, who):
    agreement = office.agreement()
    body = {
        "description": "kept data after the record ended",
        "responsible_kind": "subcontractor",
        "responsible": who,
        "audit_seqs": [1],
    }
    response = office.post(f"/api/v1/agreements/{agreement['id']}/breaches", "approver", json=body)
    assert _error(response, 400)["field"] == "responsible"


@pytest.mark.parametrize("number", ["²", "9" * 5000, "٣"])
def test_page_forms_with_odd_numbers_are_refused_not_a_bug(office, app, number):
    reader = Reader(app).login("approver")
    agreement = office.agreement()
    form = {
        "title": "t",
        "owner": "o",
        "vendor": "v",
        "signed_on": "2022-06-27",
        "term_years": number,
        "contract_value": "1.00",
        "currency": "CNY",
    }
    assert reader.submit("/agreements", form).status_code == 400
    breach = {
        "description": "d",
        "responsible_kind": "staff",
        "responsible": "staff",
        "audit_seqs": f"1, {number}",
    }
    url = f"/agreements/{agreement['id']}/breaches"
    assert reader.submit(url, breach).status_code == 400
