"""Accounts: creation with separation of duties, password login with throttling, API tokens."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, select

from govern import policy, tokens
from govern.actions import Action
from govern.context import Ctx, Principal, Target, require
from govern.db import upsert, utcnow
from govern.errors import Conflict, Invalid, TooManyFailedLogins, Unauthenticated
from govern.models import LoginThrottle, User


@lru_cache(maxsize=4)
def _hashers(time_cost: int, memory_kib: int) -> tuple[PasswordHasher, str]:
    """argon2id, and a dummy hash verified when the username is unknown (same cost either way)."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    return hasher, hasher.hash("govern-dummy-password")


def _hasher(ctx: Ctx) -> PasswordHasher:
    return _hashers(ctx.settings.argon2_time_cost, ctx.settings.argon2_memory_kib)[0]


USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{1,63}")
MIN_PASSWORD = 12


def principal_for(user: User) -> Principal:
    return Principal("user", user.username, user.username, user.id, user.org)


def check_separation(roles_held: set[str], new_role: str) -> None:
    """三员分立: refuse a second role among system_admin, security_admin and auditor."""
    triad = (roles_held | {new_role}) & policy.ADMIN_TRIAD
    if len(triad) > 1:
        raise Conflict(
            f"separation of duties: one account may not hold both {' and '.join(sorted(triad))}",
            field="role",
        )


def check_org(role: str, org: str | None) -> str | None:
    """A vendor account names its vendor organisation; an office or admin account names none."""
    org = (org or "").strip() or None
    if role in policy.VENDOR_ROLES and org is None:
        raise Invalid(f"org: a {role} account belongs to a vendor organisation", field="org")
    if role not in policy.VENDOR_ROLES and org is not None:
        raise Invalid(f"org: a {role} account belongs to the office, not a vendor", field="org")
    return org


def create_user(
    ctx: Ctx,
    username: str,
    role: str,
    password: str,
    display_name: str = "",
    org: str | None = None,
) -> User:
    require(ctx, Action.USER_CREATE, Target("user", username))
    username = username.strip().lower()
    if not USERNAME.fullmatch(username) or username in policy.ROLES:
        raise Invalid("username: 2-64 of a-z 0-9 _ . -, not a role name", field="username")
    if role not in policy.ACCOUNT_ROLES:
        raise Invalid(
            f"role: must be one of {', '.join(sorted(policy.ACCOUNT_ROLES))}", field="role"
        )
    org = check_org(role, org)
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"password: needs at least {MIN_PASSWORD} characters", field="password")
    if ctx.db.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username: {username} is taken", field="username")
    check_separation(policy.roles_in_table(ctx.db, username), role)
    user = User(
        username=username,
        display_name=display_name,
        password_hash=_hasher(ctx).hash(password),
        org=org,
    )
    ctx.db.add(user)
    ctx.flush()  # the same username taken by a concurrent request: 409
    policy.assign_role(ctx.db, username, role)
    ctx.record(
        Action.ROLE_ASSIGN,
        Target("user", username),
        rule="account creation",
        role_assigned=role,
        org=org,
    )
    return user


def set_password(ctx: Ctx, user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"password: needs at least {MIN_PASSWORD} characters", field="password")
    user.password_hash = _hasher(ctx).hash(password)
    # Every token and session carries the credential version; moving it ends them all.
    user.credential_version += 1


def _throttle_keys(ctx: Ctx, username: str) -> list[tuple[str, int]]:
    s = ctx.settings
    return [
        (f"account:{username}", s.login_max_failures_account),
        (f"address:{ctx.client}", s.login_max_failures_address),
    ]


def locked_until(ctx: Ctx, row: LoginThrottle | None, limit: int) -> datetime | None:
    """When a throttle row's lockout ends, or None when it does not lock anyone out now."""
    if row is None or row.failures < limit:
        return None
    until = row.window_start + timedelta(seconds=ctx.settings.login_window_seconds)
    return until if until > utcnow() else None


def _check_throttle(ctx: Ctx, username: str) -> None:
    now = utcnow()
    for key, limit in _throttle_keys(ctx, username):
        until = locked_until(ctx, ctx.db.get(LoginThrottle, key), limit)
        if until is not None:
            resets_in = int((until - now).total_seconds()) + 1
            ctx.record(
                Action.AUTH_LOGIN,
                Target("user", username),
                "deny",
                "too many failed logins",
                keep=True,
                throttled=key.split(":")[0],
                until=until.isoformat(timespec="seconds"),
            )
            raise TooManyFailedLogins(resets_in, until)


