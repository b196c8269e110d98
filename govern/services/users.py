"""Account administration by system_admin: list, create, disable, re-enable, reset credentials.

A new account or a reset yields a one-time set-password link (``services.links``), never a
password: no administrator can sign in as anyone else. No administrator acts on its own account.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from govern import duties
from govern.actions import Action
from govern.context import Ctx, Decision, Target, require
from govern.errors import Conflict
from govern.messages import Msg
from govern.models import CasbinRule, LoginThrottle, PasswordLink, User
from govern.services import accounts, get_or_404, links


def user_json(
    user: User, roles: list[tuple[str, str]], state: str | None = None, locked_until=None
) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "active": user.active,
        "org": user.org,
        # None once the holder has chosen its password.
        "pending": state,
        "roles": [{"role": r, "domain": d} for r, d in roles],
        "locked_until": locked_until.isoformat(timespec="seconds") if locked_until else None,
    }


def _lockouts(ctx: Ctx) -> dict[str, object]:
    """Accounts locked out now by failed logins, and until when."""
    limit = ctx.settings.login_max_failures_account
    rows = ctx.db.scalars(
        select(LoginThrottle).where(
            LoginThrottle.key.startswith("account:"), LoginThrottle.failures >= limit
        )
    )
    found = {row.key.split(":", 1)[1]: accounts.locked_until(ctx, row, limit) for row in rows}
    return {name: until for name, until in found.items() if until is not None}


def list_users(ctx: Ctx) -> list[dict]:
    require(ctx, Action.USER_LIST, Target("user", "*"))
    return _shown(ctx, list(ctx.db.scalars(select(User).order_by(User.id))))


def find_users(ctx: Ctx, text: str | None, offset: int, limit: int) -> tuple[list[dict], int]:
    """One page of the accounts whose username, display name or organisation contains ``text``
    (any case), and how many there are in all."""
    require(ctx, Action.USER_LIST, Target("user", "*")).record(search=text or "")
    stmt = select(User)
    if text:
        needle = text.lower()
        stmt = stmt.where(
            or_(
                *(
                    func.lower(column).contains(needle, autoescape=True)
                    for column in (User.username, User.display_name, User.org)
                )
            )
        )
    total = ctx.db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(ctx.db.scalars(stmt.order_by(User.id).offset(offset).limit(limit)))
    return _shown(ctx, rows), total


def _shown(ctx: Ctx, users: list[User]) -> list[dict]:
    """Accounts with their roles, pending links and lockouts (read for these accounts only)."""
    names = [u.username for u in users]
    roles: dict[str, list] = {}
    for rule in ctx.db.scalars(
        select(CasbinRule).where(CasbinRule.ptype == "g", CasbinRule.v0.in_(names))
    ):
        roles.setdefault(rule.v0, []).append((rule.v1, rule.v2))
    states = links.states(ctx)
    locked = _lockouts(ctx)
    return [
        user_json(u, roles.get(u.username, []), states.get(u.id), locked.get(u.username))
        for u in users
    ]


def link_json(user: User, token: str, link: PasswordLink, url: str) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "set_password_url": url,
        "awaiting_confirmation": links.awaiting(link),
        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
    }


def create(ctx: Ctx, data: dict) -> tuple[User, str, PasswordLink]:
    """A new account with no password and its one-time link (the token, shown once)."""
    user = accounts.create_user(
        ctx, data["username"], data["role"], None, data.get("display_name", ""), org=data.get("org")
    )
    token, link = links.issue(ctx, user, "create")
    return user, token, link


def _target_user(ctx: Ctx, user_id: int, action: Action) -> tuple[User, Decision]:
    user = get_or_404(ctx.db, User, user_id, "user")
    target = Target("user", user.username)
    decision = require(ctx, action, target)
    if user.username == duties.actor(ctx):
        violation = duties.Violation(
            duties.NOT_ONESELF, duties.broken(duties.NOT_ONESELF, Msg("duty.that_is_you")), 403
        )
        duties.enforce(ctx, action, target, violation, "user_id")
    return user, decision


def disable(ctx: Ctx, user_id: int) -> User:
    user, _ = _target_user(ctx, user_id, Action.USER_DISABLE)
    if not user.active:
        raise Conflict(Msg("account.already_disabled", name=user.username), field="user_id")
    user.active = False
    user.credential_version += 1
    return user


def enable(ctx: Ctx, user_id: int) -> User:
    """Re-enable a disabled account. Its old sessions stay ended (disabling moved the credential
    version); its password, or its pending link, is as it was."""
    user, _ = _target_user(ctx, user_id, Action.USER_ENABLE)
    if user.active:
        raise Conflict(Msg("account.already_active", name=user.username), field="user_id")
    user.active = True
    return user


def reset_password(ctx: Ctx, user_id: int) -> tuple[User, str, PasswordLink]:
    """A one-time link for the holder to choose a new password. For a vendor account the old
    password and every session end now; for an office or admin account, once a security_admin
    confirms the reset."""
    user, decision = _target_user(ctx, user_id, Action.USER_RESET)
    token, link = links.issue(ctx, user, "reset")
    decision.record(link=link.id, awaiting_confirmation=links.awaiting(link))
    return user, token, link


def unlock(ctx: Ctx, user_id: int) -> User:
    """End an account's lockout after failed logins, before its window would (system_admin)."""
    user, decision = _target_user(ctx, user_id, Action.USER_UNLOCK)
    decision.record(was_locked=accounts.unlock(ctx, user))
    return user


def lockouts(ctx: Ctx) -> dict[str, object]:
    """Accounts locked out now by failed logins (for a page that has decided already)."""
    return _lockouts(ctx)
