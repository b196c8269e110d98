"""Breaches (clauses 7, 3.9): an incident the office records against the agreement, tied to the
audit entries that show it and to the staff member or subcontractor responsible.

Whoever was responsible, the breach is the vendor's (clause 3.9), and the liquidated damages are
the project amount, i.e. the agreement's contract value (clause 7).
"""

from __future__ import annotations

from sqlalchemy import select

from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.db import as_id
from govern.errors import Invalid
from govern.models import Agreement, AuditEntry, Breach, Subcontractor
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
            f"responsible: no subcontractor {who} in agreement {agreement.id}", field="responsible"
        )
    return f"subcontractor:{sub.id}"


def _check_seqs(ctx: Ctx, seqs: list[int]) -> None:
    found = set(ctx.db.scalars(select(AuditEntry.seq).where(AuditEntry.seq.in_(seqs))))
    missing = sorted(set(seqs) - found)
    if missing:
        raise Invalid(f"audit_seqs: no audit entries {missing}", field="audit_seqs")


def create(ctx: Ctx, agreement_id: int, data: dict) -> tuple[Breach, Agreement, list[dict] | None]:
    """Record a breach and, when asked, terminate the agreement in the same unit of work.

    Returns the breach, its agreement, and the return manifest when it terminated."""
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    decision = require(ctx, Action.BREACH_CREATE, agreements.target(agreement))
    responsible = _responsible(ctx, agreement, data["responsible_kind"], data["responsible"])
    _check_seqs(ctx, data["audit_seqs"])
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
