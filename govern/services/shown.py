"""Secrets shown once: a grant token, a subcontractor's client token, a set-password link.

The POST that makes one keeps it here and answers with a redirect to a GET page that shows it;
that GET takes it away, so a reload shows nothing again (and repeats nothing). Only the account
that made it may take it, within ``LIFETIME``. Nothing here is logged or audited: the trail has the
action that made the secret, never the secret."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import timedelta

from sqlalchemy import delete, select

from govern.context import Ctx
from govern.crypto import DecryptError
from govern.db import utcnow
from govern.models import ShownOnce

LIFETIME = timedelta(minutes=10)


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode("utf-8")).hexdigest()


def keep(ctx: Ctx, payload: dict) -> str:
    """Keep ``payload`` (JSON) for one showing to this account; returns the handle for its page."""
    now = utcnow()
    # Secrets their maker never opened are not kept past their lifetime.
    ctx.db.execute(delete(ShownOnce).where(ShownOnce.expires_at < now))
    handle = secrets.token_urlsafe(32)
    digest = _digest(handle)
    plain = json.dumps(payload).encode("utf-8")
    nonce, ciphertext, wrapped = ctx.keys.encrypt(plain, f"shown:{digest}")
    ctx.db.add(
        ShownOnce(
            handle_sha256=digest,
            user_id=ctx.principal.id,
            nonce=nonce,
            ciphertext=ciphertext,
            wrapped_key=wrapped,
            expires_at=now + LIFETIME,
        )
    )
    ctx.flush()
    return handle


def take(ctx: Ctx, handle: str) -> dict | None:
    """The payload, once, for the account that kept it; None when shown already, expired or
    someone else's."""
    digest = _digest(handle)
    row = ctx.db.scalar(select(ShownOnce).where(ShownOnce.handle_sha256 == digest))
    if row is None or row.user_id != ctx.principal.id:
        return None
    # Two readers at once: only the one whose delete took the row shows it.
    taken = ctx.db.execute(delete(ShownOnce).where(ShownOnce.id == row.id)).rowcount
    if taken != 1 or row.expires_at <= utcnow():
        return None
    try:
        plain = ctx.keys.decrypt(row.nonce, row.ciphertext, row.wrapped_key, f"shown:{digest}")
    except DecryptError:
        return None
    return json.loads(plain)
