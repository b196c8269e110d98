"""The outbox: notifications and 30-day warnings. Pages show it; where SMTP is configured, a
sweep mails what has not been sent. Each message has a dedup key so a warning is queued once."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from sqlalchemy import select

from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.db import utcnow
from govern.models import Agreement, OutboxMessage

log = logging.getLogger(__name__)


def notify(
    ctx: Ctx,
    dedup_key: str,
    kind: str,
    subject: str,
    body: str,
    *,
    agreement_id: int | None = None,
    recipient_role: str | None = None,
    recipient_user_id: int | None = None,
) -> OutboxMessage | None:
    """Queue a message once per ``dedup_key`` (in the caller's unit of work)."""
    if ctx.db.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)):
        return None
    message = OutboxMessage(
        dedup_key=dedup_key,
        kind=kind,
        subject=subject,
        body=body,
        agreement_id=agreement_id,
        recipient_role=recipient_role,
        recipient_user_id=recipient_user_id,
    )
    ctx.db.add(message)
    return message


def list_for(ctx: Ctx, limit: int = 100) -> list[OutboxMessage]:
    """Messages addressed to the caller or to one of the caller's roles, newest first."""
    require(ctx, Action.OUTBOX_LIST, Target("outbox", "*"))
    roles = list(ctx.roles())
    stmt = select(OutboxMessage).where(
        (OutboxMessage.recipient_user_id == ctx.principal.id)
        | (OutboxMessage.recipient_role.in_(roles))
    )
    if ctx.principal.org is not None:
        # A vendor account reads only the messages of its own organisation's agreements.
        own = select(Agreement.id).where(Agreement.vendor == ctx.principal.org)
        stmt = stmt.where(OutboxMessage.agreement_id.in_(own))
    return list(ctx.db.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit)))


def message_json(m: OutboxMessage) -> dict:
    return {
        "id": m.id,
        "kind": m.kind,
        "subject": m.subject,
        "body": m.body,
        "agreement_id": m.agreement_id,
        "recipient_role": m.recipient_role,
        "created_at": m.created_at.isoformat(),
        "sent_at": m.sent_at.isoformat() if m.sent_at else None,
    }


def send_pending(ctx: Ctx, addresses: dict[str, list[str]]) -> int:
    """Mail unsent messages where SMTP is configured; ``addresses`` maps a role to recipients."""
    settings = ctx.settings
    if not settings.smtp_host:
        return 0
    sent = 0
    pending = ctx.db.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        for message in pending:
            to = addresses.get(message.recipient_role or "", [])
            if not to:
                continue
            mail = EmailMessage()
            mail["From"], mail["To"], mail["Subject"] = (
                settings.smtp_from,
                ", ".join(to),
                message.subject,
            )
            mail.set_content(message.body)
            smtp.send_message(mail)
            message.sent_at = utcnow()
            sent += 1
    return sent
