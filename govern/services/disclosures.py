"""Per-case disclosure requests (clause 3.6, 一事一议): filing, the two-level review, the seal.

A request moves ``draft`` -> ``submitted`` -> ``reviewed`` -> ``approved`` | ``denied``; the filer
may withdraw it before a decision; an undecided one expires after ``request_expiry_days``, and an
approved one expires when its window ends or is revoked by a recall or a termination. Every move
is decided first (casbin and separation of duties: 403), then checked against the request's state
(409), so that a role that may never approve is refused whatever the state is.

Approval seals the request: the office signs a canonical JSON document of the request and of
every step that led to the decision with its seal key (a compact JWS, ES256, with ``kid``), so
anyone holding the office's public keys can verify it offline.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm.exc import StaleDataError

from govern import services
from govern.actions import Action
from govern.approvals import sealed_approval, sealed_step
from govern.audit import iso
from govern.context import Ctx, Decision, Target, can, require
from govern.crypto import canonical_json
from govern.db import utcnow
from govern.errors import Conflict, Invalid, NotFound
from govern.messages import Msg
from govern.models import (
    Agreement,
    AuditEntry,
    Disclosure,
    DisclosureEditor,
    DisclosureItem,
    Item,
    User,
)
from govern.models import disclosures as rules
from govern.services import agreements, get_or_404, outbox

# The allowed values live with the model, which also makes the database refuse anything else.
FORMS = rules.FORMS
STATES = rules.DISCLOSURE_STATES
UNDECIDED = ("submitted", "reviewed")
# The states each move may start from; anything else is an illegal move (409).
MOVES = {
    Action.DISCLOSURE_EDIT: ("draft",),
    Action.DISCLOSURE_SUBMIT: ("draft",),
    Action.DISCLOSURE_REVIEW: ("submitted",),
    Action.DISCLOSURE_APPROVE: ("reviewed",),
    Action.DISCLOSURE_DENY: UNDECIDED,
    Action.DISCLOSURE_WITHDRAW: ("draft",) + UNDECIDED,
}


def target(d: Disclosure) -> Target:
    return Target("disclosure", d.id, f"agreement:{d.agreement_id}")


def effective_state(ctx: Ctx, d: Disclosure) -> str:
    """The state as of now: an overdue undecided request or a spent window counts as expired
    even before the sweep (``govern disclosures expire``) has written it down."""
    expiry = timedelta(days=ctx.settings.request_expiry_days)
    if d.state in UNDECIDED and d.submitted_at and utcnow() >= d.submitted_at + expiry:
        return "expired"
    if d.state == "approved" and ctx.today() > d.ends_on:
        return "expired"
    return d.state


def effective_state_sql(ctx: Ctx):
    """:func:`effective_state` as a SQL expression, so that a page counts or filters requests by
    their state as of now in one statement (the two must say the same)."""
    cutoff = utcnow() - timedelta(days=ctx.settings.request_expiry_days)
    return case(
        (
            and_(
                Disclosure.state.in_(UNDECIDED),
                Disclosure.submitted_at.is_not(None),
                Disclosure.submitted_at <= cutoff,
            ),
            "expired",
        ),
        (and_(Disclosure.state == "approved", Disclosure.ends_on < ctx.today()), "expired"),
        else_=Disclosure.state,
    )


def item_ids(ctx: Ctx, d: Disclosure) -> list[int]:
    return [r.item_id for r in _rows(ctx, d)]


def _username(ctx: Ctx, user_id: int | None) -> str | None:
    return services.username(ctx.db, user_id)


def _rows(ctx: Ctx, d: Disclosure) -> list[DisclosureItem]:
    return list(
        ctx.db.scalars(
            select(DisclosureItem)
            .where(DisclosureItem.disclosure_id == d.id)
            .order_by(DisclosureItem.item_id)
        )
    )


def _json(ctx: Ctx, d: Disclosure, rows: list[DisclosureItem], name) -> dict:
    return {
        "id": d.id,
        "agreement_id": d.agreement_id,
        "third_party": d.third_party,
        "purpose": d.purpose,
        "form": d.form,
        "item_ids": [r.item_id for r in rows],
        "items": [{"id": r.item_id, "sha256": r.sha256} for r in rows],
        "starts_on": d.starts_on.isoformat(),
        "ends_on": d.ends_on.isoformat(),
        "state": effective_state(ctx, d),
        "filed_by": name(d.filed_by) if d.filed_by else None,
        "submitted_at": iso(d.submitted_at) if d.submitted_at else None,
        "reviewed_by": name(d.reviewed_by) if d.reviewed_by else None,
        "reviewed_at": iso(d.reviewed_at) if d.reviewed_at else None,
        "decided_by": name(d.decided_by) if d.decided_by else None,
        "decided_at": iso(d.decided_at) if d.decided_at else None,
        "deny_reason": d.deny_reason,
        "review_opinion": d.review_note,
        "decision_opinion": d.decision_note if d.deny_reason is None else d.deny_reason,
        "ended_at": iso(d.ended_at) if d.ended_at else None,
        "ended_reason": d.ended_reason,
        "sealed": d.approval_jws is not None,
    }


def rows_json(ctx: Ctx, listed: list[Disclosure]) -> list[dict]:
    """:func:`as_json` of many requests with two statements in all (their items, the people
    named), not two per request: for the pages that list them. Both run even for no request, so
    that a page's statements do not depend on what it finds."""
    ids = [d.id for d in listed]
    items: dict[int, list[DisclosureItem]] = {i: [] for i in ids}
    for row in ctx.db.scalars(
        select(DisclosureItem)
        .where(DisclosureItem.disclosure_id.in_(ids))
        .order_by(DisclosureItem.item_id)
    ):
        items[row.disclosure_id].append(row)
    people = {p for d in listed for p in (d.filed_by, d.reviewed_by, d.decided_by) if p}
    names = dict(ctx.db.execute(select(User.id, User.username).where(User.id.in_(people))).all())
    return [_json(ctx, d, items[d.id], names.get) for d in listed]


