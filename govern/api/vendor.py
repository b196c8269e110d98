"""Routes for the vendor domain: staff NDAs (clause 3.8), need-to-know (clause 3.5),
subcontractors and their minimisation records (clause 3.7), and breaches (clauses 7, 3.9)."""

from __future__ import annotations

from govern.actions import Action
from govern.api import endpoint
from govern.api.disclosures import opinion_from_body
from govern.audit import iso
from govern.schema import Base64, Bool, Date, Enum, Id, Int, List, Schema, Sha256, Str
from govern.services import breaches, ndas, subcontractors

NDA_IN = Schema(
    "NdaCreate",
    username=Str(max_len=64),
    signed_on=Date(),
    expires_on=Date(),
    document_sha256=Sha256(description="sha256 of the signed NDA document"),
    document_b64=Base64(required=False, description="the signed PDF; stored encrypted"),
)
NDA_RENEW_IN = Schema(
    "NdaRenew",
    expires_on=Date(),
    document_sha256=Sha256(),
    signed_on=Date(required=False, description="default: today"),
    document_b64=Base64(required=False),
)
NTK_IN = Schema(
    "NeedToKnowGrant",
    username=Str(max_len=64),
    item_ids=List(of=Id(), min_items=1, max_items=500),
    reason=Str(max_len=2000, multiline=True),
    ends_on=Date(required=False),
)
REASON_IN = Schema("Reason", reason=Str(max_len=2000, multiline=True))
SUBCONTRACTOR_IN = Schema(
    "SubcontractorCreate",
    name=Str(max_len=300),
    service=Str(max_len=300),
    dsa_signed_on=Date(),
    dsa_expires_on=Date(),
    dsa_sha256=Sha256(description="sha256 of the signed data-security agreement"),
    purpose=Str(max_len=2000, multiline=True),
    item_ids=List(of=Id(), min_items=1, max_items=500),
    fields=List(of=Str(max_len=100), max_items=500),
    whole_items=List(
        of=Id(),
        max_items=500,
        required=False,
        description="items of item_ids shared whole (no field cut); every other item needs fields",
    ),
    until=Date(description="the record's last day; not past the DSA or the agreement's term"),
)
BREACH_IN = Schema(
    "BreachCreate",
    description=Str(max_len=5000, multiline=True),
    responsible_kind=Enum(choices=breaches.RESPONSIBLE_KINDS),
    responsible=Str(max_len=300, description="a username, or a subcontractor id"),
    audit_seqs=List(of=Int(minimum=1), min_items=1, max_items=1000),
    terminate=Bool(required=False, description="ask for termination (clause 7)"),
)


def nda_json(nda, username: str, today) -> dict:
    return {
        "id": nda.id,
        "agreement_id": nda.agreement_id,
        "username": username,
        "signed_on": nda.signed_on.isoformat(),
        "expires_on": nda.expires_on.isoformat(),
        "document_sha256": nda.document_sha256,
        "document_stored": nda.document_ciphertext is not None,
        "renews_id": nda.renews_id,
        "status": ndas.nda_status(nda, today),
    }


def ntk_json(ntk, username: str, today) -> dict:
    return {
        "id": ntk.id,
        "agreement_id": ntk.agreement_id,
        "username": username,
        "item_id": ntk.item_id,
        "reason": ntk.reason,
        "ends_on": ntk.ends_on.isoformat() if ntk.ends_on else None,
        "revoked_at": ntk.revoked_at.isoformat() if ntk.revoked_at else None,
        "status": ndas.ntk_status(ntk, today),
    }


def subcontractor_json(ctx, sub, scopes) -> dict:
    return {
        "id": sub.id,
        "agreement_id": sub.agreement_id,
        "state": sub.state,
        "name": sub.name,
        "service": sub.service,
        "dsa_signed_on": sub.dsa_signed_on.isoformat(),
        "dsa_expires_on": sub.dsa_expires_on.isoformat(),
        "dsa_sha256": sub.dsa_sha256,
        "purpose": sub.purpose,
        "until": sub.until.isoformat(),
        "revoked_at": sub.revoked_at.isoformat() if sub.revoked_at else None,
        "filed_by": subcontractors.username(ctx, sub.registered_by),
        "reviewed_by": subcontractors.username(ctx, sub.reviewed_by),
        "decided_by": subcontractors.username(ctx, sub.decided_by),
        "deny_reason": sub.deny_reason,
        "review_opinion": sub.review_note,
        "decision_opinion": sub.decision_note if sub.deny_reason is None else sub.deny_reason,
        "sealed": sub.approval_jws is not None,
        "whole_items": [s.item_id for s in scopes if not s.fields],
        "scopes": [
            {"item_id": s.item_id, "fields": s.fields, "ended": s.ended_at is not None}
            for s in scopes
        ],
    }


