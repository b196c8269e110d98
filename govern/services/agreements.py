"""Agreements and their confidentiality clock (clause 5)."""

from __future__ import annotations

import calendar
from datetime import date

from sqlalchemy import func, select

from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.messages import Msg
from govern.models import Agreement, Item
from govern.policy import GLOBAL
from govern.services import get_or_404

# clause 5.2: an item stays protected until the owner declassifies it or it is public,
# whatever the term says.
UNPROTECTED = ("public", "declassified")


def target(agreement: Agreement) -> Target:
    return Target("agreement", agreement.id, agreement.domain)


def add_years(start: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February lands on 28 February in common years."""
    year = start.year + years
    day = min(start.day, calendar.monthrange(year, start.month)[1])
    return start.replace(year=year, day=day)


def term_ends_on(agreement: Agreement) -> date:
    # clause 5.1: the confidentiality term runs term_years (5) from signing.
    return add_years(agreement.signed_on, agreement.term_years)


def create(ctx: Ctx, data: dict) -> Agreement:
    decision = require(ctx, Action.AGREEMENT_CREATE, Target("agreement", "new"))
    agreement = Agreement(created_by=ctx.principal.id, **data)
    ctx.db.add(agreement)
    ctx.db.flush()
    decision.entry.target = str(target(agreement))
    decision.record(title=agreement.title, signed_on=str(agreement.signed_on))
    return agreement


def visible(ctx: Ctx, stmt):
    """``stmt`` over agreements narrowed to the caller's: a vendor account sees only its own
    organisation's agreements; the office sees them all."""
    if ctx.principal.org is not None:
        stmt = stmt.where(Agreement.vendor == ctx.principal.org)
    return stmt


def list_all(ctx: Ctx) -> list[Agreement]:
    require(ctx, Action.AGREEMENT_LIST, Target("agreement", "*", GLOBAL))
    return list(ctx.db.scalars(visible(ctx, select(Agreement).order_by(Agreement.id))))


def get(ctx: Ctx, agreement_id: int) -> Agreement:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    require(ctx, Action.AGREEMENT_READ, target(agreement))
    return agreement


def _clock_of(agreement: Agreement, protected: int, today: date) -> dict:
    ends = term_ends_on(agreement)
    return {
        "agreement_id": agreement.id,
        "signed_on": agreement.signed_on.isoformat(),
        "term_ends_on": ends.isoformat(),
        "days_left": max(0, (ends - today).days),
        "term_over": today >= ends,
        "protected_items": protected,
        "status": agreement.status,
    }


def _protected_counts(ctx: Ctx, agreement_ids: list[int]) -> dict[int, int]:
    rows = ctx.db.execute(
        select(Item.agreement_id, func.count(Item.id))
        .where(Item.agreement_id.in_(agreement_ids), Item.status.not_in(UNPROTECTED))
        .group_by(Item.agreement_id)
    )
    return dict(rows.all())


def clock(ctx: Ctx, agreement_id: int, today: date) -> dict:
    agreement = get(ctx, agreement_id)
    protected = _protected_counts(ctx, [agreement.id]).get(agreement.id, 0)
    return _clock_of(agreement, protected, today)


def clocks(ctx: Ctx, listing: list[Agreement], today: date) -> dict[int, dict]:
    """The clocks of agreements the caller has already been allowed to list: one grouped count,
    no second decision per agreement."""
    counts = _protected_counts(ctx, [a.id for a in listing]) if listing else {}
    return {a.id: _clock_of(a, counts.get(a.id, 0), today) for a in listing}


def is_active(agreement: Agreement):
    """A check for :func:`decide`: the agreement has not been terminated."""
    return lambda: (
        None
        if agreement.status == "active"
        else Msg("agreement.is", id=agreement.id, status=agreement.status)
    )
