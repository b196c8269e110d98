"""GET /shared/items/{id}: what holders of third-party tokens receive.

A token's audience says which kind of holder it is: a disclosure grant (clause 3.6, see
``services/grants.py``) or a subcontractor's client token (clause 3.7, see
``services/subcontractors.py``). Each is checked against live state on every use.
"""

from __future__ import annotations

from govern import tokens
from govern.actions import Action
from govern.context import Ctx
from govern.errors import Unauthenticated
from govern.models import Item


def read(ctx: Ctx, item_id: int, token: str | None) -> tuple[Item, bytes, dict]:
    """Returns (item, the bytes to send, response hints such as {"media_type": ...})."""
    if not token:
        ctx.record(Action.SHARED_READ, f"item:{item_id}", "deny", "no token", keep=True)
        raise Unauthenticated("a grant token or a client token is required")
    audience = tokens.token_audience(token)
    if audience == tokens.GRANT_AUDIENCE:
        from govern.services import grants

        return grants.read_shared(ctx, item_id, token)
    if audience == tokens.SUBCONTRACTOR_AUDIENCE:
        from govern.services import subcontractors

        return subcontractors.read_shared(ctx, item_id, token)
    ctx.record(
        Action.SHARED_READ,
        f"item:{item_id}",
        "deny",
        "not a grant token or a client token",
        keep=True,
        token_sha256=tokens.fingerprint(token),
    )
    raise Unauthenticated("the token is not a grant token or a client token")
