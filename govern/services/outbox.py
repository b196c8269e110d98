"""The outbox: notifications and 30-day warnings. Pages show it; where SMTP is configured, a
sweep mails what has not been sent. Each message has a dedup key so a warning is queued once."""

from __future__ import annotations

import json
import logging
import smtplib
from email.message import EmailMessage

from sqlalchemy import select

from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.db import utcnow
from govern.errors import Invalid, MailUnavailable
from govern.messages import Msg, in_chinese
from govern.models import Agreement, OutboxMessage
from govern.models.outbox import OUTBOX_KINDS

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
    if kind not in OUTBOX_KINDS:
        # A new kind of message is a schema change: the database only takes the listed kinds.
        raise ValueError(f"outbox kind {kind!r} is not in govern.models.outbox.OUTBOX_KINDS")
    if ctx.db.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)):
        return None
    message = OutboxMessage(
        dedup_key=dedup_key,
        kind=kind,
        subject=subject,
        body=body,
        message_keys=_keys(subject, body),
        agreement_id=agreement_id,
        recipient_role=recipient_role,
        recipient_user_id=recipient_user_id,
    )
    ctx.db.add(message)
    return message


def _keys(subject: str, body: str) -> str | None:
    """The subject and body as keys with parameters, when they were given as messages."""
    if not isinstance(subject, Msg):
        return None
    keys = {"subject": subject.as_dict()}
    if isinstance(body, Msg):
        keys["body"] = body.as_dict()
    return json.dumps(keys, ensure_ascii=False, sort_keys=True)


def said(m: OutboxMessage, part: str = "subject") -> str:
    """A notice's subject or body as a message (key and parameters) when it was stored as one,
    else its stored text."""
    text = getattr(m, part)
    if m.message_keys:
        found = Msg.from_dict(json.loads(m.message_keys).get(part) or {})
        if found is not None:
            return found
    return text


def list_for(ctx: Ctx, limit: int = 100) -> list[OutboxMessage]:
    """Messages addressed to the caller or to one of the caller's roles, newest first."""
    require(ctx, Action.OUTBOX_LIST, Target("outbox", "*"))
    stmt = select(OutboxMessage).where(addressed_to_caller(ctx))
    if ctx.principal.org is not None:
        # A vendor account reads only the messages of its own organisation's agreements.
        own = select(Agreement.id).where(Agreement.vendor == ctx.principal.org)
        stmt = stmt.where(OutboxMessage.agreement_id.in_(own))
    return list(ctx.db.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit)))


def addressed_to_caller(ctx: Ctx):
    """The messages addressed to the caller or to one of the caller's roles (a criterion)."""
    return (OutboxMessage.recipient_user_id == ctx.principal.id) | (
        OutboxMessage.recipient_role.in_(list(ctx.roles()))
    )


def message_json(m: OutboxMessage) -> dict:
    return {
        "id": m.id,
        "kind": m.kind,
        "subject": m.subject,
        "body": m.body,
        "message_keys": json.loads(m.message_keys) if m.message_keys else None,
        "agreement_id": m.agreement_id,
        "recipient_role": m.recipient_role,
        "created_at": m.created_at.isoformat(),
        "sent_at": m.sent_at.isoformat() if m.sent_at else None,
    }


def send_pending(ctx: Ctx, addresses: dict[str, list[str]]) -> dict:
    """Mail the unsent messages addressed to a role (``addresses`` maps a role to its mailboxes,
    from ``mail_to`` in govern.toml or ``govern outbox send --to``) and mark them sent.

    A message the server refuses stays pending for the next run; a server that cannot be
    reached sends nothing and changes nothing. Delivery is at least once: a message mailed in a
    run whose unit of work then fails is mailed again next time, never lost.
    """
    decision = require(ctx, Action.OUTBOX_SEND, Target("outbox", "*"))
    settings = ctx.settings
    if not settings.smtp_host:
        raise Invalid(Msg("mail.no_server"), field="smtp_host", at="smtp_host")
    pending = ctx.db.scalars(
        select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)).order_by(OutboxMessage.id)
    ).all()
    sent, refused = [], []
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
            for message in pending:
                to = addresses.get(message.recipient_role or "", [])
                if not to:
                    continue
                if _send(smtp, settings.smtp_from, to, message):
                    message.sent_at = utcnow()
                    sent.append(message.id)
                else:
                    refused.append(message.id)
    except (OSError, smtplib.SMTPException) as exc:
        if not sent:
            raise MailUnavailable(Msg("mail.unreachable", error=str(exc))) from exc
        # Lost the server midway: keep what went out, the rest stays pending.
        log.warning("mail server lost after %d messages: %s", len(sent), exc.__class__.__name__)
    decision.record(sent=sent, refused=refused)
    return {"sent": len(sent), "refused": len(refused), "pending": len(pending) - len(sent)}


def mail_text(message: OutboxMessage) -> tuple[str, str]:
    """A notice's subject and body as mailed: Chinese first, then the English, when the notice
    was stored as message keys; its stored text otherwise."""
    subject, body = said(message, "subject"), said(message, "body")
    if not isinstance(subject, Msg):
        return message.subject, message.body
    zh_body = in_chinese(body) if isinstance(body, Msg) else ""
    both = f"{zh_body}\n\n{message.body}" if zh_body else message.body
    return f"{in_chinese(subject)} / {message.subject}", both


def _send(smtp: smtplib.SMTP, sender: str, to: list[str], message: OutboxMessage) -> bool:
    mail = EmailMessage()
    subject, body = mail_text(message)
    mail["From"], mail["To"], mail["Subject"] = sender, ", ".join(to), subject
    mail.set_content(body)
    try:
        smtp.send_message(mail)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused):
        log.warning("mail server refused outbox message %s", message.id)
        return False
    return True
