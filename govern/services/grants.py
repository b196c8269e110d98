"""Grants (clause 3.6): what an approved request hands a third party, and every use of it.

A grant is a token (ES256, its own audience, a ``jti``, ``exp`` no later than the end of the
request's window in the office's time zone). The token is only a claim: every use is decided
against the grant's live row, its request and its items, so a revoke, a recall or a termination
takes effect on the very next read.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from govern import tokens
from govern.actions import Action
from govern.audit import iso
from govern.context import Check, Ctx, Principal, Target, can, require
from govern.crypto import DecryptError
from govern.db import utcnow
from govern.errors import Conflict, Unauthenticated
from govern.messages import Msg
from govern.models import Agreement, AuditEntry, Disclosure, DisclosureItem, Grant, Item
from govern.services import agreements, disclosures, get_or_404, items


def target(grant: Grant, d: Disclosure) -> Target:
    return Target("grant", grant.id, f"agreement:{d.agreement_id}")


def window_end(ctx: Ctx, d: Disclosure) -> datetime:
    """The end of the window's last day in the office's time zone, as UTC."""
    return ctx.clock.end_of_day(d.ends_on).astimezone(UTC)


def _issue_problem(ctx: Ctx, d: Disclosure) -> str | None:
    """Why no grant can be handed out on ``d`` now, or None."""
    state = disclosures.effective_state(ctx, d)
    agreement = ctx.db.get(Agreement, d.agreement_id)
    if state != "approved":
        return Msg("grant.needs_approval", id=d.id, state=state)
    if agreement.status != "active":
        return Msg("agreement.is", id=agreement.id, status=agreement.status)
    if ctx.today() < d.starts_on:
        return Msg("window.opens", id=d.id, day=d.starts_on)
    return None


def may_issue(ctx: Ctx, d: Disclosure) -> bool:
    """Could the reader hand out a grant on ``d`` now? For drawing the button (no trail entry)."""
    return can(ctx, Action.GRANT_ISSUE, disclosures.target(d), [lambda: _issue_problem(ctx, d)])


def issue(ctx: Ctx, disclosure_id: int) -> tuple[Grant, str]:
    d = get_or_404(ctx.db, Disclosure, disclosure_id, "disclosure")
    # Decided on the request it hands out (the grant does not exist yet).
    tgt = disclosures.target(d)
    decision = require(ctx, Action.GRANT_ISSUE, tgt)
    reason = _issue_problem(ctx, d)
    if reason:
        raise disclosures.refuse(ctx, Action.GRANT_ISSUE, tgt, reason)
    # clause 3.6: a grant lasts at most the request's window.
    expires_at = window_end(ctx, d)
    grant = Grant(
        disclosure_id=d.id,
        jti=f"pending-{d.id}-{utcnow().timestamp()}",
        issued_by=ctx.principal.id,
        expires_at=expires_at,
    )
    ctx.db.add(grant)
    ctx.db.flush()
    token, grant.jti = tokens.issue_party_token(
        ctx.keys, ctx.settings.issuer, tokens.GRANT_AUDIENCE, f"grant:{grant.id}", expires_at
    )
    ctx.db.flush()
    decision.entry.target = str(target(grant, d))
    decision.record(disclosure=d.id, third_party=d.third_party, expires_at=iso(expires_at))
    return grant, token


def grant_state(grant: Grant) -> str:
    if grant.revoked_at is not None:
        return "revoked"
    if utcnow() >= grant.expires_at:
        return "expired"
    return "live"


def uses(ctx: Ctx, grant: Grant) -> list[dict]:
    """Every use of a grant, allowed or denied, as the trail recorded it."""
    ctx.settle_trail()
    rows = ctx.db.scalars(
        select(AuditEntry)
        .where(AuditEntry.actor == f"grant:{grant.id}", AuditEntry.action == "shared:read")
        .order_by(AuditEntry.seq)
    )
    return [
        {"seq": e.seq, "at": e.at, "target": e.target, "decision": e.decision, "rule": e.rule}
        for e in rows
    ]


def as_json(ctx: Ctx, grant: Grant, with_uses: bool = False) -> dict:
    out = {
        "grant_id": grant.id,
        "disclosure_id": grant.disclosure_id,
        "issued_at": iso(grant.issued_at),
        "expires_at": iso(grant.expires_at),
        "revoked_at": iso(grant.revoked_at) if grant.revoked_at else None,
        "revoked_reason": grant.revoked_reason,
        "state": grant_state(grant),
    }
    if with_uses:
        out["uses"] = uses(ctx, grant)
    return out


def list_for(ctx: Ctx, disclosure_id: int) -> list[Grant]:
    d = get_or_404(ctx.db, Disclosure, disclosure_id, "disclosure")
    require(ctx, Action.GRANT_LIST, disclosures.target(d))
    return list(ctx.db.scalars(select(Grant).where(Grant.disclosure_id == d.id).order_by(Grant.id)))


def get(ctx: Ctx, grant_id: int) -> Grant:
    """One grant, for a reader who may list its request's grants (e.g. to confirm a revocation)."""
    grant = get_or_404(ctx.db, Grant, grant_id, "grant")
    d = ctx.db.get(Disclosure, grant.disclosure_id)
    require(ctx, Action.GRANT_LIST, disclosures.target(d))
    return grant


