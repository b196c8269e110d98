"""Subcontractors and their minimisation records (clause 3.7).

A subcontractor is a third-party software or service the vendor uses. Its record says, per item,
exactly which fields it may receive, for what purpose and until when, under a signed data-security
agreement (DSA). It holds one client token at a time (rotatable, revocable); every use of the
token is decided against the live record, and what is served is cut down to the record's fields.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from govern import shapes, tokens
from govern.actions import Action
from govern.context import Ctx, Principal, Target, require
from govern.crypto import DecryptError, sha256_hex
from govern.db import utcnow
from govern.errors import Conflict, Invalid, Unauthenticated
from govern.models import Agreement, AuditEntry, Item, Subcontractor, SubcontractorScope
from govern.services import agreements, get_or_404, items
from govern.services.ndas import agreement_items


def target(sub: Subcontractor) -> Target:
    return Target("subcontractor", sub.id, f"agreement:{sub.agreement_id}")


def actor_name(sub_id: int) -> str:
    return f"subcontractor:{sub_id}"


# Registration.


def _check_record(ctx: Ctx, agreement: Agreement, data: dict, today: date) -> None:
    """The DSA and the record's end date, each refusal naming its field (clause 3.7)."""
    signed, expires, until = data["dsa_signed_on"], data["dsa_expires_on"], data["until"]
    if expires < signed:
        raise Invalid("dsa_expires_on: ends before the DSA was signed", field="dsa_expires_on")
    if signed > today:
        raise Invalid(
            f"dsa_signed_on: the DSA has not started ({signed.isoformat()})", field="dsa_signed_on"
        )
    if expires < today:
        raise Invalid(
            f"dsa_expires_on: the DSA lapsed on {expires.isoformat()}", field="dsa_expires_on"
        )
    if until < today:
        raise Invalid("until: is in the past", field="until")
    if until > expires:
        raise Invalid(
            f"until: the record may not outlast the DSA ({expires.isoformat()})", field="until"
        )
    term_end = agreements.term_ends_on(agreement)
    if until > term_end:
        raise Invalid(
            f"until: the record may not outlast the agreement's term ({term_end.isoformat()})",
            field="until",
        )


def _scopes(found: list[Item], fields: list[str]) -> list[tuple[Item, list[str]]]:
    """Per item, the record's fields that the item declares (data minimisation, clause 3.7)."""
    declared = {f for item in found for f in item.fields}
    unknown = [f for f in fields if f not in declared]
    if unknown:
        raise Invalid(f"fields: {unknown} are not fields of the items named", field="fields")
    scopes = []
    for item in found:
        mine = [f for f in fields if f in item.fields]
        if item.fields and not mine:
            # An item with declared fields is only ever shared field by field; an empty scope
            # would mean "the whole item", which nobody asked for.
            raise Invalid(
                f"fields: names none of item {item.id}'s fields ({', '.join(item.fields)})",
                field="fields",
            )
        scopes.append((item, mine))
    return scopes


def token_expiry(ctx: Ctx, until: date) -> datetime:
    """The end of the record's last day, on the office's calendar."""
    zone = ZoneInfo(ctx.settings.timezone)
    return datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)


def _issue_token(ctx: Ctx, sub: Subcontractor) -> str:
    token, jti = tokens.issue_party_token(
        ctx.keys,
        ctx.settings.issuer,
        tokens.SUBCONTRACTOR_AUDIENCE,
        str(sub.id),
        token_expiry(ctx, sub.until),
    )
    sub.token_jti = jti
    return token


def create(ctx: Ctx, agreement_id: int, data: dict) -> tuple[Subcontractor, str]:
    """Register a subcontractor and its record; returns it and its client token (shown once)."""
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    decision = require(
        ctx,
        Action.SUBCONTRACTOR_CREATE,
        agreements.target(agreement),
        [agreements.is_active(agreement)],
    )
    _check_record(ctx, agreement, data, ctx.today())
    scopes = _scopes(agreement_items(ctx, agreement, data["item_ids"]), data["fields"])
    sub = Subcontractor(
        agreement_id=agreement.id,
        name=data["name"],
        service=data["service"],
        dsa_signed_on=data["dsa_signed_on"],
        dsa_expires_on=data["dsa_expires_on"],
        dsa_sha256=data["dsa_sha256"],
        purpose=data["purpose"],
        until=data["until"],
        registered_by=ctx.principal.id,
    )
    ctx.db.add(sub)
    ctx.db.flush()
    ctx.db.add_all(
        SubcontractorScope(subcontractor_id=sub.id, item_id=item.id, fields=fields)
        for item, fields in scopes
    )
    token = _issue_token(ctx, sub)
    ctx.db.flush()
    decision.entry.target = str(target(sub))
    decision.record(
        name=sub.name,
        purpose=sub.purpose,
        until=sub.until.isoformat(),
        dsa_sha256=sub.dsa_sha256,
        scope={str(item.id): fields for item, fields in scopes},
    )
    return sub, token


