"""What the API and the pages share per request: the database session, who is calling, the unit
of work. Route decorators only establish who is calling; the services decide."""

from __future__ import annotations

import re
import uuid

from flask import current_app, g, request
from flask_login import LoginManager, UserMixin, current_user

from govern.context import Ctx, Principal, Runtime
from govern.errors import Unauthenticated
from govern.models import User

login_manager = LoginManager()
login_manager.session_protection = "strong"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def runtime() -> Runtime:
    return current_app.extensions["govern"]


def db():
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db


def close_db(_exc=None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


class SessionUser(UserMixin):
    """A signed-in account in the cookie session. Its id carries the credential version, so a
    password change or a disable ends every session at once (no non-revocable remember-me)."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.credential_version}"

    @property
    def is_active(self) -> bool:
        return self.user.active


@login_manager.user_loader
def _load_user(ident: str):
    try:
        uid, version = (int(x) for x in ident.split(":", 1))
    except ValueError:
        return None
    user = db().get(User, uid)
    if user is None or not user.active or user.credential_version != version:
        return None
    return SessionUser(user)


def request_id() -> str:
    given = request.headers.get("X-Request-Id", "")
    if "request_id" not in g:
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return g.request_id


def client_address() -> str:
    return (request.remote_addr or "-")[:64]


def new_ctx(principal: Principal | None = None) -> Ctx:
    return Ctx(runtime(), db(), principal or Principal.anonymous(), request_id(), client_address())


def session_principal() -> Principal | None:
    if current_user.is_authenticated:
        user = current_user.user
        return Principal("user", user.username, user.username, user.id, user.org)
    return None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def require_principal(ctx: Ctx) -> None:
    if ctx.principal.kind == "anonymous":
        raise Unauthenticated("sign in or send a bearer token")


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def authenticate_api(ctx: Ctx, method: str) -> None:
    """A bearer token, or the cookie session for safe methods only (so the API needs no CSRF)."""
    from govern.services import accounts

    token = bearer_token()
    if token:
        ctx.principal = accounts.principal_for(accounts.user_for_token(ctx, token))
        return
    principal = session_principal()
    if principal is not None:
        if method not in SAFE_METHODS:
            raise Unauthenticated("changes through the API need a bearer token")
        ctx.principal = principal
        return
    raise Unauthenticated("sign in or send a bearer token")
