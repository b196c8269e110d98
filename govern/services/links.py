"""One-time set-password links: how a new account or a reset reaches its holder without any
administrator knowing a password it could reuse (三员分立).

system_admin makes a link; for an office or admin account the link stays unusable until a
security_admin who is neither its maker nor the account confirms it (two people). The holder then
chooses the password on the public page ``/set-password/<token>``. Only the token's SHA-256 is
stored; the token itself is shown once, to whoever made the link, and never reaches the trail.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select

from govern import duties, policy
from govern.actions import ROLE_DUTY, Action, Duty
from govern.context import Ctx, Decision, Target, require
from govern.db import utcnow
from govern.errors import Conflict, NotFound
from govern.messages import Msg
from govern.models import PasswordLink, User
from govern.services import accounts, get_or_404

LIFETIME = timedelta(hours=24)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _two_people(db, user: User) -> bool:
    """Office and admin accounts wait for a security_admin; so does an account with no role."""
    roles = policy.roles_in_table(db, user.username)
    return not roles or any(ROLE_DUTY.get(r) != Duty.VENDOR for r in roles)


def _open_links(db, user_id: int):
    return db.scalars(
        select(PasswordLink).where(
            PasswordLink.user_id == user_id,
            PasswordLink.used_at.is_(None),
            PasswordLink.revoked_at.is_(None),
        )
    )


def _take_effect(link: PasswordLink, user: User) -> None:
    """The link becomes usable: its day starts; a reset ends the old password and every session."""
    link.expires_at = utcnow() + LIFETIME
    if link.purpose == "reset":
        user.password_hash = accounts.NO_PASSWORD
        user.credential_version += 1


def issue(ctx: Ctx, user: User, purpose: str) -> tuple[str, PasswordLink]:
    """A new link for ``user`` (the caller has been allowed ``user:create`` or ``user:reset``).

    Any earlier open link of the account is spent. The local operator's links need no second
    person: it holds every key already."""
    now = utcnow()
    for older in _open_links(ctx.db, user.id):
        older.revoked_at = now
    token = secrets.token_urlsafe(32)
    two = ctx.principal.kind != "system" and _two_people(ctx.db, user)
    link = PasswordLink(
        user_id=user.id,
        token_sha256=_sha256(token),
        purpose=purpose,
        created_by=ctx.principal.name,
        needs_confirmation=two,
    )
    ctx.db.add(link)
    if not two:
        _take_effect(link, user)
    ctx.db.flush()
    return token, link


def awaiting(link: PasswordLink) -> bool:
    return (
        link.needs_confirmation
        and link.confirmed_at is None
        and link.used_at is None
        and link.revoked_at is None
    )


def pending(ctx: Ctx) -> list[dict]:
    """The links waiting for a security_admin's confirmation, oldest first."""
    require(ctx, Action.USER_CONFIRM, Target("user", "*"))
    rows = ctx.db.execute(
        select(PasswordLink, User)
        .join(User, User.id == PasswordLink.user_id)
        .where(
            PasswordLink.needs_confirmation.is_(True),
            PasswordLink.confirmed_at.is_(None),
            PasswordLink.used_at.is_(None),
            PasswordLink.revoked_at.is_(None),
        )
        .order_by(PasswordLink.id)
    )
    return [_pending_json(ctx, link, user) for link, user in rows]


def _pending_json(ctx: Ctx, link: PasswordLink, user: User) -> dict:
    return {
        "id": link.id,
        "user_id": user.id,
        "username": user.username,
        "roles": sorted(policy.roles_in_table(ctx.db, user.username)),
        "purpose": link.purpose,
        "created_by": link.created_by,
        "created_at": link.created_at.isoformat(),
    }


