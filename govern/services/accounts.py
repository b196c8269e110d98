"""Accounts: creation with separation of duties, password login with throttling, API tokens."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, bindparam, case, delete, exists, select, true

from govern import audit, duties, policy, tokens
from govern.actions import Action
from govern.context import Ctx, Principal, Target, require
from govern.db import Prepared, as_id, upsert, utcnow
from govern.errors import Conflict, Forbidden, Invalid, TooManyFailedLogins, Unauthenticated
from govern.messages import Msg
from govern.models import LoginThrottle, PolicyState, User


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


# An account whose holder has not chosen a password yet: no password verifies against this.
NO_PASSWORD = "!"


def check_org(role: str, org: str | None) -> str | None:
    """A vendor account names its vendor organisation; an office or admin account names none."""
    org = (org or "").strip() or None
    if role in policy.VENDOR_ROLES and org is None:
        raise Invalid(Msg("account.needs_org", role=role), field="org", at="org")
    if role not in policy.VENDOR_ROLES and org is not None:
        raise Invalid(Msg("account.office_org", role=role), field="org", at="org")
    return org


def create_user(
    ctx: Ctx,
    username: str,
    role: str,
    password: str | None,
    display_name: str = "",
    org: str | None = None,
) -> User:
    """An account with one role. Only the local operator (set-up, at the command line) gives it a
    password; an administrator's account gets none, and its holder chooses one through a
    one-time link (``services.links``)."""
    target = Target("user", username)
    decision = require(ctx, Action.USER_CREATE, target)
    username = username.strip().lower()
    if not USERNAME.fullmatch(username) or username in policy.ROLES:
        raise Invalid(Msg("account.username_form"), field="username", at="username")
    if role not in policy.ACCOUNT_ROLES:
        choices = ", ".join(sorted(policy.ACCOUNT_ROLES))
        raise Invalid(Msg("schema.one_of", choices=choices), field="role", at="role")
    org = check_org(role, org)
    if password is not None and ctx.principal.kind != "system":
        raise Forbidden(Msg("account.operator_password"))
    if password is not None and len(password) < MIN_PASSWORD:
        raise Invalid(Msg("password.short", min=MIN_PASSWORD), field="password", at="password")
    if ctx.db.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(Msg("account.taken", name=username), field="username", at="username")
    violation = duties.assignment_violation(ctx.db, duties.actor(ctx), username, role)
    duties.enforce(ctx, Action.USER_CREATE, target, violation, "role", role=role)
    hashed = _hasher(ctx).hash(password) if password is not None else NO_PASSWORD
    user = User(username=username, display_name=display_name, password_hash=hashed, org=org)
    ctx.db.add(user)
    ctx.flush()  # the same username taken by a concurrent request: 409
    decision.record(role=role)
    policy.assign_role(ctx.db, username, role)
    ctx.record(
        Action.ROLE_ASSIGN,
        Target("user", username),
        rule=Msg("rule.account_creation"),
        role_assigned=role,
        org=org,
    )
    return user


def set_password(ctx: Ctx, user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(Msg("password.short", min=MIN_PASSWORD), field="password", at="password")
    user.password_hash = _hasher(ctx).hash(password)
    # Every token and session carries the credential version; moving it ends them all.
    user.credential_version += 1


def change_password(ctx: Ctx, username: str, current: str, new: str) -> User:
    """The holder changes its own password, proving the current one; every other session and
    token ends (the credential version moves)."""
    user = authenticate(ctx, username, current)
    ctx.principal = principal_for(user)
    set_password(ctx, user, new)
    ctx.record(
        Action.AUTH_CHANGE_PASSWORD,
        Target("user", user.username),
        rule=Msg("rule.password_verified"),
    )
    return user


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
                Msg("rule.locked"),
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
        # An account with no password yet costs the same as an unknown one, and never passes.
        usable = user is not None and user.password_hash != NO_PASSWORD
        hasher.verify(user.password_hash if usable else dummy, password or "")
        good = usable and user.active
    except (VerificationError, InvalidHashError):
        good = False
    if not good:
        _count_failure(ctx, username)
        # Each guess is written (not counted): the throttle already bounds them per address.
        ctx.record(
            Action.AUTH_LOGIN,
            Target("user", username),
            "deny",
            Msg("auth.bad_password"),
            collapse=False,
        )
        ctx.commit()
        raise Unauthenticated(Msg("auth.bad_password"))
    ctx.db.query(LoginThrottle).filter(LoginThrottle.key == f"account:{username}").delete()
    if _hasher(ctx).check_needs_rehash(user.password_hash):
        user.password_hash = _hasher(ctx).hash(password)
    return user


def confirm_password(ctx: Ctx, password: str, action: Action, target: Target | str) -> None:
    """The signed-in holder proves its password again before sealing (issue 12: the approver's
    seal is a signature). A wrong password seals nothing: the refusal is audited under the
    sealing action, kept though the step fails, and counts toward the account's sign-in lockout
    (a stolen session cannot guess the password here faster than at the sign-in page)."""
    username = ctx.principal.name
    _check_throttle(ctx, username)
    user = ctx.db.get(User, ctx.principal.id)
    try:
        _hasher(ctx).verify(user.password_hash, password or "")
        good = user.password_hash != NO_PASSWORD
    except (VerificationError, InvalidHashError):
        good = False
    if good:
        return
    _count_failure(ctx, username)
    ctx.record(action, target, "deny", Msg("rule.password_not_confirmed"), collapse=False)
    # Written now (with the failure count): the seal does not happen, the refusal stays.
    ctx.commit()
    raise Unauthenticated(Msg("auth.password_not_confirmed"))


def login(ctx: Ctx, username: str, password: str, how: str) -> User:
    user = authenticate(ctx, username, password)
    ctx.principal = principal_for(user)
    ctx.record(
        Action.AUTH_LOGIN,
        Target("user", user.username),
        rule=Msg("rule.password_verified"),
        via=how,
    )
    return user


def logout(ctx: Ctx) -> None:
    """Sign out of the pages: the account's session epoch moves, so every cookie session it had
    (the one in this browser and any copy of it) stops working on the server."""
    user = ctx.db.get(User, ctx.principal.id)
    user.session_epoch += 1
    ctx.record(Action.AUTH_LOGOUT, Target("user", user.username), rule=Msg("rule.signed_out"))


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
        rule=Msg("rule.password_verified"),
        expires_in=seconds,
    )
    return {"access_token": token, "token_type": "Bearer", "expires_in": seconds}


# Every bearer request reads the account's live state and the policy version, in one statement
# built once: the credential version and the active flag are checked on every request (no time
# window in which a disabled account or a changed password still works), and the policy version
# tells the decision point whether its rules are current (Ctx.policy) without a read of its own.
_ACCOUNT_COLUMNS = (
    User.id,
    User.username,
    User.org,
    User.active,
    User.credential_version,
    select(PolicyState.version)
    .where(PolicyState.id == 1)
    .scalar_subquery()
    .label("policy_version"),
)
_LIVE_ACCOUNT = Prepared(select(*_ACCOUNT_COLUMNS).where(User.id == bindparam("user_id")))
LiveAccount = namedtuple("LiveAccount", [c.name for c in _ACCOUNT_COLUMNS])


class AlongAccount:
    """A lookup that a request makes anyway, read in the same statement as the live account
    behind its bearer token (one round trip, not two): ``facts`` is a SELECT of one row at most,
    with bound parameters, which may use ``user_id`` (the token's account). Its row comes back on
    ``ctx.along`` (None when the account is missing: then nothing is served anyway); where it
    finds nothing, every column of that row is None."""

    def __init__(self, facts, pinned: tuple[str, ...] = ()):
        found = facts.subquery()
        self.row = namedtuple("Along", [c.name for c in found.c])
        labelled = [c.label(f"account_{c.name}") for c in _ACCOUNT_COLUMNS]
        both = (
            select(*labelled, *found.c)
            .select_from(User)
            .outerjoin(found, true())
            .where(User.id == bindparam("user_id"))
        )
        self.statement = Prepared(both)
        # The same row as a condition, for an entry decided on a remembered row (Remembered):
        # it holds while the statement would still read every column of it as it was. The
        # ``pinned`` columns are not compared: other columns of the row change whenever they do.
        now = both.subquery()
        self._compared = [i for i, c in enumerate(now.c) if c.name not in pinned]
        same = [
            now.c[i].is_not_distinct_from(bindparam(f"known_{i}", type_=now.c[i].type))
            for i in self._compared
        ]
        self.unchanged = audit.queued_while(exists(select(now.c[0]).where(and_(*same))))

    def read(self, conn, user_id: int, given: dict):
        """(the live account, the facts' row), or (None, None) when there is no such account."""
        row = self.statement.first(conn, {**given, "user_id": user_id})
        if row is None:
            return None, None
        width = len(_ACCOUNT_COLUMNS)
        return LiveAccount(*row[:width]), self.row(*row[width:])

    def known(self, user_id: int, given: dict, user, row) -> Known:
        """The entry's insert for a decision taken on (user, row) without reading them: it writes
        the entry only while the statement would read the same account and row now."""
        both = (*user, *row)
        held = {f"known_{i}": both[i] for i in self._compared}
        return Known(self.unchanged, {**given, "user_id": user_id, **held})


@dataclass(frozen=True)
class Known:
    """An audit entry's insert with the condition its decision was taken on (audit.queued_while),
    and the condition's parameters."""

    statement: Prepared
    given: dict


class Remembered:
    """The rows one process read with the accounts of earlier allowed requests (AlongAccount),
    so that the same request again is decided without reading them: the account, the policy
    version and the facts of one item for one caller and one day.

    Nothing here is trusted for longer than a statement. A row is used only where it agrees with
    the token (same credential version) and with the process's policy (same version), and the
    entry of the decision taken on it is written by an insert that first checks, in the same
    statement, that the database would still read the very same row (Known): an account
    disabled, a password changed, a rule or role changed, an NDA or need-to-know ended, an item
    recalled or destroyed, an agreement ended, one statement before, and nothing is written; the
    request is then decided again on what the database holds now. No time window, no
    notification to wait for. Bounded: ``rows`` rows, and ``kept_bytes`` of their bytes (the
    item's ciphertext and wrapped key, never a plaintext), the least recently used going first.
    Shared by the threads of one process."""

    def __init__(self, rows: int = 1024, kept_bytes: int = 8 << 20):
        self.rows = rows
        self.kept_bytes = kept_bytes
        self._held: OrderedDict[tuple, tuple] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(along: AlongAccount, user_id: int, given: dict) -> tuple:
        return (along, user_id, *sorted(given.items()))

    def get(self, along: AlongAccount, user_id: int, given: dict):
        """(user, row) as remembered, or None."""
        key = self._key(along, user_id, given)
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                self._held.move_to_end(key)
                return held[0], held[1]
        return None

    def keep(self, along: AlongAccount, user_id: int, given: dict, user, row) -> None:
        size = sum(len(v) for v in row if isinstance(v, bytes))
        if size > self.kept_bytes // 8:
            return  # a large item is read each time: a few would push every other row out
        key = self._key(along, user_id, given)
        with self._lock:
            self._drop(key)
            self._held[key] = (user, row, size)
            self._bytes += size
            while len(self._held) > self.rows or self._bytes > self.kept_bytes:
                self._drop(next(iter(self._held)))

    def forget(self, along: AlongAccount, user_id: int, given: dict) -> None:
        with self._lock:
            self._drop(self._key(along, user_id, given))

    def _drop(self, key: tuple) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            self._bytes -= held[2]

    def __len__(self) -> int:
        return len(self._held)


def user_for_token(
    ctx: Ctx,
    token: str,
    along: tuple[AlongAccount, dict] | None = None,
    remembered: Remembered | None = None,
):
    """The live account behind an API token: still active, same credentials as when issued.
    A refusal is audited (with the token's fingerprint, never the token). Answers the account's
    row (id, username, org), not a loaded object: nothing here changes it. ``along`` is a lookup
    read in the same statement, with its parameters (its row is left on ``ctx.along``). With
    ``remembered``, a row remembered for the same lookup is taken instead of reading, where it
    agrees with the token and the policy; the unit of work's entry is then written only while
    the database still holds that row (``ctx.known``)."""
    try:
        claims = tokens.check_api_token(ctx.keys, ctx.settings.issuer, token)
    except Unauthenticated:
        _refuse_bearer(ctx, token, Msg("rule.bearer_invalid"))
        raise
    user = None
    if as_id(claims.subject) is not None:
        # On the session's connection (same transaction): a core row, no ORM loading around it.
        conn = ctx.db.connection()
        user_id = int(claims.subject)
        if along is None:
            user = _LIVE_ACCOUNT.first(conn, {"user_id": user_id})
        else:
            facts, given = along
            held = remembered.get(facts, user_id, given) if remembered is not None else None
            if held is not None and _agrees(ctx, held[0], claims):
                user, row = held
                ctx.known = facts.known(user_id, given, user, row)
            else:
                user, row = facts.read(conn, user_id, given)
            ctx.along = (given, row)
    if user is None or not user.active or user.credential_version != claims.credential_version:
        disabled = user is not None and not user.active
        why = Msg("rule.account_disabled") if disabled else Msg("rule.credentials_changed")
        _refuse_bearer(ctx, token, Msg("rule.bearer_stale", why=why))
        raise Unauthenticated(Msg("auth.bearer_stale"))
    ctx.policy_version = user.policy_version or 0
    return user


def _agrees(ctx: Ctx, user, claims) -> bool:
    """May a remembered account row decide this request? Only one that would pass the token's
    checks and that was read under the policy the process holds (else it is read again)."""
    return (
        user.active
        and user.credential_version == claims.credential_version
        and (user.policy_version or 0) == ctx.runtime.policy.version
    )


def _refuse_bearer(ctx: Ctx, token: str, rule: str) -> None:
    ctx.record(
        Action.AUTH_BEARER, "api", "deny", rule, keep=True, token_sha256=tokens.fingerprint(token)
    )
