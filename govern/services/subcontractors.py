"""Subcontractors and their minimisation records (clause 3.7).

A subcontractor is a third-party software or service the vendor uses. Its record says, per item,
exactly which fields it may receive, for what purpose and until when, under a signed data-security
agreement (DSA). It holds one client token at a time (rotatable, revocable); every use of the
token is decided against the live record, and what is served is cut down to the record's fields.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import date, datetime

from sqlalchemy import select

from govern import services, shapes, tokens
from govern.actions import Action
from govern.approvals import sealed_approval, sealed_step
from govern.audit import iso
from govern.context import Ctx, Decision, Principal, Target, can, require
from govern.crypto import DecryptError, canonical_json, sha256_hex
from govern.db import utcnow
from govern.errors import Conflict, Invalid, NotFound, Unauthenticated
from govern.messages import Msg
from govern.models import Agreement, AuditEntry, Item, Subcontractor, SubcontractorScope
from govern.models.vendor import SUBCONTRACTOR_OUTBOX_KINDS
from govern.services import agreements, get_or_404, items, outbox
from govern.services.ndas import agreement_items


def target(sub: Subcontractor) -> Target:
    return Target("subcontractor", sub.id, f"agreement:{sub.agreement_id}")


def actor_name(sub_id: int) -> str:
    return f"subcontractor:{sub_id}"


# Registration.


def _check_record(ctx: Ctx, agreement: Agreement, data: dict, today: date) -> None:
    """The DSA and the record's end date, each refusal naming its field (clause 3.7)."""
    signed, expires, until = data["dsa_signed_on"], data["dsa_expires_on"], data["until"]
    if expires < signed:
        raise Invalid(Msg("dsa.ends_before"), field="dsa_expires_on", at="dsa_expires_on")
    if signed > today:
        raise Invalid(Msg("dsa.not_started", day=signed), field="dsa_signed_on", at="dsa_signed_on")
    if expires < today:
        raise Invalid(Msg("dsa.lapsed", day=expires), field="dsa_expires_on", at="dsa_expires_on")
    if until < today:
        raise Invalid(Msg("date.past"), field="until", at="until")
    if until > expires:
        raise Invalid(Msg("record.outlasts_dsa", day=expires), field="until", at="until")
    term_end = agreements.term_ends_on(agreement)
    if until > term_end:
        raise Invalid(
            Msg("record.outlasts_term", day=term_end),
            field="until",
            at="until",
        )


def _scopes(found: list[Item], fields: list[str], whole: list[int]) -> list[tuple[Item, list[str]]]:
    """Per item, the record's fields that the item declares (data minimisation, clause 3.7); an
    item goes whole only when the record names it in ``whole_items``, for the office to see."""
    ids = {item.id for item in found}
    stray = [i for i in whole if i not in ids]
    if stray:
        raise Invalid(Msg("record.stray_whole", ids=stray), field="whole_items", at="whole_items")
    declared = {f for item in found if item.id not in whole for f in item.fields}
    unknown = [f for f in fields if f not in declared]
    if unknown:
        raise Invalid(Msg("record.unknown_fields", names=unknown), field="fields", at="fields")
    scopes = []
    for item in found:
        if item.id in whole:
            scopes.append((item, []))
            continue
        mine = [f for f in fields if f in item.fields]
        if not mine:
            # An empty scope would mean "the whole item", which must be asked for by name.
            raise Invalid(
                Msg("record.no_fields", id=item.id),
                field="fields",
                at="fields",
            )
        scopes.append((item, mine))
    return scopes


def token_expiry(ctx: Ctx, until: date) -> datetime:
    """The end of the record's last day, on the office's calendar."""
    return ctx.clock.end_of_day(until)


def _issue_token(ctx: Ctx, sub: Subcontractor) -> str:
    token, jti = tokens.issue_party_token(
        ctx.keys,
        ctx.settings.issuer,
        tokens.SUBCONTRACTOR_AUDIENCE,
        str(sub.id),
        token_expiry(ctx, sub.until),
    )
    sub.token_jti = jti
    return token