def as_json(ctx: Ctx, d: Disclosure) -> dict:
    return _json(ctx, d, _rows(ctx, d), lambda user_id: _username(ctx, user_id))


# Refusals that are not authorization failures are still decisions: they reach the trail even
# though the unit of work rolls back.
def refuse(ctx: Ctx, action: Action, tgt: Target, reason: str) -> Conflict:
    ctx.record(action, tgt, "deny", reason, keep=True)
    return Conflict(reason)


def _check_window(data: dict, today) -> None:
    if data["ends_on"] < data["starts_on"]:
        raise Invalid(Msg("window.ends_before_start"), field="ends_on", at="ends_on")
    if data["ends_on"] < today:
        raise Invalid(Msg("window.ended"), field="ends_on", at="ends_on")


def _items_for(ctx: Ctx, agreement: Agreement, ids: list[int]) -> list[Item]:
    """The named items, all of this agreement (400 otherwise)."""
    found = {i.id: i for i in ctx.db.scalars(select(Item).where(Item.id.in_(ids)))}
    for ident in ids:
        item = found.get(ident)
        if item is None or item.agreement_id != agreement.id:
            raise Invalid(
                Msg("item.not_in_agreement", item=ident, agreement=agreement.id),
                field="item_ids",
                at="item_ids",
            )
    return [found[i] for i in ids]


def _unavailable(agreement: Agreement, items: list[Item]) -> str | None:
    """Why these items may not be disclosed now, or None."""
    if agreement.status != "active":
        return Msg("agreement.is", id=agreement.id, status=agreement.status)
    for item in items:
        # Only protected items need (and may get) a request: recalled, returned or destroyed
        # ones are gone, public or declassified ones need no request (clause 1.1, 5.2).
        if item.status != "protected":
            return Msg("item.is", id=item.id, status=item.status)
    return None


