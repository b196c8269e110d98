"""What each role sees first, and the office's review queue, as read models: one decision for
the page and a few set-based queries that decision allows, so that a view writes one trail entry
and runs the same statements whatever the number of agreements, requests, grants or notices.

The decision (context.decide_listing) is a real casbin decision: the rule of the page's listing
(agreements for a dashboard, requests for the queue), each shown part's own rule (requests,
grants, NDAs, subcontractors, recalls, notices, item titles; a part no rule allows is not
shown), and the organisation rule, applied in SQL to every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import false, func, select, true

from govern.actions import Action
from govern.context import Ctx, Listing, decide_listing
from govern.db import utcnow
from govern.errors import Forbidden, Invalid
from govern.messages import Msg
from govern.models import (
    Agreement,
    Disclosure,
    Grant,
    Item,
    Nda,
    OutboxMessage,
    PasswordLink,
    Recall,
    ReturnConfirmation,
    Subcontractor,
    User,
)
from govern.policy import ADMIN_TRIAD, OFFICE_ROLES
from govern.services import agreements, disclosures, ndas, outbox, users

# The parts of each side's dashboard, each listed under its own rule.
VENDOR_LEAD_PARTS = (
    Action.DISCLOSURE_LIST,
    Action.GRANT_LIST,
    Action.NDA_LIST,
    Action.SUBCONTRACTOR_LIST,
    Action.RECALL_LIST,
    Action.OUTBOX_LIST,
)
OFFICE_PARTS = (Action.DISCLOSURE_LIST, Action.OUTBOX_LIST)
NOTICES_SHOWN, NOTICE_DAYS = 10, 90


@dataclass
class Dashboard:
    agreements: list[Agreement] = field(default_factory=list)
    clocks: dict[int, dict] = field(default_factory=dict)
    panels: dict[str, object] = field(default_factory=dict)


def _parts(roles: set[str]) -> tuple[Action, ...]:
    parts: tuple[Action, ...] = ()
    if "vendor_lead" in roles:
        parts += VENDOR_LEAD_PARTS
    if roles & OFFICE_ROLES:
        parts += tuple(p for p in OFFICE_PARTS if p not in parts)
    return parts


def for_reader(ctx: Ctx) -> Dashboard:
    """The reader's dashboard, on one decision: the rule that lets the reader list agreements
    (with each shown part's rule), or, for the administrators, who hold no register, the rule of
    the accounts' tasks they count."""
    # The panels of every role the reader holds, in any agreement: the decision below keeps
    # each part to the agreements its rule allows it in.
    roles = set(ctx.roles()) | ctx.policy().roles_anywhere(ctx.principal.subject)
    shown = Dashboard()
    # The administrators' panels: what each may do, and the tasks waiting for it.
    shown.panels.update({admin: {} for admin in ADMIN_TRIAD if admin in roles})
    if not ctx.policy().may_ever(ctx.principal.subject, "agreement", "list"):
        _accounts(ctx, roles, shown)
        return shown
    listing = decide_listing(ctx, Action.AGREEMENT_LIST, _parts(roles), page="dashboard")
    if not listing.decision.allowed:
        return shown
    shown.agreements = list(
        ctx.db.scalars(
            select(Agreement)
            .where(listing.where(Action.AGREEMENT_LIST, Agreement.id))
            .order_by(Agreement.id)
        )
    )
    shown.clocks = agreements.clocks(ctx, shown.agreements, ctx.today())
    if "vendor_lead" in roles:
        shown.panels["vendor_lead"] = vendor_lead(ctx, listing, shown)
    # A part no rule lets the reader list is not drawn (its rows would all be left out).
    if roles & OFFICE_ROLES and listing.scopes[Action.DISCLOSURE_LIST].allowed:
        shown.panels["office"] = office(ctx, listing)
    if roles & (OFFICE_ROLES | {"vendor_lead"}) and listing.scopes[Action.OUTBOX_LIST].allowed:
        shown.panels["notices"] = notices(ctx, listing)
    return shown


def _accounts(ctx: Ctx, roles: set[str], shown: Dashboard) -> None:
    """The accounts' tasks, for the administrators who hold no register: a security_admin's
    confirmations waiting (two people), a system_admin's disabled and locked-out accounts. One
    decision (the rule that lets it confirm, or list accounts) and one or two counts."""
    # Asked only of a role some rule lets do it: asking otherwise would only add a denial.
    may = ctx.policy().may_ever
    subject = ctx.principal.subject
    if "security_admin" in roles and may(subject, "user", "confirm"):
        if decide_listing(ctx, Action.USER_CONFIRM, page="dashboard").decision.allowed:
            shown.panels["security_admin"] = {"waiting": _confirmations_waiting(ctx)}
        return
    if (
        "system_admin" in roles
        and may(subject, "user", "list")
        and decide_listing(ctx, Action.USER_LIST, page="dashboard").decision.allowed
    ):
        disabled = ctx.db.scalar(select(func.count(User.id)).where(User.active.is_(False)))
        shown.panels["system_admin"] = {"disabled": disabled, "locked": len(users.lockouts(ctx))}


def _confirmations_waiting(ctx: Ctx) -> int:
    # links.awaiting, as SQL: made for an office or admin account, neither confirmed, used nor
    # revoked.
    return ctx.db.scalar(
        select(func.count(PasswordLink.id)).where(
            PasswordLink.needs_confirmation.is_(True),
            PasswordLink.confirmed_at.is_(None),
            PasswordLink.used_at.is_(None),
            PasswordLink.revoked_at.is_(None),
        )
    )


def by_state(ctx: Ctx, listing: Listing) -> dict[str, int]:
    """The requests the listing allows, counted by their state as of now: one grouped query."""
    state = disclosures.effective_state_sql(ctx)
    rows = ctx.db.execute(
        select(state, func.count(Disclosure.id))
        .where(listing.where(Action.DISCLOSURE_LIST, Disclosure.agreement_id))
        .group_by(state)
    )
    return dict(rows.all())


def office(ctx: Ctx, listing: Listing) -> dict:
    counts = by_state(ctx, listing)
    return {"submitted": counts.get("submitted", 0), "reviewed": counts.get("reviewed", 0)}


def vendor_lead(ctx: Ctx, listing: Listing, shown: Dashboard) -> dict:
    """Requests by state, what ends within the warning days, and returns to confirm."""
    counts = by_state(ctx, listing)
    today = ctx.today()
    horizon = today + timedelta(days=ctx.settings.warn_days)
    titles = {a.id: a for a in shown.agreements}
    ending = [
        _ending("term", a.title, shown.clocks[a.id]["term_ends_on"], a, f"/agreements/{a.id}")
        for a in shown.agreements
    ]
    ending += _grants_ending(ctx, listing, today, horizon, titles)
    ending += _ndas_ending(ctx, listing, today, horizon, titles)
    ending += _subcontractors_ending(ctx, listing, today, horizon, titles)
    ending = sorted((e for e in ending if today <= e["ends"] <= horizon), key=lambda e: e["ends"])
    for e in ending:
        e["days"] = (e["ends"] - today).days
    return {
        "by_state": [(s, counts[s]) for s in disclosures.STATES if counts.get(s)],
        "ending": ending,
        "open_returns": _open_returns(ctx, listing),
    }


def _ending(kind: str, what: str, ends: date | str, agreement: Agreement, href: str) -> dict:
    if isinstance(ends, str):
        ends = date.fromisoformat(ends)
    return {"kind": kind, "what": what, "ends": ends, "agreement": agreement, "href": href}


def _grants_ending(ctx: Ctx, listing: Listing, today, horizon, titles) -> list[dict]:
    """Live grants of requests still approved whose last day falls within the warning days."""
    rows = ctx.db.execute(
        select(Grant.expires_at, Disclosure.id, Disclosure.third_party, Disclosure.agreement_id)
        .join(Disclosure, Disclosure.id == Grant.disclosure_id)
        .where(
            Grant.revoked_at.is_(None),
            Grant.expires_at > utcnow(),
            Grant.expires_at <= ctx.clock.end_of_day(horizon),
            Disclosure.state == "approved",
            Disclosure.ends_on >= today,
            listing.where(Action.DISCLOSURE_LIST, Disclosure.agreement_id),
            listing.where(Action.GRANT_LIST, Disclosure.agreement_id),
        )
        .order_by(Grant.id)
    )
    return [
        _ending(
            "grant",
            f"{third_party} (#{rid})",
            ctx.clock.last_day(expires_at),
            titles[aid],
            f"/requests/{rid}",
        )
        for expires_at, rid, third_party, aid in rows
        if aid in titles
    ]


def _ndas_ending(ctx: Ctx, listing: Listing, today, horizon, titles) -> list[dict]:
    # The columns shown only: never the stored NDA documents.
    rows = ctx.db.execute(
        select(Nda.id, Nda.agreement_id, Nda.signed_on, Nda.expires_on, User.username)
        .join(User, User.id == Nda.user_id)
        .where(
            Nda.signed_on <= today,
            Nda.expires_on >= today,
            Nda.expires_on <= horizon,
            listing.where(Action.NDA_LIST, Nda.agreement_id),
        )
        .order_by(Nda.id)
    )
    return [
        _ending(
            "nda",
            nda.username,
            nda.expires_on,
            titles[nda.agreement_id],
            f"/agreements/{nda.agreement_id}/staff#nda-{nda.id}",
        )
        for nda in rows
        if ndas.nda_status(nda, today) == "valid" and nda.agreement_id in titles
    ]


def _subcontractors_ending(ctx: Ctx, listing: Listing, today, horizon, titles) -> list[dict]:
    subs = ctx.db.scalars(
        select(Subcontractor)
        .where(
            Subcontractor.state.in_(("submitted", "reviewed", "approved")),
            (Subcontractor.dsa_expires_on <= horizon) | (Subcontractor.until <= horizon),
            listing.where(Action.SUBCONTRACTOR_LIST, Subcontractor.agreement_id),
        )
        .order_by(Subcontractor.id)
    )
    return [
        _ending(
            "dsa",
            sub.name,
            min(sub.dsa_expires_on, sub.until),
            titles[sub.agreement_id],
            f"/agreements/{sub.agreement_id}/subcontractors#sub-{sub.id}",
        )
        for sub in subs
        if sub.agreement_id in titles
    ]


def _open_returns(ctx: Ctx, listing: Listing) -> dict[int, int]:
    """Returns or destructions not yet confirmed, per agreement, over every recall the listing
    allows: one grouped query."""
    rows = ctx.db.execute(
        select(Recall.agreement_id, func.count(ReturnConfirmation.id))
        .join(Recall, Recall.id == ReturnConfirmation.recall_id)
        .where(
            ReturnConfirmation.confirmed_at.is_(None),
            listing.where(Action.RECALL_LIST, Recall.agreement_id),
        )
        .group_by(Recall.agreement_id)
    )
    return dict(rows.all())


def notices(ctx: Ctx, listing: Listing) -> list[OutboxMessage]:
    """The latest notices addressed to the reader or their roles (the 30-day warnings, recalls,
    requests waiting), of the agreements the listing allows."""
    scope = listing.where(Action.OUTBOX_LIST, OutboxMessage.agreement_id)
    recent = utcnow() - timedelta(days=NOTICE_DAYS)
    return list(
        ctx.db.scalars(
            select(OutboxMessage)
            .where(outbox.addressed_to_caller(ctx), scope, OutboxMessage.created_at >= recent)
            .order_by(OutboxMessage.id.desc())
            .limit(NOTICES_SHOWN)
        )
    )


# The office's review queue: requests and subcontractor records waiting, across agreements.

RECENT_SHOWN = 20


def queue(ctx: Ctx, state: str | None = None, third_party: str | None = None) -> dict:
    """The requests waiting for a step of the office (or, when ``state`` is given, those in that
    state as of now), the subcontractor records waiting, and the latest decisions: one decision
    for the page (the reader may list requests; item titles and subcontractor records under
    their own rules) and the same few statements however long the queue is."""
    if state is not None and state not in disclosures.STATES:
        raise Invalid(
            Msg("schema.one_of", choices=", ".join(disclosures.STATES)), field="state", at="state"
        )
    listing = decide_listing(
        ctx, Action.DISCLOSURE_LIST, (Action.ITEM_LIST, Action.SUBCONTRACTOR_LIST), page="queue"
    )
    if not listing.decision.allowed:
        raise Forbidden(Msg("denied", rule=listing.decision.rule), rule=listing.decision.rule)
    wanted = disclosures.UNDECIDED if state is None else (state,)
    now = disclosures.effective_state_sql(ctx)
    allowed = listing.where(Action.DISCLOSURE_LIST, Disclosure.agreement_id)
    rows = select(Disclosure, Agreement.title).join(
        Agreement, Agreement.id == Disclosure.agreement_id
    )
    if third_party:
        # Any part of the third party's name, in any case.
        rows = rows.where(
            func.lower(Disclosure.third_party).contains(third_party.lower(), autoescape=True)
        )
    waiting = ctx.db.execute(rows.where(allowed, now.in_(wanted)).order_by(Disclosure.id)).all()
    # The latest decisions, under the whole queue only (a filtered one shows its state alone).
    decided = rows.where(
        allowed, Disclosure.decided_at.is_not(None), true() if state is None else false()
    )
    recent = ctx.db.execute(
        decided.order_by(Disclosure.decided_at.desc()).limit(RECENT_SHOWN)
    ).all()
    shown = _requests(ctx, listing, waiting + recent)
    return {
        "waiting": shown[: len(waiting)],
        "recent": shown[len(waiting) :],
        "subcontractors": _subcontractors_waiting(ctx, listing, wanted),
    }


def _requests(ctx: Ctx, listing: Listing, rows: list) -> list[dict]:
    """Requests (with their agreement's title) as the pages show them, with their items' titles
    where the reader may list items: three statements in all, whatever their number."""
    shown = disclosures.rows_json(ctx, [d for d, _title in rows])
    item_ids = {i for r in shown for i in r["item_ids"]}
    titles = dict(
        ctx.db.execute(
            select(Item.id, Item.title).where(
                Item.id.in_(item_ids), listing.where(Action.ITEM_LIST, Item.agreement_id)
            )
        ).all()
    )
    for row, (_d, agreement) in zip(shown, rows, strict=True):
        row["agreement"] = agreement
        row["titles"] = [titles.get(i, f"#{i}") for i in row["item_ids"]]
    return shown


def _subcontractors_waiting(ctx: Ctx, listing: Listing, wanted) -> list[dict]:
    """Subcontractor records waiting for the office (clause 3.5 + 3.7), where the reader may
    list them: one statement."""
    rows = ctx.db.execute(
        select(Subcontractor, Agreement.title)
        .join(Agreement, Agreement.id == Subcontractor.agreement_id)
        .where(
            Subcontractor.state.in_([s for s in wanted if s in ("submitted", "reviewed")]),
            listing.where(Action.SUBCONTRACTOR_LIST, Subcontractor.agreement_id),
        )
        .order_by(Subcontractor.id)
    )
    return [
        {
            "id": sub.id,
            "agreement_id": sub.agreement_id,
            "agreement": title,
            "name": sub.name,
            "purpose": sub.purpose,
            "until": sub.until,
            "state": sub.state,
        }
        for sub, title in rows
    ]
