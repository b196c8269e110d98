"""Confidential items (clause 1): registration with envelope encryption, and reading content
through the decision point."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, bindparam, exists, or_, select

from govern import shapes
from govern.actions import Action
from govern.context import Check, Ctx, Target, require
from govern.crypto import DecryptError, sha256_hex
from govern.db import utcnow
from govern.errors import Conflict, Invalid, TooLarge
from govern.models import Agreement, Item, Nda, NeedToKnow
from govern.models import agreements as rules
from govern.policy import OFFICE_ROLES, VENDOR_ROLES
from govern.services import agreements, get_or_404
from govern.services.disclosures import refuse

# The allowed values live with the model, which also makes the database refuse anything else.
CATEGORIES = rules.CATEGORIES
STATUSES = rules.ITEM_STATUSES
SENSITIVITIES = rules.SENSITIVITIES


def target(item: Item) -> Target:
    return Target("item", item.id, f"agreement:{item.agreement_id}")


def identity(item: Item) -> str:
    """What the item's ciphertext is bound to: moving it to another row breaks decryption."""
    return f"govern:item:{item.id}"


def create(ctx: Ctx, agreement_id: int, data: dict) -> Item:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    decision = require(
        ctx, Action.ITEM_CREATE, agreements.target(agreement), [agreements.is_active(agreement)]
    )
    content: bytes = data["content_b64"]
    if len(content) > ctx.settings.max_content_bytes:
        raise TooLarge(
            f"content_b64: more than {ctx.settings.max_content_bytes} bytes", field="content_b64"
        )
    fields = data.get("fields", [])
    shape = checked_shape(content, data.get("media_type"), fields)
    # clause 1.1 (the bracket): what the project publishes is recorded as public, needing no request.
    item = Item(
        agreement_id=agreement.id,
        title=data["title"],
        category=data["category"],
        fields=fields,
        sensitivity=data.get("sensitivity", "confidential"),
        status="public" if data.get("public") else "protected",
        media_type=shape.media_type,
        size=len(content),
        sha256=sha256_hex(content),
    )
    ctx.db.add(item)
    ctx.db.flush()
    item.nonce, item.ciphertext, item.wrapped_key = ctx.keys.encrypt(content, identity(item))
    item.kek_id = ctx.keys.kek_id
    decision.entry.target = str(target(item))
    decision.record(category=item.category, sha256=item.sha256, size=item.size, status=item.status)
    return item


def checked_shape(content: bytes, media_type: str | None, fields: list[str]) -> shapes.Shape:
    """The content's shape, given or detected; 400 unless it has every declared field.

    clause 3.7: a subcontractor receives only the fields of its record, cut out of the content;
    a declared field the content does not have would be a promise minimisation cannot keep.
    """
    shape = shapes.shape_of(content, media_type, fields)
    missing = shapes.missing_fields(shape, fields)
    named = ", ".join(missing)
    if missing and shape.names is None:
        raise Invalid(
            f"fields: the content is {shape.where}, so fields cannot be checked ({named}); "
            "declare fields only for JSON records or CSV with a header",
            field="fields",
        )
    if missing:
        raise Invalid(f"fields: not among {shape.where}: {named}", field="fields")
    return shape


def list_for(ctx: Ctx, agreement_id: int) -> list[Item]:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    require(ctx, Action.ITEM_LIST, agreements.target(agreement))
    return list(
        ctx.db.scalars(select(Item).where(Item.agreement_id == agreement.id).order_by(Item.id))
    )


# Both lookups run on every vendor read: built once with bound parameters, since building the
# statement cost more than running it (indexed: ndas by user and agreement, need_to_know by user
# and item).
# clause 3.8: no valid NDA, no access; one not yet started or lapsed gives nothing.
_VALID_NDA = select(
    exists().where(
        Nda.user_id == bindparam("user_id"),
        Nda.agreement_id == bindparam("agreement_id"),
        Nda.signed_on <= bindparam("today", type_=Date),
        Nda.expires_on >= bindparam("today", type_=Date),
    )
)
# clause 3.5: inside the vendor only to staff with a need to know.
_NEED_TO_KNOW = select(
    exists().where(
        NeedToKnow.user_id == bindparam("user_id"),
        NeedToKnow.item_id == bindparam("item_id"),
        NeedToKnow.revoked_at.is_(None),
        or_(NeedToKnow.ends_on.is_(None), NeedToKnow.ends_on >= bindparam("today", type_=Date)),
    )
)


