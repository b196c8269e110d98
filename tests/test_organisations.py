"""Issue 10, part 1: vendor organisations. Every vendor account belongs to one vendor and acts only
in that vendor's agreements: it lists only those, and anything of another vendor's agreement
answers 404 exactly as if it did not exist, audited as a denial with the rule. The office acts
across agreements. Accounts name their organisation wherever they are made (API, command line)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from govern.cli import main
from tests.conftest import VENDOR
from tests.disclosure_flow import approved_request, approved_subcontractor, issue_grant, window

OTHER = "Vendor B Ltd"
SHA = "ab" * 32


def test_accounts_name_their_vendor_organisation(office):
    office.user("sysadm", "system_admin")
    base = {"password": "p" * 14}
    cases = [
        ({"username": "v1", "role": "vendor_lead"}, 400, "org"),
        ({"username": "v2", "role": "vendor_staff", "org": "  "}, 400, "org"),
        ({"username": "o1", "role": "office_handler", "org": VENDOR}, 400, "org"),
        ({"username": "a1", "role": "auditor", "org": VENDOR}, 400, "org"),
    ]
    for body, status, field in cases:
        response = office.post("/api/v1/users", "sysadm", json={**base, **body})
        assert response.status_code == status, (body, response.get_json())
        assert response.get_json()["error"]["field"] == field
    made = office.post(
        "/api/v1/users",
        "sysadm",
        json={**base, "username": "v3", "role": "vendor_lead", "org": OTHER},
    )
    assert made.status_code == 201 and made.get_json()["org"] == OTHER
    listed = {u["username"]: u for u in office.get("/api/v1/users", "sysadm").get_json()["users"]}
    assert listed["v3"]["org"] == OTHER and listed["handler"]["org"] is None
    assert listed["lead"]["org"] == VENDOR


def test_the_command_line_asks_for_the_organisation(database_url, keys_home):
    runner = CliRunner()
    env = {"GOVERN_HOME": str(keys_home)}
    base = ["user", "create", "--database-url", database_url, "--password-stdin"]
    without = runner.invoke(
        main, [*base, "zhang", "--role", "vendor_lead"], input="p" * 14, env=env
    )
    assert without.exit_code != 0 and "org" in without.output
    made = runner.invoke(
        main, [*base, "zhang", "--role", "vendor_lead", "--org", VENDOR], input="p" * 14, env=env
    )
    assert made.exit_code == 0, made.output
    assert made.output.strip().isdigit()


def _two_vendors(office):
    """Agreement A (the factories' vendor) with every kind of record, and agreement B of another
    vendor with its own lead."""
    office.user("lead-b", "vendor_lead", org=OTHER)
    a = office.agreement()
    b = office.agreement(title="B's agreement", vendor=OTHER)
    item = office.item(a["id"], content=b"A's secret")
    recall_item = office.item(a["id"], content=b"to recall")
    office.item(b["id"], content=b"B's own")
    aid = a["id"]
    nda = office.post(
        f"/api/v1/agreements/{aid}/ndas",
        "lead",
        json={"username": "staff", **_span(office), "document_sha256": SHA},
    ).get_json()
    ntk = office.post(
        f"/api/v1/agreements/{aid}/need-to-know",
        "lead",
        json={"username": "staff", "item_ids": [item["id"], recall_item["id"]], "reason": "ops"},
    ).get_json()["need_to_know"][0]
    sub = approved_subcontractor(office, aid, _sub_body(office, item["id"]))
    request = approved_request(office, aid, [item["id"]])
    grant = issue_grant(office, request["id"])
    recall = office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [recall_item["id"]], "reason": "done"},
    ).get_json()
    return {
        "a": a,
        "b": b,
        "item": item,
        "nda": nda,
        "ntk": ntk,
        "sub": sub,
        "request": request,
        "grant": grant,
        "recall": recall,
    }


def _span(api):
    w = window(api, -10, 300)
    return {"signed_on": w["starts_on"], "expires_on": w["ends_on"]}


def _sub_body(api, item_id):
    w = window(api, -10, 200)
    return {
        "name": "SaaS",
        "service": "stats",
        "dsa_signed_on": w["starts_on"],
        "dsa_expires_on": w["ends_on"],
        "dsa_sha256": SHA,
        "purpose": "stats",
        "item_ids": [item_id],
        "fields": [],
        "whole_items": [item_id],
        "until": window(api, 0, 100)["ends_on"],
    }


def test_a_vendor_sees_only_its_own_agreements_and_nothing_of_another(office):
    made = _two_vendors(office)
    aid, iid = made["a"]["id"], made["item"]["id"]
    listed = office.get("/api/v1/agreements", "lead-b").get_json()["agreements"]
    assert [a["vendor"] for a in listed] == [OTHER]
    assert len(office.get("/api/v1/agreements", "approver").get_json()["agreements"]) == 2
    assert [
        a["vendor"] for a in office.get("/api/v1/agreements", "lead").get_json()["agreements"]
    ] == [VENDOR]
    # Every object of A's agreement, read or changed by B's lead: 404, as for what never existed.
    probes = [
        ("GET", f"/api/v1/agreements/{aid}", None),
        ("GET", f"/api/v1/agreements/{aid}/clock", None),
        ("GET", f"/api/v1/agreements/{aid}/items", None),
        ("GET", f"/api/v1/items/{iid}/content", None),
        ("GET", f"/api/v1/agreements/{aid}/disclosures", None),
        ("GET", f"/api/v1/disclosures/{made['request']['id']}", None),
        ("GET", f"/api/v1/disclosures/{made['request']['id']}/approval", None),
        ("GET", f"/api/v1/disclosures/{made['request']['id']}/grants", None),
        ("POST", f"/api/v1/disclosures/{made['request']['id']}/grants", None),
        ("POST", f"/api/v1/grants/{made['grant']['grant_id']}/revoke", None),
        ("GET", f"/api/v1/agreements/{aid}/ndas", None),
        (
            "POST",
            f"/api/v1/ndas/{made['nda']['id']}/renew",
            {"expires_on": "2030-01-01", "document_sha256": SHA},
        ),
        ("GET", f"/api/v1/agreements/{aid}/need-to-know", None),
        ("POST", f"/api/v1/need-to-know/{made['ntk']['id']}/revoke", {"reason": "x"}),
        ("GET", f"/api/v1/agreements/{aid}/subcontractors", None),
        ("GET", f"/api/v1/subcontractors/{made['sub']['id']}", None),
        ("GET", f"/api/v1/subcontractors/{made['sub']['id']}/report", None),
        ("POST", f"/api/v1/subcontractors/{made['sub']['id']}/token", None),
        ("POST", f"/api/v1/subcontractors/{made['sub']['id']}/revoke", {"reason": "x"}),
        ("POST", f"/api/v1/agreements/{aid}/subcontractors", _sub_body(office, iid)),
        (
            "POST",
            f"/api/v1/agreements/{aid}/disclosures",
            {
                "third_party": "evil corp",
                "purpose": "x",
                "form": "transfer",
                "item_ids": [iid],
                **window(office),
            },
        ),
        ("GET", f"/api/v1/agreements/{aid}/recalls", None),
        (
            "POST",
            f"/api/v1/return-confirmations/{made['recall']['confirmations'][0]['id']}/confirm",
            {"outcome": "destroyed"},
        ),
    ]
    for method, path, body in probes:
        response = office.call(method, path, "lead-b", json=body)
        assert response.status_code == 404, (method, path, response.get_json())
        message = response.get_json()["error"]["message"]
        # The same answer as for an id that does not exist.
        ghost = re.sub(
            r"/(\d+)(/|$)", lambda m: f"/{int(m.group(1)) + 10_000}{m.group(2)}", path, 1
        )
        missing = office.call(method, ghost, "lead-b", json=body)
        assert missing.status_code == 404, (ghost, missing.get_json())
        assert re.sub(r"\d+", "N", message) == re.sub(
            r"\d+", "N", missing.get_json()["error"]["message"]
        ), (path, message)
    denials = office.audit_entries(actor="lead-b", decision="deny")
    assert len(denials) >= len(probes)
    assert all("not an agreement of vendor organisation Vendor B Ltd" in d["rule"] for d in denials)
    # Nothing changed: A's records stand.
    assert (
        office.get(f"/api/v1/subcontractors/{made['sub']['id']}", "lead").get_json()["state"]
        == "approved"
    )
    assert (
        len(
            office.get(f"/api/v1/agreements/{aid}/disclosures", "approver").get_json()[
                "disclosures"
            ]
        )
        == 1
    )


def test_the_outbox_and_the_pages_keep_to_the_vendor(office, app):
    from tests.pages import Reader, text

    made = _two_vendors(office)
    mine = office.get("/api/v1/outbox", "lead").get_json()["messages"]
    assert mine and all(m["agreement_id"] == made["a"]["id"] for m in mine)
    assert office.get("/api/v1/outbox", "lead-b").get_json()["messages"] == []
    other = Reader(app).login("lead-b")
    home = text(other.get("/"))
    assert "B&#39;s agreement" in home or "B's agreement" in home
    assert "保密协议" not in home
    assert other.get(f"/agreements/{made['a']['id']}").status_code == 404
    assert other.get(f"/agreements/{made['a']['id']}/subcontractors").status_code == 404


def test_need_to_know_and_ndas_only_for_the_vendors_own_staff(office):
    made = _two_vendors(office)
    office.user("staff-b", "vendor_staff", org=OTHER)
    aid = made["a"]["id"]
    response = office.post(
        f"/api/v1/agreements/{aid}/ndas",
        "lead",
        json={"username": "staff-b", **_span(office), "document_sha256": SHA},
    )
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "username"


def test_the_demo_shows_two_vendors_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVERN_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    result = runner.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    passwords = dict(re.findall(r"^\s+(\S+)\s+\S+\s+(\S+)$", result.output, re.M))
    from govern import create_app

    app = create_app({"home": tmp_path / "home", "argon2_time_cost": 1, "argon2_memory_kib": 1024})
    client = app.test_client()

    def listing(who):
        token = client.post(
            "/api/v1/auth/token", json={"username": who, "password": passwords[who]}
        ).get_json()["access_token"]
        return client.get(
            "/api/v1/agreements", headers={"Authorization": f"Bearer {token}"}
        ).get_json()["agreements"]

    assert [a["vendor"] for a in listing("lead")] == [VENDOR]
    assert [a["vendor"] for a in listing("staff-b")] == ["江苏云岫数据科技有限公司"]
    assert len(listing("approver")) == 2
    app.extensions["govern"].engine.dispose()