def revoke(ctx: Ctx, grant_id: int) -> Grant:
    grant = get_or_404(ctx.db, Grant, grant_id, "grant")
    d = ctx.db.get(Disclosure, grant.disclosure_id)
    decision = require(ctx, Action.GRANT_REVOKE, target(grant, d))
    if grant.revoked_at is not None:
        raise disclosures.refuse(
            ctx, Action.GRANT_REVOKE, target(grant, d), Msg("grant.already_revoked", id=grant.id)
        )
    end(grant, Msg("ended.revoked_by", name=ctx.principal.name))
    decision.record(disclosure=d.id)
    return grant


def end(grant: Grant, reason: str) -> None:
    grant.revoked_at, grant.revoked_reason = utcnow(), reason


def revoke_for_requests(ctx: Ctx, disclosure_ids: list[int], reason: str) -> list[int]:
    """End every live grant of these requests (recall, termination). Returns their ids."""
    if not disclosure_ids:
        return []
    rows = ctx.db.scalars(
        select(Grant).where(Grant.disclosure_id.in_(disclosure_ids), Grant.revoked_at.is_(None))
    )
    ended = []
    for grant in rows:
        end(grant, reason)
        ended.append(grant.id)
    return ended


def _read_checks(ctx: Ctx, grant: Grant, d: Disclosure, item: Item | None) -> list[Check]:
    agreement = ctx.db.get(Agreement, d.agreement_id)
    today = ctx.today()
    listed = item is not None and ctx.db.get(DisclosureItem, (d.id, item.id)) is not None

    def not_destroyed():
        # Said first to whoever the item was granted to, since destroying it also revoked the
        # grant: it is gone for good. Items outside the grant are never described.
        return Msg("item.destroyed", id=item.id) if listed and item.status == "destroyed" else None

    def grant_live():
        state = grant_state(grant)
        return None if state == "live" else Msg("grant.is", id=grant.id, state=state)

    def request_approved():
        state = disclosures.effective_state(ctx, d)
        return None if state == "approved" else Msg("request.is", id=d.id, state=state)

    def inside_window():
        if d.starts_on <= today <= d.ends_on:
            return None
        return Msg("window.outside", starts=d.starts_on, ends=d.ends_on)

    def among_items():
        return None if listed else Msg("grant.not_listed", id=d.id)

    def still_protected():
        return (
            None if item.status == "protected" else Msg("item.is", id=item.id, status=item.status)
        )

    def content_exists():
        return None if item.wrapped_key is not None else Msg("item.destroyed", id=item.id)

    return [
        not_destroyed,
        grant_live,
        request_approved,
        inside_window,
        among_items,
        agreements.is_active(agreement),
        still_protected,
        content_exists,
    ]