def create(ctx: Ctx, agreement_id: int, data: dict) -> Subcontractor:
    """File a subcontractor's record for the office (clause 3.5 + 3.7): ``submitted``, no token."""
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    decision = require(
        ctx,
        Action.SUBCONTRACTOR_CREATE,
        agreements.target(agreement),
        [agreements.is_active(agreement)],
    )
    _check_record(ctx, agreement, data, ctx.today())
    found = agreement_items(ctx, agreement, data["item_ids"])
    scopes = _scopes(found, data["fields"], data.get("whole_items", []))
    sub = Subcontractor(
        agreement_id=agreement.id,
        name=data["name"],
        service=data["service"],
        dsa_signed_on=data["dsa_signed_on"],
        dsa_expires_on=data["dsa_expires_on"],
        dsa_sha256=data["dsa_sha256"],
        purpose=data["purpose"],
        until=data["until"],
        registered_by=ctx.principal.id,
        state="submitted",
    )
    ctx.db.add(sub)
    ctx.db.flush()
    ctx.db.add_all(
        SubcontractorScope(subcontractor_id=sub.id, item_id=item.id, fields=fields)
        for item, fields in scopes
    )
    ctx.db.flush()
    decision.entry.target = str(target(sub))
    decision.record(
        name=sub.name,
        purpose=sub.purpose,
        until=sub.until.isoformat(),
        dsa_sha256=sub.dsa_sha256,
        scope={str(item.id): fields for item, fields in scopes},
        whole_items=[item.id for item, fields in scopes if not fields],
        state=sub.state,
    )
    _notify_office(ctx, sub, "office_handler", "submitted")
    return sub


# The office's review, approval (sealed) or denial: the same two steps as a disclosure request.

MOVES = {
    Action.SUBCONTRACTOR_REVIEW: ("submitted",),
    Action.SUBCONTRACTOR_APPROVE: ("reviewed",),
    Action.SUBCONTRACTOR_DENY: ("submitted", "reviewed"),
}


def _not_the_filer(ctx: Ctx, sub: Subcontractor):
    return lambda: Msg("duty.record_filer") if sub.registered_by == ctx.principal.id else None


def _not_the_reviewer(ctx: Ctx, sub: Subcontractor):
    return lambda: (
        Msg("duty.record_reviewer")
        if sub.reviewed_by is not None and sub.reviewed_by == ctx.principal.id
        else None
    )


DUTIES = {
    Action.SUBCONTRACTOR_REVIEW: (_not_the_filer,),
    Action.SUBCONTRACTOR_APPROVE: (_not_the_filer, _not_the_reviewer),
    Action.SUBCONTRACTOR_DENY: (_not_the_filer, _not_the_reviewer),
}


def possible_moves(ctx: Ctx, sub: Subcontractor) -> set[str]:
    """What the reader could do on the record now, for drawing its buttons: the same decision
    point, duties and states as the actions themselves; no trail entry."""
    tgt = target(sub)
    found = {
        str(action)
        for action, states in MOVES.items()
        if sub.state in states
        and can(ctx, action, tgt, [duty(ctx, sub) for duty in DUTIES[action]])
    }
    if sub.state == "approved" and can(ctx, Action.SUBCONTRACTOR_TOKEN, tgt):
        found.add(str(Action.SUBCONTRACTOR_TOKEN))
    if sub.state not in ("revoked", "denied") and can(ctx, Action.SUBCONTRACTOR_REVOKE, tgt):
        found.add(str(Action.SUBCONTRACTOR_REVOKE))
    return found


def _refuse(ctx: Ctx, action: Action, sub: Subcontractor, reason: str) -> Conflict:
    ctx.record(action, target(sub), "deny", reason, keep=True)
    return Conflict(reason)


