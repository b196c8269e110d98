"""30-day warnings (SPEC "time-outs"): outbox messages ahead of ends the office and the vendor must
not miss. Each kind of end has its own function; a daily sweep calls them all. Dedup keys make a
warning go out once however often the sweep runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from govern.context import Ctx
from govern.models import Agreement, Disclosure, Grant
from govern.services import agreements, outbox


def disclosure_warnings(ctx: Ctx, today: date) -> int:
    """Warn ahead of the end of a grant, of an approved request's window, and of the term
    (clause 5.1). Returns how many messages were queued."""
    horizon = today + timedelta(days=ctx.settings.warn_days)
    queued = 0
    until = datetime.combine(horizon + timedelta(days=1), time.min, UTC)
    for grant in ctx.db.scalars(
        select(Grant).where(Grant.revoked_at.is_(None), Grant.expires_at < until)
    ):
        d = ctx.db.get(Disclosure, grant.disclosure_id)
        if d.state != "approved" or grant.expires_at.date() < today:
            continue
        queued += _warn(
            ctx,
            f"grant-ends:{grant.id}",
            "grant_ends",
            f"Grant {grant.id} for {d.third_party} ends on {grant.expires_at.date().isoformat()}",
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
        subject = f"The window of disclosure request {d.id} ends on {d.ends_on.isoformat()}"
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
        subject = f"The confidentiality term of agreement {agreement.id} ends on {ends.isoformat()}"
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
