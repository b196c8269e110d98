"""Issue 5: per-case disclosure requests (clause 3.6), the two-level sealed approval, grants."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from jose import jwt

from govern import policy
from govern.cli import main
from govern.crypto import verify_jws
from govern.models import Disclosure, Item, OutboxMessage
from tests.conftest import as_operator
from tests.disclosure_flow import (
    approved_request,
    file_request,
    issue_grant,
    move,
    office_today,
    request_body,
    shared,
    state,
    window,
)


@pytest.fixture
def case(office):
    """An agreement with two protected items and one item of another agreement."""
    agreement = office.agreement()
    first = office.item(agreement["id"], content=b"case records 2022", title="records")
    second = office.item(agreement["id"], content=b"module design", title="design")
    other = office.agreement(title="another agreement")
    foreign = office.item(other["id"], content=b"not yours")
    return {"agreement": agreement, "items": [first, second], "foreign": foreign}


def outbox_for(runtime, **filters) -> list[OutboxMessage]:
    with runtime.sessions() as db:
        stmt = sa.select(OutboxMessage).order_by(OutboxMessage.id)
        for name, value in filters.items():
            stmt = stmt.where(getattr(OutboxMessage, name) == value)
        return list(db.scalars(stmt))


def user_id(runtime, username: str) -> int:
    from govern.models import User

    with runtime.sessions() as db:
        return db.scalar(sa.select(User.id).where(User.username == username))


# The whole lifecycle, step by step.


def test_file_submit_review_approve_seal_grant_read_revoke(office, runtime, case, tmp_path):
    aid = case["agreement"]["id"]
    first, second = case["items"]
    filed = file_request(office, aid, [first["id"]])
    assert filed["state"] == "draft" and filed["filed_by"] == "lead"
    assert filed["items"] == [{"id": first["id"], "sha256": first["sha256"]}]

    submitted = move(office, filed["id"], "submit", "lead")
    assert submitted["state"] == "submitted"
    assert [m.kind for m in outbox_for(runtime, recipient_role="office_handler")] == [
        "disclosure_submitted"
    ]
    assert move(office, filed["id"], "review", "handler")["state"] == "reviewed"
    approved = move(office, filed["id"], "approve", "approver")
    assert approved["state"] == "approved" and approved["sealed"] is True
    assert approved["reviewed_by"] == "handler" and approved["decided_by"] == "approver"
    decided = outbox_for(runtime, recipient_user_id=user_id(runtime, "lead"))
    assert [m.kind for m in decided] == ["disclosure_decided"]

    # The seal: a compact JWS over exactly the canonical document, verifiable with /keys.
    sealed = office.get(f"/api/v1/disclosures/{filed['id']}/approval", "lead").get_json()
    assert sealed["algorithm"] == "ES256"
    assert jwt.get_unverified_header(sealed["jws"])["kid"] == sealed["key_id"]
    keys = office.client.get("/api/v1/keys").get_json()
    assert verify_jws(sealed["jws"], keys["keys"]).decode() == sealed["document"]
    document = json.loads(sealed["document"])
    assert document["request_id"] == filed["id"]
    assert document["agreement"] == {
        "id": aid,
        "title": case["agreement"]["title"],
        "owner": case["agreement"]["owner"],
        "vendor": case["agreement"]["vendor"],
    }
    assert document["items"] == [{"id": first["id"], "sha256": first["sha256"]}]
    assert document["form"] == "view" and document["third_party"] == filed["third_party"]
    assert document["window"] == {"starts_on": filed["starts_on"], "ends_on": filed["ends_on"]}
    assert document["filed"]["by"] == "lead" and document["submitted"]["by"] == "lead"
    assert document["reviewed"]["by"] == "handler" and document["reviewed"]["at"]
    assert document["approved"]["by"] == "approver" and document["approved"]["at"]

    # ... and offline with the command line, which also catches a tampered document.
    approval_file, keys_file = tmp_path / "approval.json", tmp_path / "keys.json"
    approval_file.write_text(json.dumps(sealed))
    keys_file.write_text(json.dumps(keys))
    runner = CliRunner()
    ok = runner.invoke(main, ["approval", "verify", str(approval_file), "--keys", str(keys_file)])
    assert ok.exit_code == 0, ok.output
    assert "valid" in ok.output
    tampered = dict(sealed, document=sealed["document"].replace("view", "transfer"))
    approval_file.write_text(json.dumps(tampered))
    bad = runner.invoke(main, ["approval", "verify", str(approval_file), "--keys", str(keys_file)])
    assert bad.exit_code == 1 and "differs" in bad.output
    head, payload, signature = sealed["jws"].split(".")
    forged = dict(sealed, jws=f"{head}.{payload}.{signature[:-4]}AAAA")
    approval_file.write_text(json.dumps(forged))
    bad = runner.invoke(main, ["approval", "verify", str(approval_file), "--keys", str(keys_file)])
    assert bad.exit_code == 1 and "invalid" in bad.output

    # A grant: its own audience, a jti, exp no later than the end of the window's last day.
    granted = issue_grant(office, filed["id"])
    claims = jwt.get_unverified_claims(granted["token"])
    assert claims["aud"] == "govern-grant" and claims["jti"]
    window_end = runtime.clock.end_of_day(date.fromisoformat(filed["ends_on"]))
    assert claims["exp"] <= window_end.timestamp()
    assert datetime.fromisoformat(granted["expires_at"].replace("Z", "+00:00")) <= window_end

    read = shared(office, first["id"], granted["token"])
    assert read.status_code == 200 and read.data == b"case records 2022"
    # Even a "view" is handed over as an inert download (SPEC: items are attachments), uncached.
    assert read.headers["Content-Disposition"].startswith("attachment; filename=")
    assert read.headers["Content-Security-Policy"].startswith("sandbox")
    assert read.headers["Cache-Control"] == "no-store"
    # Exactly the request's items: the other item of the same agreement is refused.
    assert shared(office, second["id"], granted["token"]).status_code == 403
    assert shared(office, case["foreign"]["id"], granted["token"]).status_code == 403
    assert shared(office, 99999, granted["token"]).status_code == 403

    listed = office.get(f"/api/v1/disclosures/{filed['id']}/grants", "approver").get_json()
    uses = listed["grants"][0]["uses"]
    assert [u["decision"] for u in uses] == ["allow", "deny", "deny", "deny"]
    assert uses[0]["target"] == f"item:{first['id']}"
    trail = office.audit_entries(actor=f"grant:{granted['grant_id']}")
    assert {e["action"] for e in trail} == {"shared:read"}
    assert granted["token"] not in json.dumps(office.audit_entries())

    # Revoking takes effect on the very next use.
    revoked = office.post(f"/api/v1/grants/{granted['grant_id']}/revoke", "lead")
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    after = shared(office, first["id"], granted["token"])
    # The holder reads one stable refusal; the trail keeps why (who revoked it).
    assert after.status_code == 403 and b"revoked" not in after.data
    assert after.get_json()["error"]["message"].startswith("this token gives no access")
    why = office.audit_entries(action="shared:read", decision="deny")[-1]["rule"]
    assert why.startswith(f"grant {granted['grant_id']} is revoked")
    assert office.post(f"/api/v1/grants/{granted['grant_id']}/revoke", "lead").status_code == 409
    assert office.client.get(f"/api/v1/shared/items/{first['id']}").status_code == 401
    garbage = shared(office, first["id"], granted["token"][:-6] + "AAAAAA")
    assert garbage.status_code == 401
    refused = office.audit_entries(action="shared:read", decision="deny")[-1]
    assert refused["actor"] == "anonymous" and refused["rule"] == "invalid grant token"


@pytest.mark.parametrize("form", ["copy", "transfer"])
def test_copy_and_transfer_are_served_as_attachments(office, case, form):
    first = case["items"][0]
    approved = approved_request(office, case["agreement"]["id"], [first["id"]], form=form)
    token = issue_grant(office, approved["id"])["token"]
    read = shared(office, first["id"], token)
    assert read.status_code == 200
    assert read.headers["Content-Disposition"].startswith("attachment; filename=")
    assert read.headers["X-Content-Type-Options"] == "nosniff"


def test_editing_a_draft_with_patch_or_post(office, case):
    aid = case["agreement"]["id"]
    first, second = case["items"]
    filed = file_request(office, aid, [first["id"]])
    url = f"/api/v1/disclosures/{filed['id']}"
    patched = office.call("PATCH", url, "lead", json={"item_ids": [first["id"], second["id"]]})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["item_ids"] == [first["id"], second["id"]]
    posted = office.post(url, "lead", json={"third_party": "审计机构", "form": "copy"})
    assert posted.get_json()["third_party"] == "审计机构" and posted.get_json()["form"] == "copy"
    bad = office.post(url, "lead", json={"ends_on": "2000-01-01"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "ends_on"
    assert office.post(url, "handler", json={"form": "view"}).status_code == 403
    move(office, filed["id"], "submit", "lead")
    assert office.post(url, "lead", json={"form": "view"}).status_code == 409
    assert office.get(url, "lead").get_json()["form"] == "copy"


def test_list_filters_by_state(office, case):
    aid = case["agreement"]["id"]
    item = case["items"][0]["id"]
    draft = file_request(office, aid, [item])
    sent = file_request(office, aid, [item])
    move(office, sent["id"], "submit", "lead")
    url = f"/api/v1/agreements/{aid}/disclosures"
    everything = office.get(url, "handler").get_json()["disclosures"]
    assert [d["id"] for d in everything] == [draft["id"], sent["id"]]
    submitted = office.get(url + "?state=submitted", "handler").get_json()["disclosures"]
    assert [d["id"] for d in submitted] == [sent["id"]]
    bad = office.get(url + "?state=nonsense", "handler")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "state"
    assert office.get(url, "staff").status_code == 403


# Authorization before state; illegal moves; separation of duties.


@pytest.mark.parametrize(
    ("verb", "who"),
    [
        ("approve", "handler"),
        ("approve", "lead"),
        ("approve", "staff"),
        ("approve", "audit"),
        ("review", "approver"),
        ("review", "lead"),
        ("submit", "handler"),
        ("withdraw", "approver"),
    ],
)
def test_a_role_that_may_never_move_gets_403_whatever_the_state(office, case, verb, who):
    filed = file_request(office, case["agreement"]["id"], [case["items"][0]["id"]])
    response = office.post(f"/api/v1/disclosures/{filed['id']}/{verb}", who)
    assert response.status_code == 403
    assert state(office, filed["id"]) == "draft"
    denial = office.audit_entries(action=f"disclosure:{verb}", decision="deny")[-1]
    assert denial["actor"] == who and denial["rule"]


def test_illegal_moves_are_409_and_change_nothing(office, case):
    aid = case["agreement"]["id"]
    filed = file_request(office, aid, [case["items"][0]["id"]])
    did = filed["id"]
    move(office, did, "approve", "approver", expect=409)
    move(office, did, "review", "handler", expect=409)
    move(office, did, "submit", "lead")
    move(office, did, "submit", "lead", expect=409)
    move(office, did, "approve", "approver", expect=409)  # not reviewed yet
    assert state(office, did) == "submitted"
    assert (
        office.post(f"/api/v1/disclosures/{did}", "lead", json={"form": "copy"}).status_code == 409
    )
    move(office, did, "review", "handler")
    move(office, did, "review", "handler", expect=409)
    move(office, did, "approve", "approver")
    move(office, did, "withdraw", "lead", expect=409)
    move(office, did, "deny", "approver", expect=409, json={"reason": "too late"})
    move(office, did, "approve", "approver", expect=409)
    assert state(office, did) == "approved"
    refusals = office.audit_entries(action="disclosure:approve", decision="deny")
    assert refusals and all("cannot approve" in e["rule"] for e in refusals)
    # No approval exists for a request that was never approved.
    other = file_request(office, aid, [case["items"][0]["id"]])
    assert office.get(f"/api/v1/disclosures/{other['id']}/approval", "lead").status_code == 404


def test_the_filer_never_reviews_and_the_reviewer_never_approves(office, runtime, case):
    office.user("dual", "office_handler")
    office.user("lead2", "vendor_lead")
    with as_operator(runtime) as ctx:
        policy.assign_role(ctx.db, "dual", "office_approver")
        policy.assign_role(ctx.db, "lead2", "office_handler")
    aid = case["agreement"]["id"]
    mine = file_request(office, aid, [case["items"][0]["id"]], as_="lead2")
    move(office, mine["id"], "submit", "lead2")
    own = move(office, mine["id"], "review", "lead2", expect=403)
    assert "filer" in own["error"]["message"]
    assert state(office, mine["id"]) == "submitted"

    filed = file_request(office, aid, [case["items"][0]["id"]])
    move(office, filed["id"], "submit", "lead")
    move(office, filed["id"], "review", "dual")
    twice = move(office, filed["id"], "approve", "dual", expect=403)
    assert "two people" in twice["error"]["message"]
    move(office, filed["id"], "deny", "dual", expect=403, json={"reason": "no"})
    assert state(office, filed["id"]) == "reviewed"
    denials = office.audit_entries(actor="dual", decision="deny")
    assert {e["action"] for e in denials} == {"disclosure:approve", "disclosure:deny"}
    assert all("separation of duties" in e["rule"] for e in denials)
    assert move(office, filed["id"], "approve", "approver")["state"] == "approved"


def test_deny_needs_a_reason_and_tells_the_filer(office, runtime, case):
    filed = file_request(office, case["agreement"]["id"], [case["items"][0]["id"]])
    move(office, filed["id"], "submit", "lead")
    missing = move(office, filed["id"], "deny", "handler", expect=400, json={})
    assert missing["error"]["field"] == "reason"
    blank = move(office, filed["id"], "deny", "handler", expect=400, json={"reason": "  "})
    assert blank["error"]["field"] == "reason"
    assert state(office, filed["id"]) == "submitted"
    denied = move(office, filed["id"], "deny", "handler", json={"reason": "purpose too broad"})
    assert denied["state"] == "denied" and denied["deny_reason"] == "purpose too broad"
    messages = outbox_for(runtime, recipient_user_id=user_id(runtime, "lead"))
    assert "denied" in messages[-1].subject and "purpose too broad" in messages[-1].body
    assert office.get(f"/api/v1/disclosures/{filed['id']}/approval", "lead").status_code == 404


def test_only_the_filer_withdraws_before_a_decision(office, case):
    office.user("lead2", "vendor_lead")
    filed = file_request(office, case["agreement"]["id"], [case["items"][0]["id"]])
    move(office, filed["id"], "submit", "lead")
    move(office, filed["id"], "withdraw", "lead2", expect=403)
    assert move(office, filed["id"], "withdraw", "lead")["state"] == "withdrawn"
    move(office, filed["id"], "review", "handler", expect=409)


# Bad input and refused items.


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"starts_on": "2030-02-01", "ends_on": "2030-01-31"}, "ends_on"),
        ({"starts_on": "2020-01-01", "ends_on": "2020-02-01"}, "ends_on"),
        ({"form": "show"}, "form"),
        ({"item_ids": [99999]}, "item_ids"),
        ({"item_ids": "FOREIGN"}, "item_ids"),
        ({"item_ids": []}, "item_ids"),
        ({"third_party": ""}, "third_party"),
        ({"third_party": "   "}, "third_party"),
        ({"purpose": None}, "purpose"),
        ({"starts_on": "2030-02-30"}, "starts_on"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_requests_are_400_naming_the_field(office, case, change, field):
    aid = case["agreement"]["id"]
    if change.get("item_ids") == "FOREIGN":
        change = {"item_ids": [case["items"][0]["id"], case["foreign"]["id"]]}
    body = {**request_body(office, [case["items"][0]["id"]]), **change}
    response = office.post(f"/api/v1/agreements/{aid}/disclosures", "lead", json=body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["field"] == field
    assert office.get(f"/api/v1/agreements/{aid}/disclosures", "lead").get_json() == {
        "disclosures": []
    }


def test_requests_for_items_that_are_gone_or_free_are_409(office, runtime, case):
    aid = case["agreement"]["id"]
    public = office.item(aid, title="published guide", public=True)
    declassified = office.item(aid, title="old design")
    office.post(
        f"/api/v1/items/{declassified['id']}/declassify",
        "approver",
        json={"status": "declassified", "reason": "superseded"},
    )
    destroyed = office.item(aid, title="old dump")
    with runtime.sessions() as db:
        db.get(Item, destroyed["id"]).status = "destroyed"
        db.commit()
    recalled = office.item(aid, title="recalled")
    office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [recalled["id"]], "reason": "no longer needed"},
    )
    for item in (public, declassified, destroyed, recalled):
        response = office.post(
            f"/api/v1/agreements/{aid}/disclosures", "lead", json=request_body(office, [item["id"]])
        )
        assert response.status_code == 409, item
        assert "is " in response.get_json()["error"]["message"]
    assert (
        office.get(f"/api/v1/agreements/{aid}/disclosures", "lead").get_json()["disclosures"] == []
    )
    assert office.audit_entries(action="disclosure:create", decision="deny")


def test_a_draft_whose_item_was_recalled_cannot_go_forward(office, case):
    aid = case["agreement"]["id"]
    first = case["items"][0]
    filed = file_request(office, aid, [first["id"]])
    move(office, filed["id"], "submit", "lead")
    office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [first["id"]], "reason": "taken back"},
    )
    refused = move(office, filed["id"], "review", "handler", expect=409)
    assert "recalled" in refused["error"]["message"]


def test_a_draft_may_swap_a_recalled_item_for_a_protected_one(office, case):
    aid = case["agreement"]["id"]
    first, second = case["items"]
    draft = file_request(office, aid, [first["id"]])
    office.post(
        f"/api/v1/agreements/{aid}/recalls",
        "approver",
        json={"item_ids": [first["id"]], "reason": "taken back"},
    )
    move(office, draft["id"], "submit", "lead", expect=409)
    url = f"/api/v1/disclosures/{draft['id']}"
    assert office.post(url, "lead", json={"item_ids": [first["id"]]}).status_code == 409
    swapped = office.post(url, "lead", json={"item_ids": [second["id"]]})
    assert swapped.status_code == 200 and swapped.get_json()["item_ids"] == [second["id"]]
    assert move(office, draft["id"], "submit", "lead")["state"] == "submitted"


# Time: expiry of undecided requests, windows.


def _age_submission(runtime, disclosure_id: int, days: int) -> None:
    with runtime.sessions() as db:
        db.get(Disclosure, disclosure_id).submitted_at = datetime.now(UTC) - timedelta(days=days)
        db.commit()


def test_an_undecided_request_expires_after_14_days(
    office, runtime, case, keys_home, database_url, monkeypatch
):
    aid = case["agreement"]["id"]
    item = case["items"][0]["id"]
    old = file_request(office, aid, [item])
    move(office, old["id"], "submit", "lead")
    move(office, old["id"], "review", "handler")
    recent = file_request(office, aid, [item])
    move(office, recent["id"], "submit", "lead")
    _age_submission(runtime, old["id"], 15)
    _age_submission(runtime, recent["id"], 13)
    # Overdue counts as expired at once, before any sweep: acting on it is an illegal move.
    assert state(office, old["id"]) == "expired"
    move(office, old["id"], "approve", "approver", expect=409)
    assert state(office, recent["id"]) == "submitted"

    monkeypatch.setenv("GOVERN_HOME", str(keys_home))
    result = CliRunner().invoke(main, ["disclosures", "expire", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert f"[{old['id']}]" in result.output
    swept = office.audit_entries(action="disclosure:expire")
    assert [(e["actor"], e["target"]) for e in swept] == [("system", f"disclosure:{old['id']}")]
    assert "14 days" in swept[0]["rule"]
    with runtime.sessions() as db:
        assert db.get(Disclosure, old["id"]).state == "expired"
    expired = outbox_for(runtime, recipient_user_id=user_id(runtime, "lead"))
    assert "expired" in expired[-1].subject
    again = CliRunner().invoke(main, ["disclosures", "expire", "--database-url", database_url])
    assert "expired 0" in again.output


def test_grants_only_for_approved_requests_inside_the_window(office, case):
    aid = case["agreement"]["id"]
    item = case["items"][0]["id"]
    filed = file_request(office, aid, [item])
    assert office.post(f"/api/v1/disclosures/{filed['id']}/grants", "lead").status_code == 409
    later = approved_request(office, aid, [item], **window(office, start_in=3))
    early = office.post(f"/api/v1/disclosures/{later['id']}/grants", "lead")
    assert early.status_code == 409 and "opens on" in early.get_json()["error"]["message"]
    approved = approved_request(office, aid, [item])
    for who in ("handler", "approver", "staff", "audit"):
        assert office.post(f"/api/v1/disclosures/{approved['id']}/grants", who).status_code == 403
    assert office.get(f"/api/v1/disclosures/{approved['id']}/grants", "lead").get_json() == {
        "grants": []
    }


def test_a_grant_stops_when_its_window_has_passed(office, runtime, case):
    item = case["items"][0]["id"]
    approved = approved_request(office, case["agreement"]["id"], [item])
    token = issue_grant(office, approved["id"])["token"]
    assert shared(office, item, token).status_code == 200
    # The office's calendar moves past the window: the live check refuses although the token
    # itself (exp) has not run out in this test.
    with runtime.sessions() as db:
        d = db.get(Disclosure, approved["id"])
        d.starts_on = office_today(office) - timedelta(days=10)
        d.ends_on = office_today(office) - timedelta(days=1)
        db.commit()
    refused = shared(office, item, token)
    assert refused.status_code == 403
    assert state(office, approved["id"]) == "expired"


# Two approvers racing on one request: exactly one wins.


def test_two_approvers_racing_on_one_request_exactly_one_wins(office, app, case):
    office.user("approver2", "office_approver")
    tokens = {name: office.login(name) for name in ("approver", "approver2")}
    for _round in range(3):
        filed = file_request(office, case["agreement"]["id"], [case["items"][0]["id"]])
        move(office, filed["id"], "submit", "lead")
        move(office, filed["id"], "review", "handler")
        barrier = threading.Barrier(2)
        results: dict[str, int] = {}

        def approve(name: str, did: int = filed["id"]) -> None:
            client = app.test_client()
            barrier.wait()
            response = client.post(
                f"/api/v1/disclosures/{did}/approve",
                headers={"Authorization": f"Bearer {tokens[name]}"},
            )
            results[name] = response.status_code

        threads = [threading.Thread(target=approve, args=(n,)) for n in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) == [200, 409], results
        winner = next(n for n, s in results.items() if s == 200)
        sealed = office.get(f"/api/v1/disclosures/{filed['id']}/approval", "lead").get_json()
        assert json.loads(sealed["document"])["approved"]["by"] == winner
        allowed = [
            e
            for e in office.audit_entries(action="disclosure:approve", decision="allow")
            if e["target"] == f"disclosure:{filed['id']}"
        ]
        assert [e["actor"] for e in allowed] == [winner]
        # The loser's refusal is a decision too, in the trail with its reason.
        loser = next(n for n in results if n != winner)
        refused = office.audit_entries(actor=loser, action="disclosure:approve", decision="deny")
        assert refused and refused[-1]["target"] == f"disclosure:{filed['id']}"
        assert any(s in refused[-1]["rule"] for s in ("cannot approve", "moved by someone else"))
    assert office.get("/api/v1/audit/verify", "audit").get_json()["ok"] is True
