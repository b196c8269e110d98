"""GET /shared/items and /shared/items/{id}: what holders of third-party tokens receive.

A token's audience says which kind of holder it is: a disclosure grant (clause 3.6, see
``services/grants.py``) or a subcontractor's client token (clause 3.7, see
``services/subcontractors.py``). Each is checked against live state on every use.

A holder is outside the office: a refusal tells it one stable thing (this token gives no access
to this item now) and never the office's internal reasons (a recall's reason, who revoked, the
policy rule). The trail keeps the real reason with the denial.
"""

from __future__ import annotations

from sqlalchemy import select

from govern import tokens
from govern.actions import Action
from govern.context import Ctx
from govern.errors import Conflict, Forbidden, Unauthenticated
from govern.messages import Msg
from govern.models import DisclosureItem, Grant, Item, SubcontractorScope

# What every refused holder reads, whatever the reason (the trail keeps the real one).
DENIED = "shared.denied"
# ...but an item of its grant or record that the office destroyed is said to be gone for good.
DESTROYED = "shared.destroyed"


class ItemGone(Forbidden):
    """The refusal of an item the holder was given and the office has destroyed."""


def _kind(ctx: Ctx, token: str | None, asked: str):
    """The service module that checks this token (grants or subcontractors), or a 401."""
    if not token:
        ctx.record(Action.SHARED_READ, asked, "deny", Msg("rule.no_token"), keep=True)
        raise Unauthenticated(Msg("auth.token_required"))
    audience = tokens.token_audience(token)
    if audience == tokens.GRANT_AUDIENCE:
        from govern.services import grants

        return grants
    if audience == tokens.SUBCONTRACTOR_AUDIENCE:
        from govern.services import subcontractors

        return subcontractors
    ctx.record(
        Action.SHARED_READ,
        asked,
        "deny",
        Msg("rule.token_kind"),
        keep=True,
        token_sha256=tokens.fingerprint(token),
    )
    raise Unauthenticated(Msg("auth.token_kind"))


def _destroyed_for_holder(ctx: Ctx, item_id: int) -> bool:
    """Whether the item was one the holder was given and the office has destroyed it: a fact
    about what the holder holds (it can stop asking), not the office's reason."""
    item = ctx.db.get(Item, item_id) if item_id > 0 else None
    if item is None or item.status != "destroyed":
        return False
    holder = ctx.principal
    if holder.kind == "grant":
        grant = ctx.db.get(Grant, holder.id)
        return ctx.db.get(DisclosureItem, (grant.disclosure_id, item_id)) is not None
    if holder.kind == "subcontractor":
        scope = select(SubcontractorScope.id).where(
            SubcontractorScope.subcontractor_id == holder.id,
            SubcontractorScope.item_id == item_id,
        )
        return ctx.db.scalar(scope) is not None
    return False


def read(ctx: Ctx, item_id: int, token: str | None) -> tuple[Item, bytes, dict]:
    """Returns (item, the bytes to send, response hints such as {"media_type": ...})."""
    service = _kind(ctx, token, f"item:{item_id}")
    try:
        return service.read_shared(ctx, item_id, token)
    except (Forbidden, Conflict) as exc:
        # The denial (with its real reason and rule) is already kept for the trail.
        if _destroyed_for_holder(ctx, item_id):
            raise ItemGone(Msg(DESTROYED, id=item_id)) from exc
        raise Forbidden(Msg(DENIED)) from exc


def covered(ctx: Ctx, token: str | None) -> dict:
    """What the token covers: its items (for a subcontractor, with their fields), its window and
    when it ends, on the office's days."""
    service = _kind(ctx, token, "shared:items")
    try:
        return service.covered(ctx, token)
    except (Forbidden, Conflict) as exc:
        raise Forbidden(Msg(DENIED)) from exc