def _begin(ctx: Ctx, sub_id: int, action: Action) -> tuple[Subcontractor, Decision]:
    """Authorization and duties first (403), then the record's state (409)."""
    sub = get_or_404(ctx.db, Subcontractor, sub_id, "subcontractor")
    checks = [duty(ctx, sub) for duty in DUTIES[action]]
    decision = require(ctx, action, target(sub), checks)
    if sub.state not in MOVES[action]:
        raise _refuse(
            ctx, action, sub, Msg("record.cannot", id=sub.id, state=sub.state, verb=action.verb)
        )
    if action != Action.SUBCONTRACTOR_DENY:
        reason = _approvable(ctx, sub)
        if reason:
            raise _refuse(ctx, action, sub, reason)
    decision.record(**{"from": sub.state})
    return sub, decision


def _approvable(ctx: Ctx, sub: Subcontractor) -> str | None:
    """Why the record may not go forward now: the agreement, its dates, its items."""
    agreement = ctx.db.get(Agreement, sub.agreement_id)
    if agreement.status != "active":
        return Msg("agreement.is", id=agreement.id, status=agreement.status)
    problem = _record_problem(sub, ctx.today())
    if problem:
        return problem
    for scope in scopes_of(ctx, sub):
        item = ctx.db.get(Item, scope.item_id)
        if item.status != "protected":
            return Msg("item.is", id=item.id, status=item.status)
        if scope.ended_at is not None:
            return Msg("scope.ended", id=item.id, reason=scope.ended_reason)
    return None


def _move(sub: Subcontractor, decision: Decision, state: str) -> None:
    decision.record(to=state)
    sub.state = state


def review(ctx: Ctx, sub_id: int, opinion: str | None = None) -> Subcontractor:
    sub, decision = _begin(ctx, sub_id, Action.SUBCONTRACTOR_REVIEW)
    sub.reviewed_by, sub.reviewed_at, sub.review_note = ctx.principal.id, utcnow(), opinion or None
    if opinion:
        decision.record(opinion=opinion)
    _move(sub, decision, "reviewed")
    _notify_office(ctx, sub, "office_approver", "reviewed")
    return sub


def approve(ctx: Ctx, sub_id: int, opinion: str | None = None) -> Subcontractor:
    # clause 3.5 + 3.7: the owner consents in writing, under its seal, to exactly this record.
    sub, decision = _begin(ctx, sub_id, Action.SUBCONTRACTOR_APPROVE)
    sub.decided_by, sub.decided_at, sub.decision_note = ctx.principal.id, utcnow(), opinion or None
    if opinion:
        decision.record(opinion=opinion)
    # Sealed before it is approved: the database refuses an approval without its seal.
    seal = ctx.keys.seal_key
    sub.approval_document = canonical_json(approval_document(ctx, sub))
    sub.approval_jws = seal.sign(sub.approval_document.encode("utf-8"))
    sub.approval_kid = seal.kid
    decision.record(key_id=seal.kid)
    _move(sub, decision, "approved")
    _notify_filer(ctx, sub, "approved")
    return sub


def deny(ctx: Ctx, sub_id: int, reason: str) -> Subcontractor:
    sub, decision = _begin(ctx, sub_id, Action.SUBCONTRACTOR_DENY)
    sub.decided_by, sub.decided_at, sub.deny_reason = ctx.principal.id, utcnow(), reason
    _end_scopes(ctx, sub, f"record denied: {reason}")
    decision.record(reason=reason)
    _move(sub, decision, "denied")
    _notify_filer(ctx, sub, "denied", reason)
    return sub