def has_valid_nda(db, user_id: int, agreement_id: int, today: date) -> bool:
    return db.scalar(_VALID_NDA, {"user_id": user_id, "agreement_id": agreement_id, "today": today})


def has_need_to_know(db, user_id: int, item_id: int, today: date) -> bool:
    return db.scalar(_NEED_TO_KNOW, {"user_id": user_id, "item_id": item_id, "today": today})


def nda_problem(db, user_id: int, agreement_id: int, today: date) -> str | None:
    """None when an NDA covers ``today``, else why not (for the trail).

    The allowed path is one indexed EXISTS; only a denial reads the rows to explain itself."""
    if has_valid_nda(db, user_id, agreement_id, today):
        return None
    ndas = list(
        db.scalars(select(Nda).where(Nda.user_id == user_id, Nda.agreement_id == agreement_id))
    )
    if not ndas:
        return "no valid NDA: none registered"
    upcoming = [n.signed_on for n in ndas if n.signed_on > today]
    if upcoming:
        return f"no valid NDA: it starts on {min(upcoming).isoformat()}"
    return f"no valid NDA: it lapsed on {max(n.expires_on for n in ndas).isoformat()}"


def need_to_know_problem(db, user_id: int, item_id: int, today: date) -> str | None:
    """None when a live need-to-know covers the item, else why not (for the trail)."""
    if has_need_to_know(db, user_id, item_id, today):
        return None
    grants = list(
        db.scalars(
            select(NeedToKnow).where(NeedToKnow.user_id == user_id, NeedToKnow.item_id == item_id)
        )
    )
    live = [g for g in grants if g.revoked_at is None]
    if not grants:
        return f"no need-to-know for item {item_id}"
    if live:
        ended = max(g.ends_on for g in live).isoformat()
        return f"no need-to-know for item {item_id}: it ended on {ended}"
    return f"no need-to-know for item {item_id}: it was revoked"


def destroyed(item: Item) -> bool:
    return item.status == "destroyed" or item.wrapped_key is None


def read_checks(ctx: Ctx, item: Item, agreement: Agreement, today: date):
    """The facts that must hold for the role whose rule allowed reading ``item``.

    A destroyed item is said to be gone before anything else; the office, which destroyed it,
    hears it as a conflict (409, see :func:`read_content`), a vendor as a denial."""

    def exists_now() -> str | None:
        return f"item {item.id} is destroyed" if destroyed(item) else None

    def checks(role: str) -> list[Check]:
        if role in OFFICE_ROLES:
            return []
        if role not in VENDOR_ROLES:
            return [lambda: f"role {role} never reads item content"]
        if item.status == "public":
            return [exists_now]
        uid = ctx.principal.id
        return [
            exists_now,
            agreements.is_active(agreement),
            lambda: None if item.status == "protected" else f"item {item.id} is {item.status}",
            lambda: nda_problem(ctx.db, uid, agreement.id, today),
            lambda: need_to_know_problem(ctx.db, uid, item.id, today),
        ]

    return checks


def read_content(ctx: Ctx, item_id: int, today: date) -> tuple[Item, bytes]:
    item = get_or_404(ctx.db, Item, item_id, "item")
    agreement = ctx.db.get(Agreement, item.agreement_id)
    decision = require(
        ctx, Action.ITEM_READ, target(item), read_checks(ctx, item, agreement, today)
    )
    if destroyed(item):
        why = f": {item.status_reason}" if item.status_reason else ""
        raise refuse(ctx, Action.ITEM_READ, target(item), f"item {item.id} is destroyed{why}")
    try:
        content = ctx.keys.decrypt(item.nonce, item.ciphertext, item.wrapped_key, identity(item))
    except DecryptError as exc:
        raise Conflict(f"item {item.id} cannot be opened: {exc}") from exc
    decision.record(sha256=item.sha256, size=item.size)
    return item, content


def shred(item: Item) -> None:
    """Crypto-shredding: without its data key the content can never be opened again, wherever a
    copy of the ciphertext survives (a backup); the ciphertext goes too."""
    item.wrapped_key = None
    item.nonce = None
    item.ciphertext = None


def set_status(item: Item, status: str, reason: str | None) -> None:
    item.status = status
    item.status_reason = reason
    item.updated_at = utcnow()