def rotate(ctx: Ctx, sub_id: int) -> tuple[Subcontractor, str]:
    """A new client token; the old one stops working at once (only one jti is current)."""
    sub = get_or_404(ctx.db, Subcontractor, sub_id, "subcontractor")
    decision = require(ctx, Action.SUBCONTRACTOR_ROTATE, target(sub))
    if sub.revoked_at is not None:
        raise Conflict(f"subcontractor {sub.id} is revoked", field="subcontractor_id")
    token = _issue_token(ctx, sub)
    decision.record(rotated=True)
    return sub, token


def revoke(ctx: Ctx, sub_id: int, reason: str) -> Subcontractor:
    sub = get_or_404(ctx.db, Subcontractor, sub_id, "subcontractor")
    decision = require(ctx, Action.SUBCONTRACTOR_REVOKE, target(sub))
    if sub.revoked_at is not None:
        raise Conflict(f"subcontractor {sub.id} is revoked already", field="subcontractor_id")
    now = utcnow()
    sub.revoked_at, sub.token_jti = now, None
    for scope in scopes_of(ctx, sub):
        if scope.ended_at is None:
            scope.ended_at, scope.ended_reason = now, f"subcontractor revoked: {reason}"
    decision.record(reason=reason)
    return sub


def scopes_of(ctx: Ctx, sub: Subcontractor) -> list[SubcontractorScope]:
    return list(
        ctx.db.scalars(
            select(SubcontractorScope)
            .where(SubcontractorScope.subcontractor_id == sub.id)
            .order_by(SubcontractorScope.item_id)
        )
    )


def list_for(ctx: Ctx, agreement_id: int) -> list[tuple[Subcontractor, list[SubcontractorScope]]]:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    require(ctx, Action.SUBCONTRACTOR_LIST, agreements.target(agreement))
    subs = ctx.db.scalars(
        select(Subcontractor)
        .where(Subcontractor.agreement_id == agreement.id)
        .order_by(Subcontractor.id)
    )
    return [(sub, scopes_of(ctx, sub)) for sub in subs]


# What a subcontractor receives.


def _claims(ctx: Ctx, item_id: int, token: str) -> tokens.Claims:
    try:
        return tokens.check_party_token(
            ctx.keys, ctx.settings.issuer, token, tokens.SUBCONTRACTOR_AUDIENCE
        )
    except Unauthenticated:
        ctx.record(
            Action.SHARED_READ,
            Target("item", item_id),
            "deny",
            "invalid or expired client token",
            keep=True,
            token_sha256=tokens.fingerprint(token),
        )
        raise


def read_shared(ctx: Ctx, item_id: int, token: str) -> tuple[Item, bytes, dict]:
    """The item as the record allows: only its fields, only while everything holds."""
    claims = _claims(ctx, item_id, token)
    sub = ctx.db.get(Subcontractor, int(claims.subject)) if claims.subject.isdigit() else None
    if sub is None:
        ctx.record(
            Action.SHARED_READ,
            Target("item", item_id),
            "deny",
            "client token names no subcontractor",
            keep=True,
            token_sha256=tokens.fingerprint(token),
        )
        raise Unauthenticated("the client token names no subcontractor")
    ctx.principal = Principal("subcontractor", actor_name(sub.id), "subcontractor", sub.id)
    agreement = ctx.db.get(Agreement, sub.agreement_id)
    item = ctx.db.get(Item, item_id)
    scope = ctx.db.scalar(
        select(SubcontractorScope).where(
            SubcontractorScope.subcontractor_id == sub.id, SubcontractorScope.item_id == item_id
        )
    )
    today = ctx.today()
    served: dict = {}
    decision = require(
        ctx,
        Action.SHARED_READ,
        Target("item", item_id, agreement.domain),
        [
            lambda: _token_problem(sub, claims),
            lambda: _destroyed(item, scope),
            lambda: _record_problem(sub, today),
            agreements.is_active(agreement),
            lambda: _scope_problem(item, scope),
            lambda: _item_problem(item),
            lambda: _minimise(ctx, item, scope.fields, served),
        ],
    )
    decision.record(
        fields=served["fields"], whole_item=not scope.fields, sha256=sha256_hex(served["content"])
    )
    return item, served["content"], {"media_type": served["media_type"]}


def _token_problem(sub: Subcontractor, claims: tokens.Claims) -> str | None:
    if sub.revoked_at is not None:
        return f"subcontractor {sub.id} is revoked"
    if claims.jti != sub.token_jti:
        return "the client token was replaced by a newer one"
    return None


def _destroyed(item: Item | None, scope: SubcontractorScope | None) -> str | None:
    # An item the record named and the office has since destroyed is said to be gone for good,
    # rather than only that the scope ended; items outside the record are never described.
    if item is not None and scope is not None and item.status == "destroyed":
        return f"item {item.id} is destroyed"
    return None