def _set_items(ctx: Ctx, d: Disclosure, items: list[Item]) -> None:
    for row in ctx.db.scalars(select(DisclosureItem).where(DisclosureItem.disclosure_id == d.id)):
        ctx.db.delete(row)
    ctx.db.flush()
    for item in items:
        # The seal covers the content as it was when the request was filed.
        ctx.db.add(DisclosureItem(disclosure_id=d.id, item_id=item.id, sha256=item.sha256))


def create(ctx: Ctx, agreement_id: int, data: dict) -> Disclosure:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    tgt = Target("disclosure", "new", agreement.domain)
    decision = require(ctx, Action.DISCLOSURE_CREATE, tgt)
    _check_window(data, ctx.today())
    items = _items_for(ctx, agreement, data["item_ids"])
    reason = _unavailable(agreement, items)
    if reason:
        raise refuse(ctx, Action.DISCLOSURE_CREATE, tgt, reason)
    d = Disclosure(
        agreement_id=agreement.id,
        filed_by=ctx.principal.id,
        third_party=data["third_party"],
        purpose=data["purpose"],
        form=data["form"],
        starts_on=data["starts_on"],
        ends_on=data["ends_on"],
        state="draft",
    )
    ctx.db.add(d)
    ctx.db.flush()
    _set_items(ctx, d, items)
    ctx.db.flush()
    decision.entry.target = str(target(d))
    decision.record(
        third_party=d.third_party, form=d.form, item_ids=data["item_ids"], state=d.state
    )
    return d


def get(ctx: Ctx, disclosure_id: int) -> Disclosure:
    d = get_or_404(ctx.db, Disclosure, disclosure_id, "disclosure")
    require(ctx, Action.DISCLOSURE_READ, target(d))
    return d


def list_json(
    ctx: Ctx,
    agreement_id: int,
    state: str | None = None,
    third_party: str | None = None,
    item_id: int | None = None,
) -> list[dict]:
    """An agreement's requests (of one state as of now) for a page: one decision, and the same
    few statements however many requests there are."""
    return rows_json(ctx, list_for(ctx, agreement_id, state, third_party, item_id))


def list_for(
    ctx: Ctx,
    agreement_id: int,
    state: str | None = None,
    third_party: str | None = None,
    item_id: int | None = None,
) -> list[Disclosure]:
    """The agreement's requests, oldest first; narrowed to a state, a third party (any part of
    its name, in any case) or a request naming one item."""
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    if state is not None and state not in STATES:
        raise Invalid(Msg("schema.one_of", choices=", ".join(STATES)), field="state", at="state")
    require(ctx, Action.DISCLOSURE_LIST, agreements.target(agreement))
    stmt = select(Disclosure).where(Disclosure.agreement_id == agreement.id)
    if third_party:
        stmt = stmt.where(
            func.lower(Disclosure.third_party).contains(third_party.lower(), autoescape=True)
        )
    if item_id is not None:
        stmt = stmt.where(
            Disclosure.id.in_(
                select(DisclosureItem.disclosure_id).where(DisclosureItem.item_id == item_id)
            )
        )
    rows = ctx.db.scalars(stmt.order_by(Disclosure.id))
    return [d for d in rows if state is None or effective_state(ctx, d) == state]


# Separation of duties (三员分立 for requests): checks run after casbin said the role may act.
def participants(ctx: Ctx, d: Disclosure) -> set[int]:
    """Everyone who filed, edited or submitted the request: none of them reviews or decides it."""
    editors = ctx.db.scalars(
        select(DisclosureEditor.user_id).where(DisclosureEditor.disclosure_id == d.id)
    )
    return {d.filed_by, d.submitted_by, *editors} - {None}


def _not_a_participant(ctx: Ctx, d: Disclosure):
    return lambda: (
        Msg("duty.request_participant") if ctx.principal.id in participants(ctx, d) else None
    )


def _not_the_reviewer(ctx: Ctx, d: Disclosure):
    return lambda: (
        Msg("duty.reviewer_approver")
        if d.reviewed_by is not None and d.reviewed_by == ctx.principal.id
        else None
    )


def _only_the_filer(ctx: Ctx, d: Disclosure):
    return lambda: None if d.filed_by == ctx.principal.id else Msg("duty.only_filer")


