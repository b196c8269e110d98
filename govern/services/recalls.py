"""Taking data back: recall orders (clause 3.10), termination with its return manifest (clause
5.3), and declassification, the only way an item stops being protected (clause 5.2).

A recall or a termination is one unit of work: every grant, need-to-know and subcontractor scope
over the items ends, the approved requests covering them are revoked, and a return confirmation is
opened for every holder of every item, so nothing is left half taken back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from govern.actions import Action
from govern.audit import iso
from govern.context import Ctx, Target, require
from govern.db import utcnow
from govern.errors import Invalid
from govern.messages import Msg
from govern.models import (
    Agreement,
    AuditEntry,
    Disclosure,
    DisclosureItem,
    Item,
    NeedToKnow,
    Recall,
    ReturnConfirmation,
    Subcontractor,
    SubcontractorScope,
    User,
)
from govern.models import recalls as rules
from govern.services import agreements, disclosures, get_or_404, grants, items, outbox

OUTCOMES = rules.OUTCOMES


@dataclass(frozen=True)
class Holder:
    kind: str  # staff, subcontractor, third_party
    name: str  # a username, subcontractor:<id>, grant:<id>


def _recall_target(agreement: Agreement, recall_id: int | str = "new") -> Target:
    return Target("recall", recall_id, agreement.domain)


def holders(ctx: Ctx, item: Item) -> list[Holder]:
    """Everyone outside the office who holds ``item`` now: staff with need-to-know,
    subcontractors with a scope over it, third parties that received it (per the trail)."""
    found: list[Holder] = []
    staff = ctx.db.scalars(
        select(User.username)
        .join(NeedToKnow, NeedToKnow.user_id == User.id)
        .where(NeedToKnow.item_id == item.id, NeedToKnow.revoked_at.is_(None))
        .distinct()
        .order_by(User.username)
    )
    found += [Holder("staff", name) for name in staff]
    # A record the office has not approved never received anything: only approved ones hold.
    subs = ctx.db.scalars(
        select(SubcontractorScope.subcontractor_id)
        .join(Subcontractor, Subcontractor.id == SubcontractorScope.subcontractor_id)
        .where(
            SubcontractorScope.item_id == item.id,
            SubcontractorScope.ended_at.is_(None),
            Subcontractor.state == "approved",
        )
        .distinct()
        .order_by(SubcontractorScope.subcontractor_id)
    )
    found += [Holder("subcontractor", f"subcontractor:{sid}") for sid in subs]
    ctx.settle_trail()  # every read so far is in the chain, queued or not
    parties = ctx.db.scalars(
        select(AuditEntry.actor)
        .where(
            AuditEntry.action == str(Action.SHARED_READ),
            AuditEntry.target == f"item:{item.id}",
            AuditEntry.decision == "allow",
            AuditEntry.actor.like("grant:%"),
        )
        .distinct()
        .order_by(AuditEntry.actor)
    )
    found += [Holder("third_party", actor) for actor in parties]
    return found


def _end_access(ctx: Ctx, agreement: Agreement, item_ids: list[int], reason: str, action) -> dict:
    """End every grant, need-to-know and scope over the items, and revoke the approved requests
    that cover them. Returns what ended, for the trail."""
    now = utcnow()
    covered = set(
        ctx.db.scalars(
            select(DisclosureItem.disclosure_id).where(DisclosureItem.item_id.in_(item_ids))
        )
    )
    requests = [
        d
        for d in ctx.db.scalars(select(Disclosure).where(Disclosure.id.in_(covered)))
        if d.state == "approved"
    ]
    for d in requests:
        disclosures.revoke(ctx, d, reason, action)
    ended_grants = grants.revoke_for_requests(ctx, sorted(covered), reason)
    ntk = list(
        ctx.db.scalars(
            select(NeedToKnow).where(
                NeedToKnow.item_id.in_(item_ids), NeedToKnow.revoked_at.is_(None)
            )
        )
    )
    for row in ntk:
        row.revoked_at, row.revoked_reason = now, reason
    scopes = list(
        ctx.db.scalars(
            select(SubcontractorScope).where(
                SubcontractorScope.item_id.in_(item_ids), SubcontractorScope.ended_at.is_(None)
            )
        )
    )
    for scope in scopes:
        scope.ended_at, scope.ended_reason = now, reason
    return {
        "grants_revoked": ended_grants,
        "requests_revoked": [d.id for d in requests],
        "need_to_know_revoked": [r.id for r in ntk],
        "scopes_ended": [s.id for s in scopes],
    }


def _open_confirmations(
    ctx: Ctx, recall: Recall, targets: list[Item], earlier: dict | None = None
) -> list[tuple]:
    """Holders are found before access ends, so that everyone who held an item is asked. A holder
    already asked about an item by an earlier recall (``earlier``) is not asked twice: that
    confirmation stands for it."""
    earlier = earlier or {}
    opened = []
    for item in targets:
        for holder in holders(ctx, item):
            row = earlier.pop((item.id, holder.kind, holder.name), None)
            if row is None:
                row = ReturnConfirmation(
                    recall_id=recall.id,
                    item_id=item.id,
                    holder_kind=holder.kind,
                    holder=holder.name,
                )
                ctx.db.add(row)
            opened.append((item, row))
    return opened


def _earlier_confirmations(ctx: Ctx, agreement: Agreement) -> dict:
    rows = ctx.db.scalars(
        select(ReturnConfirmation)
        .join(Recall, Recall.id == ReturnConfirmation.recall_id)
        .where(Recall.agreement_id == agreement.id)
        .order_by(ReturnConfirmation.id)
    )
    return {(r.item_id, r.holder_kind, r.holder): r for r in rows}


def _items_to_recall(ctx: Ctx, agreement: Agreement, data: dict) -> list[Item]:
    everything = data.get("all") is True
    ids = data.get("item_ids")
    if everything == bool(ids):
        raise Invalid(Msg("recall.either"), field="item_ids", at="item_ids")
    if everything:
        return list(
            ctx.db.scalars(
                select(Item)
                .where(Item.agreement_id == agreement.id, Item.status == "protected")
                .order_by(Item.id)
            )
        )
    found = {i.id: i for i in ctx.db.scalars(select(Item).where(Item.id.in_(ids)))}
    for ident in ids:
        if ident not in found or found[ident].agreement_id != agreement.id:
            raise Invalid(
                Msg("item.not_in_agreement", item=ident, agreement=agreement.id),
                field="item_ids",
                at="item_ids",
            )
    return [found[i] for i in ids]


def recall(ctx: Ctx, agreement_id: int, data: dict) -> tuple[Recall, list[tuple]]:
    # clause 3.10: the owner may take back documents, data and usage rights whenever it sees fit.
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    tgt = _recall_target(agreement)
    decision = require(ctx, Action.RECALL_CREATE, tgt)
    targets = _items_to_recall(ctx, agreement, data)
    problem = None
    if not targets:
        problem = Msg("recall.nothing", id=agreement.id)
    for item in targets:
        if item.status != "protected":
            problem = Msg("recall.not_protected", id=item.id, status=item.status)
    if problem:
        raise disclosures.refuse(ctx, Action.RECALL_CREATE, tgt, problem)
    row = Recall(
        agreement_id=agreement.id,
        ordered_by=ctx.principal.id,
        reason=data["reason"],
        everything=bool(data.get("all")),
        kind="recall",
    )
    ctx.db.add(row)
    ctx.db.flush()
    opened = _open_confirmations(ctx, row, targets)
    ids = [i.id for i in targets]
    why = Msg("ended.recall", id=row.id, reason=row.reason)
    ended = _end_access(ctx, agreement, ids, why, Action.RECALL_CREATE)
    for item in targets:
        items.set_status(item, "recalled", why)
    ctx.db.flush()
    _ask_vendor(ctx, row, len(opened))
    decision.entry.target = str(_recall_target(agreement, row.id))
    decision.record(reason=row.reason, item_ids=ids, confirmations=len(opened), **ended)
    return row, opened


def _ask_vendor(ctx: Ctx, row: Recall, confirmations: int) -> None:
    facts = {"id": row.id, "agreement": row.agreement_id, "reason": row.reason}
    # A recall or termination no holder had anything of says so, in its notice and its mail
    # alike, instead of asking for confirmations that do not exist.
    if confirmations:
        subject = Msg(f"notice.{row.kind}", id=row.id, count=confirmations)
        body = Msg(f"notice.{row.kind}.body", **facts)
    else:
        subject = Msg(f"notice.{row.kind}.none", id=row.id)
        body = Msg(f"notice.{row.kind}.none.body", **facts)
    outbox.notify(
        ctx,
        f"{row.kind}:{row.id}",
        row.kind,
        subject,
        body,
        agreement_id=row.agreement_id,
        recipient_role="vendor_lead",
    )


def confirmation_json(ctx: Ctx, row: ReturnConfirmation) -> dict:
    item = ctx.db.get(Item, row.item_id)
    return {
        "id": row.id,
        "recall_id": row.recall_id,
        "item_id": row.item_id,
        "item_title": item.title,
        "holder_kind": row.holder_kind,
        "holder": row.holder,
        "confirmed": row.confirmed_at is not None,
        "outcome": row.outcome,
        "confirmed_at": iso(row.confirmed_at) if row.confirmed_at else None,
        "note": row.note,
    }


def _confirmations(ctx: Ctx, row: Recall) -> list[ReturnConfirmation]:
    """A recall's own confirmations; a termination's are its whole manifest (clause 5.3): every
    confirmation of the agreement up to it, those an earlier recall opened included, so the
    termination's list, its manifest and its counts are the same rows."""
    if row.kind == "termination":
        mine = ReturnConfirmation.recall_id.in_(
            select(Recall.id).where(Recall.agreement_id == row.agreement_id, Recall.id <= row.id)
        )
    else:
        mine = ReturnConfirmation.recall_id == row.id
    return list(
        ctx.db.scalars(
            select(ReturnConfirmation)
            .where(mine)
            .order_by(
                ReturnConfirmation.item_id,
                ReturnConfirmation.holder_kind,
                ReturnConfirmation.holder,
            )
        )
    )


