"""Account administration by system_admin: list, create, disable, reset credentials."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.errors import Forbidden
from govern.models import CasbinRule, LoginThrottle, User
from govern.services import accounts, get_or_404


def user_json(user: User, roles: list[tuple[str, str]], locked_until=None) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "active": user.active,
        "org": user.org,
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
    roles: dict[str, list] = {}
    for rule in ctx.db.scalars(select(CasbinRule).where(CasbinRule.ptype == "g")):
        roles.setdefault(rule.v0, []).append((rule.v1, rule.v2))
    users = ctx.db.scalars(select(User).order_by(User.id))
    locked = _lockouts(ctx)
    return [user_json(u, roles.get(u.username, []), locked.get(u.username)) for u in users]


def create(ctx: Ctx, data: dict) -> User:
    return accounts.create_user(
        ctx,
        data["username"],
        data["role"],
        data["password"],
        data.get("display_name", ""),
        org=data.get("org"),
    )


def _target_user(ctx: Ctx, user_id: int, action: Action) -> User:
    user = get_or_404(ctx.db, User, user_id, "user")
    require(ctx, action, Target("user", user.username))
    if user.username == ctx.principal.name:
        raise Forbidden("an administrator does not change their own account here")
    return user


def disable(ctx: Ctx, user_id: int) -> User:
    user = _target_user(ctx, user_id, Action.USER_DISABLE)
    user.active = False
    user.credential_version += 1
    return user


def reset_password(ctx: Ctx, user_id: int) -> str:
    """A new random password, shown once to the administrator; old tokens and sessions end."""
    user = _target_user(ctx, user_id, Action.USER_RESET)
    password = secrets.token_urlsafe(15)
    accounts.set_password(ctx, user, password)
    return password


def unlock(ctx: Ctx, user_id: int) -> User:
    """End an account's lockout after failed logins, before its window would (system_admin)."""
    user = get_or_404(ctx.db, User, user_id, "user")
    decision = require(ctx, Action.USER_UNLOCK, Target("user", user.username))
    decision.record(was_locked=accounts.unlock(ctx, user))
    return user