_THROTTLE = LoginThrottle.__table__


def _count_failure(ctx: Ctx, username: str) -> None:
    """One more failure per key, as one upsert each: parallel first failures on a key never
    collide on its insert (which used to end in a 500 and an unaudited attempt)."""
    now = utcnow()
    fresh = _THROTTLE.c.window_start > now - timedelta(seconds=ctx.settings.login_window_seconds)
    # Keys in a fixed order, so two failures never wait on each other's rows.
    for key, _limit in sorted(_throttle_keys(ctx, username)):
        changes = {
            "failures": case((fresh, _THROTTLE.c.failures + 1), else_=1),
            "window_start": case((fresh, _THROTTLE.c.window_start), else_=now),
        }
        values = {"key": key, "failures": 1, "window_start": now}
        upsert(ctx.db, _THROTTLE, values, ["key"], changes)


def authenticate(ctx: Ctx, username: str, password: str) -> User:
    """Check a password. Failures are counted and audited, and committed even though they fail."""
    username = (username or "").strip().lower()
    _check_throttle(ctx, username)
    user = ctx.db.scalar(select(User).where(User.username == username))
    try:
        hasher, dummy = _hashers(ctx.settings.argon2_time_cost, ctx.settings.argon2_memory_kib)
        hasher.verify(user.password_hash if user else dummy, password or "")
        good = user is not None and user.active
    except (VerificationError, InvalidHashError):
        good = False
    if not good:
        _count_failure(ctx, username)
        # Each guess is written (not counted): the throttle already bounds them per address.
        ctx.record(
            Action.AUTH_LOGIN,
            Target("user", username),
            "deny",
            "bad username or password",
            collapse=False,
        )
        ctx.commit()
        raise Unauthenticated("bad username or password")
    ctx.db.query(LoginThrottle).filter(LoginThrottle.key == f"account:{username}").delete()
    if _hasher(ctx).check_needs_rehash(user.password_hash):
        user.password_hash = _hasher(ctx).hash(password)
    return user


def login(ctx: Ctx, username: str, password: str, how: str) -> User:
    user = authenticate(ctx, username, password)
    ctx.principal = principal_for(user)
    ctx.record(Action.AUTH_LOGIN, Target("user", user.username), rule="password verified", via=how)
    return user


def logout(ctx: Ctx) -> None:
    """Sign out of the pages: the account's session epoch moves, so every cookie session it had
    (the one in this browser and any copy of it) stops working on the server."""
    user = ctx.db.get(User, ctx.principal.id)
    user.session_epoch += 1
    ctx.record(Action.AUTH_LOGOUT, Target("user", user.username), rule="signed out")


def unlock(ctx: Ctx, user: User) -> bool:
    """End an account's lockout after failed logins (system_admin). Returns whether it was on."""
    key = f"account:{user.username}"
    row = ctx.db.get(LoginThrottle, key)
    was_locked = locked_until(ctx, row, ctx.settings.login_max_failures_account) is not None
    ctx.db.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
    return was_locked


def issue_token(ctx: Ctx, username: str, password: str) -> dict:
    user = authenticate(ctx, username, password)
    ctx.principal = principal_for(user)
    token, seconds = tokens.issue_api_token(
        ctx.keys,
        ctx.settings.issuer,
        user.id,
        user.credential_version,
        ctx.settings.api_token_seconds,
    )
    ctx.record(
        Action.AUTH_TOKEN,
        Target("user", user.username),
        rule="password verified",
        expires_in=seconds,
    )
    return {"access_token": token, "token_type": "Bearer", "expires_in": seconds}


def user_for_token(ctx: Ctx, token: str) -> User:
    """The live account behind an API token: still active, same credentials as when issued.
    A refusal is audited (with the token's fingerprint, never the token)."""
    try:
        claims = tokens.check_api_token(ctx.keys, ctx.settings.issuer, token)
    except Unauthenticated:
        _refuse_bearer(ctx, token, "invalid or expired bearer token")
        raise
    user = ctx.db.get(User, int(claims.subject)) if claims.subject.isdigit() else None
    if user is None or not user.active or user.credential_version != claims.credential_version:
        why = "account disabled" if user is not None and not user.active else "credentials changed"
        _refuse_bearer(ctx, token, f"the bearer token is no longer valid: {why}")
        raise Unauthenticated("the bearer token is no longer valid")
    return user


def _refuse_bearer(ctx: Ctx, token: str, rule: str) -> None:
    ctx.record(
        Action.AUTH_BEARER, "api", "deny", rule, keep=True, token_sha256=tokens.fingerprint(token)
    )
