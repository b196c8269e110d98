"""The trail for auditors: search with filters and cursor pagination, verify, export."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Response, request, stream_with_context

from govern import audit
from govern.actions import Action
from govern.api import endpoint, query_int, query_text
from govern.clock import OfficeClock
from govern.errors import Invalid
from govern.services import trail

QUERY = ("actor", "action", "decision", "since", "until")


def _moment(name: str, clock: OfficeClock) -> datetime | None:
    """``since``/``until`` as an instant. A day is an office day: since=D starts at 00:00 office
    time on D, until=D runs through the end of the office's day D. A time without an offset is
    read on the office's clock too; one with an offset (or Z) is taken as it says."""
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        moment = _parse(name, raw, clock)
        moment.astimezone(UTC)  # the trail's times are UTC: the moment must have one
        return clock.local(moment)
    except (ValueError, OverflowError) as exc:
        raise Invalid(f"{name}: must be an ISO-8601 date or time", field=name) from exc


def _parse(name: str, raw: str, clock: OfficeClock) -> datetime:
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        moment = datetime.fromisoformat(raw)
        return moment if moment.tzinfo else moment.replace(tzinfo=clock.zone)
    return clock.start_of_day(day) if name == "since" else clock.end_of_day(day)


def query_from_args(clock: OfficeClock) -> audit.Query:
    decision = request.args.get("decision") or None
    if decision not in (None, "allow", "deny"):
        raise Invalid("decision: must be allow or deny", field="decision")
    action = request.args.get("action") or None
    if action is not None and action not in {a.value for a in Action}:
        raise Invalid("action: not a known audit action", field="action")
    actor = query_text("actor", 200)
    return audit.Query(actor, action, decision, _moment("since", clock), _moment("until", clock))


@endpoint(
    "/audit",
    summary="Search the audit trail, newest first",
    tag="audit",
    query=QUERY + ("limit", "cursor"),
    action=Action.AUDIT_SEARCH,
)
def search_audit(ctx):
    query = query_from_args(ctx.clock)
    limit = query_int("limit", 50, 1, 1000)
    cursor = query_int("cursor", 0, 1, 10**12) if request.args.get("cursor") else None
    entries, next_cursor = trail.search(ctx, query, limit, cursor)
    return {
        "entries": [audit.as_json(e) for e in entries],
        "next_cursor": str(next_cursor) if next_cursor else None,
    }


@endpoint(
    "/audit/verify",
    summary="Verify the whole chain and its checkpoints",
    tag="audit",
    action=Action.AUDIT_VERIFY,
)
def verify_audit(ctx):
    return trail.verify(ctx).as_dict()


@endpoint(
    "/audit/export",
    summary="Stream the selection as CSV or JSON lines",
    tag="audit",
    query=QUERY + ("format",),
    produces="text/csv",
    action=Action.AUDIT_EXPORT,
)
def export_audit(ctx):
    fmt = request.args.get("format", "jsonl")
    if fmt not in ("csv", "jsonl"):
        raise Invalid("format: must be csv or jsonl", field="format")
    query = query_from_args(ctx.clock)
    rows = trail.export(ctx, query, fmt)
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = Response(stream_with_context(rows), mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename=govern-audit.{fmt}"
    response.headers["Cache-Control"] = "no-store"
    return response
