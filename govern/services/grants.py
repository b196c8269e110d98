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
from govern.context import Check, Ctx, Principal, Target, require
from govern.crypto import DecryptError
from govern.db import utcnow
from govern.errors import Conflict, Unauthenticated
from govern.models import Agreement, AuditEntry, Disclosure, DisclosureItem, Grant, Item
from govern.services import agreements, disclosures, get_or_404, items


def target(grant: Grant, d: Disclosure) -> Target:
    return Target("grant", grant.id, f"agreement:{d.agreement_id}")


def window_end(ctx: Ctx, d: Disclosure) -> datetime:
    """The end of the window's last day in the office's time zone, as UTC."""
    return ctx.clock.end_of_day(d.ends_on).astimezone(UTC)


def issue(ctx: Ctx, disclosure_id: int) -> tuple[Grant, str]:
    d = get_or_404(ctx.db, Disclosure, disclosure_id, "disclosure")
    # Decided on the request it hands out (the grant does not exist yet).
    tgt = disclosures.target(d)
    decision = require(ctx, Action.GRANT_ISSUE, tgt)
    state = disclosures.effective_state(ctx, d)
    agreement = ctx.db.get(Agreement, d.agreement_id)
    today = ctx.today()
    reason = None
    if state != "approved":
        reason = f"request {d.id} is {state}; only an approved request hands out grants"
    elif agreement.status != "active":
        reason = f"agreement {agreement.id} is {agreement.status}"
    elif today < d.starts_on:
        reason = f"the window of request {d.id} opens on {d.starts_on.isoformat()}"
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


def revoke(ctx: Ctx, grant_id: int) -> Grant:
    grant = get_or_404(ctx.db, Grant, grant_id, "grant")
    d = ctx.db.get(Disclosure, grant.disclosure_id)
    decision = require(ctx, Action.GRANT_REVOKE, target(grant, d))
    if grant.revoked_at is not None:
        raise disclosures.refuse(
            ctx, Action.GRANT_REVOKE, target(grant, d), f"grant {grant.id} is already revoked"
        )
    end(grant, f"revoked by {ctx.principal.name}")
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
        return f"item {item.id} is destroyed" if listed and item.status == "destroyed" else None

    def grant_live():
        state = grant_state(grant)
        return None if state == "live" else f"grant {grant.id} is {state}"

    def request_approved():
        state = disclosures.effective_state(ctx, d)
        return None if state == "approved" else f"request {d.id} is {state}"

    def inside_window():
        if d.starts_on <= today <= d.ends_on:
            return None
        return f"outside the window {d.starts_on.isoformat()} to {d.ends_on.isoformat()}"

    def among_items():
        return None if listed else f"item is not among the items of request {d.id}"

    def still_protected():
        return None if item.status == "protected" else f"item {item.id} is {item.status}"

    def content_exists():
        return None if item.wrapped_key is not None else f"item {item.id} is destroyed"

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


def _grant_for(ctx: Ctx, item_id: int, token: str) -> Grant:
    try:
        claims = tokens.check_party_token(
            ctx.keys, ctx.settings.issuer, token, tokens.GRANT_AUDIENCE
        )
    except Unauthenticated:
        ctx.record(
            Action.SHARED_READ,
            f"item:{item_id}",
            "deny",
            "invalid grant token",
            keep=True,
            token_sha256=tokens.fingerprint(token),
        )
        raise
    grant = ctx.db.scalar(select(Grant).where(Grant.jti == claims.jti))
    if grant is None or claims.subject != f"grant:{grant.id}":
        ctx.record(
            Action.SHARED_READ,
            f"item:{item_id}",
            "deny",
            "unknown grant",
            keep=True,
            token_sha256=tokens.fingerprint(token),
        )
        raise Unauthenticated("the grant token is not known")
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
        raise Conflict(f"item {item.id} cannot be opened: {exc}") from exc
    decision.record(grant=grant.id, disclosure=d.id, form=d.form, sha256=item.sha256)
    # Whatever the form, the content is handed over as an attachment, never shown on govern's own
    # origin, and never cached (see api/agreements.content_response).
    return item, content, {"media_type": item.media_type}