def approval_document(ctx: Ctx, sub: Subcontractor) -> dict:
    """What the seal covers: the record, each item with its hash and fields, and every step."""
    agreement = ctx.db.get(Agreement, sub.agreement_id)
    scopes = scopes_of(ctx, sub)
    hashes = dict(
        ctx.db.execute(
            select(Item.id, Item.sha256).where(Item.id.in_([s.item_id for s in scopes]))
        ).all()
    )
    return {
        "type": "govern.subcontractor-approval",
        "version": 1,
        "subcontractor_id": sub.id,
        "agreement": {
            "id": agreement.id,
            "title": agreement.title,
            "owner": agreement.owner,
            "vendor": agreement.vendor,
        },
        "name": sub.name,
        "service": sub.service,
        "purpose": sub.purpose,
        "dsa": {
            "signed_on": sub.dsa_signed_on.isoformat(),
            "expires_on": sub.dsa_expires_on.isoformat(),
            "sha256": sub.dsa_sha256,
        },
        "until": sub.until.isoformat(),
        "items": [
            {
                "id": s.item_id,
                "sha256": hashes.get(s.item_id),
                "fields": s.fields,
                "whole_item": not s.fields,
            }
            for s in scopes
        ],
        "filed": {"by": username(ctx, sub.registered_by), "at": iso(sub.created_at)},
        "reviewed": sealed_step(
            username(ctx, sub.reviewed_by), iso(sub.reviewed_at), sub.review_note
        ),
        "approved": sealed_step(
            username(ctx, sub.decided_by), iso(sub.decided_at), sub.decision_note
        ),
        "decision": "approved",
    }


def approval(ctx: Ctx, sub_id: int) -> dict:
    sub = get(ctx, sub_id)
    if sub.approval_jws is None:
        raise NotFound(Msg("record.no_seal", id=sub.id, state=sub.state))
    return sealed_approval("subcontractor_id", sub)


def username(ctx: Ctx, user_id: int | None) -> str | None:
    return services.username(ctx.db, user_id)


def get(ctx: Ctx, sub_id: int) -> Subcontractor:
    sub = get_or_404(ctx.db, Subcontractor, sub_id, "subcontractor")
    require(ctx, Action.SUBCONTRACTOR_LIST, target(sub))
    return sub


# The client token: only for an approved record.


def _tokenable(ctx: Ctx, action: Action, sub_id: int) -> tuple[Subcontractor, Decision]:
    sub = get_or_404(ctx.db, Subcontractor, sub_id, "subcontractor")
    decision = require(ctx, action, target(sub))
    agreement = ctx.db.get(Agreement, sub.agreement_id)
    reason = None
    if sub.state != "approved":
        reason = Msg("record.no_token", id=sub.id, state=sub.state)
    elif agreement.status != "active":
        reason = Msg("agreement.is", id=agreement.id, status=agreement.status)
    else:
        reason = _record_problem(sub, ctx.today())
    if reason:
        raise _refuse(ctx, action, sub, reason)
    return sub, decision


def issue_token(ctx: Ctx, sub_id: int) -> tuple[Subcontractor, str, datetime]:
    """The client token of an approved record (shown once); any earlier one stops working."""
    sub, decision = _tokenable(ctx, Action.SUBCONTRACTOR_TOKEN, sub_id)
    token = _issue_token(ctx, sub)
    expires_at = token_expiry(ctx, sub.until)
    decision.record(expires_at=iso(expires_at))
    return sub, token, expires_at


def rotate(ctx: Ctx, sub_id: int) -> tuple[Subcontractor, str]:
    """A new client token; the old one stops working at once (only one jti is current)."""
    sub, decision = _tokenable(ctx, Action.SUBCONTRACTOR_ROTATE, sub_id)
    token = _issue_token(ctx, sub)
    decision.record(rotated=True)
    return sub, token


def revoke(ctx: Ctx, sub_id: int, reason: str) -> Subcontractor:
    sub = get_or_404(ctx.db, Subcontractor, sub_id, "subcontractor")
    decision = require(ctx, Action.SUBCONTRACTOR_REVOKE, target(sub))
    if sub.state in ("revoked", "denied"):
        raise Conflict(Msg("record.already", id=sub.id, state=sub.state), field="subcontractor_id")
    sub.revoked_at, sub.token_jti = utcnow(), None
    _end_scopes(ctx, sub, Msg("ended.record_revoked", reason=reason))
    decision.record(reason=reason, **{"from": sub.state, "to": "revoked"})
    sub.state = "revoked"
    return sub


