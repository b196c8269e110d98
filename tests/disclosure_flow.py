"""Helpers for the disclosure, grant, recall and termination tests: each step goes through the
real API as the user who would take it."""

from __future__ import annotations

from datetime import date, timedelta


def office_today(api) -> date:
    """The office's day, by the clock of the app under test (never the host's calendar)."""
    return api.runtime.clock.today()


def window(api, start_in: int = 0, length: int = 30) -> dict:
    start = office_today(api) + timedelta(days=start_in)
    return {"starts_on": start.isoformat(), "ends_on": (start + timedelta(days=length)).isoformat()}


def request_body(api, item_ids: list[int], **fields) -> dict:
    return {
        "third_party": "江苏省大数据中心 (provincial big-data centre)",
        "purpose": "joint fault analysis of the case-handling module",
        "form": "view",
        "item_ids": item_ids,
        **window(api),
        **fields,
    }


def file_request(api, agreement_id: int, item_ids: list[int], as_="lead", **fields) -> dict:
    response = api.post(
        f"/api/v1/agreements/{agreement_id}/disclosures",
        as_,
        json=request_body(api, item_ids, **fields),
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def move(api, disclosure_id: int, verb: str, as_: str, expect: int = 200, **kw):
    response = api.post(f"/api/v1/disclosures/{disclosure_id}/{verb}", as_, **kw)
    assert response.status_code == expect, (verb, as_, response.get_json())
    return response.get_json()


def approved_request(api, agreement_id: int, item_ids: list[int], **fields) -> dict:
    filed = file_request(api, agreement_id, item_ids, **fields)
    move(api, filed["id"], "submit", "lead")
    move(api, filed["id"], "review", "handler")
    return move(api, filed["id"], "approve", "approver")


def issue_grant(api, disclosure_id: int, as_="lead") -> dict:
    response = api.post(f"/api/v1/disclosures/{disclosure_id}/grants", as_)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def shared(api, item_id: int, token: str):
    return api.client.get(
        f"/api/v1/shared/items/{item_id}", headers={"Authorization": f"Bearer {token}"}
    )


def state(api, disclosure_id: int, as_="approver") -> str:
    return api.get(f"/api/v1/disclosures/{disclosure_id}", as_).get_json()["state"]


def approved_subcontractor(api, agreement_id: int, body: dict, as_="lead") -> dict:
    """A subcontractor's record filed by the lead, reviewed by the handler and approved under the
    seal by the approver (clause 3.5 + 3.7), with its client token taken by the lead."""
    filed = api.post(f"/api/v1/agreements/{agreement_id}/subcontractors", as_, json=body)
    assert filed.status_code == 201, filed.get_json()
    sub_id = filed.get_json()["id"]
    move_subcontractor(api, sub_id, "review", "handler")
    approved = move_subcontractor(api, sub_id, "approve", "approver")
    issued = api.post(f"/api/v1/subcontractors/{sub_id}/token", as_)
    assert issued.status_code == 201, issued.get_json()
    return {**approved, "client_token": issued.get_json()["client_token"]}


def move_subcontractor(api, sub_id: int, verb: str, as_: str, expect: int = 200, **kw):
    response = api.post(f"/api/v1/subcontractors/{sub_id}/{verb}", as_, **kw)
    assert response.status_code == expect, (verb, as_, response.get_json())
    return response.get_json()
