"""What each role sees first, drawn from the read model of services/dashboards.py (one decision
for the page). This module only adds where each tile and each notice leads."""

from __future__ import annotations

from flask import url_for

from govern.models import OutboxMessage

# Where a notice leads, by its kind: the object it is about (a request, a recall, a staff NDA, a
# subcontractor record) or, for a grant (whose notice names only the grant), the agreement's
# requests. The object's id is the one its stable dedup key names, "<what>:<id>[:...]", which
# every writer of the outbox (services/disclosures, recalls, subcontractors, warnings) gives it.
_REQUEST = ("disclosure_submitted", "disclosure_reviewed", "disclosure_decided", "window_ends")
_RECALL = ("recall", "termination")
_SUBCONTRACTOR = (
    "dsa_ends",
    "record_ends",
    "subcontractor_submitted",
    "subcontractor_reviewed",
    "subcontractor_decided",
)


def _object_id(m: OutboxMessage) -> int | None:
    parts = m.dedup_key.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def notice_href(m: OutboxMessage) -> str | None:
    """The page of the object a notice is about, or None when it names none."""
    ident, aid = _object_id(m), m.agreement_id
    if m.kind in _REQUEST and ident is not None:
        return url_for("web.request_page", disclosure_id=ident)
    if aid is None:
        return None
    if m.kind in _RECALL:
        return url_for("web.recall_page", agreement_id=aid, _anchor=f"recall-{ident}")
    if m.kind in _SUBCONTRACTOR:
        return url_for("web.subcontractor_page", agreement_id=aid, _anchor=f"sub-{ident}")
    if m.kind == "nda_ends":
        return url_for("web.staff_page", agreement_id=aid, _anchor=f"nda-{ident}")
    if m.kind == "grant_ends":
        return url_for("web.request_list", agreement_id=aid)
    return url_for("web.agreement_page", agreement_id=aid)


def state_href(state: str, agreement_ids: list[int]) -> str:
    """Where a tile "N requests in this state" leads: the requests of that state, in the one
    agreement's list, or across agreements in the queue."""
    if len(agreement_ids) == 1:
        return url_for("web.request_list", agreement_id=agreement_ids[0], state=state)
    return url_for("web.queue", state=state)
