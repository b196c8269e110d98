"""Confidential items (clause 1): registration with envelope encryption, and reading content
through the decision point."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Date, Exists, bindparam, exists, or_, select

from govern import shapes
from govern.actions import Action
from govern.context import Check, Ctx, Target, require
from govern.crypto import DecryptError, sha256_hex
from govern.db import Prepared, utcnow
from govern.errors import Conflict, Invalid, NotFound, TooLarge
from govern.messages import Msg
from govern.models import Agreement, Item, Nda, NeedToKnow
from govern.models import agreements as rules
from govern.policy import OFFICE_ROLES, VENDOR_ROLES
from govern.services import agreements, get_or_404
from govern.services.accounts import AlongAccount
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
            Msg("content.more_than", max=ctx.settings.max_content_bytes),
            field="content_b64",
            at="content_b64",
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
            Msg("fields.unchecked", where=shape.where, names=named), field="fields", at="fields"
        )
    if missing:
        raise Invalid(
            Msg("fields.missing", where=shape.where, names=named), field="fields", at="fields"
        )
    return shape


def list_for(ctx: Ctx, agreement_id: int) -> list[Item]:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    require(ctx, Action.ITEM_LIST, agreements.target(agreement))
    return list(
        ctx.db.scalars(select(Item).where(Item.agreement_id == agreement.id).order_by(Item.id))
    )


# Both lookups run on every vendor read, inside the one statement of an audited read
# (_READ_FACTS), or alone when a denial explains itself (indexed: ndas by user and agreement,
# need_to_know by user and item); statements built once with bound parameters.
# clause 3.8: no valid NDA, no access; one not yet started or lapsed gives nothing.
def _nda_covers(agreement_id) -> Exists:
    return exists().where(
        Nda.user_id == bindparam("user_id"),
        Nda.agreement_id == agreement_id,
        Nda.signed_on <= bindparam("today", type_=Date),
        Nda.expires_on >= bindparam("today", type_=Date),
    )


# clause 3.5: inside the vendor only to staff with a need to know.
def _need_to_know_covers(item_id) -> Exists:
    return exists().where(
        NeedToKnow.user_id == bindparam("user_id"),
        NeedToKnow.item_id == item_id,
        NeedToKnow.revoked_at.is_(None),
        or_(NeedToKnow.ends_on.is_(None), NeedToKnow.ends_on >= bindparam("today", type_=Date)),
    )


_VALID_NDA = select(_nda_covers(bindparam("agreement_id")))
_NEED_TO_KNOW = select(_need_to_know_covers(bindparam("item_id")))


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
        return Msg("nda.none")
    upcoming = [n.signed_on for n in ndas if n.signed_on > today]
    if upcoming:
        return Msg("nda.starts", day=min(upcoming))
    return Msg("nda.lapsed", day=max(n.expires_on for n in ndas))


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
        return Msg("ntk.none", id=item_id)
    if live:
        return Msg("ntk.ended", id=item_id, day=max(g.ends_on for g in live))
    return Msg("ntk.was_revoked", id=item_id)


class Facts:
    """The reader's NDA and need-to-know, looked up one item at a time (what a read asks)."""

    def __init__(self, db):
        self.db = db

    def nda(self, user_id: int, agreement_id: int, today: date) -> str | None:
        return nda_problem(self.db, user_id, agreement_id, today)

    def need_to_know(self, user_id: int, item_id: int, today: date) -> str | None:
        return need_to_know_problem(self.db, user_id, item_id, today)


class AgreementFacts(Facts):
    """The same facts for every item of one agreement at once (two queries, whatever the number
    of items), for a page that draws an "open" link per item. Their reasons are short: they are
    never written to the trail (the read itself, when taken, looks again and explains)."""

    def __init__(self, db, user_id: int, agreement_id: int, today: date):
        super().__init__(db)
        self.valid = has_valid_nda(db, user_id, agreement_id, today)
        self.known = set(
            db.scalars(
                select(NeedToKnow.item_id).where(
                    NeedToKnow.user_id == user_id,
                    NeedToKnow.agreement_id == agreement_id,
                    NeedToKnow.revoked_at.is_(None),
                    or_(NeedToKnow.ends_on.is_(None), NeedToKnow.ends_on >= today),
                )
            )
        )

    def nda(self, user_id: int, agreement_id: int, today: date) -> str | None:
        return None if self.valid else "no valid NDA"

    def need_to_know(self, user_id: int, item_id: int, today: date) -> str | None:
        return None if item_id in self.known else f"no need-to-know for item {item_id}"


def destroyed(item: Item) -> bool:
    return item.status == "destroyed" or item.wrapped_key is None