DUTIES = {
    Action.DISCLOSURE_EDIT: (_only_the_filer,),
    Action.DISCLOSURE_SUBMIT: (_only_the_filer,),
    Action.DISCLOSURE_REVIEW: (_not_a_participant,),
    Action.DISCLOSURE_APPROVE: (_not_a_participant, _not_the_reviewer),
    Action.DISCLOSURE_DENY: (_not_a_participant, _not_the_reviewer),
    Action.DISCLOSURE_WITHDRAW: (_only_the_filer,),
}


def possible_moves(ctx: Ctx, d: Disclosure) -> set[str]:
    """The moves the reader could make on ``d`` now, for drawing its buttons: the same decision
    point and duties as the move itself, and the state it moves from. No trail entry (the move,
    when taken, makes its own audited decision)."""
    state = effective_state(ctx, d)
    return {
        str(action)
        for action, states in MOVES.items()
        if state in states
        and can(ctx, action, target(d), [duty(ctx, d) for duty in DUTIES.get(action, ())])
    }


def _begin_move(ctx: Ctx, disclosure_id: int, action: Action) -> tuple[Disclosure, Decision]:
    """Authorization first (403), then the state (409). Returns the request and the decision."""
    d = get_or_404(ctx.db, Disclosure, disclosure_id, "disclosure")
    decision = require(ctx, action, target(d), [duty(ctx, d) for duty in DUTIES.get(action, ())])
    state = effective_state(ctx, d)
    if state not in MOVES[action]:
        raise refuse(
            ctx, action, target(d), Msg("request.cannot", id=d.id, state=state, verb=action.verb)
        )
    # Moves towards disclosure need the items still protected and the agreement running; an
    # edit needs the agreement running (it may replace an item that has gone).
    if action not in (Action.DISCLOSURE_DENY, Action.DISCLOSURE_WITHDRAW):
        agreement = ctx.db.get(Agreement, d.agreement_id)
        items = (
            []
            if action == Action.DISCLOSURE_EDIT
            else [ctx.db.get(Item, i) for i in item_ids(ctx, d)]
        )
        reason = _unavailable(agreement, items)
        if reason:
            raise refuse(ctx, action, target(d), reason)
    decision.record(**{"from": state})
    return d, decision


def _save(ctx: Ctx, d: Disclosure, action: Action, decision: Decision, new_state: str) -> None:
    """Write the move; if another move landed first (version changed), exactly one wins."""
    tgt = target(d)  # taken now: after a failed flush the row cannot be read again
    d.state = new_state
    d.updated_at = utcnow()
    decision.record(to=new_state)
    try:
        ctx.db.flush()
    except StaleDataError as exc:
        # The failed flush leaves the transaction unusable; the unit of work is lost anyway,
        # and recording the refusal needs a working session.
        ctx.db.rollback()
        raise refuse(ctx, action, tgt, Msg("moved.first", what=str(tgt))) from exc


def edit(ctx: Ctx, disclosure_id: int, data: dict) -> Disclosure:
    d, decision = _begin_move(ctx, disclosure_id, Action.DISCLOSURE_EDIT)
    merged = {"starts_on": d.starts_on, "ends_on": d.ends_on, **data}
    _check_window(merged, ctx.today())
    if "item_ids" in data:
        agreement = ctx.db.get(Agreement, d.agreement_id)
        items = _items_for(ctx, agreement, data["item_ids"])
        reason = _unavailable(agreement, items)
        if reason:
            raise refuse(ctx, Action.DISCLOSURE_EDIT, target(d), reason)
        _set_items(ctx, d, items)
    for name in ("third_party", "purpose", "form", "starts_on", "ends_on"):
        if name in data:
            setattr(d, name, data[name])
    decision.record(fields=sorted(data))
    _note_editor(ctx, d)
    _save(ctx, d, Action.DISCLOSURE_EDIT, decision, "draft")
    return d