def _end_scopes(ctx: Ctx, sub: Subcontractor, why: str) -> None:
    now = utcnow()
    for scope in scopes_of(ctx, sub):
        if scope.ended_at is None:
            scope.ended_at, scope.ended_reason = now, why


def _notify_office(ctx: Ctx, sub: Subcontractor, role: str, step: str) -> None:
    facts = dict(id=sub.id, name=sub.name, service=sub.service, purpose=sub.purpose)
    outbox.notify(
        ctx,
        f"subcontractor-{step}:{sub.id}",
        SUBCONTRACTOR_OUTBOX_KINDS[("submitted", "reviewed").index(step)],
        Msg(f"notice.subcontractor_{step}", id=sub.id),
        Msg(f"notice.subcontractor_{step}.body", **facts, until=sub.until),
        agreement_id=sub.agreement_id,
        recipient_role=role,
    )


def _notify_filer(ctx: Ctx, sub: Subcontractor, outcome: str, reason: str | None = None) -> None:
    why = {"reason": reason} if reason is not None else {}
    outbox.notify(
        ctx,
        f"subcontractor-decided:{sub.id}:{sub.state}",
        SUBCONTRACTOR_OUTBOX_KINDS[2],
        Msg(f"notice.subcontractor_{outcome}", id=sub.id),
        Msg(f"notice.subcontractor_{outcome}.body", id=sub.id, name=sub.name, **why),
        agreement_id=sub.agreement_id,
        recipient_user_id=sub.registered_by,
    )


def scopes_of(ctx: Ctx, sub: Subcontractor) -> list[SubcontractorScope]:
    return list(
        ctx.db.scalars(
            select(SubcontractorScope)
            .where(SubcontractorScope.subcontractor_id == sub.id)
            .order_by(SubcontractorScope.item_id)
        )
    )


def list_for(ctx: Ctx, agreement_id: int) -> list[tuple[Subcontractor, list[SubcontractorScope]]]:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    require(ctx, Action.SUBCONTRACTOR_LIST, agreements.target(agreement))
    subs = ctx.db.scalars(
        select(Subcontractor)
        .where(Subcontractor.agreement_id == agreement.id)
        .order_by(Subcontractor.id)
    )
    return [(sub, scopes_of(ctx, sub)) for sub in subs]


# What a subcontractor receives.


def _claims(ctx: Ctx, item_id: int | None, token: str) -> tokens.Claims:
    try:
        return tokens.check_party_token(
            ctx.keys, ctx.settings.issuer, token, tokens.SUBCONTRACTOR_AUDIENCE
        )
    except Unauthenticated:
        ctx.record(
            Action.SHARED_READ,
            Target("item", item_id) if item_id is not None else "shared:items",
            "deny",
            Msg("rule.client_invalid"),
            keep=True,
            token_sha256=tokens.fingerprint(token),
        )
        raise


def _holder(ctx: Ctx, item_id: int | None, token: str) -> tuple[Subcontractor, tokens.Claims]:
    claims = _claims(ctx, item_id, token)
    sub = ctx.db.get(Subcontractor, int(claims.subject)) if claims.subject.isdigit() else None
    if sub is None:
        ctx.record(
            Action.SHARED_READ,
            Target("item", item_id) if item_id is not None else "shared:items",
            "deny",
            Msg("rule.client_unknown"),
            keep=True,
            token_sha256=tokens.fingerprint(token),
        )
        raise Unauthenticated(Msg("auth.client_unknown"))
    ctx.principal = Principal("subcontractor", actor_name(sub.id), "subcontractor", sub.id)
    return sub, claims


