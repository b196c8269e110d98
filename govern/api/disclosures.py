"""Disclosure requests (clause 3.6), their sealed approvals, and the grants they hand out."""

from __future__ import annotations

from flask import request

from govern.actions import Action
from govern.api import _json_body, endpoint, query_int, query_text
from govern.db import MAX_ID
from govern.schema import Date, Enum, Id, List, Schema, Str
from govern.services import disclosures, grants

_FIELDS = {
    "third_party": Str(max_len=300, description="who the data is shown to"),
    "purpose": Str(max_len=2000, multiline=True),
    "form": Enum(choices=disclosures.FORMS),
    "item_ids": List(of=Id(), min_items=1, max_items=500),
    "starts_on": Date(),
    "ends_on": Date(),
}
DISCLOSURE_IN = Schema("DisclosureCreate", **_FIELDS)
DISCLOSURE_EDIT = Schema(
    "DisclosureEdit",
    **{name: type(f)(**{**f.__dict__, "required": False}) for name, f in _FIELDS.items()},
)
DENY_IN = Schema("DisclosureDeny", reason=Str(max_len=2000, multiline=True))
# The reviewer's opinion (审核意见) that a review or an approval may carry; the body is optional.
OPINION_IN = Schema("DisclosureOpinion", opinion=Str(required=False, max_len=2000, multiline=True))


def opinion_from_body() -> str | None:
    """The optional ``{"opinion": ...}`` of a review or an approval (no body: no opinion)."""
    if not request.get_data(cache=True):
        return None
    return OPINION_IN.validate(_json_body()).get("opinion")


def disclosure_json(ctx, d) -> dict:
    return disclosures.as_json(ctx, d)


@endpoint(
    "/agreements/<int:agreement_id>/disclosures",
    "POST",
    summary="File a disclosure request (clause 3.6)",
    tag="disclosures",
    body=DISCLOSURE_IN,
    status=201,
    action=Action.DISCLOSURE_CREATE,
)
def create_disclosure(ctx, data, agreement_id):
    return disclosure_json(ctx, disclosures.create(ctx, agreement_id, data))


@endpoint(
    "/agreements/<int:agreement_id>/disclosures",
    summary="List an agreement's disclosure requests (?state=&third_party=&item=)",
    tag="disclosures",
    query=("state", "third_party", "item"),
    action=Action.DISCLOSURE_LIST,
)
def list_disclosures(ctx, agreement_id):
    # Each request's items and people are read for all of them at once, not per request.
    found = disclosures.list_for(
        ctx,
        agreement_id,
        request.args.get("state") or None,
        third_party=query_text("third_party", 300),
        item_id=query_int("item", 0, 1, MAX_ID) or None,
    )
    return {"disclosures": disclosures.rows_json(ctx, found)}


@endpoint(
    "/disclosures/<int:disclosure_id>",
    summary="One disclosure request",
    tag="disclosures",
    action=Action.DISCLOSURE_READ,
)
def get_disclosure(ctx, disclosure_id):
    return disclosure_json(ctx, disclosures.get(ctx, disclosure_id))


def _edit(ctx, data, disclosure_id):
    return disclosure_json(ctx, disclosures.edit(ctx, disclosure_id, data))


@endpoint(
    "/disclosures/<int:disclosure_id>",
    "PATCH",
    summary="Edit a draft request",
    tag="disclosures",
    body=DISCLOSURE_EDIT,
    action=Action.DISCLOSURE_EDIT,
)
def patch_disclosure(ctx, data, disclosure_id):
    return _edit(ctx, data, disclosure_id)


@endpoint(
    "/disclosures/<int:disclosure_id>",
    "POST",
    summary="Edit a draft request (for clients without PATCH)",
    tag="disclosures",
    body=DISCLOSURE_EDIT,
    action=Action.DISCLOSURE_EDIT,
)
def post_disclosure(ctx, data, disclosure_id):
    return _edit(ctx, data, disclosure_id)


def _move(rule: str, summary: str, action: Action, service):
    """The state moves without a body share one shape: decide, move, return the request."""

    def handler(ctx, disclosure_id):
        return disclosure_json(ctx, service(ctx, disclosure_id))

    handler.__name__ = f"{action.verb}_disclosure"
    endpoint(rule, "POST", summary=summary, tag="disclosures", action=action)(handler)


_move(
    "/disclosures/<int:disclosure_id>/submit",
    "Submit a draft for review",
    Action.DISCLOSURE_SUBMIT,
    disclosures.submit,
)
_move(
    "/disclosures/<int:disclosure_id>/review",
    'First-level review (office_handler); optional body {"opinion"}: the handler\'s 审核意见',
    Action.DISCLOSURE_REVIEW,
    lambda ctx, ident: disclosures.review(ctx, ident, opinion_from_body()),
)
_move(
    "/disclosures/<int:disclosure_id>/approve",
    'Approve and seal (office_approver); optional body {"opinion"}: the approver\'s 审核意见, '
    "sealed with the decision",
    Action.DISCLOSURE_APPROVE,
    lambda ctx, ident: disclosures.approve(ctx, ident, opinion_from_body()),
)
_move(
    "/disclosures/<int:disclosure_id>/withdraw",
    "Withdraw before a decision (the filer)",
    Action.DISCLOSURE_WITHDRAW,
    disclosures.withdraw,
)


@endpoint(
    "/disclosures/<int:disclosure_id>/deny",
    "POST",
    summary="Deny, with a reason",
    tag="disclosures",
    body=DENY_IN,
    action=Action.DISCLOSURE_DENY,
)
def deny_disclosure(ctx, data, disclosure_id):
    return disclosure_json(ctx, disclosures.deny(ctx, disclosure_id, data["reason"]))


@endpoint(
    "/disclosures/<int:disclosure_id>/approval",
    summary="The sealed approval: the signed document and its compact JWS",
    tag="disclosures",
    action=Action.DISCLOSURE_READ,
)
def disclosure_approval(ctx, disclosure_id):
    return disclosures.approval(ctx, disclosure_id)


@endpoint(
    "/disclosures/<int:disclosure_id>/grants",
    "POST",
    summary="Hand a third party a grant token for an approved request",
    tag="grants",
    status=201,
    action=Action.GRANT_ISSUE,
)
def issue_grant(ctx, disclosure_id):
    grant, token = grants.issue(ctx, disclosure_id)
    return {**grants.as_json(ctx, grant), "token": token}


@endpoint(
    "/disclosures/<int:disclosure_id>/grants",
    summary="A request's grants and every use of them",
    tag="grants",
    action=Action.GRANT_LIST,
)
def list_grants(ctx, disclosure_id):
    found = grants.list_for(ctx, disclosure_id)
    return {"grants": [grants.as_json(ctx, g, with_uses=True) for g in found]}


@endpoint(
    "/grants/<int:grant_id>/revoke",
    "POST",
    summary="Revoke a grant at once",
    tag="grants",
    action=Action.GRANT_REVOKE,
)
def revoke_grant(ctx, grant_id):
    return grants.as_json(ctx, grants.revoke(ctx, grant_id))
