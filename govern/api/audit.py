"""The trail for auditors: search with filters and cursor pagination, verify, export."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

from flask import Response, request, stream_with_context

from govern import audit
from govern.actions import Action
from govern.api import endpoint, query_int, query_text
from govern.clock import OfficeClock
from govern.db import MAX_ID
from govern.errors import Invalid
from govern.messages import Msg
from govern.schema import Schema, Str
from govern.services import trail

QUERY = ("actor", "action", "decision", "since", "until", "item", "request", "grant", "third_party")

# The CSV export's column names for a reader (?headers=...), in the order of audit.EXPORTED.
# Without the argument the export keeps the trail's own column names and no byte-order mark.
CSV_HEADERS = {
    "en": (
        "Seq",
        "Time (UTC)",
        "Actor",
        "Role",
        "Action",
        "Target",
        "Decision",
        "Rule",
        "Request id",
        "Client",
        "Details",
        "Previous hash",
        "Hash",
        "Office time",
        "Office time zone",
    ),
    "zh_CN": (
        "序号",
        "时间（UTC）",
        "操作人",
        "角色",
        "操作",
        "对象",
        "决定",
        "依据规则",
        "请求编号",
        "客户端",
        "详情",
        "前一条哈希",
        "哈希",
        "办公室时间",
        "办公室时区",
    ),
}
assert all(len(names) == len(audit.EXPORTED) for names in CSV_HEADERS.values())


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
        raise Invalid(Msg("query.moment"), field=name, at=name) from exc


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
        raise Invalid(Msg("query.decision"), field="decision", at="decision")
    action = request.args.get("action") or None
    if action is not None and action not in {a.value for a in Action}:
        raise Invalid(Msg("query.action"), field="action", at="action")
    actor = query_text("actor", 200)
    return audit.Query(
        actor,
        action,
        decision,
        _moment("since", clock),
        _moment("until", clock),
        # About one item, request or grant (their ids), or the requests of a third party.
        item=_id("item"),
        request=_id("request"),
        grant=_id("grant"),
        third_party=query_text("third_party", 300),
    )


def _id(name: str) -> int | None:
    return query_int(name, 0, 1, MAX_ID) if request.args.get(name) else None


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
    query=QUERY + ("format", "headers"),
    produces="text/csv",
    action=Action.AUDIT_EXPORT,
)
def export_audit(ctx):
    fmt = request.args.get("format", "jsonl")
    if fmt not in ("csv", "jsonl"):
        raise Invalid(Msg("query.format"), field="format", at="format")
    headers = request.args.get("headers") or None
    if headers not in (None, *CSV_HEADERS):
        raise Invalid(Msg("query.headers"), field="headers", at="headers")
    query = query_from_args(ctx.clock)
    header = CSV_HEADERS[headers] if headers else audit.EXPORTED
    rows = trail.export(ctx, query, fmt, header)
    if fmt == "csv" and headers:
        # Asked for a reader (the page's export link asks in its language): a UTF-8 byte-order
        # mark first, so spreadsheet programs (Excel set to Chinese) read UTF-8, not GBK.
        rows = itertools.chain(["\ufeff"], rows)
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = Response(stream_with_context(rows), mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename=govern-audit.{fmt}"
    response.headers["Cache-Control"] = "no-store"
    return response


# The Merkle tree: public for witnesses and for anyone holding an entry; proofs for auditors.

COSIGNATURE_IN = Schema(
    "Cosignature",
    checkpoint=Str(max_len=1000, multiline=True),
    cosignature=Str(max_len=1000),
)


@endpoint(
    "/audit/checkpoint",
    summary="The newest signed checkpoint (C2SP signed note) with the witnesses' co-signatures",
    tag="audit",
    produces="text/plain",
    public=True,
)
def audit_checkpoint(ctx):
    note = trail.latest_checkpoint(ctx)
    response = Response(note, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@endpoint(
    "/audit/proof/consistency",
    summary="A consistency proof between two tree sizes (RFC 6962)",
    tag="audit",
    query=("from", "to"),
    public=True,
)
def audit_consistency(ctx):
    first = query_int("from", 0, 0, 999_999_999)
    second = query_int("to", 0, 0, 999_999_999) if request.args.get("to") else None
    return trail.consistency(ctx, first, second)


@endpoint(
    "/audit/entries/<int:seq>/proof",
    summary="An inclusion proof for one entry, with the signed checkpoint it is proved against",
    tag="audit",
    query=("size",),
    action=Action.AUDIT_SEARCH,
)
def audit_inclusion(ctx, seq):
    size = query_int("size", 0, 1, 999_999_999) if request.args.get("size") else None
    return trail.inclusion(ctx, seq, size)


@endpoint(
    "/audit/cosignatures",
    "POST",
    summary="A registered witness posts its co-signature (tlog-cosignature/v1) of a checkpoint",
    tag="audit",
    body=COSIGNATURE_IN,
    public=True,
    status=201,
)
def audit_cosign(ctx, body):
    # Fields arrive stripped; a checkpoint body and a signature line each end in a newline.
    return trail.add_cosignature(ctx, body["checkpoint"] + "\n", body["cosignature"] + "\n")
