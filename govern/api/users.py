"""/users: accounts (system_admin creates, disables, re-enables and resets, each new account or
reset yielding a one-time set-password link; security_admin lists them and confirms the office's
and the admins' links), and the holder's own password (/auth/set-password, /auth/password)."""

from __future__ import annotations

from govern import policy
from govern.actions import Action
from govern.api import endpoint
from govern.http import external_url
from govern.schema import Enum, Schema, Str
from govern.services import accounts, links, users

USER_IN = Schema(
    "UserCreate",
    username=Str(max_len=64),
    role=Enum(choices=tuple(sorted(policy.ACCOUNT_ROLES))),
    display_name=Str(required=False, max_len=200),
    org=Str(
        required=False,
        max_len=300,
        description="the vendor organisation (an agreement's vendor); required for vendor roles",
    ),
)
SET_PASSWORD_IN = Schema(
    "SetPassword",
    token=Str(max_len=200, description="the token at the end of set_password_url"),
    password=Str(min_len=accounts.MIN_PASSWORD, max_len=1024),
)
CHANGE_PASSWORD_IN = Schema(
    "ChangePassword",
    username=Str(max_len=64),
    current_password=Str(max_len=1024),
    new_password=Str(min_len=accounts.MIN_PASSWORD, max_len=1024),
)


def set_password_url(token: str) -> str:
    return external_url("web.set_password", token=token)


def _linked(user, token, link) -> dict:
    return users.link_json(user, token, link, set_password_url(token))


@endpoint("/users", summary="List accounts and their roles", tag="users", action=Action.USER_LIST)
def list_users(ctx):
    return {"users": users.list_users(ctx)}


@endpoint(
    "/users",
    "POST",
    summary="Create an account; answers its one-time set-password link",
    tag="users",
    body=USER_IN,
    status=201,
    action=Action.USER_CREATE,
)
def create_user(ctx, data):
    user, token, link = users.create(ctx, data)
    return {**_linked(user, token, link), "roles": [data["role"]], "org": user.org}


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
    "/users/<int:user_id>/enable",
    "POST",
    summary="Re-enable a disabled account",
    tag="users",
    action=Action.USER_ENABLE,
)
def enable_user(ctx, user_id):
    user = users.enable(ctx, user_id)
    return {"id": user.id, "active": user.active}


@endpoint(
    "/users/<int:user_id>/reset",
    "POST",
    summary="Reset credentials; answers a one-time set-password link, never a password",
    tag="users",
    action=Action.USER_RESET,
)
def reset_user(ctx, user_id):
    return _linked(*users.reset_password(ctx, user_id))


@endpoint(
    "/users/confirmations",
    summary="New office or admin accounts and resets waiting for a second person",
    tag="users",
    action=Action.USER_CONFIRM,
)
def list_confirmations(ctx):
    return {"confirmations": links.pending(ctx)}


@endpoint(
    "/users/confirmations/<int:link_id>/confirm",
    "POST",
    summary="Confirm a new account or a reset (security_admin, not its maker)",
    tag="users",
    action=Action.USER_CONFIRM,
)
def confirm_link(ctx, link_id):
    return links.confirm(ctx, link_id)


@endpoint(
    "/users/confirmations/<int:link_id>/refuse",
    "POST",
    summary="Refuse a new account or a reset (security_admin, not its maker); its link is spent",
    tag="users",
    action=Action.USER_CONFIRM,
)
def refuse_link(ctx, link_id):
    return links.refuse(ctx, link_id)


@endpoint(
    "/auth/set-password",
    "POST",
    summary="Choose a password with a one-time link's token",
    tag="auth",
    body=SET_PASSWORD_IN,
    public=True,
)
def set_password(ctx, data):
    user = links.use(ctx, data["token"], data["password"])
    return {"id": user.id, "username": user.username}


@endpoint(
    "/auth/password",
    "POST",
    summary="Change one's own password (every other session and token ends)",
    tag="auth",
    body=CHANGE_PASSWORD_IN,
    public=True,
)
def change_password(ctx, data):
    user = accounts.change_password(
        ctx, data["username"], data["current_password"], data["new_password"]
    )
    return {"id": user.id, "username": user.username}


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