def _record_problem(sub: Subcontractor, today: date) -> str | None:
    # clause 3.7: nothing outside the record's dates or the signed data-security agreement.
    if sub.until < today:
        return f"the minimisation record ended on {sub.until.isoformat()}"
    if sub.dsa_signed_on > today:
        return f"the data-security agreement starts on {sub.dsa_signed_on.isoformat()}"
    if sub.dsa_expires_on < today:
        return f"the data-security agreement lapsed on {sub.dsa_expires_on.isoformat()}"
    return None


def _scope_problem(item: Item | None, scope: SubcontractorScope | None) -> str | None:
    if item is None or scope is None:
        return "the item is not in the minimisation record"
    if scope.ended_at is not None:
        return f"the record's scope over item {item.id} ended: {scope.ended_reason}"
    return None


def _item_problem(item: Item) -> str | None:
    if item.status != "protected":
        return f"item {item.id} is {item.status}"
    if item.wrapped_key is None:
        return f"item {item.id} is destroyed"
    return None


def _minimise(ctx: Ctx, item: Item, fields: list[str], served: dict) -> str | None:
    """Cut the content down to the record's fields; a reason when that cannot be done.

    Run last, once every access fact holds, because it has to open the content to see its shape.
    """
    try:
        content = ctx.keys.decrypt(
            item.nonce, item.ciphertext, item.wrapped_key, items.identity(item)
        )
    except DecryptError:
        return f"item {item.id} cannot be opened"
    served["media_type"] = item.media_type
    if not fields:
        served.update(content=content, fields=[])
        return None
    if shapes.is_json(item.media_type):
        return _minimise_json(content, fields, served)
    if shapes.is_csv(item.media_type):
        return _minimise_csv(content, fields, served)
    return (
        f"item {item.id} is {shapes.base_type(item.media_type)}, which cannot be cut down to "
        f"fields {fields}; the record names fields for it"
    )


def _minimise_json(content: bytes, fields: list[str], served: dict) -> str | None:
    records = shapes.json_records(content)
    if records is None:
        return "the item is not JSON records (a list of objects); only whole fields may be served"
    wanted = set(fields)
    cut = [{k: v for k, v in record.items() if k in wanted} for record in records]
    served.update(
        content=json.dumps(cut, ensure_ascii=False).encode("utf-8"),
        fields=sorted({k for record in cut for k in record}, key=fields.index),
        media_type=shapes.JSON,
    )
    return None


def _minimise_csv(content: bytes, fields: list[str], served: dict) -> str | None:
    rows = shapes.csv_table(content)
    if rows is None:
        return "the item is not CSV with a header; only whole columns may be served"
    # The file's own column order is kept; only the record's columns survive.
    keep = [i for i, name in enumerate(rows[0]) if name in fields]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in keep])
    served.update(
        content=out.getvalue().encode("utf-8"),
        fields=[rows[0][i] for i in keep],
        media_type=shapes.CSV,
    )
    return None


# The minimisation report.


def report(ctx: Ctx, sub_id: int) -> dict:
    """What the subcontractor may receive beside what it has received (from the trail), with the
    fields granted but never used: candidates for a narrower record (clause 3.7)."""
    sub = get_or_404(ctx.db, Subcontractor, sub_id, "subcontractor")
    require(ctx, Action.SUBCONTRACTOR_REPORT, target(sub))
    received: dict[int, set[str]] = {}
    reads: Counter = Counter()
    denied = 0
    entries = ctx.db.scalars(
        select(AuditEntry).where(
            AuditEntry.actor == actor_name(sub.id), AuditEntry.action == str(Action.SHARED_READ)
        )
    )
    for entry in entries:
        if entry.decision != "allow":
            denied += 1
            continue
        item_id = int(entry.target.split(":", 1)[1])
        details = json.loads(entry.details or "{}")
        received.setdefault(item_id, set()).update(details.get("fields", []))
        reads[item_id] += 1
    titles = dict(
        ctx.db.execute(
            select(Item.id, Item.title).where(Item.id.in_([s.item_id for s in scopes_of(ctx, sub)]))
        ).all()
    )
    rows, unused = [], []
    for scope in scopes_of(ctx, sub):
        got = received.get(scope.item_id, set())
        never = [f for f in scope.fields if f not in got]
        unused += [{"item_id": scope.item_id, "field": f} for f in never]
        rows.append(
            {
                "item_id": scope.item_id,
                "title": titles.get(scope.item_id),
                "may_receive": scope.fields,
                "whole_item": not scope.fields,
                "received": [f for f in scope.fields if f in got],
                "reads": reads[scope.item_id],
                "never_used": never,
                "scope_ended": scope.ended_at is not None,
            }
        )
    return {
        "subcontractor_id": sub.id,
        "name": sub.name,
        "purpose": sub.purpose,
        "until": sub.until.isoformat(),
        "items": rows,
        "unused_fields": unused,
        "denied_requests": denied,
    }
