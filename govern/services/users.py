"""Account administration by system_admin: list, create, disable, reset credentials."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.errors import Forbidden
from govern.models import CasbinRule, User
from govern.services import accounts, get_or_404


def user_json(user: User, roles: list[tuple[str, str]]) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "active": user.active,
        "org": user.org,
        "roles": [{"role": r, "domain": d} for r, d in roles],
    }


def list_users(ctx: Ctx) -> list[dict]:
    require(ctx, Action.USER_LIST, Target("user", "*"))
    roles: dict[str, list] = {}
    for rule in ctx.db.scalars(select(CasbinRule).where(CasbinRule.ptype == "g")):
        roles.setdefault(rule.v0, []).append((rule.v1, rule.v2))
    users = ctx.db.scalars(select(User).order_by(User.id))
    return [user_json(u, roles.get(u.username, [])) for u in users]


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