def _note_editor(ctx: Ctx, d: Disclosure) -> None:
    """Remember who edited the draft (once each), so that they never review or decide it."""
    key = (d.id, ctx.principal.id)
    if ctx.principal.id is not None and ctx.db.get(DisclosureEditor, key) is None:
        ctx.db.add(DisclosureEditor(disclosure_id=d.id, user_id=ctx.principal.id))


def submit(ctx: Ctx, disclosure_id: int) -> Disclosure:
    d, decision = _begin_move(ctx, disclosure_id, Action.DISCLOSURE_SUBMIT)
    d.submitted_at, d.submitted_by = utcnow(), ctx.principal.id
    _save(ctx, d, Action.DISCLOSURE_SUBMIT, decision, "submitted")
    _notify_office(ctx, d, "office_handler", "submitted")
    return d


def review(ctx: Ctx, disclosure_id: int, opinion: str | None = None) -> Disclosure:
    """First-level review, with the handler's opinion (审核意见) when it gives one."""
    d, decision = _begin_move(ctx, disclosure_id, Action.DISCLOSURE_REVIEW)
    d.reviewed_by, d.reviewed_at, d.review_note = ctx.principal.id, utcnow(), opinion or None
    if opinion:
        decision.record(opinion=opinion)
    _save(ctx, d, Action.DISCLOSURE_REVIEW, decision, "reviewed")
    _notify_office(ctx, d, "office_approver", "reviewed")
    return d


def approve(ctx: Ctx, disclosure_id: int, opinion: str | None = None) -> Disclosure:
    # clause 3.6: only after the owner signs and seals its consent may the vendor disclose.
    d, decision = _begin_move(ctx, disclosure_id, Action.DISCLOSURE_APPROVE)
    d.decided_by, d.decided_at, d.decision_note = ctx.principal.id, utcnow(), opinion or None
    if opinion:
        decision.record(opinion=opinion)
    # Sealed before the move lands, in the same write: the database refuses an approved request
    # without its seal. Nothing is flushed while the document is read, so that the move's
    # version check (in _save) still guards the whole change.
    seal = ctx.keys.seal_key
    with ctx.db.no_autoflush:
        d.approval_document = canonical_json(approval_document(ctx, d))
    d.approval_jws = seal.sign(d.approval_document.encode("utf-8"))
    d.approval_kid = seal.kid
    _save(ctx, d, Action.DISCLOSURE_APPROVE, decision, "approved")
    decision.record(key_id=seal.kid)
    _notify_filer(ctx, d, "approved")
    return d


def deny(ctx: Ctx, disclosure_id: int, reason: str) -> Disclosure:
    d, decision = _begin_move(ctx, disclosure_id, Action.DISCLOSURE_DENY)
    d.decided_by, d.decided_at, d.deny_reason = ctx.principal.id, utcnow(), reason
    decision.record(reason=reason)
    _save(ctx, d, Action.DISCLOSURE_DENY, decision, "denied")
    _notify_filer(ctx, d, "denied", reason)
    return d


def withdraw(ctx: Ctx, disclosure_id: int) -> Disclosure:
    d, decision = _begin_move(ctx, disclosure_id, Action.DISCLOSURE_WITHDRAW)
    d.ended_at, d.ended_reason = utcnow(), Msg("ended.withdrawn")
    _save(ctx, d, Action.DISCLOSURE_WITHDRAW, decision, "withdrawn")
    return d


def _submitter(ctx: Ctx, d: Disclosure) -> str | None:
    """Who submitted the request (requests submitted before it was kept: as the trail says)."""
    if d.submitted_by is not None:
        return _username(ctx, d.submitted_by)
    ctx.settle_trail()
    return ctx.db.scalar(
        select(AuditEntry.actor)
        .where(
            AuditEntry.action == str(Action.DISCLOSURE_SUBMIT),
            AuditEntry.target == str(target(d)),
            AuditEntry.decision == "allow",
        )
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    )