def breach_json(breach, agreement) -> dict:
    return {
        "id": breach.id,
        "agreement_id": breach.agreement_id,
        "description": breach.description,
        "responsible_kind": breach.responsible_kind,
        "responsible": breach.responsible,
        "audit_seqs": breach.audit_seqs,
        # clause 3.9: whoever did it, the breach is the vendor's.
        "attributed_to": agreement.vendor,
        "liquidated_damages": f"{breach.liquidated_damages:.2f}",
        "currency": agreement.currency,
        "created_at": breach.created_at.isoformat(),
    }


# Staff NDAs (clause 3.8).


@endpoint(
    "/agreements/<int:agreement_id>/ndas",
    "POST",
    summary="Register a staff member's NDA",
    tag="vendor",
    body=NDA_IN,
    status=201,
    action=Action.NDA_CREATE,
)
def create_nda(ctx, data, agreement_id):
    nda = ndas.create_nda(ctx, agreement_id, data)
    return nda_json(nda, data["username"].strip().lower(), ctx.today())


@endpoint(
    "/agreements/<int:agreement_id>/ndas",
    summary="Staff NDAs of an agreement",
    tag="vendor",
    action=Action.NDA_LIST,
)
def list_ndas(ctx, agreement_id):
    today = ctx.today()
    return {"ndas": [nda_json(n, u, today) for n, u in ndas.list_ndas(ctx, agreement_id)]}


@endpoint(
    "/ndas/<int:nda_id>/renew",
    "POST",
    summary="Renew an NDA (a new NDA that renews this one)",
    tag="vendor",
    body=NDA_RENEW_IN,
    status=201,
    action=Action.NDA_RENEW,
)
def renew_nda(ctx, data, nda_id):
    nda = ndas.renew_nda(ctx, nda_id, data)
    return nda_json(nda, ndas.username_of(ctx, nda.user_id), ctx.today())


# Need-to-know (clause 3.5).


@endpoint(
    "/agreements/<int:agreement_id>/need-to-know",
    "POST",
    summary="Grant a staff member need-to-know for items",
    tag="vendor",
    body=NTK_IN,
    status=201,
    action=Action.NTK_GRANT,
)
def grant_need_to_know(ctx, data, agreement_id):
    grants = ndas.grant_need_to_know(ctx, agreement_id, data)
    username = data["username"].strip().lower()
    return {"need_to_know": [ntk_json(g, username, ctx.today()) for g in grants]}


@endpoint(
    "/agreements/<int:agreement_id>/need-to-know",
    summary="Need-to-know grants of an agreement",
    tag="vendor",
    action=Action.NTK_LIST,
)
def list_need_to_know(ctx, agreement_id):
    today = ctx.today()
    rows = ndas.list_need_to_know(ctx, agreement_id)
    return {"need_to_know": [ntk_json(g, u, today) for g, u in rows]}


@endpoint(
    "/need-to-know/<int:ntk_id>/revoke",
    "POST",
    summary="Revoke a need-to-know grant",
    tag="vendor",
    body=REASON_IN,
    action=Action.NTK_REVOKE,
)
def revoke_need_to_know(ctx, data, ntk_id):
    ntk = ndas.revoke_need_to_know(ctx, ntk_id, data)
    return ntk_json(ntk, ndas.username_of(ctx, ntk.user_id), ctx.today())


# Subcontractors and minimisation records (clause 3.7).


def _sub(ctx, sub) -> dict:
    return subcontractor_json(ctx, sub, subcontractors.scopes_of(ctx, sub))


@endpoint(
    "/agreements/<int:agreement_id>/subcontractors",
    "POST",
    summary="File a subcontractor's record for the office's approval (clause 3.5 + 3.7)",
    tag="vendor",
    body=SUBCONTRACTOR_IN,
    status=201,
    action=Action.SUBCONTRACTOR_CREATE,
)
def create_subcontractor(ctx, data, agreement_id):
    return _sub(ctx, subcontractors.create(ctx, agreement_id, data))


@endpoint(
    "/agreements/<int:agreement_id>/subcontractors",
    summary="Subcontractors of an agreement with their records",
    tag="vendor",
    action=Action.SUBCONTRACTOR_LIST,
)
def list_subcontractors(ctx, agreement_id):
    rows = subcontractors.list_for(ctx, agreement_id)
    return {"subcontractors": [subcontractor_json(ctx, s, scopes) for s, scopes in rows]}


