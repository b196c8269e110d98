"""Vendor staff: their NDAs (clause 3.8) and their need-to-know for items (clause 3.5).

The read side (may this staff member open this item today?) lives in ``services/items.py``; this
module registers, renews and revokes the facts it looks at.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from govern.actions import Action
from govern.context import Ctx, Decision, Target, overrule, require
from govern.crypto import sha256_hex
from govern.db import utcnow
from govern.errors import Conflict, Invalid
from govern.messages import Msg
from govern.models import Agreement, Item, Nda, NeedToKnow, User
from govern.policy import GLOBAL, OFFICE_ROLES, VENDOR_ROLES
from govern.services import agreements, get_or_404


def nda_target(nda: Nda) -> Target:
    return Target("nda", nda.id, f"agreement:{nda.agreement_id}")


def ntk_target(ntk: NeedToKnow) -> Target:
    return Target("ntk", ntk.id, f"agreement:{ntk.agreement_id}")


def document_identity(nda: Nda) -> str:
    """What the signed PDF's ciphertext is bound to, like an item's."""
    return f"govern:nda:{nda.id}"


def vendor_user(ctx: Ctx, agreement: Agreement, username: str, field: str = "username") -> User:
    """The vendor account ``username`` (staff or lead), or a 400 naming ``field``."""
    user = ctx.db.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise Invalid(Msg("account.none", name=username), field=field, at=field)
    roles = set(ctx.runtime.policy.roles(user.username, agreement.domain))
    if not roles & VENDOR_ROLES:
        # clause 3.8: the vendor signs NDAs with (and grants need-to-know to) its own staff only.
        raise Invalid(Msg("account.not_vendor", name=user.username), field=field, at=field)
    if user.org != agreement.vendor:
        raise Invalid(
            Msg("account.not_staff_of", name=user.username, org=agreement.vendor),
            field=field,
            at=field,
        )
    return user


def self_grant_problem(ctx: Ctx, role: str | None, user: User) -> str | None:
    """Nobody grants access to themselves: the lead registers its staff's NDAs and need-to-know,
    and the office (office_approver) registers the leads'. None when ``role`` may do it for
    ``user``, else why not."""
    if user.id == ctx.principal.id:
        return Msg("duty.own_nda")
    is_lead = "vendor_lead" in ctx.runtime.policy.roles(user.username, GLOBAL)
    if role in VENDOR_ROLES and is_lead:
        return Msg("duty.lead_nda", name=user.username)
    if role in OFFICE_ROLES and not is_lead:
        return Msg("duty.staff_nda", name=user.username)
    return None


def _check_duty(ctx: Ctx, decision: Decision, user: User) -> None:
    reason = self_grant_problem(ctx, decision.role, user)
    if reason:
        raise overrule(ctx, decision, reason)


def username_of(ctx: Ctx, user_id: int) -> str:
    return ctx.db.get(User, user_id).username


def nda_status(nda: Nda, today: date) -> str:
    if today < nda.signed_on:
        return "not_started"
    if today > nda.expires_on:
        return "lapsed"
    return "valid"


def _check_dates(starts: date, ends: date, field: str) -> None:
    if ends < starts:
        raise Invalid(Msg("nda.ends_before", day=starts), field=field, at=field)


def _check_overlap(ctx: Ctx, agreement_id: int, user: User, starts, ends, ignore=None) -> None:
    """One NDA at a time per person and agreement, so a lapse is never hidden by a duplicate."""
    clash = ctx.db.scalar(
        select(Nda).where(
            Nda.agreement_id == agreement_id,
            Nda.user_id == user.id,
            Nda.signed_on <= ends,
            Nda.expires_on >= starts,
            Nda.id != (ignore or 0),
        )
    )
    if clash is not None:
        raise Conflict(
            Msg(
                "nda.overlaps",
                id=clash.id,
                name=user.username,
                starts=clash.signed_on,
                ends=clash.expires_on,
            ),
            field="signed_on",
            at="signed_on",
        )


def _store_document(ctx: Ctx, nda: Nda, data: dict) -> None:
    document = data.get("document_b64")
    if document is None:
        return
    if sha256_hex(document) != nda.document_sha256:
        raise Invalid(Msg("nda.hash_mismatch"), field="document_sha256", at="document_sha256")
    if len(document) > ctx.settings.max_content_bytes:
        raise Invalid(Msg("content.too_large"), field="document_b64", at="document_b64")
    nda.document_nonce, nda.document_ciphertext, nda.document_wrapped_key = ctx.keys.encrypt(
        document, document_identity(nda)
    )


def _add_nda(ctx: Ctx, agreement: Agreement, user: User, data: dict, renews: Nda | None) -> Nda:
    nda = Nda(
        agreement_id=agreement.id,
        user_id=user.id,
        signed_on=data["signed_on"],
        expires_on=data["expires_on"],
        document_sha256=data["document_sha256"],
        registered_by=ctx.principal.id,
        renews_id=renews.id if renews else None,
    )
    ctx.db.add(nda)
    ctx.flush()  # a renewal racing another of the same NDA: 409
    _store_document(ctx, nda, data)
    return nda


def create_nda(ctx: Ctx, agreement_id: int, data: dict) -> Nda:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    decision = require(
        ctx, Action.NDA_CREATE, agreements.target(agreement), [agreements.is_active(agreement)]
    )
    user = vendor_user(ctx, agreement, data["username"])
    _check_duty(ctx, decision, user)
    _check_dates(data["signed_on"], data["expires_on"], "expires_on")
    _check_overlap(ctx, agreement.id, user, data["signed_on"], data["expires_on"])
    nda = _add_nda(ctx, agreement, user, data, None)
    decision.entry.target = str(nda_target(nda))
    decision.record(user=user.username, **_nda_facts(nda))
    return nda


def renew_nda(ctx: Ctx, nda_id: int, data: dict) -> Nda:
    """A renewal is a new NDA row pointing at the one it renews; it may start before the old one
    ends (signed early) but must reach further, and an NDA is renewed only once."""
    old = get_or_404(ctx.db, Nda, nda_id, "nda")
    agreement = ctx.db.get(Agreement, old.agreement_id)
    decision = require(ctx, Action.NDA_RENEW, nda_target(old), [agreements.is_active(agreement)])
    user = ctx.db.get(User, old.user_id)
    _check_duty(ctx, decision, user)
    if ctx.db.scalar(select(Nda.id).where(Nda.renews_id == old.id)) is not None:
        raise Conflict(Msg("nda.renewed", id=old.id), field="nda_id")
    data = {**data, "username": user.username}
    # Signed today unless told otherwise: a renewal never backdates cover over a lapse.
    data.setdefault("signed_on", ctx.today())
    _check_dates(data["signed_on"], data["expires_on"], "expires_on")
    if data["expires_on"] <= old.expires_on:
        raise Invalid(
            Msg("nda.renewal_short", day=old.expires_on), field="expires_on", at="expires_on"
        )
    _check_overlap(ctx, agreement.id, user, data["signed_on"], data["expires_on"], ignore=old.id)
    nda = _add_nda(ctx, agreement, user, data, old)
    decision.record(renewal_id=nda.id, user=user.username, **_nda_facts(nda))
    return nda


def _nda_facts(nda: Nda) -> dict:
    return {
        "signed_on": nda.signed_on.isoformat(),
        "expires_on": nda.expires_on.isoformat(),
        "document_sha256": nda.document_sha256,
        "document_stored": nda.document_ciphertext is not None,
    }


def _rows_with_usernames(ctx: Ctx, model, action: Action, agreement_id: int) -> list[tuple]:
    """An agreement's NDAs or need-to-know rows, each with its staff member's username."""
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    require(ctx, action, agreements.target(agreement))
    rows = ctx.db.execute(
        select(model, User.username)
        .join(User, User.id == model.user_id)
        .where(model.agreement_id == agreement.id)
        .order_by(model.id)
    )
    return [(row, username) for row, username in rows]


def list_ndas(ctx: Ctx, agreement_id: int) -> list[tuple[Nda, str]]:
    return _rows_with_usernames(ctx, Nda, Action.NDA_LIST, agreement_id)


def grant_need_to_know(ctx: Ctx, agreement_id: int, data: dict) -> list[NeedToKnow]:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    decision = require(
        ctx, Action.NTK_GRANT, agreements.target(agreement), [agreements.is_active(agreement)]
    )
    user = vendor_user(ctx, agreement, data["username"])
    _check_duty(ctx, decision, user)
    ends_on = data.get("ends_on")
    today = ctx.today()
    if ends_on is not None and ends_on < today:
        raise Invalid(Msg("date.past"), field="ends_on", at="ends_on")
    found = agreement_items(ctx, agreement, data["item_ids"])
    reason = _holder_problem(ctx, agreement, user, today, ends_on)
    if reason:
        raise overrule(ctx, decision, reason, Conflict)
    active = set(
        ctx.db.scalars(
            select(NeedToKnow.item_id).where(
                NeedToKnow.user_id == user.id,
                NeedToKnow.item_id.in_(data["item_ids"]),
                NeedToKnow.revoked_at.is_(None),
            )
        )
    )
    if active:
        raise Conflict(
            Msg("ntk.already", name=user.username, ids=sorted(active)),
            field="item_ids",
            at="item_ids",
        )
    grants = [
        NeedToKnow(
            agreement_id=agreement.id,
            user_id=user.id,
            item_id=item.id,
            reason=data["reason"],
            ends_on=ends_on,
            granted_by=ctx.principal.id,
        )
        for item in found
    ]
    ctx.db.add_all(grants)
    ctx.flush()  # a grant racing the same one past the check above: 409
    decision.record(
        user=user.username,
        item_ids=[g.item_id for g in grants],
        ntk_ids=[g.id for g in grants],
        reason=data["reason"],
        ends_on=ends_on.isoformat() if ends_on else None,
    )
    return grants


def _holder_problem(
    ctx: Ctx, agreement, user: User, today: date, ends_on: date | None
) -> str | None:
    """Need-to-know goes only to an active account whose NDAs cover its whole span (clause 3.8):
    from today to ``ends_on``, or, without an end, at least today (reads check the NDA daily)."""
    if not user.active:
        return Msg("account.disabled", name=user.username)
    last = ends_on or today
    day = today
    ndas = ctx.db.scalars(
        select(Nda)
        .where(Nda.user_id == user.id, Nda.agreement_id == agreement.id, Nda.expires_on >= today)
        .order_by(Nda.signed_on)
    )
    # Renewals follow each other: walk the days the NDAs cover, one NDA after the other.
    for nda in ndas:
        if nda.signed_on > day:
            break
        day = max(day, nda.expires_on + timedelta(days=1))
        if day > last:
            return None
    if day == today:
        return Msg("nda.none_today", name=user.username, agreement=agreement.id)
    return Msg("nda.ends_first", name=user.username, day=day - timedelta(days=1), last=last)


def agreement_items(ctx: Ctx, agreement: Agreement, item_ids: list[int]) -> list[Item]:
    """The items named, all of this agreement and protected; else a 4xx naming ``item_ids``."""
    found = list(
        ctx.db.scalars(
            select(Item)
            .where(Item.id.in_(item_ids), Item.agreement_id == agreement.id)
            .order_by(Item.id)
        )
    )
    missing = sorted(set(item_ids) - {i.id for i in found})
    if missing:
        raise Invalid(
            Msg("items.missing", ids=missing, agreement=agreement.id),
            field="item_ids",
            at="item_ids",
        )
    closed = [i.id for i in found if i.status != "protected"]
    if closed:
        raise Conflict(Msg("items.closed", ids=closed), field="item_ids", at="item_ids")
    return found


def revoke_need_to_know(ctx: Ctx, ntk_id: int, data: dict) -> NeedToKnow:
    ntk = get_or_404(ctx.db, NeedToKnow, ntk_id, "need-to-know")
    decision = require(ctx, Action.NTK_REVOKE, ntk_target(ntk))
    if ntk.revoked_at is not None:
        raise Conflict(Msg("ntk.revoked", id=ntk.id), field="ntk_id")
    ntk.revoked_at = utcnow()
    ntk.revoked_reason = data["reason"]
    decision.record(item_id=ntk.item_id, reason=data["reason"])
    return ntk


def list_need_to_know(ctx: Ctx, agreement_id: int) -> list[tuple[NeedToKnow, str]]:
    return _rows_with_usernames(ctx, NeedToKnow, Action.NTK_LIST, agreement_id)


def ntk_status(ntk: NeedToKnow, today: date) -> str:
    if ntk.revoked_at is not None:
        return "revoked"
    if ntk.ends_on is not None and ntk.ends_on < today:
        return "ended"
    return "active"


def own_standing(ctx: Ctx, agreement_id: int, today: date) -> dict | None:
    """The reader's own NDAs and need-to-know in one agreement, for the reader's own page.

    clause 3.8: a staff member knows whether its NDA lets it open anything today, and which items
    it has a need to know for. Only the reader's own rows are read (no one else's), so it asks no
    list permission; the page that shows it has made its own decision (item:list). None for an
    account that is not vendor staff of this agreement's vendor."""
    principal = ctx.principal
    agreement = ctx.db.get(Agreement, agreement_id)
    if principal.kind != "user" or principal.org is None or agreement is None:
        return None
    if agreement.vendor != principal.org:
        return None
    own_ndas = ctx.db.scalars(
        select(Nda)
        .where(Nda.user_id == principal.id, Nda.agreement_id == agreement_id)
        .order_by(Nda.signed_on)
    )
    own_ntks = ctx.db.scalars(
        select(NeedToKnow)
        .where(NeedToKnow.user_id == principal.id, NeedToKnow.agreement_id == agreement_id)
        .order_by(NeedToKnow.item_id)
    )
    ndas = [(n, nda_status(n, today)) for n in own_ndas]
    return {
        "ndas": ndas,
        "valid": any(status == "valid" for _n, status in ndas),
        "ntks": [(g, ntk_status(g, today)) for g in own_ntks],
    }