def _grant_for(ctx: Ctx, item_id: int | None, token: str) -> Grant:
    """The grant a token names (401 and a kept denial otherwise). ``item_id`` is the item asked
    for, or None when the holder asks what the token covers."""
    asked = f"item:{item_id}" if item_id is not None else "shared:items"
    try:
        claims = tokens.check_party_token(
            ctx.keys, ctx.settings.issuer, token, tokens.GRANT_AUDIENCE
        )
    except Unauthenticated:
        ctx.record(
            Action.SHARED_READ,
            asked,
            "deny",
            Msg("rule.invalid_grant"),
            keep=True,
            token_sha256=tokens.fingerprint(token),
        )
        raise
    grant = ctx.db.scalar(select(Grant).where(Grant.jti == claims.jti))
    if grant is None or claims.subject != f"grant:{grant.id}":
        ctx.record(
            Action.SHARED_READ,
            asked,
            "deny",
            Msg("rule.unknown_grant"),
            keep=True,
            token_sha256=tokens.fingerprint(token),
        )
        raise Unauthenticated(Msg("auth.grant_unknown"))
    return grant


def read_shared(ctx: Ctx, item_id: int, token: str) -> tuple[Item, bytes, dict]:
    """A third party reads one item with its grant token: decided and audited on every use."""
    grant = _grant_for(ctx, item_id, token)
    ctx.principal = Principal("grant", f"grant:{grant.id}", "third_party", grant.id)
    d = ctx.db.get(Disclosure, grant.disclosure_id)
    item = ctx.db.get(Item, item_id) if item_id > 0 else None
    # An id that is not one of the request's items is refused like any other item outside the
    # grant, so a token holder learns nothing about what else exists.
    tgt = items.target(item) if item else Target("item", item_id, f"agreement:{d.agreement_id}")
    decision = require(ctx, Action.SHARED_READ, tgt, _read_checks(ctx, grant, d, item))
    try:
        content = ctx.keys.decrypt(
            item.nonce, item.ciphertext, item.wrapped_key, items.identity(item)
        )
    except DecryptError as exc:
        raise Conflict(Msg("item.unreadable_why", id=item.id, error=str(exc))) from exc
    decision.record(grant=grant.id, disclosure=d.id, form=d.form, sha256=item.sha256)
    # Whatever the form, the content is handed over as an attachment, never shown on govern's own
    # origin, and never cached (see api/agreements.content_response).
    return item, content, {"media_type": item.media_type}


def covered(ctx: Ctx, token: str) -> dict:
    """What a grant token covers, for its holder (GET /shared/items): the request's items, the
    window on the office's days and the grant's end. Decided and audited like a read; the items
    are those the office approved to show this third party, nothing else of the agreement."""
    grant = _grant_for(ctx, None, token)
    ctx.principal = Principal("grant", f"grant:{grant.id}", "third_party", grant.id)
    d = ctx.db.get(Disclosure, grant.disclosure_id)
    agreement = ctx.db.get(Agreement, d.agreement_id)
    decision = require(ctx, Action.SHARED_READ, target(grant, d))
    today = ctx.today()
    state = grant_state(grant)
    if state == "live" and disclosures.effective_state(ctx, d) != "approved":
        state = "ended"
    elif state == "live" and today < d.starts_on:
        state = "not_started"
    elif state == "live" and agreement.status != "active":
        state = "ended"
    listed = ctx.db.scalars(
        select(Item)
        .join(DisclosureItem, DisclosureItem.item_id == Item.id)
        .where(DisclosureItem.disclosure_id == d.id)
        .order_by(Item.id)
    )
    shown = [
        {
            "id": item.id,
            "title": item.title,
            "media_type": item.media_type,
            "available": state == "live" and item.status == "protected",
        }
        for item in listed
    ]
    decision.record(grant=grant.id, disclosure=d.id, listing=True)
    return {
        "holder": "third_party",
        "grant_id": grant.id,
        "request_id": d.id,
        "third_party": d.third_party,
        "purpose": d.purpose,
        "form": d.form,
        "starts_on": d.starts_on.isoformat(),
        "ends_on": d.ends_on.isoformat(),
        "expires_at": iso(grant.expires_at),
        "office_zone": ctx.clock.name,
        "state": state,
        "items": shown,
    }