@endpoint(
    "/subcontractors/<int:sub_id>",
    summary="One subcontractor record",
    tag="vendor",
    action=Action.SUBCONTRACTOR_LIST,
)
def get_subcontractor(ctx, sub_id):
    return _sub(ctx, subcontractors.get(ctx, sub_id))


def _sub_move(rule: str, summary: str, action: Action, service):
    def handler(ctx, sub_id):
        return _sub(ctx, service(ctx, sub_id))

    handler.__name__ = f"{action.verb}_subcontractor"
    endpoint(rule, "POST", summary=summary, tag="vendor", action=action)(handler)


_sub_move(
    "/subcontractors/<int:sub_id>/review",
    "First-level review of a subcontractor record (office_handler); optional body "
    '{"opinion"}: the handler\'s 审核意见',
    Action.SUBCONTRACTOR_REVIEW,
    lambda ctx, ident: subcontractors.review(ctx, ident, opinion_from_body()),
)
_sub_move(
    "/subcontractors/<int:sub_id>/approve",
    "Approve a subcontractor record and seal it (office_approver); optional body "
    '{"opinion"}: the approver\'s 审核意见, sealed with the decision',
    Action.SUBCONTRACTOR_APPROVE,
    lambda ctx, ident: subcontractors.approve(ctx, ident, opinion_from_body()),
)


@endpoint(
    "/subcontractors/<int:sub_id>/deny",
    "POST",
    summary="Deny a subcontractor record, with a reason",
    tag="vendor",
    body=REASON_IN,
    action=Action.SUBCONTRACTOR_DENY,
)
def deny_subcontractor(ctx, data, sub_id):
    return _sub(ctx, subcontractors.deny(ctx, sub_id, data["reason"]))


@endpoint(
    "/subcontractors/<int:sub_id>/approval",
    summary="The sealed approval of a subcontractor record: the signed document and its JWS",
    tag="vendor",
    action=Action.SUBCONTRACTOR_LIST,
)
def subcontractor_approval(ctx, sub_id):
    return subcontractors.approval(ctx, sub_id)


@endpoint(
    "/subcontractors/<int:sub_id>/token",
    "POST",
    summary="The client token of an approved record (shown once; an earlier one stops working)",
    tag="vendor",
    status=201,
    action=Action.SUBCONTRACTOR_TOKEN,
)
def subcontractor_token(ctx, sub_id):
    sub, token, expires_at = subcontractors.issue_token(ctx, sub_id)
    return {"id": sub.id, "client_token": token, "expires_at": iso(expires_at)}


@endpoint(
    "/subcontractors/<int:sub_id>/rotate",
    "POST",
    summary="A new client token for an approved record; the old one stops working",
    tag="vendor",
    action=Action.SUBCONTRACTOR_ROTATE,
)
def rotate_subcontractor(ctx, sub_id):
    sub, token = subcontractors.rotate(ctx, sub_id)
    return {"id": sub.id, "client_token": token}


@endpoint(
    "/subcontractors/<int:sub_id>/revoke",
    "POST",
    summary="Revoke a subcontractor: its token and its record end",
    tag="vendor",
    body=REASON_IN,
    action=Action.SUBCONTRACTOR_REVOKE,
)
def revoke_subcontractor(ctx, data, sub_id):
    return _sub(ctx, subcontractors.revoke(ctx, sub_id, data["reason"]))


@endpoint(
    "/subcontractors/<int:sub_id>/report",
    summary="Minimisation report: what it may receive beside what it has received",
    tag="vendor",
    action=Action.SUBCONTRACTOR_REPORT,
)
def subcontractor_report(ctx, sub_id):
    return subcontractors.report(ctx, sub_id)


# Breaches (clauses 7, 3.9).


@endpoint(
    "/agreements/<int:agreement_id>/breaches",
    "POST",
    summary="Record a breach tied to audit entries",
    tag="vendor",
    body=BREACH_IN,
    status=201,
    action=Action.BREACH_CREATE,
)
def create_breach(ctx, data, agreement_id):
    breach, agreement, manifest = breaches.create(ctx, agreement_id, data)
    body = {**breach_json(breach, agreement), "termination_requested": manifest is not None}
    if manifest is not None:
        body.update(agreement_status=agreement.status, return_manifest=manifest)
    return body


@endpoint(
    "/agreements/<int:agreement_id>/breaches",
    summary="Breaches recorded against an agreement",
    tag="vendor",
    action=Action.BREACH_LIST,
)
def list_breaches(ctx, agreement_id):
    agreement, rows = breaches.list_for(ctx, agreement_id)
    return {"breaches": [breach_json(b, agreement) for b in rows]}
