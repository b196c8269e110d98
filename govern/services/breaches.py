"""Breaches (clauses 7, 3.9): an incident the office records against the agreement, tied to the
audit entries that show it and to the staff member or subcontractor responsible.

Whoever was responsible, the breach is the vendor's (clause 3.9), and the liquidated damages are
the project amount, i.e. the agreement's contract value (clause 7).
"""

from __future__ import annotations

from sqlalchemy import String, cast, literal, select, union_all

from govern.actions import Action
from govern.context import Ctx, Target, can, require
from govern.db import as_id
from govern.errors import Invalid
from govern.messages import Msg
from govern.models import (
    Agreement,
    AuditEntry,
    Breach,
    Disclosure,
    Grant,
    Item,
    Nda,
    NeedToKnow,
    Recall,
    Subcontractor,
)
from govern.models import recalls as rules
from govern.services import agreements, get_or_404, recalls
from govern.services.ndas import vendor_user

RESPONSIBLE_KINDS = rules.RESPONSIBLE_KINDS


def target(breach: Breach) -> Target:
    return Target("breach", breach.id, f"agreement:{breach.agreement_id}")


def _responsible(ctx: Ctx, agreement: Agreement, kind: str, who: str) -> str:
    """The responsible party as stored: a vendor username, or subcontractor:<id> of this
    agreement."""
    if kind == "staff":
        return vendor_user(ctx, agreement, who, field="responsible").username
    ident = who.removeprefix("subcontractor:")
    sub_id = as_id(ident)
    sub = ctx.db.get(Subcontractor, sub_id) if sub_id else None
    if sub is None or sub.agreement_id != agreement.id:
        raise Invalid(
            Msg("breach.no_subcontractor", who=who, agreement=agreement.id),
            field="responsible",
            at="responsible",
        )
    return f"subcontractor:{sub.id}"


def _named(kind: str, column):
    """``kind:<id>`` as the trail writes a target, built by the database (both stores)."""
    return literal(f"{kind}:") + cast(column, String)


def _targets(agreement_id: int):
    """Every trail target that names the agreement or one of its objects, as one subquery."""
    of = agreement_id
    parts = [
        select(literal(f"agreement:{of}")),
        select(_named("item", Item.id)).where(Item.agreement_id == of),
        select(_named("nda", Nda.id)).where(Nda.agreement_id == of),
        select(_named("ntk", NeedToKnow.id)).where(NeedToKnow.agreement_id == of),
        select(_named("subcontractor", Subcontractor.id)).where(Subcontractor.agreement_id == of),
        select(_named("disclosure", Disclosure.id)).where(Disclosure.agreement_id == of),
        select(_named("grant", Grant.id))
        .join(Disclosure, Disclosure.id == Grant.disclosure_id)
        .where(Disclosure.agreement_id == of),
        select(_named("recall", Recall.id)).where(Recall.agreement_id == of),
        select(_named("breach", Breach.id)).where(Breach.agreement_id == of),
    ]
    return union_all(*parts).scalar_subquery()


def _of_agreement(agreement_id: int):
    return select(AuditEntry).where(AuditEntry.target.in_(_targets(agreement_id)))


def evidence(
    ctx: Ctx,
    agreement: Agreement,
    limit: int = 50,
    before: int | None = None,
    decision: str | None = None,
) -> tuple[list[AuditEntry], int | None]:
    """The trail entries about this agreement and its objects, newest first, for the approver
    recording a breach (clause 7: a breach is tied to the entries that show it).

    Only what recording a breach needs, not the trail: entries whose target is the agreement or
    one of its objects, for a reader who may record a breach here (asked without a trail entry:
    the page's own breach:list decision is its audited one). Only denials or only allowed
    decisions when ``decision`` says so. Returns (entries, older cursor)."""
    if not can(ctx, Action.BREACH_CREATE, agreements.target(agreement)):
        return [], None
    if decision not in (None, "allow", "deny"):
        raise Invalid("decision: must be allow or deny", field="decision")
    # Every entry queued so far joins the chain first, as for any read of the trail: the action
    # that showed the breach a moment ago is on the page.
    ctx.settle_trail()
    stmt = _of_agreement(agreement.id)
    if decision:
        stmt = stmt.where(AuditEntry.decision == decision)
    if before is not None:
        stmt = stmt.where(AuditEntry.seq < before)
    rows = list(ctx.db.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


def _check_seqs(ctx: Ctx, agreement: Agreement, seqs: list[int]) -> None:
    """Every entry named exists and is about this agreement (no entry of another agreement, nor
    of the rest of the trail, which the approver does not read)."""
    found = set(
        ctx.db.scalars(
            _of_agreement(agreement.id)
            .where(AuditEntry.seq.in_(seqs))
            .with_only_columns(AuditEntry.seq)
        )
    )
    missing = sorted(set(seqs) - found)
    if missing:
        raise Invalid(
            Msg("breach.not_about", seqs=missing, agreement=agreement.id),
            field="audit_seqs",
            at="audit_seqs",
        )


def check(ctx: Ctx, agreement_id: int, data: dict) -> dict:
    """What :func:`create` would refuse in ``data`` (the responsible party, the entries), for
    the confirmation page shown before it: reads only, no trail entry (the record itself, when
    confirmed, makes its audited decision and checks again)."""
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    responsible = _responsible(ctx, agreement, data["responsible_kind"], data["responsible"])
    _check_seqs(ctx, agreement, data["audit_seqs"])
    return {**data, "responsible": responsible}


def create(ctx: Ctx, agreement_id: int, data: dict) -> tuple[Breach, Agreement, list[dict] | None]:
    """Record a breach and, when asked, terminate the agreement in the same unit of work.

    Returns the breach, its agreement, and the return manifest when it terminated."""
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    decision = require(ctx, Action.BREACH_CREATE, agreements.target(agreement))
    responsible = _responsible(ctx, agreement, data["responsible_kind"], data["responsible"])
    _check_seqs(ctx, agreement, data["audit_seqs"])
    breach = Breach(
        agreement_id=agreement.id,
        recorded_by=ctx.principal.id,
        description=data["description"],
        responsible_kind=data["responsible_kind"],
        responsible=responsible,
        audit_seqs=sorted(data["audit_seqs"]),
        # clause 7: liquidated damages equal to the project amount.
        liquidated_damages=agreement.contract_value,
    )
    ctx.db.add(breach)
    ctx.db.flush()
    terminate = bool(data.get("terminate"))
    decision.entry.target = str(target(breach))
    decision.record(
        responsible_kind=breach.responsible_kind,
        responsible=breach.responsible,
        # clause 3.9: a staff member's (or a subcontractor's) breach is the vendor's breach.
        attributed_to=agreement.vendor,
        audit_seqs=breach.audit_seqs,
        liquidated_damages=f"{breach.liquidated_damages:.2f}",
        termination_requested=terminate,
    )
    if not terminate:
        return breach, agreement, None
    # clause 7: on a breach the owner may end the cooperation; termination is its own decision
    # (agreement:terminate), audited as such, and stands or falls with the breach record.
    _, _, opened = recalls.terminate(ctx, agreement.id)
    return breach, agreement, recalls.manifest(ctx, opened)


def list_for(ctx: Ctx, agreement_id: int) -> tuple[Agreement, list[Breach]]:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    require(ctx, Action.BREACH_LIST, agreements.target(agreement))
    breaches = ctx.db.scalars(
        select(Breach).where(Breach.agreement_id == agreement.id).order_by(Breach.id)
    )
    return agreement, list(breaches)