def covered(ctx: Ctx, token: str) -> dict:
    """What a client token covers, for its holder (GET /shared/items): the record's items with
    their fields (clause 3.7: nothing more is sent), until when, decided and audited like a
    read. Scopes that ended are listed as unavailable, without the office's reason."""
    sub, claims = _holder(ctx, None, token)
    agreement = ctx.db.get(Agreement, sub.agreement_id)
    decision = require(ctx, Action.SHARED_READ, target(sub))
    today = ctx.today()
    problem = (
        _token_problem(sub, claims)
        or _record_problem(sub, today)
        or agreements.is_active(agreement)()
    )
    known = {i.id: i for i in ctx.db.scalars(select(Item).where(Item.agreement_id == agreement.id))}
    shown = []
    for scope in scopes_of(ctx, sub):
        item = known.get(scope.item_id)
        shown.append(
            {
                "id": scope.item_id,
                "title": item.title if item else "",
                "fields": list(scope.fields),
                "whole_item": not scope.fields,
                "available": problem is None
                and scope.ended_at is None
                and item is not None
                and _item_problem(item) is None,
            }
        )
    decision.record(subcontractor=sub.id, listing=True)
    return {
        "holder": "subcontractor",
        "subcontractor_id": sub.id,
        "name": sub.name,
        "service": sub.service,
        "purpose": sub.purpose,
        "until": sub.until.isoformat(),
        "expires_at": iso(token_expiry(ctx, sub.until)),
        "office_zone": ctx.clock.name,
        "state": "live" if problem is None else "ended",
        "items": shown,
    }


def read_shared(ctx: Ctx, item_id: int, token: str) -> tuple[Item, bytes, dict]:
    """The item as the record allows: only its fields, only while everything holds."""
    sub, claims = _holder(ctx, item_id, token)
    agreement = ctx.db.get(Agreement, sub.agreement_id)
    item = ctx.db.get(Item, item_id)
    scope = ctx.db.scalar(
        select(SubcontractorScope).where(
            SubcontractorScope.subcontractor_id == sub.id, SubcontractorScope.item_id == item_id
        )
    )
    today = ctx.today()
    served: dict = {}
    decision = require(
        ctx,
        Action.SHARED_READ,
        Target("item", item_id, agreement.domain),
        [
            lambda: _token_problem(sub, claims),
            lambda: _destroyed(item, scope),
            lambda: _record_problem(sub, today),
            agreements.is_active(agreement),
            lambda: _scope_problem(item, scope),
            lambda: _item_problem(item),
            lambda: _minimise(ctx, item, scope.fields, served),
        ],
    )
    decision.record(
        fields=served["fields"], whole_item=not scope.fields, sha256=sha256_hex(served["content"])
    )
    return item, served["content"], {"media_type": served["media_type"]}


def _token_problem(sub: Subcontractor, claims: tokens.Claims) -> str | None:
    if sub.state != "approved":
        return Msg("record.is", id=sub.id, state=sub.state)
    if claims.jti != sub.token_jti:
        return Msg("token.replaced")
    return None


def _destroyed(item: Item | None, scope: SubcontractorScope | None) -> str | None:
    # An item the record named and the office has since destroyed is said to be gone for good,
    # rather than only that the scope ended; items outside the record are never described.
    if item is not None and scope is not None and item.status == "destroyed":
        return Msg("item.destroyed", id=item.id)
    return None


def _record_problem(sub: Subcontractor, today: date) -> str | None:
    # clause 3.7: nothing outside the record's dates or the signed data-security agreement.
    if sub.until < today:
        return Msg("record.ended", day=sub.until)
    if sub.dsa_signed_on > today:
        return Msg("dsa.starts", day=sub.dsa_signed_on)
    if sub.dsa_expires_on < today:
        return Msg("dsa.lapsed_on", day=sub.dsa_expires_on)
    return None


def _scope_problem(item: Item | None, scope: SubcontractorScope | None) -> str | None:
    if item is None or scope is None:
        return Msg("scope.outside")
    if scope.ended_at is not None:
        return Msg("scope.ended", id=item.id, reason=scope.ended_reason)
    return None


def _item_problem(item: Item) -> str | None:
    if item.status != "protected":
        return Msg("item.is", id=item.id, status=item.status)
    if item.wrapped_key is None:
        return Msg("item.destroyed", id=item.id)
    return None