def read_checks(
    ctx: Ctx,
    item: Item,
    agreement: Agreement,
    today: date,
    facts: Facts | None = None,
    held: tuple[bool, bool] | None = None,
):
    """The facts that must hold for the role whose rule allowed reading ``item``.

    A destroyed item is said to be gone before anything else; the office, which destroyed it,
    hears it as a conflict (409, see :func:`read_content`), a vendor as a denial. ``facts``
    looks up the NDA and need-to-know (one item at a time unless a page gives them for all);
    ``held`` are the NDA and need-to-know answers when they were read with the item
    (:data:`_READ_FACTS`): only a denial then reads the rows again to explain itself."""
    facts = facts or Facts(ctx.db)
    nda_held, ntk_held = held or (False, False)

    def exists_now() -> str | None:
        return Msg("item.destroyed", id=item.id) if destroyed(item) else None

    def checks(role: str) -> list[Check]:
        if role in OFFICE_ROLES:
            return []
        if role not in VENDOR_ROLES:
            return [lambda: Msg("item.role_never_reads", role=role)]
        if item.status == "public":
            return [exists_now]
        uid = ctx.principal.id
        return [
            exists_now,
            agreements.is_active(agreement),
            lambda: (
                None
                if item.status == "protected"
                else Msg("item.is", id=item.id, status=item.status)
            ),
            lambda: None if nda_held else facts.nda(uid, agreement.id, today),
            lambda: None if ntk_held else facts.need_to_know(uid, item.id, today),
        ]

    return checks


@dataclass(frozen=True)
class HeldAgreement:
    """What a read needs of the item's agreement: whether it is active, and its vendor."""

    id: int
    status: str
    vendor: str


# An audited read is one statement before its audit entry: the item (with its wrapped key), its
# agreement's state and vendor, and whether the reader holds a valid NDA and a live need-to-know,
# all by primary key or index. Built once, with bound parameters.
_I = Item.__table__.c
_A = Agreement.__table__.c
_READ_FACTS = Prepared(
    select(
        _I.id,
        _I.agreement_id,
        _I.title,
        _I.status,
        _I.status_reason,
        _I.media_type,
        _I.size,
        _I.sha256,
        _I.nonce,
        _I.ciphertext,
        _I.wrapped_key,
        _A.status.label("agreement_status"),
        _A.vendor.label("agreement_vendor"),
        _nda_covers(_I.agreement_id).label("nda"),
        _need_to_know_covers(_I.id).label("ntk"),
    )
    .join_from(Item, Agreement, _A.id == _I.agreement_id)
    .where(_I.id == bindparam("item_id"))
)


# The same facts, read with the live account of a bearer token (accounts.AlongAccount): an API
# read is then one statement before its audit entry.
# Remembered rows (accounts.Remembered) are checked column by column when the entry is written,
# but for the ciphertext: each encryption draws a fresh nonce and a fresh wrapped data key
# (Keyring.encrypt), so the ciphertext changes only with them, and they are compared.
_READ_FACTS_ALONG = AlongAccount(_READ_FACTS.statement, pinned=("ciphertext",))


def read_along(item_id: int, today: date) -> tuple[AlongAccount, dict]:
    """What an API read of the item's content reads together with its caller's account."""
    return _READ_FACTS_ALONG, {"item_id": item_id, "today": today}


def read_content(ctx: Ctx, item_id: int, today: date):
    """The item's plaintext, when the decision allows it. Answers (item, content), the item as
    the row read for the decision (id, title, media_type, status...)."""
    # The facts read with the caller's account (read_along), for this item and this day; else
    # on the session's connection (same transaction): a core row, no ORM loading around it.
    along, ctx.along = ctx.along, None
    if along is not None and along[0] == {"item_id": item_id, "today": today}:
        found = along[1] if along[1].id is not None else None
    else:
        given = {"item_id": item_id, "user_id": ctx.principal.id or 0, "today": today}
        found = _READ_FACTS.first(ctx.db.connection(), given)
    if found is None:
        raise NotFound(Msg("missing.object", kind="item", id=item_id))
    item = found
    agreement = HeldAgreement(found.agreement_id, found.agreement_status, found.agreement_vendor)
    # The decision asks for the agreement's vendor (other_vendor): it was read with the item.
    ctx.vendors[agreement.id] = agreement.vendor
    checks = read_checks(ctx, item, agreement, today, held=(bool(found.nda), bool(found.ntk)))
    decision = require(ctx, Action.ITEM_READ, target(item), checks)
    if destroyed(item):
        why = (
            Msg("item.destroyed_why", id=item.id, reason=item.status_reason)
            if item.status_reason
            else Msg("item.destroyed", id=item.id)
        )
        raise refuse(ctx, Action.ITEM_READ, target(item), why)
    try:
        content = ctx.keys.decrypt(item.nonce, item.ciphertext, item.wrapped_key, identity(item))
    except DecryptError as exc:
        raise Conflict(Msg("item.unreadable_why", id=item.id, error=str(exc))) from exc
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
