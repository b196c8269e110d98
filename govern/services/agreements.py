"""Agreements and their confidentiality clock (clause 5)."""

from __future__ import annotations

import calendar
from datetime import date

from sqlalchemy import func, select

from govern.actions import Action
from govern.context import Ctx, Target, require
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


def list_all(ctx: Ctx) -> list[Agreement]:
    require(ctx, Action.AGREEMENT_LIST, Target("agreement", "*", GLOBAL))
    return list(ctx.db.scalars(select(Agreement).order_by(Agreement.id)))


def get(ctx: Ctx, agreement_id: int) -> Agreement:
    agreement = get_or_404(ctx.db, Agreement, agreement_id, "agreement")
    require(ctx, Action.AGREEMENT_READ, target(agreement))
    return agreement


def clock(ctx: Ctx, agreement_id: int, today: date) -> dict:
    agreement = get(ctx, agreement_id)
    ends = term_ends_on(agreement)
    protected = ctx.db.scalar(
        select(func.count(Item.id)).where(
            Item.agreement_id == agreement.id, Item.status.not_in(UNPROTECTED)
        )
    )
    return {
        "agreement_id": agreement.id,
        "signed_on": agreement.signed_on.isoformat(),
        "term_ends_on": ends.isoformat(),
        "days_left": max(0, (ends - today).days),
        "term_over": today >= ends,
        "protected_items": protected,
        "status": agreement.status,
    }


def is_active(agreement: Agreement):
    """A check for :func:`decide`: the agreement has not been terminated."""
    return lambda: (
        None if agreement.status == "active" else f"agreement {agreement.id} is {agreement.status}"
    )