def _second_person(ctx: Ctx, link_id: int) -> tuple[PasswordLink, User, Decision]:
    """The link awaiting confirmation, decided by a security_admin who is neither the link's
    maker nor the account itself."""
    link = get_or_404(ctx.db, PasswordLink, link_id, "confirmation")
    user = ctx.db.get(User, link.user_id)
    target = Target("user", user.username)
    decision = require(ctx, Action.USER_CONFIRM, target)
    if duties.actor(ctx) in (link.created_by, user.username):
        violation = duties.Violation(
            duties.NOT_ONESELF,
            duties.broken(duties.NOT_ONESELF, Msg("duty.second_person")),
            403,
        )
        duties.enforce(ctx, Action.USER_CONFIRM, target, violation, "id", link=link.id)
    if not awaiting(link):
        raise Conflict(Msg("link.not_awaiting"), field="id")
    return link, user, decision


def confirm(ctx: Ctx, link_id: int) -> dict:
    """A security_admin confirms a new office or admin account, or its reset: the second person."""
    link, user, decision = _second_person(ctx, link_id)
    link.confirmed_by, link.confirmed_at = ctx.principal.name, utcnow()
    _take_effect(link, user)
    decision.record(
        link=link.id, purpose=link.purpose, created_by=link.created_by, outcome="confirmed"
    )
    return {**_pending_json(ctx, link, user), "confirmed_by": link.confirmed_by}


def refuse(ctx: Ctx, link_id: int) -> dict:
    """A security_admin refuses it: the link is spent unused, and a refused reset changes
    nothing (the account keeps its password)."""
    link, user, decision = _second_person(ctx, link_id)
    link.revoked_at = utcnow()
    decision.record(
        link=link.id, purpose=link.purpose, created_by=link.created_by, outcome="refused"
    )
    return {**_pending_json(ctx, link, user), "refused_by": ctx.principal.name}


def _usable(ctx: Ctx, token: str) -> tuple[PasswordLink, User]:
    """The link behind ``token`` and its account, or a refusal kept in the trail."""
    link = ctx.db.scalar(select(PasswordLink).where(PasswordLink.token_sha256 == _sha256(token)))
    user = ctx.db.get(User, link.user_id) if link else None
    reason = None
    if link is None:
        reason = Msg("link.none")
    elif link.used_at is not None or link.revoked_at is not None:
        reason = Msg("link.used")
    elif awaiting(link):
        reason = Msg("link.awaits")
    elif link.expires_at is None or link.expires_at <= utcnow():
        reason = Msg("link.expired")
    elif not user.active:
        reason = Msg("link.account_disabled")
    if reason:
        target = Target("user", user.username if user else "?")
        ctx.record(Action.AUTH_SET_PASSWORD, target, "deny", reason, keep=True)
        raise (NotFound if link is None else Conflict)(reason, field="token")
    return link, user


def account_for(ctx: Ctx, token: str) -> User:
    """Whose link this is, before its holder chooses a password (the page shows the name)."""
    return _usable(ctx, token)[1]


def use(ctx: Ctx, token: str, password: str) -> User:
    """The holder chooses its password; the link is spent and every older session ends."""
    link, user = _usable(ctx, token)
    accounts.set_password(ctx, user, password)
    link.used_at = utcnow()
    ctx.principal = accounts.principal_for(user)
    ctx.record(
        Action.AUTH_SET_PASSWORD,
        Target("user", user.username),
        rule=f"one-time link {link.id}",
        purpose=link.purpose,
        created_by=link.created_by,
        confirmed_by=link.confirmed_by,
    )
    return user


def states(ctx: Ctx) -> dict[int, str]:
    """Accounts whose password is not yet chosen: ``awaiting confirmation`` or ``awaiting
    password`` (by user id), for the account list."""
    out: dict[int, str] = {}
    for link in ctx.db.scalars(
        select(PasswordLink).where(
            PasswordLink.used_at.is_(None), PasswordLink.revoked_at.is_(None)
        )
    ):
        out[link.user_id] = "awaiting confirmation" if awaiting(link) else "awaiting password"
    return out
