"""A role assigned through the API works at once in the worker that assigned it."""

from __future__ import annotations


def test_an_account_created_through_the_api_can_act_on_the_same_worker(api):
    # Regression: the enforcer was reloaded inside the transaction that bumped the policy version
    # (ctx.record after the role assignment), read the rules on its own connection (not yet
    # committed) and cached the new version with the old rules, so the new account got 403.
    api.user("sysadmin", "system_admin")
    api.user("sec", "security_admin")
    created = api.post(
        "/api/v1/users", "sysadmin", json={"username": "newapprover", "role": "office_approver"}
    )
    assert created.status_code == 201, created.get_json()
    pending = api.get("/api/v1/users/confirmations", "sec").get_json()["confirmations"]
    assert (
        api.post(f"/api/v1/users/confirmations/{pending[0]['id']}/confirm", "sec").status_code
        == 200
    )
    assert api.set_password(created.get_json()["set_password_url"]).status_code == 200
    body = {
        "title": "保密协议",
        "owner": "office",
        "vendor": "vendor",
        "signed_on": "2022-06-27",
        "term_years": 5,
        "contract_value": "3985000.00",
    }
    response = api.post("/api/v1/agreements", "newapprover", json=body)
    assert response.status_code == 201, response.get_json()
