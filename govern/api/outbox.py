"""GET /outbox: notifications and warnings for the caller and the caller's roles."""

from __future__ import annotations

from govern.actions import Action
from govern.api import endpoint
from govern.services import outbox


@endpoint(
    "/outbox", summary="Notifications and warnings for me", tag="outbox", action=Action.OUTBOX_LIST
)
def list_outbox(ctx):
    return {"messages": [outbox.message_json(m) for m in outbox.list_for(ctx)]}