def recall_json(ctx: Ctx, row: Recall) -> dict:
    confirmations = [confirmation_json(ctx, c) for c in _confirmations(ctx, row)]
    return {
        "id": row.id,
        "agreement_id": row.agreement_id,
        "kind": row.kind,
        "reason": row.reason,
        "all": row.everything,
        "created_at": iso(row.created_at),
        "confirmations": confirmations,
        "open_confirmations": [c for c in confirmations if not c["confirmed"]],
    }


def list_for(ctx: Ctx, agreement_id: int) -> list[Recall]:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    require(ctx, Action.RECALL_LIST, agreements.target(agreement))
    return list(
        ctx.db.scalars(
            select(Recall).where(Recall.agreement_id == agreement.id).order_by(Recall.id)
        )
    )


def confirm(ctx: Ctx, confirmation_id: int, data: dict) -> ReturnConfirmation:
    row = get_or_404(ctx.db, ReturnConfirmation, confirmation_id, "return confirmation")
    recall_row = ctx.db.get(Recall, row.recall_id)
    tgt = Target(
        "recall",
        recall_row.id,
        f"agreement:{recall_row.agreement_id}",
        shown=Msg("object.confirmation", id=row.id),
    )
    decision = require(ctx, Action.RECALL_CONFIRM, tgt)
    if row.confirmed_at is not None:
        raise disclosures.refuse(
            ctx, Action.RECALL_CONFIRM, tgt, Msg("confirmation.done", id=row.id)
        )
    # Only an open confirmation is confirmed: of two racing confirmations one lands, the other
    # finds it closed (the check above read it before the first one committed).
    landed = ctx.db.execute(
        update(ReturnConfirmation)
        .where(ReturnConfirmation.id == row.id, ReturnConfirmation.confirmed_at.is_(None))
        .values(
            outcome=data["outcome"],
            note=data.get("note"),
            confirmed_by=ctx.principal.id,
            confirmed_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if landed.rowcount != 1:
        raise disclosures.refuse(
            ctx, Action.RECALL_CONFIRM, tgt, Msg("confirmation.raced", id=row.id)
        )
    ctx.db.refresh(row)
    decision.record(
        confirmation=row.id, item_id=row.item_id, holder=row.holder, outcome=row.outcome
    )
    return row


def terminate(ctx: Ctx, agreement_id: int) -> tuple[Agreement, Recall, list[tuple]]:
    # clause 5.3: when the cooperation ends, the vendor returns everything; the duty stays.
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    decision = require(ctx, Action.AGREEMENT_TERMINATE, agreements.target(agreement))
    if agreement.status != "active":
        raise disclosures.refuse(
            ctx,
            Action.AGREEMENT_TERMINATE,
            agreements.target(agreement),
            Msg("agreement.already", id=agreement.id, status=agreement.status),
        )
    reason = Msg("ended.termination")
    row = Recall(
        agreement_id=agreement.id,
        ordered_by=ctx.principal.id,
        reason=reason,
        everything=True,
        kind="termination",
    )
    ctx.db.add(row)
    ctx.db.flush()
    every = list(
        ctx.db.scalars(select(Item).where(Item.agreement_id == agreement.id).order_by(Item.id))
    )
    # clause 5.3: the manifest is every item x every holder, those a recall already asked
    # about included (with their confirmation), so nothing held is left off.
    earlier = _earlier_confirmations(ctx, agreement)
    opened = _open_confirmations(ctx, row, every, earlier)
    items_by_id = {i.id: i for i in every}
    opened += [(items_by_id[r.item_id], r) for r in earlier.values()]
    opened.sort(key=lambda pair: (pair[0].id, pair[1].holder_kind, pair[1].holder))
    ended = _end_access(ctx, agreement, [i.id for i in every], reason, Action.AGREEMENT_TERMINATE)
    # Items keep their status: a protected item stays protected after the end (clause 5.2).
    agreement.status, agreement.terminated_on = "terminated", ctx.today()
    ctx.db.flush()
    # The vendor is asked for what is still open; the manifest counts every row.
    waiting = sum(1 for _item, c in opened if c.confirmed_at is None)
    _ask_vendor(ctx, row, waiting)
    decision.record(recall=row.id, confirmations=len(opened), to_confirm=waiting, **ended)
    return agreement, row, opened


def manifest(ctx: Ctx, opened: list[tuple]) -> list[dict]:
    """Every (item, holder) of the manifest with its confirmation's real state: a return an
    earlier recall already confirmed shows as returned or destroyed, not as pending."""
    return [
        {
            "item": item.id,
            "item_title": item.title,
            "holder_kind": row.holder_kind,
            "holder": row.holder,
            "confirmation_id": row.id,
            "confirmed": row.confirmed_at is not None,
            "outcome": row.outcome,
            "confirmed_at": iso(row.confirmed_at) if row.confirmed_at else None,
            "note": row.note,
        }
        for item, row in opened
    ]


def declassify(ctx: Ctx, item_id: int, status: str, reason: str) -> Item:
    # clause 5.2: an item loses its protection only when the owner says so, with a reason,
    # before or after the term; termination alone never does it.
    item = get_or_404(ctx.db, Item, item_id, "item")
    decision = require(ctx, Action.ITEM_DECLASSIFY, items.target(item))
    if item.status in ("public", "declassified", "destroyed"):
        raise disclosures.refuse(
            ctx, Action.ITEM_DECLASSIFY, items.target(item), f"item {item.id} is {item.status}"
        )
    previous = item.status
    items.set_status(item, status, reason)
    ctx.db.flush()
    decision.record(**{"from": previous, "to": status, "reason": reason})
    return item


def destroy(ctx: Ctx, item_id: int, reason: str) -> Item:
    """The owner destroys its copy of an item for good: the data key is erased (crypto-shredding),
    and every grant, need-to-know and subcontractor scope over it ends, as in a recall.

    A destroyed item cannot be destroyed again, declassified or recalled: its status is final."""
    item = get_or_404(ctx.db, Item, item_id, "item")
    tgt = items.target(item)
    decision = require(ctx, Action.ITEM_DESTROY, tgt)
    if items.destroyed(item):
        raise disclosures.refuse(ctx, Action.ITEM_DESTROY, tgt, Msg("item.destroyed", id=item.id))
    agreement = ctx.db.get(Agreement, item.agreement_id)
    # Who held it is written down before access ends: the trail then says whose copies outlive
    # the office's (a holder's own copy is theirs to return or destroy, clause 3.10).
    held_by = [h.name for h in holders(ctx, item)]
    ended = _end_access(
        ctx,
        agreement,
        [item.id],
        Msg("ended.destroyed", id=item.id, reason=reason),
        Action.ITEM_DESTROY,
    )
    previous = item.status
    items.shred(item)
    items.set_status(item, "destroyed", reason)
    ctx.db.flush()
    decision.record(
        **{"from": previous, "to": "destroyed", "reason": reason}, holders=held_by, **ended
    )
    return item
