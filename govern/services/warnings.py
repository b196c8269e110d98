"""Warnings ahead of end dates: on the vendor side a staff NDA (clause 3.8), a subcontractor's
data-security agreement and its minimisation record (clause 3.7); for disclosures a grant, an
approved request's window (clause 3.6), and the agreement's term (clause 5.1).

A daily sweep (``govern warnings sweep``) queues each warning once in the outbox, ``warn_days``
(30) days ahead; the dedup key makes re-running the sweep harmless.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from govern.context import Ctx
from govern.messages import Msg
from govern.models import Agreement, Disclosure, Grant, Nda, Subcontractor, User
from govern.services import agreements, outbox

LEAD = "vendor_lead"
OFFICE = "office_approver"


def sweep_warnings(ctx: Ctx, today: date) -> int:
    """Queue the warnings due on ``today``; returns how many were new."""
    horizon = today + timedelta(days=ctx.settings.warn_days)
    queued = _nda_warnings(ctx, today, horizon) + _subcontractor_warnings(ctx, today, horizon)
    queued += disclosure_warnings(ctx, today)
    ctx.db.flush()
    return queued


def _queue(ctx: Ctx, key: str, kind: str, subject: str, body: str, agreement_id: int, role: str):
    return outbox.notify(
        ctx, key, kind, subject, body, agreement_id=agreement_id, recipient_role=role
    )


def _nda_warnings(ctx: Ctx, today: date, horizon: date) -> int:
    renewed = select(Nda.renews_id).where(Nda.renews_id.is_not(None))
    rows = ctx.db.execute(
        select(Nda, User.username)
        .join(User, User.id == Nda.user_id)
        .join(Agreement, Agreement.id == Nda.agreement_id)
        .where(
            Agreement.status == "active",
            Nda.expires_on >= today,
            Nda.expires_on <= horizon,
            Nda.id.not_in(renewed),
        )
    )
    count = 0
    for nda, username in rows:
        ends = nda.expires_on
        message = _queue(
            ctx,
            f"nda-ends:{nda.id}",
            "nda_ends",
            Msg("notice.nda_ends", name=username, day=ends),
            Msg(
                "notice.nda_ends.body",
                id=nda.id,
                name=username,
                agreement=nda.agreement_id,
                day=ends,
            ),
            nda.agreement_id,
            LEAD,
        )
        count += message is not None
    return count


def _subcontractor_warnings(ctx: Ctx, today: date, horizon: date) -> int:
    subs = ctx.db.scalars(
        select(Subcontractor)
        .join(Agreement, Agreement.id == Subcontractor.agreement_id)
        .where(
            Agreement.status == "active",
            Subcontractor.state.in_(("submitted", "reviewed", "approved")),
        )
    )
    count = 0
    for sub in subs:
        if today <= sub.dsa_expires_on <= horizon:
            facts = {"id": sub.id, "name": sub.name, "agreement": sub.agreement_id}
            subject = Msg("notice.dsa_ends", name=sub.name, day=sub.dsa_expires_on)
            body = Msg("notice.dsa_ends.body", **facts, day=sub.dsa_expires_on)
            # The office is told too: it is the office's data the subcontractor holds.
            for role, suffix in ((LEAD, ""), (OFFICE, ":office")):
                message = _queue(
                    ctx,
                    f"dsa-ends:{sub.id}{suffix}",
                    "dsa_ends",
                    subject,
                    body,
                    sub.agreement_id,
                    role,
                )
                count += message is not None
        if today <= sub.until <= horizon:
            facts = {"id": sub.id, "name": sub.name, "agreement": sub.agreement_id}
            message = _queue(
                ctx,
                f"subcontractor-ends:{sub.id}",
                "record_ends",
                Msg("notice.record_ends", name=sub.name, day=sub.until),
                Msg("notice.record_ends.body", **facts, day=sub.until),
                sub.agreement_id,
                LEAD,
            )
            count += message is not None
    return count


def disclosure_warnings(ctx: Ctx, today: date) -> int:
    """Warn ahead of the end of a grant, of an approved request's window, and of the term
    (clause 5.1). Returns how many messages were queued."""
    horizon = today + timedelta(days=ctx.settings.warn_days)
    queued = 0
    until = ctx.clock.end_of_day(horizon)
    for grant in ctx.db.scalars(
        select(Grant).where(Grant.revoked_at.is_(None), Grant.expires_at <= until)
    ):
        d = ctx.db.get(Disclosure, grant.disclosure_id)
        last_day = ctx.clock.last_day(grant.expires_at)
        if d.state != "approved" or last_day < today:
            continue
        queued += _warn(
            ctx,
            f"grant-ends:{grant.id}",
            "grant_ends",
            Msg("notice.grant_ends", id=grant.id, third_party=d.third_party, day=last_day),
            d.agreement_id,
            user_id=grant.issued_by,
        )
    for d in ctx.db.scalars(
        select(Disclosure).where(
            Disclosure.state == "approved",
            Disclosure.ends_on <= horizon,
            Disclosure.ends_on >= today,
        )
    ):
        subject = Msg("notice.window_ends", id=d.id, day=d.ends_on)
        queued += _warn(
            ctx, f"window-ends:{d.id}", "window_ends", subject, d.agreement_id, user_id=d.filed_by
        )
        queued += _warn(
            ctx,
            f"window-ends-office:{d.id}",
            "window_ends",
            subject,
            d.agreement_id,
            role="office_approver",
        )
    for agreement in ctx.db.scalars(select(Agreement).where(Agreement.status == "active")):
        ends = agreements.term_ends_on(agreement)
        if not today <= ends <= horizon:
            continue
        subject = Msg("notice.term_ends", id=agreement.id, day=ends)
        for role in ("office_approver", "vendor_lead"):
            queued += _warn(
                ctx,
                f"term-ends:{agreement.id}:{role}",
                "term_ends",
                subject,
                agreement.id,
                role=role,
            )
    return queued


def _warn(
    ctx: Ctx, key: str, kind: str, subject: str, agreement_id: int, *, user_id=None, role=None
) -> int:
    message = outbox.notify(
        ctx,
        key,
        kind,
        subject,
        subject + ".",
        agreement_id=agreement_id,
        recipient_role=role,
        recipient_user_id=user_id,
    )
    return 1 if message is not None else 0