def _minimise(ctx: Ctx, item: Item, fields: list[str], served: dict) -> str | None:
    """Cut the content down to the record's fields; a reason when that cannot be done.

    Run last, once every access fact holds, because it has to open the content to see its shape.
    """
    try:
        content = ctx.keys.decrypt(
            item.nonce, item.ciphertext, item.wrapped_key, items.identity(item)
        )
    except DecryptError:
        return Msg("item.unreadable", id=item.id)
    served["media_type"] = item.media_type
    if not fields:
        served.update(content=content, fields=[])
        return None
    if shapes.is_json(item.media_type):
        return _minimise_json(content, fields, served)
    if shapes.is_csv(item.media_type):
        return _minimise_csv(content, fields, served)
    return Msg("minimise.type", id=item.id, type=shapes.base_type(item.media_type), names=fields)


def _minimise_json(content: bytes, fields: list[str], served: dict) -> str | None:
    records = shapes.json_records(content)
    if records is None:
        return Msg("minimise.json")
    wanted = set(fields)
    cut = [{k: v for k, v in record.items() if k in wanted} for record in records]
    served.update(
        content=json.dumps(cut, ensure_ascii=False).encode("utf-8"),
        fields=sorted({k for record in cut for k in record}, key=fields.index),
        media_type=shapes.JSON,
    )
    return None


def _minimise_csv(content: bytes, fields: list[str], served: dict) -> str | None:
    rows = shapes.csv_table(content)
    if rows is None:
        return Msg("minimise.csv")
    # The file's own column order is kept; only the record's columns survive.
    keep = [i for i, name in enumerate(rows[0]) if name in fields]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in keep])
    served.update(
        content=out.getvalue().encode("utf-8"),
        fields=[rows[0][i] for i in keep],
        media_type=shapes.CSV,
    )
    return None


# The minimisation report.


def report(ctx: Ctx, sub_id: int) -> dict:
    """What the subcontractor may receive beside what it has received (from the trail), with the
    fields granted but never used: candidates for a narrower record (clause 3.7)."""
    sub = get_or_404(ctx.db, Subcontractor, sub_id, "subcontractor")
    require(ctx, Action.SUBCONTRACTOR_REPORT, target(sub))
    received: dict[int, set[str]] = {}
    reads: Counter = Counter()
    denied = 0
    ctx.settle_trail()
    entries = ctx.db.scalars(
        select(AuditEntry).where(
            AuditEntry.actor == actor_name(sub.id), AuditEntry.action == str(Action.SHARED_READ)
        )
    )
    for entry in entries:
        if entry.decision != "allow":
            denied += 1
            continue
        item_id = int(entry.target.split(":", 1)[1])
        details = json.loads(entry.details or "{}")
        received.setdefault(item_id, set()).update(details.get("fields", []))
        reads[item_id] += 1
    titles = dict(
        ctx.db.execute(
            select(Item.id, Item.title).where(Item.id.in_([s.item_id for s in scopes_of(ctx, sub)]))
        ).all()
    )
    rows, unused = [], []
    for scope in scopes_of(ctx, sub):
        got = received.get(scope.item_id, set())
        never = [f for f in scope.fields if f not in got]
        unused += [{"item_id": scope.item_id, "field": f} for f in never]
        rows.append(
            {
                "item_id": scope.item_id,
                "title": titles.get(scope.item_id),
                "may_receive": scope.fields,
                "whole_item": not scope.fields,
                "received": [f for f in scope.fields if f in got],
                "reads": reads[scope.item_id],
                "never_used": never,
                "scope_ended": scope.ended_at is not None,
            }
        )
    return {
        "subcontractor_id": sub.id,
        "name": sub.name,
        "purpose": sub.purpose,
        "until": sub.until.isoformat(),
        "items": rows,
        "unused_fields": unused,
        "denied_requests": denied,
    }