def approval_document(ctx: Ctx, d: Disclosure) -> dict:
    """What the seal covers: the request, its items with their hashes, and every step."""
    agreement = ctx.db.get(Agreement, d.agreement_id)
    rows = _rows(ctx, d)
    return {
        "type": "govern.disclosure-approval",
        "version": 1,
        "request_id": d.id,
        "agreement": {
            "id": agreement.id,
            "title": agreement.title,
            "owner": agreement.owner,
            "vendor": agreement.vendor,
        },
        "third_party": d.third_party,
        "purpose": d.purpose,
        "form": d.form,
        "items": [{"id": r.item_id, "sha256": r.sha256} for r in rows],
        "window": {"starts_on": d.starts_on.isoformat(), "ends_on": d.ends_on.isoformat()},
        "filed": {"by": _username(ctx, d.filed_by), "at": iso(d.created_at)},
        "submitted": {"by": _submitter(ctx, d), "at": iso(d.submitted_at)},
        # The opinions are sealed with their steps when given (approvals sealed before they were
        # kept simply lack the key: what each seal covers is its own stored document).
        "reviewed": sealed_step(_username(ctx, d.reviewed_by), iso(d.reviewed_at), d.review_note),
        "approved": sealed_step(_username(ctx, d.decided_by), iso(d.decided_at), d.decision_note),
        "decision": "approved",
    }


def approval(ctx: Ctx, disclosure_id: int) -> dict:
    d = get(ctx, disclosure_id)
    if d.approval_jws is None:
        raise NotFound(Msg("request.no_seal", id=d.id, state=effective_state(ctx, d)))
    return sealed_approval("request_id", d)


def revoke(ctx: Ctx, d: Disclosure, reason: str, action: Action) -> None:
    """End an approved request at once (recall, termination): a system-made state change
    recorded under the action that caused it."""
    previous = d.state
    d.state, d.ended_at, d.ended_reason, d.updated_at = "revoked", utcnow(), reason, utcnow()
    ctx.record(action, target(d), rule=reason, **{"from": previous, "to": "revoked"})


def expire_overdue(ctx: Ctx) -> list[int]:
    """The sweep: write down every request that has run out of time (actor ``system``)."""
    expired = []
    rows = ctx.db.scalars(
        select(Disclosure)
        .where(Disclosure.state.in_(UNDECIDED + ("approved",)))
        .order_by(Disclosure.id)
    )
    for d in rows:
        if effective_state(ctx, d) != "expired":
            continue
        if d.state == "approved":
            reason = Msg("ended.window", day=d.ends_on)
        else:
            reason = Msg("ended.undecided", days=ctx.settings.request_expiry_days)
        previous = d.state
        d.state, d.ended_at, d.ended_reason, d.updated_at = "expired", utcnow(), reason, utcnow()
        ctx.record(
            Action.DISCLOSURE_EXPIRE, target(d), rule=reason, **{"from": previous, "to": "expired"}
        )
        _notify_filer(ctx, d, "expired", reason)
        expired.append(d.id)
    ctx.db.flush()
    return expired


def _notify_office(ctx: Ctx, d: Disclosure, role: str, step: str) -> None:
    facts = dict(id=d.id, form=d.form, third_party=d.third_party, purpose=d.purpose)
    outbox.notify(
        ctx,
        f"disclosure-{step}:{d.id}",
        f"disclosure_{step}",
        Msg(f"notice.disclosure_{step}", id=d.id),
        Msg(f"notice.disclosure_{step}.body", **facts, starts=d.starts_on, ends=d.ends_on),
        agreement_id=d.agreement_id,
        recipient_role=role,
    )


def _notify_filer(ctx: Ctx, d: Disclosure, outcome: str, reason: str | None = None) -> None:
    # The filer learns the outcome, and for a denial or an expiry its reason.
    why = {"reason": reason} if reason is not None else {}
    body = Msg(f"notice.disclosure_{outcome}.body", id=d.id, third_party=d.third_party, **why)
    outbox.notify(
        ctx,
        f"disclosure-decided:{d.id}:{d.state}",
        "disclosure_decided",
        Msg(f"notice.disclosure_{outcome}", id=d.id),
        body,
        agreement_id=d.agreement_id,
        recipient_user_id=d.filed_by,
    )
