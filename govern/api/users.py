"""/users: accounts (system_admin creates, disables and resets; security_admin may list)."""

from __future__ import annotations

from govern import policy
from govern.actions import Action
from govern.api import endpoint
from govern.schema import Enum, Schema, Str
from govern.services import users

USER_IN = Schema(
    "UserCreate",
    username=Str(max_len=64),
    role=Enum(choices=tuple(sorted(policy.ACCOUNT_ROLES))),
    password=Str(min_len=12, max_len=1024),
    display_name=Str(required=False, max_len=200),
    org=Str(
        required=False,
        max_len=300,
        description="the vendor organisation (an agreement's vendor); required for vendor roles",
    ),
)


@endpoint("/users", summary="List accounts and their roles", tag="users", action=Action.USER_LIST)
def list_users(ctx):
    return {"users": users.list_users(ctx)}


@endpoint(
    "/users",
    "POST",
    summary="Create an account",
    tag="users",
    body=USER_IN,
    status=201,
    action=Action.USER_CREATE,
)
def create_user(ctx, data):
    user = users.create(ctx, data)
    return {"id": user.id, "username": user.username, "roles": [data["role"]], "org": user.org}


@endpoint(
    "/users/<int:user_id>/disable",
    "POST",
    summary="Disable an account",
    tag="users",
    action=Action.USER_DISABLE,
)
def disable_user(ctx, user_id):
    user = users.disable(ctx, user_id)
    return {"id": user.id, "active": user.active}


@endpoint(
    "/users/<int:user_id>/reset",
    "POST",
    summary="Reset a password (shown once)",
    tag="users",
    action=Action.USER_RESET,
)
def reset_user(ctx, user_id):
    return {"id": user_id, "password": users.reset_password(ctx, user_id)}


@endpoint(
    "/users/<int:user_id>/unlock",
    "POST",
    summary="End an account's lockout after failed logins",
    tag="users",
    action=Action.USER_UNLOCK,
)
def unlock_user(ctx, user_id):
    user = users.unlock(ctx, user_id)
    return {"id": user.id, "username": user.username, "locked_until": None}
