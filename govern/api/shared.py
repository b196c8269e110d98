"""GET /shared/items and /shared/items/{id}: items for third parties (grant tokens) and subcontractors (client
tokens). No account: the token is the credential, and the service decides every use against the
token's live grant or minimisation record."""

from __future__ import annotations

from govern import http
from govern.actions import Action
from govern.api import endpoint
from govern.api.agreements import content_response
from govern.services import shared


@endpoint(
    "/shared/items/<int:item_id>",
    summary="An item for the holder of a grant token or a subcontractor's client token",
    tag="shared",
    holder=True,
    action=Action.SHARED_READ,
    produces="application/octet-stream",
)
def shared_item(ctx, item_id):
    item, content, hints = shared.read(ctx, item_id, http.bearer_token())
    return content_response(item, content, hints.get("media_type"))


@endpoint(
    "/shared/items",
    summary=(
        "What a grant token or a subcontractor's client token covers: its items (ids, titles; "
        "a subcontractor's fields), its window and when it ends, on the office's days"
    ),
    tag="shared",
    holder=True,
    action=Action.SHARED_READ,
)
def shared_items(ctx):
    return shared.covered(ctx, http.bearer_token())
